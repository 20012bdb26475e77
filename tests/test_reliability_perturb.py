"""radflow.reliability.perturb / masks / controls: physics checks through PyRadiomics, magnitudes
of the perturbations, determinism (issue 16 parts 1 and 2)."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from radflow import radiomics_adapter as ra
from radflow.errors import ConfigError, PairingError
from radflow.reliability import perturb as pt
from radflow.reliability import spatial as sp
from radflow.reliability.controls import CONTROL_KINDS, CONTROL_REGIONS, negative_control
from radflow.reliability.masks import adapt_volume, randomise_contour
from radflow.settings import from_mapping

PARAMS = {"setting": {"binWidth": 25},
          "imageType": {"Original": {}},
          "featureClass": {"shape": [], "firstorder": [], "glcm": [], "glrlm": [], "glszm": []}}
SHAPE_ONLY = {"setting": {"binWidth": 25}, "imageType": {"Original": {}},
              "featureClass": {"shape": []}}

# First-order features of PyRadiomics, all functions of the ROI's grey-level multiset only.
# Exact (==) under a permutation of an integer-valued ROI: order statistics, histogram counts,
# and sums of integers (exact in float64 below 2**53).
ORDER_FREE = {"Minimum", "Maximum", "Median", "10Percentile", "90Percentile",
              "InterquartileRange", "Range", "Entropy", "Uniformity", "Energy", "TotalEnergy",
              "Mean", "RootMeanSquared"}
# Sums of non-integer deviations from the mean: float64 rounding depends on the summation
# order, so equal only to rounding (2e-16 relative seen on brain1); 1e-12 leaves no room for a
# real change.
MOMENTS = {"Variance", "MeanAbsoluteDeviation", "RobustMeanAbsoluteDeviation", "Skewness",
           "Kurtosis"}
TEXTURE = ("glcm", "glrlm", "glszm")


def _ellipsoid(seed: int = 0, label: int = 1) -> tuple[sitk.Image, sitk.Image]:
    """Textured int16 ellipsoid (semi-axes 15, 9, 12 voxels along x, y, z) in a 40³ noisy
    background; anisotropic spacing and an oblique direction, so that no axis is special."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices((40, 40, 40))
    ell = ((z - 20) / 12) ** 2 + ((y - 19.5) / 9) ** 2 + ((x - 20.3) / 15) ** 2 <= 1
    texture = ndi.gaussian_filter(rng.normal(0, 1, ell.shape), 1.5) * 300
    values = np.where(ell, 60 + texture, -700 + rng.normal(0, 20, ell.shape))
    image = sitk.GetImageFromArray(np.round(values).astype(np.int16))
    image.SetSpacing((0.9, 0.8, 1.2))
    image.SetOrigin((-5.0, 3.0, 7.0))
    image.SetDirection(sitk.VersorTransform((0.2, 0.1, 0.3), 0.4).GetMatrix())
    mask = sitk.GetImageFromArray(np.where(ell, label, 0).astype(np.uint8))
    mask.CopyInformation(image)
    return image, mask


def _brain1(testdata: Path) -> tuple[sitk.Image, sitk.Image]:
    folder = testdata / "pyradiomics_testcases" / "images"
    return (sitk.ReadImage(str(folder / "brain1_image.nrrd")),
            sitk.ReadImage(str(folder / "brain1_label.nrrd")))


@pytest.fixture(params=["ellipsoid", "brain1"])
def pair(request: pytest.FixtureRequest) -> tuple[sitk.Image, sitk.Image]:
    """The synthetic pair and PyRadiomics' brain1 (int16 MR, direction with a flipped y)."""
    if request.param == "ellipsoid":
        return _ellipsoid()
    return _brain1(request.getfixturevalue("testdata"))


def _features(image: sitk.Image, mask: sitk.Image, params: dict = PARAMS, label: int = 1
              ) -> dict[tuple[str, str], float]:
    return {(c, f): v for _, c, f, v in ra.feature_rows(image, mask, params, label=label)}


def _roi(mask: sitk.Image, label: int = 1) -> np.ndarray:
    return sitk.GetArrayFromImage(mask) == label


# --- physics through PyRadiomics ----------------------------------------------------------

def test_shape_identical_under_noise_and_intensity_only_controls(pair) -> None:
    image, mask = pair
    reference = _features(image, mask, SHAPE_ONLY)
    noisy = pt.add_noise(image, np.random.default_rng(1), sigma=30.0)
    assert _features(noisy, mask, SHAPE_ONLY) == reference
    for kind in CONTROL_KINDS:
        for region in CONTROL_REGIONS:
            control = negative_control(image, mask, kind, region, np.random.default_rng(2))
            assert _features(control, mask, SHAPE_ONLY) == reference, (kind, region)


