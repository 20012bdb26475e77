"""Mean, LoG and separable wavelet filters: definitions, settings and independent cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pywt
import scipy.ndimage as ndi
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from radflow.errors import FilterError
from radflow.filters.log import LogSettings, gaussian_kernels_1d, log_filter, log_image
from radflow.filters.mean import MeanSettings, mean_filter, mean_image
from radflow.filters.wavelet import WaveletSettings, upsample, wavelet_filter, wavelet_image

MODES = ["mirror", "nearest", "wrap", "constant"]
NP_PAD = {"mirror": "symmetric", "nearest": "edge", "wrap": "wrap", "constant": "constant"}
FAST = settings(max_examples=20, deadline=None)


def dense_convolve(x: np.ndarray, kernel: np.ndarray, boundary: str) -> np.ndarray:
    """Convolution with an odd-sized kernel after explicit numpy padding."""
    pad = [(s // 2, s // 2) for s in kernel.shape]
    padded = np.pad(x, pad, mode=NP_PAD[boundary])
    full = ndi.convolve(padded, kernel, mode="constant", cval=0.0)
    return full[tuple(slice(p, p + n) for (p, _), n in zip(pad, x.shape, strict=True))]


def ibsi_log_kernel(sigma: tuple[float, ...], truncate: float) -> np.ndarray:
    """IBSI 2 LoG formula evaluated densely (σ per axis in voxels; isotropic in the formula)."""
    half = [math.floor(truncate * s + 0.5) for s in sigma]
    grids = np.meshgrid(*[np.arange(-n, n + 1) for n in half], indexing="ij")
    d = len(sigma)
    s = sigma[0]
    r2 = sum(g.astype(float) ** 2 for g in grids)
    return (-1.0 / s**2 * (1.0 / (s * math.sqrt(2 * math.pi))) ** d * (d - r2 / s**2)
            * np.exp(-r2 / (2 * s**2)))


# ---------------------------------------------------------------- mean


@pytest.mark.parametrize("boundary", MODES)
@pytest.mark.parametrize(("support", "dims"), [(1, "3d"), (3, "3d"), (5, "3d"), (5, "2d")])
def test_mean_matches_dense_box(boundary: str, support: int, dims: str) -> None:
    x = np.random.default_rng(0).normal(size=(6, 7, 8))
    shape = (1, support, support) if dims == "2d" else (support,) * 3
    box = np.ones(shape) / np.prod(shape)
    out = mean_filter(x, MeanSettings(support, boundary, dims))
    np.testing.assert_allclose(out, dense_convolve(x, box, boundary), atol=1e-12)
    assert out is not x


@pytest.mark.parametrize(("support", "message"), [(4, "odd integer"), (0, "≥ 1"),
                                                  (2.0, "integer"), ("5", "integer")])
def test_mean_rejects_bad_support(support: object, message: str) -> None:
    with pytest.raises(FilterError, match=f"^support: .*{message}"):
        MeanSettings(support)  # type: ignore[arg-type]


def test_mean_image_keeps_geometry() -> None:
    image = sitk.GetImageFromArray(np.arange(60, dtype=np.int16).reshape(3, 4, 5))
    image.SetSpacing((1.0, 2.0, 3.0))
    image.SetOrigin((1.0, 2.0, 3.0))
    out = mean_image(image, MeanSettings(3, "nearest"))
    assert (out.GetSpacing(), out.GetOrigin(), out.GetDirection()) == (
        image.GetSpacing(), image.GetOrigin(), image.GetDirection())


# ---------------------------------------------------------------- LoG


@pytest.mark.parametrize("boundary", MODES)
@pytest.mark.parametrize(("sigma_mm", "spacing", "dims"), [
    (1.5, (1.0, 1.0, 1.0), "3d"), (2.0, (2.0, 2.0, 2.0), "3d"), (1.2, (1.0, 1.0, 1.0), "2d"),
])
def test_log_matches_dense_ibsi_formula(boundary: str, sigma_mm: float,
                                        spacing: tuple[float, ...], dims: str) -> None:
    x = np.random.default_rng(1).normal(size=(9, 10, 11))
    s = LogSettings(sigma_mm, 3.0, boundary, dims)
    sigma = sigma_mm / spacing[0]
    kernel = ibsi_log_kernel((sigma,) * (3 if dims == "3d" else 2), 3.0)
    if dims == "2d":
        kernel = kernel[None]
    np.testing.assert_allclose(log_filter(x, s, spacing), dense_convolve(x, kernel, boundary),
                               atol=1e-12)


def test_log_kernel_size_and_sign() -> None:
    g, g2 = gaussian_kernels_1d(1.5, 4.0)
    assert g.size == g2.size == 13  # half-width floor(4 * 1.5 + 0.5) = 6
    assert np.isclose(g.sum(), 1.0, atol=1e-4)
    x = np.zeros((15, 15, 15))
    x[7, 7, 7] = 1.0
    out = log_filter(x, LogSettings(3.0, 4.0, "constant"), (2.0, 2.0, 2.0))
    assert out[7, 7, 7] == out.min() < 0  # negative centre: IBSI sign convention


def test_log_anisotropic_spacing_uses_sigma_per_axis() -> None:
    x = np.zeros((15, 21, 21))
    x[7, 10, 10] = 1.0
    out = log_filter(x, LogSettings(2.0, 3.0, "constant"), (2.0, 1.0, 1.0))
    gz, g2z = gaussian_kernels_1d(1.0, 3.0)
    gy, g2y = gaussian_kernels_1d(2.0, 3.0)
    expected = (np.multiply.outer(np.multiply.outer(g2z, gy), gy)
                + np.multiply.outer(np.multiply.outer(gz, g2y), gy)
                + np.multiply.outer(np.multiply.outer(gz, gy), g2y))
    np.testing.assert_allclose(out[4:11, 4:17, 4:17], expected, atol=1e-15)


@pytest.mark.parametrize(("kwargs", "option"), [
    ({"sigma_mm": 0.0}, "sigma_mm"), ({"sigma_mm": float("nan")}, "sigma_mm"),
    ({"sigma_mm": 1.0, "truncate": -1}, "truncate"), ({"sigma_mm": 1.0, "boundary": "zero"},
                                                      "boundary"),
])
def test_log_rejects_bad_values(kwargs: dict, option: str) -> None:
    with pytest.raises(FilterError, match=f"^{option}: "):
        LogSettings(**kwargs)
    with pytest.raises(FilterError, match=r"^spacing: "):
        log_filter(np.zeros((4, 4, 4)), LogSettings(1.0), (1.0, 0.0, 1.0))


def test_log_image_uses_image_spacing() -> None:
    x = np.random.default_rng(4).normal(size=(6, 7, 8))
    image = sitk.GetImageFromArray(x)
    image.SetSpacing((0.5, 0.7, 2.0))  # (x, y, z)
    out = sitk.GetArrayFromImage(log_image(image, LogSettings(1.5)))
    np.testing.assert_array_equal(out, log_filter(x, LogSettings(1.5), (2.0, 0.7, 0.5)))


# ---------------------------------------------------------------- wavelets


@pytest.mark.parametrize("wavelet", ["haar", "db2", "db3", "coif1", "sym4"])
@pytest.mark.parametrize("level", [1, 2, 3])
def test_wavelet_periodic_matches_pywavelets_swt(wavelet: str, level: int) -> None:
    """With wrap padding the à trous cascade equals PyWavelets' stationary transform."""
    x = np.random.default_rng(2).normal(size=(8, 16, 24))
    coeffs = pywt.swtn(x, wavelet, level=level, axes=(2, 1, 0), trim_approx=False)[0]
    for key, value in coeffs.items():  # key letters a/d in x, y, z order
        band = key.replace("a", "L").replace("d", "H")
        out = wavelet_filter(x, WaveletSettings(wavelet, band, level, boundary="wrap"))
        np.testing.assert_allclose(out, value, atol=1e-10, err_msg=band)


