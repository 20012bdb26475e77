"""Header-only index of a DICOM folder: one :class:`SeriesRecord` per series or unreadable file.

Used by the crawl stage. Files are read with :func:`radflow.dicom.headers.read_header` (never the
pixel data); a file that cannot be read never stops the crawl, it becomes a record of its own.

Decisions
---------
* :func:`find_candidate_files` lists every regular file below the root whatever its extension.
  Hidden files and folders (name starting with ``.``) are skipped. Symbolic links to files are
  followed (listed under the link's path); symbolic links to folders are *not* descended into
  (no cycles, no data outside the root by accident) and are logged. Broken links are listed so
  that they are recorded as unreadable. Folders that cannot be listed are logged as warnings.
* Image or not is decided by SOP Class (:mod:`radflow.dicom.sopclass`): a class whose name contains
  "Image Storage" (CT, MR, PET, enhanced and legacy-converted variants, NM, CR, DX, SC, ...) is an
  image; everything else (SR, RTSTRUCT, SEG, RTDOSE, RTPLAN, PR, KO, Raw Data, Parametric Map,
  private classes) is ``excluded:non-image-<modality>``; where the Modality is an imaging one or
  empty (e.g. Raw Data with Modality CT), the SOP class name is used instead
  (``non-image-raw-data``, ``non-image-parametric-map``, ``non-image-unknown-sop-class``).
* A truncated file whose partial header names its SeriesInstanceUID stays in that series, which
  then fails with ``failed:truncated`` (dropping it would silently lose a slice); other
  unreadable files get a record with ``series_uid=""``.
* Series checks, first match wins: ``failed:truncated``, ``excluded:non-image-*``,
  ``failed:inconsistent-series`` (SOP class, modality, patient, study or frame of reference
  differ between files), ``failed:duplicate-instance`` (one SOPInstanceUID twice, e.g. the same
  series copied into two folders: radflow does not guess which copy to use),
  ``excluded:localizer``, ``excluded:modality-*``, ``failed:missing-pixel-data``,
  ``failed:unsupported-photometric``, ``failed:unsupported-multiframe``,
  ``failed:invalid-rescale``, ``excluded:too-few-slices``, then the geometry check shared with
  the convert stage (:func:`radflow.dicom.frames.frames_geometry`).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from radflow.dicom.frames import FrameHeader, check_rescale, frame_headers, frames_geometry
from radflow.dicom.headers import (
    TruncatedFileError,
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
from radflow.dicom.sopclass import (
    DICOMDIR_SOP_CLASS,
    is_image_sop_class,
    non_image_reason,
    slug,
)
from radflow.errors import DicomError, InputFileError, SeriesGeometryError
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


@dataclass(frozen=True)
class SeriesRecord:
    """One DICOM series (or one unreadable file) as found by the crawl.

    Attributes
    ----------
    series_uid
        SeriesInstanceUID ("" for an unreadable file or a file without one).
    status
        ``"ok"``, ``"excluded:<reason>"`` or ``"failed:<reason>"``.
    files
        The series' files, sorted by path (for an unreadable file: that file).
    n_instances
        Number of files.
    patient_id
        Source PatientID, raw (identifying: pseudonymise, never write).
    study_uid, frame_of_reference_uid, sop_class_uid, modality
        From the first file ("" when absent).
    series_number
        SeriesNumber (``None`` when absent).
    series_description
        Cleaned SeriesDescription (control characters removed, <= 64 characters).
    image_type
        ImageType values of the first file.
    manufacturer, transfer_syntax_uid
        From the first file.
    slice_thickness
        SliceThickness of the first file (mm; ``None`` when absent).
    rows, cols
        Rows / Columns of the first image file (``None`` for non-images).
    n_slices
        Number of image slices (frames of all files whose headers could be read); ``None`` for
        non-images.
    spacing
        ``(x, y, z)`` mm: column spacing, row spacing, slice spacing along the normal; ``None``
        unless the geometry check passed.
    orientation
        ImageOrientationPatient (6 cosines) of the first slice (``None`` when missing).
    origin
        ImagePositionPatient of the first slice along the normal (``None`` unless geometry ok).
    multiframe
        Whether any file holds more than one frame or uses per-frame functional groups.
    message
        Why the status is not ``ok`` (file names and rule broken, never patient data).
    split
        Suffix naming one 3-D volume of a series that holds several (``_t03``, ``_b800``,
        ``_e2``); empty for an ordinary series. It is part of the series key.
    """

    series_uid: str
    status: str
    files: tuple[Path, ...]
    n_instances: int
    patient_id: str = ""
    study_uid: str = ""
    frame_of_reference_uid: str = ""
    sop_class_uid: str = ""
    modality: str = ""
    series_number: int | None = None
    series_description: str = ""
    image_type: tuple[str, ...] = ()
    manufacturer: str = ""
    transfer_syntax_uid: str = ""
    slice_thickness: float | None = None
    rows: int | None = None
    cols: int | None = None
    n_slices: int | None = None
    spacing: tuple[float, float, float] | None = None
    orientation: tuple[float, ...] | None = None
    origin: tuple[float, float, float] | None = None
    multiframe: bool = False
    message: str = ""
    split: str = ""

    @property
    def reason(self) -> str:
        """The part after ``failed:`` / ``excluded:`` ("" when ok)."""
        return self.status.partition(":")[2]


@dataclass
class _FileInfo:
    """What the index keeps of one readable file (no dataset, to keep memory small)."""

    path: Path
    sop_class: str
    sop_instance: str
    series_uid: str
    study_uid: str
    patient_id: str
    for_uid: str
    modality: str
    series_number: int | None
    description: str
    image_type: tuple[str, ...]
    manufacturer: str
    transfer_syntax: str
    slice_thickness: float | None
    rows: int | None
    cols: int | None
    photometric: str
    samples: int | None
    n_frames: int
    multiframe: bool
    has_pixels: bool
    frames: list[FrameHeader] = field(default_factory=list)
    frames_error: DicomError | None = None


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
        where = Path(exc.filename).relative_to(root) if exc.filename else "?"
        logger.warning("cannot list folder %s (%s); its files are not indexed", where,
                       type(exc).__name__)

    for folder, dirs, files in os.walk(root, followlinks=False, onerror=unreadable):
        here = Path(folder)
        kept = []
        for d in sorted(dirs):
            if d.startswith("."):
                continue
            if (here / d).is_symlink():
                logger.info("not following symbolic link to a folder: %s",
                            (here / d).relative_to(root))
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
    groups: dict[str, list[_FileInfo]] = defaultdict(list)
    broken: dict[str, list[tuple[Path, str]]] = defaultdict(list)
    singles: list[SeriesRecord] = []
    for raw_path in paths:
        path = Path(raw_path)
        try:
            info = _file_info(path)
        except InputFileError as exc:
            logger.info("unreadable file %s: %s", path.name, exc.reason)
            uid = exc.series_uid if isinstance(exc, TruncatedFileError) else ""
            if uid:
                broken[uid].append((path, str(exc)))
            else:
                status = (f"excluded:{NON_DICOM_REASON}"
                          if exc.reason == "not-dicom" and _known_non_dicom(path)
                          else f"failed:{exc.reason}")
                singles.append(SeriesRecord(series_uid="", status=status,
                                            files=(path,), n_instances=1, message=str(exc)))
            continue
        if info.sop_class == DICOMDIR_SOP_CLASS:
            singles.append(_single(info, "excluded:dicomdir", "DICOMDIR (media directory)"))
        elif not info.series_uid:
            singles.append(_single(info, "failed:missing-series-uid",
                                   f"{path.name}: no SeriesInstanceUID (0020,000E)"))
        else:
            groups[info.series_uid].append(info)
    series = [_series_record(uid, sorted(groups.get(uid, []), key=lambda i: str(i.path)),
                             sorted(broken.get(uid, [])), settings)
              for uid in sorted(set(groups) | set(broken))]
    series.sort(key=lambda r: (r.patient_id, r.study_uid, r.series_number or 0, r.series_uid))
    singles.sort(key=lambda r: str(r.files[0]))
    return series + singles


def _file_info(path: Path) -> _FileInfo:
    ds, has_pixels = read_header(path)
    with quiet_pydicom(path):
        try:
            return _summarise(ds, path, has_pixels)
        except Exception as exc:  # a value pydicom parsed but radflow cannot use: record it
            raise InputFileError(f"{path.name}: header cannot be interpreted "
                                 f"({type(exc).__name__})", reason="unreadable") from exc


def _summarise(ds: Dataset, path: Path, has_pixels: bool) -> _FileInfo:
    sop_class = sop_class_uid(ds)
    n_frames = number_of_frames(ds)
    info = _FileInfo(
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


def _where(path: Path) -> str:
    """Folder and file name, enough to tell files of one series apart in a message."""
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _single(info: _FileInfo, status: str, message: str) -> SeriesRecord:
    return SeriesRecord(series_uid="", status=status, files=(info.path,), n_instances=1,
                        patient_id=info.patient_id, study_uid=info.study_uid,
                        sop_class_uid=info.sop_class, modality=info.modality, message=message)


def _series_status(infos: list[_FileInfo], frames: list[FrameHeader],
                   settings: CrawlSettings) -> tuple[str, str]:
    """(status, message) of a series from everything but the geometry check."""
    first = infos[0]
    if not any(is_image_sop_class(i.sop_class) for i in infos):
        return (f"excluded:{non_image_reason(first.modality, first.sop_class)}",
                f"non-image SOP class {first.sop_class}")
    for attr, label in (("sop_class", "SOPClassUID"), ("modality", "Modality"),
                        ("patient_id", "PatientID"), ("study_uid", "StudyInstanceUID"),
                        ("for_uid", "FrameOfReferenceUID")):
        odd = [i for i in infos if getattr(i, attr) != getattr(first, attr)]
        if odd:
            return ("failed:inconsistent-series",
                    f"{label} differs within the series: {_where(odd[0].path)} vs "
                    f"{_where(first.path)}")
    seen: dict[str, Path] = {}
    for i in infos:
        if i.sop_instance and i.sop_instance in seen:
            return ("failed:duplicate-instance",
                    f"{_where(i.path)} and {_where(seen[i.sop_instance])} hold the same "
                    "SOPInstanceUID")
        seen[i.sop_instance] = i.path
    if any("LOCALIZER" in i.image_type for i in infos):
        return "excluded:localizer", "ImageType (0008,0008) contains LOCALIZER"
    if first.modality not in settings.image_modalities:
        return (f"excluded:modality-{slug(first.modality) or 'unknown'}",
                f"modality {first.modality or '(none)'} not in image_modalities")
    for i in infos:
        if not i.has_pixels:
            return "failed:missing-pixel-data", f"{i.path.name}: no Pixel Data (7FE0,0010)"
        if i.samples not in (None, 1) or i.photometric not in ("MONOCHROME1", "MONOCHROME2"):
            return ("failed:unsupported-photometric",
                    f"{i.path.name}: PhotometricInterpretation {i.photometric or '(none)'} with "
                    f"{i.samples} sample(s) per pixel; only MONOCHROME1/2 is supported")
        if i.frames_error is not None:
            return f"failed:{i.frames_error.reason}", str(i.frames_error)
    try:
        check_rescale(frames)
    except DicomError as exc:
        return f"failed:{exc.reason}", str(exc)
    if len(frames) < settings.geometry.min_slices:
        return ("excluded:too-few-slices",
                f"{len(frames)} slice(s), fewer than min_slices {settings.geometry.min_slices}")
    return "ok", ""


def _series_record(uid: str, infos: list[_FileInfo], broken: list[tuple[Path, str]],
                   settings: CrawlSettings) -> SeriesRecord:
    files = tuple(sorted([i.path for i in infos] + [p for p, _ in broken], key=str))
    if not infos:
        return SeriesRecord(series_uid=uid, status="failed:truncated", files=files,
                            n_instances=len(files), message=broken[0][1])
    first = infos[0]
    frames = [f for i in infos for f in i.frames]
    if broken:
        status, message = "failed:truncated", f"{len(broken)} truncated file(s): {broken[0][1]}"
    else:
        status, message = _series_status(infos, frames, settings)
    spacing = origin = None
    orientation = frames[0].orientation if frames else None
    if status == "ok":
        try:
            geometry = frames_geometry(frames, settings.geometry, first.slice_thickness)
        except SeriesGeometryError as exc:
            status, message = f"failed:{exc.reason}", str(exc)
        else:
            spacing, origin, orientation = geometry.spacing, geometry.origin, geometry.orientation
    if status != "ok":
        logger.info("series %s: %s (%s)", first.path.parent.name, status, message)
    is_image = bool(frames) or any(is_image_sop_class(i.sop_class) for i in infos)
    return SeriesRecord(
        series_uid=first.series_uid,
        status=status,
        files=files,
        n_instances=len(files),
        patient_id=first.patient_id,
        study_uid=first.study_uid,
        frame_of_reference_uid=first.for_uid,
        sop_class_uid=first.sop_class,
        modality=first.modality,
        series_number=first.series_number,
        series_description=first.description,
        image_type=first.image_type,
        manufacturer=first.manufacturer,
        transfer_syntax_uid=first.transfer_syntax,
        slice_thickness=first.slice_thickness,
        rows=first.rows if is_image else None,
        cols=first.cols if is_image else None,
        n_slices=len(frames) if is_image else None,
        spacing=spacing,
        orientation=(orientation if orientation is not None
                     and all(v == v for v in orientation) else None),
        origin=origin,  # type: ignore[arg-type]
        multiframe=any(i.multiframe for i in infos),
        message=message,
    )


__all__ = ["SeriesRecord", "find_candidate_files", "index_files"]
