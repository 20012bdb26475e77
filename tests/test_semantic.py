"""Semantic size and density (radflow.features.semantic): analytic shapes, PET uptake, options.

Bands for voxelised convex bodies K (voxels whose centres lie in K) are computed independently of
the module, from support functions h: the union of the voxel boxes lies inside K dilated by one
box B and contains K eroded by a ball of half a box diagonal r (every point of the eroded body
lies in a box whose centre is in K). With K = (K eroded by r) + ball(r) (true for the ellipsoids
used: their smallest radius of curvature exceeds r), the inner body's support function is h - r,
the outer's h + h_B; diameters are max 2h, short axes central chords (all bodies are centrally
symmetric). The one-voxel and block tests are exact and tell voxel boundaries from centres.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import SimpleITK as sitk
from radiomics import firstorder, shape
from scipy.spatial import ConvexHull

from radflow.errors import ConfigError, PairingError
from radflow.features.semantic import SemanticSettings, semantic_features

SupportFn = Callable[[np.ndarray], np.ndarray]


def rotation(axis: tuple[float, float, float], angle: float) -> np.ndarray:
    """Rotation matrix about ``axis`` (Rodrigues)."""
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx


def make_images(inside: np.ndarray, spacing: tuple[float, float, float],
                direction: np.ndarray, values: np.ndarray | None = None,
                origin: tuple[float, float, float] = (-12.0, 30.0, 5.0)
                ) -> tuple[sitk.Image, sitk.Image]:
    """Image and mask from an ``(i, j, k)``-ordered boolean array."""
    arr = inside.transpose(2, 1, 0).astype(np.uint8)
    vals = arr.astype(np.float32) * 100 if values is None else values.transpose(2, 1, 0)
    img, mask = sitk.GetImageFromArray(vals), sitk.GetImageFromArray(arr)
    for im in (img, mask):
        im.SetSpacing(spacing)
        im.SetDirection(direction.ravel().tolist())
        im.SetOrigin(origin)
    return img, mask


def physical_offsets(size: tuple[int, ...], centre: np.ndarray, spacing: tuple[float, ...],
                     direction: np.ndarray) -> np.ndarray:
    """Patient offsets (mm) of every voxel centre from ``centre`` (index), shape ``size + (3,)``."""
    grids = np.meshgrid(*[np.arange(n) for n in size], indexing="ij")
    idx = np.stack(grids, axis=-1).astype(float) - centre
    return idx @ (direction * np.asarray(spacing)[None, :]).T


def unit_circle(n: int = 1 << 18) -> np.ndarray:
    """``n`` unit vectors (n divisible by 4: the axis directions are included)."""
    a = np.arange(n) * 2 * math.pi / n
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def diameter_2d(h: SupportFn) -> float:
    """Diameter of a centrally symmetric convex body with support function ``h``."""
    return float(2 * h(unit_circle()).max())


def central_chord(h: SupportFn, v: np.ndarray) -> float:
    """Length of the chord through the centre along unit ``v`` (2-D, centrally symmetric)."""
    w = unit_circle()
    dots = w @ v
    ok = dots > 1e-9
    return float(2 * (h(w[ok]) / dots[ok]).min())


def diameter_3d(h: SupportFn) -> float:
    """Diameter of a centrally symmetric convex 3-D body: coarse sphere grid, then refined."""
    def grid(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        t, p = np.meshgrid(theta, phi, indexing="ij")
        xyz = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1)
        return xyz.reshape(-1, 3)

    w = grid(np.linspace(0, math.pi, 181), np.linspace(0, 2 * math.pi, 361))
    for width in (0.02, 0.002, 0.0002):
        best = w[np.argmax(h(w))]
        t0, p0 = math.acos(np.clip(best[2], -1, 1)), math.atan2(best[1], best[0])
        w = grid(t0 + np.linspace(-width, width, 201), p0 + np.linspace(-width, width, 201))
    return float(2 * h(w).max())


# --- voxelised ellipsoids ---------------------------------------------------------------------
SEMI = (20.0, 12.0, 8.0)
ELLIPSOID_CASES = [
    ((0.7, 0.7, 2.5), 0.0, None), ((0.7, 0.7, 2.5), 0.3, None),
    ((0.7, 0.7, 2.5), math.pi / 4, ((1, 2, 3), 0.7)), ((0.7, 0.7, 2.5), 1.1, ((0, 1, 0), 1.2)),
    ((1.0, 1.0, 1.0), 1.1, None), ((1.0, 1.0, 1.0), 0.3, ((1, 0, 0), math.pi / 2)),
    ((0.6, 0.9, 3.0), 0.8, ((1, 1, 0), 0.4)), ((0.6, 0.9, 3.0), 2.0, None),
]


def ellipsoid(spacing: tuple[float, float, float], theta: float, direction: np.ndarray,
              shift: tuple[float, float] = (0.31, 0.17)) -> tuple[sitk.Image, sitk.Image, dict]:
    """Ellipsoid with semi-axes SEMI: a at angle theta in the acquisition plane, c along its
    normal; its centre lies on a slice centre (so one slice holds the full a-b ellipse)."""
    size = tuple(int(2 * max(SEMI) / s) + 9 for s in spacing)
    centre = np.array([(size[0] - 1) / 2 + shift[0], (size[1] - 1) / 2 + shift[1],
                       (size[2] - 1) // 2])
    e0, e1, e2 = direction.T
    u = math.cos(theta) * e0 + math.sin(theta) * e1
    v = -math.sin(theta) * e0 + math.cos(theta) * e1
    p = physical_offsets(size, centre, spacing, direction)
    a, b, c = SEMI
    inside = (p @ u / a) ** 2 + (p @ v / b) ** 2 + (p @ e2 / c) ** 2 <= 1
    img, mask = make_images(inside, spacing, direction)
    return img, mask, {"u": u, "v": v, "e": (e0, e1, e2), "count": int(inside.sum()),
                       "centre_k": int(centre[2])}


@pytest.mark.parametrize(("spacing", "theta", "rot"), ELLIPSOID_CASES)
def test_ellipsoid_diameters_volumes_axes(spacing: tuple[float, float, float], theta: float,
                                          rot: tuple | None) -> None:
    direction = np.eye(3) if rot is None else rotation(*rot)
    img, mask, geo = ellipsoid(spacing, theta, direction)
    res = semantic_features(img, mask, SemanticSettings())
    f, lm = res.features, res.landmarks
    a, b, c = SEMI
    sx, sy, sz = spacing
    e0, e1, e2 = geo["e"]
    ct, st = math.cos(theta), math.sin(theta)

    r2, r3 = math.hypot(sx, sy) / 2, math.sqrt(sx * sx + sy * sy + sz * sz) / 2

    # the longest diameter may lie on a neighbour of the central slice (a cross-section scaled
    # by sigma), whose digitisation can beat the central one's
    assert abs(lm.slice_index - geo["centre_k"]) <= 1
    assert f["recist_LongestDiameterSlice"] == lm.slice_index
    sigma = math.sqrt(1 - ((lm.slice_index - geo["centre_k"]) * sz / c) ** 2)

    def h_ellipse(w: np.ndarray) -> np.ndarray:  # the slice's cross-section, plane coordinates
        wu, wv = w[:, 0] * ct + w[:, 1] * st, -w[:, 0] * st + w[:, 1] * ct
        return sigma * np.sqrt((a * wu) ** 2 + (b * wv) ** 2)

    def h_square(w: np.ndarray) -> np.ndarray:
        return (sx * abs(w[:, 0]) + sy * abs(w[:, 1])) / 2

    def h_ellipsoid(w: np.ndarray) -> np.ndarray:  # patient coordinates
        return np.sqrt((a * (w @ geo["u"])) ** 2 + (b * (w @ geo["v"])) ** 2 + (c * (w @ e2)) ** 2)

    def h_box(w: np.ndarray) -> np.ndarray:
        return (sx * abs(w @ e0) + sy * abs(w @ e1) + sz * abs(w @ e2)) / 2

    ld = f["recist_LongestDiameter"]
    assert 2 * a - 2 * r2 <= ld <= diameter_2d(lambda w: h_ellipse(w) + h_square(w)) + 1e-6

    def plane(p: tuple[float, ...], q: tuple[float, ...]) -> np.ndarray:
        d = np.subtract(q, p)
        return np.array([d @ e0, d @ e1, d @ e2])

    long_vec, short_vec = plane(*lm.long_axis), plane(*lm.short_axis)
    assert abs(long_vec[2]) < 1e-9 and abs(short_vec[2]) < 1e-9  # both on the slice plane
    assert np.linalg.norm(long_vec) == pytest.approx(ld, abs=1e-9)
    assert long_vec @ short_vec == pytest.approx(0, abs=1e-6 * ld * ld)
    sa = f["recist_ShortAxisDiameter"]
    assert np.linalg.norm(short_vec) == pytest.approx(sa, abs=1e-9)
    n = short_vec[:2] / np.linalg.norm(short_vec[:2])
    assert central_chord(lambda w: h_ellipse(w) - r2, n) - 1e-6 <= sa
    assert sa <= central_chord(lambda w: h_ellipse(w) + h_square(w), n) + 1e-6
    assert abs(sa - 2 * b * sigma) <= 2 * r2
    assert f["recist_BidimensionalProduct"] == pytest.approx(ld * sa, rel=1e-12)

    d3 = f["size_Maximum3DDiameter"]
    assert 2 * a - 2 * r3 <= d3 <= diameter_3d(lambda w: h_ellipsoid(w) + h_box(w)) + 1e-6
    assert np.linalg.norm(np.subtract(*lm.diameter_3d)) == pytest.approx(d3, abs=1e-9)
    assert d3 >= ld

    volume = 4 / 3 * math.pi * a * b * c
    assert f["size_VoxelCount"] == geo["count"]
    assert f["size_VoxelVolume"] == pytest.approx(geo["count"] * sx * sy * sz, rel=1e-12)
    assert f["size_MeshVolume"] == pytest.approx(volume, rel=0.02)
    assert f["size_MajorAxisLength"] == pytest.approx(4 * a / math.sqrt(5), rel=0.01)
    assert f["size_MinorAxisLength"] == pytest.approx(4 * b / math.sqrt(5), rel=0.01)
    assert f["size_LeastAxisLength"] == pytest.approx(4 * c / math.sqrt(5), rel=0.02)


def test_size_matches_pyradiomics_shape() -> None:
    """Axis lengths, voxel and mesh volume equal PyRadiomics' shape class on the same mask."""
    img, mask, _ = ellipsoid((0.6, 0.9, 3.0), 0.8, rotation((1, 1, 0), 0.4))
    f = semantic_features(img, mask, SemanticSettings()).features
    ref = shape.RadiomicsShape(img, mask)
    ref.enableAllFeatures()
    values = ref.execute()
    for name in ("MajorAxisLength", "MinorAxisLength", "LeastAxisLength", "VoxelVolume"):
        assert f[f"size_{name}"] == pytest.approx(float(values[name]), rel=1e-9)
    assert f["size_MeshVolume"] == pytest.approx(float(values["MeshVolume"]), rel=1e-6)
    # PyRadiomics measures between mesh vertices (half a voxel inside the boundary)
    assert f["size_Maximum3DDiameter"] > float(values["Maximum3DDiameter"])


