"""Plausibility of a volume's physical size: QC warnings for grids no scanner acquires.

A header can describe a regular grid that passes every geometry rule and still be wrong, e.g. a
Siemens mosaic that is not recognised as one (a 6 x 6 grid of 64 x 64 tiles read as one
384 x 384 slice spanning 1.25 m). Such volumes keep their status and get QC warnings
(:data:`radflow.dicom.reasons.QC_WARNINGS`):

``implausible-extent``
    The in-plane extent (Rows x row spacing or Columns x column spacing) exceeds
    :data:`MAX_IN_PLANE_EXTENT_MM` for the modality (:data:`DEFAULT_MAX_EXTENT_MM` for others).
``acquisition-matrix-mismatch``
    A single slice whose Rows and Columns are both at least :data:`MATRIX_RATIO` times the
    largest value of its AcquisitionMatrix (0018,1310): more than interpolation (x2) explains;
    typically several images tiled into one.

The values of a CT volume (after rescale) get QC warnings too (:func:`hu_qc`; thresholds and
their sources at :data:`HU_FLOOR` and :data:`HU_CEILING`):

``hu-out-of-range``
    Voxels below :data:`HU_FLOOR` or above :data:`HU_CEILING`, padding not counted.
``hu-rescale-suspect``
    With ``hu-out-of-range``: slices whose rescale is not what CT scanners write (slope 1,
    intercept in :data:`USUAL_CT_INTERCEPTS`, RescaleType ``HU`` or absent).
``padding-present``
    Voxels in the padding range of PixelPaddingValue (0028,0120) / PixelPaddingRangeLimit
    (0028,0121), or, without them, voxels at the volume's minimum when that is one of
    :data:`TYPICAL_PADDING_HU`.

Pure functions over :class:`~radflow.dicom.frames.FrameHeader` values and voxel arrays (no I/O).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from pydicom.dataset import Dataset

from radflow.dicom.frames import FrameHeader
from radflow.dicom.headers import get_int

#: Largest plausible in-plane extent (mm) per modality: CT up to extended-FOV reconstructions
#: (~800 mm), PET/NM up to whole-ring reconstructions (e.g. 400 x 2.04 mm = 815 mm), MR bores
#: image at most ~600 mm.
MAX_IN_PLANE_EXTENT_MM: dict[str, float] = {"CT": 850.0, "PT": 1000.0, "NM": 1000.0,
                                            "MR": 700.0}
#: For modalities not in :data:`MAX_IN_PLANE_EXTENT_MM`.
DEFAULT_MAX_EXTENT_MM = 700.0
#: Rows and Columns this many times the acquired matrix (or more) in a single slice are flagged.
MATRIX_RATIO = 3.0


def extent_qc(frames: Sequence[FrameHeader], modality: str, n_positions: int) -> set[str]:
    """QC codes for an implausible grid (see the module notes).

    Parameters
    ----------
    frames
        The slices of one volume (the first slice's grid is checked).
    modality
        The series' Modality.
    n_positions
        Number of distinct slice positions of the volume.
    """
    if not frames:
        return set()
    first = frames[0]
    codes: set[str] = set()
    row_spacing, col_spacing = first.pixel_spacing
    extent = max(first.rows * row_spacing, first.cols * col_spacing)
    limit = MAX_IN_PLANE_EXTENT_MM.get(modality.upper(), DEFAULT_MAX_EXTENT_MM)
    if math.isfinite(extent) and extent > limit:
        codes.add("implausible-extent")
    acquired = first.acquisition_matrix
    if (n_positions == 1 and acquired > 0
            and min(first.rows, first.cols) >= MATRIX_RATIO * acquired):
        codes.add("acquisition-matrix-mismatch")
    return codes


#: Lowest plausible CT value (HU): air is -1000 HU by definition and scanners store -1024 as
#: their lowest value (12-bit data: stored 0, intercept -1024); reconstructions that do not clip
#: leave noise in air a few tens of HU below that (pydicom's ``J2K_pixelrep_mismatch.dcm``, a
#: real CT, reaches -1047 HU). Lower values are padding, lossy-compression ringing around
#: padding, or a rescale error (e.g. an intercept applied twice: air at -2048 HU).
HU_FLOOR = -1100
#: Highest plausible CT value (HU): the top of the widest CT number scale scanners write, the
#: "extended range" -31743..31743 (GE Revolution CT user manual, 6.1 "CT Number"; the normal
#: 12-bit range is -1024..3071), used for metal, which the normal range clips at 3071. 31743 is
#: also int16's largest value with intercept -1024. Higher values come from a rescale or sign
#: error (e.g. padding -2000 read as unsigned: 63536 - 1024 = 62512 HU).
HU_CEILING = 31743
#: Values CT scanners write outside the reconstruction circle, in HU, when no PixelPaddingValue
#: says so: -3024 (stored -2000, intercept -1024; GE, e.g. pydicom's ``693_UNCR.dcm``) and
#: -2000 (stored -2000, intercept 0; pydicom's ``J2K_pixelrep_mismatch.dcm``).
TYPICAL_PADDING_HU: tuple[int, ...] = (-3024, -2000)
#: RescaleIntercept values CT scanners write (with RescaleSlope 1).
USUAL_CT_INTERCEPTS: tuple[float, ...] = (-1024.0, -1000.0, 0.0)
#: RescaleType values of CT in HU (``""``: absent, HU by default for CT).
USUAL_CT_RESCALE_TYPES: tuple[str, ...] = ("", "HU")
#: Voxels per block when counting (bounds the temporary boolean arrays to a few MB).
_BLOCK = 1 << 22


def padding_range(ds: Dataset, slope: float, intercept: float) -> tuple[float, float] | None:
    """PixelPaddingValue (0028,0120) .. PixelPaddingRangeLimit (0028,0121) of ``ds`` after the
    rescale ``slope`` / ``intercept`` (low, high), or ``None`` without a PixelPaddingValue.

    Both are stored values; a signed value written as unsigned (VR US, common) is read back as
    signed when PixelRepresentation is 1.
    """
    value = get_int(ds, "PixelPaddingValue")
    if value is None:
        return None
    limit = get_int(ds, "PixelPaddingRangeLimit")
    bits = get_int(ds, "BitsAllocated") or 16
    signed = get_int(ds, "PixelRepresentation") == 1
    ends = [v - 2 ** bits if signed and v >= 2 ** (bits - 1) else v
            for v in (value, value if limit is None else limit)]
    scaled = sorted(v * slope + intercept for v in ends)
    return scaled[0], scaled[1]


def hu_qc(voxels: np.ndarray, rescales: Sequence[tuple[float, float, str]],
          padding: tuple[float, float] | None = None) -> dict[str, int]:
    """QC warnings of a CT volume's values (see the module notes): code -> count.

    Cheap on the usual volume: one minimum and one maximum; voxels are counted (block by block,
    no copy of the volume) only when the extremes leave the plausible range or padding is
    declared.

    Parameters
    ----------
    voxels : numpy.ndarray, int16 or float32
        The volume after rescale (HU).
    rescales
        Per slice ``(RescaleSlope, RescaleIntercept, RescaleType)``.
    padding
        The padding range in HU (:func:`padding_range`), ``None`` when the header declares none.
    """
    if voxels.size == 0:
        return {}
    low, high = float(voxels.min()), float(voxels.max())
    if padding is None and low in TYPICAL_PADDING_HU:
        padding = (low, low)
    outside = low < HU_FLOOR or high > HU_CEILING
    if padding is None and not outside:
        return {}
    n_padding = n_outside = 0
    for block in _blocks(voxels):
        pad = None
        if padding is not None:
            pad = (block == padding[0]) if padding[0] == padding[1] else \
                (block >= padding[0]) & (block <= padding[1])
            n_padding += int(np.count_nonzero(pad))
        if outside:
            out = block < HU_FLOOR if low < HU_FLOOR else block > HU_CEILING
            if low < HU_FLOOR and high > HU_CEILING:
                out |= block > HU_CEILING
            if pad is not None:
                out &= ~pad
            n_outside += int(np.count_nonzero(out))
    codes: dict[str, int] = {}
    if n_padding:
        codes["padding-present"] = n_padding
    if n_outside:
        codes["hu-out-of-range"] = n_outside
        odd = sum(1 for slope, intercept, kind in rescales
                  if slope != 1 or intercept not in USUAL_CT_INTERCEPTS
                  or kind.upper() not in USUAL_CT_RESCALE_TYPES)
        if odd:
            codes["hu-rescale-suspect"] = odd
    return codes


def _blocks(voxels: np.ndarray) -> Iterator[np.ndarray]:
    """The voxels as consecutive flat blocks (views of a contiguous array)."""
    flat = voxels.reshape(-1)
    for start in range(0, flat.size, _BLOCK):
        yield flat[start:start + _BLOCK]


__all__ = ["DEFAULT_MAX_EXTENT_MM", "HU_CEILING", "HU_FLOOR", "MATRIX_RATIO",
           "MAX_IN_PLANE_EXTENT_MM", "TYPICAL_PADDING_HU", "USUAL_CT_INTERCEPTS",
           "USUAL_CT_RESCALE_TYPES", "extent_qc", "hu_qc", "padding_range"]
