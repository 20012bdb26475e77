"""Fractal dimensions (radflow.features.fractal): box counting on shapes of known dimension,
surface box counting, differential box counting on flat, noisy and fractional Brownian images,
settings and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.errors import ConfigError, PairingError
from radflow.features.fractal import (
    FEATURE_NAMES,
    FractalSettings,
    box_counting_dimension,
    box_counts,
    differential_box_counting_dimension,
    fractal_features,
    inner_boundary,
)
from radflow.settings import from_mapping

TRIADIC = FractalSettings(box_base=3)


def images(region: np.ndarray, values: np.ndarray | None = None,
           spacing: tuple[float, ...] | None = None) -> tuple[sitk.Image, sitk.Image]:
    mask = sitk.GetImageFromArray(region.astype(np.uint8))
    image = sitk.GetImageFromArray(
        (values if values is not None else region * 50.0).astype(np.float64))
    if spacing is not None:
        image.SetSpacing(spacing)
        mask.SetSpacing(spacing)
    return image, mask


def dimensions(region: np.ndarray, settings: FractalSettings | None = None,
               **kwargs: object) -> dict[str, float]:
    image, mask = images(region, **kwargs)  # type: ignore[arg-type]
    found = fractal_features(image, mask, settings or FractalSettings())
    return {k.removeprefix("original_fractal_"): v for k, v in found.items()}


def menger_sponge(level: int) -> np.ndarray:
    sponge = np.ones((1, 1, 1), dtype=bool)
    for _ in range(level):
        n = sponge.shape[0]
        bigger = np.zeros((3 * n,) * 3, dtype=bool)
        for i, j, k in np.ndindex(3, 3, 3):
            if (i == 1) + (j == 1) + (k == 1) < 2:  # not a face centre nor the centre
                bigger[i * n:(i + 1) * n, j * n:(j + 1) * n, k * n:(k + 1) * n] = sponge
        sponge = bigger
    return sponge


def sierpinski_carpet(level: int) -> np.ndarray:
    carpet = np.ones((1, 1), dtype=bool)
    for _ in range(level):
        n = carpet.shape[0]
        bigger = np.zeros((3 * n, 3 * n), dtype=bool)
        for i, j in np.ndindex(3, 3):
            if (i, j) != (1, 1):
                bigger[i * n:(i + 1) * n, j * n:(j + 1) * n] = carpet
        carpet = bigger
    return carpet


def fractional_brownian_surface(n: int, hurst: float, seed: int) -> np.ndarray:
    """Spectral synthesis: amplitude ~ |k|^-(H+1), random phases; dimension 3 - H."""
    rng = np.random.default_rng(seed)
    ky, kx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")
    k = np.hypot(ky, kx)
    k[0, 0] = 1.0
    amplitude = k ** -(hurst + 1.0)
    amplitude[0, 0] = 0.0
    return np.asarray(np.fft.ifft2(amplitude * np.exp(2j * np.pi * rng.random((n, n)))).real)


def embedded(region: np.ndarray, margin: int = 3) -> np.ndarray:
    """``region`` inside a larger background volume (the ROI does not start at index 0)."""
    return np.pad(region, margin)


def test_solid_cube_plane_and_line() -> None:
    cube = embedded(np.ones((64, 64, 64), dtype=bool))
    plane = embedded(np.ones((1, 64, 64), dtype=bool))
    line = embedded(np.ones((1, 1, 64), dtype=bool))
    assert dimensions(cube)["BoxCountingDimension"] == pytest.approx(3.0, abs=0.05)
    assert dimensions(plane)["BoxCountingDimension"] == pytest.approx(2.0, abs=0.05)
    assert dimensions(line)["BoxCountingDimension"] == pytest.approx(1.0, abs=0.05)


def test_menger_sponge_level_3() -> None:
    found = dimensions(embedded(menger_sponge(3)), TRIADIC)["BoxCountingDimension"]
    assert found == pytest.approx(math.log(20) / math.log(3), abs=0.05)


def test_sierpinski_carpet_in_2d_and_as_one_slice() -> None:
    carpet = sierpinski_carpet(5)  # 243 x 243
    expected = math.log(8) / math.log(3)
    flat = dimensions(embedded(carpet), TRIADIC)["BoxCountingDimension"]
    assert flat == pytest.approx(expected, abs=0.05)
    one_slice = dimensions(embedded(carpet)[None], TRIADIC)["BoxCountingDimension"]
    assert one_slice == pytest.approx(expected, abs=0.05)


def test_box_counts_by_hand() -> None:
    region = np.zeros((4, 5), dtype=bool)
    region[0, 0] = region[3, 3] = region[3, 4] = True
    # size 2: blocks (0,0), (1,1), (1,2); size 4: (0,0), (0,1) (padded to 8 columns)
    assert box_counts(region, [1, 2, 4]).tolist() == [3, 3, 2]


def test_surface_of_a_large_ball_and_of_a_disc() -> None:
    half = 62
    z, y, x = np.ogrid[-half:half + 1, -half:half + 1, -half:half + 1]
    ball = z ** 2 + y ** 2 + x ** 2 <= 60 ** 2
    assert dimensions(ball)["SurfaceBoxCountingDimension"] == pytest.approx(2.0, abs=0.05)
    y2, x2 = np.ogrid[-130:131, -130:131]
    disc = y2 ** 2 + x2 ** 2 <= 128 ** 2
    assert dimensions(disc)["SurfaceBoxCountingDimension"] == pytest.approx(1.0, abs=0.05)


def test_inner_boundary_uses_26_neighbours() -> None:
    cube = np.zeros((5, 5, 5), dtype=bool)
    cube[1:4, 1:4, 1:4] = True
    edge = inner_boundary(cube)
    assert edge.sum() == 26 and not edge[2, 2, 2]
    assert inner_boundary(np.ones((3, 3, 3), dtype=bool)).sum() == 26  # image border


def test_flat_image_has_grey_dimension_2() -> None:
    roi = np.ones((1, 64, 64), dtype=bool)
    found = differential_box_counting_dimension(np.full(roi.shape, 7.0), roi, FractalSettings())
    assert found == pytest.approx(2.0, abs=1e-9)


def test_smooth_ramp_in_a_disc_has_grey_dimension_2() -> None:
    y, x = np.mgrid[-64:65, -64:65].astype(float)
    disc = (x ** 2 + y ** 2 <= 60 ** 2)[None]
    for ramp in (x, 0.3 * x + y, -2.0 * x + 0.5 * y):
        found = differential_box_counting_dimension(ramp[None], disc, FractalSettings())
        assert found == pytest.approx(2.0, abs=0.05)


def test_flat_image_in_a_disc_has_grey_dimension_2() -> None:
    y, x = np.ogrid[-40:41, -40:41]
    disc = np.broadcast_to(x ** 2 + y ** 2 <= 37 ** 2, (3, 81, 81))
    found = differential_box_counting_dimension(np.full(disc.shape, 1.5), disc,
                                                FractalSettings())
    assert found == pytest.approx(2.0, abs=1e-9)


def test_white_noise_has_grey_dimension_near_3() -> None:
    rng = np.random.default_rng(0)
    roi = np.ones((1, 128, 128), dtype=bool)
    found = differential_box_counting_dimension(rng.random(roi.shape), roi, FractalSettings())
    # DBC reaches 3 only for boxes much smaller than the image: 2.93 at 128 x 128
    assert 2.9 <= found <= 3.0


def test_fractional_brownian_surfaces_are_ordered_with_a_known_bias() -> None:
    roi = np.ones((1, 256, 256), dtype=bool)
    found = {}
    for hurst in (0.2, 0.5, 0.8):
        surface = fractional_brownian_surface(256, hurst, seed=1)[None]
        found[hurst] = differential_box_counting_dimension(surface, roi, FractalSettings())
        # DBC under-estimates fBm (README): by up to 0.35 at this size, never over.
        assert 3.0 - hurst - 0.4 <= found[hurst] <= 3.0 - hurst
    assert found[0.2] - found[0.5] > 0.05 and found[0.5] - found[0.8] > 0.05


def test_grey_dimension_ignores_linear_rescaling_and_pools_slices() -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(size=(1, 96, 96)).cumsum(axis=2)
    roi = np.zeros(values.shape, dtype=bool)
    roi[:, 5:90, 3:95] = True
    settings = FractalSettings()
    one = differential_box_counting_dimension(values, roi, settings)
    assert differential_box_counting_dimension(3.0 * values - 40.0, roi, settings) == \
        pytest.approx(one, abs=1e-12)
    stack = np.repeat(values, 4, axis=0)
    assert differential_box_counting_dimension(stack, np.repeat(roi, 4, axis=0), settings) == \
        pytest.approx(one, abs=1e-12)


def test_boxes_are_counted_in_voxels_whatever_the_spacing() -> None:
    sponge = embedded(menger_sponge(2))
    values = np.random.default_rng(2).random(sponge.shape)
    plain = dimensions(sponge, TRIADIC, values=values)
    thick = dimensions(sponge, TRIADIC, values=values, spacing=(0.7, 0.7, 5.0))
    assert thick == plain


def test_tiny_roi_gives_nan() -> None:
    found = dimensions(embedded(np.ones((3, 3, 3), dtype=bool)))
    assert all(math.isnan(v) for v in found.values())
    assert math.isnan(box_counting_dimension(np.ones((2, 2), dtype=bool), FractalSettings()))


def test_feature_names_image_type_and_reruns() -> None:
    rng = np.random.default_rng(9)
    region = embedded(menger_sponge(3))
    image, mask = images(region, values=rng.normal(size=region.shape))
    first = fractal_features(image, mask, FractalSettings(), image_type="log-sigma-1-0-mm-3D")
    assert list(first) == [f"log-sigma-1-0-mm-3D_fractal_{n}" for n in FEATURE_NAMES]
    second = fractal_features(image, mask, FractalSettings(), image_type="log-sigma-1-0-mm-3D")
    assert first == second


def test_settings_from_mapping_and_errors() -> None:
    settings = from_mapping(FractalSettings, {"box_base": 3, "max_box": 27}, section="fractal")
    assert settings.provenance()["max_box"] == 27
    assert FractalSettings().provenance()["max_box"] == 0
    for bad in ({"box_base": 1}, {"min_box": 0}, {"min_box": 4, "max_box": 2},
                {"grey_min_box": 2.5}, {"grey_max_box": 1}, {"box_base": True}):
        with pytest.raises(ConfigError):
            FractalSettings(**bad)  # type: ignore[arg-type]


def test_input_errors_name_their_reason() -> None:
    image, mask = images(embedded(np.ones((4, 4, 4), dtype=bool)))
    with pytest.raises(PairingError) as caught:
        fractal_features(image, mask * 0, FractalSettings())
    assert caught.value.reason == "empty-mask"
    other = sitk.Image(mask)
    other.SetSpacing((1.0, 1.0, 2.0))
    with pytest.raises(PairingError) as caught:
        fractal_features(image, other, FractalSettings())
    assert caught.value.reason == "grid-mismatch"