# --- exact shapes -----------------------------------------------------------------------------
def box_mask(size: tuple[int, int, int], lo: tuple[int, int, int], n: tuple[int, int, int]
             ) -> np.ndarray:
    """Boolean (i, j, k) array with an axis-aligned block of n voxels starting at lo."""
    inside = np.zeros(size, dtype=bool)
    inside[lo[0]:lo[0] + n[0], lo[1]:lo[1] + n[1], lo[2]:lo[2] + n[2]] = True
    return inside


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.7, 0.7, 2.5), (0.5, 1.5, 3.0)])
def test_one_voxel_lesion_measures_the_voxel_not_zero(spacing: tuple[float, float, float]) -> None:
    sx, sy, sz = spacing
    img, mask = make_images(box_mask((5, 6, 7), (2, 3, 4), (1, 1, 1)), spacing,
                            rotation((1, 2, 2), 0.5))
    res = semantic_features(img, mask, SemanticSettings())
    f = res.features
    diag = math.hypot(sx, sy)
    assert f["recist_LongestDiameter"] == pytest.approx(diag, rel=1e-12)
    # perpendicular to one diagonal of an sx x sy rectangle: min * diag / max
    assert f["recist_ShortAxisDiameter"] == pytest.approx(min(sx, sy) * diag / max(sx, sy),
                                                          rel=1e-9)
    assert f["size_Maximum3DDiameter"] == pytest.approx(math.sqrt(sx * sx + sy * sy + sz * sz),
                                                        rel=1e-12)
    assert f["recist_LongestDiameterSlice"] == 4
    assert f["size_VoxelVolume"] == pytest.approx(sx * sy * sz, rel=1e-12)
    assert f["size_MajorAxisLength"] == 0
    centre = np.array(img.TransformIndexToPhysicalPoint((2, 3, 4)))
    ends = np.array(res.landmarks.long_axis)
    assert np.linalg.norm(ends.mean(axis=0) - centre) == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize(("n", "spacing"), [((12, 5, 3), (0.8, 0.8, 2.0)),
                                            ((4, 9, 1), (1.2, 0.6, 5.0))])
