"""Crawl stage: DICOM tree + cohort sheet -> manifest, pair plan, private source lists."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radflow.crawl import crawl, read_sheet, run_crawl
from radflow.dicom.synthetic import Patient, Study, derived_uid, write_series, write_text_report
from radflow.errors import ConfigError
from radflow.io.nifti import write_nifti
from radflow.keys import case_id
from radflow.settings import CrawlSettings

KEY = b"0123456789abcdef0123456789abcdef"
PATIENT = Patient("PID-7", "Doe^Jane")
STUDY = Study(derived_uid("study"), derived_uid("for"))


def _series(folder, uid, n=4, **kw):
    stored = np.full((n, 6, 5), 1000, np.int16)
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
              series_tsv=str(out / "series.tsv"), pairs_tsv=str(out / "pairs.tsv"),
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
