"""De-identify one series' files into an output folder (:func:`deidentify_series`).

Output layout: :func:`series_output_dir` puts a series at
``<root>/<case_id>/<f…>/…/<series_key>/``, where each ``f…`` stands for one source folder level
below the DICOM root, replaced by a keyed hash of the source path up to that level. Source folder
names (often patient names) never appear, yet series that shared a source folder still share a
folder, so that the crawl's ``common-folder`` pairing fallback links an RTSTRUCT or SEG to the
same image series on the de-identified tree as on the source (sts_002 needs it: its RTSTRUCTs
reference no image by UID). Files are named ``00000.dcm``, ``00001.dcm``, … in the order of
their new SOPInstanceUIDs, never after their source names.

The series folder is replaced atomically: files are written to a hidden temporary folder beside
it, which then takes its place, so a killed job leaves the old folder or the new one, never a
partial series. An excluded or failed series leaves an empty folder (nothing of it is shared).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radflow.deidentify.burned_in import burned_in_reason
from radflow.deidentify.dataset import deidentify_dataset
from radflow.deidentify.profile import DeidSettings
from radflow.deidentify.uids import replace_uid
from radflow.dicom.headers import get_str, quiet_pydicom, read_dataset, read_header
from radflow.errors import InputFileError
from radflow.keys import case_id as make_case_id
from radflow.keys import folder_key
from radflow.records.status import Status

logger = logging.getLogger(__name__)

#: Source kinds (radflow.records.Source.kind) that are DICOM objects.
DICOM_KINDS = frozenset({"dicom", "rtstruct", "seg"})


@dataclass(frozen=True)
class SeriesResult:
    """Outcome of :func:`deidentify_series` (pseudonymous keys and counts only, no values).

    Attributes
    ----------
    status
        ``ok``, ``excluded:burned-in-annotation``, ``excluded:burned-in-sop-class``,
        ``failed:<read reason>`` (``unreadable``, ``truncated``, …), ``failed:patient-mismatch``
        (a file's PatientID does not give ``case_id``), ``failed:no-files``,
        ``failed:write-error``.
    n_files
        Files written.
    counts
        ``(tag, action) -> n`` over all files (see :mod:`radflow.deidentify.dataset`).
    """

    case_id: str
    series_key: str
    status: str
    n_files: int = 0
    counts: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """JSON-ready form (counts as ``[tag, action, n]`` rows, sorted)."""
        return {"case_id": self.case_id, "series_key": self.series_key, "status": self.status,
                "n_files": self.n_files,
                "counts": [[t, a, n] for (t, a), n in sorted(self.counts.items())]}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SeriesResult:
        """Inverse of :meth:`record`."""
        counts = {(str(t), str(a)): int(n) for t, a, n in record.get("counts", [])}
        return cls(str(record["case_id"]), str(record["series_key"]), str(record["status"]),
                   int(record.get("n_files", 0)), counts)


def series_output_dir(root: str | os.PathLike[str], key: bytes, case_id: str, series_key: str,
                      files: Sequence[str | os.PathLike[str]],
                      source_root: str | os.PathLike[str] | None = None) -> Path:
    """Where the de-identified series goes (see the module docstring).

    Without ``source_root``, or for files outside it, the folder is ``<root>/<case_id>/
    <series_key>``.
    """
    parts: list[str] = []
    if source_root is not None and files:
        common = Path(os.path.commonpath([str(Path(f).resolve().parent) for f in files]))
        try:
            rel = common.relative_to(Path(source_root).resolve())
        except ValueError:
            rel = None
        if rel is not None:
            for i in range(len(rel.parts)):
                parts.append(folder_key(key, "/".join(rel.parts[:i + 1])))
    return Path(root, case_id, *parts, series_key)


def deid_units(sources: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The series to de-identify, from the crawl's private source records.

    Keeps DICOM sources (``kind`` ``dicom``, ``rtstruct``, ``seg``) of a known patient, once per
    file list: the volumes of a split multi-frame series share their files, which must be
    de-identified (and written) once. Single-frame splits (echoes, time points) have disjoint
    files; their new SeriesInstanceUID is the same, so the crawl of the de-identified tree
    reunites and re-splits them. Returns ``{"case_id", "series_key", "files"}`` records in input
    order.
    """
    seen: set[tuple[str, ...]] = set()
    units = []
    for src in sources:
        files = tuple(str(f) for f in src.get("files", []))
        if src.get("kind") not in DICOM_KINDS or not src.get("case_id") or not files:
            continue
        if files in seen:
            continue
        seen.add(files)
        units.append({"case_id": src["case_id"], "series_key": src["series_key"],
                      "files": list(files)})
    return units


def deidentify_series(files: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
                      settings: DeidSettings, key: bytes, case_id: str,
                      series_key: str) -> SeriesResult:
    """De-identify every file of one series into ``out_dir`` (replaced atomically).

    Parameters
    ----------
    files
        The series' files (the crawl's explicit list).
    out_dir
        The series' output folder (e.g. from :func:`series_output_dir`).
    settings
        De-identification options.
    key
        Pseudonymisation key.
    case_id, series_key
        The crawl's pseudonymous keys of the patient and the series; every file's PatientID
        must give ``case_id``.

    Returns
    -------
    SeriesResult
        Status and action counts; nothing of an excluded or failed series is written.
    """
    out_dir = Path(out_dir)
    result = _check(files, settings, key, case_id, series_key)
    if isinstance(result, SeriesResult):
        _replace_dir(out_dir, None)
        logger.info("series %s: %s", series_key, result.status)
        return result
    names = result
    counts: Counter[tuple[str, str]] = Counter()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out_dir.parent))
    try:
        for path, name in names.items():
            try:
                ds = read_dataset(path)
            except InputFileError as exc:
                return _fail(out_dir, case_id, series_key, exc.reason)
            new, file_counts = deidentify_dataset(ds, settings, key, case_id)
            counts.update(file_counts)
            try:
                with quiet_pydicom():  # pydicom's validation warnings quote values
                    new.save_as(tmp / name, enforce_file_format=True)
            except Exception as exc:  # pydicom raises many types on values it cannot encode
                logger.warning("series %s: a de-identified file cannot be written (%s)",
                               series_key, type(exc).__name__)
                return _fail(out_dir, case_id, series_key, "write-error")
        _replace_dir(out_dir, tmp)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    logger.info("series %s: %d file(s) de-identified", series_key, len(names))
    return SeriesResult(case_id, series_key, "ok", len(names), dict(counts))


