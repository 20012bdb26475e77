"""Image perturbations of one image/mask pair, and their chains (the reliability stage's input).

After Zwanenburg et al. (2019), "Assessing robustness of radiomic features by image
perturbation", Sci Rep 9:614, and its implementation in MIRP (github.com/oncoray/mirp). Each
perturbed copy of a pair is extracted like the original (same params set, same filters); the
spread of a feature over the copies measures its robustness.

Perturbations (each a pure function of its inputs and, where random, of a numpy ``Generator``)
---------------------------------------------------------------------------------------------
* ``noise`` (:func:`add_noise`): Gaussian noise of standard deviation ``sigma`` added to every
  voxel; by default ``sigma`` is the image's own noise level (:func:`estimate_noise`).
* ``rotation`` (:func:`~radflow.reliability.spatial.rotate`): the image and the ROI turned about
  the ROI's centroid.
* ``translation`` (:func:`~radflow.reliability.spatial.translate`): the sampling grid shifted by
  a fraction of a voxel.
* ``volume`` (:func:`~radflow.reliability.masks.adapt_volume`): the ROI grown or shrunk by a
  fraction of its volume.
* ``contour`` (:func:`~radflow.reliability.masks.randomise_contour`): the ROI rebuilt from
  supervoxels.

A :class:`Chain` applies some of them in order; :func:`perturbations` yields a chain's copies of
one pair one at a time. Copy ``i`` of a chain draws everything from the seed
:func:`seed_for` ``(pair_id, chain, i)`` (SHA-256 of the three, not Python's salted ``hash()``),
so a rerun, or a single copy recomputed alone, gives identical arrays.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

import numpy as np
import pywt
import SimpleITK as sitk
from scipy import ndimage as ndi

from radflow.errors import ConfigError
from radflow.reliability.masks import adapt_volume, randomise_contour, roi_array
from radflow.reliability.spatial import Axis, Interpolation, rotate, translate
from radflow.settings import check_choices, from_mapping

#: A perturbation step of a chain.
Step = Literal["noise", "rotation", "translation", "volume", "contour"]
STEPS: tuple[str, ...] = get_args(Step)

#: Median absolute deviation of a standard normal variable, Φ⁻¹(0.75). (MIRP divides by 0.6754,
#: a transposition of these digits; the estimate differs by 0.13 %.)
MAD_NORMAL = 0.6745

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]*\Z")


@dataclass(frozen=True)
class Chain:
    """An ordered list of perturbation steps, applied to every copy.

    Attributes
    ----------
    name
        Lower-case letters, digits and ``-`` (part of the copies' names and of their seeds).
    steps
        Steps in the order applied, each one of :data:`STEPS`, none twice.
    copies
        Number of perturbed copies per pair (≥ 1).
    """

    name: str
    steps: tuple[Step, ...]
    copies: int = 10

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError(f"perturbation chain name {self.name!r}: use lower-case letters, "
                              "digits and '-'")
        steps = tuple(self.steps) if isinstance(self.steps, list | tuple) else ()
        unknown = [s for s in steps if s not in STEPS]
        if not steps or unknown or len(set(steps)) != len(steps):
            raise ConfigError(f"perturbation chain {self.name!r}: steps must be distinct "
                              f"entries of {', '.join(STEPS)}, got {self.steps!r}")
        object.__setattr__(self, "steps", steps)
        if isinstance(self.copies, bool) or not isinstance(self.copies, int) or self.copies < 1:
            raise ConfigError(f"perturbation chain {self.name!r}: copies must be an integer "
                              f">= 1, got {self.copies!r}")


@dataclass(frozen=True)
class PerturbationSettings:
    """How the perturbed copies of a pair are made (built by :func:`from_mapping`).

    Each copy draws one value per step from the lists below with its own generator, so that the
    copies of a chain cover the configured values in random combinations.

    Attributes
    ----------
    chains
        The chains (a list of mappings is turned into :class:`Chain`\\ s); names distinct.
        Default: ``ntcv``, noise → translation → contour → volume, 10 copies.
    noise_sigma
        Standard deviation of the added noise (image units); None: estimated per image
        (:func:`estimate_noise`), once per pair.
    rotation_angles
        Angles (degrees) a ``rotation`` step draws from.
    rotation_axis
        Grid axis of the rotations.
    translation_fractions
        Fractions of a voxel, each in [0, 1), a ``translation`` step draws from, independently
        along x, y and z.
    volume_fractions
        Relative volume changes, each > -1, a ``volume`` step draws from.
    contour_boundary_mm
        Margin (mm) around the ROI within which supervoxels are made (MIRP: 25 mm).
    interpolation
        Image interpolation of rotations and translations.
    """

    chains: tuple[Chain, ...] = (Chain("ntcv", ("noise", "translation", "contour", "volume")),)
    noise_sigma: float | None = None
    rotation_angles: tuple[float, ...] = (-15.0, -10.0, -5.0, 5.0, 10.0, 15.0)
    rotation_axis: Axis = "z"
    translation_fractions: tuple[float, ...] = (0.25, 0.5, 0.75)
    volume_fractions: tuple[float, ...] = (-0.2, -0.1, 0.1, 0.2)
    contour_boundary_mm: float = 25.0
    interpolation: Interpolation = "linear"

    def __post_init__(self) -> None:
        check_choices(self, "perturbation")
        chains = tuple(from_mapping(Chain, c, section="perturbation.chains")
                       if isinstance(c, Mapping) else c for c in self.chains)
        names = [c.name for c in chains]
        if not all(isinstance(c, Chain) for c in chains) or len(set(names)) != len(names):
            raise ConfigError(f"perturbation.chains: chains with distinct names expected, "
                              f"got {names}")
        object.__setattr__(self, "chains", chains)
        if self.noise_sigma is not None and not _number_in(self.noise_sigma, 0, math.inf):
            raise ConfigError(f"perturbation.noise_sigma must be a number >= 0 or null, "
                              f"got {self.noise_sigma!r}")
        for name, allowed, valid in (
                ("rotation_angles", "[-360, 360]", lambda v: _number_in(v, -360, 360)),
                ("translation_fractions", "[0, 1)", lambda v: _number_in(v, 0, 1)),
                ("volume_fractions", "> -1", lambda v: _number_in(v, -1, math.inf) and v > -1)):
            values = getattr(self, name)
            if not isinstance(values, list | tuple) or not values \
                    or not all(map(valid, values)):
                raise ConfigError(f"perturbation.{name}: a non-empty list of numbers in "
                                  f"{allowed} expected, got {values!r}")
            object.__setattr__(self, name, tuple(float(v) for v in values))
        if not _number_in(self.contour_boundary_mm, 0, math.inf):
            raise ConfigError("perturbation.contour_boundary_mm must be a number >= 0, "
                              f"got {self.contour_boundary_mm!r}")


def _number_in(value: object, low: float, high: float) -> bool:
    """``value`` is a real number in [low, high) (``high`` included when infinite or 360)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return low <= value < high or (value == high == 360)


class PerturbedCopy(NamedTuple):
    """One perturbed copy of a pair.

    Attributes
    ----------
    name
        ``<chain>-<index>`` (e.g. ``ntcv-3``).
    image, mask
        The perturbed image and label map (ROI = ``label``, the input mask's pixel type), on one
        grid. The image is float32 (float64 if the input was) once a noise, rotation or
        translation step has run; a chain of mask steps only returns the original image.
    parameters
        What was drawn, for the records: ``noise_sigma``, ``rotation_deg``,
        ``translation_x``/``_y``/``_z`` (voxel fractions), ``volume_fraction``; a ``contour``
        step draws no parameter (its supervoxel draws follow from the seed).
    """

    name: str
    image: sitk.Image
    mask: sitk.Image
    parameters: Mapping[str, float]


def seed_for(pair_id: str, chain_name: str, index: int) -> int:
    """Seed (0 ≤ seed < 2**64) of copy ``index`` of ``chain_name`` for pair ``pair_id``.

    The first 8 bytes of SHA-256 over the three values: the same in every process and on every
    platform (Python's ``hash()`` of a string changes with ``PYTHONHASHSEED``).
    """
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ConfigError(f"perturbation copy index must be an integer >= 0, got {index!r}")
    text = "\x1f".join(("radflow-perturbation", str(pair_id), str(chain_name), str(index)))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def estimate_noise(image: sitk.Image) -> float:
    """Noise standard deviation of ``image`` (Chang, Yu & Vetterli 2000, as MIRP).

    The in-plane HH sub-band of an undecimated one-level wavelet transform (the ``coif1``
    decomposition high-pass filter along y, then along x; edges reflected) holds mostly noise;
    its median absolute value divided by :data:`MAD_NORMAL` estimates the noise SD. The filter
    has unit energy, so white Gaussian noise of SD ``s`` gives ``s``. Computed over the whole
    image, slice by slice.

    Returns
    -------
    float
        Estimated SD in image units (0 for a piecewise-constant image).
    """
    high = np.asarray(pywt.Wavelet("coif1").dec_hi, dtype=np.float64)
    values = sitk.GetArrayViewFromImage(image)
    planes = values if values.ndim == 3 else values[np.newaxis]
    response = np.empty(planes.shape, dtype=np.float32)
    for k, plane in enumerate(planes):
        hh = ndi.convolve1d(np.asarray(plane, dtype=np.float64), high, axis=0)
        response[k] = np.abs(ndi.convolve1d(hh, high, axis=1))
    return float(np.median(response)) / MAD_NORMAL


def add_noise(image: sitk.Image, rng: np.random.Generator,
              sigma: float | None = None) -> sitk.Image:
    """``image`` plus Gaussian noise of SD ``sigma`` (None: :func:`estimate_noise`).

    Returns
    -------
    SimpleITK.Image
        Same grid; float32 (float64 if ``image`` is float64).
    """
    if sigma is None:
        sigma = estimate_noise(image)
    if not _number_in(sigma, 0, math.inf):
        raise ConfigError(f"noise sigma must be a number >= 0, got {sigma!r}")
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    values += rng.normal(0.0, sigma, values.shape)
    return _float_image(values, image)


def _float_image(values: np.ndarray, like: sitk.Image) -> sitk.Image:
    dtype = np.float64 if like.GetPixelID() == sitk.sitkFloat64 else np.float32
    out = sitk.GetImageFromArray(values.astype(dtype, copy=False))
    out.CopyInformation(like)
    return out


def noise_level(image: sitk.Image, chain: Chain, settings: PerturbationSettings) -> float | None:
    """The SD a chain's ``noise`` step adds: the configured one, else estimated; None without
    a noise step."""
    if "noise" not in chain.steps:
        return None
    return settings.noise_sigma if settings.noise_sigma is not None else estimate_noise(image)


def perturbed_copy(image: sitk.Image, mask: sitk.Image, chain: Chain,
                   settings: PerturbationSettings, *, pair_id: str, index: int, label: int = 1,
                   sigma: float | None = None) -> PerturbedCopy:
    """Copy ``index`` of ``chain`` for one pair: the chain's steps applied in order.

    Step ``k`` draws from its own generator, child ``k`` of ``SeedSequence(seed_for(pair_id,
    chain.name, index))``. ``sigma`` is the noise SD (:func:`noise_level`; computed here when
    None and the chain adds noise).

    Raises
    ------
    PairingError
        From the steps: ``invalid-mask``, ``grid-mismatch``, ``empty-mask`` (also a ROI that a
        rotation, translation or shrinkage empties), ``roi-too-large``.
    """
    children = np.random.SeedSequence(seed_for(pair_id, chain.name, index)).spawn(
        len(chain.steps))
    roi_array(mask, label, image)
    parameters: dict[str, float] = {}
    for step, child in zip(chain.steps, children, strict=True):
        rng = np.random.default_rng(child)
        if step == "noise":
            if sigma is None:
                sigma = noise_level(image, chain, settings)
            parameters["noise_sigma"] = float(sigma)  # type: ignore[arg-type]
            image = add_noise(image, rng, sigma)
        elif step == "rotation":
            angle = float(rng.choice(settings.rotation_angles))
            parameters["rotation_deg"] = angle
            image, mask = rotate(image, mask, angle, settings.rotation_axis, label=label,
                                 interpolation=settings.interpolation)
        elif step == "translation":
            shift = [float(v) for v in rng.choice(settings.translation_fractions, size=3)]
            parameters.update(zip(("translation_x", "translation_y", "translation_z"), shift,
                                  strict=True))
            image, mask = translate(image, mask, shift, label=label,
                                    interpolation=settings.interpolation)
        elif step == "volume":
            fraction = float(rng.choice(settings.volume_fractions))
            parameters["volume_fraction"] = fraction
            mask = adapt_volume(mask, fraction, label=label, rng=rng)
        else:  # contour
            mask = randomise_contour(image, mask, rng, label=label,
                                     boundary_mm=settings.contour_boundary_mm)
    return PerturbedCopy(f"{chain.name}-{index}", image, mask, parameters)


def perturbations(image: sitk.Image, mask: sitk.Image, chain: Chain,
                  settings: PerturbationSettings, *, pair_id: str, label: int = 1
                  ) -> Iterator[PerturbedCopy]:
    """The ``chain.copies`` perturbed copies of one pair, made one at a time.

    A generator: each copy is built from the original image and mask when the caller asks for
    it, so extracting the copies one after the other holds one copy (and the original) in memory,
    never all of them. The noise SD is estimated once per pair (on the original image).

    Parameters
    ----------
    image, mask
        The pair (3-D; mask a label map on the image grid).
    chain, settings
        What to do.
    pair_id
        The pair's key: with the chain name and the copy index it makes each copy's seed.
    label
        ROI label.

    Yields
    ------
    PerturbedCopy
        Copies ``0 … chain.copies − 1`` in order.
    """
    roi_array(mask, label, image)
    sigma = noise_level(image, chain, settings)
    for index in range(chain.copies):
        yield perturbed_copy(image, mask, chain, settings, pair_id=pair_id, index=index,
                             label=label, sigma=sigma)
