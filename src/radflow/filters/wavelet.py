"""Separable undecimated wavelets (IBSI 2, "Separable wavelets", IBSI code 25BO).

Definition
----------
A sub-band is named by one letter per axis in x, y(, z) order (``LHL``: low-pass along x,
high-pass along y, low-pass along z), the same convention as the Laws kernel names and as
PyRadiomics' ``wavelet-LHL``. The 1-D filters are PyWavelets' decomposition filters
(``pywt.Wavelet(name).dec_lo`` / ``dec_hi``), applied by convolution. Even-length filters are
padded with one trailing zero so that tap ``len // 2`` is the centre (as in MIRP, whose output
reproduces the IBSI 2 consensus maps).

The transform is undecimated ("à trous", stationary): at decomposition level ``j`` the filters are
upsampled by inserting ``2^(j-1) - 1`` zeros between taps. The level-``L`` response of a sub-band
is the low-pass (``LL…L``) filtering at levels ``1 … L-1`` followed by the sub-band's filters at
level ``L``; every intermediate result is extended with the boundary mode.

Rotation invariance (IBSI 2): the response is pooled — by default averaged, as IBSI 2 specifies for
wavelets — over the 24 right-angle rotations of the whole filter cascade (2-D: 4), see
:mod:`radflow.filters.separable`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pywt
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
from radflow.filters.separable import AxisOp, centred, orientations, separable_response


def _discrete_wavelets() -> list[str]:
    return list(pywt.wavelist(kind="discrete"))


@dataclass(frozen=True)
class WaveletSettings:
    """Options of the separable wavelet filter.

    Attributes
    ----------
    wavelet
        A PyWavelets discrete wavelet name: ``haar``, ``db2``, ``db3``, ``coif1``, ``sym4``, ...
    band
        Sub-band letters ``L``/``H`` in x, y(, z) order, e.g. ``LLH`` (3-D) or ``HL`` (2-D).
        Case-insensitive; stored upper-case.
    level
        Decomposition level ≥ 1.
    rotation_invariant
        Pool over all right-angle rotations.
    pooling
        ``mean`` (IBSI 2 for wavelets) or ``max``; used only when ``rotation_invariant``.
    boundary
        ``mirror``, ``nearest``, ``wrap`` or ``constant``.
    dimensions
        ``3d`` (3 letters) or ``2d`` (2 letters, every axial slice separately).
    """

    wavelet: str
    band: str
    level: int = 1
    rotation_invariant: bool = False
    pooling: Pooling = "mean"
    boundary: Boundary = "mirror"
    dimensions: Dimensions = "3d"

    def __post_init__(self) -> None:
        names = _discrete_wavelets()
        if self.wavelet not in names:
            shown = "haar, db1-db38, sym2-sym20, coif1-coif17, bior*, rbio*, dmey"
            raise FilterError(f"wavelet: {self.wavelet!r} is not allowed; choose a PyWavelets "
                              f"discrete wavelet ({shown})")
        check_choice(self.dimensions, DIMENSIONS, "dimensions")
        wanted = 3 if self.dimensions == "3d" else 2
        band = str(self.band).upper()
        if len(band) != wanted or set(band) - {"L", "H"}:
            raise FilterError(f"band: {self.band!r} is not allowed; expected {wanted} letters "
                              f"L/H for dimensions={self.dimensions!r} (e.g. "
                              f"{'LLH' if wanted == 3 else 'LH'})")
        object.__setattr__(self, "band", band)
        object.__setattr__(self, "level", check_int(self.level, "level", minimum=1))
        if not isinstance(self.rotation_invariant, (bool, np.bool_)):
            raise FilterError(f"rotation_invariant: {self.rotation_invariant!r} is not allowed; "
                              "expected True or False")
        object.__setattr__(self, "rotation_invariant", bool(self.rotation_invariant))
        check_choice(self.pooling, POOLINGS, "pooling")
        check_choice(self.boundary, BOUNDARY_MODES, "boundary")


def upsample(kernel: np.ndarray, level: int) -> np.ndarray:
    """À trous filter of ``level``: ``2^(level-1) - 1`` zeros between the taps of a centred kernel.

    Parameters
    ----------
    kernel
        Odd-length kernel, shape (n,).
    level
        Decomposition level ≥ 1 (level 1 returns ``kernel``).

    Returns
    -------
    numpy.ndarray, shape (2^(level-1)·(n-1) + 1,)
        Centre tap stays at the centre.
    """
    out = kernel
    for _ in range(level - 1):
        up = np.zeros(2 * out.size - 1)
        up[::2] = out
        out = up
    return out


def wavelet_axis_ops(settings: WaveletSettings) -> list[AxisOp]:
    """Per-axis filter cascades in array axis order (``(z, y, x)``; 2-D: ``(y, x)``)."""
    w = pywt.Wavelet(settings.wavelet)
    lo, hi = centred(w.dec_lo), centred(w.dec_hi)
    pre = tuple(upsample(lo, j) for j in range(1, settings.level))
    ops = []
    for letter in reversed(settings.band):
        band = upsample(lo if letter == "L" else hi, settings.level)
        ops.append((*pre, band))
    return ops


def wavelet_filter(volume: np.ndarray, settings: WaveletSettings) -> np.ndarray:
    """Undecimated separable wavelet response of one sub-band.

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
    axes = filter_axes(arr.ndim, settings.dimensions)
    terms = orientations(wavelet_axis_ops(settings), settings.rotation_invariant)
    mode = scipy_mode(settings.boundary)
    if settings.rotation_invariant and settings.pooling == "max":
        return separable_response(arr, axes, terms, mode, "max")
    n = len(terms)
    return separable_response(arr, axes, [(o, s / n) for o, s in terms], mode, "sum")


def wavelet_image(image: sitk.Image, settings: WaveletSettings) -> sitk.Image:
    """Wavelet sub-band of a 3-D SimpleITK image; float64 result with the input's geometry."""
    warn_if_anisotropic(image, settings.dimensions, f"wavelet {settings.wavelet}")
    return apply_to_image(image, lambda arr: wavelet_filter(arr, settings))


def wavelet_feature_prefix(settings: WaveletSettings) -> str:
    """Image-type name of a wavelet sub-band: ``ibsi-wavelet-<name>-<band>-l<level>[-ri-<pool>]``.

    Examples: ``ibsi-wavelet-haar-LLH-l1``, ``ibsi-wavelet-db3-HHH-l2-ri-mean`` (``.`` in a
    wavelet name is written ``-``: ``bior1-3``). PyRadiomics reserves names starting with
    ``wavelet`` for its own (decimated) wavelet image types, hence ``ibsi-``.
    """
    prefix = (f"ibsi-wavelet-{settings.wavelet.replace('.', '-')}-{settings.band}"
              f"-l{settings.level}")
    if settings.rotation_invariant:
        prefix += f"-ri-{settings.pooling}"
    return prefix
