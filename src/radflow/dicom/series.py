"""The series rules of the crawl: from the files of one SeriesInstanceUID to its records.

Checks, first match wins (reasons: :mod:`radflow.dicom.reasons`):

1. ``failed:truncated`` / ``failed:unreadable-private-data`` (a file of the series can be read
   only in part);
2. ``excluded:non-image-*``; ``failed:inconsistent-series`` (SOP class, modality, patient, study
   or frame of reference differ between files);
3. ``excluded:localizer``, ``excluded:derived`` / ``excluded:secondary-capture`` (unless
   ``crawl.include_derived``), ``excluded:modality-*``;
4. files sharing a SOPInstanceUID: identical copies are read once, different ones are
   ``failed:conflicting-duplicates`` (:mod:`radflow.dicom.duplicates`);
5. ``failed:missing-pixel-data``, ``failed:unsupported-photometric`` (a colour series is
   ``ok`` with QC ``colour-image``: :mod:`radflow.dicom.colour`), the multi-frame decisions of
   :mod:`radflow.dicom.multiframe` (``failed:unsupported-multiframe``,
   ``excluded:nm-projection``, ``excluded:cine-no-geometry``; frames placed by an assumption
   get QC ``frame-positions-assumed``), ``failed:invalid-rescale``,
   ``failed:inconsistent-rescale-type``;
6. slices sharing positions: split into volumes by echo / b-value / time point / acquisition
   (:mod:`radflow.dicom.dimensions`; one record per volume, ``split`` = ``_e2`` ...), else
   ``excluded:ambiguous-split``; with nothing to split by, identical slices are read once and
   different ones are ``failed:conflicting-duplicates``;
7. per volume: ``excluded:too-few-slices``, then the geometry check shared with the convert stage
   (:func:`radflow.dicom.frames.frames_geometry`), which may plan a resampling when the cohort's
   policy allows it; a grid no scanner acquires gets a QC warning
   (:mod:`radflow.dicom.plausibility`).

A Siemens mosaic file gives one slice per tile (:mod:`radflow.dicom.mosaic`), and its
InstanceNumber is its time point, so a mosaic series splits into one volume per file (``_t01``
...); a mosaic whose tiles cannot be placed fails its series with ``failed:mosaic-unreadable``.
``n_slices`` counts slice positions (several echoes or time points at one position are one),
and ``rows`` / ``cols`` are those of a slice (a mosaic's tile).

Messages name files by their position in the series' sorted file list (``file 3 of 120``),
never by file or folder name (:mod:`radflow.dicom.naming`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from radflow.dicom.colour import COLOUR_REASON, check_same_kind, pixel_kind
from radflow.dicom.dimensions import plan_split
from radflow.dicom.duplicates import resolve_duplicate_instances, resolve_same_position
from radflow.dicom.frames import FrameHeader, check_rescale, frames_geometry
from radflow.dicom.multiframe import POSITION_SOURCES
from radflow.dicom.naming import file_labels, uid_name
from radflow.dicom.plausibility import extent_qc
from radflow.dicom.reasons import reason_kind
from radflow.dicom.records import FileInfo, SeriesRecord
from radflow.dicom.resample import resampled_label
from radflow.dicom.sopclass import (
    is_image_sop_class,
    is_secondary_capture,
    non_image_message,
    non_image_reason,
    slug,
)
from radflow.errors import DicomError, SeriesGeometryError
from radflow.records.status import Status
from radflow.settings import CrawlSettings

logger = logging.getLogger(__name__)

#: ImageType values that mark a localizer / scout / topogram.
LOCALIZER_TYPES = frozenset({"LOCALIZER", "SCOUT", "TOPOGRAM"})


def _status(reason: str) -> str:
    return f"{reason_kind(reason) or 'failed'}:{reason}"


def position_key(frame: FrameHeader) -> Hashable | None:
    """Position and orientation rounded to 0.01 mm / 1e-4 (``None`` when missing)."""
    values = (*frame.position, *frame.orientation)
    if not all(math.isfinite(v) for v in values):
        return None
    return (tuple(round(v, 2) for v in frame.position),
            tuple(round(v, 4) for v in frame.orientation))


def n_positions(frames: Sequence[FrameHeader]) -> int:
    """Distinct slice positions of ``frames`` (the number of frames when a position is
    missing)."""
    keys = [position_key(f) for f in frames]
    return len(frames) if None in keys else len(set(keys))


def build_records(uid: str, infos: Sequence[FileInfo],
                  broken: Sequence[tuple[Path, str, str]],
                  settings: CrawlSettings) -> list[SeriesRecord]:
    """The records of one SeriesInstanceUID (one per volume; see the module notes).

    Parameters
    ----------
    uid
        The SeriesInstanceUID.
    infos
        Its readable files, sorted by path.
    broken
        ``(path, message, reason)`` of its files that could be read only in part (``truncated``,
        ``unreadable-private-data``): the series fails with the first one's reason.
    """
    all_files = tuple(sorted([i.path for i in infos] + [b[0] for b in broken], key=str))
    where = file_labels(all_files)
    if broken:
        path, message, reason = broken[0]
        message = (f"{len(broken)} file(s) readable only in part; first {where[path]}: "
                   f"{message}")
        if not infos:
            logger.info("series of %d file(s): failed:%s (%s)", len(all_files), reason, message)
            return [SeriesRecord(series_uid=uid, status=str(Status.of_reason(reason)),
                                 files=all_files,
                                 n_instances=len(all_files), message=message)]
        return [_Builder(uid, list(infos), all_files, where).record(str(Status.of_reason(reason)),
                                                                     message)]
    builder = _Builder(uid, list(infos), all_files, where)
    try:
        _check_class(builder.infos, where)
        _check_exclusions(builder.infos, settings)
        kept, n_copies = resolve_duplicate_instances(builder.infos, where)
        if n_copies:
            builder.qc.add("duplicate-files-ignored")
            builder.infos = kept
            builder.files = tuple(sorted((i.path for i in kept), key=str))
        if _check_content(builder.infos, where) == "colour":
            builder.qc.add(COLOUR_REASON)
        frames = [f for i in builder.infos for f in i.frames]
        if any(POSITION_SOURCES.get(f.position_source, (False,))[0] for f in frames):
            builder.qc.add("frame-positions-assumed")
        check_rescale(frames, where)
        groups = _groups(frames, builder, where, settings)
    except DicomError as exc:
        return [builder.record(_status(exc.reason), str(exc))]
    return [builder.volume(suffix, group, settings) for suffix, group in groups]


def _check_class(infos: Sequence[FileInfo], where: dict[Path, str]) -> None:
    first = infos[0]
    if not any(is_image_sop_class(i.sop_class) for i in infos):
        raise DicomError(non_image_message(first.sop_class),
                         reason=non_image_reason(first.modality, first.sop_class))
    for attr, label in (("sop_class", "SOPClassUID"), ("modality", "Modality"),
                        ("patient_id", "PatientID"), ("study_uid", "StudyInstanceUID"),
                        ("for_uid", "FrameOfReferenceUID")):
        odd = [i for i in infos if getattr(i, attr) != getattr(first, attr)]
        if odd:
            raise DicomError(f"{label} differs within the series: {where[odd[0].path]} vs "
                             f"{where[first.path]}", reason="inconsistent-series")


def _check_exclusions(infos: Sequence[FileInfo], settings: CrawlSettings) -> None:
    first = infos[0]
    found = sorted({t for i in infos for t in i.image_type} & LOCALIZER_TYPES)
    if found:
        raise DicomError(f"ImageType (0008,0008) contains {found[0]}", reason="localizer")
    if not settings.include_derived:
        if is_secondary_capture(first.sop_class):
            raise DicomError(f"SOP class {uid_name(first.sop_class)} is a Secondary Capture",
                             reason="secondary-capture")
        if any(i.image_type[:1] == ("DERIVED",) for i in infos):
            raise DicomError("ImageType (0008,0008) value 1 is DERIVED", reason="derived")
    if first.modality not in settings.image_modalities:
        raise DicomError(f"modality {first.modality or '(none)'} not in image_modalities",
                         reason=f"modality-{slug(first.modality) or 'unknown'}")


def _check_content(infos: Sequence[FileInfo], where: dict[Path, str]) -> str:
    """Pixel data present, a supported photometric interpretation (one kind for the whole
    series), frames that can be placed; return the series' pixel kind (``mono`` / ``colour``)."""
    first_kind = "mono"
    for k, i in enumerate(infos):
        if not i.has_pixels:
            raise DicomError(f"{where[i.path]}: no Pixel Data (7FE0,0010)",
                             reason="missing-pixel-data")
        try:
            kind = pixel_kind(i.photometric, i.samples, i.bits_allocated)
        except DicomError as exc:
            raise DicomError(f"{where[i.path]}: {exc}", reason=exc.reason) from None
        first_kind = kind if k == 0 else first_kind
        check_same_kind(kind, where[i.path], first_kind, where[infos[0].path])
        if i.frames_error is not None:
            raise DicomError(f"{where[i.path]}: {i.frames_error}",
                             reason=i.frames_error.reason) from None
    return first_kind