def test_shuffled_roi_keeps_histogram_features_and_changes_texture(pair) -> None:
    image, mask = pair
    original = _features(image, mask)
    shuffled = _features(negative_control(image, mask, "shuffled", "roi",
                                          np.random.default_rng(3)), mask)
    first_order = {f for c, f in original if c == "firstorder"}
    assert first_order == ORDER_FREE | MOMENTS  # every first-order feature is classified
    for name in ORDER_FREE:
        assert shuffled["firstorder", name] == original["firstorder", name], name
    for name in MOMENTS:
        assert shuffled["firstorder", name] == pytest.approx(original["firstorder", name],
                                                             rel=1e-12, abs=0), name
    texture = [k for k in original if k[0] in TEXTURE]
    assert len(texture) > 50
    unchanged = [k for k in texture if abs(shuffled[k] - original[k]) <= 1e-6 * abs(original[k])]
    assert unchanged == []
    # shuffling destroys the neighbours' correlation of a textured ROI
    assert abs(shuffled["glcm", "Correlation"]) < 0.25 * abs(original["glcm", "Correlation"])


def test_noise_changes_intensity_features(pair) -> None:
    image, mask = pair
    original = _features(image, mask)
    noisy = _features(pt.add_noise(image, np.random.default_rng(4), sigma=40.0), mask)
    assert noisy["firstorder", "Variance"] > original["firstorder", "Variance"]
    assert noisy["glcm", "Contrast"] > original["glcm", "Contrast"]


@pytest.mark.parametrize("fraction", [-0.2, -0.1, 0.1, 0.2])
def test_volume_adaptation_hits_the_target(pair, fraction: float) -> None:
    image, mask = pair
    before = _roi(mask)
    adapted = adapt_volume(mask, fraction, rng=np.random.default_rng(5))
    after = _roi(adapted)
    target = before.sum() * (1 + fraction)
    assert abs(after.sum() - target) <= 0.01 * target
    # grown ROIs contain the original, shrunk ones lie inside it
    assert (after >= before).all() if fraction > 0 else (after <= before).all()
    volume = _features(image, mask, SHAPE_ONLY)["shape", "VoxelVolume"]
    new_volume = _features(image, adapted, SHAPE_ONLY)["shape", "VoxelVolume"]
    assert abs(new_volume - volume * (1 + fraction)) <= 0.01 * volume * (1 + fraction)


def test_volume_adaptation_is_isotropic_in_mm() -> None:
    """Growth follows physical distance: a ball on 1 × 1 × 4 mm voxels grows into a ball."""
    z, y, x = np.indices((24, 80, 80))
    ball = (((z - 12) * 4) ** 2 + (y - 40) ** 2 + (x - 40) ** 2) <= 20 ** 2
    mask = sitk.GetImageFromArray(ball.astype(np.uint8))
    mask.SetSpacing((1.0, 1.0, 4.0))
    grown = _roi(adapt_volume(mask, 0.6))
    radius = 20 * 1.6 ** (1 / 3)
    zz, yy, xx = np.nonzero(grown)
    distance = np.sqrt(((zz - 12) * 4) ** 2 + (yy - 40) ** 2 + (xx - 40) ** 2)
    assert distance.max() < radius + 2.0
    assert abs(np.ptp(zz) * 4 - np.ptp(xx)) <= 4.0  # as tall (mm) as wide


# --- geometry: rotation and translation ------------------------------------------------------

def _index_centroid(mask: sitk.Image) -> np.ndarray:
    return np.argwhere(_roi(mask)).mean(axis=0)[::-1]  # (x, y, z)


def _physical_to_index(grid: sitk.Image, point: np.ndarray) -> np.ndarray:
    return np.asarray(grid.TransformPhysicalPointToContinuousIndex(point.tolist()))


@pytest.mark.parametrize("angle", [-30.0, 15.0, 90.0])
def test_rotation_about_the_centroid_keeps_it(pair, angle: float) -> None:
    image, mask = pair
    _, rotated = sp.rotate(image, mask, angle, "z")
    shift = _index_centroid(rotated) - _index_centroid(mask)
    assert np.abs(shift).max() <= 0.5


