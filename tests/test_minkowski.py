"""Minkowski functionals and curves (radflow.features.minkowski, radflow.features.crofton):
analytic shapes, scikit-image's Euler number as the oracle, settings and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi
from skimage.measure import euler_number

from radflow.errors import ConfigError, PairingError
from radflow.features.crofton import (
    configuration_histogram,
    direction_weights,
    minkowski_tables,
)
from radflow.features.minkowski import (
    CURVE_COLUMNS,
    FEATURE_NAMES,
    CurveRow,
    MinkowskiSettings,
    minkowski_features,
)
from radflow.settings import from_mapping

COMBINATIONS = [(26, 13), (26, 3), (6, 3)]


def images(region: np.ndarray, spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
           values: np.ndarray | None = None,
           direction: tuple[float, ...] | None = None) -> tuple[sitk.Image, sitk.Image]:
    """(image, mask) from a boolean (z, y, x) array; spacing as SimpleITK's (x, y, z)."""
    mask = sitk.GetImageFromArray(region.astype(np.uint8))
    image = sitk.GetImageFromArray(
        (values if values is not None else region * 100.0).astype(np.float32))
    for img in (image, mask):
        img.SetSpacing(spacing)
        img.SetOrigin((-3.0, 7.0, 11.0))
        if direction is not None:
            img.SetDirection(direction)
    return image, mask


