"""Semantic size and density of a lesion: RECIST 1.1 diameters, 3-D size, intensity statistics and,
for PET, SUVmax, SUVpeak, MTV and TLG.

Feature families (names ``<family>_<Feature>``; the extract stage prefixes the image type)
-------------------------------------------------------------------------------------------
``recist``
    ``LongestDiameter`` (mm), ``LongestDiameterSlice`` (``k`` index of its slice),
    ``ShortAxisDiameter`` (mm), ``BidimensionalProduct`` (WHO, mm²).
``size``
    ``VoxelCount``, ``VoxelVolume`` and ``MeshVolume`` (mm³), ``Maximum3DDiameter`` (mm),
    ``MajorAxisLength``, ``MinorAxisLength``, ``LeastAxisLength`` (mm, PyRadiomics' definition),
    ``ComponentCount`` (26-connected components of the whole mask).
``density``
    ``Mean``, ``Median``, ``Minimum``, ``Maximum``, ``StandardDeviation`` (population) of the
    voxel values inside the region, in modality units (HU, SUV, ...).
``suv`` (modality ``PT`` only)
    ``SUVmax``, ``SUVpeak``, ``MTV`` (ml), ``TLG`` (SUV x ml), ``MTVThreshold`` (the SUV used).

Geometry conventions (diameters between boundary-face centres, acquisition plane) are those of
:mod:`radflow.features.calipers`. SUVpeak is the highest mean of the voxels whose centres lie in a
sphere of ``suv_peak_volume_ml`` (1 ml: radius 6.20 mm) centred on any voxel of the region, the
sphere's voxels taken from the whole image (PERCIST 1.0, Wahl et al. 2009, J Nucl Med 50 Suppl 1:
122S; the IBSI "global intensity peak", 0F91). MTV counts the region's voxels at or above a
threshold: by default 41 % of the region's SUVmax (the fixed relative threshold of the EANM
procedure guidelines, Boellaard et al. 2015, Eur J Nucl Med Mol Imaging 42:328); TLG is MTV x the
mean SUV of those voxels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.ndimage as ndi
import SimpleITK as sitk
from scipy.signal import fftconvolve

from radflow.errors import ConfigError
from radflow.features import calipers
from radflow.features.calipers import Grid
from radflow.features.roi_input import roi_arrays

Components = Literal["all", "largest", "each"]
ThresholdKind = Literal["relative", "absolute"]
#: A point in patient coordinates (mm), ITK/LPS axes.
Point = tuple[float, float, float]

COMPONENTS: tuple[str, ...] = ("all", "largest", "each")
THRESHOLD_KINDS: tuple[str, ...] = ("relative", "absolute")
#: 26-connectivity of the components.
_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class SemanticSettings:
    """Options of the semantic features.

    Attributes
    ----------
    components
        Which part of the mask is measured. ``all``: the whole mask as one lesion (a diameter may
        span the gap between components, as a caliper would); ``largest``: the 26-connected
        component with the most voxels (the first in scan order on a tie); ``each``: every
        component on its own, largest first.
    suv_peak_volume_ml
        Volume of the SUVpeak sphere in ml (1.0: PERCIST, IBSI).
    mtv_threshold
        MTV threshold: a fraction of the region's SUVmax (``relative``, in ``(0, 1]``) or an SUV
        (``absolute``, e.g. 2.5).
    mtv_threshold_kind
        ``relative`` (default, 0.41: the EANM 41 % isocontour) or ``absolute``.
    """

    components: Components = "all"
    suv_peak_volume_ml: float = 1.0
    mtv_threshold: float = 0.41
    mtv_threshold_kind: ThresholdKind = "relative"

    def __post_init__(self) -> None:
        if self.components not in COMPONENTS:
            raise ConfigError(f"semantic.components: {self.components!r} is not one of "
                              f"{', '.join(COMPONENTS)}")
        if self.mtv_threshold_kind not in THRESHOLD_KINDS:
            raise ConfigError(f"semantic.mtv_threshold_kind: {self.mtv_threshold_kind!r} is not "
                              f"one of {', '.join(THRESHOLD_KINDS)}")
        for name in ("suv_peak_volume_ml", "mtv_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    math.isfinite(value) and value > 0):
                raise ConfigError(f"semantic.{name}: {value!r} must be a positive number")
        if self.mtv_threshold_kind == "relative" and self.mtv_threshold > 1:
            raise ConfigError(f"semantic.mtv_threshold: {self.mtv_threshold} is a fraction of "
                              "SUVmax with mtv_threshold_kind: relative and must be <= 1")


@dataclass(frozen=True)
class Landmarks:
    """End points for the report's overlays, in patient coordinates (mm).

    Attributes
    ----------
    slice_index
        ``k`` index of the slice of the longest in-plane diameter.
    long_axis, short_axis
        End points of the RECIST longest diameter and short axis (on that slice).
    diameter_3d
        End points of the longest 3-D diameter (boundary-face centres).
    suv_peak_centre
        Centre of the SUVpeak sphere (PET only, else None).
    """

    slice_index: int
    long_axis: tuple[Point, Point]
    short_axis: tuple[Point, Point]
    diameter_3d: tuple[Point, Point]
    suv_peak_centre: Point | None = None


@dataclass(frozen=True)
class RegionResult:
    """Features of one measured region.

    Attributes
    ----------
    component
        0 for the whole mask (``all``), else the component's rank by voxel count (1 = largest).
    features
        ``<family>_<Feature>`` -> value (module notes).
    landmarks
        End points for overlays.
    """

    component: int
    features: dict[str, float]
    landmarks: Landmarks


@dataclass(frozen=True)
class SemanticResult:
    """What :func:`semantic_features` measured.

    Attributes
    ----------
    regions
        One region for ``all`` (component 0) and ``largest`` (component 1); one per component,
        largest first, for ``each``.
    """

    regions: tuple[RegionResult, ...]

    @property
    def features(self) -> dict[str, float]:
        """Features of the first region (the only one unless ``components: each``)."""
        return self.regions[0].features

    @property
    def landmarks(self) -> Landmarks:
        """Landmarks of the first region."""
        return self.regions[0].landmarks


def semantic_features(image: sitk.Image, mask: sitk.Image, settings: SemanticSettings, *,
                      modality: str = "") -> SemanticResult:
    """RECIST diameters, 3-D size and density of the lesion in ``mask``.

    Parameters
    ----------
    image
        3-D image in modality units (HU, SUV for PET).
    mask
        Binary (0/1) 3-D image on the grid of ``image``, not empty.
    settings
        Options.
    modality
        DICOM modality; ``PT`` adds the ``suv`` family.

    Returns
    -------
    SemanticResult

    Raises
    ------
    PairingError
        ``grid-mismatch`` (mask not on the image grid), ``invalid-mask`` (not 3-D, values other
        than 0 and 1) or ``empty-mask`` (the checks of
        :func:`radflow.features.roi_input.roi_arrays`).
    """
    arrays = roi_arrays(image, mask, family="semantic")
    roi, outer = arrays.roi, arrays.box
    values = sitk.GetArrayViewFromImage(image)  # the whole image: SUVpeak spheres reach outside
    grid = Grid.of(image.GetOrigin(), image.GetSpacing(), image.GetDirection())
    labels, n_components = ndi.label(roi, structure=_CONNECTIVITY)
    sizes = np.bincount(labels.ravel())[1:]
    ranked = np.argsort(-sizes, kind="stable") + 1  # labels, largest first
    if settings.components == "all":
        selection = [(0, roi)]
    else:
        chosen = ranked[:1] if settings.components == "largest" else ranked
        selection = [(rank, labels == lab) for rank, lab in enumerate(chosen, start=1)]
    regions = tuple(
        _measure(values, _Region.of(region, outer, grid), grid, settings, modality, component,
                 n_components)
        for component, region in selection)
    return SemanticResult(regions)


@dataclass(frozen=True)
class _Region:
    """One measured region: its bounding box in the image (``(z, y, x)`` slices), its boolean
    mask cropped to that box and the box's grid (index 0 = the box's first voxel)."""

    box: tuple[slice, ...]
    mask: np.ndarray
    grid: Grid

    @classmethod
    def of(cls, region: np.ndarray, outer: tuple[slice, ...], grid: Grid) -> _Region:
        """Region from a boolean array on the ``outer`` box of the image."""
        inner = ndi.find_objects(region.view(np.uint8))[0]
        box = tuple(slice(o.start + b.start, o.start + b.stop)
                    for o, b in zip(outer, inner, strict=True))
        start = np.array([box[2].start, box[1].start, box[0].start], dtype=float)  # (i, j, k)
        return cls(box, region[inner], Grid(grid.origin + grid.matrix @ start, grid.matrix))


def _measure(values: np.ndarray, region: _Region, grid: Grid, settings: SemanticSettings,
             modality: str, component: int, n_components: int) -> RegionResult:
    """Features and landmarks of one region; ``values`` is the whole image ``(z, y, x)``."""
    sub, sub_grid, k0 = region.mask, region.grid, region.box[0].start
    long_axis, _ = calipers.inplane_longest(sub, sub_grid)
    k_long = int(long_axis.ends[0, 2])
    short_axis = calipers.perpendicular_extent(sub[k_long], k_long, long_axis, sub_grid)
    diameter = calipers.longest_3d(sub, sub_grid)
    least, minor, major = calipers.principal_axes(sub, sub_grid)
    inside = np.asarray(values[region.box][sub], dtype=np.float64)
    features = {
        "recist_LongestDiameter": long_axis.length,
        "recist_LongestDiameterSlice": float(k_long + k0),
        "recist_ShortAxisDiameter": short_axis.length,
        "recist_BidimensionalProduct": long_axis.length * short_axis.length,
        "size_VoxelCount": float(inside.size),
        "size_VoxelVolume": inside.size * grid.voxel_volume,
        "size_MeshVolume": calipers.mesh_volume(sub, sub_grid),
        "size_Maximum3DDiameter": diameter.length,
        "size_MajorAxisLength": float(major),
        "size_MinorAxisLength": float(minor),
        "size_LeastAxisLength": float(least),
        "size_ComponentCount": float(n_components),
        "density_Mean": float(inside.mean()),
        "density_Median": float(np.median(inside)),
        "density_Minimum": float(inside.min()),
        "density_Maximum": float(inside.max()),
        "density_StandardDeviation": float(inside.std()),
    }
    peak_centre: Point | None = None
    if modality.upper() == "PT":
        suv, peak_centre = _suv_features(values, region, inside, grid, settings)
        features.update(suv)
    landmarks = Landmarks(
        slice_index=k_long + k0,
        long_axis=_points(sub_grid, long_axis.ends),
        short_axis=_points(sub_grid, short_axis.ends),
        diameter_3d=_points(sub_grid, diameter.ends),
        suv_peak_centre=peak_centre)
    return RegionResult(component, features, landmarks)


def _points(grid: Grid, ends: np.ndarray) -> tuple[Point, Point]:
    """Two continuous indices (shape ``(2, 3)``) as patient points."""
    a, b = (tuple(float(c) for c in p) for p in grid.to_patient(ends))
    return (a[0], a[1], a[2]), (b[0], b[1], b[2])


def sphere_kernel(grid: Grid, volume_ml: float) -> np.ndarray:
    """Voxels whose centres lie within the sphere of ``volume_ml`` around a voxel centre.

    Parameters
    ----------
    grid
        Image grid (spacing and direction; the origin is not used).
    volume_ml
        Sphere volume in ml (1 ml = 1000 mm³).

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(2hk+1, 2hj+1, 2hi+1)`` (z, y, x order) of 0 and 1, centred.
    """
    radius = (3.0 * 1000.0 * volume_ml / (4.0 * math.pi)) ** (1.0 / 3.0)
    # |offset_a| <= radius * |row a of M^-1| bounds every offset inside the sphere
    half = np.ceil(radius * np.linalg.norm(np.linalg.inv(grid.matrix), axis=1)).astype(int)
    axes = [np.arange(-h, h + 1) for h in half]  # i, j, k
    di, dj, dk = np.meshgrid(*axes, indexing="ij")
    offsets = np.stack([di, dj, dk], axis=-1).astype(float) @ grid.matrix.T
    inside = np.linalg.norm(offsets, axis=-1) <= radius * (1 + 1e-12)
    return inside.transpose(2, 1, 0).astype(np.float64)


def _suv_features(values: np.ndarray, region: _Region, inside: np.ndarray, grid: Grid,
                  settings: SemanticSettings) -> tuple[dict[str, float], Point]:
    """SUVmax, SUVpeak (and its centre), MTV, TLG of one region; ``values``: the whole image."""
    kernel = sphere_kernel(grid, settings.suv_peak_volume_ml)
    crop = tuple(slice(max(0, b.start - h // 2), min(n, b.stop + h // 2))
                 for b, h, n in zip(region.box, kernel.shape, values.shape, strict=True))
    block = np.asarray(values[crop], dtype=np.float64)
    roi = np.zeros(block.shape, dtype=bool)
    roi[tuple(slice(b.start - c.start, b.stop - c.start)
              for b, c in zip(region.box, crop, strict=True))] = region.mask
    sums = fftconvolve(block, kernel, mode="same")
    counts = np.rint(fftconvolve(np.ones(block.shape), kernel, mode="same"))
    means = np.where(roi, sums / np.maximum(counts, 1.0), -np.inf)
    flat = int(np.argmax(means))
    z, y, x = np.unravel_index(flat, means.shape)
    centre = np.array([[x + crop[2].start, y + crop[1].start, z + crop[0].start]], dtype=float)
    c = grid.to_patient(centre)[0]
    suv_max = float(inside.max())
    threshold = (settings.mtv_threshold * suv_max if settings.mtv_threshold_kind == "relative"
                 else settings.mtv_threshold)
    metabolic = inside[inside >= threshold]
    mtv_ml = metabolic.size * grid.voxel_volume / 1000.0
    tlg = mtv_ml * float(metabolic.mean()) if metabolic.size else 0.0
    return ({"suv_SUVmax": suv_max, "suv_SUVpeak": float(means.flat[flat]),
             "suv_MTV": mtv_ml, "suv_TLG": tlg, "suv_MTVThreshold": float(threshold)},
            (float(c[0]), float(c[1]), float(c[2])))