def test_upsample_inserts_zeros_around_centre() -> None:
    k = np.array([1.0, 2.0, 3.0])
    assert upsample(k, 1) is k
    assert upsample(k, 2).tolist() == [1.0, 0.0, 2.0, 0.0, 3.0]
    assert upsample(k, 3).tolist() == [1.0, 0, 0, 0, 2.0, 0, 0, 0, 3.0]


def _rotations24(a: np.ndarray) -> list[np.ndarray]:
    def spin(b: np.ndarray, axes: tuple[int, int]) -> list[np.ndarray]:
        return [np.rot90(b, k, axes=axes) for k in range(4)]

    # axis 0 kept (up, down), then axis 0 turned onto axis 1 and onto axis 2 (both ways)
    return (spin(a, (1, 2)) + spin(np.rot90(a, 2, axes=(0, 1)), (1, 2))
            + spin(np.rot90(a, 1, axes=(0, 1)), (0, 2))
            + spin(np.rot90(a, -1, axes=(0, 1)), (0, 2))
            + spin(np.rot90(a, 1, axes=(0, 2)), (0, 1))
            + spin(np.rot90(a, -1, axes=(0, 2)), (0, 1)))


@pytest.mark.parametrize("boundary", MODES)
@pytest.mark.parametrize(("wavelet", "band"), [("db2", "LHL"), ("coif1", "HHL"), ("haar", "HLL")])
def test_wavelet_rotation_invariant_level1_matches_dense(boundary: str, wavelet: str,
                                                         band: str) -> None:
    w = pywt.Wavelet(wavelet)
    taps = {"L": np.append(w.dec_lo, [0.0] * (len(w.dec_lo) % 2 == 0)),
            "H": np.append(w.dec_hi, [0.0] * (len(w.dec_hi) % 2 == 0))}
    kx, ky, kz = (taps[c] for c in band)
    kernel = np.multiply.outer(np.multiply.outer(kz, ky), kx)
    x = np.random.default_rng(3).normal(size=(7, 8, 9))
    expected = np.mean([dense_convolve(x, k, boundary) for k in _rotations24(kernel)], axis=0)
    out = wavelet_filter(x, WaveletSettings(wavelet, band, 1, True, "mean", boundary))
    np.testing.assert_allclose(out, expected, atol=1e-12)
    # max pooling is supported as an option too
    expected_max = np.max([dense_convolve(x, k, boundary) for k in _rotations24(kernel)], axis=0)
    out_max = wavelet_filter(x, WaveletSettings(wavelet, band, 1, True, "max", boundary))
    np.testing.assert_allclose(out_max, expected_max, atol=1e-12)


