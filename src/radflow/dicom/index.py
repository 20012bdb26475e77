"""Header-only index of a DICOM folder: one :class:`SeriesRecord` per series or unreadable file.

Used by the crawl stage. Files are read with :func:`radflow.dicom.headers.read_header` (never the
pixel data); a file that cannot be read never stops the crawl, it becomes a record of its own.

Decisions
---------
* :func:`find_candidate_files` lists every regular file below the root whatever its extension.
  Hidden files and folders (name starting with ``.``) are skipped. Symbolic links to files are
  followed (listed under the link's path); symbolic links to folders are *not* descended into
  (no cycles, no data outside the root by accident) and are logged. Broken links are listed so
  that they are recorded as unreadable. Folders that cannot be listed are logged as warnings
  (by depth, not by name).
* Image or not is decided by SOP Class (:mod:`radflow.dicom.sopclass`): a class whose name contains
  "Image Storage" (CT, MR, PET, enhanced and legacy-converted variants, NM, CR, DX, SC, ...) is an
  image; everything else (SR, RTSTRUCT, SEG, RTDOSE, RTPLAN, PR, KO, Raw Data, Parametric Map,
  private classes) is ``excluded:non-image-<modality>``; where the Modality is an imaging one or
  empty (e.g. Raw Data with Modality CT), the SOP class name is used instead
  (``non-image-raw-data``, ``non-image-parametric-map``, ``non-image-unknown-sop-class``).
* A series of mask objects (RTSTRUCT, SEG, label-map SEG: :data:`radflow.dicom.references.
  MASK_SOP_CLASSES`) gets no image rules: each file is one mask object that the crawl's mask step
  reads, de-duplicates and links to its image series (:mod:`radflow.crawl.masks`). Its record
  says only that it is no image (``excluded:non-image-seg`` / ``-rtstruct``, the key the crawl
  routes by); the log calls it a mask object, never excluded. A mask series with a file readable
  only in part fails like any series (``failed:truncated``).
* A truncated file whose partial header names its SeriesInstanceUID stays in that series, which
  then fails with ``failed:truncated`` (dropping it would silently lose a slice); other
  unreadable files get a record with ``series_uid=""``.
* The files of each SeriesInstanceUID (from any folders) become one or more records by the series
  rules of :mod:`radflow.dicom.series` (duplicates, exclusions, 4-D splits, geometry).
* Character sets: non-conformant SpecificCharacterSet values are corrected when a file is read
  (:mod:`radflow.dicom.charset`); corrections and decoding problems become QC warnings of the
  record (``qc``), logged as warnings.
* Messages and logs never name a file or folder (archives are often organised by patient name,
  and file names can hold one): a file of a series is ``file 3 of 120``, its position in the
  series' sorted file list (:mod:`radflow.dicom.naming`); a record of one unreadable file is
  that file, so its message names none.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import traceback
from collections import defaultdict
from collections.abc import Collection, Sequence
from pathlib import Path

from pydicom.dataset import Dataset

from radflow.dicom.acquisition import acquisition_values, dose_report_values
from radflow.dicom.charset import charset_warnings, decode_text_values
from radflow.dicom.frames import frame_headers
from radflow.dicom.headers import (
    charset_qc,
    clean_text,
    get_float,
    get_int,
    get_str,
    get_strs,
    number_of_frames,
    quiet_pydicom,
    read_header,
    sop_class_uid,
)
from radflow.dicom.records import FileInfo, SeriesRecord
from radflow.dicom.references import mask_kind
from radflow.dicom.series import build_records
from radflow.dicom.sopclass import DICOMDIR_SOP_CLASS, is_image_sop_class, non_image_reason
from radflow.errors import DicomError, InputFileError, PartialFileError
from radflow.records.status import FAILED, Status
from radflow.settings import CrawlSettings

logger = logging.getLogger(__name__)



#: Files in a DICOM tree that are plainly something else (reports, conversions, checksums) are
#: listed as ``excluded:non-dicom-file``; any other file that is not DICOM is ``failed:not-dicom``.
NON_DICOM_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".txt", ".md",
                      ".csv", ".tsv", ".json", ".xml", ".html", ".pdf", ".xlsx", ".png", ".jpg",
                      ".jpeg", ".zip", ".py", ".yaml", ".yml", ".log")
NON_DICOM_REASON = "non-dicom-file"


def _known_non_dicom(path: Path) -> bool:
    name = path.name.lower()
    return name in ("sha256sums", "md5sums", "license") or name.endswith(NON_DICOM_SUFFIXES)


def find_candidate_files(root: str | os.PathLike[str]) -> list[Path]:
    """Every regular file below ``root`` (any extension), sorted; see the module notes.

    Raises
    ------
    InputFileError
        ``missing-root`` when ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputFileError(f"DICOM root {root} is not a folder", reason="missing-root")
    found: list[Path] = []

    def unreadable(exc: OSError) -> None:
        # folder names are often patient names: say how deep, never which
        depth = len(Path(exc.filename).relative_to(root).parts) if exc.filename else "?"
        logger.warning("cannot list a folder at depth %s below the DICOM root (%s); its files "
                       "are not indexed", depth, type(exc).__name__)

    for folder, dirs, files in os.walk(root, followlinks=False, onerror=unreadable):
        here = Path(folder)
        kept = []
        for d in sorted(dirs):
            if d.startswith("."):
                continue
            if (here / d).is_symlink():
                logger.info("not following a symbolic link to a folder (depth %d below the "
                            "DICOM root)", len((here / d).relative_to(root).parts))
                continue
            kept.append(d)
        dirs[:] = kept
        for name in files:
            path = here / name
            if name.startswith("."):
                continue
            if path.is_file() or (path.is_symlink() and not path.exists()):
                found.append(path)
    return sorted(found)


