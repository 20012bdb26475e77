"""The ``deidentify`` workflow stage: planted PHI never reaches results or logs, the features on
the de-identified tree equal those on the source, and the ``deidentify`` target runs alone.

The cohort is the demo (4 patients: sheet NIfTI masks, an RTSTRUCT, a SEG, an SR) plus the
planted-PHI patients of ``test_deid_dataset`` (names in Latin and Korean, ISO 2022 IR 149, UTF-8
and ISO 8859-1; IDs, dates, accession numbers, institution, physicians, operators, serials,
comments, a private tag with a name; PHI in folder and file names).
"""

from __future__ import annotations

import ast
import json
import re
import stat
from collections import Counter

import pandas as pd
import pydicom
import pytest
import yaml
from test_deid_dataset import PATIENTS, planted_terms, write_planted_series
from workflow_helpers import encodings_of, find_planted, job_counts, snakemake

from radflow.crawl import Deidentified, crawl, patient_case_id
from radflow.deidentify import deid_settings
from radflow.deidentify.dataset import keyword_of
from radflow.demo import make_demo_cohort
from radflow.errors import ConfigError
from radflow.keys import case_id, load_key
from radflow.settings import CrawlSettings

SMALL_PARAMS = {"setting": {"binWidth": 25, "voxelArrayShift": 1000},
                "imageType": {"Original": {}},
                "featureClass": {"firstorder": None, "shape": None}}
ACTIONS = {"X", "Z", "D", "K", "C", "U", "K-unlisted"}


def _planted_values(demo) -> set[str]:
    values = set(demo.planted_phi)
    for p in PATIENTS:
        values |= set(planted_terms(p).values())
    return values


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same cohort run with deidentify=true and =false (separate folders, one key)."""
    base = tmp_path_factory.mktemp("deid_run")
    demo = make_demo_cohort(base / "demo", n_patients=4)
    for p in PATIENTS:
        write_planted_series(demo.dicom_root / "archive", p, n=3)
    params = base / "params.yaml"
    params.write_text(yaml.safe_dump(SMALL_PARAMS))
    cfg = base / "cohort.yaml"
    cfg.write_text(yaml.safe_dump({
        "dicom_root": str(demo.dicom_root), "sheet": str(demo.sheet),
        "clinical": str(demo.clinical), "clinical_dictionary": str(demo.clinical_dictionary),
        "key_file": str(base / "secret" / "key"),
        "extract": {"params": str(params), "image_types": []}}))
    work = {}
    for cohort, flag in (("deid", "true"), ("src", "false")):
        work[cohort] = base / f"work_{cohort}"
        work[cohort].mkdir()
        args = ["--cores", "2", "--configfile", str(cfg), "--config", f"cohort={cohort}",
                f"deidentify={flag}"]
        snakemake(work[cohort], args)
    work["args"] = ["--cores", "2", "--configfile", str(cfg), "--config", "cohort=deid",
                    "deidentify=true"]
    # the Snakemake report of the run (rules, job statistics, file names): scanned below too
    snakemake(work["deid"], [*work["args"], "--report", "results/deid/report.html"])
    return base, demo, work


# ------------------------------------------------------------------------- library-level wiring

def test_passthrough_case_id_only_on_a_deidentified_tree() -> None:
    key = b"k" * 32
    assert patient_case_id(key, "c0123456789ab ", Deidentified()) == "c0123456789ab"
    assert patient_case_id(key, "c0123456789ab", None) == case_id(key, "c0123456789ab")
    assert patient_case_id(key, "PID-1", Deidentified()) == case_id(key, "PID-1")


def test_deid_settings_from_config() -> None:
    s = deid_settings({"dates": "remove", "safe_private": [[0x2005, 0x0E, "Philips MR"]]})
    assert s.dates == "remove" and s.safe_private == ((0x2005, 0x0E, "Philips MR"),)
    with pytest.raises(ConfigError):
        deid_settings({"dates": "later"})


def test_sheet_image_folder_outside_dicom_root_is_refused(tmp_path) -> None:
    """Sheet folders on a de-identified tree: tests/test_deid_sheet_folder.py."""
    (tmp_path / "img").mkdir()
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("subject\timage\tmask\nP1\timg\tm.nii.gz\n")
    deidentified = Deidentified(source_root=str(tmp_path / "dicom"),
                                uid_map=str(tmp_path / "deid" / "uid_map.tsv"))
    with pytest.raises(ConfigError, match=r"sheet\.tsv, row 1: the image folder is not inside "
                                          r"dicom_root") as info:
        crawl(None, sheet, b"k" * 32, CrawlSettings(), deidentified=deidentified)
    assert "img" not in str(info.value).replace("image", "")


def test_planted_scan_finds_dates_but_not_digits_inside_a_uid(tmp_path) -> None:
    """The scan's one exception: an all-digit value inside a longer number (a keyed UID)."""
    (tmp_path / "uid.dcm").write_bytes(b"UI,\x002.25.148162213964963725354083635151198211304")
    (tmp_path / "da.dcm").write_bytes(b"\x10\x00\x30\x00DA\x08\x0019821130")
    (tmp_path / "dt.txt").write_bytes(b"AcquisitionDateTime=19821130093000")
    (tmp_path / "text.txt").write_bytes(b"born 19821130")
    hits = find_planted(tmp_path, ["19821130"])
    assert hits == ["da.dcm: '19821130'", "dt.txt: '19821130'", "text.txt: '19821130'"]


