"""Issue 15 in the extract stage: radflow's own feature families (semantic, fractal, Minkowski)
as rows of the feature table, their settings in the params hash, their side records gathered by
the merge stage."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from radflow import extract
from radflow import radiomics_adapter as ra
from radflow.errors import ConfigError, PairingError
from radflow.extract import families as fam
from radflow.extract.families import feature_families
from radflow.features.fractal import FractalSettings, fractal_features
from radflow.features.minkowski import MinkowskiSettings, minkowski_features
from radflow.features.semantic import SemanticSettings, semantic_features
from radflow.ibsi import ibsi_code
from radflow.io.nifti import read_image, voxel_hash, write_nifti
from radflow.merge import ClinicalInput, MergeOutputs, run_merge
from radflow.merge.side_tables import CURVE_COLUMNS, LANDMARK_COLUMNS, side_tables
from radflow.params_sets import ParamsChoice
from radflow.records.side import read_extract_side
from radflow.settings import ExtractSettings, MergeSettings, from_mapping

PARAMS = {"setting": {"binWidth": 25}, "imageType": {"Original": {}},
          "featureClass": {"shape": [], "firstorder": []}}
ALL_ON = feature_families(None)
SEMANTIC = ("recist", "size", "density")


def _images(box: tuple[slice, ...] = (slice(6, 26), slice(10, 36), slice(12, 36)),
            seed: int = 0) -> tuple[sitk.Image, sitk.Image]:
    """int16 CT-like image (z, y, x = 32, 48, 48; 0.9 x 0.9 x 2.0 mm) with a brighter,
    textured block (by default 20 x 26 x 24 voxels: large enough for two box sizes of every
    fractal dimension), and a uint8 label map with that block as label 2."""
    rng = np.random.default_rng(seed)
    arr = rng.normal(-500, 100, (32, 48, 48))
    arr[box] = rng.normal(40, 30, arr[box].shape)
    lab = np.zeros(arr.shape, np.uint8)
    lab[box] = 2
    image = sitk.GetImageFromArray(arr.round().astype(np.int16))
    image.SetSpacing((0.9, 0.9, 2.0))
    image.SetOrigin((-10.0, 20.0, 5.0))
    mask = sitk.GetImageFromArray(lab)
    mask.CopyInformation(image)
    return image, mask


def _pair(folder: Path, image: sitk.Image, mask: sitk.Image, pair_id: str = "p1"
          ) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    img, msk = folder / f"{pair_id}_img.nii.gz", folder / f"{pair_id}_mask.nii.gz"
    write_nifti(img, image)
    write_nifti(msk, mask)
    return {"pair_id": pair_id, "case_id": "c1", "image_key": f"s{pair_id}", "mask_key": "m1",
            "roi": "GTV", "label": 2, "status": "ok", "image": str(img), "mask": str(msk),
            "image_hash": voxel_hash(read_image(img)), "mask_hash": voxel_hash(read_image(msk))}


@pytest.fixture
def pair(tmp_path: Path) -> dict[str, Any]:
    return _pair(tmp_path / "pair", *_images())


@pytest.fixture
def params_path(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(PARAMS), encoding="utf-8")
    return path


def _family_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["feature_class"].isin(fam.FEATURE_CLASSES)]


# --- rows: names, classes, IBSI codes, values ---------------------------------------------------

def test_family_rows_follow_pyradiomics_with_names_classes_and_ibsi_codes(
        pair: dict[str, Any], params_path: Path) -> None:
    table, status = extract.extract_pair(pair, params_path, families=ALL_ON)
    assert status["status"] == "ok" and status["n_features"] == len(table)
    plain, _ = extract.extract_pair(pair, params_path)
    assert set(plain["feature_class"]) == {"shape", "firstorder"}
    n = len(plain)
    # PyRadiomics' rows come first and are unchanged, with their IBSI codes (radflow.ibsi)
    pd.testing.assert_frame_equal(table.iloc[:n].drop(columns="params_hash"),
                                  plain.drop(columns="params_hash"))
    first = table.iloc[:n]
    first_codes = dict(zip(first["feature_class"] + "_" + first["feature"], first["ibsi_code"],
                           strict=True))
    assert first_codes["shape_VoxelVolume"] == "YEKZ"
    own = table.iloc[n:]
    assert len(own) == len(_family_rows(table)) > 0
    assert set(own["image_type"]) == {"original"}
    assert list(dict.fromkeys(own["feature_class"])) == [*SEMANTIC, "fractal", "minkowski"]
    names = set(own["feature_class"] + "_" + own["feature"])
    assert {"recist_LongestDiameter", "recist_ShortAxisDiameter", "size_VoxelVolume",
            "size_MeshVolume", "density_Mean", "fractal_BoxCountingDimension",
            "minkowski_EulerCharacteristic", "minkowski_SurfaceAreaCurveAUC"} <= names
    assert not any(name.startswith("suv_") for name in names), "CT: no suv family"
    codes = dict(zip(own["feature_class"] + "_" + own["feature"], own["ibsi_code"],
                     strict=True))
    assert codes == {k: ibsi_code(*k.split("_", 1)) for k in codes}  # one table: codes.tsv
    assert codes["size_VoxelVolume"] == "YEKZ" and codes["size_MeshVolume"] == "RNU0"
    assert codes["size_Maximum3DDiameter"] == "L0JK" and codes["recist_LongestDiameter"] == ""
    # same keys and provenance as PyRadiomics' rows
    for column in ("case_id", "image_key", "mask_key", "pair_id", "roi", "label",
                   "radflow_version", "params_hash", "params_set", "image_hash", "mask_hash"):
        assert own[column].nunique() == 1 and own[column].iloc[0] == table[column].iloc[0]


def test_values_are_those_of_the_modules_on_the_image_as_converted(
        pair: dict[str, Any], params_path: Path) -> None:
    table, _ = extract.extract_pair(pair, params_path, families=ALL_ON)
    image = read_image(pair["image"])
    binary = sitk.Cast(read_image(pair["mask"]) == 2, sitk.sitkUInt8)
    expected = {f"original_{k}": v for k, v in
                semantic_features(image, binary, SemanticSettings()).features.items()}
    expected.update(fractal_features(image, binary, FractalSettings()))
    expected.update(minkowski_features(image, binary, MinkowskiSettings()).features)
    own = _family_rows(table)
    got = dict(zip(own["image_type"] + "_" + own["feature_class"] + "_" + own["feature"],
                   own["value"], strict=True))
    assert got.keys() == expected.keys()
    assert all(got[k] == v or (math.isnan(got[k]) and math.isnan(v))
               for k, v in expected.items())
    # block of 20 x 26 x 24 voxels of 0.9 x 0.9 x 2.0 mm
    assert got["original_size_VoxelCount"] == 12480
    assert got["original_minkowski_Volume"] == pytest.approx(12480 * 0.9 * 0.9 * 2.0)
    assert not any(math.isnan(v) for v in got.values())


def test_pet_gets_the_suv_family_and_ct_does_not(pair: dict[str, Any],
                                                 params_path: Path) -> None:
    classes = {}
    for modality in ("PT", "CT", "MR"):
        choice = ParamsChoice(modality=modality, key="all", file="params.yaml")
        table, status = extract.extract_pair(pair, params_path, choice=choice, families=ALL_ON)
        assert status["status"] == "ok"
        classes[modality] = set(table["feature_class"])
        if modality == "PT":
            suv = table[table["feature_class"] == "suv"]
            assert list(suv["feature"]) == ["SUVmax", "SUVpeak", "MTV", "TLG", "MTVThreshold"]
            assert dict(zip(suv["feature"], suv["ibsi_code"], strict=True))["SUVpeak"] == "0F91"
    assert "suv" in classes["PT"]
    assert "suv" not in classes["CT"] | classes["MR"]
    assert classes["PT"] - {"suv"} == classes["CT"] == classes["MR"]


# --- settings: switches, params hash, config --------------------------------------------------

def test_off_switch_removes_the_family_rows(pair: dict[str, Any], params_path: Path) -> None:
    for off, gone in (("semantic", set(SEMANTIC)), ("fractal", {"fractal"}),
                      ("minkowski", {"minkowski"})):
        families = feature_families({off: {"enabled": False}})
        table, _ = extract.extract_pair(pair, params_path, families=families)
        present = set(_family_rows(table)["feature_class"])
        assert present == (set(SEMANTIC) | {"fractal", "minkowski"}) - gone, off
    none = feature_families({f: {"enabled": False} for f in fam.FAMILIES})
    assert not none.enabled
    table, _ = extract.extract_pair(pair, params_path, families=none)
    plain, _ = extract.extract_pair(pair, params_path)
    pd.testing.assert_frame_equal(table, plain)


def test_family_settings_enter_the_params_hash(pair: dict[str, Any], params_path: Path) -> None:
    def hash_of(families: Any) -> str:
        table, _ = extract.extract_pair(pair, params_path, families=families)
        (value,) = set(table["params_hash"])
        return str(value)

    off = hash_of(None)
    assert off == ra.params_hash(PARAMS), "families off: the hash of PyRadiomics' settings"
    assert hash_of(feature_families({f: {"enabled": False} for f in fam.FAMILIES})) == off
    on = hash_of(ALL_ON)
    changed = hash_of(feature_families({"minkowski": {"levels": 8}}))
    assert len({off, on, changed}) == 3
    assert hash_of(feature_families({"minkowski": {"levels": 16}})) == on, "defaults = explicit"


@pytest.mark.parametrize(("config", "message"), [
    ({"texture": {}}, r"unknown family texture"),
    ({"semantic": {"components": "each"}}, r"semantic.components: 'each'"),
    ({"fractal": {"enabled": "yes"}}, r"fractal.enabled must be true or false"),
    ({"minkowski": {"colour": 1}}, r"unknown setting\(s\) in 'extract.families.minkowski'"),
    ({"minkowski": {"connectivity": 6}}, r"directions 13 needs connectivity 26"),
])
def test_invalid_family_settings_are_config_errors(config: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        feature_families(config)


def test_the_shipped_config_turns_all_three_on(repo_root: Path) -> None:
    from radflow.config_check import check_config

    config = yaml.safe_load((repo_root / "config" / "config.yaml").read_text(encoding="utf-8"))
    check_config(config, repo_root / "config" / "schema" / "config.schema.yaml")
    settings = from_mapping(ExtractSettings, config["extract"], section="extract")
    families = feature_families(settings.families)
    assert families == ALL_ON, "config.yaml states the settings classes' defaults"
    del config["extract"]["families"]
    check_config(config, repo_root / "config" / "schema" / "config.schema.yaml")
    assert feature_families(config["extract"]["families"]) == ALL_ON


# --- tiny ROIs and failures -------------------------------------------------------------------

def test_tiny_roi_gives_nan_fractal_features_and_a_qc_note(tmp_path: Path,
                                                           params_path: Path) -> None:
    image, mask = _images(box=(slice(7, 9), slice(9, 11), slice(9, 12)))  # 3 x 2 x 2 voxels
    one = _pair(tmp_path, image, mask)
    table, status = extract.extract_pair(one, params_path, families=ALL_ON)
    assert status["status"] == "ok", status
    assert status["qc"] == fam.FRACTAL_TOO_SMALL
    assert set(table["qc"]) == {fam.FRACTAL_TOO_SMALL}
    fractal = table[table["feature_class"] == "fractal"]
    assert len(fractal) == 3 and fractal["value"].isna().all()
    others = _family_rows(table)
    assert others[others["feature_class"] != "fractal"]["value"].notna().all()
    plain, plain_status = extract.extract_pair(one, params_path)
    assert plain_status["qc"] is None and set(plain["qc"]) == {""}


@pytest.mark.parametrize(("error", "status"), [
    (PairingError("the mask is not on the image grid", reason="grid-mismatch"),
     "failed:grid-mismatch"),
    (FloatingPointError("overflow"), "failed:family-error"),
])
def test_a_family_failure_fails_the_pair_like_pyradiomics(
        pair: dict[str, Any], params_path: Path, monkeypatch: pytest.MonkeyPatch,
        error: Exception, status: str) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(fam, "minkowski_features", broken)
    table, record = extract.extract_pair(pair, params_path, families=ALL_ON)
    assert record["status"] == status and table.empty
    assert "label 2: minkowski features" in record["message"]


# --- the job: determinism, side records, merge ------------------------------------------------

def _run(tmp_path: Path, pairs: list[dict[str, Any]], params_path: Path, name: str,
         families: Any = ALL_ON) -> Path:
    paths = []
    for one in pairs:
        path = tmp_path / "records" / f"{one['pair_id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(one), encoding="utf-8")
        paths.append(path)
    out = tmp_path / name
    extract.run_extract(paths, params_path, out / "u.parquet", out / "u.json", unit="u",
                        families=families, out_side=out / "u.side.json")
    return out


def test_reruns_are_identical(pair: dict[str, Any], params_path: Path, tmp_path: Path) -> None:
    first = _run(tmp_path, [pair], params_path, "a")
    second = _run(tmp_path, [pair], params_path, "b")
    for name in ("u.parquet", "u.side.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert len(_family_rows(pd.read_parquet(first / "u.parquet"))) > 0


def test_side_record_holds_landmarks_and_curves_of_extracted_pairs(
        pair: dict[str, Any], params_path: Path, tmp_path: Path) -> None:
    skipped = {**pair, "pair_id": "p2", "status": "failed:empty-mask"}
    out = _run(tmp_path, [pair, skipped], params_path, "u")
    side = read_extract_side(out / "u.side.json")
    assert side.unit == "u" and [p.pair_id for p in side.pairs] == ["p1"]
    (one,) = side.pairs
    assert (one.case_id, one.image_key) == ("c1", "sp1")
    marks = {m.name: m for m in one.landmarks}
    assert list(marks) == ["long_axis", "short_axis", "diameter_3d"]
    table = pd.read_parquet(out / "u.parquet")
    value = dict(zip(table["feature_class"] + "_" + table["feature"], table["value"],
                     strict=True))
    for name, feature in (("long_axis", "recist_LongestDiameter"),
                          ("short_axis", "recist_ShortAxisDiameter"),
                          ("diameter_3d", "size_Maximum3DDiameter")):
        a, b = (np.array(p) for p in marks[name].points)
        assert np.linalg.norm(a - b) == pytest.approx(value[feature], rel=1e-9)
    assert marks["long_axis"].slice_index == value["recist_LongestDiameterSlice"]
    assert marks["diameter_3d"].slice_index is None
    assert [c.level for c in one.curves] == list(range(16))
    assert all(c.image_type == "original" for c in one.curves)
    thresholds = [c.threshold for c in one.curves]
    assert thresholds == sorted(thresholds)
    # no families: a side record without pairs' landmarks (the rule's output always exists)
    off = _run(tmp_path, [pair], params_path, "off", families=None)
    (bare,) = read_extract_side(off / "u.side.json").pairs
    assert bare.landmarks == () and bare.curves == ()


def test_merge_gathers_the_side_tables(tmp_path: Path, params_path: Path) -> None:
    image, mask = _images()
    pairs = [_pair(tmp_path / "pairs", image, mask, "p1"),
             _pair(tmp_path / "pairs", *_images(seed=1), "p2")]
    units = [_run(tmp_path / "a", pairs[:1], params_path, "u1"),
             _run(tmp_path / "b", pairs[1:], params_path, "u2")]
    landmarks, curves = side_tables([str(u / "u.side.json") for u in units])
    assert tuple(landmarks.columns) == LANDMARK_COLUMNS
    assert tuple(curves.columns) == CURVE_COLUMNS
    assert list(landmarks["pair_id"]) == ["p1"] * 3 + ["p2"] * 3
    assert landmarks["x2"].notna().all() and str(landmarks["slice_index"].dtype) == "Int64"
    assert len(curves) == 32 and curves["euler_characteristic"].dtype == np.int64
    left, _ = side_tables([str(u / "u.side.json") for u in units], excluded={"p1"})
    assert set(left["pair_id"]) == {"p2"}
    # through the merge stage's entry point
    series = tmp_path / "series.tsv"
    series.write_text("series_key\tstatus\n", encoding="utf-8")
    pairs_tsv = tmp_path / "pairs.tsv"
    pairs_tsv.write_text("pair_id\tstatus\np1\tok\np2\tok\n", encoding="utf-8")
    out = tmp_path / "merge"
    run_merge(feature_files=[str(u / "u.parquet") for u in units],
              status_files=[str(u / "u.json") for u in units], pairs_tsv=str(pairs_tsv),
              series_tsv=str(series), sidecars=[], clinical=ClinicalInput(), key_file="",
              settings=MergeSettings(), strict=False,
              side_files=[str(u / "u.side.json") for u in units],
              out=MergeOutputs(*(str(out / n) for n in (
                  "features.parquet", "wide.csv", "dataset.parquet", "dataset.csv",
                  "landmarks.tsv", "curves.parquet"))))
    written = pd.read_csv(out / "landmarks.tsv", sep="\t", dtype={"slice_index": "Int64"})
    pd.testing.assert_frame_equal(written, landmarks)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "curves.parquet"), curves)
    long = pd.read_parquet(out / "features.parquet")
    assert "ibsi_code" in long.columns
    wide = pd.read_csv(out / "wide.csv")
    assert "ibsi_code" not in wide.columns and "original_recist_LongestDiameter" in wide.columns
