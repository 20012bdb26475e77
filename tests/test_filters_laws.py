"""Laws filter: definitions, settings, properties, and a dense brute-force cross-check."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.ndimage as ndi
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from radflow.errors import FilterError, RadflowError
from radflow.filters import separable
from radflow.filters.laws import (
    LawsSettings,
    laws_feature_prefix,
    laws_filter,
    laws_image,
    laws_kernel_1d,
    laws_kernel_array,
    parse_laws_kernel,
)

NAMES = ["L5", "E5", "S5", "W5", "R5", "L3", "E3", "S3"]
ZERO_SUM = [n for n in NAMES if not n.startswith("L")]
MODES = ["mirror", "nearest", "wrap", "constant"]
NP_PAD = {"mirror": "symmetric", "nearest": "edge", "wrap": "wrap", "constant": "constant"}
FAST = settings(max_examples=25, deadline=None)

kernels_3d = st.lists(st.sampled_from(NAMES), min_size=3, max_size=3).map("".join)
kernels_2d = st.lists(st.sampled_from(NAMES), min_size=2, max_size=2).map("".join)


def rotations24(a: np.ndarray) -> list[np.ndarray]:
    """The 24 right-angle rotations of a 3-D array, built with np.rot90 only."""

    def spin(b: np.ndarray, axes: tuple[int, int]) -> list[np.ndarray]:
        return [np.rot90(b, k, axes=axes) for k in range(4)]

    # axis 0 kept (up, down), then axis 0 turned onto axis 1 and onto axis 2 (both ways)
    return (spin(a, (1, 2)) + spin(np.rot90(a, 2, axes=(0, 1)), (1, 2))
            + spin(np.rot90(a, 1, axes=(0, 1)), (0, 2))
            + spin(np.rot90(a, -1, axes=(0, 1)), (0, 2))
            + spin(np.rot90(a, 1, axes=(0, 2)), (0, 1))
            + spin(np.rot90(a, -1, axes=(0, 2)), (0, 1)))


def dense_convolve(x: np.ndarray, kernel: np.ndarray, boundary: str) -> np.ndarray:
    """Convolution with an odd-sized kernel after explicit numpy padding (no scipy modes)."""
    pad = [(s // 2, s // 2) for s in kernel.shape]
    padded = np.pad(x, pad, mode=NP_PAD[boundary])
    full = ndi.convolve(padded, kernel, mode="constant", cval=0.0)
    return full[tuple(slice(p, p + n) for (p, _), n in zip(pad, x.shape, strict=True))]


def brute_force(x: np.ndarray, s: LawsSettings) -> np.ndarray:
    """Laws filter from dense kernels: rotate, convolve, pool, energy (IBSI 2 order)."""
    k = laws_kernel_array(s.kernel)
    if s.dimensions == "2d":
        k = k[None]
        kernels = [np.rot90(k, r, axes=(1, 2)) for r in range(4)] if s.rotation_invariant else [k]
    else:
        kernels = rotations24(k) if s.rotation_invariant else [k]
    responses = np.stack([dense_convolve(x, kr, s.boundary) for kr in kernels])
    out = responses.max(axis=0) if s.pooling == "max" else responses.mean(axis=0)
    if s.energy_delta is not None:
        size = 2 * s.energy_delta + 1
        box = np.ones((1, size, size) if s.dimensions == "2d" else (size,) * 3) / size ** (
            2 if s.dimensions == "2d" else 3)
        out = dense_convolve(np.abs(out), box, s.boundary)
    return out


# ---------------------------------------------------------------- definitions and settings


def test_one_d_kernels_are_unit_norm_and_zero_sum_except_level() -> None:
    integer_taps = {"L5": [1, 4, 6, 4, 1], "E5": [-1, -2, 0, 2, 1], "S5": [-1, 0, 2, 0, -1],
                    "W5": [-1, 2, 0, -2, 1], "R5": [1, -4, 6, -4, 1], "L3": [1, 2, 1],
                    "E3": [-1, 0, 1], "S3": [-1, 2, -1]}
    for name, taps in integer_taps.items():
        k = laws_kernel_1d(name)
        assert np.isclose(np.sum(k**2), 1.0)
        np.testing.assert_allclose(k * np.linalg.norm(taps), taps, rtol=1e-12)
        assert np.isclose(k.sum(), 0.0) == (not name.startswith("L"))


def test_kernel_array_axis_order_first_name_is_x() -> None:
    k = laws_kernel_array("E5L5S3")
    assert k.shape == (3, 5, 5)  # (z: S3, y: L5, x: E5)
    e5 = laws_kernel_1d("E5")
    np.testing.assert_allclose(k[1, 2, :] / k[1, 2, 4], e5 / e5[4])
    assert parse_laws_kernel("e5l5s3") == ("E5", "L5", "S3")


@pytest.mark.parametrize(("kwargs", "option", "allowed"), [
    ({"kernel": "L5X5E5"}, "kernel", "L5, E5, S5, W5, R5, L3, E3, S3"),
    ({"kernel": "L5"}, "kernel", "L5, E5"),
    ({"kernel": "L5E5E5L5"}, "kernel", "E5L5S5"),
    ({"kernel": "L5E5"}, "kernel", "dimensions='2d'"),
    ({"kernel": "L5E5E5", "dimensions": "2d"}, "kernel", "dimensions='3d'"),
    ({"kernel": "L5E5E5", "pooling": "min"}, "pooling", "max, mean"),
    ({"kernel": "L5E5E5", "boundary": "reflect"}, "boundary", "mirror, nearest, wrap, constant"),
    ({"kernel": "L5E5E5", "dimensions": "3D"}, "dimensions", "3d, 2d"),
    ({"kernel": "L5E5E5", "energy_delta": -1}, "energy_delta", "≥ 0"),
    ({"kernel": "L5E5E5", "energy_delta": 2.5}, "energy_delta", "integer"),
    ({"kernel": "L5E5E5", "energy_delta": True}, "energy_delta", "integer"),
    ({"kernel": "L5E5E5", "rotation_invariant": "yes"}, "rotation_invariant", "True or False"),
])
def test_settings_reject_bad_values_naming_option_and_allowed(
        kwargs: dict, option: str, allowed: str) -> None:
    with pytest.raises(FilterError) as info:
        LawsSettings(**kwargs)
    message = str(info.value)
    assert message.startswith(f"{option}: ") and allowed in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, RadflowError)


def test_settings_normalise_kernel_case() -> None:
    s = LawsSettings("l5e5e5", energy_delta=np.int64(3))
    assert s.kernel == "L5E5E5" and s.energy_delta == 3 and type(s.energy_delta) is int


@pytest.mark.parametrize(("kwargs", "prefix"), [
    ({"kernel": "L5E5E5"}, "laws-L5E5E5"),
    ({"kernel": "L5E5E5", "rotation_invariant": True, "energy_delta": 7}, "laws-L5E5E5-ri-max-e7"),
    ({"kernel": "l5s5", "dimensions": "2d", "rotation_invariant": True, "pooling": "mean"},
     "laws-L5S5-ri-mean"),
    ({"kernel": "E3W5R5", "energy_delta": 0}, "laws-E3W5R5-e0"),
    ({"kernel": "E3W5R5", "pooling": "mean"}, "laws-E3W5R5"),  # pooling unused without RI
])
def test_feature_prefix(kwargs: dict, prefix: str) -> None:
    assert laws_feature_prefix(LawsSettings(**kwargs)) == prefix


def test_volume_validation() -> None:
    s = LawsSettings("L5E5E5")
    with pytest.raises(FilterError, match="NaN"):
        laws_filter(np.full((6, 6, 6), np.nan), s)
    with pytest.raises(FilterError, match="3-D"):
        laws_filter(np.zeros((6, 6)), s)
    with pytest.raises(FilterError, match="dtype"):
        laws_filter(np.zeros((6, 6, 6), dtype=complex), s)
    out = laws_filter(np.zeros((6, 7)), LawsSettings("L5E5", dimensions="2d"))
    assert out.shape == (6, 7)


# ---------------------------------------------------------------- properties (hypothesis)


@FAST
@given(kernel=st.one_of(kernels_3d, kernels_2d), boundary=st.sampled_from(MODES),
       margin=st.integers(0, 3))
def test_impulse_gives_outer_product_of_normalised_kernels(kernel: str, boundary: str,
                                                           margin: int) -> None:
    dims = "3d" if len(kernel) == 6 else "2d"
    expected = laws_kernel_array(kernel)
    if dims == "2d":
        expected = expected[None]
    shape = tuple(n + 2 * margin + 4 for n in expected.shape)
    x = np.zeros(shape)
    centre = tuple(n // 2 for n in shape)
    x[centre] = 1.0
    out = laws_filter(x, LawsSettings(kernel, boundary=boundary, dimensions=dims))
    window = tuple(slice(c - n // 2, c + n // 2 + 1) for c, n in zip(centre, expected.shape,
                                                                     strict=True))
    np.testing.assert_allclose(out[window], expected, atol=1e-15)
    assert np.isclose(np.abs(out).sum(), np.abs(expected).sum())  # nothing outside the support


@FAST
@given(names=st.lists(st.sampled_from(NAMES), min_size=3, max_size=3).filter(
    lambda n: any(x in ZERO_SUM for x in n)),
    boundary=st.sampled_from(["mirror", "nearest", "wrap"]), ri=st.booleans(),
    pooling=st.sampled_from(["max", "mean"]), delta=st.none() | st.integers(0, 2),
    value=st.floats(-1e3, 1e3))
def test_zero_sum_kernels_give_zero_on_constant_image(names: list[str], boundary: str, ri: bool,
                                                      pooling: str, delta: int | None,
                                                      value: float) -> None:
    s = LawsSettings("".join(names), ri, pooling, delta, boundary)
    out = laws_filter(np.full((7, 8, 9), value), s)
    np.testing.assert_allclose(out, 0.0, atol=1e-9 * max(1.0, abs(value)))


@FAST
@given(kernel=kernels_3d, boundary=st.sampled_from(MODES), ri=st.booleans(),
       a=st.floats(-5, 5), b=st.floats(-5, 5), seed=st.integers(0, 2**16))
def test_linear_without_energy(kernel: str, boundary: str, ri: bool, a: float, b: float,
                               seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(2, 6, 7, 8))
    s = LawsSettings(kernel, ri, "mean", None, boundary)
    lhs = laws_filter(a * x + b * y, s)
    rhs = a * laws_filter(x, s) + b * laws_filter(y, s)
    np.testing.assert_allclose(lhs, rhs, atol=1e-10)


@FAST
@given(kernel=kernels_3d, a=st.floats(0, 10), seed=st.integers(0, 2**16))
def test_max_pooling_is_positively_homogeneous(kernel: str, a: float, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(6, 7, 8))
    s = LawsSettings(kernel, True, "max", None, "mirror")
    np.testing.assert_allclose(laws_filter(a * x, s), a * laws_filter(x, s), atol=1e-10)


@FAST
@given(kernel=kernels_3d, boundary=st.sampled_from(MODES), pooling=st.sampled_from(["max", "mean"]),
       delta=st.none() | st.integers(0, 2), plane=st.sampled_from([(0, 1), (0, 2), (1, 2)]),
       k=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_rotation_invariant_3d_is_equivariant_under_90_degree_rotations(
        kernel: str, boundary: str, pooling: str, delta: int | None, plane: tuple[int, int],
        k: int, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(6, 7, 8))
    s = LawsSettings(kernel, True, pooling, delta, boundary)
    rotated_first = laws_filter(np.rot90(x, k, axes=plane), s)
    np.testing.assert_allclose(rotated_first, np.rot90(laws_filter(x, s), k, axes=plane),
                               atol=1e-10)


@FAST
@given(kernel=kernels_2d, boundary=st.sampled_from(MODES), pooling=st.sampled_from(["max", "mean"]),
       delta=st.none() | st.integers(0, 2), k=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_rotation_invariant_2d_is_equivariant_under_in_plane_rotations(
        kernel: str, boundary: str, pooling: str, delta: int | None, k: int, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(3, 7, 9))
    s = LawsSettings(kernel, True, pooling, delta, boundary, "2d")
    rotated_first = laws_filter(np.rot90(x, k, axes=(1, 2)), s)
    np.testing.assert_allclose(rotated_first, np.rot90(laws_filter(x, s), k, axes=(1, 2)),
                               atol=1e-10)


def test_rotation_invariance_is_not_trivial() -> None:
    """Without rotation invariance an oriented kernel is not equivariant (the property can fail)."""
    x = np.random.default_rng(3).normal(size=(6, 7, 8))
    s = LawsSettings("E5L5S5")
    assert not np.allclose(laws_filter(np.rot90(x, 1, axes=(1, 2)), s),
                           np.rot90(laws_filter(x, s), 1, axes=(1, 2)), atol=1e-6)


# ---------------------------------------------------------------- brute force cross-check


@pytest.mark.parametrize("boundary", MODES)
@pytest.mark.parametrize(("kernel", "dims"), [
    ("E5L5S5", "3d"), ("L5E5E5", "3d"), ("E3W5R5", "3d"), ("E5E5E5", "3d"), ("L3S5L3", "3d"),
    ("L5S5", "2d"), ("E5W5", "2d"), ("E3E3", "2d"),
])
@pytest.mark.parametrize(("ri", "pooling", "delta"), [
    (False, "max", None), (True, "max", None), (True, "mean", None), (True, "max", 2),
    (False, "max", 1),
])
def test_matches_dense_brute_force(kernel: str, dims: str, boundary: str, ri: bool, pooling: str,
                                   delta: int | None) -> None:
    x = np.random.default_rng(7).normal(size=(7, 8, 9))
    s = LawsSettings(kernel, ri, pooling, delta, boundary, dims)
    np.testing.assert_allclose(laws_filter(x, s), brute_force(x, s), atol=1e-12)


def test_rotations24_are_distinct() -> None:
    a = np.random.default_rng(0).random((3, 3, 3))
    assert len({r.tobytes() for r in rotations24(a)}) == 24


def test_2d_mode_filters_each_slice_independently() -> None:
    x = np.random.default_rng(5).normal(size=(4, 9, 10))
    s = LawsSettings("E5S5", True, "max", 2, "mirror", "2d")
    out = laws_filter(x, s)
    for k in range(x.shape[0]):
        np.testing.assert_allclose(out[k], laws_filter(x[k], s), atol=1e-13)


@pytest.mark.parametrize(("kernel", "passes"), [("L5E5E5", 8), ("E5L5S5", 15), ("L5L5L5", 3)])
def test_rotation_invariance_shares_one_d_passes(monkeypatch: pytest.MonkeyPatch, kernel: str,
                                                 passes: int) -> None:
    count = [0]
    real = separable._apply

    def counting(volume, op, axis, mode):  # type: ignore[no-untyped-def]
        count[0] += len(op)
        return real(volume, op, axis, mode)

    monkeypatch.setattr(separable, "_apply", counting)
    laws_filter(np.zeros((6, 6, 6)), LawsSettings(kernel, True, "max"))
    assert count[0] == passes  # 24 rotations x 3 passes = 72 without sharing


# ---------------------------------------------------------------- SimpleITK images


def test_laws_image_keeps_geometry_and_values(caplog: pytest.LogCaptureFixture) -> None:
    x = np.random.default_rng(2).normal(size=(5, 6, 7)).astype(np.float32)
    image = sitk.GetImageFromArray(x)
    image.SetSpacing((0.8, 0.8, 2.5))
    image.SetOrigin((10.0, -20.0, 30.0))
    image.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0))
    s = LawsSettings("L5E5", True, dimensions="2d")
    with caplog.at_level(logging.WARNING, logger="radflow.filters.laws"):
        out = laws_image(image, s)
    assert not caplog.records  # in-plane spacing is isotropic: no warning in 2-D mode
    assert out.GetSpacing() == image.GetSpacing() and out.GetOrigin() == image.GetOrigin()
    assert out.GetDirection() == image.GetDirection()
    assert out.GetPixelID() == sitk.sitkFloat64
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out), laws_filter(x, s))
    with caplog.at_level(logging.WARNING, logger="radflow.filters.laws"):
        laws_image(image, LawsSettings("L5E5E5"))
    assert any("anisotropic" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("kernel", "dims", "zero"), [
    ("E5L5S5", "3d", True), ("E5W5S5", "3d", True), ("E5W5E3", "3d", True),
    ("E3E3E3", "3d", True), ("L5S5L3", "3d", False), ("E5L5", "2d", True),
    ("E5W5", "2d", False), ("S5L5", "2d", False),
])
def test_mean_pooling_of_odd_kernels_vanishes_with_a_warning(
        caplog: pytest.LogCaptureFixture, kernel: str, dims: str, zero: bool) -> None:
    """180° rotations reverse odd (E, W) kernels; the dense brute force agrees on which vanish."""
    x = np.random.default_rng(8).normal(size=(6, 7, 8))
    s = LawsSettings(kernel, True, "mean", None, "mirror", dims)
    with caplog.at_level(logging.WARNING, logger="radflow.filters.laws"):
        out = laws_filter(x, s)
    expected = brute_force(x, s)
    assert (np.abs(expected).max() < 1e-12) == zero
    assert (not out.any()) == zero
    assert any("identically 0" in r.getMessage() for r in caplog.records) == zero
    np.testing.assert_allclose(out, expected, atol=1e-12)