# ------------------------------------------------------------------------------- workflow runs

@pytest.mark.slow
def test_no_planted_value_in_results_or_logs(runs) -> None:
    _, demo, work = runs
    planted = _planted_values(demo)
    searchable = {v for v in planted if len(v) >= 3 and encodings_of(v)}
    # control: the scan finds the planted values in the source cohort (every one of the
    # planted-PHI patients; the demo lists some values of profiles it did not generate)
    found = {ast.literal_eval(h.rsplit(": ", 1)[1]) for h in find_planted(demo.root, planted)}
    patients = {v for p in PATIENTS for v in planted_terms(p).values()}
    assert patients & searchable <= found and len(found - patients) >= 10
    res = work["deid"] / "results" / "deid"
    assert (res / "report.html").stat().st_size > 10_000  # the report was made, and is scanned
    hits = find_planted(work["deid"], planted, skip=[".radflow"])
    # actions.tsv's keyword column holds dictionary keywords ("PhysicianName" contains "anna"):
    # it is checked below to hold nothing else; every other hit is a leak
    assert [h for h in hits if not h.startswith("results/deid/deid/actions.tsv: ")] == []
    actions = pd.read_csv(res / "deid" / "actions.tsv", sep="\t", dtype=str,
                          keep_default_na=False)
    assert (actions["keyword"] == actions["tag"].map(keyword_of)).all()  # a function of the tag
    rest = actions[["tag", "action", "count"]].to_csv(sep="\t").encode()
    assert not any(f.lower() in rest.lower() for v in searchable for f in encodings_of(v))
    # the stage ran, the downstream stages read the de-identified tree
    deid_series = pd.read_csv(res / "deid" / "series.tsv", sep="\t", dtype=str)
    assert set(deid_series["status"]) == {"ok"} and len(deid_series) >= len(PATIENTS) + 4
    sources = list((work["deid"] / ".radflow" / "private" / "deid" / "sources").glob("*.json"))
    records = [json.loads(s.read_text()) for s in sources]
    assert sum(r["kind"] != "image-file" for r in records) >= len(PATIENTS) + 4
    assert all(f.startswith("results/deid/deid/c") for r in records if r["kind"] != "image-file"
               for f in r["files"])
    series = pd.read_csv(res / "crawl" / "series.tsv", sep="\t", dtype=str,
                         keep_default_na=False)
    assert "excluded:non-dicom-file" not in set(series["status"])  # actions/series.tsv skipped
    pairs = pd.read_csv(res / "pair" / "pairs.tsv", sep="\t", dtype=str)
    assert set(pairs["status"]) == {"ok"}
    assert {"referenced-series", "sheet"} <= set(pairs["pairing_reason"])
    # the pseudonym table is private
    table = work["deid"] / ".radflow" / "private" / "deid" / "pseudonyms.tsv"
    assert stat.S_IMODE(table.stat().st_mode) == 0o600
    ids = set(pd.read_csv(table, sep="\t", dtype=str)["source_patient_id"])
    assert {p.patient_id for p in PATIENTS} <= ids
    assert not list((work["deid"] / "results").rglob("pseudonyms*"))
    # a second run has nothing to do
    assert job_counts(snakemake(work["deid"], ["-n", *work["args"]]).stdout) == {}


@pytest.mark.slow
def test_same_features_on_the_deidentified_tree(runs) -> None:
    """Same values per (case_id, roi, label, feature). image_key and pair_id differ, and
    mask_key of DICOM masks (keyed hashes of the new UIDs); mask_key of a sheet's NIfTI mask and
    case_id do not (the file is the same; PatientID = case_id passes through)."""
    _, _, work = runs
    src, deid = (pd.read_parquet(work[c] / "results" / c / "merge" / "features.parquet")
                 for c in ("src", "deid"))
    keys = ["case_id", "roi", "label", "image_type", "feature_class", "feature"]
    assert len(src) == len(deid) > 0 and not src.duplicated(keys).any()
    both = src.merge(deid, on=keys, suffixes=("_src", "_deid"), validate="one_to_one")
    assert len(both) == len(src)
    # NaN equals NaN (a fractal dimension of a ROI too small for two box sizes)
    assert ((both["value_src"] == both["value_deid"])
            | (both["value_src"].isna() & both["value_deid"].isna())).all()
    assert (both["image_hash_src"] == both["image_hash_deid"]).all()  # identical voxels
    assert (both["mask_hash_src"] == both["mask_hash_deid"]).all()
    for col in ("image_key", "pair_id"):
        assert not set(both[f"{col}_src"]) & set(both[f"{col}_deid"]), col
    same_mask = both["mask_key_src"] == both["mask_key_deid"]
    sheet_masks = set(pd.read_csv(work["src"] / "results" / "src" / "pair" / "pairs.tsv",
                                  sep="\t", dtype=str).query("pairing_reason == 'sheet'")
                      ["mask_key"])
    assert set(both.loc[same_mask, "mask_key_src"]) == sheet_masks and (~same_mask).any()
    src_ds, deid_ds = (pd.read_csv(work[c] / "results" / c / "merge" / "dataset.csv")
                       for c in ("src", "deid"))
    assert "age" in deid_ds.columns and deid_ds["age"].notna().all()  # the clinical join
    assert sorted(src_ds["case_id"]) == sorted(deid_ds["case_id"])
    # clinical dates: the same day offsets although the DICOM dates moved (shift-invariant)
    offsets = [ds.groupby("case_id")["diagnosis_date_days_from_ct_date"].first()
               for ds in (src_ds, deid_ds)]
    pd.testing.assert_series_equal(*offsets)
    assert offsets[0].notna().all()


