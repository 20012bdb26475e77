"""radflow.extract: one pair record -> long feature table with provenance + status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from radflow import extract
from radflow import radiomics_adapter as ra
from radflow.errors import ConfigError, InputFileError
from radflow.io.nifti import read_image, voxel_hash, write_nifti

PARAMS = {"setting": {"binWidth": 25},
          "imageType": {"Original": {}},
          "featureClass": {"shape": [], "firstorder": [], "glrlm": []}}


def _images(seed: int = 0) -> tuple[sitk.Image, sitk.Image]:
    """int16 CT-like image (shape z, y, x = 16, 20, 20) and a uint8 mask with ROI label 2."""
    rng = np.random.default_rng(seed)
    arr = rng.normal(-500, 100, (16, 20, 20)).round().astype(np.int16)
    lab = np.zeros(arr.shape, np.uint8)
    lab[4:12, 5:15, 6:14] = 2
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((0.9, 0.9, 2.0))
    mask = sitk.GetImageFromArray(lab)
    mask.CopyInformation(image)
    return image, mask


@pytest.fixture
def pair(tmp_path: Path) -> dict[str, Any]:
    image, mask = _images()
    img_path, mask_path = tmp_path / "img.nii.gz", tmp_path / "mask.nii.gz"
    write_nifti(img_path, image)
    write_nifti(mask_path, mask)
    return {"pair_id": "P001-ct-gtv", "case_id": "P001", "image_key": "S0001",
            "mask_key": "S0002", "roi": "GTV", "label": 2, "status": "ok",
            "image": str(img_path), "mask": str(mask_path),
            "image_hash": voxel_hash(read_image(img_path)),
            "mask_hash": voxel_hash(read_image(mask_path)), "mask_resampled": False}


@pytest.fixture
def params_path(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(PARAMS), encoding="utf-8")
    return path


def _check_schema(table: pd.DataFrame) -> None:
    assert list(table.columns) == list(extract.COLUMNS)
    for name, dtype in extract.COLUMNS.items():
        assert table[name].dtype == pd.Series([], dtype=dtype).dtype, name


def test_extract_pair_ok(pair: dict[str, Any], params_path: Path) -> None:
    table, status = extract.extract_pair(pair, params_path)
    _check_schema(table)
    assert status["status"] == "ok" and status["reason"] is None
    assert status["pair_id"] == "P001-ct-gtv"
    assert status["n_features"] == len(table) > 40
    assert status["seconds"] >= 0
    assert set(table["feature_class"]) == {"shape", "firstorder", "glrlm"}
    assert (table["label"] == 2).all()
    for key in ("case_id", "image_key", "mask_key", "pair_id", "roi", "image_hash", "mask_hash"):
        assert set(table[key]) == {str(pair[key])}
    versions = ra.versions()
    for key, value in versions.items():
        assert set(table[key]) == {value}
    assert set(table["params_hash"]) == {ra.params_hash(PARAMS)}
    direct = ra.compute_features(read_image(pair["image"]), read_image(pair["mask"]), PARAMS,
                                 label=2)
    np.testing.assert_array_equal(table["value"].to_numpy(), direct["value"].to_numpy())
    assert list(table["feature"]) == list(direct["feature"])
    volume = table.loc[table["feature"] == "VoxelVolume", "value"].item()
    assert volume == pytest.approx(8 * 10 * 8 * 0.9 * 0.9 * 2.0, rel=1e-5)


def test_pair_not_ok_is_skipped(pair: dict[str, Any], params_path: Path) -> None:
    pair.update(status="failed:empty-mask", image="", mask="", image_hash="", mask_hash="")
    table, status = extract.extract_pair(pair, params_path)
    assert table.empty
    _check_schema(table)
    assert status["status"] == "skipped:failed:empty-mask"
    assert status["reason"] == "empty-mask"
    assert status["n_features"] == 0


@pytest.mark.parametrize("which", ["image", "mask"])
def test_file_changed_after_pairing_fails(pair: dict[str, Any], params_path: Path,
                                          which: str) -> None:
    image, mask = _images()
    if which == "image":
        arr = sitk.GetArrayFromImage(image)
        arr[0, 0, 0] += 1
        changed = sitk.GetImageFromArray(arr)
        changed.CopyInformation(image)
    else:
        changed = sitk.Cast(mask, sitk.sitkInt16)  # same voxels, other dtype
    write_nifti(pair[which], changed)
    table, status = extract.extract_pair(pair, params_path)
    assert table.empty
    _check_schema(table)
    assert status["status"] == f"failed:{which}-hash-mismatch"
    assert "changed after the pair stage" in status["message"]


@pytest.mark.parametrize(("edit", "expected"), [
    ({"label": 5}, "failed:label-absent"),
    ({"image": "missing.nii.gz"}, "failed:missing-file"),
])
def test_extraction_failures_are_recorded(pair: dict[str, Any], params_path: Path,
                                          edit: dict[str, Any], expected: str) -> None:
    pair.update(edit)
    if "image" in edit:
        pair["image"] = str(Path(pair["mask"]).parent / edit["image"])
    table, status = extract.extract_pair(pair, params_path)
    assert table.empty
    _check_schema(table)
    assert status["status"] == expected
    assert status["reason"] == expected.split(":", 1)[1]
    assert status["message"]


def test_invalid_params_raise(pair: dict[str, Any], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("setting:\n  binWidth: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"setting\.binWidth"):
        extract.extract_pair(pair, bad)
    pair["status"] = "failed:empty-mask"
    with pytest.raises(ConfigError):
        extract.extract_pair(pair, bad)


@pytest.mark.parametrize("edit", [{"label": "2"}, {"label": True}, {"status": None}])
def test_bad_pair_record_raises(pair: dict[str, Any], params_path: Path,
                                edit: dict[str, Any]) -> None:
    pair.update(edit)
    if edit.get("status", "x") is None:
        del pair["status"]
    with pytest.raises(InputFileError) as info:
        extract.extract_pair(pair, params_path)
    assert info.value.reason == "bad-pair-record"


@pytest.mark.parametrize("pair_status", ["ok", "failed:grid-mismatch"])
def test_run_extract_writes_parquet_and_status(pair: dict[str, Any], params_path: Path,
                                               tmp_path: Path, pair_status: str) -> None:
    pair["status"] = pair_status
    pair_json = tmp_path / "pair" / "P001-ct-gtv.json"
    pair_json.parent.mkdir()
    pair_json.write_text(json.dumps(pair), encoding="utf-8")
    out_dir = tmp_path / "extract"
    extract.run_extract([pair_json], params_path, out_dir / "S0001.parquet",
                        out_dir / "S0001.json", unit="S0001")
    table = pd.read_parquet(out_dir / "S0001.parquet")
    _check_schema(table)
    record = json.loads((out_dir / "S0001.json").read_text(encoding="utf-8"))
    assert set(record) == {"unit", "n_pairs", "seconds", "pairs"}
    assert record["unit"] == "S0001" and record["n_pairs"] == 1
    (status,) = record["pairs"]
    assert set(status) == {"pair_id", "status", "reason", "message", "n_features", "seconds"}
    assert status["n_features"] == len(table)
    if pair_status == "ok":
        assert status["status"] == "ok" and len(table) > 40
    else:
        assert status["status"] == "skipped:failed:grid-mismatch" and table.empty
    assert sorted(p.name for p in out_dir.iterdir()) == ["S0001.json", "S0001.parquet"]


def _unit(pair: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    """Four pairs on one image: labels 2 and 3 of one label map, a second mask file, and a pair
    the pair stage failed."""
    image, _ = _images()
    lab = np.zeros((16, 20, 20), np.uint8)
    lab[2:6, 2:8, 2:8] = 3
    lab[8:14, 10:18, 10:18] = 2
    two_labels = sitk.GetImageFromArray(lab)
    two_labels.CopyInformation(image)
    small = sitk.GetImageFromArray((lab == 3).astype(np.uint8))
    small.CopyInformation(image)
    pairs = []
    for i, (name, mask, label) in enumerate([("labels", two_labels, 2), ("labels", two_labels, 3),
                                             ("small", small, 1), ("labels", two_labels, 2)]):
        path = tmp_path / f"{name}.nii.gz"
        if not path.exists():
            write_nifti(path, mask)
        pairs.append({**pair, "pair_id": f"P{i}", "mask_key": f"M{name}", "label": label,
                      "roi": f"roi{i}", "mask": str(path),
                      "mask_hash": voxel_hash(read_image(path))})
    pairs[3].update(status="failed:empty-mask")
    return pairs


def test_unit_reads_each_volume_once(pair: dict[str, Any], params_path: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 4: an image with several ROIs is read once per job, and the values equal those of
    one pair at a time."""
    pairs = _unit(pair, tmp_path)
    reads: list[str] = []
    real_read = extract.read_image

    def counting_read(path, name=None):
        reads.append(Path(path).name)
        return real_read(path, name=name)

    monkeypatch.setattr(extract, "read_image", counting_read)
    table, statuses = extract.extract_unit(pairs, params_path)
    assert sorted(reads) == ["img.nii.gz", "labels.nii.gz", "small.nii.gz"]
    assert [s["status"] for s in statuses] == ["ok", "ok", "ok", "skipped:failed:empty-mask"]
    assert [s["pair_id"] for s in statuses] == ["P0", "P1", "P2", "P3"]
    _check_schema(table)
    assert list(dict.fromkeys(table["pair_id"])) == ["P0", "P1", "P2"]
    monkeypatch.setattr(extract, "read_image", real_read)
    for one in pairs[:3]:
        alone, _ = extract.extract_pair(one, params_path)
        got = table[table["pair_id"] == one["pair_id"]].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, alone)
    p1 = table[table["pair_id"] == "P1"]
    assert set(p1["label"]) == {3}
    volume = p1.loc[p1["feature"] == "VoxelVolume", "value"].item()
    assert volume == pytest.approx(4 * 6 * 6 * 0.9 * 0.9 * 2.0, rel=1e-5)


