"""Crawl stage: DICOM tree + cohort sheet -> manifest, pair plan, private source lists."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from mask_fixtures import PATIENT as MASK_PATIENT
from mask_fixtures import STUDY as MASK_STUDY
from mask_fixtures import index_points, square, write_ct

from radflow.crawl import crawl, read_sheet, run_crawl
from radflow.demo.synthetic import Patient, Study, derived_uid, write_series, write_text_report
from radflow.demo.synthetic_masks import ContourSpec, RoiSpec, write_rtstruct
from radflow.errors import ConfigError
from radflow.io.nifti import write_nifti
from radflow.keys import case_id, series_key
from radflow.settings import CrawlSettings, RoiSettings

KEY = b"0123456789abcdef0123456789abcdef"
PATIENT = Patient("PID-7", "Doe^Jane")
STUDY = Study(derived_uid("study"), derived_uid("for"))


def _series(folder, uid, n=4, **kw):
    stored = np.full((n, 6, 5), 1000, np.int16)
    stored[0, 0, 0] = zlib.crc32(str(uid).encode()) % 1000  # else: re-exported copies
    return write_series(folder, stored, patient=PATIENT, study=STUDY, series_uid=uid, **kw)


def _mask(path, shape=(4, 6, 5)):
    arr = np.zeros(shape, np.uint8)
    arr[1:3, 2:4, 1:3] = 1
    write_nifti(path, sitk.GetImageFromArray(arr))
    return path


def _sheet(path, rows, sep="\t"):
    pd.DataFrame(rows).to_csv(path, sep=sep, index=False)
    return path


def test_dicom_tree_lists_everything(tmp_path) -> None:
    root = tmp_path / "dicom"
    _series(root / "a", derived_uid("s1"))
    _series(root / "a", derived_uid("s2"), series_number=2,  # two series in one folder
            file_names=[f"B{k}.dcm" for k in range(4)])
    write_text_report(root / "a", patient=PATIENT, study=STUDY, series_uid=derived_uid("sr"))
    (root / "junk.dcm").write_bytes(b"\0" * 10)
    result = crawl(root, None, KEY, CrawlSettings())
    s = result.series
    assert len(s) == 4
    assert sorted(s["status"]) == ["excluded:non-image-sr", "failed:not-dicom", "ok", "ok"]
    ok = s[s["status"] == "ok"]
    assert set(ok["case_id"]) == {case_id(KEY, "PID-7")}
    assert (ok["n_instances"] == 4).all() and (ok["slices"] == 4).all()
    assert result.pairs.empty
    explicit = [src.files for src in result.sources.values() if src.row["status"] == "ok"]
    assert all(len(files) == 4 for files in explicit) and explicit[0] != explicit[1]


def test_sheet_with_series_uid_and_nifti_mask(tmp_path) -> None:
    uid = derived_uid("s1")
    _series(tmp_path / "dicom" / "x", uid)
    _mask(tmp_path / "m.nii.gz")
    sheet = _sheet(tmp_path / "sheet.tsv", [
        {"subject": "PID-7", "image": f"series:{uid}", "mask": "m.nii.gz", "label": 1,
         "roi": "GTV"},
        {"subject": "PID-8", "image": f"series:{uid}", "mask": "m.nii.gz", "label": 1,
         "roi": "GTV"},
        {"subject": "PID-7", "image": "series:1.2.3.4", "mask": "missing.nii.gz", "label": 2,
         "roi": ""},
    ])
    result = crawl(tmp_path / "dicom", sheet, KEY, CrawlSettings())
    pairs = result.pairs.set_index("sheet_row")
    assert pairs.loc[1, "status"] == "ok" and pairs.loc[1, "roi"] == "GTV"
    assert pairs.loc[2, "status"] == "failed:subject-mismatch"
    assert pairs.loc[3, "status"] == "failed:image-series-not-found"
    assert pairs.loc[3, "roi"] == "label-2"
    assert pairs.loc[3, "mask_status"] == "failed:missing-file"
    assert pairs["pair_id"].str.fullmatch(r"p[0-9a-f]{16}").all()


def test_nifti_only_cohort_and_csv_sheet(tmp_path) -> None:
    img = sitk.GetImageFromArray(np.zeros((4, 6, 5), np.int16))
    write_nifti(tmp_path / "img.nii.gz", img)
    sitk.WriteImage(img, str(tmp_path / "img.nrrd"))
    _mask(tmp_path / "m.nii.gz")
    sheet = _sheet(tmp_path / "sheet.csv", [
        {"subject": "A", "image": "img.nii.gz", "mask": "m.nii.gz"},
        {"subject": "B", "image": "img.nrrd", "mask": "m.nii.gz"},
    ], sep=",")
    result = crawl(None, sheet, KEY, CrawlSettings())
    assert (result.pairs["status"] == "ok").all()
    assert list(result.pairs["label"]) == [1, 1]
    kinds = {src.kind for src in result.sources.values()}
    assert kinds == {"image-file"}
    assert set(result.series["role"]) == {"image", "mask"}
    # sizes from the headers (the Snakefile's resource model reads them from series.tsv)
    img.SetSpacing((0.5, 0.75, 2.5))
    write_nifti(tmp_path / "img.nii.gz", img)
    series = crawl(None, sheet, KEY, CrawlSettings()).series
    images = series[series["role"] == "image"]
    assert (list(images["cols"]), list(images["rows"]), list(images["slices"])) == (
        [5, 5], [6, 6], [4, 4])
    nifti = series[(series["role"] == "image") & (series["spacing_x"] == 0.5)]
    assert len(nifti) == 1 and (nifti["spacing_y"].item(), nifti["spacing_z"].item()) == (
        0.75, 2.5)


def test_sheet_folder_must_hold_exactly_one_series(tmp_path) -> None:
    _series(tmp_path / "one", derived_uid("s1"))
    _series(tmp_path / "two", derived_uid("s2"))
    _series(tmp_path / "two", derived_uid("s3"), file_names=[f"B{k}.dcm" for k in range(4)])
    _mask(tmp_path / "m.nii.gz")
    sheet = _sheet(tmp_path / "sheet.tsv", [
        {"subject": "PID-7", "image": "one", "mask": "m.nii.gz"},
        {"subject": "PID-7", "image": "two", "mask": "m.nii.gz"},
    ])
    pairs = crawl(None, sheet, KEY, CrawlSettings()).pairs.set_index("sheet_row")
    assert pairs.loc[1, "status"] == "ok"
    assert pairs.loc[2, "status"] == "failed:image-ambiguous-series-folder"


@pytest.mark.parametrize("rows, message", [
    ([{"subject": "A", "image": "x"}], "'mask' is a required property"),
    ([{"subject": "A", "image": "x", "mask": "m", "label": "one"}], "label must be an integer"),
    ([{"subject": "A", "image": "x", "mask": "m", "label": 0}], "column label"),
    ([{"subject": "A", "image": "x", "mask": "m", "colour": "red"}], "colour"),
])
def test_sheet_errors_name_row_and_column(tmp_path, rows, message) -> None:
    sheet = _sheet(tmp_path / "sheet.tsv", rows)
    with pytest.raises(ConfigError, match=message) as info:
        read_sheet(sheet)
    assert "row 1" in str(info.value)


def test_run_crawl_writes_private_sources_and_changed_files_only(tmp_path) -> None:
    uid = derived_uid("s1")
    _series(tmp_path / "Doe_Jane", uid)
    _mask(tmp_path / "m.nii.gz")
    sheet = _sheet(tmp_path / "sheet.tsv",
                   [{"subject": "PID-7", "image": f"series:{uid}", "mask": "m.nii.gz"}])
    out = tmp_path / "results"
    kw = dict(dicom_root=str(tmp_path / "Doe_Jane"), sheet=str(sheet),
              key_file=str(tmp_path / "key"), settings=CrawlSettings(),
              series_tsv=str(out / "series.tsv"), pair_plan_tsv=str(out / "pair_plan.tsv"),
              sources_dir=str(tmp_path / "private" / "sources"))
    run_crawl(**kw)
    plans = list((out / "pairs").glob("p*.json"))
    assert len(plans) == 1
    sources = [json.loads(p.read_text()) for p in (tmp_path / "private" / "sources").iterdir()]
    assert any("Doe_Jane" in f for s in sources for f in s["files"])
    for path in out.rglob("*"):
        if path.is_file():
            assert "Doe" not in path.read_text() and "PID-7" not in path.read_text()
    mtime = plans[0].stat().st_mtime_ns
    run_crawl(**kw)
    assert plans[0].stat().st_mtime_ns == mtime, "unchanged plan must keep its mtime"


# --- DICOM masks (RTSTRUCT / SEG) found by the crawl -----------------------------------------

def _rtstruct(path, series, *, series_ref=None, contour_uid=None, names=("GTV_1",),
              patient=None):
    rois = [RoiSpec(k + 1, name, (ContourSpec(
        index_points(series.grid, square(1.5, 1.5, 4.5, 4.5 + k), 2.0),
        image_uid=series.sop_uids[2] if contour_uid is None else contour_uid),))
        for k, name in enumerate(names)]
    return write_rtstruct(path, patient=patient or MASK_PATIENT, study=MASK_STUDY,
                          series_uid=str(derived_uid("rs", str(path))), rois=rois,
                          image_series_uid=series.uid if series_ref is None else series_ref,
                          image_uids=series.sop_uids if series_ref is None else ())


def test_rtstruct_pairs_by_reference_and_fallbacks(tmp_path) -> None:
    root = tmp_path / "dicom"
    ct = write_ct(root / "study" / "ct", "ct")
    _rtstruct(root / "study" / "rs_ok" / "rs.dcm", ct)
    _rtstruct(root / "study" / "rs_uids" / "rs.dcm", ct, series_ref="9.9.9", contour_uid="")
    _rtstruct(root / "study" / "rs_inst" / "rs.dcm", ct, series_ref="9.9.8")
    result = crawl(root, None, KEY, CrawlSettings())
    reasons = sorted(result.pairs["pairing_reason"])
    assert reasons == ["frame-of-reference", "referenced-instances", "referenced-series"]
    assert set(result.pairs["image_key"]) == {series_key(KEY, ct.uid)}
    assert (result.pairs["status"] == "ok").all()
    masks = result.series[result.series["role"] == "mask"]
    assert len(masks) == 3 and set(masks["status"]) == {"ok"}
    assert set(masks["modality"]) == {"RTSTRUCT"}


def test_two_series_in_one_frame_of_reference_are_told_apart_by_folder(tmp_path) -> None:
    root = tmp_path / "dicom"
    near = write_ct(root / "p" / "a" / "ct", "near")
    far = write_ct(root / "p" / "b" / "ct", "far", origin=(-4.0, 3.0, 10.0))
    _rtstruct(root / "p" / "a" / "rs" / "rs.dcm", near, series_ref="9.9", contour_uid="")
    _rtstruct(root / "p" / "rs.dcm", far, series_ref="9.8", contour_uid="")
    result = crawl(root, None, KEY, CrawlSettings())
    by_status = {p["status"]: p for p in result.pairs.to_dict("records")}
    assert set(by_status) == {"ok", "failed:ambiguous-reference"}
    ok, ambiguous = by_status["ok"], by_status["failed:ambiguous-reference"]
    assert ok["image_key"] == series_key(KEY, near.uid)
    assert ok["pairing_reason"] == ambiguous["pairing_reason"] == "common-folder"
    assert ambiguous["image_key"] == ""
    assert ambiguous["candidates"] == ",".join(sorted([series_key(KEY, near.uid),
                                                       series_key(KEY, far.uid)]))


def test_broken_contour_references_and_patients_without_images(tmp_path) -> None:
    root = tmp_path / "dicom"
    ct = write_ct(root / "ct", "ct")
    _rtstruct(root / "rs" / "rs.dcm", ct, contour_uid="1.2.3.4.5.6.7.8")
    _rtstruct(root / "other" / "rs.dcm", ct, patient=Patient("PID-OTHER", "Other^Person"))
    result = crawl(root, None, KEY, CrawlSettings())
    statuses = sorted(result.pairs["status"])
    assert statuses == ["failed:missing-referenced-images", "failed:reference-not-found"]
    assert not result.pairs["pairing_reason"].isna().any()


def test_roi_rules_and_private_mask_sources(tmp_path) -> None:
    root = tmp_path / "Doe_Jane"
    ct = write_ct(root / "ct", "ct")
    path = _rtstruct(root / "rs" / "rs.dcm", ct, names=("GTV primary", "z_help", "Liver"))
    (root / "rs" / "copy.dcm").write_bytes(path.read_bytes())  # an identical copy: read once
    rules = RoiSettings(exclude=("z_.*",), map={"GTV": "gtv.*"}, contours_outside_image="skip")
    out = tmp_path / "results"
    run_crawl(dicom_root=str(root), sheet="", key_file=str(tmp_path / "key"),
              settings=CrawlSettings(), series_tsv=str(out / "series.tsv"),
              pair_plan_tsv=str(out / "pair_plan.tsv"), sources_dir=str(tmp_path / "private"),
              rois_tsv=str(out / "rois.tsv"), rois=rules)
    rois = pd.read_csv(out / "rois.tsv", sep="\t")
    assert list(zip(rois["roi_source"], rois["roi"].fillna(""), rois["status"],
                    strict=True)) == [("GTV primary", "GTV", "ok"),
                                      ("z_help", "", "excluded:roi-excluded"),
                                      ("Liver", "Liver", "ok")]
    pairs = pd.read_csv(out / "pair_plan.tsv", sep="\t", keep_default_na=False)
    assert sorted(pairs["roi"]) == ["GTV", "Liver"] and set(pairs["sheet_row"]) == {""}
    assert sorted(pairs["label"]) == [1, 3]
    mask_key = pairs["mask_key"].iloc[0]
    source = json.loads((tmp_path / "private" / f"{mask_key}.json").read_text())
    assert source["kind"] == "rtstruct" and len(source["files"]) == 2
    assert source["mask"] == {"image_key": pairs["image_key"].iloc[0], "labels": [1, 3],
                              "fractional_threshold": 0.5, "contours_outside_image": "skip"}
    plan = json.loads((out / "pairs" / f"{pairs['pair_id'].iloc[0]}.json").read_text())
    assert plan["sheet_row"] is None and plan["pairing_reason"] == "referenced-series"
    for p in out.rglob("*"):
        if p.is_file():
            assert "Doe_Jane" not in p.read_text() and "Planted" not in p.read_text()


def test_plan_converts_dicom_masks_only_with_their_image(tmp_path) -> None:
    from radflow.plan import convert_inputs, read_plan

    series = pd.DataFrame([
        {"case_id": "c1", "series_key": "sI", "source": "dicom", "role": "image", "status": "ok"},
        {"case_id": "c1", "series_key": "sM", "source": "dicom", "role": "mask", "status": "ok"},
        {"case_id": "c1", "series_key": "sBad", "source": "dicom", "role": "image",
         "status": "failed:missing-slice"},
        {"case_id": "c1", "series_key": "sN", "source": "dicom", "role": "mask", "status": "ok"},
        {"case_id": "c1", "series_key": "sX", "source": "dicom", "role": "image", "status": "ok"},
    ])
    pairs = pd.DataFrame([
        {"pair_id": "p1", "case_id": "c1", "image_key": "sI", "mask_key": "sM", "status": "ok",
         "image_status": "ok", "mask_status": "ok"},
        {"pair_id": "p2", "case_id": "c1", "image_key": "sBad", "mask_key": "sN",
         "status": "failed:image-missing-slice", "image_status": "failed:missing-slice",
         "mask_status": "ok"},
    ])
    series.to_csv(tmp_path / "series.tsv", sep="\t", index=False)
    pairs.to_csv(tmp_path / "pair_plan.tsv", sep="\t", index=False)
    plan = read_plan(str(tmp_path / "series.tsv"), str(tmp_path / "pair_plan.tsv"), "paired")
    assert dict(zip(plan.convert["series_key"], plan.convert["image_key"], strict=True)) == {
        "sI": "", "sM": "sI"}  # sN: its image failed, so it has no grid to be built on
    assert convert_inputs(plan, "R", "P", "sM") == {"source": "P/sources/sM.json",
                                                    "image": "R/convert/c1/sI.json"}
    assert convert_inputs(plan, "R", "P", "sI") == {"source": "P/sources/sI.json"}
    every = read_plan(str(tmp_path / "series.tsv"), str(tmp_path / "pair_plan.tsv"), "all")
    assert set(every.convert["series_key"]) == {"sI", "sM", "sX"}