def test_axis_aligned_block_exact(n: tuple[int, int, int], spacing: tuple[float, float, float]
                                  ) -> None:
    """A block of voxels: boundary-convention values are exact; the n=1 slice case is a one-slice
    lesion."""
    img, mask = make_images(box_mask((20, 20, 6), (3, 4, 2), n), spacing, np.eye(3))
    f = semantic_features(img, mask, SemanticSettings()).features
    w, h, d = (k * s for k, s in zip(n, spacing, strict=True))
    diag = math.hypot(w, h)
    assert f["recist_LongestDiameter"] == pytest.approx(diag, rel=1e-12)
    assert f["recist_ShortAxisDiameter"] == pytest.approx(min(w, h) * diag / max(w, h), rel=1e-9)
    assert f["recist_LongestDiameterSlice"] == 2
    assert f["size_Maximum3DDiameter"] == pytest.approx(math.sqrt(w * w + h * h + d * d),
                                                        rel=1e-12)
    assert f["size_VoxelCount"] == n[0] * n[1] * n[2]


@pytest.mark.parametrize(("angle", "spacing", "slices"), [(0.5, (0.8, 0.8, 2.0), 3),
                                                          (1.2, (0.6, 0.9, 3.0), 1),
                                                          (math.pi / 4, (1.0, 1.0, 1.0), 2)])