def test_rotation_about_another_point_moves_the_centroid_as_the_matrix_says() -> None:
    image, mask = _ellipsoid()
    center = np.asarray(image.TransformContinuousIndexToPhysicalPoint((16.0, 24.0, 20.0)))
    before = sp.roi_centroid(mask)
    matrix = sp.rotation_matrix(image, 25.0, "z")
    _, rotated = sp.rotate(image, mask, 25.0, "z", center=center)
    expected = center + matrix @ (before - center)
    moved = _physical_to_index(image, sp.roi_centroid(rotated)) - _physical_to_index(
        image, expected)
    assert np.abs(moved).max() <= 0.5
    assert np.linalg.norm(expected - before) > 2.0  # mm: four times the tolerance
    # the second moments turn with R (right-handed about the grid's z axis), not with R⁻¹
    before_cov, after_cov = _covariance(mask), _covariance(rotated)
    error = np.linalg.norm(after_cov - matrix @ before_cov @ matrix.T)
    wrong_way = np.linalg.norm(after_cov - matrix.T @ before_cov @ matrix)
    assert error < 0.03 * np.linalg.norm(before_cov) < 0.5 * wrong_way


def _covariance(mask: sitk.Image) -> np.ndarray:
    """Covariance (mm²) of the ROI voxels' physical centres, shape (3, 3)."""
    index = np.argwhere(_roi(mask))[:, ::-1].astype(float)
    points = np.array([mask.TransformContinuousIndexToPhysicalPoint(p) for p in index])
    return np.cov(points.T)


def test_translation_moves_the_sampling_by_the_fraction() -> None:
    z, y, x = np.indices((30, 32, 34))
    blob = 1000 * np.exp(-((x - 16.2) ** 2 + (y - 15.1) ** 2 + (z - 14.3) ** 2) / (2 * 4.0**2))
    image = sitk.GetImageFromArray(blob)
    image.SetSpacing((0.7, 0.9, 2.5))
    image.SetDirection(sitk.VersorTransform((0.1, 0.3, 0.2), 0.3).GetMatrix())
    mask = sitk.GetImageFromArray(((blob > 300) * 1).astype(np.uint8))
    mask.CopyInformation(image)
    fraction = np.array([0.3, 0.6, 0.2])
    moved_image, moved_mask = sp.translate(image, mask, fraction)
    weights = [sitk.GetArrayFromImage(i) for i in (image, moved_image)]
    centroids = [np.array([(w * c).sum() / w.sum() for c in (x, y, z)]) for w in weights]
    assert np.abs(centroids[1] - centroids[0] + fraction).max() < 0.02  # index space: −fraction
    before, after = _roi(mask), _roi(moved_mask)
    assert after.sum() == before.sum()  # the ROI only moves, by whole voxels (nearest)
    assert np.array_equal(after, np.roll(before, shift=-1, axis=1))  # y: 0.6 ≥ 0.5
    physical = _physical_to_index(image, sp.roi_centroid(moved_mask)) - _index_centroid(mask)
    assert np.abs(physical).max() <= 0.5


# --- noise ------------------------------------------------------------------------------------

def test_noise_estimate_of_white_noise_and_added_noise_level() -> None:
    rng = np.random.default_rng(6)
    white = sitk.GetImageFromArray(rng.normal(100.0, 12.0, (48, 64, 64)))
    assert pt.estimate_noise(white) == pytest.approx(12.0, rel=0.03)
    image, _ = _ellipsoid()
    noisy = pt.add_noise(image, np.random.default_rng(7), sigma=25.0)
    difference = sitk.GetArrayFromImage(noisy) - sitk.GetArrayFromImage(image)
    assert difference.std() == pytest.approx(25.0, rel=0.02)
    assert noisy.GetPixelID() == sitk.sitkFloat32
    assert noisy.GetOrigin() == image.GetOrigin()


# --- contour randomisation, chains ---------------------------------------------------------

def test_contour_randomisation_follows_supervoxels(pair) -> None:
    image, mask = pair
    before = _roi(mask)
    first = _roi(randomise_contour(image, mask, np.random.default_rng(8)))
    again = _roi(randomise_contour(image, mask, np.random.default_rng(8)))
    other = _roi(randomise_contour(image, mask, np.random.default_rng(9)))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    dice = 2 * (first & before).sum() / (first.sum() + before.sum())
    assert 0.6 < dice < 1.0


