"""radflow.radiomics_adapter: params loading/hashing, versions, logging, features, custom types."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from radiomics import featureextractor, imageoperations

from radflow import radiomics_adapter as ra
from radflow.errors import ConfigError, ExtractionError, FilterError

# Small, fast params: shape + first-order + GLCM on Original.
SMALL = {"setting": {"binWidth": 25, "voxelArrayShift": 1000},
         "imageType": {"Original": {}},
         "featureClass": {"shape": [], "firstorder": [], "glcm": []}}


def _volume(seed: int = 0, shape_zyx: tuple[int, int, int] = (20, 24, 24),
            spacing: tuple[float, float, float] = (0.8, 0.8, 1.5)) -> tuple[sitk.Image, sitk.Image]:
    """CT-like int16 image with a textured ellipsoid (label 1) and a small cube (label 3).

    Returns
    -------
    image, mask
        Image and uint8 mask on the same grid, array shape ``shape_zyx``.
    """
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape_zyx)
    c = [s / 2 for s in shape_zyx]
    ell = ((z - c[0]) / 6) ** 2 + ((y - c[1]) / 8) ** 2 + ((x - c[2]) / 7) ** 2 <= 1
    arr = rng.normal(-600, 80, shape_zyx)
    arr[ell] = rng.normal(40, 60, int(ell.sum()))
    image = sitk.GetImageFromArray(np.round(arr).astype(np.int16))
    image.SetSpacing(spacing)
    image.SetOrigin((-10.0, 20.0, 5.0))
    lab = ell.astype(np.uint8)
    lab[1:4, 1:4, 1:4] = 3
    mask = sitk.GetImageFromArray(lab)
    mask.CopyInformation(image)
    return image, mask


def _as_dict(table: pd.DataFrame) -> dict[str, float]:
    return {f"{t}_{c}_{f}": v for t, c, f, v in
            table[["image_type", "feature_class", "feature", "value"]].itertuples(index=False)}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- load_params ---------------------------------------------------------------------------

def test_default_params_file_is_valid(repo_root: Path) -> None:
    params = ra.load_params(repo_root / "config" / "pyradiomics.yaml")
    assert set(params["imageType"]) == {"Original", "LoG", "Wavelet"}
    assert {"shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"} == set(
        params["featureClass"])
    assert "label" not in params["setting"]


@pytest.mark.parametrize(("text", "key"), [
    ("setting:\n  binWidth: 25\n  binwidht: 5\n", "setting.binwidht"),
    ("setting:\n  binWidth: -1\n", "setting.binWidth"),
    ("setting:\n  padDistance: many\n", "setting.padDistance"),
    ("imageType:\n  LoG:\n    sigma: [1.0, x]\n", "imageType.LoG.sigma.1"),
    ("imageType:\n  Laws: {}\n", "Laws"),
    ("featureClass:\n  glcm: [NoSuchFeature]\n", "NoSuchFeature"),
    ("featureClass:\n  texture: []\n", "texture"),
    ("setting:\n  label: 2\n", "setting.label"),
    ("imageType:\n  LoG: {sigma: [1.0], label: 2}\n", "imageType.LoG.label"),
    ("colour: blue\n", "colour"),
])
def test_invalid_params_name_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path / "bad_params.yaml", text)
    with pytest.raises(ConfigError) as info:
        ra.load_params(path)
    assert "bad_params.yaml" in str(info.value)
    assert key in str(info.value)
    assert info.value.reason == "params"


@pytest.mark.parametrize("text", ["setting: [unclosed\n", "- just\n- a list\n", ""])
def test_unparsable_or_non_mapping_params_are_config_errors(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path / "p.yaml", text)
    with pytest.raises(ConfigError, match=r"p\.yaml"):
        ra.load_params(path)


def test_missing_params_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        ra.load_params(tmp_path / "nope.yaml")


def test_json_params(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.json", json.dumps(SMALL))
    assert ra.load_params(path) == SMALL
    with pytest.raises(ConfigError, match="not valid JSON"):
        ra.load_params(_write(tmp_path / "q.json", "setting: {binWidth: 25}"))


def test_validated_params_are_independent_copies(repo_root: Path) -> None:
    path = repo_root / "config" / "pyradiomics.yaml"
    first = ra.load_params(path)
    first["setting"]["binWidth"] = 1
    first["imageType"].clear()
    second = ra.load_params(path)
    assert second["setting"]["binWidth"] == 25
    assert set(second["imageType"]) == {"Original", "LoG", "Wavelet"}
    with pytest.raises(ConfigError):  # a failure is not cached as a success, nor vice versa
        ra.params_hash({**second, "setting": {"binWidth": 0}})
    assert ra.params_hash(second) == ra.params_hash(ra.load_params(path))


# --- params_hash ---------------------------------------------------------------------------

def test_params_hash_ignores_order_comments_format_and_explicit_defaults(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.yaml", yaml.safe_dump(SMALL, sort_keys=False))
    b = _write(tmp_path / "b.yaml", """# same extraction, written differently
