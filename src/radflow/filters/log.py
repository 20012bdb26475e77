"""Laplacian of Gaussian (IBSI 2, "Laplacian of Gaussian", IBSI code L6PA).

Definition
----------
With ``σ`` converted from mm to voxels along each filtered axis (``σ_i = sigma_mm / spacing_i``)
and ``x`` the voxel offset from the kernel centre, the d-dimensional kernel (d = 3, or 2 in-plane
in 2-D mode) is IBSI 2's

    LoG(x) = -(1/σ²) · (1/(σ√(2π)))^d · (d - |x|²/σ²) · exp(-|x|²/(2σ²))

sampled at integer offsets on a cube (square) of half-width ``n_i = floor(truncate · σ_i + 0.5)``
voxels, i.e. ``2 n_i + 1`` taps per axis. No further normalisation is applied: the sampled kernel
sums only approximately to zero, exactly as in the IBSI 2 definition (which is what the
reference maps 2.a–2.c were made with). The kernel is applied by convolution.

Because ``LoG = Σ_i g''_i(x_i) Π_{j≠i} g_j(x_j)`` with the 1-D Gaussian
``g(t) = exp(-t²/(2σ²)) / (σ√(2π))`` and ``g''(t) = (t²/σ⁴ - 1/σ²) g(t)``, the filter is computed
exactly as d separable terms (shared 1-D passes), not as a dense 3-D convolution.

For isotropic voxels this is the IBSI 2 kernel. For anisotropic voxels each axis uses its own σ in
voxels and the Laplacian is taken with respect to voxel indices; resample to isotropic voxels
first if the response must be comparable across scans.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from radflow.errors import FilterError
from radflow.filters.base import (
    BOUNDARY_MODES,
    DIMENSIONS,
    Boundary,
    Dimensions,
    apply_to_image,
    as_volume,
    check_choice,
    check_positive_float,
    filter_axes,
    scipy_mode,
    voxel_spacing_zyx,
)
from radflow.filters.separable import separable_response


@dataclass(frozen=True)
class LogSettings:
    """Options of the LoG filter.

    Attributes
    ----------
    sigma_mm
        Gaussian scale σ in mm (> 0).
    truncate
        Kernel half-width in units of σ (> 0); IBSI 2 tests use 4.
    boundary
        ``mirror``, ``nearest``, ``wrap`` or ``constant``.
    dimensions
        ``3d`` or ``2d`` (every axial slice separately).
    """

    sigma_mm: float
    truncate: float = 4.0
    boundary: Boundary = "mirror"
    dimensions: Dimensions = "3d"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma_mm", check_positive_float(self.sigma_mm, "sigma_mm"))
        object.__setattr__(self, "truncate", check_positive_float(self.truncate, "truncate"))
        check_choice(self.boundary, BOUNDARY_MODES, "boundary")
        check_choice(self.dimensions, DIMENSIONS, "dimensions")


def gaussian_kernels_1d(sigma: float, truncate: float) -> tuple[np.ndarray, np.ndarray]:
    """Sampled 1-D Gaussian and its second derivative (σ in voxels).

    Returns
    -------
    g, g2 : numpy.ndarray, shape (2n + 1,)
        ``g(t)`` and ``g''(t)`` at ``t = -n..n`` with ``n = floor(truncate·σ + 0.5)``.
    """
    n = math.floor(truncate * sigma + 0.5)
    t = np.arange(-n, n + 1, dtype=np.float64)
    g = np.exp(-(t**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    g2 = (t**2 / sigma**4 - 1.0 / sigma**2) * g
    return g, g2


def log_filter(volume: np.ndarray, settings: LogSettings,
               spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """LoG response map.

    Parameters
    ----------
    volume
        Array of shape ``(z, y, x)`` (``2d`` mode: also ``(y, x)``).
    settings
        Filter options.
    spacing
        Voxel spacing in mm in array axis order (``(z, y, x)``; for a 2-D slice ``(y, x)``).

    Returns
    -------
    numpy.ndarray
        float64 array of the input's shape.
    """
    arr = as_volume(volume, settings.dimensions)
    axes = filter_axes(arr.ndim, settings.dimensions)
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != arr.ndim or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise FilterError(f"spacing: expected {arr.ndim} positive numbers (mm), got {spacing}")
    kernels = [gaussian_kernels_1d(settings.sigma_mm / spacing[a], settings.truncate)
               for a in axes]
    terms = []
    for i in range(len(axes)):
        ops = tuple((kernels[j][1],) if j == i else (kernels[j][0],) for j in range(len(axes)))
        terms.append((ops, 1.0))
    return separable_response(arr, axes, terms, scipy_mode(settings.boundary), "sum")


def log_image(image: sitk.Image, settings: LogSettings) -> sitk.Image:
    """LoG of a 3-D SimpleITK image (σ in mm via the image spacing); float64, same geometry."""
    spacing = voxel_spacing_zyx(image)
    return apply_to_image(image, lambda arr: log_filter(arr, settings, spacing))


def log_feature_prefix(settings: LogSettings) -> str:
    """Image-type name of a LoG response: ``ibsi-log-s<σ>mm[-2d]``, ``.`` written ``-``.

    Examples: ``ibsi-log-s1-5mm`` (σ = 1.5 mm), ``ibsi-log-s3mm-2d``. The ``ibsi-`` part keeps it
    apart from PyRadiomics' own ``log-sigma-...`` image type (a different discretisation).
    """
    sigma = f"{settings.sigma_mm:g}".replace(".", "-")
    return f"ibsi-log-s{sigma}mm" + ("-2d" if settings.dimensions == "2d" else "")