def index_files(paths: Sequence[str | os.PathLike[str]], settings: CrawlSettings) \
        -> list[SeriesRecord]:
    """Read the headers of ``paths`` and group them into series records.

    Returns
    -------
    list of SeriesRecord
        Series sorted by (patient, study, series number, series UID), then one record per
        unreadable or series-less file sorted by path.
    """
    groups: dict[str, list[FileInfo]] = defaultdict(list)
    broken: dict[str, list[tuple[Path, str, str]]] = defaultdict(list)
    singles: list[SeriesRecord] = []
    for raw_path in paths:
        path = Path(raw_path)
        try:
            info = _file_info(path, first_of_series=groups.keys())
        except InputFileError as exc:
            logger.info("a file cannot be read: %s", exc.reason)
            uid = exc.series_uid if isinstance(exc, PartialFileError) else ""
            if uid:
                broken[uid].append((path, str(exc), exc.reason))
            else:
                status = str(Status.excluded(NON_DICOM_REASON)
                             if exc.reason == "not-dicom" and _known_non_dicom(path)
                             else Status.of_reason(exc.reason))
                singles.append(SeriesRecord(series_uid="", status=status,
                                            files=(path,), n_instances=1, message=str(exc)))
            continue
        if info.sop_class == DICOMDIR_SOP_CLASS:
            singles.append(_single(info, str(Status.excluded("dicomdir")),
                                   "DICOMDIR (media directory)"))
        elif not info.series_uid:
            singles.append(_single(info, str(Status.failed("missing-series-uid")),
                                   "no SeriesInstanceUID (0020,000E)"))
        else:
            groups[info.series_uid].append(info)
    series = [record
              for uid in sorted(set(groups) | set(broken))
              for record in _guarded_records(uid, sorted(groups.get(uid, []),
                                                         key=lambda i: str(i.path)),
                                             sorted(broken.get(uid, [])), settings)]
    series = _flag_unreadable_neighbours(series, singles)
    for record in series:
        if record.qc:
            logger.warning("series of %d file(s)%s: QC %s", record.n_instances, record.split,
                           ", ".join(record.qc))
    series.sort(key=lambda r: (r.patient_id, r.study_uid, r.series_number or 0, r.series_uid,
                               r.split))
    singles.sort(key=lambda r: str(r.files[0]))
    return series + singles


def _guarded_records(uid: str, infos: list[FileInfo], broken: list[tuple[Path, str, str]],
                     settings: CrawlSettings) -> list[SeriesRecord]:
    """:func:`build_records` (a series of mask objects: :func:`_mask_objects`), with an
    unexpected error confined to its series (``failed:internal-error``): one series must never
    stop the crawl of a cohort."""
    acquisition = next((tuple(i.acquisition.items()) for i in infos
                        if i.acquisition is not None), ())
    try:
        if infos and not broken and all(mask_kind(i.sop_class) for i in infos):
            return [dataclasses.replace(_mask_objects(uid, infos), acquisition=acquisition)]
        return [dataclasses.replace(r, acquisition=acquisition)
                for r in build_records(uid, infos, broken, settings)]
    except Exception as exc:  # a radflow bug or an input nobody foresaw: keep the cohort going
        # the traceback without the exception's message (which may quote a header value)
        logger.error("series of %d file(s): internal error %s; please report it with this "
                     "traceback:\n%s", len(infos) + len(broken), type(exc).__name__,
                     "".join(traceback.format_tb(exc.__traceback__)))
        files = tuple(sorted([i.path for i in infos] + [b[0] for b in broken], key=str))
        first = infos[0] if infos else None
        return [SeriesRecord(
            series_uid=uid, status=str(Status.failed("internal-error")), files=files,
            n_instances=len(files), patient_id=first.patient_id if first else "",
            study_uid=first.study_uid if first else "",
            modality=first.modality if first else "",
            series_number=first.series_number if first else None,
            message=f"internal error ({type(exc).__name__}) while checking the series")]


