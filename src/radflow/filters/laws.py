"""Laws kernels (IBSI 2, "Laws kernels", IBSI code JTXT).

Kernels
-------
The 1-D kernels are normalised to unit L2 norm (sum of squared taps = 1), as IBSI 2 specifies:

====  ==============================  ===========
name  taps                            divided by
====  ==============================  ===========
L5    ( 1,  4, 6,  4,  1)             √70
E5    (-1, -2, 0,  2,  1)             √10
S5    (-1,  0, 2,  0, -1)             √6
W5    (-1,  2, 0, -2,  1)             √10
R5    ( 1, -4, 6, -4,  1)             √70
L3    ( 1,  2, 1)                     √6
E3    (-1,  0, 1)                     √2
S3    (-1,  2, -1)                    √6
====  ==============================  ===========

A 2-D or 3-D kernel is named by concatenating 1-D names, e.g. ``L5E5`` or ``E5L5S5``. **The
first name acts along x (image columns, array axis -1), the second along y (rows, axis -2), the
third along z (slices, axis 0)**; this is the IBSI 2 / MIRP convention and is what reproduces the
non-rotation-invariant reference maps 3.a.1, 3.b.1 and 3.c.1. The kernel is applied by
convolution, so filtering an impulse returns the kernel itself: the response at offset ``t`` from
the impulse along x is ``Kx[len // 2 + t]`` (e.g. -1/√10 at ``t = -2`` for E5).

Rotation invariance and pooling
-------------------------------
With ``rotation_invariant=True`` the response is pooled (``max`` or ``mean``) over the kernel
rotated by all 24 right-angle rotations of 3-D space (2-D: the 4 in-plane rotations), see
:mod:`radflow.filters.separable` for how the orientations share 1-D passes. In 3-D, mean pooling
of any kernel containing an odd 1-D kernel (E5, W5, E3) is identically zero: the 180° rotations
reverse odd kernels, so orientations cancel pairwise, and with three odd kernels the pooled kernel
is their antisymmetrised product, which vanishes because the odd 5-tap kernels span only a 2-D
space. In 2-D this happens with exactly one odd kernel. radflow detects it (dense check of the
pooled kernel), logs a warning and returns zeros; max pooling is the useful choice.

Energy map
----------
With ``energy_delta=δ`` the (pooled) response ``h`` is turned into the texture energy
``E = mean of |h| over the (2δ+1)^d box centred on each voxel`` (d = 3, or 2 in-plane in 2-D
mode), with the same boundary mode. IBSI 2 computes the energy *after* rotation pooling; this
order is what reproduces 3.a.3, 3.b.3 and 3.c.3.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
import SimpleITK as sitk

from radflow.errors import FilterError
from radflow.filters.base import (
    BOUNDARY_MODES,
    DIMENSIONS,
    POOLINGS,
    Boundary,
    Dimensions,
    Pooling,
    apply_to_image,
    as_volume,
    check_choice,
    check_int,
    filter_axes,
    scipy_mode,
    warn_if_anisotropic,
)
from radflow.filters.separable import AxisOp, orientations, separable_response

logger = logging.getLogger(__name__)

#: Un-normalised 1-D Laws kernels.
LAWS_1D_TAPS: dict[str, tuple[float, ...]] = {
    "L5": (1.0, 4.0, 6.0, 4.0, 1.0),
    "E5": (-1.0, -2.0, 0.0, 2.0, 1.0),
    "S5": (-1.0, 0.0, 2.0, 0.0, -1.0),
    "W5": (-1.0, 2.0, 0.0, -2.0, 1.0),
    "R5": (1.0, -4.0, 6.0, -4.0, 1.0),
    "L3": (1.0, 2.0, 1.0),
    "E3": (-1.0, 0.0, 1.0),
    "S3": (-1.0, 2.0, -1.0),
}

_NAME = re.compile(r"[A-Z]\d")


def laws_kernel_1d(name: str) -> np.ndarray:
    """Return the L2-normalised 1-D Laws kernel ``name`` (e.g. ``"E5"``), shape (3,) or (5,)."""
    name = check_choice(str(name).upper(), LAWS_1D_TAPS, "kernel")
    taps = np.asarray(LAWS_1D_TAPS[name], dtype=np.float64)
    return taps / np.sqrt(np.sum(taps**2))


def parse_laws_kernel(kernel: str) -> tuple[str, ...]:
    """Split a kernel name into 1-D names in x, y(, z) order (``"E5L5S5"`` -> E5, L5, S5).

    Raises
    ------
    FilterError
        When the name is not a concatenation of 2 or 3 known 1-D kernel names.
    """
    allowed = ", ".join(LAWS_1D_TAPS)
    text = str(kernel).strip().upper()
    names = tuple(_NAME.findall(text))
    if "".join(names) != text or len(names) not in (2, 3) or any(
            n not in LAWS_1D_TAPS for n in names):
        raise FilterError(f"kernel: {kernel!r} is not allowed; expected 2 (2-D) or 3 (3-D) "
                          f"concatenated 1-D kernels from {allowed}, e.g. L5E5 or E5L5S5")
    return names


def laws_kernel_array(kernel: str) -> np.ndarray:
    """The full 2-D/3-D Laws kernel as an outer product, in array axis order.

    Parameters
    ----------
    kernel
        e.g. ``"L5E5E5"``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_z, n_y, n_x)`` for three names (``(n_y, n_x)`` for two), with
        ``K[z, y, x] = Kz[z] * Ky[y] * Kx[x]`` where ``Kx`` is the first name.
    """
    vectors = [laws_kernel_1d(n) for n in reversed(parse_laws_kernel(kernel))]
    out = vectors[0]
    for v in vectors[1:]:
        out = np.multiply.outer(out, v)
    return out


@dataclass(frozen=True)
class LawsSettings:
    """Options of the Laws filter.

    Attributes
    ----------
    kernel
        Kernel name, 1-D names concatenated in x, y(, z) order: ``L5E5`` (2-D) or ``L5E5E5`` (3-D).
        Case-insensitive; stored upper-case.
    rotation_invariant
        Pool over all right-angle rotations of the kernel.
    pooling
        ``max`` or ``mean``; used only when ``rotation_invariant``.
    energy_delta
        δ ≥ 0 (voxels): return the energy map over a (2δ+1)-voxel box; None: the response map.
    boundary
        ``mirror``, ``nearest``, ``wrap`` or ``constant`` (zero); see :mod:`radflow.filters.base`.
    dimensions
        ``3d`` (3-name kernel) or ``2d`` (2-name kernel applied to every axial slice).
    """

    kernel: str
    rotation_invariant: bool = False
    pooling: Pooling = "max"
    energy_delta: int | None = None
    boundary: Boundary = "mirror"
    dimensions: Dimensions = "3d"

    def __post_init__(self) -> None:
        names = parse_laws_kernel(self.kernel)
        object.__setattr__(self, "kernel", "".join(names))
        if not isinstance(self.rotation_invariant, (bool, np.bool_)):
            raise FilterError(f"rotation_invariant: {self.rotation_invariant!r} is not allowed; "
                              "expected True or False")
        object.__setattr__(self, "rotation_invariant", bool(self.rotation_invariant))
        check_choice(self.pooling, POOLINGS, "pooling")
        if self.energy_delta is not None:
            object.__setattr__(self, "energy_delta",
                               check_int(self.energy_delta, "energy_delta", minimum=0))
        check_choice(self.boundary, BOUNDARY_MODES, "boundary")
        check_choice(self.dimensions, DIMENSIONS, "dimensions")
        wanted = 3 if self.dimensions == "3d" else 2
        if len(names) != wanted:
            other = "2d" if wanted == 3 else "3d"
            raise FilterError(f"kernel: {self.kernel!r} is not allowed with "
                              f"dimensions={self.dimensions!r}; expected {wanted} 1-D kernels "
                              f"(e.g. {'L5E5E5' if wanted == 3 else 'L5E5'}), or use "
                              f"dimensions={other!r} (command line: "
                              f"{'--2d' if other == '2d' else 'no --2d'})")

    @property
    def kernel_names(self) -> tuple[str, ...]:
        """1-D kernel names in x, y(, z) order."""
        return parse_laws_kernel(self.kernel)


def laws_feature_prefix(settings: LawsSettings) -> str:
    """Image-type name of a Laws response: ``laws-<kernel>[-ri-<pool>][-e<δ>]``.

    Examples: ``laws-L5E5E5``, ``laws-L5E5E5-ri-max-e7``, ``laws-L5S5-ri-mean``. Features are named
    ``<prefix>_<class>_<feature>``, e.g. ``laws-L5E5E5-ri-max-e7_firstorder_Mean``.
    """
    prefix = f"laws-{settings.kernel}"
    if settings.rotation_invariant:
        prefix += f"-ri-{settings.pooling}"
    if settings.energy_delta is not None:
        prefix += f"-e{settings.energy_delta}"
    return prefix


def energy_map(response: np.ndarray, delta: int, axes: tuple[int, ...], mode: str) -> np.ndarray:
    """Laws texture energy: mean of ``|response|`` over a box of 2δ+1 voxels along ``axes``.

    ``response`` (float64) is overwritten and returned.
    """
    np.abs(response, out=response)
    size = 2 * delta + 1
    if size > 1:
        for axis in axes:
            ndi.uniform_filter1d(response, size, axis=axis, mode=mode, cval=0.0, output=response)
    return response


def _pooled_kernel_vanishes(terms: list[tuple[tuple[AxisOp, ...], float]]) -> bool:
    """Whether Σ weight·kernel over the orientations is the zero kernel (dense, ≤ 5^3 taps)."""
    total = np.zeros((5,) * len(terms[0][0]))
    for ops, weight in terms:
        dense = np.ones(())
        for (k,) in ops:
            pad = (5 - k.size) // 2
            dense = np.multiply.outer(dense, np.pad(k, pad))
        total += weight * dense
    return bool(np.abs(total).max() <= 1e-12)


def laws_filter(volume: np.ndarray, settings: LawsSettings) -> np.ndarray:
    """Laws response (or energy) map of a volume.

    Parameters
    ----------
    volume
        Array of shape ``(z, y, x)`` (in ``2d`` mode also a single slice ``(y, x)``); any real
        dtype, computed in float64. Voxels are assumed isotropic (Laws kernels are in voxels).
    settings
        Filter options.

    Returns
    -------
    numpy.ndarray
        float64 array of the input's shape.
    """
    arr = as_volume(volume, settings.dimensions)
    axes = filter_axes(arr.ndim, settings.dimensions)
    mode = scipy_mode(settings.boundary)
    # Operators in array axis order: the first kernel name acts along the last axis (x).
    ops = [(laws_kernel_1d(name),) for name in reversed(settings.kernel_names)]
    terms = orientations(ops, settings.rotation_invariant)
    if settings.rotation_invariant and settings.pooling == "max":
        response = separable_response(arr, axes, terms, mode, "max")
    else:
        n = len(terms)
        weighted = [(o, s / n) for o, s in terms]
        if settings.rotation_invariant and _pooled_kernel_vanishes(weighted):
            logger.warning("rotation-invariant mean pooling of Laws kernel %s is identically 0 "
                           "(its odd 1-D kernels E/W cancel over the rotations); use max pooling",
                           settings.kernel)
            response = np.zeros_like(arr)
        else:
            response = separable_response(arr, axes, weighted, mode, "sum")
    if settings.energy_delta is not None:
        response = energy_map(response, settings.energy_delta, axes, mode)
    return response


def laws_image(image: sitk.Image, settings: LawsSettings) -> sitk.Image:
    """Laws filter of a 3-D SimpleITK image; the result (float64) keeps the input's geometry.

    The image array is ``(z, y, x)`` (:func:`SimpleITK.GetArrayFromImage`); x is the first kernel
    name's axis. A warning is logged when the filtered axes have unequal spacing.
    """
    warn_if_anisotropic(image, settings.dimensions, f"Laws kernel {settings.kernel}")
    return apply_to_image(image, lambda arr: laws_filter(arr, settings))