@pytest.mark.slow
def test_deidentify_target_alone(tmp_path) -> None:
    source = tmp_path / "archive"
    for p in PATIENTS:
        write_planted_series(source, p, n=3)
    key_file = tmp_path / "secret" / "key"
    work = tmp_path / "work"
    work.mkdir()
    run = snakemake(work, ["deidentify", "--cores", "2", "--config", "cohort=x",
                           f"dicom_root={source}", f"key_file={key_file}"])
    jobs = Counter(re.findall(r"^Finished jobid: \d+ \(Rule: (\w+)\)", run.stdout + run.stderr,
                              re.M))
    assert jobs == {"deid_crawl": 1, "deidentify_one": len(PATIENTS), "deidentify": 1}
    res = work / "results" / "x"
    assert not (res / "crawl").exists() and not (res / "merge").exists()
    actions = pd.read_csv(res / "deid" / "actions.tsv", sep="\t", dtype=str,
                          keep_default_na=False)
    assert list(actions.columns) == ["tag", "keyword", "action", "count"]
    assert actions["tag"].str.fullmatch(r"\([0-9A-Fa-fx]{4},[0-9A-Fa-fx]{4}\)").all()
    assert set(actions["action"]) <= ACTIONS and actions["count"].astype(int).gt(0).all()
    assert {"PatientName", "PatientID", "PatientBirthDate", "AccessionNumber"} <= set(
        actions["keyword"])
    key = load_key(key_file)
    table = pd.read_csv(work / ".radflow" / "private" / "x" / "pseudonyms.tsv", sep="\t",
                        dtype=str)
    assert dict(zip(table["source_patient_id"], table["case_id"], strict=True)) == {
        p.patient_id: case_id(key, p.patient_id) for p in PATIENTS}
    files = sorted((res / "deid").rglob("*.dcm"))
    assert len(files) == 3 * len(PATIENTS)
    for f in files:
        ds = pydicom.dcmread(f)
        assert re.fullmatch(r"c[0-9a-f]{12}", ds.PatientID) and ds.PatientName == ds.PatientID
        assert ds.PatientIdentityRemoved == "YES"
        assert f.relative_to(res / "deid").parts[0] == ds.PatientID
    planted = set().union(*(planted_terms(p).values() for p in PATIENTS))
    hits = find_planted(work, planted, skip=[".radflow", "results/x/deid/actions.tsv"])
    assert hits == []


def test_planted_scan_reads_volume_headers_not_voxels(tmp_path) -> None:
    """A name in a NIfTI/MetaImage header or a gzip file name is found; the same bytes as int16
    voxel values (CT numbers 66, 97, 101, 107 are "Baek" in UTF-16) are not text and not a hit."""
    import gzip as gz

    import nibabel as nib
    import numpy as np

    voxels = np.array([[[66, 97, 101, 107]]], dtype=np.int16)
    img = nib.Nifti1Image(voxels, np.eye(4))
    (tmp_path / "clean.nii.gz").write_bytes(gz.compress(img.to_bytes(), mtime=0))
    img.header["descrip"] = b"Baek"
    (tmp_path / "descrip.nii").write_bytes(img.to_bytes())
    with gz.GzipFile(tmp_path / "named.nii.gz", "wb", mtime=0) as fh:  # FNAME: named.nii
        fh.write(nib.Nifti1Image(voxels * 0, np.eye(4)).to_bytes())
    (tmp_path / "header.mha").write_bytes(b"ObjectType = Image\nComment = Baek\n"
                                          b"ElementDataFile = LOCAL\n" + voxels.tobytes())
    (tmp_path / "voxels.mha").write_bytes(b"ObjectType = Image\nElementDataFile = LOCAL\n"
                                          + voxels.tobytes())
    assert find_planted(tmp_path, ["Baek", "named"]) == [
        "descrip.nii: 'Baek'", "header.mha: 'Baek'", "named.nii.gz: 'named'",
        "path named.nii.gz: 'named'"]