def test_unit_failure_of_one_pair_keeps_the_others(pair: dict[str, Any], params_path: Path,
                                                   tmp_path: Path) -> None:
    pairs = _unit(pair, tmp_path)
    pairs[2]["mask_hash"] = "0" * 64          # its file "changed" after pairing
    pairs[1]["mask"] = str(tmp_path / "absent.nii.gz")
    table, statuses = extract.extract_unit(pairs, params_path)
    assert [s["status"] for s in statuses] == [
        "ok", "failed:missing-file", "failed:mask-hash-mismatch", "skipped:failed:empty-mask"]
    assert "mask Mlabels" in statuses[1]["message"] and "absent" not in statuses[1]["message"]
    assert "mask Msmall" in statuses[2]["message"]
    assert set(table["pair_id"]) == {"P0"}


def test_run_extract_unreadable_pair_json(tmp_path: Path, params_path: Path) -> None:
    bad = tmp_path / "p.json"
    bad.write_text("{not json", encoding="utf-8")
    for path in (bad, tmp_path / "absent.json"):
        with pytest.raises(InputFileError):
            extract.run_extract([path], params_path, tmp_path / "o.parquet",
                                tmp_path / "o.json")
    assert not (tmp_path / "o.parquet").exists()


def test_default_config_extracts(pair: dict[str, Any], repo_root: Path) -> None:
    table, status = extract.extract_pair(pair, repo_root / "config" / "pyradiomics.yaml")
    assert status["status"] == "ok", status
    types = set(table["image_type"])
    assert {"original", "log-sigma-1-0-mm-3D", "log-sigma-3-0-mm-3D", "wavelet-HLH"} <= types
    assert len(types) == 1 + 3 + 8
    assert "SumAverage" not in set(table["feature"])
    assert table["value"].notna().all()


