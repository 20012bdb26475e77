"""Mean filter (IBSI 2, "Mean filter", IBSI code S60F).

The response at each voxel is the average of the ``M^d`` voxels of the cube (d = 3) or square
(d = 2, every axial ``(y, x)`` slice separately) of side ``M`` centred on it; ``M`` is odd and in
voxels. Voxels outside the image come from the boundary mode (:mod:`radflow.filters.base`).
Implemented as one running-mean pass per axis (:func:`scipy.ndimage.uniform_filter1d`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
import SimpleITK as sitk

from radflow.filters.base import (
    BOUNDARY_MODES,
    DIMENSIONS,
    Boundary,
    Dimensions,
    apply_to_image,
    as_volume,
    check_choice,
    check_int,
    filter_axes,
    scipy_mode,
    warn_if_anisotropic,
)


@dataclass(frozen=True)
class MeanSettings:
    """Options of the mean filter.

    Attributes
    ----------
    support
        Side ``M`` of the averaging box in voxels; odd, ≥ 1.
    boundary
        ``mirror``, ``nearest``, ``wrap`` or ``constant``.
    dimensions
        ``3d`` (cube) or ``2d`` (square in every axial slice).
    """

    support: int
    boundary: Boundary = "mirror"
    dimensions: Dimensions = "3d"

    def __post_init__(self) -> None:
        object.__setattr__(self, "support", check_int(self.support, "support", minimum=1,
                                                      odd=True))
        check_choice(self.boundary, BOUNDARY_MODES, "boundary")
        check_choice(self.dimensions, DIMENSIONS, "dimensions")


def mean_filter(volume: np.ndarray, settings: MeanSettings) -> np.ndarray:
    """Mean-filtered copy of ``volume``.

    Parameters
    ----------
    volume
        Array of shape ``(z, y, x)`` (``2d`` mode: also ``(y, x)``).
    settings
        Filter options.

    Returns
    -------
    numpy.ndarray
        float64 array of the input's shape.
    """
    arr = as_volume(volume, settings.dimensions)
    mode = scipy_mode(settings.boundary)
    out = arr.copy() if settings.support == 1 else arr
    for axis in filter_axes(arr.ndim, settings.dimensions):
        if settings.support > 1:
            out = ndi.uniform_filter1d(out, settings.support, axis=axis, mode=mode, cval=0.0)
    return out


def mean_image(image: sitk.Image, settings: MeanSettings) -> sitk.Image:
    """Mean filter of a 3-D SimpleITK image; float64 result with the input's geometry."""
    warn_if_anisotropic(image, settings.dimensions, "mean filter")
    return apply_to_image(image, lambda arr: mean_filter(arr, settings))


def mean_feature_prefix(settings: MeanSettings) -> str:
    """Image-type name of a mean response: ``mean-s<M>[-2d]``, e.g. ``mean-s5``.

    Features are named ``<prefix>_<class>_<feature>`` (``mean-s5_firstorder_Mean``).
    """
    return f"mean-s{settings.support}" + ("-2d" if settings.dimensions == "2d" else "")
