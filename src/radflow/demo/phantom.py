"""Patient profiles and the voxel phantom of the demo cohort (see :mod:`radflow.demo`).

Everything here is pure computation: grids, label maps and Hounsfield-unit volumes, all derived
from the same few parameters that :mod:`radflow.demo` hands to
:func:`radflow.demo.synthetic.write_series`, so masks need not be read back from DICOM.

Volumes are indexed ``[k, j, i]`` (slice, row, column) in *slice-normal order*: ``k = 0`` is the
slice at :attr:`Grid.origin`, further slices follow the normal ``row x column``. Directions are
axis-aligned (``row`` is +-x, ``column`` is +y), so index offsets times spacing are offsets along
LPS x, y, z up to sign, and ellipsoids aligned with LPS axes are aligned with the voxel grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

NODE_LABEL = 2
_SIZE = (64, 64, 36)
_SLICE_MM = 2.0
_HU_RANGE = (-1024.0, 3071.0)


@dataclass(frozen=True)
class Vendor:
    """Scanner vendor conventions: names, kernels (soft, sharp) and stored-value encoding."""

    manufacturer: str
    model: str
    software: str
    kernels: tuple[str, str]
    dtype: type[np.integer]
    intercept: float


@dataclass(frozen=True)
class Ellipsoid:
    """An LPS-axis-aligned ellipsoid centred on a voxel centre of the analysed grid.

    ``semi_axes`` are (x, y, z) in mm; ``offset`` is (column, row) relative to the central
    column/row 32 and the absolute slice index (slice-normal order).
    """

    semi_axes: tuple[float, float, float]
    offset: tuple[int, int, int]


@dataclass(frozen=True)
class Profile:
    """Everything that differs between demo patients (identity, scanner, anatomy, follow-up);
    the binary outcome is planted from the lesion volume (:mod:`radflow.demo.clinical`)."""

    name: str
    charset: str | tuple[str, ...] | None
    sex: str
    birth_date: str
    study_date: str
    weight_kg: float
    institution: str
    vendor: Vendor
    kvp: int
    ma: int
    ctdi_vol: float
    spacing: float
    feet_first: bool
    second: str  # "thick": 4.0 mm reconstruction; "sharp": 2.0 mm sharp-kernel reconstruction
    lesion: Ellipsoid
    node: Ellipsoid | None
    lesion_hu: float
    heterogeneity: float
    necrosis: float
    followup_months: float
    event: int


_SIEMENS = Vendor("SIEMENS", "SOMATOM Definition AS+", "syngo CT VA48A", ("B30f", "B70f"),
                  np.uint16, -1024.0)
_GE = Vendor("GE MEDICAL SYSTEMS", "Revolution CT", "revo_ct_22BC.50", ("STANDARD", "LUNG"),
             np.int16, -1024.0)
_PHILIPS = Vendor("Philips", "Brilliance 64", "4.1.6", ("B", "L"), np.uint16, -1024.0)
_CANON = Vendor("CANON_MEC", "Aquilion ONE", "V10.12", ("FC08", "FC52"), np.int16, 0.0)
_KR_IR149 = ("", "ISO 2022 IR 149")

#: Scanner settings are header values only (no pixel depends on them); patient 2 (GE, 100 kVp,
#: 50 mAs, CTDIvol 2.4 mGy) is a low-dose scan, the others routine chest CT, so that the
#: lung-screening protocol gate (README, "Protocol QC gates") tells them apart.
#: Semi-axes were chosen by a search (longest axis in-plane, ending 5/8..7/8 voxel beyond a voxel
#: centre; odd z semi-axes in mm so no slice centre lies on the surface) such that the voxelised
#: volume and PyRadiomics' VoxelVolume, MeshVolume and Maximum3DDiameter are within 1.2 % of the
#: analytic values, both on the native grid and after PyRadiomics' resampling to 1 x 1 x 1 mm
#: (nearest-neighbour mask), as config/pyradiomics.yaml does. tests/test_demo.py checks 2 %.
PROFILES: tuple[Profile, ...] = (
    Profile("Baek^Seoyeon=白^瑞娟=백^서연", _KR_IR149, "F", "19580314", "20230412", 58.5,
            "한빛데모병원", _SIEMENS, 120, 180, 9.4, 1.0, False, "thick",
            Ellipsoid((12.875, 8.875, 11.0), (-9, -2, 17)), None, 95.0, 18.0, 0.0, 14.2, 1),
    Profile("Kowalski^Anna", "ISO_IR 100", "F", "19630927", "20230519", 64.0,
            "St. Ignatius Demo Hospital", _GE, 100, 100, 2.4, 1.0, False, "sharp",
            Ellipsoid((6.25, 10.75, 9.0), (-9, -2, 17)),
            Ellipsoid((5.125, 8.875, 7.0), (17, 2, 20)), 70.0, 10.0, 0.0, 38.5, 0),
    Profile("정^민준", "ISO_IR 192", "M", "19490102", "20230703", 71.0,
            "Hanbit Demo Medical Center", _SIEMENS, 120, 250, 11.8, 1.0, False, "thick",
            Ellipsoid((13.875, 9.125, 11.0), (-8, -2, 17)), None, 105.0, 30.0, 40.0, 9.8, 1),
    Profile("Müller^Jürgen", "ISO_IR 100", "M", "19711203", "20230822", 88.5,
            "Klinikum Demo-Süd", _PHILIPS, 120, 200, 8.7, 1.0, False, "sharp",
            Ellipsoid((8.875, 4.875, 7.0), (-9, -2, 17)), None, 65.0, 8.0, 0.0, 41.0, 0),
    Profile("O'Brien^Siobhán", "ISO_IR 192", "F", "19550619", "20231010", 60.0,
            "Mercy Demo University Hospital", _CANON, 120, 160, 7.9, 1.25, True, "thick",
            Ellipsoid((15.78125, 10.625, 9.0), (-9, -2, 17)),
            Ellipsoid((8.4375, 6.0, 7.0), (17, 2, 20)), 100.0, 25.0, 35.0, 26.0, 0),
    Profile("Novak^Tomas", None, "M", "19660830", "20231128", 79.5,
            "St. Ignatius Demo Hospital", _GE, 120, 210, 9.0, 1.0, False, "sharp",
            Ellipsoid((9.25, 14.875, 9.0), (-9, -2, 17)), None, 80.0, 12.0, 0.0, 30.2, 1),
    Profile("Kang^Jiho=姜^智浩=강^지호", _KR_IR149, "M", "19520211", "20240116", 69.0,
            "한빛데모병원", _SIEMENS, 100, 190, 6.8, 1.0, False, "thick",
            Ellipsoid((11.875, 9.625, 9.0), (-9, -2, 17)), None, 90.0, 22.0, 0.0, 11.5, 1),
    Profile("Dubois^Élodie", "ISO_IR 100", "F", "19690505", "20240227", 55.0,
            "Klinikum Demo-Süd", _PHILIPS, 100, 170, 5.9, 1.0, False, "sharp",
            Ellipsoid((7.625, 12.75, 9.0), (-9, -2, 17)), None, 75.0, 14.0, 0.0, 44.0, 0),
)


@dataclass(frozen=True)
class Grid:
    """A regular image grid in LPS as a DICOM series defines it.

    ``size`` is (columns, rows, slices); ``spacing`` (x, y, slice) mm; ``origin`` is the
    ImagePositionPatient of the first slice in slice-normal order; ``row``/``column`` are the
    ImageOrientationPatient direction cosines.
    """

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    row: tuple[float, float, float]
    column: tuple[float, float, float]

    @property
    def normal(self) -> tuple[float, float, float]:
        """Slice normal ``row x column``."""
        return tuple(float(v) for v in np.cross(self.row, self.column))  # type: ignore[return-value]

    @property
    def direction(self) -> tuple[float, ...]:
        """Row-major 3x3 direction matrix (columns: row, column, normal), as SimpleITK uses."""
        matrix = np.column_stack([self.row, self.column, self.normal])
        return tuple(float(v) for v in matrix.ravel())

    def point(self, i: float, j: float, k: float) -> tuple[float, float, float]:
        """LPS position (mm) of voxel index (i, j, k)."""
        p = (np.asarray(self.origin) + i * self.spacing[0] * np.asarray(self.row)
             + j * self.spacing[1] * np.asarray(self.column)
             + k * self.spacing[2] * np.asarray(self.normal))
        return tuple(float(v) for v in p)  # type: ignore[return-value]

    def as_json(self) -> dict[str, Any]:
        """The grid as JSON-ready lists (SimpleITK conventions)."""
        return {"size": list(self.size), "spacing_mm": list(self.spacing),
                "origin_lps_mm": list(self.origin), "direction": list(self.direction)}


@dataclass(frozen=True)
class Images:
    """Rendered volumes of one patient.

    ``analysed`` and ``labels`` have shape (slices, rows, columns) on the analysed grid;
    ``second`` is (grid, HU volume, kernel) of the second reconstruction.
    """

    analysed: np.ndarray
    labels: np.ndarray
    second: tuple[Grid, np.ndarray, str]


def analysed_grid(profile: Profile, index: int) -> Grid:
    """The analysed 2.0 mm series' grid: 64 x 64 x 36, centred on a patient-specific table spot."""
    s = profile.spacing
    row = (-1.0, 0.0, 0.0) if profile.feet_first else (1.0, 0.0, 0.0)
    column = (0.0, 1.0, 0.0)
    slot = index % 8
    centre = np.array([-12.0 + 2.5 * slot, -170.0 + 6.5 * slot, -380.0 + 11.5 * slot])
    half = (_SIZE[0] - 1) / 2 * s
    origin = centre - half * np.asarray(row) - half * np.asarray(column)
    return Grid(_SIZE, (s, s, _SLICE_MM), tuple(float(v) for v in origin),  # type: ignore[arg-type]
                row, column)