def test_rotated_rectangle(angle: float, spacing: tuple[float, float, float], slices: int
                           ) -> None:
    """A 40 x 16 mm rectangle: the long axis is its diagonal, the short axis the chord through the
    centre perpendicular to it (16 x diag / 40), not the width across it."""
    big, small = 40.0, 16.0
    sx, sy, _ = spacing
    size = (int(50 / sx), int(50 / sy), slices + 2)
    centre = np.array([(size[0] - 1) / 2 + 0.23, (size[1] - 1) / 2 - 0.41, 1])
    p = physical_offsets(size, centre, spacing, np.eye(3))
    u = np.array([math.cos(angle), math.sin(angle), 0])
    v = np.array([-math.sin(angle), math.cos(angle), 0])
    inside = (abs(p @ u) <= big / 2) & (abs(p @ v) <= small / 2) & (p[..., 2] >= -1e-9) & (
        p[..., 2] <= (slices - 1) * spacing[2] + 1e-9)
    img, mask = make_images(inside, spacing, np.eye(3))
    res = semantic_features(img, mask, SemanticSettings())
    f = res.features

    r2 = math.hypot(sx, sy) / 2

    def h_rect(w: np.ndarray, grow: float) -> np.ndarray:  # rectangle (grown by `grow` a side)
        wu = w[:, 0] * u[0] + w[:, 1] * u[1]
        wv = w[:, 0] * v[0] + w[:, 1] * v[1]
        return ((big + 2 * grow) * abs(wu) + (small + 2 * grow) * abs(wv)) / 2

    def h_outer(w: np.ndarray) -> np.ndarray:  # rectangle (+) pixel square
        return h_rect(w, 0.0) + (sx * abs(w[:, 0]) + sy * abs(w[:, 1])) / 2

    ld, sa = f["recist_LongestDiameter"], f["recist_ShortAxisDiameter"]
    assert diameter_2d(lambda w: h_rect(w, -r2)) - 1e-6 <= ld <= diameter_2d(h_outer) + 1e-6
    short_vec = np.subtract(*res.landmarks.short_axis)[:2]
    n = short_vec / np.linalg.norm(short_vec)
    assert central_chord(lambda w: h_rect(w, -r2), n) - 1e-6 <= sa
    assert sa <= central_chord(h_outer, n) + 1e-6
    diag = math.hypot(big, small)
    assert abs(sa - small * diag / big) <= math.hypot(sx, sy)
    assert sa < 0.8 * (2 * big * small / diag)  # far from the width across the diagonal