def _groups(frames: list[FrameHeader], builder: _Builder, where: dict[Path, str],
            settings: CrawlSettings) -> list[tuple[str, list[FrameHeader]]]:
    """Split into volumes, or drop identical duplicate slices; ``[("", frames)]`` otherwise."""
    keys = [position_key(f) for f in frames]
    if None in keys or len(set(keys)) == len(keys):
        return [("", frames)]
    plan = plan_split(keys, [f.dims for f in frames])
    if plan is None:
        kept, n_dropped = resolve_same_position(frames, keys, where)
        if n_dropped:
            builder.qc.add("duplicate-slices-ignored")
        kept_frames = [frames[i] for i in kept]
        builder.files = tuple(sorted({f.file for f in kept_frames}, key=str))
        return [("", kept_frames)]
    groups = [(suffix, [frames[i] for i in idx]) for suffix, idx in plan.groups]
    if all(len(g) < settings.geometry.min_slices for _, g in groups):
        raise DicomError(
            f"{len(frames)} images at {len(set(keys))} position(s) form {len(groups)} volumes "
            f"by {' and '.join(plan.axes)}, each with fewer than min_slices "
            f"{settings.geometry.min_slices} slices", reason="too-few-slices")
    logger.info("series split by %s into %d volumes", " and ".join(plan.axes), len(groups))
    return groups