def ellipsoid_index(ell: Ellipsoid) -> tuple[int, int, int]:
    """Voxel index (i, j, k) of an ellipsoid's centre on the analysed grid."""
    return (_SIZE[0] // 2 + ell.offset[0], _SIZE[1] // 2 + ell.offset[1], ell.offset[2])


def ellipsoid_mask(ell: Ellipsoid, grid: Grid) -> np.ndarray:
    """Boolean mask, shape (slices, rows, columns): voxel centres inside the closed ellipsoid."""
    ci, cj, ck = ellipsoid_index(ell)
    nx, ny, nz = grid.size
    sx, sy, sz = grid.spacing
    ax, ay, az = ell.semi_axes
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    q = ((i - ci) * sx / ax) ** 2 + ((j - cj) * sy / ay) ** 2 + ((k - ck) * sz / az) ** 2
    return q <= 1.0


def ellipsoid_truth(ell: Ellipsoid, grid: Grid, labels: np.ndarray, label: int) -> dict[str, Any]:
    """Analytic (and voxelised) size of an ellipsoidal region, JSON-ready."""
    a, b, c = ell.semi_axes
    voxels = int(np.count_nonzero(labels == label))
    return {
        "label": label,
        "semi_axes_mm": [a, b, c],
        "centre_lps_mm": list(grid.point(*ellipsoid_index(ell))),
        "volume_mm3": 4.0 / 3.0 * np.pi * a * b * c,
        "max_diameter_mm": 2.0 * max(a, b, c),
        "voxel_count": voxels,
        "voxel_volume_mm3": voxels * float(np.prod(grid.spacing)),
    }


def _texture(rng: np.random.Generator, shape: tuple[int, ...],
             sigma: tuple[float, float, float]) -> np.ndarray:
    """Smooth Gaussian noise with unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return field / field.std()


def render(profile: Profile, grid: Grid, rng: np.random.Generator) -> Images:
    """Render HU volumes and the label map of one patient (deterministic given ``rng``)."""
    nx, ny, nz = grid.size
    shape = (nz, ny, nx)
    u = np.arange(nx)[None, None, :] - (nx - 1) / 2  # voxels from the central column
    v = np.arange(ny)[None, :, None] - (ny - 1) / 2
    body = (u / 29.5) ** 2 + ((v - 2) / 23.5) ** 2 <= 1
    inner = (u / 26.5) ** 2 + ((v - 2) / 20.5) ** 2 <= 1
    spine = u**2 + (v - 16) ** 2 <= 5.5**2
    tissue = _texture(rng, shape, (0.6, 1.5, 1.5))
    hu = -1000.0 + 4.0 * rng.standard_normal(shape)
    hu = np.where(body, -100.0 + 8.0 * tissue, hu)
    hu = np.where(inner, 40.0 + 10.0 * tissue, hu)
    hu = np.where(spine & inner, 450.0 + 40.0 * tissue, hu)
    labels = np.zeros(shape, dtype=np.uint8)
    lesion = ellipsoid_mask(profile.lesion, grid)
    labels[lesion] = 1
    texture = _texture(rng, shape, (0.5, 1.0, 1.0))
    hu = np.where(lesion, profile.lesion_hu + profile.heterogeneity * texture, hu)
    if profile.necrosis:
        core = Ellipsoid(tuple(0.5 * a for a in profile.lesion.semi_axes),  # type: ignore[arg-type]
                         profile.lesion.offset)
        hu = np.where(ellipsoid_mask(core, grid), hu - profile.necrosis, hu)
    if profile.node is not None:
        node = ellipsoid_mask(profile.node, grid)
        labels[node] = NODE_LABEL
        hu = np.where(node, 70.0 + 8.0 * texture, hu)
    analysed = hu + 7.0 * rng.standard_normal(shape)
    soft, sharp = profile.vendor.kernels
    if profile.second == "thick":
        thick = 0.5 * (hu[0::2] + hu[1::2]) + 4.0 * rng.standard_normal((nz // 2, ny, nx))
        origin = grid.point(0, 0, 0.5)
        second_grid = Grid((nx, ny, nz // 2), (grid.spacing[0], grid.spacing[1], 2 * _SLICE_MM),
                           origin, grid.row, grid.column)
        second = (second_grid, thick, soft)
    else:
        edges = hu - ndimage.gaussian_filter(hu, (0.0, 1.0, 1.0), mode="nearest")
        sharp_hu = hu + 0.8 * edges + 22.0 * rng.standard_normal(shape)
        second = (grid, sharp_hu, sharp)
    return Images(analysed, labels, second)


def stored_values(hu: np.ndarray, dtype: type[np.integer], intercept: float) -> np.ndarray:
    """Stored pixel values (slope 1) for HU, rounded and clipped to the CT range and ``dtype``."""
    stored = np.rint(np.clip(hu, *_HU_RANGE) - intercept)
    info = np.iinfo(dtype)
    return np.clip(stored, info.min, info.max).astype(dtype)


def label_image(grid: Grid, labels: np.ndarray) -> sitk.Image:
    """The label map as a SimpleITK image on ``grid`` (uint8)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(labels, dtype=np.uint8))
    image.SetOrigin(grid.origin)
    image.SetSpacing(grid.spacing)
    image.SetDirection(grid.direction)
    return image


def localizer(hu: np.ndarray, grid: Grid, profile: Profile) -> tuple[Grid, np.ndarray]:
    """A coronal projection "topogram" (one slice) of ``hu`` on a head-first grid.

    Returns
    -------
    tuple of (Grid, numpy.ndarray of shape (1, 2 * slices, columns))
        The localizer grid and its stored values.
    """
    projection = hu.mean(axis=1)[::-1]  # (slices, columns), most superior slice first
    image = np.repeat(projection, 2, axis=0)[None]
    top = grid.point(0, (grid.size[1] - 1) / 2, grid.size[2] - 1)
    origin = (top[0], top[1], top[2] + 0.5)
    loc = Grid((grid.size[0], image.shape[1], 1), (grid.spacing[0], 1.0, 1.0), origin,
               grid.row, (0.0, 0.0, -1.0))
    return loc, stored_values(image, profile.vendor.dtype, profile.vendor.intercept)


__all__ = [
    "NODE_LABEL",
    "PROFILES",
    "Ellipsoid",
    "Grid",
    "Images",
    "Profile",
    "Vendor",
    "analysed_grid",
    "ellipsoid_mask",
    "ellipsoid_truth",
    "label_image",
    "localizer",
    "render",
    "stored_values",
]
