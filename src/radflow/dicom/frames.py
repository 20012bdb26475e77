"""Per-slice geometry and rescale of image objects, and the geometry check on them.

:func:`frame_headers` gives one :class:`FrameHeader` per slice: from the top-level attributes of a
single-frame image, or per frame of an enhanced multi-frame image from its functional groups
(Plane Position, Plane Orientation, Pixel Measures, Pixel Value Transformation; per-frame wins over
shared, shared over top level). :func:`frames_geometry` runs the one geometry check
(:func:`radflow.dicom.geometry.check_series_geometry`) on them; the crawl (headers only) and the
convert stage (full read) both call it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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

    @property
    def label(self) -> str:
        """File name, with the frame number for multi-frame files (for messages)."""
        name = self.file.name
        return name if self.frame is None else f"{name}[frame {self.frame + 1}]"


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

    Single-frame objects give one :class:`FrameHeader` from the top-level attributes. Multi-frame
    objects give one per frame from the per-frame and shared functional groups (Plane Position,
    Plane Orientation, Pixel Measures, Pixel Value Transformation; per-frame wins over shared,
    shared over top level).

    Raises
    ------
    DicomError
        ``unsupported-multiframe`` for a multi-frame object without per-frame plane positions
        (classic NM/US/XA/SC multi-frame).
    """
    path = Path(path)
    rows, cols = get_int(ds, "Rows") or 0, get_int(ds, "Columns") or 0
    n_frames = number_of_frames(ds)
    per_frame = get_value(ds, "PerFrameFunctionalGroupsSequence")
    shared_seq = get_value(ds, "SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    top = top_level_dimensions(ds)
    if n_frames == 1 and not per_frame:
        return [_frame(path, None, ds, [shared], rows, cols, top)]
    if not per_frame or len(per_frame) != n_frames:
        raise DicomError(
            f"{path.name}: multi-frame object with {n_frames} frames and "
            f"{len(per_frame) if per_frame else 0} per-frame functional group items; only "
            "enhanced objects with per-frame plane positions are supported",
            reason="unsupported-multiframe")
    return [_frame(path, k, ds, [per_frame[k], shared], rows, cols, top)
            for k in range(n_frames)]


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
    )


def frames_geometry(frames: Sequence[FrameHeader], settings: GeometrySettings,
                    single_slice_spacing: float | None = None) -> SeriesGeometry:
    """Run the one geometry check on slices; ``order`` indexes ``frames``.

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
        labels=[f.label for f in frames],
        single_slice_spacing=single_slice_spacing,
    )


def check_rescale(frames: Sequence[FrameHeader]) -> None:
    """Check every slice's rescale: finite slope (not 0) and intercept, one RescaleType.

    Slices without RescaleType do not conflict with slices that have one.

    Raises
    ------
    DicomError
        ``invalid-rescale`` (RescaleSlope/Intercept malformed or slope 0) or
        ``inconsistent-rescale-type`` (e.g. HU and US in one series), naming the first
        offending slice.
    """
    for f in frames:
        if not (math.isfinite(f.slope) and math.isfinite(f.intercept)) or f.slope == 0:
            raise DicomError(f"{f.label}: RescaleSlope (0028,1053) / RescaleIntercept (0028,1052) "
                             "not a finite number (or slope 0)", reason="invalid-rescale")
    typed = [f for f in frames if f.rescale_type]  # absent = the modality's default unit
    odd = next((f for f in typed if f.rescale_type != typed[0].rescale_type), None)
    if odd is not None:
        raise DicomError(f"{odd.label}: RescaleType (0028,1054) {odd.rescale_type} differs from "
                         f"{typed[0].label} ({typed[0].rescale_type})",
                         reason="inconsistent-rescale-type")


__all__ = ["FrameHeader", "check_rescale", "frame_headers", "frames_geometry"]