def _check(files: Sequence[str | os.PathLike[str]], settings: DeidSettings, key: bytes,
           case_id: str, series_key: str) -> SeriesResult | dict[Path, str]:
    """Headers-only checks; the output file name of every file, or a failed/excluded result."""
    if not files:
        return SeriesResult(case_id, series_key, str(Status.failed("no-files")))
    new_uids: list[tuple[str, Path]] = []
    for f in files:
        path = Path(f)
        try:
            ds, _ = read_header(path)
        except InputFileError as exc:
            return SeriesResult(case_id, series_key, str(Status.of_reason(exc.reason)))
        if make_case_id(key, get_str(ds, "PatientID")) != case_id:
            return SeriesResult(case_id, series_key, str(Status.failed("patient-mismatch")))
        reason = burned_in_reason(ds)
        if reason and not settings.allow_burned_in:
            return SeriesResult(case_id, series_key, str(Status.excluded(reason)))
        uid = get_str(ds, "SOPInstanceUID")
        new_uids.append((uid if settings.retain_uids else replace_uid(key, uid), path))
    ordered = sorted(new_uids, key=lambda p: p[0])
    return {path: f"{i:05d}.dcm" for i, (_, path) in enumerate(ordered)}


def _fail(out_dir: Path, case_id: str, series_key: str, reason: str) -> SeriesResult:
    _replace_dir(out_dir, None)
    logger.warning("series %s: failed:%s", series_key, reason)
    return SeriesResult(case_id, series_key, str(Status.failed(reason)))


def _replace_dir(out_dir: Path, new: Path | None) -> None:
    """Put ``new`` (or an empty folder) at ``out_dir``, removing what was there."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if new is None:
        new = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out_dir.parent))
    for f in new.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=".old-", dir=out_dir.parent))
        os.replace(out_dir, old / "series")
    os.replace(new, out_dir)
    if old is not None:
        shutil.rmtree(old)


__all__ = ["DICOM_KINDS", "SeriesResult", "deid_units", "deidentify_series", "series_output_dir"]
