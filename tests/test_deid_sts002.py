"""The real patient STS_002 (CT, T1 MR, PET, one RTSTRUCT each) through the workflow with
``deidentify=true``: it de-identifies, pairs and converts as on the source tree.

The workflow runs through Snakemake up to the ``pair`` target (de-identification, crawl of the
de-identified tree, conversion, pairing; extraction adds nothing here). The source-tree reference
is computed with the library functions, as ``test_rtstruct.py`` does. MR and PET are DERIVED, so
``crawl.include_derived: true``. The RTSTRUCTs reference no image by UID: pairing falls back to
the common folder, which the de-identified layout must preserve.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
import yaml
from mask_fixtures import convert_and_pair, dice_on_same_grid
from workflow_helpers import find_planted, job_counts, snakemake

from radflow.crawl import Deidentified, crawl
from radflow.dicom.headers import quiet_pydicom
from radflow.io.nifti import read_image
from radflow.keys import load_key
from radflow.settings import CrawlSettings

pytestmark = [pytest.mark.testdata, pytest.mark.slow]

FOLDER = "sts_002_ct_mr_pet_rtstruct"
MODALITIES = {"CT": "CT", "MR_T1": "MR", "PET": "PT"}
N_VOXELS = {"CT": 17090, "MR_T1": 17090, "PET": 555}
COHORT = "sts"


def _source_reference(root: Path, key: bytes, out: Path) -> dict[str, dict]:
    """Crawl, convert and pair the source tree with the library (roi -> pair record)."""
    result = crawl(root, None, key, CrawlSettings(include_derived=True))
    modality = dict(zip(result.series.series_key, result.series.modality, strict=True))
    records = convert_and_pair(result, out)
    by_roi = {p["roi"]: p["image_key"] for p in result.pairs.to_dict("records")}
    return {roi: {**rec, "modality": modality[by_roi[roi]]} for roi, rec in records.items()}


def _identifying_values(root: Path) -> dict[str, set[str]]:
    """What the source headers hold that must not reach results/: patient name and ID, birth
    date, accession number, study ID; also every date (they are shifted) and every instance,
    series, study and frame of reference UID (they are replaced)."""
    values: dict[str, set[str]] = {"patient": set(), "dates": set(), "uids": set()}
    with quiet_pydicom():  # StudyID is longer than SH allows (values are converted lazily)
        for f in sorted(root.rglob("*.dcm")):
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            for kw in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber",
                       "StudyID", "OtherPatientIDs", "InstitutionName"):
                value = str(ds.get(kw, "") or "").strip()
                if value:
                    values["patient"].add(value)
            for elem in ds.iterall():
                if elem.VR in ("DA", "DT") and elem.value:
                    values["dates"].add(str(elem.value).strip())
                elif elem.VR == "UI" and elem.value and not str(elem.value).startswith(
                        "1.2.840.10008."):  # not a standard SOP class / transfer syntax UID
                    values["uids"].add(str(elem.value))
    return values


@pytest.fixture(scope="module")
def run(testdata, tmp_path_factory):
    """The workflow with deidentify=true up to ``pair``, and the source-tree reference."""
    root = testdata / FOLDER
    base = tmp_path_factory.mktemp("deid_real")
    cfg = base / "cohort.yaml"
    cfg.write_text(yaml.safe_dump({
        "dicom_root": str(root), "key_file": str(base / "secret" / "key"), "cohort": COHORT,
        "deidentify": True, "crawl": {"include_derived": True}}))
    work = base / "work"
    work.mkdir()
    args = ["pair", "--cores", "2", "--configfile", str(cfg)]
    snakemake(work, args)
    key = load_key(base / "secret" / "key")
    reference = _source_reference(root, key, base / "source_ref")
    return root, work, args, reference


def _results(work: Path) -> Path:
    return work / "results" / COHORT


def _deid_pairs(work: Path) -> dict[str, dict]:
    res = _results(work)
    series = pd.read_csv(res / "crawl" / "series.tsv", sep="\t", dtype=str,
                         keep_default_na=False)
    modality = dict(zip(series.series_key, series.modality, strict=True))
    records = {}
    for pair_id in pd.read_csv(res / "pair" / "pairs.tsv", sep="\t", dtype=str)["pair_id"]:
        rec = json.loads((res / "pair" / f"{pair_id}.json").read_text("utf-8"))
        records[rec["roi"]] = {**rec, "modality": modality[rec["image_key"]]}
    return records


def test_every_series_is_deidentified_and_converted(run) -> None:
    _, work, args, _ = run
    res = _results(work)
    deid = pd.read_csv(res / "deid" / "series.tsv", sep="\t", dtype=str)
    assert len(deid) == 6 and set(deid["status"]) == {"ok"}  # 3 images + 3 RTSTRUCTs
    series = pd.read_csv(res / "crawl" / "series.tsv", sep="\t", dtype=str)
    assert sorted(series["modality"]) == ["CT", "MR", "PT", "RTSTRUCT", "RTSTRUCT", "RTSTRUCT"]
    assert set(series["status"]) == {"ok"}
    sidecars = [json.loads(p.read_text("utf-8")) for p in (res / "convert").rglob("*.json")]
    assert len(sidecars) == 6 and {s["status"] for s in sidecars} == {"ok"}
    rois = [r for s in sidecars if s.get("kind") == "rtstruct" for r in s["rois"].values()]
    assert len(rois) == 3 and {r["status"] for r in rois} == {"ok"}
    # the workflow read the de-identified tree: every converted file came from it
    for src in (work / ".radflow" / "private" / COHORT / "sources").glob("*.json"):
        files = json.loads(src.read_text("utf-8"))["files"]
        assert all(f.startswith(f"results/{COHORT}/deid/c") for f in files)
    # PatientID and PatientName of the de-identified files are the case key
    case_ids = set(series["case_id"])
    for f in (res / "deid").rglob("*.dcm"):
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        assert {str(ds.PatientID), str(ds.PatientName)} == case_ids
    assert job_counts(snakemake(work, ["-n", *args]).stdout) == {}  # nothing left to do


def test_every_rtstruct_pairs_with_its_own_modality_as_on_the_source(run) -> None:
    _, work, _, reference = run
    pairs = _deid_pairs(work)
    assert sorted(pairs) == sorted(reference) == [f"GTV_Mass_{m}" for m in sorted(MODALITIES)]
    for roi, rec in pairs.items():
        ref = reference[roi]
        assert rec["modality"] == ref["modality"] == MODALITIES[roi.removeprefix("GTV_Mass_")]
        assert rec["pairing_reason"] == ref["pairing_reason"] == "common-folder"
        assert rec["status"] == ref["status"] == "ok"
        # identical voxels of image and mask (hashes of the written NIfTI as read back); the
        # keys differ (keyed hashes of the new UIDs)
        assert rec["image_hash"] == ref["image_hash"] and rec["mask_hash"] == ref["mask_hash"]
        assert rec["image_key"] != ref["image_key"] and rec["pair_id"] != ref["pair_id"]
        assert rec["case_id"] == ref["case_id"]


@pytest.mark.parametrize("modality", sorted(MODALITIES))
def test_masks_are_voxel_identical_and_match_the_reference_niftis(run, modality) -> None:
    root, work, _, reference = run
    roi = f"GTV_Mass_{modality}"
    ours = read_image(work / _deid_pairs(work)[roi]["mask"])
    source = read_image(reference[roi]["mask"])
    assert np.array_equal(sitk.GetArrayViewFromImage(ours), sitk.GetArrayViewFromImage(source))
    assert ours.GetOrigin() == source.GetOrigin() and ours.GetSpacing() == source.GetSpacing()
    assert ours.GetDirection() == source.GetDirection()
    provided = read_image(root / modality / "nifti" / "mask" / "mask.nii.gz")
    assert dice_on_same_grid(ours, provided) == 1.0
    assert int((sitk.GetArrayViewFromImage(ours) > 0).sum()) == N_VOXELS[modality]


def test_no_source_identifying_value_in_any_byte_under_results(run) -> None:
    root, work, _, _ = run
    values = _identifying_values(root)
    assert {"STS_002", "3912173256621705"} <= values["patient"]
    assert "20060128" in values["dates"] and len(values["uids"]) > 100
    # control: the scan finds every value in the source folder
    planted = values["patient"] | values["dates"]
    found = {h.rsplit(": ", 1)[1].strip("'") for h in find_planted(root, planted)}
    assert found == planted
    assert find_planted(_results(work), planted) == []
    assert find_planted(_results(work), values["uids"]) == []
    # the private folder holds the source series descriptions and paths (as documented)
    assert find_planted(work / ".radflow" / "private", ["STS_002"])


def test_sheet_folders_translate_to_the_deidentified_series(run, tmp_path) -> None:
    """A sheet naming the source folders (one image series each, or the whole patient: several)
    gives on the workflow's de-identified tree the pairs it gives on the source tree, through the
    private source records the workflow wrote."""
    root, work, _, _ = run
    key = load_key(work.parent / "secret" / "key")
    subject = "STS_002"
    rows = [{"subject": subject, "image": str(root / m / "dicom" / "image"),
             "mask": str(root / m / "nifti" / "mask" / "mask.nii.gz"), "roi": f"sheet_{m}"}
            for m in sorted(MODALITIES)]
    rows += [{"subject": subject, "image": str(root / "CT" / "dicom"),  # image + RTSTRUCT: one
              "mask": str(root / "CT" / "nifti" / "mask" / "mask.nii.gz"), "roi": "ct_dicom"},
             {"subject": subject, "image": str(root),  # three series: ambiguous
              "mask": str(root / "CT" / "nifti" / "mask" / "mask.nii.gz"), "roi": "all"}]
    sheet = tmp_path / "sheet.tsv"
    pd.DataFrame(rows).to_csv(sheet, sep="\t", index=False)
    settings = CrawlSettings(include_derived=True)
    deidentified = Deidentified(source_root=str(root), uid_map=str(
        work / ".radflow" / "private" / COHORT / "deid" / "uid_map.tsv"))
    deid = crawl(_results(work) / "deid", sheet, key, settings, deidentified=deidentified)
    source = crawl(root, sheet, key, settings)
    cols = ["case_id", "mask_key", "roi", "label", "sheet_row", "image_status", "status"]

    def by_row(result):
        pairs = result.pairs.query("pairing_reason == 'sheet'").set_index("sheet_row",
                                                                           drop=False)
        modality = dict(zip(result.series.series_key, result.series.modality, strict=True))
        return pairs.sort_index(), pairs["image_key"].map(modality).sort_index()

    (d, d_mod), (s_, s_mod) = by_row(deid), by_row(source)
    pd.testing.assert_frame_equal(d[cols], s_[cols])
    assert list(d["status"]) == ["ok"] * 4 + ["failed:image-ambiguous-series-folder"]
    assert d_mod.iloc[:4].tolist() == s_mod.iloc[:4].tolist() == ["CT", "MR", "PT", "CT"]
    # the sheet's CT pair uses the same de-identified CT as the RTSTRUCT's pair
    assert d.iloc[0]["image_key"] == d.iloc[3]["image_key"] == \
        _deid_pairs(work)["GTV_Mass_CT"]["image_key"]