# --- filter image types (extract.image_types) ------------------------------------------------

#: params_hash of the 0.2 default ``laws:`` entry (L5E5E5, ri max, e7) with PARAMS-like params
#: {Original; firstorder}, computed by the 0.2 ``laws_image_types`` before the 0.3 redesign.
DEFAULT_LAWS_HASH_0_2 = "db8c3cdbbccc42761d0c761ceb11beac3cebab01e0bae40b83119f20acc0983a"


def test_laws_image_types_plug_in(pair: dict[str, Any], params_path: Path) -> None:
    specs = extract.image_types([
        {"filter": "laws", "kernel": "L5E5E5", "rotation_invariant": True, "pooling": "max",
         "energy_delta": 2},
        {"filter": "laws", "kernel": "E3E3E3"},
    ])
    assert [s.name for s in specs] == ["laws-L5E5E5-ri-max-e2", "laws-E3E3E3"]
    table, status = extract.extract_pair(pair, params_path, extra_image_types=specs)
    assert status["status"] == "ok"
    assert set(table["image_type"]) == {"original", "laws-L5E5E5-ri-max-e2", "laws-E3E3E3"}
    laws = table[table["image_type"] == "laws-E3E3E3"]
    assert set(laws["feature_class"]) == {"firstorder", "glrlm"}
    assert set(table["params_hash"]) == {ra.params_hash(PARAMS, specs)} != {ra.params_hash(PARAMS)}
    assert extract.image_types([]) == ()