def grid(half: dict[str, int], spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Physical coordinates (mm) z, y, x of a grid of ``2 * half + 1`` voxels per axis,
    centred on a voxel."""
    sx, sy, sz = spacing
    axes = [np.arange(-half[a], half[a] + 1) * s for a, s in (("z", sz), ("y", sy), ("x", sx))]
    zz, yy, xx = np.meshgrid(*axes, indexing="ij")
    return zz, yy, xx


def ball(radius: float, centre: tuple[float, float, float] = (0.0, 0.0, 0.0),
         spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    half = {a: math.ceil((radius + 3) / s) for a, s in zip("xyz", spacing, strict=True)}
    zz, yy, xx = grid(half, spacing)
    cz, cy, cx = centre
    return np.asarray((zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2)


def features(region: np.ndarray, settings: MinkowskiSettings | None = None,
             **kwargs: object) -> dict[str, float]:
    image, mask = images(region, **kwargs)  # type: ignore[arg-type]
    result = minkowski_features(image, mask, settings or MinkowskiSettings())
    return {k.removeprefix("original_minkowski_"): v for k, v in result.features.items()}


@pytest.mark.parametrize(("connectivity", "directions"), COMBINATIONS)
@pytest.mark.parametrize("centre", [(0.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.31, 0.12, 0.73)])
def test_ball_of_radius_20(connectivity: int, directions: int,
                           centre: tuple[float, float, float]) -> None:
    r = 20.0
    f = features(ball(r, centre), MinkowskiSettings(connectivity=connectivity,  # type: ignore[arg-type]
                                                    directions=directions))  # type: ignore[arg-type]
    assert f["Volume"] == pytest.approx(4 / 3 * math.pi * r ** 3, rel=0.02)
    assert f["SurfaceArea"] == pytest.approx(4 * math.pi * r ** 2, rel=0.02)
    assert f["MeanBreadth"] == pytest.approx(2 * r, rel=0.03)
    assert f["EulerCharacteristic"] == 1


@pytest.mark.parametrize("spacing", [(0.8, 0.8, 2.0), (0.7, 1.1, 1.6)])
def test_anisotropic_voxels_are_measured_in_mm(spacing: tuple[float, float, float]) -> None:
    r = 20.0
    f = features(ball(r, (0.2, 0.1, 0.3), spacing), spacing=spacing)
    assert f["Volume"] == pytest.approx(4 / 3 * math.pi * r ** 3, rel=0.02)
    assert f["SurfaceArea"] == pytest.approx(4 * math.pi * r ** 2, rel=0.02)
    assert f["MeanBreadth"] == pytest.approx(2 * r, rel=0.03)
    assert f["EulerCharacteristic"] == 1


def test_a_rotated_grid_measures_the_same_as_an_axis_aligned_one() -> None:
    region = ball(12.0, (0.2, 0.4, 0.1), (0.9, 0.9, 1.5))
    region[:, :, region.shape[2] // 2 + 5:] = False  # a cut ball: not symmetric about x
    c, s = math.cos(0.5), math.sin(0.5)
    rotated = (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)
    plain = features(region, spacing=(0.9, 0.9, 1.5))
    turned = features(region, spacing=(0.9, 0.9, 1.5), direction=rotated)
    assert turned == pytest.approx(plain, rel=1e-9)


@pytest.mark.parametrize(("connectivity", "directions"), COMBINATIONS)
def test_torus_has_euler_characteristic_0(connectivity: int, directions: int) -> None:
    zz, yy, xx = grid({"x": 38, "y": 38, "z": 12})
    torus = (np.hypot(xx, yy) - 25.0) ** 2 + zz ** 2 <= 8.0 ** 2
    settings = MinkowskiSettings(connectivity=connectivity,  # type: ignore[arg-type]
                                 directions=directions)  # type: ignore[arg-type]
    assert features(torus, settings)["EulerCharacteristic"] == 0


@pytest.mark.parametrize(("connectivity", "directions"), COMBINATIONS)
def test_hollow_sphere_has_euler_characteristic_2(connectivity: int, directions: int) -> None:
    zz, yy, xx = grid({"x": 33, "y": 33, "z": 33})
    d2 = zz ** 2 + yy ** 2 + xx ** 2
    shell = (d2 <= 30.0 ** 2) & (d2 > 15.0 ** 2)
    settings = MinkowskiSettings(connectivity=connectivity,  # type: ignore[arg-type]
                                 directions=directions)  # type: ignore[arg-type]
    f = features(shell, settings)
    assert f["EulerCharacteristic"] == 2
    # Additivity: the cavity's surface adds, its (concave) mean breadth subtracts.
    assert f["SurfaceArea"] == pytest.approx(4 * math.pi * (30.0 ** 2 + 15.0 ** 2), rel=0.02)
    assert f["MeanBreadth"] == pytest.approx(2 * (30.0 - 15.0), rel=0.03)


def test_two_separate_balls_have_euler_characteristic_2_and_add_up() -> None:
    zz, yy, xx = grid({"x": 38, "y": 20, "z": 20})
    one = (xx - 18.0) ** 2 + yy ** 2 + zz ** 2 <= 15.0 ** 2
    two = (xx + 18.0) ** 2 + yy ** 2 + zz ** 2 <= 15.0 ** 2
    both, first, second = features(one | two), features(one), features(two)
    assert both["EulerCharacteristic"] == 2
    for name in ("Volume", "SurfaceArea", "MeanBreadth"):
        assert both[name] == pytest.approx(first[name] + second[name], rel=1e-12)


def random_blobs(seed: int, shape: tuple[int, int, int] = (23, 29, 31)) -> np.ndarray:
    noise = np.random.default_rng(seed).random(shape)
    return np.asarray(ndi.gaussian_filter(noise, 1.2) > 0.5)


@pytest.mark.parametrize(("connectivity", "directions"), COMBINATIONS)
def test_euler_characteristic_is_invariant_to_90_degree_rotations(connectivity: int,
                                                                   directions: int) -> None:
    region = random_blobs(3)
    settings = MinkowskiSettings(connectivity=connectivity,  # type: ignore[arg-type]
                                 directions=directions)  # type: ignore[arg-type]
    reference = features(region, settings)
    assert reference["EulerCharacteristic"] not in (0, 1)  # a shape with holes and pieces
    for axes in ((0, 1), (0, 2), (1, 2)):
        for k in (1, 2, 3):
            turned = features(np.ascontiguousarray(np.rot90(region, k, axes=axes)), settings)
            assert turned["EulerCharacteristic"] == reference["EulerCharacteristic"]
            # on a cubic grid the direction weights are symmetric too
            assert turned["SurfaceArea"] == pytest.approx(reference["SurfaceArea"], rel=1e-12)
            assert turned["MeanBreadth"] == pytest.approx(reference["MeanBreadth"], rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_euler_characteristic_equals_scikit_image(seed: int) -> None:
    rng = np.random.default_rng(seed)
    region = rng.random((9, 11, 13)) < rng.uniform(0.2, 0.8)
    hist = configuration_histogram(region)
    lattice = np.diag([1.3, 0.7, 0.9])
    for connectivity, skimage_connectivity in ((26, 3), (6, 1)):
        directions = 13 if connectivity == 26 else 3
        euler = minkowski_tables(lattice, directions, connectivity).measure(hist)[3]
        assert euler == euler_number(region, connectivity=skimage_connectivity)


@pytest.mark.parametrize(("connectivity", "connectivity_2d"), [(26, 2), (6, 1)])
@pytest.mark.parametrize("seed", range(3))
def test_mean_breadth_with_3_directions_is_crofton_over_skimage_slice_eulers(
        seed: int, connectivity: int, connectivity_2d: int) -> None:
    rng = np.random.default_rng(seed)
    region = rng.random((7, 9, 11)) < 0.45  # many diagonal-only contacts
    spacing_zyx = (1.7, 0.6, 0.8)
    tables = minkowski_tables(np.diag(spacing_zyx), 3, connectivity)
    breadth = tables.measure(configuration_histogram(region))[2]
    expected = sum(
        step * sum(euler_number(np.take(region, k, axis=axis), connectivity=connectivity_2d)
                   for k in range(region.shape[axis]))
        for axis, step in enumerate(spacing_zyx)) / 3
    assert breadth == pytest.approx(expected, rel=1e-12)


def test_volume_is_voxel_count_times_voxel_volume() -> None:
    region = random_blobs(5)
    tables = minkowski_tables(np.diag([2.0, 0.5, 0.75]), 13, 26)
    assert tables.measure(configuration_histogram(region))[0] == pytest.approx(
        region.sum() * 0.75, rel=1e-12)


def test_direction_weights_on_a_cubic_grid_are_leglands() -> None:
    steps = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, -1, 0), (1, 0, 1), (1, 0, -1),
             (0, 1, 1), (0, 1, -1), (1, 1, 1), (1, 1, -1), (1, -1, 1), (1, -1, -1)]
    weights = direction_weights([np.array(s, dtype=float) for s in steps])
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    # Legland et al. 2007 / MorphoLibJ: 2 x 0.04577789, 2 x 0.03698063, 2 x 0.03519564
    assert weights[:3] == pytest.approx([0.09155578] * 3, abs=1e-7)
    assert weights[3:9] == pytest.approx([0.07396126] * 6, abs=1e-7)
    assert weights[9:] == pytest.approx([0.07039128] * 4, abs=1e-7)


def test_curves_of_a_cube_with_two_bright_balls() -> None:
    zz, yy, xx = grid({"x": 30, "y": 14, "z": 14})
    bright = ((xx - 14.0) ** 2 + yy ** 2 + zz ** 2 <= 8.0 ** 2) | (
        (xx + 14.0) ** 2 + yy ** 2 + zz ** 2 <= 8.0 ** 2)
    roi = np.zeros(bright.shape, dtype=bool)
    roi[2:-2, 2:-2, 2:-2] = True
    image, mask = images(roi, values=np.where(bright, 10.0, 0.0))
    settings = MinkowskiSettings(levels=3, range_mode="absolute", threshold_range=(0.0, 10.0))
    result = minkowski_features(image, mask, settings)
    assert [row.threshold for row in result.curves] == [0.0, 5.0, 10.0]
    assert [row.euler_characteristic for row in result.curves] == [1, 2, 2]
    assert [row.volume for row in result.curves] == [roi.sum(), bright.sum(), bright.sum()]
    assert CurveRow._fields == CURVE_COLUMNS
    f = {k.removeprefix("original_minkowski_"): v for k, v in result.features.items()}
    fraction = bright.sum() / roi.sum()
    assert f["VolumeCurveAUC"] == pytest.approx(0.25 * 1 + 0.75 * fraction, rel=1e-12)
    assert f["EulerCharacteristicCurveAUC"] == pytest.approx(0.25 * 3 + 0.25 * 4, rel=1e-12)
    assert f["EulerCharacteristicCurveMaximum"] == 2
    assert f["EulerCharacteristicCurveMinimum"] == 1
    assert f["EulerCharacteristicCurveArgMax"] == 5.0
    assert f["Volume"] == roi.sum()


def test_percentile_range_follows_the_roi_intensities() -> None:
    zz, yy, xx = grid({"x": 12, "y": 12, "z": 12})
    region = zz ** 2 + yy ** 2 + xx ** 2 <= 11.0 ** 2
    values = 100.0 - np.sqrt(zz ** 2 + yy ** 2 + xx ** 2)  # bright centre
    image, mask = images(region, values=values)
    result = minkowski_features(image, mask, MinkowskiSettings(levels=8))
    low, high = np.percentile(values.astype(np.float32)[region].astype(float), [1, 99])
    thresholds = [row.threshold for row in result.curves]
    assert thresholds == pytest.approx(list(np.linspace(low, high, 8)), rel=1e-12)
    volumes = [row.volume for row in result.curves]
    assert volumes == sorted(volumes, reverse=True) and volumes[-1] < volumes[0]
    assert all(row.euler_characteristic == 1 for row in result.curves)  # nested balls


def test_feature_names_and_image_type() -> None:
    image, mask = images(ball(5.0))
    result = minkowski_features(image, mask, MinkowskiSettings(), image_type="wavelet-LLH")
    assert list(result.features) == [f"wavelet-LLH_minkowski_{n}" for n in FEATURE_NAMES]
    assert all(isinstance(v, float) for v in result.features.values())


def test_reruns_are_identical() -> None:
    region = random_blobs(7)
    values = np.random.default_rng(7).normal(size=region.shape)
    image, mask = images(region, values=values)
    first = minkowski_features(image, mask, MinkowskiSettings())
    second = minkowski_features(image, mask, MinkowskiSettings())
    assert first.features == second.features
    assert first.curves == second.curves


def test_settings_from_mapping_and_errors() -> None:
    settings = from_mapping(MinkowskiSettings, {"levels": 8, "threshold_range": [5, 95]},
                            section="minkowski")
    assert settings.threshold_range == (5.0, 95.0)
    assert settings.provenance()["levels"] == 8
    bad: list[dict[str, object]] = [
        {"connectivity": 6, "directions": 13}, {"directions": 7}, {"connectivity": 18},
        {"levels": 1}, {"levels": 2.5}, {"threshold_range": (50, 50)},
        {"threshold_range": (0, 101)}, {"range_mode": "relative"},
        {"threshold_range": (1, float("nan"))},
    ]
    for values in bad:
        with pytest.raises(ConfigError):
            MinkowskiSettings(**values)  # type: ignore[arg-type]


def test_input_errors_name_their_reason() -> None:
    image, mask = images(ball(4.0))
    two = sitk.Cast(mask * 2, sitk.sitkUInt8)
    cases = [
        (image, two, "invalid-mask"),
        (image, mask * 0, "empty-mask"),
        (image[1:, :, :], mask[:-1, :, :], "grid-mismatch"),
        (image[:, :, 3], mask[:, :, 3], "invalid-mask"),
    ]
    for img, msk, reason in cases:
        with pytest.raises(PairingError) as caught:
            minkowski_features(img, msk, MinkowskiSettings())
        assert caught.value.reason == reason