def _mask_objects(uid: str, infos: list[FileInfo]) -> SeriesRecord:
    """The record of a series of RTSTRUCT / SEG files: one mask object per file, for the crawl's
    mask step (see the module notes)."""
    first = infos[0]
    kinds = "/".join(sorted({mask_kind(i.sop_class).upper() for i in infos}))
    logger.info("series of %d file(s): mask object(s) (%s), linked to their image series by "
                "the crawl", len(infos), kinds)
    return SeriesRecord(
        series_uid=uid, status=str(Status.excluded(non_image_reason(first.modality,
                                                                    first.sop_class))),
        files=tuple(i.path for i in infos), n_instances=len(infos),
        patient_id=first.patient_id, study_uid=first.study_uid,
        frame_of_reference_uid=first.for_uid, sop_class_uid=first.sop_class,
        modality=first.modality, series_number=first.series_number,
        series_description=first.description, image_type=first.image_type,
        manufacturer=first.manufacturer, transfer_syntax_uid=first.transfer_syntax,
        multiframe=any(i.multiframe for i in infos), message=f"mask object(s) ({kinds})",
        qc=tuple(sorted({c for i in infos for c in i.qc})))


def _flag_unreadable_neighbours(series: list[SeriesRecord], singles: list[SeriesRecord]) \
        -> list[SeriesRecord]:
    """Add QC ``unreadable-file-in-folder`` to series that share a folder with a file that failed
    to be read and could not be assigned to a series (it may have been one of their slices)."""
    folders = {r.files[0].parent for r in singles if Status.parse(r.status).kind == FAILED}
    if not folders:
        return series
    return [dataclasses.replace(r, qc=tuple(sorted({*r.qc, "unreadable-file-in-folder"})))
            if any(f.parent in folders for f in r.files) else r for r in series]


def _file_info(path: Path, first_of_series: Collection[str] = ()) -> FileInfo:
    """The file's :class:`FileInfo`; with its acquisition values when its series is not in
    ``first_of_series`` (the series seen so far: the values are read once per series)."""
    ds, has_pixels = read_header(path)
    with quiet_pydicom(path) as caught:
        try:
            info = _summarise(ds, path, has_pixels)
            decode_text_values(ds)
            if info.series_uid and info.series_uid not in first_of_series:
                info.acquisition = _acquisition(ds)
        except Exception as exc:  # a value pydicom parsed but radflow cannot use: record it
            raise InputFileError(f"header cannot be interpreted ({type(exc).__name__})",
                                 reason="unreadable") from exc
    info.qc = tuple(sorted(set(charset_qc(ds)) | set(charset_warnings(caught))))
    return info


def _acquisition(ds: Dataset) -> dict[str, str]:
    """The whitelisted acquisition values; a value radflow cannot read never changes the
    file's status (the values are then unknown to the protocol gates)."""
    try:
        return {**acquisition_values(ds), **dose_report_values(ds)}
    except Exception as exc:  # an attribute pydicom parses lazily and cannot convert
        logger.info("acquisition values cannot be read (%s)", type(exc).__name__)
        return {}


def _summarise(ds: Dataset, path: Path, has_pixels: bool) -> FileInfo:
    sop_class = sop_class_uid(ds)
    n_frames = number_of_frames(ds)
    info = FileInfo(
        path=path,
        sop_class=sop_class,
        sop_instance=get_str(ds, "SOPInstanceUID"),
        series_uid=get_str(ds, "SeriesInstanceUID"),
        study_uid=get_str(ds, "StudyInstanceUID"),
        patient_id=get_str(ds, "PatientID"),
        for_uid=get_str(ds, "FrameOfReferenceUID"),
        modality=get_str(ds, "Modality").upper(),
        series_number=get_int(ds, "SeriesNumber"),
        description=clean_text(get_str(ds, "SeriesDescription")),
        image_type=tuple(v.upper() for v in get_strs(ds, "ImageType")),
        manufacturer=clean_text(get_str(ds, "Manufacturer")),
        transfer_syntax=str(getattr(ds, "file_meta", {}).get("TransferSyntaxUID", "") or ""),
        slice_thickness=get_float(ds, "SliceThickness"),
        rows=get_int(ds, "Rows"),
        cols=get_int(ds, "Columns"),
        photometric=get_str(ds, "PhotometricInterpretation").upper(),
        samples=get_int(ds, "SamplesPerPixel"),
        bits_allocated=get_int(ds, "BitsAllocated"),
        n_frames=n_frames,
        multiframe=n_frames > 1 or "PerFrameFunctionalGroupsSequence" in ds,
        has_pixels=has_pixels,
    )
    if is_image_sop_class(sop_class):
        try:
            info.frames = frame_headers(ds, path)
        except DicomError as exc:
            info.frames_error = exc
    return info


def _single(info: FileInfo, status: str, message: str) -> SeriesRecord:
    return SeriesRecord(series_uid="", status=status, files=(info.path,), n_instances=1,
                        patient_id=info.patient_id, study_uid=info.study_uid,
                        sop_class_uid=info.sop_class, modality=info.modality, message=message)


__all__ = ["SeriesRecord", "find_candidate_files", "index_files"]
