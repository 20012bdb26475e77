"""Per-slice geometry and rescale of image objects, and the geometry check on them.

:func:`frame_headers` gives one :class:`FrameHeader` per slice: from the top-level attributes of a
single-frame image, per frame of an enhanced multi-frame image from its functional groups
(Plane Position, Plane Orientation, Pixel Measures, Pixel Value Transformation; per-frame wins over
shared, shared over top level), or per frame of a classic multi-frame object as
:mod:`radflow.dicom.multiframe` decides. :func:`frames_geometry` runs the one geometry check
(:func:`radflow.dicom.geometry.check_series_geometry`) on them; the crawl (headers only) and the
convert stage (full read) both call it.

Messages name slices by the position of their file in the series' sorted file list and their
frame number (``file 3 of 120``, ``file 1 of 1, frame 7``; :mod:`radflow.dicom.naming`), never
by file name.

A Siemens mosaic (:mod:`radflow.dicom.mosaic`) gives one :class:`FrameHeader` per tile: ``frame``
is the tile index, ``rows`` / ``cols`` the tile size and ``mosaic_tiles`` the number of tiles, so
that the crawl, the 4-D split and the convert stage treat the tiles as the slices of a volume.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from radflow.dicom.dimensions import FrameDimensions, frame_dimensions, top_level_dimensions
from radflow.dicom.geometry import SeriesGeometry, check_series_geometry
from radflow.dicom.headers import (
    get_float,
    get_floats,
    get_int,
    get_str,
    get_value,
    number_of_frames,
)
from radflow.dicom.mosaic import is_mosaic, mosaic_layout
from radflow.dicom.multiframe import classic_frame_geometry
from radflow.dicom.naming import file_labels, frame_label
from radflow.errors import DicomError
from radflow.settings import GeometrySettings


@dataclass(frozen=True)
class FrameHeader:
    """Geometry and rescale of one image slice (a single-frame file or one frame).

    Attributes
    ----------
    file
        The file holding the slice.
    frame
        0-based frame index in a multi-frame file; ``None`` for a single-frame file.
    position
        ImagePositionPatient (LPS, mm); NaN when missing.
    orientation
        ImageOrientationPatient (6 cosines); NaN when missing.
    pixel_spacing
        PixelSpacing ``(row spacing, column spacing)`` in mm; NaN when missing.
    rows, cols
        Rows and Columns (0 when missing).
    slope, intercept
        RescaleSlope / RescaleIntercept (1 / 0 when absent, NaN when present but malformed).
    rescale_type
        RescaleType ("" when absent), e.g. ``HU``, ``US``.
    sop_instance
        SOPInstanceUID of the file.
    dims
        Echo, b-value, time point and acquisition of the slice (4-D splits).
    position_source
        ``""`` when the position is read from the file for this slice; else how it was derived
        (a key of :data:`radflow.dicom.multiframe.POSITION_SOURCES`).
    mosaic_tiles
        For a tile of a Siemens mosaic, the number of tiles in its mosaic (``frame`` is the
        tile index); 0 otherwise.
    acquisition_matrix
        The largest value of AcquisitionMatrix (0018,1310), the acquired matrix before
        reconstruction (0 when absent); for plausibility checks.
    """

    file: Path
    frame: int | None
    position: tuple[float, float, float]
    orientation: tuple[float, ...]
    pixel_spacing: tuple[float, float]
    rows: int
    cols: int
    slope: float
    intercept: float
    rescale_type: str = ""
    sop_instance: str = ""
    dims: FrameDimensions = field(default_factory=FrameDimensions)
    position_source: str = ""
    mosaic_tiles: int = 0
    acquisition_matrix: int = 0


def frame_labels(frames: Sequence[FrameHeader], where: Mapping[Path, str] | None = None) \
        -> list[str]:
    """How messages name each slice: ``where[file]`` (default: the position of the file in the
    sorted files of ``frames``), with the frame number for multi-frame files."""
    if where is None:
        where = file_labels(f.file for f in frames)
    return [frame_label(where.get(f.file, "a file"), f.frame) for f in frames]


def _fg_item(group: Any, sequence: str) -> Dataset | None:
    """First item of ``sequence`` inside a functional group item, or ``None``."""
    if group is None:
        return None
    seq = get_value(group, sequence)
    return seq[0] if seq else None


def _from_groups(groups: Sequence[Dataset | None], sequence: str, keyword: str,
                 getter: Callable[[Dataset, str], Any]) -> Any:
    for group in groups:
        item = _fg_item(group, sequence)
        if item is not None:
            value = getter(item, keyword)
            if value is not None:
                return value
    return None


def _rescale(ds: Dataset, keyword: str) -> float | None:
    """A rescale value: ``None`` when absent or empty, NaN when present but not a finite number."""
    value = get_value(ds, keyword)
    if value is None or value == "":
        return None
    number = get_float(ds, keyword)
    return math.nan if number is None else number


def frame_headers(ds: Dataset, path: str | os.PathLike[str]) -> list[FrameHeader]:
    """Per-slice geometry and rescale of an image object.

    Single-frame objects give one :class:`FrameHeader` from the top-level attributes. Enhanced
    multi-frame objects give one per frame from the per-frame and shared functional groups
    (Plane Position, Plane Orientation, Pixel Measures, Pixel Value Transformation; per-frame
    wins over shared, shared over top level). Classic multi-frame objects (no per-frame
    functional groups) give one per frame as :func:`radflow.dicom.multiframe.
    classic_frame_geometry` decides.

    A Siemens mosaic (ImageType ``MOSAIC``) gives one per tile, placed as
    :func:`radflow.dicom.mosaic.mosaic_layout` decides. A mosaic file is one volume: when it has
    no TemporalPositionIdentifier its InstanceNumber serves as its time point, so that the
    mosaics of a series split into volumes ``_t01``, ``_t02`` ... like any 4-D series.

    Raises
    ------
    DicomError
        ``unsupported-multiframe`` (per-frame functional groups that do not match the number of
        frames, or a classic multi-frame object whose frames cannot be placed: the message names
        the missing attributes), ``nm-projection`` and ``cine-no-geometry`` (kind
        ``excluded``), ``mosaic-unreadable`` (a mosaic whose tiles cannot be placed). Messages
        name no file.
    """
    path = Path(path)
    rows, cols = get_int(ds, "Rows") or 0, get_int(ds, "Columns") or 0
    n_frames = number_of_frames(ds)
    per_frame = get_value(ds, "PerFrameFunctionalGroupsSequence")
    shared_seq = get_value(ds, "SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    top = top_level_dimensions(ds)
    if is_mosaic(ds):
        return _mosaic_frames(path, ds, _frame(path, None, ds, [shared], rows, cols, top))
    if n_frames == 1 and not per_frame:
        return [_frame(path, None, ds, [shared], rows, cols, top)]
    if not per_frame:
        return _classic_frames(path, ds, n_frames, shared, rows, cols, top)
    if len(per_frame) != n_frames:
        raise DicomError(
            f"multi-frame object with {n_frames} frames and {len(per_frame)} per-frame "
            "functional group items (PerFrameFunctionalGroupsSequence (5200,9230)); one item "
            "per frame is needed", reason="unsupported-multiframe")
    return [_frame(path, k, ds, [per_frame[k], shared], rows, cols, top)
            for k in range(n_frames)]


def _classic_frames(path: Path, ds: Dataset, n_frames: int, shared: Dataset | None, rows: int,
                    cols: int, top: FrameDimensions) -> list[FrameHeader]:
    geometry = classic_frame_geometry(ds, n_frames, shared)
    base = _frame(path, 0, ds, [shared], rows, cols, top)
    out = []
    for k, position in enumerate(geometry.positions):
        dims = top
        if geometry.time_points is not None:
            dims = replace(top, temporal_position=geometry.time_points[k])
        out.append(replace(base, frame=k, position=position, orientation=geometry.orientation,
                           pixel_spacing=geometry.pixel_spacing, dims=dims,
                           position_source=geometry.source))
    return out


def _mosaic_frames(path: Path, ds: Dataset, base: FrameHeader) -> list[FrameHeader]:
    """One slice per tile of a Siemens mosaic (``base``: the file read as one image)."""
    layout = mosaic_layout(ds)
    dims = base.dims
    if dims.temporal_position is None:
        dims = replace(dims, temporal_position=get_int(ds, "InstanceNumber"))
    return [replace(base, frame=k, position=position, rows=layout.tile_rows,
                    cols=layout.tile_cols, dims=dims, mosaic_tiles=layout.n_tiles)
            for k, position in enumerate(layout.positions)]


def _acquisition_matrix(ds: Dataset) -> int:
    """The largest value of AcquisitionMatrix (0 when absent or malformed)."""
    values = get_floats(ds, "AcquisitionMatrix")
    return int(max(values)) if values else 0


def _frame(path: Path, frame: int | None, ds: Dataset, groups: list[Dataset | None], rows: int,
           cols: int, top: FrameDimensions) -> FrameHeader:
    def pick(sequence: str, keyword: str, n: int) -> tuple[float, ...]:
        value = _from_groups(groups, sequence, keyword, lambda d, k: get_floats(d, k, n))
        if value is None:
            value = get_floats(ds, keyword, n)
        return value if value is not None else (math.nan,) * n

    slope = _from_groups(groups, "PixelValueTransformationSequence", "RescaleSlope", _rescale)
    intercept = _from_groups(groups, "PixelValueTransformationSequence", "RescaleIntercept",
                             _rescale)
    if slope is None:
        slope = _rescale(ds, "RescaleSlope")
    if intercept is None:
        intercept = _rescale(ds, "RescaleIntercept")
    rescale_type = _from_groups(groups, "PixelValueTransformationSequence", "RescaleType",
                                lambda d, k: get_str(d, k) or None) or get_str(ds, "RescaleType")
    return FrameHeader(
        file=path,
        frame=frame,
        position=pick("PlanePositionSequence", "ImagePositionPatient", 3),  # type: ignore[arg-type]
        orientation=pick("PlaneOrientationSequence", "ImageOrientationPatient", 6),
        pixel_spacing=pick("PixelMeasuresSequence", "PixelSpacing", 2),  # type: ignore[arg-type]
        rows=rows,
        cols=cols,
        slope=1.0 if slope is None else slope,
        intercept=0.0 if intercept is None else intercept,
        rescale_type=rescale_type.upper(),
        sop_instance=get_str(ds, "SOPInstanceUID"),
        dims=frame_dimensions(ds, groups, top),
        acquisition_matrix=_acquisition_matrix(ds),
    )


def frames_geometry(frames: Sequence[FrameHeader], settings: GeometrySettings,
                    single_slice_spacing: float | None = None,
                    where: Mapping[Path, str] | None = None) -> SeriesGeometry:
    """Run the one geometry check on slices; ``order`` indexes ``frames``.

    ``where`` names each file in messages (default: its position among the files of
    ``frames``; see :func:`frame_labels`).

    Raises
    ------
    SeriesGeometryError
        See :func:`radflow.dicom.geometry.check_series_geometry`.
    """
    return check_series_geometry(
        np.array([f.position for f in frames], dtype=float).reshape(-1, 3),
        np.array([f.orientation for f in frames], dtype=float).reshape(-1, 6),
        np.array([f.pixel_spacing for f in frames], dtype=float).reshape(-1, 2),
        np.array([(f.rows, f.cols) for f in frames], dtype=np.int64).reshape(-1, 2),
        settings,
        labels=frame_labels(frames, where),
        single_slice_spacing=single_slice_spacing,
    )


def check_rescale(frames: Sequence[FrameHeader], where: Mapping[Path, str] | None = None) -> None:
    """Check every slice's rescale: finite slope (not 0) and intercept, one RescaleType.

    Slices without RescaleType do not conflict with slices that have one. ``where`` names each
    file in messages, as for :func:`frames_geometry`.

    Raises
    ------
    DicomError
        ``invalid-rescale`` (RescaleSlope/Intercept malformed or slope 0) or
        ``inconsistent-rescale-type`` (e.g. HU and US in one series), naming the first
        offending slice.
    """
    labels = frame_labels(frames, where)
    for f, label in zip(frames, labels, strict=True):
        if not (math.isfinite(f.slope) and math.isfinite(f.intercept)) or f.slope == 0:
            raise DicomError(f"{label}: RescaleSlope (0028,1053) / RescaleIntercept (0028,1052) "
                             "not a finite number (or slope 0)", reason="invalid-rescale")
    typed = [k for k, f in enumerate(frames) if f.rescale_type]  # absent = the default unit
    first = typed[0] if typed else 0
    odd = next((k for k in typed if frames[k].rescale_type != frames[first].rescale_type), None)
    if odd is not None:
        raise DicomError(f"{labels[odd]}: RescaleType (0028,1054) {frames[odd].rescale_type} "
                         f"differs from {labels[first]} ({frames[first].rescale_type})",
                         reason="inconsistent-rescale-type")


__all__ = ["FrameHeader", "check_rescale", "frame_headers", "frame_labels", "frames_geometry"]