def polygon_max_chord(vertices: np.ndarray, n: np.ndarray) -> float:
    """Longest chord along unit ``n`` of the convex polygon with these vertices (shape (m, 2)):
    chord length along a direction is concave in the offset, so the maximum is at a vertex."""
    eq = ConvexHull(vertices).equations  # normal . x + offset <= 0 inside
    best = 0.0
    for p in vertices:
        slope, rest = eq[:, :2] @ n, eq[:, :2] @ p + eq[:, 2]
        lo = max((-r / s for s, r in zip(slope, rest, strict=True) if s < -1e-12), default=0.0)
        hi = min((-r / s for s, r in zip(slope, rest, strict=True) if s > 1e-12), default=0.0)
        best = max(best, hi - lo)
    return best


def test_triangle_short_axis_is_off_centre() -> None:
    """Triangle (0, 0), (40, 0), (10, 12) mm: long axis the 40 mm side, short axis the 12 mm
    height at x = 10, far from the middle of the long axis (where the extent is 8 mm)."""
    spacing = (0.8, 0.7, 2.0)
    sx, sy, _ = spacing
    tri = np.array([[0.0, 0.0], [40.0, 0.0], [10.0, 12.0]])
    size = (int(44 / sx), int(16 / sy), 3)
    p = physical_offsets(size, np.array([2.3, 2.6, 1.0]), spacing, np.eye(3))
    eq = ConvexHull(tri).equations
    inside = ((p[..., :2] @ eq[:, :2].T + eq[:, 2]) <= 1e-9).all(axis=-1) & (abs(p[..., 2]) < 1e-9)
    img, mask = make_images(inside, spacing, np.eye(3))
    res = semantic_features(img, mask, SemanticSettings())
    ld, sa = res.features["recist_LongestDiameter"], res.features["recist_ShortAxisDiameter"]
    square = np.array([[-sx, -sy], [-sx, sy], [sx, -sy], [sx, sy]]) / 2
    outer = (tri[:, None, :] + square[None, :, :]).reshape(-1, 2)
    r2 = math.hypot(sx, sy) / 2
    sides = np.linalg.norm(tri - np.roll(tri, 1, axis=0), axis=1)
    inradius = 240.0 / (sides.sum() / 2)
    incentre = (sides[[1, 2, 0]][:, None] * tri).sum(axis=0) / sides.sum()
    inner = incentre + (tri - incentre) * (inradius - r2) / inradius  # triangle eroded by r2
    far = max(np.linalg.norm(a - b) for a in outer for b in outer)
    assert 40 * (inradius - r2) / inradius - 1e-6 <= ld <= far + 1e-6
    short_vec = np.subtract(*res.landmarks.short_axis)[:2]
    n = short_vec / np.linalg.norm(short_vec)
    assert polygon_max_chord(inner, n) - 1e-6 <= sa <= polygon_max_chord(outer, n) + 1e-6
    apex_x = img.TransformContinuousIndexToPhysicalPoint((2.3, 2.6, 1.0))[0] + 10
    assert abs(np.mean(res.landmarks.short_axis, axis=0)[0] - apex_x) < 2


