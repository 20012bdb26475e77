"""Rigid perturbations of an image/mask pair: rotation about the ROI's centroid and sub-voxel
translation of the sampling grid (Zwanenburg et al. 2019; MIRP's ``GenericImage._interpolate``,
which rotates in the axial plane and shifts the interpolation grid by a fraction of a voxel).

Both resample the image and the ROI together and return a new pair on one grid; used by the
``rotation`` and ``translation`` steps of :mod:`radflow.reliability.perturb`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
import SimpleITK as sitk

from radflow.errors import ConfigError
from radflow.reliability.masks import mask_image, roi_array

#: Image interpolation of rotations and translations (the ROI of a rotation is interpolated
#: linearly and thresholded at 0.5, that of a translation takes its nearest voxel). ``bspline``
#: is SimpleITK's cubic B-spline, MIRP's default spline order 3.
Interpolation = Literal["linear", "bspline"]

#: Axis of a rotation: the image's own grid axis (its direction-matrix column); ``z`` turns the
#: slices in their plane, as MIRP does.
Axis = Literal["x", "y", "z"]


def roi_centroid(mask: sitk.Image, label: int = 1) -> np.ndarray:
    """Physical centroid (mm; x, y, z) of the ROI voxels' centres."""
    index = np.argwhere(roi_array(mask, label)).mean(axis=0)[::-1]
    return _physical(mask, index)


def _physical(grid: sitk.Image, index: np.ndarray) -> np.ndarray:
    """Physical point of a continuous (x, y, z) index of ``grid``."""
    direction = np.asarray(grid.GetDirection(), dtype=np.float64).reshape(3, 3)
    return np.asarray(grid.GetOrigin()) + direction @ (np.asarray(grid.GetSpacing()) * index)


def rotation_matrix(grid: sitk.Image, angle_deg: float, axis: Axis = "z") -> np.ndarray:
    """3 × 3 physical rotation by ``angle_deg`` (right-handed) about ``grid``'s ``axis``."""
    if axis not in get_args(Axis):
        raise ConfigError(f"rotation axis must be one of x, y, z, got {axis!r}")
    direction = np.asarray(grid.GetDirection(), dtype=np.float64).reshape(3, 3)
    u = direction[:, "xyz".index(axis)]
    u = u / np.linalg.norm(u)
    theta = math.radians(angle_deg)
    cross = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    return np.eye(3) + math.sin(theta) * cross + (1 - math.cos(theta)) * cross @ cross


def rotate(image: sitk.Image, mask: sitk.Image, angle_deg: float, axis: Axis = "z", *,
           label: int = 1, center: Sequence[float] | np.ndarray | None = None,
           interpolation: Interpolation = "linear") -> tuple[sitk.Image, sitk.Image]:
    """Turn image and ROI by ``angle_deg`` about ``axis`` through ``center``, on the same grid.

    A point ``p`` of the content moves to ``c + R (p − c)`` (``R``: :func:`rotation_matrix`,
    ``c``: ``center``, by default the ROI's centroid, :func:`roi_centroid`). The image is
    resampled with ``interpolation``; the ROI is resampled as a 0/1 float image with linear
    interpolation and kept where the value (rounded to 6 decimals) is ≥ 0.5, as MIRP does.
    Points that come from outside the image take the nearest edge value (MIRP's ``nearest``).

    Returns
    -------
    image, mask
        Rotated image (float32, float64 if the input was) and label map (``label`` on the ROI).
    """
    roi = roi_array(mask, label, image)
    c = np.asarray(center if center is not None else roi_centroid(mask, label), dtype=float)
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(rotation_matrix(image, angle_deg, axis).T.ravel().tolist())
    transform.SetCenter(c.tolist())
    return _resample(image, mask, roi, label, image, transform, interpolation)


def translate(image: sitk.Image, mask: sitk.Image,
              fraction: float | Sequence[float] | np.ndarray, *, label: int = 1,
              interpolation: Interpolation = "linear") -> tuple[sitk.Image, sitk.Image]:
    """Resample image and ROI on the grid shifted by ``fraction`` of a voxel (MIRP's sub-voxel
    translation).

    The new grid's origin is ``origin + direction · (fraction × spacing)``; size, spacing and
    direction are kept. The content stays where it is in physical space: only the points where
    it is sampled move, so in index space it moves by ``−fraction``. The image is interpolated
    with ``interpolation``. The ROI takes its nearest voxel (a fraction below 0.5 leaves the ROI's
    voxels as they were, one of 0.5 or more moves them by one voxel): its volume is kept, so the
    copy differs from the original only in where the image is sampled relative to the ROI.
    MIRP interpolates the ROI linearly and keeps values ≥ 0.5 here too; at a fraction of exactly
    0.5 every boundary voxel is then a tie that is kept, and the ROI gains a layer of voxels on
    every face across the shift (+47 % for PyRadiomics' 3-slice lung1 nodule shifted by half a
    slice), which would make a translation a volume perturbation as well.

    Parameters
    ----------
    fraction
        One value for x, y and z, or three (x, y, z); each in [0, 1).

    Returns
    -------
    image, mask
        On the shifted grid; image float32 (float64 if the input was), label map (``label`` on
        the ROI, the pixel type of ``mask``).
    """
    shift = np.broadcast_to(np.asarray(fraction, dtype=float), (3,))
    if not all(0 <= f < 1 for f in shift):  # NaN fails too
        raise ConfigError(f"translation fraction must be in [0, 1), got {fraction!r}")
    roi = roi_array(mask, label, image)
    grid = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    grid.SetSpacing(image.GetSpacing())
    grid.SetDirection(image.GetDirection())
    grid.SetOrigin(_physical(image, shift).tolist())
    return _resample(image, mask, roi, label, grid, sitk.Transform(3, sitk.sitkIdentity),
                     interpolation, nearest_roi=True)


def _resample(image: sitk.Image, mask: sitk.Image, roi: np.ndarray, label: int,
              grid: sitk.Image, transform: sitk.Transform, interpolation: Interpolation,
              *, nearest_roi: bool = False) -> tuple[sitk.Image, sitk.Image]:
    """Image and ROI resampled onto ``grid`` through ``transform`` (output → input points).

    The ROI: a 0/1 float image interpolated linearly and kept where ≥ 0.5 (rounded to 6
    decimals), or with ``nearest_roi`` its nearest voxel's value.
    """
    resampler = sitk.ResampleImageFilter()
    resampler.SetReferenceImage(grid)
    resampler.SetTransform(transform)
    resampler.SetUseNearestNeighborExtrapolator(True)
    resampler.SetInterpolator(sitk.sitkBSpline if interpolation == "bspline" else sitk.sitkLinear)
    out_type = sitk.sitkFloat64 if image.GetPixelID() == sitk.sitkFloat64 else sitk.sitkFloat32
    resampler.SetOutputPixelType(out_type)
    new_image = resampler.Execute(image)
    indicator = sitk.GetImageFromArray(roi.astype(np.float32))
    indicator.CopyInformation(mask)
    resampler.SetInterpolator(sitk.sitkNearestNeighbor if nearest_roi else sitk.sitkLinear)
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    # GetArrayFromImage copies: a view of the temporary image would dangle once it is freed
    weight = sitk.GetArrayFromImage(resampler.Execute(indicator))
    new_roi = np.round(weight.astype(np.float64), 6) >= 0.5
    return new_image, mask_image(new_roi, label, mask, grid=new_image)