def test_every_registered_filter_extracts(pair: dict[str, Any], params_path: Path) -> None:
    specs = extract.image_types([
        {"filter": "mean", "support": 3},
        {"filter": "log", "sigma_mm": 1.5},
        {"filter": "wavelet", "wavelet": "haar", "band": "llh"},
    ])
    names = ["mean-s3", "ibsi-log-s1-5mm", "ibsi-wavelet-haar-LLH-l1"]
    assert [s.name for s in specs] == names
    table, status = extract.extract_pair(pair, params_path, extra_image_types=specs)
    assert status["status"] == "ok", status
    assert set(table["image_type"]) == {"original", *names}
    assert table["value"].notna().all()


@pytest.mark.parametrize(("configs", "message"), [
    ([{"filter": "laws", "kernel": "X5E5E5"}], r"extract.image_types\[0\].kernel: 'X5E5E5'"),
    ([{"filter": "laws", "kernel": "L5E5E5", "colour": "red"}],
     r"unknown setting\(s\) in 'extract.image_types\[0\]': colour"),
    ([{"filter": "laws"}], r"missing setting\(s\) in 'extract.image_types\[0\]': kernel"),
    ([{"filter": "blur", "sigma_mm": 1}],
     r"extract.image_types\[0\].filter: 'blur' is not a known filter"),
    ([{"kernel": "L5E5E5"}], r"extract.image_types\[0\].filter: None is not a known filter"),
    ([{"filter": "mean", "support": 4}], r"extract.image_types\[0\].support: 4"),
    ([{"filter": "laws", "kernel": "L5E5E5"}, {"filter": "laws", "kernel": "L5E5E5",
                                                "boundary": "wrap"}],
     "laws-L5E5E5 configured twice"),
])
def test_image_types_invalid(configs: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        extract.image_types(configs)


def test_laws_options_enter_the_params_hash() -> None:
    from radflow.radiomics_adapter import params_hash

    params = {"imageType": {"Original": {}}, "featureClass": {"firstorder": []}}
    mirror = extract.image_types([{"filter": "laws", "kernel": "L5E5E5", "boundary": "mirror"}])
    wrap = extract.image_types([{"filter": "laws", "kernel": "L5E5E5", "boundary": "wrap"}])
    assert mirror[0].name == wrap[0].name == "laws-L5E5E5"
    assert params_hash(params, mirror) != params_hash(params, wrap)
    assert params_hash(params, mirror) == params_hash(
        params, extract.image_types([{"filter": "laws", "kernel": "L5E5E5"}]))


def test_default_laws_entry_keeps_the_0_2_params_hash() -> None:
    """The 0.2 ``laws:`` entry and its 0.3 ``extract.image_types`` form hash the same (the hash
    the 0.2 code computed for the default config, recorded here)."""
    from radflow.radiomics_adapter import params_hash

    params = {"imageType": {"Original": {}}, "featureClass": {"firstorder": []}}
    specs = extract.image_types([{"filter": "laws", "kernel": "L5E5E5", "rotation_invariant": True,
                                  "pooling": "max", "energy_delta": 7, "boundary": "mirror",
                                  "dimensions": "3d"}])
    assert params_hash(params, specs) == DEFAULT_LAWS_HASH_0_2


# --- the job path: no pandas, Parquet written by pyarrow -------------------------------------

_JOB_PROBE = """
import json, sys
import radflow.extract
before = sorted(m for m in ("pandas", "pyarrow") if m in sys.modules)
from radflow.extract import run_extract
run_extract(*sys.argv[1:5])
after = sorted(m for m in ("pandas", "pyarrow") if m in sys.modules)
print(json.dumps({"import": before, "job": after}))
"""


def test_extract_job_does_not_import_pandas(pair: dict[str, Any], params_path: Path,
                                            tmp_path: Path) -> None:
    """Issue 11: an extract_one job imports neither pandas nor (before writing) pyarrow."""
    pair_json = tmp_path / "pair.json"
    pair_json.write_text(json.dumps(pair), encoding="utf-8")
    out = subprocess.run([sys.executable, "-c", _JOB_PROBE, str(pair_json), str(params_path),
                          str(tmp_path / "f.parquet"), str(tmp_path / "s.json")],
                         capture_output=True, text=True, check=True)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert modules == {"import": [], "job": ["pyarrow"]}
    assert len(pd.read_parquet(tmp_path / "f.parquet")) > 40


def test_job_parquet_reads_back_as_the_table(pair: dict[str, Any], params_path: Path,
                                             tmp_path: Path) -> None:
    """The rows a job writes with pyarrow read back (pandas) exactly as extract_unit's frame."""
    pairs = _unit(pair, tmp_path)
    paths = []
    for one in pairs:
        path = tmp_path / f"{one['pair_id']}.json"
        path.write_text(json.dumps(one), encoding="utf-8")
        paths.append(path)
    extract.run_extract(paths, params_path, tmp_path / "u.parquet", tmp_path / "u.json")
    table, _ = extract.extract_unit(pairs, params_path)
    written = pd.read_parquet(tmp_path / "u.parquet")
    _check_schema(written)
    pd.testing.assert_frame_equal(written, table)


def test_write_rows_keeps_nan_and_empty(tmp_path: Path) -> None:
    row = ("C", "I", "M", "P", "R", 1, "original", "glcm", "Imc1", "", float("nan"),
           *"vdpsnhSNqab")
    extract.write_rows(tmp_path / "one.parquet",
                       [row, (*row[:8], "Imc2", "YEKZ", -0.5, *row[11:])])
    one = pd.read_parquet(tmp_path / "one.parquet")
    _check_schema(one)
    assert np.isnan(one["value"].iloc[0]) and one["value"].iloc[1] == -0.5
    assert one["value"].isna().sum() == 1 and one.notna().iloc[1].all()
    extract.write_rows(tmp_path / "none.parquet", [])
    none = pd.read_parquet(tmp_path / "none.parquet")
    _check_schema(none)
    assert none.empty
    pd.testing.assert_frame_equal(none, extract.empty_table())