# --- components -------------------------------------------------------------------------------
def two_blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A large and a small ball, apart on the same slices; returns (both, large, small)."""
    size = (60, 40, 12)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in size], indexing="ij"), -1).astype(float)
    large = np.linalg.norm((idx - (18, 20, 6)) * (1, 1, 2), axis=-1) <= 10
    small = np.linalg.norm((idx - (45, 18, 6)) * (1, 1, 2), axis=-1) <= 5
    return large | small, large, small


def _without_count(features: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in features.items() if k != "size_ComponentCount"}


def test_components_all_largest_each() -> None:
    both, large, small = two_blobs()
    spacing = (0.9, 0.9, 2.0)
    direction = rotation((0, 0, 1), 0.3)
    img, mask = make_images(both, spacing, direction)
    alone = {name: semantic_features(*make_images(part, spacing, direction),
                                     SemanticSettings()).features
             for name, part in (("large", large), ("small", small))}
    union = semantic_features(img, mask, SemanticSettings(components="all"))
    largest = semantic_features(img, mask, SemanticSettings(components="largest"))
    each = semantic_features(img, mask, SemanticSettings(components="each"))

    assert [r.component for r in union.regions] == [0]
    assert union.features["size_ComponentCount"] == 2
    assert union.features["size_VoxelCount"] == both.sum()
    # the union's diameter spans both balls (as a caliper would)
    assert union.features["recist_LongestDiameter"] > (alone["large"]["recist_LongestDiameter"]
                                                       + alone["small"]["recist_LongestDiameter"])
    assert [r.component for r in largest.regions] == [1]
    assert _without_count(largest.features) == _without_count(alone["large"])
    assert largest.features["size_ComponentCount"] == 2
    assert [r.component for r in each.regions] == [1, 2]
    assert _without_count(each.regions[0].features) == _without_count(alone["large"])
    assert _without_count(each.regions[1].features) == _without_count(alone["small"])
    assert each.landmarks == largest.landmarks


def test_components_are_26_connected() -> None:
    inside = box_mask((8, 8, 8), (2, 2, 2), (2, 2, 2)) | box_mask((8, 8, 8), (4, 4, 4), (1, 1, 1))
    img, mask = make_images(inside, (1.0, 1.0, 1.0), np.eye(3))
    res = semantic_features(img, mask, SemanticSettings(components="each"))
    assert len(res.regions) == 1
    assert res.features["size_ComponentCount"] == 1
    assert res.features["size_VoxelCount"] == 9


# --- density and PET --------------------------------------------------------------------------
def test_density_matches_pyradiomics_firstorder() -> None:
    rng = np.random.default_rng(7)
    inside = box_mask((20, 20, 10), (4, 5, 2), (9, 7, 5))
    values = rng.normal(40, 25, inside.shape).astype(np.float32)
    img, mask = make_images(inside, (0.8, 0.8, 2.0), np.eye(3), values=values)
    f = semantic_features(img, mask, SemanticSettings(), modality="CT").features
    ref = firstorder.RadiomicsFirstOrder(img, mask)
    ref.enableAllFeatures()
    expected = ref.execute()
    for name in ("Mean", "Median", "Minimum", "Maximum"):
        assert f[f"density_{name}"] == pytest.approx(float(expected[name]), rel=1e-6), name
    # population standard deviation (PyRadiomics' Variance divides by N)
    assert f["density_StandardDeviation"] == pytest.approx(math.sqrt(float(expected["Variance"])),
                                                           rel=1e-6)
    assert not any(k.startswith("suv_") for k in f)


def sphere_offsets_count(spacing: tuple[float, float, float], volume_ml: float = 1.0) -> int:
    """Voxel centres within the 1 ml sphere around a voxel centre (axis-aligned grid)."""
    radius = (3000 * volume_ml / (4 * math.pi)) ** (1 / 3)
    half = [int(radius / s) + 2 for s in spacing]
    grids = np.meshgrid(*[np.arange(-h, h + 1) * s for h, s in zip(half, spacing, strict=True)],
                        indexing="ij")
    return int((np.sqrt(sum(g**2 for g in grids)) <= radius).sum())


def pet_phantom(spacing: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background 1 with a 15 mm ball of uptake 8; returns (values, ball mask, centre index)."""
    size = (40, 40, 24)
    centre = np.array([20, 19, 11])
    p = physical_offsets(size, centre, spacing, np.eye(3))
    ball = np.linalg.norm(p, axis=-1) <= 15
    values = np.where(ball, 8.0, 1.0).astype(np.float32)
    return values, ball, centre