featureClass:
  glcm:          # all features
  firstorder: []
  shape: []
imageType: {Original: {}}
setting:
  voxelArrayShift: 1000
  padDistance: 5          # PyRadiomics' default, written out
  binWidth: 25
""")
    c = _write(tmp_path / "c.json", json.dumps(SMALL, indent=4))
    hashes = {ra.params_hash(ra.load_params(p)) for p in (a, b, c)}
    assert len(hashes) == 1
    assert len(hashes.pop()) == 64


def test_params_hash_changes_with_settings_and_custom_types() -> None:
    base = ra.params_hash(SMALL)
    changed = {**SMALL, "setting": {**SMALL["setting"], "binWidth": 10}}
    assert ra.params_hash(changed) != base
    fewer = {**SMALL, "featureClass": {"shape": [], "firstorder": []}}
    assert ra.params_hash(fewer) != base
    spec = ra.ImageTypeSpec(name="squared", make=lambda im: im)
    with_spec = ra.params_hash(SMALL, [spec])
    assert with_spec != base
    spec_bw = ra.ImageTypeSpec(name="squared", make=lambda im: im, settings={"binWidth": 5})
    assert ra.params_hash(SMALL, [spec_bw]) not in {base, with_spec}


def test_params_hash_rejects_invalid_params() -> None:
    with pytest.raises(ConfigError):
        ra.params_hash({"setting": {"binWidth": "wide"}})


# --- versions, logging ---------------------------------------------------------------------

def test_versions() -> None:
    v = ra.versions()
    assert set(v) == {"radflow_version", "pyradiomics_dist", "pyradiomics_version",
                      "simpleitk_version", "numpy_version"}
    assert v["pyradiomics_dist"] == "pyradiomics-bhklab"
    assert v["pyradiomics_version"] == importlib.metadata.version("pyradiomics-bhklab")
    assert v["simpleitk_version"] == sitk.Version.VersionString()
    assert v["numpy_version"] == np.__version__
    import radflow
    assert v["radflow_version"] == radflow.__version__


_LOGGING_PROBE = """
import io, json, logging
stream = io.StringIO()
logging.basicConfig(stream=stream, level=logging.DEBUG, format="%(name)s|%(message)s")
import radflow.radiomics_adapter
import radiomics
log = logging.getLogger("radiomics.glcm")
log.info("info from pyradiomics")
log.warning("warning from pyradiomics")
rlog = logging.getLogger("radiomics")
print(json.dumps({"records": stream.getvalue().splitlines(), "level": rlog.level,
                  "propagate": rlog.propagate,
                  "handlers": [type(h).__name__ for h in rlog.handlers],
                  "own_handler_attached": radiomics.handler in rlog.handlers}))
