"""Issue 14: PyRadiomics parameters per modality (extract.params as a mapping), the exclusion of
images without a parameter set, the config refusal and QC warnings of unsuitable sets, the
parameter set and normalisation named on every row, radflow's z-scores over the ROI and a body
mask, and radflow's filter image types following the set's discretisation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from radflow import extract
from radflow import plan as rw
from radflow import radiomics_adapter as ra
from radflow.config_check import check_config
from radflow.crawl import crawl
from radflow.dicom.reasons import QC_WARNINGS, REASONS, is_known_status
from radflow.errors import ConfigError
from radflow.extract.normalise import body_mask
from radflow.io.nifti import read_image, voxel_hash, write_nifti
from radflow.params_sets import (
    FIXED_BIN_WIDTH_ON_MR,
    HU_RESEGMENTATION_ON_NON_CT,
    NO_PARAMS,
    ParamsChoice,
    params_sets,
)
from radflow.settings import CrawlSettings, ExtractSettings, from_mapping

REPO = Path(__file__).resolve().parents[1]
KEY = b"0123456789abcdef0123456789abcdef"

#: Small sets: no resampling, so that first-order values are the ROI's voxels themselves.
FEATURES = {"firstorder": [], "glcm": ["JointEntropy", "Contrast"]}
FBN = {"setting": {"binCount": 16, "resampledPixelSpacing": None}, "imageType": {"Original": {}},
       "featureClass": FEATURES}
FBW = {"setting": {"binWidth": 25, "resampledPixelSpacing": None},
       "imageType": {"Original": {}}, "featureClass": FEATURES}
HU = {"setting": {"binWidth": 25, "resegmentRange": [-1000, 400], "resampledPixelSpacing": None},
      "imageType": {"Original": {}}, "featureClass": FEATURES}


def _write(folder: Path, name: str, params: dict[str, Any]) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return path


def _sets(folder: Path, params: Any, normalisation: dict[str, str] | None = None, **kw: Any):
    return params_sets(from_mapping(ExtractSettings, {"params": params,
                                                      "normalisation": normalisation or {}},
                                    section="extract"), folder, **kw)


# --- choosing the set -------------------------------------------------------------------------

def test_mapping_chooses_the_modality_file_then_the_default(tmp_path: Path) -> None:
    for name, params in (("ct.yaml", HU), ("mr.yaml", FBN), ("other.yaml", FBN)):
        _write(tmp_path, name, params)
    sets = _sets(tmp_path, {"CT": "ct.yaml", "MR": "mr.yaml", "PT": "", "default": "other.yaml"})
    assert [sets.choose(m).name for m in ("CT", "MR", "PT", "NM", "other", "")] == [
        "CT:ct.yaml", "MR:mr.yaml", "default:other.yaml", "default:other.yaml",
        "default:other.yaml", "default:other.yaml"]
    assert sets.path("MR") == str(tmp_path / "mr.yaml")
    assert sets.path("PT") == str(tmp_path / "other.yaml")
    without_default = _sets(tmp_path, {"CT": "ct.yaml"})
    assert without_default.choose("MR") == ParamsChoice(modality="MR")
    assert without_default.path("MR") == "" and without_default.choose("MR").name == ""
    single = _sets(tmp_path, str(tmp_path / "mr.yaml"))  # absolute: only its name is shown
    assert {single.choose(m).name for m in ("CT", "MR", "")} == {"all:mr.yaml"}


def test_shipped_defaults_are_one_file_per_modality() -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["dicom_root"] = str(REPO)
    sets = rw.resolve_paths(config, REPO).pyradiomics_params
    names = {m: sets.choose(m) for m in ("CT", "MR", "PT", "US", "")}
    assert {m: c.name for m, c in names.items()} == {
        "CT": "CT:config/params/ct.yaml", "MR": "MR:config/params/mr.yaml",
        "PT": "PT:config/params/pt.yaml", "US": "default:config/params/default.yaml",
        "": "default:config/params/default.yaml"}
    assert {m: c.normalisation for m, c in names.items()} == {
        "CT": "none", "MR": "zscore-image", "PT": "none", "US": "none", "": "none"}
    summaries = sets.summaries
    assert summaries["CT"].fixed_bin_width and summaries["CT"].hu_resegmentation
    assert not summaries["MR"].fixed_bin_width and summaries["MR"].normalize
    assert summaries["PT"].fixed_bin_width and summaries["PT"].resegment_range == (0.0,)
    assert not summaries["PT"].hu_resegmentation
    assert not summaries["default"].fixed_bin_width and summaries["default"].resegment_range is None
    for name in ("ct", "mr", "pt", "default"):  # native files PyRadiomics' own schema accepts
        ra.load_params(REPO / "config" / "params" / f"{name}.yaml")


def test_the_plan_gives_each_unit_the_file_of_its_modality(tmp_path: Path) -> None:
    pd.DataFrame([{"case_id": "c1", "series_key": k, "source": "dicom", "role": r,
                   "status": "ok", "modality": m}
                  for k, r, m in (("sCT", "image", "CT"), ("sMR", "image", "MR"),
                                  ("sM1", "mask", "SEG"), ("sM2", "mask", ""))]
                 ).to_csv(tmp_path / "series.tsv", sep="\t", index=False)
    pd.DataFrame([{"pair_id": p, "case_id": "c1", "image_key": i, "mask_key": m,
                   "status": "ok", "image_status": "ok", "mask_status": "ok"}
                  for p, i, m in (("p1", "sCT", "sM1"), ("p2", "sMR", "sM2"),
                                  ("p3", "", "sM2"))]
                 ).to_csv(tmp_path / "pair_plan.tsv", sep="\t", index=False)
    plan = rw.read_plan(str(tmp_path / "series.tsv"), str(tmp_path / "pair_plan.tsv"), "paired")
    assert dict(plan.modalities) == {"sCT": "CT", "sMR": "MR"}
    _write(tmp_path, "ct.yaml", HU)
    sets = _sets(tmp_path, {"CT": "ct.yaml"})
    assert rw.extract_params(plan, sets, "sCT") == str(tmp_path / "ct.yaml")
    assert rw.extract_params(plan, sets, "sMR") == []  # no MR file, no default
    assert rw.unit_params_set(plan, sets, "sCT") == {
        "modality": "CT", "key": "CT", "file": "ct.yaml", "normalisation": "none"}
    assert rw.unit_params_set(plan, sets, "sMR")["key"] == ""
    assert rw.unit_params_set(plan, sets, "p3") == {  # a pair without an image: unknown
        "modality": "", "key": "", "file": "", "normalisation": "none"}


def test_sheet_modality_column_fills_the_series_modality(tmp_path: Path) -> None:
    arr = np.zeros((4, 6, 5), np.int16)
    arr[1:3, 2:4, 1:3] = 1
    for name in ("a", "b", "m"):
        write_nifti(tmp_path / f"{name}.nii.gz", sitk.GetImageFromArray(arr))
    rows = [{"subject": "S1", "image": "a.nii.gz", "mask": "m.nii.gz", "modality": "MR"},
            {"subject": "S2", "image": "b.nii.gz", "mask": "m.nii.gz", "modality": ""}]
    pd.DataFrame(rows).to_csv(tmp_path / "sheet.tsv", sep="\t", index=False)
    series = crawl(None, tmp_path / "sheet.tsv", KEY, CrawlSettings()).series
    images = series[series["role"] == "image"].sort_values("case_id")
    assert sorted(images["modality"]) == ["", "MR"]
    assert set(series.loc[series["role"] == "mask", "modality"]) == {""}
    rows[0]["modality"] = "mr"  # the closed set is upper case
    pd.DataFrame(rows).to_csv(tmp_path / "sheet.tsv", sep="\t", index=False)
    with pytest.raises(ConfigError, match="row 1, column modality"):
        crawl(None, tmp_path / "sheet.tsv", KEY, CrawlSettings())


# --- refused at config validation ------------------------------------------------------------

@pytest.mark.parametrize(("params", "normalisation", "message"), [
    ({"MR": "fbw.yaml"}, {}, r"extract\.params\.MR \(fbw\.yaml\): a fixed bin width"),
    ({"MR": "hu_fbn.yaml"}, {}, r"extract\.params\.MR \(hu_fbn\.yaml\): an absolute "
                                r"setting\.resegmentRange"),
    ({"PT": "hu.yaml"}, {}, r"extract\.params\.PT \(hu\.yaml\): an absolute"),
    ({"MR": "norm.yaml"}, {"MR": "zscore-roi"},
     r"extract\.normalisation\.MR is zscore-roi, but extract\.params\.MR \(norm\.yaml\) sets "
     r"normalize: true"),
    ({"default": "norm.yaml"}, {"MR": "none"},
     r"extract\.normalisation\.MR is none, but extract\.params\.default"),
    ("norm.yaml", {"CT": "zscore-body"}, r"extract\.normalisation\.CT is zscore-body, but "
                                         r"extract\.params \(norm\.yaml\)"),
    ({"MR": "absent.yaml"}, {}, r"extract\.params\.MR: .*absent\.yaml does not exist"),
])
def test_unsuitable_sets_are_refused(tmp_path: Path, params: Any, normalisation: dict,
                                     message: str) -> None:
    _write(tmp_path, "fbw.yaml", FBW)
    _write(tmp_path, "hu.yaml", HU)
    _write(tmp_path, "hu_fbn.yaml", {**HU, "setting": {**HU["setting"], "binCount": 16}})
    _write(tmp_path, "norm.yaml", {**FBN, "setting": {**FBN["setting"], "normalize": True}})
    with pytest.raises(ConfigError, match=message):
        _sets(tmp_path, params, normalisation)


@pytest.mark.parametrize(("params", "normalisation"), [
    ({"MR": "fbw.yaml"}, {"MR": "zscore-roi"}),        # a fixed bin width on normalised MR
    ({"MR": "fbw.yaml"}, {"MR": "zscore-image"}),
    ({"PT": "suv.yaml"}, {}),                          # SUV >= 0 is no HU range
    ({"CT": "hu.yaml", "default": "fbw.yaml"}, {}),    # the default reaching MR: QC, not refused
    ({"default": "hu.yaml"}, {}),                      # the default may reach CT images too
    ("hu.yaml", {}),                                   # a single file: QC, not refused
    ({"MR": "norm.yaml"}, {"MR": "zscore-image"}),
])
def test_suitable_sets_pass(tmp_path: Path, params: Any, normalisation: dict) -> None:
    _write(tmp_path, "fbw.yaml", FBW)
    _write(tmp_path, "hu.yaml", HU)
    _write(tmp_path, "suv.yaml", {**FBW, "setting": {"binWidth": 0.25, "resegmentRange": [0]}})
    _write(tmp_path, "norm.yaml", {**FBW, "setting": {**FBW["setting"], "normalize": True}})
    _sets(tmp_path, params, normalisation)


def test_suv_bins_are_refused_when_pet_is_not_in_suv(tmp_path: Path) -> None:
    _write(tmp_path, "suv.yaml", {**FBW, "setting": {"binWidth": 0.25, "resegmentRange": [0]}})
    _sets(tmp_path, {"PT": "suv.yaml"})
    with pytest.raises(ConfigError, match=r"extract\.params\.PT \(suv\.yaml\).*pet_units is "
                                          r"stored"):
        _sets(tmp_path, {"PT": "suv.yaml"}, pet_in_suv=False)


def test_the_schema_takes_a_path_or_a_mapping_of_modality_keys() -> None:
    schema = REPO / "config" / "schema" / "config.schema.yaml"
    for value in ("config/pyradiomics.yaml", {"MR": "x.yaml"}, {"default": ""}):
        config: dict[str, Any] = {"extract": {"params": value}}
        check_config(config, schema)
        assert config["extract"]["normalisation"] == {}
    with pytest.raises(ConfigError, match=r"unknown key 'extract\.params\.Mr' \(did you mean "
                                          r"'extract\.params\.MR'\?\)"):
        check_config({"extract": {"params": {"Mr": "x.yaml"}}}, schema)
    with pytest.raises(ConfigError, match=r"extract\.normalisation\.MR' must be one of none, "
                                          r"zscore-image, zscore-body, zscore-roi, got 'zscore'"):
        check_config({"extract": {"normalisation": {"MR": "zscore"}}}, schema)
    with pytest.raises(ConfigError, match=r"extract\.normalisation: unknown key 'mr'"):
        from_mapping(ExtractSettings, {"params": "p.yaml", "normalisation": {"mr": "none"}})


def test_the_vocabulary_has_the_reason_and_the_warnings() -> None:
    assert REASONS[NO_PARAMS][0] == "excluded"
    assert is_known_status(f"excluded:{NO_PARAMS}") and not is_known_status(f"failed:{NO_PARAMS}")
    assert {FIXED_BIN_WIDTH_ON_MR, HU_RESEGMENTATION_ON_NON_CT} <= set(QC_WARNINGS)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for text in (f"`excluded:{NO_PARAMS}`", f"`{FIXED_BIN_WIDTH_ON_MR}`",
                 f"`{HU_RESEGMENTATION_ON_NON_CT}`", "## Modality defaults", "`params_set`",
                 "`normalisation`"):
        assert text in readme, text


# --- extraction: exclusion, QC, provenance ----------------------------------------------------

def _images(seed: int = 0, offset: float = -500.0) -> tuple[sitk.Image, sitk.Image]:
    """A float image (z, y, x = 12, 16, 16) and a mask with ROI label 1 (6 x 8 x 8 voxels)."""
    rng = np.random.default_rng(seed)
    arr = rng.normal(offset, 100, (12, 16, 16))
    lab = np.zeros(arr.shape, np.uint8)
    lab[3:9, 4:12, 4:12] = 1
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((0.8, 0.8, 1.5))
    mask = sitk.GetImageFromArray(lab)
    mask.CopyInformation(image)
    return image, mask


def _pair(folder: Path, image: sitk.Image, mask: sitk.Image, **extra: Any) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    write_nifti(folder / "img.nii.gz", image)
    write_nifti(folder / "mask.nii.gz", mask)
    return {"pair_id": "p1", "case_id": "c1", "image_key": "s1", "mask_key": "s2", "roi": "GTV",
            "label": 1, "status": "ok", "image": str(folder / "img.nii.gz"),
            "mask": str(folder / "mask.nii.gz"),
            "image_hash": voxel_hash(read_image(folder / "img.nii.gz")),
            "mask_hash": voxel_hash(read_image(folder / "mask.nii.gz")), **extra}


@pytest.fixture
def pair(tmp_path: Path) -> dict[str, Any]:
    return _pair(tmp_path / "pair", *_images())


def test_no_params_for_the_modality_excludes_each_pair(pair: dict[str, Any],
                                                       tmp_path: Path) -> None:
    pairs = [pair, {**pair, "pair_id": "p2", "status": "failed:empty-mask"}]
    paths = []
    for one in pairs:
        paths.append(tmp_path / f"{one['pair_id']}.json")
        paths[-1].write_text(json.dumps(one), encoding="utf-8")
    extract.run_extract(paths, None, tmp_path / "u.parquet", tmp_path / "u.json", unit="s1",
                        choice=ParamsChoice(modality="MR"))
    assert pd.read_parquet(tmp_path / "u.parquet").empty
    statuses = json.loads((tmp_path / "u.json").read_text(encoding="utf-8"))["pairs"]
    assert [s["status"] for s in statuses] == ["excluded:no-params-for-modality",
                                               "skipped:failed:empty-mask"]
    assert statuses[0]["reason"] == NO_PARAMS
    assert statuses[0]["message"] == ("modality MR: no parameter set (extract.params.MR and "
                                      "extract.params.default empty)")
    assert all(is_known_status(s["status"]) or s["status"].startswith("skipped:")
               for s in statuses)


@pytest.mark.parametrize(("modality", "params", "normalisation", "qc"), [
    ("MR", FBW, "none", FIXED_BIN_WIDTH_ON_MR),
    ("MR", FBW, "zscore-roi", ""),                     # normalised: a bin width is fine
    ("MR", FBN, "none", ""),
    ("PT", HU, "none", HU_RESEGMENTATION_ON_NON_CT),
    ("MR", HU, "none", f"{FIXED_BIN_WIDTH_ON_MR},{HU_RESEGMENTATION_ON_NON_CT}"),
    ("CT", HU, "none", ""),
    ("", HU, "none", ""),                              # unknown modality: nothing to say
])
def test_a_single_file_on_the_wrong_modality_is_used_with_a_qc_warning(
        pair: dict[str, Any], tmp_path: Path, modality: str, params: dict, normalisation: str,
        qc: str) -> None:
    path = _write(tmp_path, "single.yaml", params)
    choice = ParamsChoice(modality=modality, key="all", file="single.yaml",
                          normalisation=normalisation)  # type: ignore[arg-type]
    table, status = extract.extract_pair(pair, path, choice=choice)
    assert status["status"] == "ok", status
    assert set(table["qc"]) == {qc} and status["qc"] == (qc or None)
    assert set(table["params_set"]) == {"all:single.yaml"}
    assert set(table["normalisation"]) == {normalisation}


def test_rows_name_the_set_and_hash_what_was_used(pair: dict[str, Any], tmp_path: Path) -> None:
    path = _write(tmp_path, "mr.yaml", FBN)
    results = {}
    for method in ("none", "zscore-image", "zscore-roi", "zscore-body"):
        choice = ParamsChoice(modality="MR", key="MR", file="config/params/mr.yaml",
                              normalisation=method)  # type: ignore[arg-type]
        table, status = extract.extract_pair(pair, path, choice=choice)
        assert status["status"] == "ok", status
        assert set(table["params_set"]) == {"MR:config/params/mr.yaml"}
        assert set(table["normalisation"]) == {method}
        (results[method],) = set(table["params_hash"])
    assert results["none"] == ra.params_hash(FBN)
    normalised = {**FBN, "setting": {**FBN["setting"], "normalize": True}}
    assert results["zscore-image"] == ra.params_hash(normalised)
    assert len(set(results.values())) == 4
    # the file's own normalize is zscore-image when no setting says otherwise
    (tmp_path / "n").mkdir()
    own = _write(tmp_path / "n", "own.yaml", normalised)
    table, _ = extract.extract_pair(pair, own)
    assert set(table["normalisation"]) == {"zscore-image"}
    assert set(table["params_set"]) == {"all:own.yaml"}
    assert set(table["params_hash"]) == {results["zscore-image"]}
    with pytest.raises(ConfigError, match="sets normalize: true"):
        extract.extract_pair(pair, own, choice=ParamsChoice(modality="MR", key="MR",
                                                            file="own.yaml",
                                                            normalisation="zscore-roi"))


# --- radflow's z-scores against numpy ---------------------------------------------------------

def _firstorder(table: pd.DataFrame) -> dict[str, float]:
    rows = table[(table["image_type"] == "original") & (table["feature_class"] == "firstorder")]
    return dict(zip(rows["feature"], rows["value"], strict=True))


def _expected(values: np.ndarray, mu: float, sigma: float, scale: float,
              outliers: float | None) -> dict[str, float]:
    z = (values - mu) / sigma
    if outliers is not None:
        z = np.clip(z, -outliers, outliers)
    z = z * scale
    return {"Mean": z.mean(), "Minimum": z.min(), "Maximum": z.max(), "Median": np.median(z),
            "Variance": z.var(), "10Percentile": np.percentile(z, 10)}


@pytest.mark.parametrize(("scale", "outliers"), [(1.0, None), (100.0, 1.5)])
def test_zscore_roi_equals_numpy(tmp_path: Path, scale: float, outliers: float | None) -> None:
    image, mask = _images(seed=3, offset=400.0)
    pair = _pair(tmp_path / "pair", image, mask)
    setting = {**FBN["setting"], "normalizeScale": scale}
    if outliers is not None:
        setting["removeOutliers"] = outliers
    path = _write(tmp_path, "mr.yaml", {**FBN, "setting": setting})
    table, status = extract.extract_pair(pair, path, choice=ParamsChoice(
        modality="MR", key="MR", file="mr.yaml", normalisation="zscore-roi"))
    assert status["status"] == "ok", status
    arr = sitk.GetArrayFromImage(image)
    roi = arr[sitk.GetArrayFromImage(mask) == 1]
    expected = _expected(roi, roi.mean(), roi.std(ddof=1), scale, outliers)
    got = _firstorder(table)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
    if outliers is None:  # the ROI's own z-score: mean 0, sample variance 1
        assert got["Mean"] == pytest.approx(0, abs=1e-9)
        assert got["Variance"] * roi.size / (roi.size - 1) == pytest.approx(1.0, rel=1e-9)


def _body_phantom() -> tuple[sitk.Image, sitk.Image, np.ndarray]:
    """Dark noisy background, a bright ellipsoidal body with a dark enclosed cavity, a bright
    speck outside the body, and an ROI inside the body."""
    rng = np.random.default_rng(7)
    z, y, x = np.mgrid[:20, :32, :32]
    body = ((z - 10) / 8.5) ** 2 + ((y - 16) / 13.5) ** 2 + ((x - 16) / 12.5) ** 2 <= 1
    cavity = ((z - 10) / 2.5) ** 2 + ((y - 16) / 3.5) ** 2 + ((x - 20) / 2.5) ** 2 <= 1
    arr = rng.uniform(0, 5, body.shape)
    arr[body] = rng.uniform(150, 350, int(body.sum()))
    arr[cavity] = rng.uniform(0, 5, int(cavity.sum()))  # fluid / air inside: still the body
    arr[1:3, 1:3, 1:3] = 300                              # a bright speck outside the body
    lab = np.zeros(body.shape, np.uint8)
    lab[7:13, 10:16, 9:15] = 1
    assert not (lab.astype(bool) & (cavity | ~body)).any()
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((1.0, 1.0, 2.0))
    mask = sitk.GetImageFromArray(lab)
    mask.CopyInformation(image)
    return image, mask, body


def test_body_mask_is_the_largest_component_with_its_holes(tmp_path: Path) -> None:
    image, _, body = _body_phantom()
    assert np.array_equal(body_mask(image), body)


def test_zscore_body_equals_numpy(tmp_path: Path) -> None:
    image, mask, body = _body_phantom()
    pair = _pair(tmp_path / "pair", image, mask)
    path = _write(tmp_path, "mr.yaml", {**FBN, "setting": {**FBN["setting"],
                                                           "normalizeScale": 10.0}})
    table, status = extract.extract_pair(pair, path, choice=ParamsChoice(
        modality="MR", key="MR", file="mr.yaml", normalisation="zscore-body"))
    assert status["status"] == "ok", status
    arr = sitk.GetArrayFromImage(image)
    roi = arr[sitk.GetArrayFromImage(mask) == 1]
    expected = _expected(roi, arr[body].mean(), arr[body].std(ddof=1), 10.0, None)
    got = _firstorder(table)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
    # not the whole image (zscore-image) and not the ROI (zscore-roi)
    whole = _expected(roi, arr.mean(), arr.std(ddof=1), 10.0, None)
    assert got["Mean"] != pytest.approx(whole["Mean"], rel=1e-3)
    assert got["Mean"] != pytest.approx(0, abs=1e-3)


def test_zscore_of_a_constant_roi_fails_the_pair(tmp_path: Path) -> None:
    image, mask = _images()
    arr = sitk.GetArrayFromImage(image)
    arr[sitk.GetArrayFromImage(mask) == 1] = 7.0
    flat = sitk.GetImageFromArray(arr)
    flat.CopyInformation(image)
    pair = _pair(tmp_path / "pair", flat, mask)
    path = _write(tmp_path, "mr.yaml", FBN)
    table, status = extract.extract_pair(pair, path, choice=ParamsChoice(
        modality="MR", key="MR", file="mr.yaml", normalisation="zscore-roi"))
    assert status["status"] == "failed:normalisation-zero-sd" and table.empty


# --- filter image types follow the set's discretisation ---------------------------------------

def test_laws_features_follow_the_modality_bin_count(pair: dict[str, Any], tmp_path: Path) -> None:
    """The same image through the MR set (binCount 8) and the CT set (binCount 64): the Laws
    texture values change with the bin count, the Laws mean (not discretised) does not."""
    laws = extract.image_types([{"filter": "laws", "kernel": "L5E5E5", "energy_delta": 2}])
    tables = {}
    for key, count in (("MR", 8), ("CT", 64)):
        path = _write(tmp_path, f"{key}.yaml", {**FBN, "setting": {**FBN["setting"],
                                                                   "binCount": count}})
        table, status = extract.extract_pair(pair, path, extra_image_types=laws, choice=(
            ParamsChoice(modality=key, key=key, file=f"{key}.yaml")))
        assert status["status"] == "ok", status
        rows = table[table["image_type"] == laws[0].name]
        tables[key] = dict(zip(rows["feature_class"] + "_" + rows["feature"], rows["value"],
                               strict=True))
    mr, ct = tables["MR"], tables["CT"]
    assert mr["firstorder_Mean"] == ct["firstorder_Mean"]
    assert mr["firstorder_Maximum"] == ct["firstorder_Maximum"]
    for name in ("glcm_JointEntropy", "glcm_Contrast", "firstorder_Entropy"):
        assert mr[name] != pytest.approx(ct[name], rel=1e-6), name
    # the bin count reaches the Laws image: 8 bins give at most log2(8) = 3 bits of entropy
    assert mr["firstorder_Entropy"] <= 3 + 1e-9 < ct["firstorder_Entropy"]


# --- the workflow: the rule gets the modality's file, or none ---------------------------------

@pytest.mark.slow
def test_workflow_uses_the_file_of_each_modality_and_excludes_the_rest(tmp_path: Path) -> None:
    """A sheet cohort of a CT, an MR and an unknown-modality NIfTI image, files for CT and MR
    only: each image gets its modality's file, the unknown one (no default) is excluded; the
    rows and the dataset name the set. A single file instead flags the MR image (QC)."""
    from workflow_helpers import snakemake

    images = tmp_path / "images"
    rows = []
    for i, modality in enumerate(("CT", "MR", "")):
        image, mask = _images(seed=i)
        _pair(images / f"s{i}", image, mask)
        rows.append({"subject": f"S{i}", "image": f"s{i}/img.nii.gz",
                     "mask": f"s{i}/mask.nii.gz", "modality": modality})
    pd.DataFrame(rows).to_csv(images / "sheet.tsv", sep="\t", index=False)
    ct = _write(tmp_path, "ct.yaml", FBW)
    mr = _write(tmp_path, "mr.yaml", FBN)
    config = {"cohort": "mod", "sheet": str(images / "sheet.tsv"),
              "key_file": str(tmp_path / "key"),
              "extract": {"params": {"CT": str(ct), "MR": str(mr), "PT": "", "default": ""},
                          "image_types": [],
                          # PyRadiomics' parameter sets only: the hashes below are theirs alone
                          # (radflow's own families: tests/test_families.py)
                          "families": {f: {"enabled": False}
                                       for f in ("semantic", "fractal", "minkowski")}}}
    (tmp_path / "cohort.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    snakemake(tmp_path, ["--cores", "2", "--configfile", str(tmp_path / "cohort.yaml")])
    res = tmp_path / "results" / "mod"
    statuses = [p for f in sorted((res / "extract").rglob("*.json"))
                if not f.name.endswith(".side.json")  # the families' side records
                for p in json.loads(f.read_text(encoding="utf-8"))["pairs"]]
    assert sorted(s["status"] for s in statuses) == ["excluded:no-params-for-modality", "ok",
                                                     "ok"]
    summary = pd.read_csv(res / "qc" / "run_summary.tsv", sep="\t")
    assert ("extract", "excluded:no-params-for-modality", 1) in set(
        summary.itertuples(index=False, name=None))
    wide = pd.read_csv(res / "merge" / "features_wide.csv", keep_default_na=False)
    assert sorted(wide["params_set"]) == ["CT:ct.yaml", "MR:mr.yaml"]
    assert set(wide["normalisation"]) == {"none"} and set(wide["qc"]) == {""}
    assert wide.columns.get_loc("params_set") == wide.columns.get_loc("params_hash") + 1
    long = pd.read_parquet(res / "merge" / "features.parquet")
    hashes = long.groupby("params_set")["params_hash"].unique().to_dict()
    assert {k: list(v) for k, v in hashes.items()} == {
        "CT:ct.yaml": [ra.params_hash(FBW)], "MR:mr.yaml": [ra.params_hash(FBN)]}
    # one file for every modality: every image is extracted, the MR one with the QC warning
    config["extract"]["params"] = str(ct)
    (tmp_path / "cohort.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    snakemake(tmp_path, ["--cores", "2", "--configfile", str(tmp_path / "cohort.yaml")])
    wide = pd.read_csv(res / "merge" / "features_wide.csv", keep_default_na=False)
    assert set(wide["params_set"]) == {"all:ct.yaml"} and len(wide) == 3
    assert sorted(wide["qc"]) == ["", "", FIXED_BIN_WIDTH_ON_MR]