class _Builder:
    """Shared fields of the records of one series."""

    def __init__(self, uid: str, infos: list[FileInfo], files: tuple[Path, ...],
                 where: dict[Path, str]) -> None:
        self.uid = uid
        self.infos = infos
        self.files = files
        self.all_files = files
        self.where = where
        self.qc: set[str] = {c for i in infos for c in i.qc}

    def record(self, status: str, message: str, **fields: Any) -> SeriesRecord:
        first = self.infos[0]
        frames = [f for i in self.infos for f in i.frames]
        is_image = bool(frames) or any(is_image_sop_class(i.sop_class) for i in self.infos)
        orientation = frames[0].orientation if frames else None
        rows, cols = (frames[0].rows, frames[0].cols) if frames else (first.rows, first.cols)
        positions = n_positions(frames)
        values: dict[str, Any] = dict(
            series_uid=self.uid, status=status, files=self.files, n_instances=len(self.files),
            patient_id=first.patient_id, study_uid=first.study_uid,
            frame_of_reference_uid=first.for_uid, sop_class_uid=first.sop_class,
            modality=first.modality, series_number=first.series_number,
            series_description=first.description, image_type=first.image_type,
            manufacturer=first.manufacturer, transfer_syntax_uid=first.transfer_syntax,
            slice_thickness=first.slice_thickness,
            rows=rows if is_image else None, cols=cols if is_image else None,
            n_slices=positions if is_image else None,
            orientation=(orientation if orientation is not None
                         and all(v == v for v in orientation) else None),
            multiframe=any(i.multiframe for i in self.infos), message=message,
            qc=tuple(sorted(self.qc | extent_qc(frames, first.modality, positions))))
        values.update(fields)
        values["ignored"] = tuple(sorted(set(self.all_files) - set(self.files), key=str))
        if status != "ok":
            logger.info("series of %d file(s)%s: %s (%s)", values["n_instances"],
                        values.get("split", ""), status, message)
        return SeriesRecord(**values)

    def volume(self, suffix: str, frames: list[FrameHeader], settings: CrawlSettings) \
            -> SeriesRecord:
        """The record of one volume (the whole series, or one group of a split)."""
        files = tuple(sorted({f.file for f in frames}, key=str)) if suffix else self.files
        per_file = None
        if suffix:
            chosen: dict[Path, list[int]] = {}
            for f in frames:
                if f.frame is not None:
                    chosen.setdefault(f.file, []).append(f.frame)
            per_file = tuple(tuple(sorted(chosen[p])) if p in chosen else None for p in files)
            per_file = per_file if any(f is not None for f in per_file) else None
        positions = n_positions(frames)
        fields: dict[str, Any] = dict(files=files, n_instances=len(files), split=suffix,
                                      frames=per_file, n_slices=positions,
                                      qc=tuple(sorted(self.qc | extent_qc(
                                          frames, self.infos[0].modality, positions))))
        if len(frames) < settings.geometry.min_slices:
            return self.record(str(Status.failed("too-few-slices")),
                               f"{len(frames)} slice(s), fewer than min_slices "
                               f"{settings.geometry.min_slices}", **fields)
        try:
            geometry = frames_geometry(frames, settings.geometry,
                                       self.infos[0].slice_thickness, self.where)
        except SeriesGeometryError as exc:
            return self.record(str(Status.of_reason(exc.reason)), str(exc), **fields)
        fields.update(rows=geometry.rows, cols=geometry.cols, n_slices=geometry.n_slices,
                      spacing=geometry.spacing, origin=geometry.origin,
                      orientation=geometry.orientation,
                      resampled=resampled_label(geometry.resampling))
        return self.record(str(Status.ok()), "", **fields)


__all__ = ["LOCALIZER_TYPES", "build_records", "n_positions", "position_key"]