@FAST
@given(wavelet=st.sampled_from(["haar", "db2", "coif1"]), band=st.sampled_from(["LLH", "HHL",
                                                                                  "HHH", "LLL"]),
       level=st.integers(1, 2), boundary=st.sampled_from(MODES),
       plane=st.sampled_from([(0, 1), (0, 2), (1, 2)]), seed=st.integers(0, 2**16))
def test_wavelet_rotation_invariant_is_equivariant(wavelet: str, band: str, level: int,
                                                   boundary: str, plane: tuple[int, int],
                                                   seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(6, 7, 8))
    s = WaveletSettings(wavelet, band, level, True, "mean", boundary)
    np.testing.assert_allclose(wavelet_filter(np.rot90(x, 1, axes=plane), s),
                               np.rot90(wavelet_filter(x, s), 1, axes=plane), atol=1e-10)


def test_wavelet_2d_mode_and_image() -> None:
    x = np.random.default_rng(6).normal(size=(3, 8, 8))
    s = WaveletSettings("db2", "hl", 1, dimensions="2d", boundary="wrap")
    assert s.band == "HL"
    out = wavelet_filter(x, s)
    for k in range(3):
        coeffs = pywt.swtn(x[k], "db2", level=1, axes=(1, 0), trim_approx=False)[0]
        np.testing.assert_allclose(out[k], coeffs["da"], atol=1e-12)
    image = sitk.GetImageFromArray(x)
    image.SetOrigin((5.0, 6.0, 7.0))
    result = wavelet_image(image, s)
    assert result.GetOrigin() == image.GetOrigin()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(result), out)


@pytest.mark.parametrize(("kwargs", "option", "allowed"), [
    ({"wavelet": "db99", "band": "LLH"}, "wavelet", "coif1"),
    ({"wavelet": "db2", "band": "LXH"}, "band", "L/H"),
    ({"wavelet": "db2", "band": "LH"}, "band", "3 letters"),
    ({"wavelet": "db2", "band": "LLH", "level": 0}, "level", "≥ 1"),
    ({"wavelet": "db2", "band": "LLH", "pooling": "median"}, "pooling", "max, mean"),
    ({"wavelet": "db2", "band": "LLH", "boundary": "periodic"}, "boundary", "wrap"),
])
def test_wavelet_rejects_bad_values(kwargs: dict, option: str, allowed: str) -> None:
    with pytest.raises(FilterError) as info:
        WaveletSettings(**kwargs)
    assert str(info.value).startswith(f"{option}: ") and allowed in str(info.value)
