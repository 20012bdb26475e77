"""Shared pieces of the convolutional filters: boundary modes, option checks, image wrapping.

Array convention (all filters)
------------------------------
A volume is a numpy array of shape ``(z, y, x)``, exactly what :func:`SimpleITK.GetArrayFromImage`
returns: axis 0 runs over slices, axis 1 over image rows, axis 2 over image columns (the ITK/NIfTI
``i`` index). "2-D" filtering means filtering every axial slice, i.e. every ``(y, x)`` plane
``volume[k]``, independently.

Boundary modes
--------------
IBSI 2 names four ways of extending the image beyond its border. They map onto
:mod:`scipy.ndimage` modes as follows (note the name clash: IBSI "mirror" is scipy ``reflect``,
``d c b a | a b c d | d c b a``; scipy's own ``mirror`` would not repeat the edge voxel).

========== ================ =======================================
IBSI name  scipy.ndimage    extension of ``a b c d``
========== ================ =======================================
constant   ``constant`` (0) ``0 0 0 0 | a b c d | 0 0 0 0``
nearest    ``nearest``      ``a a a a | a b c d | d d d d``
wrap       ``wrap``         ``a b c d | a b c d | a b c d``
mirror     ``reflect``      ``d c b a | a b c d | d c b a``
========== ================ =======================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np
import SimpleITK as sitk

from radflow.errors import FilterError

logger = logging.getLogger(__name__)

#: IBSI 2 boundary names -> :mod:`scipy.ndimage` ``mode`` argument.
BOUNDARY_MODES: dict[str, str] = {
    "mirror": "reflect",
    "nearest": "nearest",
    "wrap": "wrap",
    "constant": "constant",
}

#: Allowed values of the ``dimensions`` option.
DIMENSIONS: tuple[str, ...] = ("3d", "2d")

#: Allowed values of the rotation-invariance ``pooling`` option.
POOLINGS: tuple[str, ...] = ("max", "mean")

Boundary = Literal["mirror", "nearest", "wrap", "constant"]
Dimensions = Literal["3d", "2d"]
Pooling = Literal["max", "mean"]


def check_choice(value: object, allowed: Iterable[str], option: str) -> str:
    """Return ``value`` when it is one of ``allowed``; raise :class:`FilterError` otherwise.

    Parameters
    ----------
    value
        The given value.
    allowed
        The allowed strings (compared exactly).
    option
        Name of the option, used in the error message.
    """
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise FilterError(f"{option}: {value!r} is not allowed; choose one of {', '.join(allowed)}")
    return value


def check_int(value: object, option: str, *, minimum: int, odd: bool = False) -> int:
    """Return ``value`` as an int when it is an integer ≥ ``minimum`` (and odd if asked).

    Booleans and non-integral floats are rejected with a :class:`FilterError` naming ``option``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise FilterError(f"{option}: {value!r} is not allowed; expected an integer ≥ {minimum}"
                          + (" (odd)" if odd else ""))
    number = int(value)
    if number < minimum or (odd and number % 2 == 0):
        raise FilterError(f"{option}: {number} is not allowed; expected an "
                          + ("odd " if odd else "") + f"integer ≥ {minimum}")
    return number


def check_positive_float(value: object, option: str) -> float:
    """Return ``value`` as a float when it is a finite number > 0; else :class:`FilterError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise FilterError(f"{option}: {value!r} is not allowed; expected a number > 0")
    number = float(value)
    if not np.isfinite(number) or number <= 0:
        raise FilterError(f"{option}: {value!r} is not allowed; expected a finite number > 0")
    return number


def scipy_mode(boundary: str) -> str:
    """Translate an IBSI boundary name into the :mod:`scipy.ndimage` ``mode`` string."""
    return BOUNDARY_MODES[check_choice(boundary, BOUNDARY_MODES, "boundary")]


def as_volume(volume: object, dimensions: str) -> np.ndarray:
    """Validate a volume and return it as a C-contiguous float64 array.

    Parameters
    ----------
    volume
        Array of shape ``(z, y, x)``; in ``2d`` mode a single slice ``(y, x)`` is accepted too.
    dimensions
        ``"3d"`` or ``"2d"``.

    Returns
    -------
    numpy.ndarray
        float64 copy (or view, when the input already is contiguous float64) of ``volume``.

    Raises
    ------
    FilterError
        Wrong number of dimensions, an empty axis, a non-numeric dtype or non-finite values.
    """
    arr = np.asarray(volume)
    allowed_ndim = (3,) if dimensions == "3d" else (2, 3)
    if arr.ndim not in allowed_ndim:
        raise FilterError(f"volume: expected a {' or '.join(f'{n}-D' for n in allowed_ndim)} "
                          f"array for dimensions={dimensions!r}, got shape {arr.shape}")
    if arr.size == 0:
        raise FilterError(f"volume: empty array of shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
        raise FilterError(f"volume: expected real numeric voxels, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise FilterError("volume: contains NaN or infinite values")
    return arr


def filter_axes(ndim: int, dimensions: str) -> tuple[int, ...]:
    """Array axes a filter runs along: all three in 3-D, the last two (y, x) in 2-D mode."""
    return tuple(range(ndim)) if dimensions == "3d" else (ndim - 2, ndim - 1)


def apply_to_image(image: sitk.Image, func: Callable[[np.ndarray], np.ndarray],
                   *, pixel_type: int = sitk.sitkFloat64) -> sitk.Image:
    """Run an array filter on a 3-D SimpleITK image and keep its geometry.

    Parameters
    ----------
    image
        Input image; its array is ``(z, y, x)``.
    func
        Maps the float64 voxel array of shape ``(z, y, x)`` to a response of the same shape.
    pixel_type
        SimpleITK pixel type of the returned image (default float64).

    Returns
    -------
    SimpleITK.Image
        Response map with the origin, spacing and direction of ``image``.
    """
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise FilterError(f"image: expected a 3-D scalar image, got {image.GetDimension()}-D with "
                          f"{image.GetNumberOfComponentsPerPixel()} component(s)")
    response = func(sitk.GetArrayFromImage(image))
    out = sitk.GetImageFromArray(response)
    out = sitk.Cast(out, pixel_type)
    out.CopyInformation(image)
    return out


def warn_if_anisotropic(image: sitk.Image, dimensions: str, what: str) -> None:
    """Log a warning when the filtered axes of ``image`` have unequal voxel spacing.

    Used by filters whose kernels are defined in voxels (mean, Laws, wavelets).
    """
    spacing = voxel_spacing_zyx(image)
    used = spacing if dimensions == "3d" else spacing[1:]
    if max(used) - min(used) > 1e-3 * max(used):
        logger.warning("%s applied to anisotropic voxels %s mm (z, y, x); its kernel is defined "
                       "in voxels, resample to isotropic voxels first", what, used)


def voxel_spacing_zyx(image: sitk.Image) -> tuple[float, float, float]:
    """Voxel spacing of a 3-D image in array axis order ``(z, y, x)`` (mm)."""
    sx, sy, sz = image.GetSpacing()
    return (float(sz), float(sy), float(sx))