"""


def test_radiomics_logging_propagates_once_at_warning() -> None:
    # In a fresh interpreter: the state after importing the adapter, untouched by other tests.
    done = subprocess.run([sys.executable, "-c", _LOGGING_PROBE], capture_output=True,
                          text=True, check=True, timeout=120)
    state = json.loads(done.stdout)
    assert done.stderr == ""  # PyRadiomics' own stderr handler is gone
    assert state["records"] == ["radiomics.glcm|warning from pyradiomics"]  # once, WARNING+
    assert state["level"] == logging.WARNING and state["propagate"]
    assert state["handlers"] == ["NullHandler"] and not state["own_handler_attached"]


# --- compute_features ----------------------------------------------------------------------

# pykwalify (called by PyRadiomics) loads schema functions with the deprecated load_module().
@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
def test_features_equal_plain_pyradiomics_and_names_are_parsed() -> None:
    image, mask = _volume()
    params = {"setting": {"binWidth": 25},
              "imageType": {"Original": {}, "LoG": {"sigma": [1.0, 2.5]}, "Wavelet": {}},
              "featureClass": {"shape": [], "firstorder": [], "glcm": [], "glszm": []}}
    table = ra.compute_features(image, mask, params, label=1)
    assert list(table.columns) == list(ra.FEATURE_COLUMNS)
    assert str(table["value"].dtype) == "float64"
    assert table["image_type"].iloc[0] == "original"
    assert not table["image_type"].str.startswith("diagnostics").any()
    types = set(table["image_type"])
    assert {"original", "log-sigma-1-0-mm-3D", "log-sigma-2-5-mm-3D", "wavelet-LLH",
            "wavelet-HHH"} <= types
    assert len(types) == 11
    assert set(table.loc[table["image_type"] == "wavelet-LLH", "feature_class"]) == {
        "firstorder", "glcm", "glszm"}
    row = table[(table.image_type == "log-sigma-1-0-mm-3D") & (table.feature == "Contrast")]
    assert list(row["feature_class"]) == ["glcm"]

    expected = featureextractor.RadiomicsFeatureExtractor(params).execute(image, mask, label=1)
    expected = {k: float(v) for k, v in expected.items() if not k.startswith("diagnostics")}
    got = _as_dict(table)
    assert got.keys() == expected.keys()
    assert all(got[k] == expected[k] or (np.isnan(got[k]) and np.isnan(expected[k]))
               for k in got)


def test_label_selects_roi() -> None:
    image, mask = _volume()
    one = ra.compute_features(image, mask, SMALL, label=1)
    three = ra.compute_features(image, mask, SMALL, label=3)
    vol = {lab: t.loc[t.feature == "VoxelVolume", "value"].item() for lab, t in
           ((1, one), (3, three))}
    assert vol[3] == pytest.approx(27 * 0.8 * 0.8 * 1.5)
    assert vol[1] > 10 * vol[3]


@pytest.mark.parametrize(("edit", "label", "reason"), [
    (None, 2, "label-absent"),
    ("empty", 1, "empty-mask"),
    ("one-voxel", 1, "roi-too-small"),
    ("shift", 1, "geometry-mismatch"),
])
def test_extraction_failures_have_reasons(edit: str | None, label: int, reason: str) -> None:
    image, mask = _volume()
    arr = sitk.GetArrayFromImage(mask)
    if edit == "empty":
        arr[:] = 0
    elif edit == "one-voxel":
        arr[:] = 0
        arr[5, 5, 5] = 1
    new = sitk.GetImageFromArray(arr)
    new.CopyInformation(mask)
    if edit == "shift":
        new.SetOrigin((0.0, 0.0, 0.0))
    with pytest.raises(ExtractionError) as info:
        ra.compute_features(image, new, SMALL, label=label)
    assert info.value.reason == reason
    assert f"label {label}" in str(info.value)


@pytest.mark.parametrize("label", [0, -1, True, 1.0])
def test_invalid_label(label: object) -> None:
    image, mask = _volume()
    with pytest.raises(ExtractionError) as info:
        ra.compute_features(image, mask, SMALL, label=label)  # type: ignore[arg-type]
    assert info.value.reason == "invalid-label"


def test_deterministic() -> None:
    image, mask = _volume(seed=3)
    params = {"setting": {**SMALL["setting"], "resampledPixelSpacing": [1, 1, 1],
                          "interpolator": "sitkBSpline"},
              "imageType": {"Original": {}, "LoG": {"sigma": [1.5]}, "Wavelet": {}},
              "featureClass": {"firstorder": [], "glcm": [], "glrlm": [], "gldm": []}}
    first = ra.compute_features(image, mask, params, label=1)
    reordered = {"featureClass": dict(reversed(params["featureClass"].items())),
                 "imageType": dict(reversed(params["imageType"].items())),
                 "setting": params["setting"]}
    second = ra.compute_features(image, mask, reordered, label=1)
    assert len(first) > 200
    pd.testing.assert_frame_equal(first, second, check_exact=True)


# --- custom image types --------------------------------------------------------------------

def _squared(image: sitk.Image) -> sitk.Image:
    f = sitk.Cast(image, sitk.sitkFloat64)
    return f * f


@pytest.mark.parametrize("spec_settings", [{}, {"binWidth": 5000.0}])
def test_custom_image_type_equals_pyradiomics_on_prefiltered_image(spec_settings: dict) -> None:
    image, mask = _volume(seed=1)
    params = {"setting": {"binWidth": 2000.0},
              "featureClass": {"shape": [], "firstorder": [], "glcm": [], "glrlm": [],
                               "ngtdm": []}}
    spec = ra.ImageTypeSpec(name="squared", make=_squared, settings=spec_settings)
    table = ra.compute_features(image, mask, params, label=1, extra_image_types=[spec])
    assert set(table["image_type"]) == {"original", "squared"}
    custom = table[table["image_type"] == "squared"]
    # Shape is computed once, on the original image only (as for LoG/Wavelet).
    assert set(custom["feature_class"]) == {"firstorder", "glcm", "glrlm", "ngtdm"}

    reference_params = {**params, "setting": {**params["setting"], **spec_settings}}
    reference = ra.compute_features(_squared(image), mask, reference_params, label=1)
    ref = reference[reference["feature_class"] != "shape"].reset_index(drop=True)
    got = custom.reset_index(drop=True)
    assert list(got["feature"]) == list(ref["feature"])
    np.testing.assert_array_equal(got["value"].to_numpy(), ref["value"].to_numpy())
    # The settings of the spec apply to the custom image only.
    orig = table[(table.image_type == "original") & (table.feature_class == "firstorder")]
    orig_ref = ra.compute_features(image, mask, params, label=1)
    orig_ref = orig_ref[orig_ref.feature_class == "firstorder"]
    np.testing.assert_array_equal(orig["value"].to_numpy(), orig_ref["value"].to_numpy())


def test_custom_image_type_sees_preprocessed_image() -> None:
    image, mask = _volume(seed=2)
    seen: list[tuple[float, ...]] = []

    def spy(im: sitk.Image) -> sitk.Image:
        seen.append(im.GetSpacing())
        return sitk.Cast(im, sitk.sitkFloat32)

    params = {"setting": {"resampledPixelSpacing": [1, 1, 1], "interpolator": "sitkBSpline"},
              "featureClass": {"firstorder": []}}
    table = ra.compute_features(image, mask, params, label=1,
                                extra_image_types=[ra.ImageTypeSpec("spy", spy)])
    assert seen == [(1.0, 1.0, 1.0)]
    assert (table["image_type"] == "spy").sum() == (table["image_type"] == "original").sum()


def test_registration_is_removed_after_use() -> None:
    image, mask = _volume()
    before = {a for a in dir(imageoperations) if a.startswith("get")}
    ra.compute_features(image, mask, SMALL, label=1,
                        extra_image_types=[ra.ImageTypeSpec("squared", _squared)])
    with pytest.raises(ExtractionError):
        ra.compute_features(image, mask, SMALL, label=9,
                            extra_image_types=[ra.ImageTypeSpec("squared", _squared)])
    assert {a for a in dir(imageoperations) if a.startswith("get")} == before


@pytest.mark.parametrize("name", ["has_underscore", "", "original", "log-sigma-1-0-mm-3D",
                                  "wavelet-LLH", "square", "a b"])
def test_invalid_custom_names(name: str) -> None:
    with pytest.raises(ConfigError):
        ra.ImageTypeSpec(name=name, make=_squared)


def test_invalid_custom_settings_and_duplicates() -> None:
    with pytest.raises(ConfigError, match="binWidth"):
        ra.ImageTypeSpec(name="sq", make=_squared, settings={"binWidth": -3})
    with pytest.raises(ConfigError, match="label"):
        ra.ImageTypeSpec(name="sq", make=_squared, settings={"label": 2})
    image, mask = _volume()
    specs = [ra.ImageTypeSpec("sq", _squared), ra.ImageTypeSpec("sq", _squared)]
    with pytest.raises(ConfigError, match="twice"):
        ra.compute_features(image, mask, SMALL, label=1, extra_image_types=specs)


def _cropped(image: sitk.Image) -> sitk.Image:
    return image[1:, :, :]


def _boom(image: sitk.Image) -> sitk.Image:
    raise MemoryError("too big")


def _filter_error(image: sitk.Image) -> sitk.Image:
    raise FilterError("kernel larger than image", reason="image-too-small")


@pytest.mark.parametrize(("make", "reason"), [
    (_cropped, "filter-geometry"),
    (lambda im: sitk.GetArrayFromImage(im), "filter-geometry"),
    (_boom, "filter-failed"),
    (_filter_error, "image-too-small"),
])
def test_custom_filter_failures(make, reason: str) -> None:
    image, mask = _volume()
    with pytest.raises(ExtractionError) as info:
        ra.compute_features(image, mask, SMALL, label=1,
                            extra_image_types=[ra.ImageTypeSpec("bad", make)])
    assert info.value.reason == reason
    assert "label 1" in str(info.value) and "bad" in str(info.value)


def test_versions_distribution_fast_path_equals_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The known-name fast path names the same distribution as scanning every installed one."""
    from radflow.radiomics_adapter import params as rp

    fast = rp._radiomics_distribution()
    monkeypatch.setattr(rp, "_KNOWN_DISTRIBUTIONS", ("no-such-distribution",))
    assert rp._radiomics_distribution() == fast == "pyradiomics-bhklab"

