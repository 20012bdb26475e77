"""The body's left-right extent against the field of view, from a CT volume in Hounsfield units.

Rule of the measurement (a heuristic, kept simple so that it is predictable):

1. The body is every voxel above :data:`BODY_HU` (-500 HU: soft tissue, bone and the chest wall;
   not air, and not the air-filled lung, which the chest wall surrounds).
2. Slices (planes across the patient's long axis) at least :data:`SLICE_STEP_MM` apart and pixels
   about :data:`PIXEL_MM` wide are used (nearest samples); on each slice the holes are filled
   (the lungs, which the chest wall encloses), an opening with a disc of radius
   :data:`OPENING_MM` removes thin structures outside the body (the table top, cables,
   blankets), and the largest connected region is the body.
3. ``width_fraction``: the widest left-right extent of that region over the slices, divided by
   the image's left-right extent (the field of view of the reconstruction).
   ``in_fov``: the region touches neither the left nor the right edge of the image on any slice
   (else the chest wall is cut off).

The volume's voxel axes must include one along left-right and one along the patient's long axis
(an axial, coronal or sagittal series, not an oblique one); otherwise, and when no voxel is
above -500 HU, the result is unknown (``None``) with a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BODY_HU = -500.0
SLICE_STEP_MM = 5.0
PIXEL_MM = 2.0
OPENING_MM = 5.0
#: A voxel axis is "along" a patient axis when the cosine is at least this.
_ALONG = 0.8


@dataclass(frozen=True)
class BodyExtent:
    """``width_fraction`` in (0, 1], ``in_fov``; both ``None`` with a ``note`` when unknown."""

    width_fraction: float | None
    in_fov: bool | None
    note: str = ""


def body_extent_of_file(path: str | Path) -> BodyExtent:
    """:func:`body_extent` of a converted volume (NIfTI or MetaImage, read by SimpleITK)."""
    from radflow.io.nifti import read_image

    image = read_image(path)
    if image.GetNumberOfComponentsPerPixel() != 1 or image.GetDimension() != 3:
        return BodyExtent(None, None, "not a grey-value 3-D volume")
    import SimpleITK as sitk

    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    return body_extent(sitk.GetArrayViewFromImage(image), image.GetSpacing(), direction)


def body_extent(volume: np.ndarray, spacing: tuple[float, ...],
                direction: np.ndarray) -> BodyExtent:
    """The body's extent in ``volume`` (see the module docstring).

    Parameters
    ----------
    volume : numpy.ndarray, shape (k, j, i)
        Hounsfield units, SimpleITK's array order (slice, row, column).
    spacing : tuple of float, (i, j, k)
        Voxel spacing (mm) along i, j, k.
    direction : numpy.ndarray, shape (3, 3)
        Column ``n`` is the LPS direction of voxel axis ``n`` (i, j, k).
    """
    lr_axis = int(np.argmax(np.abs(direction[0])))  # voxel axis most along patient x (L-R)
    long_axis = int(np.argmax(np.abs(direction[2])))  # most along patient z (S-I)
    if (lr_axis == long_axis or abs(direction[0, lr_axis]) < _ALONG
            or abs(direction[2, long_axis]) < _ALONG):
        return BodyExtent(None, None, "no voxel axis along left-right and one along the "
                                      "patient's long axis (an oblique volume)")
    third = 3 - lr_axis - long_axis
    # array axes are (k, j, i): voxel axis n is array axis 2 - n
    arr = np.moveaxis(volume, (2 - long_axis, 2 - third, 2 - lr_axis), (0, 1, 2))
    step = (max(1, math.floor(SLICE_STEP_MM / spacing[long_axis])),
            max(1, math.floor(PIXEL_MM / spacing[third])),
            max(1, math.floor(PIXEL_MM / spacing[lr_axis])))
    n_lr = arr.shape[2]
    lr_index = _samples(n_lr, step[2])
    body = arr[::step[0], ::step[1], lr_index] > BODY_HU
    if not body.any():
        return BodyExtent(None, None, f"no voxel above {BODY_HU:g} HU")
    from scipy import ndimage

    pixel = (spacing[third] * step[1], spacing[lr_axis] * step[2])
    disc = _disc(OPENING_MM, pixel)
    widest, touches = 0.0, False
    for plane in body:
        if not plane.any():
            continue
        opened = ndimage.binary_opening(ndimage.binary_fill_holes(plane), structure=disc)
        labels, n = ndimage.label(opened)
        if n == 0:
            continue
        largest = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
        columns = np.flatnonzero((labels == largest).any(axis=0))
        first, last = int(columns[0]), int(columns[-1])
        touches |= first == 0 or last == len(lr_index) - 1
        widest = max(widest, (lr_index[last] - lr_index[first] + 1) * spacing[lr_axis])
    if widest == 0.0:
        return BodyExtent(None, None, f"no body region wider than {2 * OPENING_MM:g} mm")
    fov = n_lr * spacing[lr_axis]
    return BodyExtent(round(float(min(widest / fov, 1.0)), 3), not touches)


def _samples(n: int, step: int) -> np.ndarray:
    """Indices ``0, step, 2*step, ...`` and always the last one (so both edges are seen)."""
    index = np.arange(0, n, step)
    return index if index[-1] == n - 1 else np.append(index, n - 1)


def _disc(radius_mm: float, pixel_mm: tuple[float, float]) -> np.ndarray:
    ry = max(1, round(radius_mm / pixel_mm[0]))
    rx = max(1, round(radius_mm / pixel_mm[1]))
    y, x = np.ogrid[-ry:ry + 1, -rx:rx + 1]
    return np.asarray((y / ry) ** 2 + (x / rx) ** 2 <= 1.0)


__all__ = ["BODY_HU", "OPENING_MM", "PIXEL_MM", "SLICE_STEP_MM", "BodyExtent", "body_extent",
           "body_extent_of_file"]