def test_suvpeak_of_a_uniform_hot_sphere_is_its_uptake() -> None:
    spacing = (2.0, 2.0, 3.0)
    values, ball, centre = pet_phantom(spacing)
    img, mask = make_images(ball, spacing, np.eye(3), values=values)
    res = semantic_features(img, mask, SemanticSettings(), modality="PT")
    f = res.features
    assert f["suv_SUVmax"] == 8
    assert f["suv_SUVpeak"] == pytest.approx(8, rel=1e-9)
    peak = np.array(res.landmarks.suv_peak_centre)
    ball_centre = np.array(img.TransformIndexToPhysicalPoint(centre.tolist()))
    assert np.linalg.norm(peak - ball_centre) <= 15 - 6.2


def brute_force_peak(values: np.ndarray, roi: np.ndarray, spacing: tuple[float, float, float]
                     ) -> tuple[float, np.ndarray]:
    """Highest mean over the in-image voxel centres within 1 ml of a ROI voxel, and its index."""
    radius = (3000 / (4 * math.pi)) ** (1 / 3)
    half = [int(radius / s) + 1 for s in spacing]
    grid = np.stack(np.meshgrid(*[np.arange(-h, h + 1) for h in half], indexing="ij"), -1)
    offsets = grid.reshape(-1, 3)
    offsets = offsets[np.linalg.norm(offsets * spacing, axis=1) <= radius]
    best, where = -np.inf, np.zeros(3, dtype=int)
    for centre in np.argwhere(roi):
        idx = centre + offsets
        ok = ((idx >= 0) & (idx < values.shape)).all(axis=1)
        mean = values[tuple(idx[ok].T)].mean()
        if mean > best:
            best, where = mean, centre
    return float(best), where


def test_suvpeak_centres_on_the_hottest_neighbourhood() -> None:
    spacing = (2.0, 2.0, 3.0)
    values, ball, centre = pet_phantom(spacing)
    values[tuple(centre)] = 100.0
    img, mask = make_images(ball, spacing, np.eye(3), values=values)
    res = semantic_features(img, mask, SemanticSettings(), modality="PT")
    n = sphere_offsets_count(spacing)
    assert res.features["suv_SUVmax"] == 100
    assert res.features["suv_SUVpeak"] == pytest.approx((100 + 8 * (n - 1)) / n, rel=1e-9)
    # uptake falling off from an off-centre point: one best sphere centre
    p = physical_offsets(ball.shape, np.add(centre, (3, -2, 1)), spacing, np.eye(3))
    values = np.where(ball, 9.0 - 0.1 * np.linalg.norm(p, axis=-1), 1.0).astype(np.float32)
    img, mask = make_images(ball, spacing, np.eye(3), values=values)
    res = semantic_features(img, mask, SemanticSettings(), modality="PT")
    peak, where = brute_force_peak(values.astype(float), ball, spacing)
    assert res.features["suv_SUVpeak"] == pytest.approx(peak, rel=1e-9)
    hot = img.TransformIndexToPhysicalPoint(where.tolist())
    assert res.landmarks.suv_peak_centre == pytest.approx(hot, abs=1e-9)