def test_perturbations_are_deterministic_lazy_and_restartable() -> None:
    image, mask = _ellipsoid(label=3)
    chain = pt.Chain("ntcv", ("noise", "translation", "contour", "volume"), copies=3)
    settings = pt.PerturbationSettings(chains=(chain,))
    copies = pt.perturbations(image, mask, chain, settings, pair_id="pair-a", label=3)
    assert inspect.isgenerator(copies)
    first = list(copies)
    second = list(pt.perturbations(image, mask, chain, settings, pair_id="pair-a", label=3))
    assert [c.name for c in first] == ["ntcv-0", "ntcv-1", "ntcv-2"]
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(sitk.GetArrayFromImage(a.image), sitk.GetArrayFromImage(b.image))
        assert np.array_equal(sitk.GetArrayFromImage(a.mask), sitk.GetArrayFromImage(b.mask))
        assert a.parameters == b.parameters
        assert set(np.unique(sitk.GetArrayFromImage(a.mask))) == {0, 3}
    alone = pt.perturbed_copy(image, mask, chain, settings, pair_id="pair-a", index=2, label=3,
                              sigma=first[2].parameters["noise_sigma"])
    assert np.array_equal(sitk.GetArrayFromImage(alone.image),
                          sitk.GetArrayFromImage(first[2].image))
    assert len({tuple(sorted(c.parameters.items())) for c in first}) > 1


def test_different_pairs_get_different_noise() -> None:
    image, mask = _ellipsoid()
    chain = pt.Chain("n", ("noise",), copies=1)
    settings = pt.PerturbationSettings(chains=(chain,), noise_sigma=10.0)
    a, b = (next(pt.perturbations(image, mask, chain, settings, pair_id=p)) for p in ("p1", "p2"))
    noise_a, noise_b = (sitk.GetArrayFromImage(c.image) - sitk.GetArrayFromImage(image)
                        for c in (a, b))
    assert not np.allclose(noise_a, noise_b)
    assert abs(np.corrcoef(noise_a.ravel(), noise_b.ravel())[0, 1]) < 0.05


def test_seed_is_stable_across_processes() -> None:
    code = ("from radflow.reliability.perturb import seed_for; "
            "print(seed_for('pair-7', 'ntcv', 4))")
    seeds = set()
    for salt in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": salt}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=True)
        seeds.add(int(out.stdout))
    assert seeds == {pt.seed_for("pair-7", "ntcv", 4)}
    assert pt.seed_for("pair-7", "ntcv", 5) != pt.seed_for("pair-7", "ntcv", 4)
    assert pt.seed_for("pair-8", "ntcv", 4) != pt.seed_for("pair-7", "ntcv", 4)


# --- settings and errors ---------------------------------------------------------------------

def test_settings_from_mapping() -> None:
    settings = from_mapping(pt.PerturbationSettings, {
        "chains": [{"name": "rvc", "steps": ["rotation", "volume", "contour"], "copies": 4}],
        "rotation_angles": [-10, 10], "translation_fractions": [0.0, 0.5]}, section="p")
    assert settings.chains == (pt.Chain("rvc", ("rotation", "volume", "contour"), 4),)
    assert settings.rotation_angles == (-10.0, 10.0)


@pytest.mark.parametrize("values", [
    {"chains": [{"name": "x", "steps": ["blur"]}]},
    {"chains": [{"name": "x", "steps": ["noise", "noise"]}]},
    {"chains": [{"name": "X_1", "steps": ["noise"]}]},
    {"chains": [{"name": "x", "steps": ["noise"], "copies": 0}]},
    {"chains": [{"name": "x", "steps": ["noise"]}, {"name": "x", "steps": ["volume"]}]},
    {"translation_fractions": [1.0]},
    {"volume_fractions": [-1.0]},
    {"noise_sigma": -1},
    {"rotation_axis": "w"},
    {"interpolation": "cubic"},
    {"rotation_angel": [5]},
])
def test_invalid_settings_are_config_errors(values: dict) -> None:
    with pytest.raises(ConfigError):
        from_mapping(pt.PerturbationSettings, values, section="perturbation")


def test_errors_name_the_rule() -> None:
    image, mask = _ellipsoid()
    with pytest.raises(PairingError) as info:
        sp.rotate(image, mask, 10.0, label=2)
    assert info.value.reason == "empty-mask"
    with pytest.raises(PairingError) as info:
        adapt_volume(mask, -0.99999)
    assert info.value.reason == "empty-mask"
    shifted = sitk.Image(mask)
    shifted.SetOrigin((0.0, 0.0, 0.0))
    with pytest.raises(PairingError) as info:
        sp.translate(image, shifted, 0.25)
    assert info.value.reason == "grid-mismatch"
    with pytest.raises(ConfigError):
        sp.translate(image, mask, 1.0)
