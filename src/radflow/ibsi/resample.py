"""IBSI 1 image processing that PyRadiomics does differently: interpolation and re-segmentation.

* :func:`resample_ibsi`: interpolation onto the IBSI grid ("Interpolation grid", manual chapter
  "Image processing": *align grid centers*, 3WE3; grid size ``ceil(n_a s_a / s_b)``, 026Q; the
  origin of QCY4), intensities padded with the boundary values, rounded to integers when asked
  (68QD, CT), the ROI mask interpolated linearly and kept where the fraction is at least 0.5
  (E8H9). PyRadiomics' own ``resampledPixelSpacing`` instead aligns the new grid on the corner of
  the ROI's bounding box, interpolates the mask with nearest neighbour and casts intensities to
  the input pixel type (truncation for integer images).
* :func:`intensity_mask`: re-segmentation by a range and by outlier filtering at once (IF9H: the
  intersection of both ranges; 7ACA: mean ± 3 SD of the ROI), which PyRadiomics' single
  ``resegmentMode`` cannot express.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import SimpleITK as sitk

from radflow.errors import ConfigError

Interpolator = Literal["linear", "bspline", "nearest"]

_SITK_INTERPOLATORS = {"linear": sitk.sitkLinear, "bspline": sitk.sitkBSpline,
                       "nearest": sitk.sitkNearestNeighbor}
# PyRadiomics ``interpolator`` names -> ours.
_PYRADIOMICS_NAMES: dict[str, Interpolator] = {"sitkLinear": "linear", "sitkBSpline": "bspline",
                                               "sitkNearestNeighbor": "nearest"}


@dataclass(frozen=True)
class ResampleSpec:
    """How to interpolate image and mask onto a new grid, the IBSI way.

    Attributes
    ----------
    spacing
        New voxel spacing (x, y, z) in mm; 0 keeps the axis as it is (e.g. ``(2, 2, 0)``:
        in-plane only, the IBSI 2D configurations).
    interpolator
        ``linear`` (IBSI bi/trilinear), ``bspline`` (cubic B-spline; IBSI "tricubic spline") or
        ``nearest``.
    round_intensities
        Round interpolated intensities to the nearest integer (IBSI: CT, Hounsfield units).
    mask_threshold
        Partial-volume threshold of the linearly interpolated mask (IBSI: 0.5).
    """

    spacing: tuple[float, float, float]
    interpolator: Interpolator = "linear"
    round_intensities: bool = False
    mask_threshold: float = 0.5

    def __post_init__(self) -> None:
        if len(self.spacing) != 3 or any(not s >= 0 for s in self.spacing):
            raise ConfigError(f"resampling spacing {self.spacing!r}: three values >= 0 (mm)")
        if self.interpolator not in _SITK_INTERPOLATORS:
            raise ConfigError(f"interpolator {self.interpolator!r}: one of "
                              f"{', '.join(_SITK_INTERPOLATORS)}")
        if not 0 < self.mask_threshold <= 1:
            raise ConfigError(f"mask_threshold {self.mask_threshold!r}: in (0, 1]")


def resample_spec(settings: Mapping[str, Any] | None, *, round_intensities: bool = False
                  ) -> ResampleSpec | None:
    """The :class:`ResampleSpec` of PyRadiomics settings (``resampledPixelSpacing``,
    ``interpolator``); None when they do not resample."""
    settings = settings or {}
    spacing = settings.get("resampledPixelSpacing")
    if not spacing:
        return None
    name = settings.get("interpolator", "sitkBSpline")
    if name not in _PYRADIOMICS_NAMES:
        raise ConfigError(f"interpolator {name!r}: radflow's IBSI resampling supports "
                          f"{', '.join(_PYRADIOMICS_NAMES)}")
    if len(spacing) != 3:
        raise ConfigError(f"resampledPixelSpacing {spacing!r}: three values (x, y, z)")
    x, y, z = (float(s) for s in spacing)
    return ResampleSpec((x, y, z), _PYRADIOMICS_NAMES[name], round_intensities)


def ibsi_grid(image: sitk.Image, spacing: tuple[float, float, float]
              ) -> tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...]]:
    """Size, spacing and origin of the IBSI interpolation grid of ``image`` (centres aligned).

    Per axis: ``n_b = ceil(n_a s_a / s_b)`` and the first point at grid coordinate
    ``(n_a - 1 - (s_b / s_a)(n_b - 1)) / 2`` of the original grid; a spacing of 0 keeps the axis.
    """
    size_a, spacing_a = image.GetSize(), image.GetSpacing()
    sizes, spacings, first = [], [], []
    for n_a, s_a, s_b in zip(size_a, spacing_a, spacing, strict=True):
        s_b = s_b or s_a
        # 1e-9: a spacing that divides the extent must not gain a voxel from float noise
        n_b = max(1, math.ceil(n_a * s_a / s_b - 1e-9))
        sizes.append(n_b)
        spacings.append(s_b)
        first.append(0.5 * (n_a - 1 - (s_b / s_a) * (n_b - 1)))
    origin = image.TransformContinuousIndexToPhysicalPoint(first)
    return tuple(sizes), tuple(spacings), tuple(origin)


def resample_ibsi(image: sitk.Image, mask: sitk.Image, spec: ResampleSpec, *, label: int = 1,
                  pad: int | None = None) -> tuple[sitk.Image, sitk.Image]:
    """Interpolate ``image`` and the ROI ``mask == label`` onto the IBSI grid (module docstring).

    Parameters
    ----------
    image, mask, spec, label
        The volumes, how to interpolate, the ROI's label.
    pad
        Keep only the part of the IBSI grid around the ROI: its bounding box and ``pad`` voxels
        of the new grid on each side (PyRadiomics' ``padDistance``; what filters see of the
        surroundings). The points kept are points of the whole grid, and their values the same
        (for ``linear`` and ``nearest`` the input is cropped too, with a margin that leaves every
        point's neighbours; with ``nearest``, a point exactly halfway between two voxels may take
        the other one, as float rounding of its position decides). None: the whole grid.

    Returns
    -------
    (image, mask)
        float64 image (integers when ``spec.round_intensities``) and uint8 mask (``label`` in
        the ROI, 0 elsewhere; ``label`` must fit uint8) on the new grid.
    """
    if not 0 < label < 256:
        raise ConfigError(f"label {label}: the resampled mask is uint8 (1-255)")
    size, spacing, origin = ibsi_grid(image, spec.spacing)
    if pad is not None:
        image, mask, size, origin = _around_roi(image, mask, label, size, spacing, origin, pad,
                                                crop_input=spec.interpolator != "bspline")
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(n) for n in size])
    resampler.SetOutputSpacing(spacing)
    resampler.SetOutputOrigin(origin)
    resampler.SetOutputDirection(image.GetDirection())
    resampler.SetOutputPixelType(sitk.sitkFloat64)
    resampler.SetUseNearestNeighborExtrapolator(True)  # IBSI: pad with the boundary values
    resampler.SetInterpolator(_SITK_INTERPOLATORS[spec.interpolator])
    out = resampler.Execute(sitk.Cast(image, sitk.sitkFloat64))
    if spec.round_intensities:
        out = _from_array(np.rint(sitk.GetArrayViewFromImage(out)), out)
    roi = sitk.Cast(sitk.BinaryThreshold(mask, label, label, 1, 0), sitk.sitkFloat64)
    resampler.SetInterpolator(sitk.sitkLinear if spec.interpolator != "nearest"
                              else sitk.sitkNearestNeighbor)
    interpolated = resampler.Execute(roi)  # kept alive: the view below does not own it
    fraction = sitk.GetArrayViewFromImage(interpolated)
    # 1e-9: a fraction of exactly 0.5 must not be lost to float rounding (IBSI: 0.4999...)
    new_mask = (fraction >= spec.mask_threshold - 1e-9).astype(np.uint8) * np.uint8(label)
    return out, _from_array(new_mask, out)


def _around_roi(image: sitk.Image, mask: sitk.Image, label: int, size: tuple[int, ...],
                spacing: tuple[float, ...], origin: tuple[float, ...], pad: int, *,
                crop_input: bool
                ) -> tuple[sitk.Image, sitk.Image, tuple[int, ...], tuple[float, ...]]:
    """The part of the IBSI grid (``size``, ``spacing``, ``origin``) around the ROI (see
    :func:`resample_ibsi`'s ``pad``), and the input cropped to what it needs when
    ``crop_input``; everything unchanged when the label is absent (PyRadiomics reports it)."""
    inside = np.nonzero(sitk.GetArrayViewFromImage(mask) == label)
    if not inside[0].size:
        return image, mask, size, origin
    low_in = [int(a.min()) for a in reversed(inside)]  # (x, y, z) input indices
    high_in = [int(a.max()) for a in reversed(inside)]
    first = image.TransformPhysicalPointToContinuousIndex(origin)  # new point 0, input index
    ratio = [s_b / s_a for s_a, s_b in zip(image.GetSpacing(), spacing, strict=True)]
    # the linearly interpolated ROI is > 0 within one input voxel of an ROI voxel
    low = [max(0, math.floor((lo - 1 - f) / r) - pad)
           for lo, f, r in zip(low_in, first, ratio, strict=True)]
    high = [min(n - 1, math.ceil((hi + 1 - f) / r) + pad)
            for hi, f, r, n in zip(high_in, first, ratio, size, strict=True)]
    new_origin = image.TransformContinuousIndexToPhysicalPoint(
        [f + lo * r for f, lo, r in zip(first, low, ratio, strict=True)])
    new_size = tuple(hi - lo + 1 for lo, hi in zip(low, high, strict=True))
    if crop_input:  # linear and nearest read the two input voxels around a point
        start = [max(0, math.floor(f + lo * r) - 2)
                 for f, lo, r in zip(first, low, ratio, strict=True)]
        stop = [min(n, math.ceil(f + hi * r) + 3)
                for f, hi, r, n in zip(first, high, ratio, image.GetSize(), strict=True)]
        region = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
        image, mask = image[region], mask[region]
    return image, mask, new_size, tuple(new_origin)


def intensity_mask(image: sitk.Image, mask: sitk.Image, *, label: int = 1,
                   value_range: tuple[float | None, float | None] | None = None,
                   outlier_sigma: float | None = None) -> sitk.Image:
    """The IBSI intensity mask: the ROI re-segmented by a range and/or outlier filtering.

    Outlier limits are the mean ± ``outlier_sigma`` standard deviations of the ROI's
    intensities (population SD); with a range too, a voxel stays when it is in both (IBSI IF9H).

    Returns
    -------
    sitk.Image
        uint8 mask on the grid of ``mask``: ``label`` where the voxel stays, else 0.
    """
    values = sitk.GetArrayViewFromImage(image).astype(np.float64)
    roi = sitk.GetArrayViewFromImage(mask) == label
    keep = roi.copy()
    if value_range is not None:
        low, high = value_range
        if low is not None:
            keep &= values >= low
        if high is not None:
            keep &= values <= high
    if outlier_sigma is not None:
        inside = values[roi]
        mean, sd = float(inside.mean()), float(inside.std())
        keep &= (values >= mean - outlier_sigma * sd) & (values <= mean + outlier_sigma * sd)
    out = _from_array(keep.astype(np.uint8) * np.uint8(label), mask)
    return out


def _from_array(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    out = sitk.GetImageFromArray(array)
    out.CopyInformation(like)
    return out


__all__ = ["Interpolator", "ResampleSpec", "ibsi_grid", "intensity_mask", "resample_ibsi",
           "resample_spec"]
