"""Pair stage: grid checks, optional nearest-neighbour resampling, label/empty-mask failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radflow.convert import convert_source
from radflow.io.atomic import write_json
from radflow.io.nifti import read_image, voxel_hash, write_nifti
from radflow.pair import pair_one, pairs_table, run_pair, run_pair_table
from radflow.settings import GeometrySettings, PairSettings


def _volume(arr_zyx: np.ndarray, spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    img = sitk.GetImageFromArray(arr_zyx)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    return img


def _sidecar(tmp: Path, key: str, role: str, img: sitk.Image) -> str:
    src = tmp / f"{key}.src.nii.gz"
    write_nifti(src, img)
    source = {"series_key": key, "case_id": "c000000000001", "kind": "image-file", "role": role,
              "files": [str(src)]}
    sidecar = convert_source(source, tmp / f"{key}.nii.gz", GeometrySettings())
    write_json(tmp / f"{key}.json", sidecar)
    return str(tmp / f"{key}.json")


def _plan(label: int = 1, status: str = "ok") -> dict:
    return {"pair_id": "p0000000000000001", "case_id": "c000000000001",
            "image_key": "s0000000000000001", "mask_key": "s0000000000000002", "roi": "lesion",
            "label": label, "status": status}


@pytest.fixture
def image() -> sitk.Image:
    return _volume(np.random.default_rng(0).normal(size=(6, 8, 10)).astype(np.float32))


def _mask(shape=(6, 8, 10), value=1, **kw) -> sitk.Image:
    arr = np.zeros(shape, np.uint8)
    arr[2:4, 3:5, 4:7] = value
    return _volume(arr, **kw)


def test_same_grid_pair_is_ok(tmp_path, image) -> None:
    rec = pair_one(_plan(), _sidecar(tmp_path, "img", "image", image),
                   _sidecar(tmp_path, "msk", "mask", _mask()), PairSettings(),
                   tmp_path / "r.nii.gz")
    assert rec["status"] == "ok"
    assert rec["n_voxels"] == 12 and not rec["mask_resampled"]
    # sheet files: exact copies (radflow.io.volume_files)
    assert rec["image"].endswith("img.mha") and rec["mask"].endswith("msk.mha")


@pytest.mark.parametrize("mask_kw, label, reason", [
    ({"value": 0}, 1, "failed:empty-mask"),
    ({"value": 2}, 1, "failed:label-absent"),
    ({"origin": (0.5, 0.0, 0.0)}, 1, "failed:grid-mismatch"),
    ({"shape": (6, 8, 11)}, 1, "failed:grid-mismatch"),
])
def test_pair_failures_are_recorded(tmp_path, image, mask_kw, label, reason) -> None:
    rec = pair_one(_plan(label), _sidecar(tmp_path, "img", "image", image),
                   _sidecar(tmp_path, "msk", "mask", _mask(**mask_kw)), PairSettings(),
                   tmp_path / "r.nii.gz")
    assert rec["status"] == reason
    assert "p0000000000000001" in rec["error"]


def test_mismatched_mask_is_resampled_when_allowed(tmp_path, image) -> None:
    # Mask on a grid with half the in-plane spacing, covering the same physical box.
    fine = np.zeros((6, 16, 20), np.uint8)
    fine[2:4, 6:10, 8:14] = 1
    mask = _volume(fine, spacing=(0.5, 0.5, 2.0), origin=(-0.25, -0.25, 0.0))
    out = tmp_path / "r.nii.gz"
    rec = pair_one(_plan(), _sidecar(tmp_path, "img", "image", image),
                   _sidecar(tmp_path, "msk", "mask", mask),
                   PairSettings(resample_mask=True), out)
    assert rec["status"] == "ok" and rec["mask_resampled"]
    # written like its image (a sheet file's .mha copy): same geometry bits as the image
    resampled = tmp_path / "r.mha"
    assert "size" in rec["grid_mismatch"] and rec["mask"] == str(resampled)
    back = read_image(resampled)
    assert sitk.GetArrayFromImage(back).shape == (6, 8, 10)
    assert sitk.GetArrayFromImage(back).sum() == 12
    assert back.GetOrigin() == read_image(rec["image"]).GetOrigin()


def test_crawl_failure_passes_through(tmp_path) -> None:
    rec = pair_one(_plan(status="failed:image-missing-slice"), None, None, PairSettings(),
                   tmp_path / "r.nii.gz")
    assert rec["status"] == "failed:image-missing-slice"


def test_failed_conversion_fails_the_pair(tmp_path, image) -> None:
    bad = tmp_path / "bad.json"
    write_json(bad, {"series_key": "s1", "status": "failed:missing-slice"})
    rec = pair_one(_plan(), str(bad), _sidecar(tmp_path, "msk", "mask", _mask()),
                   PairSettings(), tmp_path / "r.nii.gz")
    assert rec["status"] == "failed:image-missing-slice"


def test_run_pair_and_table(tmp_path, image) -> None:
    plan = tmp_path / "plan.json"
    write_json(plan, _plan())
    out = tmp_path / "pair" / "p0000000000000001.json"
    run_pair(plan_json=str(plan), image_sidecar=_sidecar(tmp_path, "img", "image", image),
             mask_sidecar=_sidecar(tmp_path, "msk", "mask", _mask()), out_json=str(out),
             settings=PairSettings())
    assert json.loads(out.read_text())["status"] == "ok"
    table = pairs_table([str(out)])
    assert isinstance(table, pd.DataFrame) and list(table["status"]) == ["ok"]
    assert not (tmp_path / "pair" / "p0000000000000001_mask.nii.gz").exists()


def _dicom_mask_sidecar(tmp: Path, rois: dict) -> str:
    write_json(tmp / "dm.json", {"series_key": "s0000000000000002", "status": "ok",
                                 "kind": "rtstruct", "rois": rois})
    return str(tmp / "dm.json")


def test_dicom_mask_pair_reads_its_roi_file(tmp_path, image) -> None:
    roi = _mask(value=3)
    write_nifti(tmp_path / "dm_3.nii.gz", roi)
    side = _dicom_mask_sidecar(tmp_path, {
        "3": {"status": "ok", "nifti": "dm_3.nii.gz", "voxel_hash": voxel_hash(roi),
              "qc": {"open-contours-skipped": 2}},
        "4": {"status": "failed:roi-outside-image", "error": "ROI 4: contour 2 outside"}})
    plan = {**_plan(3), "pairing_reason": "frame-of-reference", "roi_source": "gtv 1"}
    rec = pair_one(plan, _sidecar(tmp_path, "img", "image", image), side, PairSettings(),
                   tmp_path / "r.nii.gz")
    assert rec["status"] == "ok" and rec["mask"].endswith("dm_3.nii.gz") and rec["n_voxels"] == 12
    assert (rec["pairing_reason"], rec["roi_source"]) == ("frame-of-reference", "gtv 1")
    assert rec["mask_qc"] == "open-contours-skipped=2"
    failed = pair_one(_plan(4), _sidecar(tmp_path, "img", "image", image), side, PairSettings(),
                      tmp_path / "r.nii.gz")
    assert failed["status"] == "failed:roi-outside-image" and "outside" in failed["error"]
    absent = pair_one(_plan(5), _sidecar(tmp_path, "img", "image", image), side,
                      PairSettings(), tmp_path / "r.nii.gz")
    assert absent["status"] == "failed:label-absent"


def test_ambiguous_plan_names_candidates_and_roi_names_are_counted(tmp_path) -> None:
    plan = {**_plan(status="failed:ambiguous-reference"), "image_key": "",
            "candidates": "s00000000000000aa,s00000000000000bb",
            "pairing_reason": "common-folder"}
    rec = pair_one(plan, None, None, PairSettings(), tmp_path / "r.nii.gz")
    assert rec["status"] == "failed:ambiguous-reference"
    assert "s00000000000000aa,s00000000000000bb" in rec["error"]
    write_json(tmp_path / "p.json", rec)
    pd.DataFrame([{"case_id": "c1", "mask_key": "s1", "label": 1, "roi_source": "gtv",
                   "roi": "gtv", "match": "unmapped", "status": "ok"}]).to_csv(
        tmp_path / "rois.tsv", sep="\t", index=False)
    run_pair_table(pair_jsons=[str(tmp_path / "p.json")], out_tsv=str(tmp_path / "pairs.tsv"),
                   rois_tsv=str(tmp_path / "rois.tsv"),
                   roi_names_tsv=str(tmp_path / "roi_names.tsv"))
    table = pd.read_csv(tmp_path / "pairs.tsv", sep="\t", keep_default_na=False)
    assert table["pairing_reason"].tolist() == ["common-folder"]
    names = pd.read_csv(tmp_path / "roi_names.tsv", sep="\t")
    assert names.to_dict("records") == [{"roi_source": "gtv", "match": "unmapped", "roi": "gtv",
                                         "count": 1, "n_cases": 1}]
