"""Re-exported copies: image series of one patient whose slices and pixel data are identical.

The same images exported twice (once directly, once through a PACS that assigns new Study,
Series and SOP Instance UIDs) become two independent series; analysed both, they count the
patient twice. :func:`flag_copies` finds such copies among the crawl's ``ok`` image series and
applies the cohort's policy (``crawl.duplicate_copies``):

``keep-first`` (default)
    Of each group of copies, the series an RTSTRUCT / SEG of the cohort references (its masks
    still pair), else the series whose ``series_key`` sorts first (the first of them in
    ``series.tsv``), stays ``ok``; the others become ``excluded:duplicate-of-<that series_key>``,
    so they are not converted, paired or extracted.
``keep-both``
    Every copy stays ``ok``.

Either way each copy gets the QC warning ``duplicate-copy-of-<series_key>`` for every other copy
of its group, and the crawl log has a warning naming the keys (never UIDs or patient data).

What counts as identical
------------------------
Two volumes are copies when they belong to one patient (PatientID) and consist of the same
slices: equal slice headers (every field of :class:`~radflow.dicom.frames.FrameHeader` but the
file, frame number and SOPInstanceUID: position, orientation, pixel spacing, rows and columns,
rescale slope / intercept / type, echo, b-value, time point, acquisition) and equal *decoded*
stored pixel values of the same pixel type, file by file. The transfer syntax does not matter: a
compressed and an uncompressed export of the same images are copies, a lossy re-compression is
not. When a file's pixel data cannot be decoded (no decoder installed), its raw Pixel Data bytes
and transfer syntax are compared instead. Nothing else is compared: UIDs, dates, descriptions,
series numbers and private elements may differ. The same images under two PatientIDs are not
copies (two cases), and a series that differs in a single voxel is not a copy.

Cost
----
The crawl reads headers only; this check reads pixel data only of candidates, in three steps:

1. from the crawl's records (no I/O): same patient, modality, matrix, slice count, spacing,
   orientation, origin and resampling;
2. a probe: the first file of one candidate is read with its pixel data, and each other
   candidate's file at the same slice position is looked for (headers only, in file-list
   order: exports named by instance number find it at once) and read with its pixel data; a
   volume without that slice, or with other pixels there (two reconstructions of one
   acquisition on one grid), is no copy;
3. the volumes left are read completely (one read per file with its pixel data), so only true
   copies are read in full.

A problem while checking (a file that changed since it was indexed, a radflow bug) never stops
the crawl: the series concerned are then not treated as copies, and the log says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import traceback
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from radflow.dicom.frames import FrameHeader, frame_headers
from radflow.dicom.headers import number_of_frames, read_dataset, read_header
from radflow.dicom.pixels import decode_pixels, transfer_syntax
from radflow.dicom.records import SeriesRecord
from radflow.dicom.references import mask_kind, referenced_series
from radflow.errors import RadflowError
from radflow.keys import volume_key
from radflow.records.status import Status
from radflow.settings import DuplicateCopiesPolicy

logger = logging.getLogger(__name__)

#: Prefix of the excluded copies' reason and of the QC warning (families in
#: :mod:`radflow.dicom.reasons`).
DUPLICATE_OF = "duplicate-of"
QC_COPY_OF = "duplicate-copy-of"
#: The slice header keys of one file (see :func:`_slice_key`).
FileKey = tuple[tuple[tuple[str, str], ...], ...]


@dataclass
class CopyCheckCost:
    """What the check read (for the crawl log and the README's cost figures)."""

    candidates: int = 0
    headers_read: int = 0
    pixels_read: int = 0


def _candidate(rec: SeriesRecord) -> bool:
    return (bool(rec.series_uid) and Status.parse(rec.status).is_ok
            and not mask_kind(rec.sop_class_uid))


def _grid_signature(rec: SeriesRecord) -> Hashable:
    """Step 1: what the crawl already knows of a volume (no I/O)."""
    return (rec.patient_id.strip(), rec.modality, rec.rows, rec.cols, rec.n_slices, rec.spacing,
            rec.orientation, rec.origin, rec.resampled)


def _header_key(frame: FrameHeader) -> tuple[tuple[str, str], ...]:
    fields = dataclasses.asdict(frame)
    for name in ("file", "frame", "sop_instance"):
        fields.pop(name)
    return tuple(sorted((k, repr(v)) for k, v in fields.items()))


def _file_frames(rec: SeriesRecord) -> list[tuple[Path, tuple[int, ...] | None]]:
    """The record's files with the frames of each that it uses (``None``: all)."""
    per_file = rec.frames if rec.frames is not None else (None,) * len(rec.files)
    return list(zip(rec.files, per_file, strict=True))


def _slice_key(ds: Dataset, path: Path, frames: tuple[int, ...] | None) -> FileKey:
    """The sorted slice header keys of the frames of one file that a volume uses."""
    headers = frame_headers(ds, path)
    if frames is not None:
        wanted = set(frames)
        headers = [h for h in headers if h.frame in wanted]
    return tuple(sorted(_header_key(h) for h in headers))


def _pixel_digest(ds: Dataset, path: Path, frames: tuple[int, ...] | None) -> str:
    """SHA-256 of one file's decoded stored values (of ``frames`` only, when given)."""
    digest = hashlib.sha256()
    try:
        values = decode_pixels(ds, path)
    except RadflowError:  # no decoder: the encoded bytes, which only an identical copy shares
        digest.update(f"raw {transfer_syntax(ds)} {frames}".encode())
        digest.update(bytes(ds.get("PixelData") or b""))
        return digest.hexdigest()
    if frames is not None and number_of_frames(ds) > 1:
        values = values[list(frames)]
    values = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
    digest.update(f"{values.dtype.str} {values.shape}".encode())
    digest.update(values.data)
    return digest.hexdigest()


def _read_slice(path: Path, frames: tuple[int, ...] | None, cost: CopyCheckCost) \
        -> tuple[FileKey, str]:
    """Slice key and pixel digest of one file (one read with the pixel data)."""
    ds = read_dataset(path)
    cost.pixels_read += 1
    return _slice_key(ds, path, frames), _pixel_digest(ds, path, frames)


def _probe(records: Sequence[SeriesRecord], ref: int, others: list[int],
           cost: CopyCheckCost) -> list[int]:
    """Step 2: the ``others`` whose slice at the position of ``ref``'s first file holds the same
    pixels. The file is looked for in the order of the sorted file lists (exports named by
    instance number find it at once); a volume without that slice is not a copy."""
    ref_file, ref_frames = _file_frames(records[ref])[0]
    key, digest = _read_slice(ref_file, ref_frames, cost)
    matches = []
    for i in others:
        for path, frames in _file_frames(records[i]):
            ds, _ = read_header(path)
            cost.headers_read += 1
            if _slice_key(ds, path, frames) == key:
                if _read_slice(path, frames, cost) == (key, digest):
                    matches.append(i)
                break
    return matches


def _fingerprint(rec: SeriesRecord, cost: CopyCheckCost) -> tuple[tuple[FileKey, str], ...]:
    """Step 3: slice keys and pixel digests of every file of ``rec``, in slice order."""
    return tuple(sorted(_read_slice(path, frames, cost) for path, frames in _file_frames(rec)))


def copy_groups(records: Sequence[SeriesRecord], cost: CopyCheckCost | None = None) \
        -> list[list[int]]:
    """Groups of identical volumes among ``records`` (see the module notes).

    Parameters
    ----------
    records
        The crawl's records; only ``ok`` image series (not RTSTRUCT / SEG) are considered.
    cost
        Filled with what was read, when given.

    Returns
    -------
    list of list of int
        Indices into ``records``; each group has at least two members, in index order.
    """
    cost = cost if cost is not None else CopyCheckCost()
    by_grid: dict[Hashable, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        if _candidate(rec):
            by_grid[_grid_signature(rec)].append(i)
    found: list[list[int]] = []
    for indices in by_grid.values():
        if len(indices) < 2:
            continue
        cost.candidates += len(indices)
        try:
            found += _groups_among(records, indices, cost)
        except RadflowError as exc:  # a file changed or vanished since it was indexed
            logger.warning("duplicate-copy check: a file of %d candidate series cannot be read "
                           "again (%s); they are not treated as copies", len(indices),
                           exc.reason)
        except Exception as exc:  # a radflow bug or an input nobody foresaw: keep the crawl going
            logger.error("duplicate-copy check of %d series failed (%s): they are not treated "
                         "as copies; please report it with this traceback:\n%s", len(indices),
                         type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
    return sorted(found)


def _groups_among(records: Sequence[SeriesRecord], indices: list[int],
                  cost: CopyCheckCost) -> list[list[int]]:
    """Copies among ``indices`` (volumes on one grid): probe, then compare the candidates left."""
    found: list[list[int]] = []
    pending = list(indices)
    while len(pending) > 1:
        ref, others = pending[0], pending[1:]
        matches = _probe(records, ref, others, cost)
        pending = [i for i in others if i not in matches]
        if not matches:
            continue
        by_content: dict[tuple[tuple[FileKey, str], ...], list[int]] = defaultdict(list)
        for i in [ref, *matches]:
            by_content[_fingerprint(records[i], cost)].append(i)
        found += [sorted(group) for group in by_content.values() if len(group) > 1]
    return found


def _masked_series(records: Sequence[SeriesRecord], patients: set[str]) -> frozenset[str]:
    """SeriesInstanceUIDs that the SEG / RTSTRUCT files of ``patients`` reference (read only
    when there are copies, from the mask objects' headers)."""
    if not patients:
        return frozenset()
    return frozenset(uid for rec in records
                     if mask_kind(rec.sop_class_uid) and rec.patient_id in patients
                     for path in rec.files for uid in referenced_series(path))


def flag_copies(records: Sequence[SeriesRecord], key: bytes,
                policy: DuplicateCopiesPolicy) -> list[SeriesRecord]:
    """``records`` with re-exported copies flagged (QC) and, with ``keep-first``, excluded.

    Parameters
    ----------
    records
        The crawl's records (:func:`radflow.dicom.index.index_files`).
    key
        Pseudonymisation key: statuses and QC warnings name series by ``series_key``.
    policy
        ``crawl.duplicate_copies``.

    Returns
    -------
    list of SeriesRecord
        Same order; only copies changed.
    """
    cost = CopyCheckCost()
    groups = copy_groups(records, cost)
    if cost.candidates:
        logger.info("duplicate-copy check: %d candidate series (same patient and grid), %d "
                    "file headers and %d files' pixel data read", cost.candidates,
                    cost.headers_read, cost.pixels_read)
    out = list(records)
    masked = _masked_series(records, {records[i].patient_id for g in groups for i in g})
    for group in groups:
        keys = {i: volume_key(key, "series", records[i].series_uid, split=records[i].split)
                for i in group}
        # a copy that a SEG / RTSTRUCT of the cohort was drawn on comes first: its masks pair
        ordered = sorted(group, key=lambda i: (records[i].series_uid not in masked, keys[i]))
        first = keys[ordered[0]]
        excluded = ordered[1:] if policy == "keep-first" else []
        logger.warning("series %s hold identical slices and pixel data (re-exported copies); "
                       "crawl.duplicate_copies %s: %s", ", ".join(keys[i] for i in ordered),
                       policy, f"{first} kept, the others excluded" if excluded
                       else "all kept")
        for i in ordered:
            rec = out[i]
            qc = tuple(sorted({*rec.qc, *(f"{QC_COPY_OF}-{keys[j]}" for j in ordered if j != i)}))
            if i in excluded:
                out[i] = dataclasses.replace(
                    rec, qc=qc, status=str(Status.excluded(f"{DUPLICATE_OF}-{first}")),
                    message=(f"same slices and pixel data as series {first} "
                             "(crawl.duplicate_copies: keep-first)"))
            else:
                out[i] = dataclasses.replace(rec, qc=qc)
    return out


__all__ = ["DUPLICATE_OF", "QC_COPY_OF", "CopyCheckCost", "copy_groups", "flag_copies"]