def test_suvpeak_sphere_takes_voxels_outside_the_roi_and_inside_the_image() -> None:
    spacing = (2.0, 2.0, 3.0)
    values, ball, centre = pet_phantom(spacing)
    one = np.zeros_like(ball)
    one[tuple(centre)] = True  # a one-voxel ROI in the uniform ball
    f = semantic_features(*make_images(one, spacing, np.eye(3), values=values),
                          SemanticSettings(), modality="PT").features
    assert f["suv_SUVpeak"] == pytest.approx(8, rel=1e-9)
    corner = np.zeros_like(ball)
    corner[0, 0, 0] = True  # at the image corner the sphere is cut by the image border
    flat = np.full(ball.shape, 3.0, dtype=np.float32)
    f = semantic_features(*make_images(corner, spacing, np.eye(3), values=flat),
                          SemanticSettings(), modality="PT").features
    assert f["suv_SUVpeak"] == pytest.approx(3, rel=1e-9)


@pytest.mark.parametrize(("kind", "threshold", "mtv_ml", "suv_mean"),
                         [("relative", 0.41, 216 * 8 / 1000, 10.0),
                          ("absolute", 2.5, 1000 * 8 / 1000, (216 * 10 + 784 * 3) / 1000),
                          ("absolute", 3.0, 1000 * 8 / 1000, (216 * 10 + 784 * 3) / 1000),
                          ("absolute", 12.0, 0.0, 0.0)])
def test_mtv_and_tlg_on_a_cube(kind: str, threshold: float, mtv_ml: float, suv_mean: float
                               ) -> None:
    """A 10^3-voxel cube (2 mm voxels) of SUV 3 with a 6^3 core of SUV 10."""
    inside = box_mask((16, 16, 16), (3, 3, 3), (10, 10, 10))
    values = np.where(inside, 3.0, 0.5).astype(np.float32)
    values[5:11, 5:11, 5:11] = 10.0
    img, mask = make_images(inside, (2.0, 2.0, 2.0), np.eye(3), values=values)
    settings = SemanticSettings(mtv_threshold=threshold, mtv_threshold_kind=kind)
    f = semantic_features(img, mask, settings, modality="PT").features
    assert f["suv_MTV"] == pytest.approx(mtv_ml, rel=1e-12)
    assert f["suv_TLG"] == pytest.approx(mtv_ml * suv_mean, rel=1e-12)
    assert f["suv_MTVThreshold"] == pytest.approx(threshold * 10 if kind == "relative"
                                                  else threshold, rel=1e-12)


# --- inputs and options -----------------------------------------------------------------------
@pytest.mark.parametrize("options", [{"components": "biggest"}, {"suv_peak_volume_ml": 0},
                                     {"mtv_threshold": 1.5}, {"mtv_threshold_kind": "percent"},
                                     {"mtv_threshold": float("nan")}, {"mtv_threshold": True}])
def test_settings_are_checked(options: dict) -> None:
    with pytest.raises(ConfigError):
        SemanticSettings(**options)


def test_input_errors_name_the_reason() -> None:
    inside = box_mask((6, 6, 6), (1, 1, 1), (2, 2, 2))
    img, mask = make_images(inside, (1.0, 1.0, 1.0), np.eye(3))
    moved = sitk.Image(mask)
    moved.SetOrigin((0.0, 0.0, 1.0))
    labels = sitk.Image(mask) * 2
    empty = sitk.Image(mask) * 0
    for bad, reason in ((moved, "grid-mismatch"), (labels, "invalid-mask"),
                        (empty, "empty-mask")):
        with pytest.raises(PairingError) as err:
            semantic_features(img, bad, SemanticSettings())
        assert err.value.reason == reason
