"""Negative controls of one image/mask pair: the image with its voxel values destroyed in a region.

After READII (Haibe-Kains lab, github.com/bhklab/readii, ``readii/negative_controls.py``): a
feature that predicts as well from a negative control as from the real image measures something
other than the tissue (the ROI's size, the scanner, the background). The mask is never changed,
so shape features of a control are those of the real ROI; the controls' features are kept beside
the real ones.

Definitions (``V`` = the voxel values of the region in the original image, ``n = |V|``)
---------------------------------------------------------------------------------------
Kinds:

* ``shuffled``: the region's voxels receive a random permutation of ``V`` (the multiset of
  values, and so the grey-level histogram, is kept; their places are not).
* ``randomised``: each voxel of the region receives an independent uniform random value between
  ``min V`` and ``max V``: for an integer pixel type an integer in ``[min V, max V]`` (both
  ends included, READII's ``integers(..., endpoint=True)``), for a floating-point pixel type a
  real number in ``[min V, max V)`` (READII always draws integers; radflow keeps float images'
  values continuous).
* ``randomised-sampled``: each voxel of the region receives a value drawn uniformly, with
  replacement, from ``V`` (READII's ``choice(..., replace=True)``).

Regions:

* ``roi``: the voxels with ``mask == label`` (READII: ``mask > 0``; radflow's ROI is one label of
  the label map);
* ``non-roi``: every other voxel of the image;
* ``full``: every voxel (the mask is not read).

Voxels outside the region keep their values; the pixel type and the grid are kept. The spelling
is radflow's (READII: ``randomized``, ``randomized_sampled``, ``non_roi``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

import numpy as np
import SimpleITK as sitk

from radflow.errors import ConfigError, PairingError
from radflow.reliability.masks import roi_array
from radflow.reliability.perturb import seed_for

ControlKind = Literal["shuffled", "randomised", "randomised-sampled"]
ControlRegion = Literal["roi", "non-roi", "full"]
CONTROL_KINDS: tuple[str, ...] = get_args(ControlKind)
CONTROL_REGIONS: tuple[str, ...] = get_args(ControlRegion)


@dataclass(frozen=True)
class NegativeControlSettings:
    """Which negative controls are made for every pair (built by :func:`from_mapping`); every
    kind is made on every region.

    Attributes
    ----------
    kinds
        Entries of :data:`CONTROL_KINDS`, distinct; default all three.
    regions
        Entries of :data:`CONTROL_REGIONS`, distinct; default all three.
    """

    kinds: tuple[ControlKind, ...] = ("shuffled", "randomised", "randomised-sampled")
    regions: tuple[ControlRegion, ...] = ("roi", "non-roi", "full")

    def __post_init__(self) -> None:
        for name, allowed in (("kinds", CONTROL_KINDS), ("regions", CONTROL_REGIONS)):
            values = getattr(self, name)
            if not isinstance(values, list | tuple) or not values \
                    or any(v not in allowed for v in values) or len(set(values)) != len(values):
                raise ConfigError(f"negative_controls.{name}: distinct entries of "
                                  f"{', '.join(allowed)} expected, got {values!r}")
            object.__setattr__(self, name, tuple(values))

    def names(self) -> tuple[str, ...]:
        """The controls' names (:func:`control_name`), kinds outer, regions inner."""
        return tuple(control_name(k, r) for k in self.kinds for r in self.regions)


def control_name(kind: str, region: str) -> str:
    """Name of a control, e.g. ``shuffled-roi`` (also the chain name of its seed,
    :func:`negative_controls`)."""
    _check(kind, region)
    return f"{kind}-{region}"


def _check(kind: str, region: str) -> None:
    if kind not in CONTROL_KINDS:
        raise ConfigError(f"negative control kind must be one of {', '.join(CONTROL_KINDS)}, "
                          f"got {kind!r}")
    if region not in CONTROL_REGIONS:
        raise ConfigError(f"negative control region must be one of "
                          f"{', '.join(CONTROL_REGIONS)}, got {region!r}")


def negative_control(image: sitk.Image, mask: sitk.Image, kind: ControlKind,
                     region: ControlRegion, rng: np.random.Generator, *,
                     label: int = 1) -> sitk.Image:
    """The negative control ``kind`` of ``image`` on ``region`` (definitions: module docstring).

    Parameters
    ----------
    image
        3-D image, any scalar pixel type.
    mask
        Label map on the grid of ``image`` (checked also for ``full``, so that every control of a
        pair fails alike).
    kind, region
        One of :data:`CONTROL_KINDS` and of :data:`CONTROL_REGIONS`.
    rng
        Source of all random draws.
    label
        ROI label.

    Returns
    -------
    SimpleITK.Image
        Same grid and pixel type as ``image``.

    Raises
    ------
    ConfigError
        Unknown kind or region.
    PairingError
        ``invalid-mask``, ``grid-mismatch``, ``empty-mask`` (:func:`roi_array`), or
        ``empty-region`` (the ROI fills the image, so ``non-roi`` has no voxel).
    """
    _check(kind, region)
    roi = roi_array(mask, label, image)
    values = sitk.GetArrayFromImage(image)
    if region == "full":
        values = _replace(values.ravel(), kind, rng).reshape(values.shape)
    else:
        where = roi if region == "roi" else ~roi
        if not where.any():
            raise PairingError(f"label {label} fills the image: the non-ROI region is empty",
                               reason="empty-region")
        values[where] = _replace(values[where], kind, rng)
    out = sitk.GetImageFromArray(values)
    out.CopyInformation(image)
    return out


def _replace(region: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """New values for the 1-D array ``region`` (same dtype, same length)."""
    if kind == "shuffled":
        return rng.permutation(region)
    if kind == "randomised-sampled":
        return rng.choice(region, size=region.size, replace=True)
    low, high = region.min(), region.max()
    if region.dtype.kind in "iu":
        return rng.integers(low, high, size=region.size, endpoint=True, dtype=region.dtype)
    if region.dtype.kind != "f":
        raise ConfigError(f"randomised negative control: pixel type {region.dtype} is neither "
                          "integer nor floating point")
    return rng.uniform(low, high, size=region.size).astype(region.dtype)


class NegativeControl(NamedTuple):
    """One negative control of a pair: ``name`` (:func:`control_name`) and its ``image`` (the
    pair's mask is unchanged)."""

    name: str
    image: sitk.Image


def negative_controls(image: sitk.Image, mask: sitk.Image, settings: NegativeControlSettings,
                      *, pair_id: str, label: int = 1) -> Iterator[NegativeControl]:
    """The pair's configured controls, made one at a time (a generator, like
    :func:`~radflow.reliability.perturb.perturbations`).

    Control ``name`` draws from ``default_rng(seed_for(pair_id, name, 0))``, so a rerun gives
    identical images.
    """
    for kind in settings.kinds:
        for region in settings.regions:
            name = control_name(kind, region)
            rng = np.random.default_rng(seed_for(pair_id, name, 0))
            yield NegativeControl(name, negative_control(image, mask, kind, region, rng,
                                                         label=label))

