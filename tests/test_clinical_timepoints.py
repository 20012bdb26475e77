"""Clinical tables with several timepoints per subject (radflow.merge.timepoints; README,
"Clinical data dictionary"): a ``type: timepoint`` column makes the merge join each pair on its
subject and its cohort-sheet timepoint."""

from __future__ import annotations

import pandas as pd
import pytest

from radflow.errors import ConfigError, MergeError
from radflow.io.atomic import write_json, write_parquet, write_tsv
from radflow.keys import case_id
from radflow.merge import ClinicalInput, MergeOutputs, QcOutputs, run_merge, run_qc
from radflow.merge.dictionary import joins_on_timepoint, load_dictionary
from radflow.merge.timepoints import pair_timepoints
from radflow.records.clinical import read_clinical_columns
from radflow.settings import MergeSettings

KEY = b"clinical timepoint test key 32by"
DICTIONARY = """\
columns:
  pid: {type: id, role: identifier}
  visit: {type: timepoint, role: covariate}
  ecog: {type: numeric, role: covariate, min: 0, max: 5}
"""
#: (subject, timepoint or "" for none) of each pair, in pair order p0, p1, ...
PAIRS = (("P-1", "baseline"), ("P-1", "week6"), ("P-2", "baseline"), ("P-2", "week6"))
CLINICAL = {"pid": ["P-1", "P-1", "P-2", "P-2", "P-3"],
            "visit": ["baseline", "week6", "week6", "baseline", "baseline"],
            "ecog": [0, 1, 3, 2, 4]}


def _inputs(tmp_path, clinical: dict, dictionary: str = DICTIONARY,
            pairs: tuple = PAIRS) -> dict:
    """Features of ``pairs``, a cohort sheet with their timepoints, the crawl's pair plan
    (sheet_row), the clinical table and its dictionary."""
    feats, stats, sheet, plan = [], [], [], []
    for i, (pid, visit) in enumerate(pairs):
        f, s = tmp_path / f"p{i}.parquet", tmp_path / f"p{i}.json"
        write_parquet(f, pd.DataFrame({
            "case_id": case_id(KEY, pid), "image_key": f"s{i}", "mask_key": f"m{i}",
            "pair_id": f"p{i}", "roi": "lesion", "label": 1, "image_type": "original",
            "feature_class": "firstorder", "feature": ["Mean"], "ibsi_code": "",
            "value": [10.0 + i], **{c: "x" for c in (
                "radflow_version", "pyradiomics_dist", "pyradiomics_version",
                "simpleitk_version", "numpy_version", "params_hash", "params_set",
                "normalisation", "qc", "image_hash", "mask_hash")}}))
        write_json(s, {"unit": f"p{i}", "n_pairs": 1, "pairs": [{"pair_id": f"p{i}",
                                                                 "status": "ok"}]})
        feats.append(str(f))
        stats.append(str(s))
        sheet.append({"subject": pid, "image": f"img{i}.nii.gz", "mask": f"mask{i}.nii.gz",
                      "timepoint": visit})
        plan.append({"pair_id": f"p{i}", "sheet_row": str(i + 1)})
    write_tsv(tmp_path / "sheet.tsv", pd.DataFrame(sheet))
    write_tsv(tmp_path / "pair_plan.tsv", pd.DataFrame(plan))
    write_tsv(tmp_path / "series.tsv", pd.DataFrame({"status": ["ok"]}))
    write_tsv(tmp_path / "pairs.tsv", pd.DataFrame({"status": ["ok"] * len(pairs)}))
    (tmp_path / "key").write_bytes(KEY)
    pd.DataFrame(clinical).to_csv(tmp_path / "clinical.csv", index=False)
    (tmp_path / "dictionary.yaml").write_text(dictionary)
    out = tmp_path / "out"
    return dict(feature_files=feats, status_files=stats, pairs_tsv=str(tmp_path / "pairs.tsv"),
                series_tsv=str(tmp_path / "series.tsv"), sidecars=[],
                clinical=ClinicalInput(str(tmp_path / "clinical.csv"), "pid", "",
                                       str(tmp_path / "dictionary.yaml"),
                                       pair_plan=str(tmp_path / "pair_plan.tsv"),
                                       cohort_sheet=str(tmp_path / "sheet.tsv")),
                key_file=str(tmp_path / "key"), settings=MergeSettings(max_unmatched_fraction=0),
                out=MergeOutputs(*(str(out / n) for n in (
                    "features.parquet", "features_wide.csv", "dataset.parquet", "dataset.csv",
                    "landmarks.tsv", "curves.parquet", "clinical_columns.tsv"))))


def _report(kw: dict) -> pd.DataFrame:
    out = QcOutputs(*(kw["out"].dataset_csv.replace("dataset.csv", n) for n in (
        "clinical_join_report.tsv", "run_summary.tsv", "clinical_violations.tsv")))
    run_qc(**{k: v for k, v in kw.items() if k != "out"}, out=out)
    return pd.read_csv(out.join_report, sep="\t", keep_default_na=False)


def test_each_pair_gets_the_clinical_row_of_its_timepoint(tmp_path) -> None:
    kw = _inputs(tmp_path, CLINICAL)
    assert pair_timepoints(kw["clinical"].pair_plan, kw["clinical"].cohort_sheet) == {
        f"p{i}": visit for i, (_, visit) in enumerate(PAIRS)}
    report = _report(kw)
    run_merge(strict=False, **kw)
    dataset = pd.read_csv(kw["out"].dataset_csv).set_index("pair_id")
    # P-2's clinical rows are in the other order: the join follows the timepoint, not the row
    assert dataset["ecog"].to_dict() == {"p0": 0, "p1": 1, "p2": 2, "p3": 3}
    assert dataset["visit"].to_dict() == {f"p{i}": v for i, (_, v) in enumerate(PAIRS)}
    assert "pid" not in dataset.columns
    record = read_clinical_columns(kw["out"].clinical_columns).set_index("column")
    assert record.at["visit", "type"] == "timepoint"
    # P-3 has no images: one unmatched (case, timepoint), reported only
    assert report[report["kind"] == "unmatched-clinical"]["case_id"].tolist() == [
        case_id(KEY, "P-3")]


def test_a_timepoint_of_role_drop_joins_but_is_not_written(tmp_path) -> None:
    kw = _inputs(tmp_path, CLINICAL, DICTIONARY.replace("role: covariate}", "role: drop}", 1))
    report = _report(kw)
    run_merge(strict=False, **kw)
    dataset = pd.read_csv(kw["out"].dataset_csv).set_index("pair_id")
    assert "visit" not in dataset.columns
    assert dataset["ecog"].to_dict() == {"p0": 0, "p1": 1, "p2": 2, "p3": 3}
    assert "visit: role drop; not written" in report["detail"].tolist()


def test_duplicate_subject_and_timepoint_rows_fail_the_join(tmp_path) -> None:
    clinical = {k: [*v, v[0]] for k, v in CLINICAL.items()}   # P-1 baseline twice
    kw = _inputs(tmp_path, clinical)
    report = _report(kw)
    dup = report[report["kind"] == "duplicate-clinical"]
    assert dup["case_id"].tolist() == [case_id(KEY, "P-1")]
    assert dup["detail"].tolist() == ["2 rows at visit 'baseline'"]
    with pytest.raises(MergeError, match=r"1 duplicate clinical \(ID, visit\) pair"):
        run_merge(strict=False, **kw)


def test_a_pair_without_a_timepoint_is_a_clear_error(tmp_path) -> None:
    pairs = (*PAIRS[:3], ("P-2", ""))
    kw = _inputs(tmp_path, CLINICAL, pairs=pairs)
    report = _report(kw)
    missing = report[report["kind"] == "missing-timepoint"]
    assert missing["detail"].tolist() == ["pair p3: no timepoint in the cohort sheet"]
    with pytest.raises(MergeError, match=r"1 pair\(s\) have no timepoint in the cohort sheet, "
                                         r"and the clinical data dictionary joins on the "
                                         r"subject and visit"):
        run_merge(strict=False, **kw)


def test_an_imaged_timepoint_without_a_clinical_row_counts_as_unmatched(tmp_path) -> None:
    clinical = {k: v[:3] + v[4:] for k, v in CLINICAL.items()}   # no P-2 baseline row
    kw = _inputs(tmp_path, clinical)
    report = _report(kw)
    unmatched = report[report["kind"] == "unmatched-imaging"]
    assert unmatched["detail"].tolist() == ["no clinical row at visit 'baseline'"]
    with pytest.raises(MergeError, match=r"1 of 4 imaged \(case, visit\) have no clinical row"):
        run_merge(strict=False, **kw)
    kw["settings"] = MergeSettings(max_unmatched_fraction=0.5)
    run_merge(strict=False, **kw)
    dataset = pd.read_csv(kw["out"].dataset_csv).set_index("pair_id")
    assert pd.isna(dataset.at["p2", "ecog"]) and dataset.at["p3", "ecog"] == 3


def test_a_date_or_empty_cell_is_not_a_timepoint(tmp_path) -> None:
    clinical = dict(CLINICAL, visit=["baseline", "2023-06-01", "week6", "", "baseline"])
    kw = _inputs(tmp_path, clinical)
    report = _report(kw)
    violations = pd.read_csv(kw["out"].dataset_csv.replace("dataset.csv",
                                                           "clinical_violations.tsv"), sep="\t")
    assert violations[["column", "row"]].values.tolist() == [["visit", 3], ["visit", 5]]
    assert "2023-06-01" not in violations.to_csv()
    assert "2 row(s) with an empty visit; not joined" in report["detail"].tolist()


def test_the_dictionary_allows_one_timepoint_column_never_an_identifier(tmp_path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(DICTIONARY)
    assert load_dictionary(path, "pid").timepoint.name == "visit"
    assert joins_on_timepoint(str(path), "pid") and not joins_on_timepoint("", "pid")
    path.write_text(DICTIONARY + "  session: {type: timepoint, role: drop}\n")
    with pytest.raises(ConfigError, match=r"columns\.session\.type: one timepoint column"):
        load_dictionary(path, "pid")
    path.write_text(DICTIONARY.replace("visit: {type: timepoint, role: covariate}",
                                       "visit: {type: timepoint, role: identifier}"))
    with pytest.raises(ConfigError, match=r"columns\.visit\.role"):
        load_dictionary(path, "pid")
    path.write_text(DICTIONARY.replace("role: covariate}", "role: covariate, levels: [a]}", 1))
    with pytest.raises(ConfigError, match=r"columns\.visit\.levels: not a key"):
        load_dictionary(path, "pid")
    path.write_text(DICTIONARY.replace("  visit: {type: timepoint, role: covariate}\n", ""))
    assert load_dictionary(path, "pid").timepoint is None


@pytest.mark.slow
def test_workflow_joins_each_scan_with_its_timepoint(tmp_path) -> None:
    """Two subjects scanned at baseline and week6 (the sheet's timepoint column), a clinical
    table with one row per subject and visit: the dataset row of each scan has its visit's."""
    import numpy as np
    import SimpleITK as sitk
    import yaml
    from workflow_helpers import snakemake

    z, y, x = np.indices((8, 16, 16))
    sheet = []
    for k, (pid, visit) in enumerate(PAIRS):
        roi = (z - 4.0) ** 2 * 4 + (y - 8.0) ** 2 + (x - 8.0) ** 2 <= (4 + k) ** 2
        mask = sitk.GetImageFromArray(roi.astype(np.uint8))
        mask.SetSpacing((1.0, 1.0, 2.0))
        image = sitk.GetImageFromArray(np.where(roi, 100 + 10 * k, -500).astype(np.int16))
        image.CopyInformation(mask)
        sitk.WriteImage(mask, str(tmp_path / f"mask{k}.nii.gz"))
        sitk.WriteImage(image, str(tmp_path / f"img{k}.nii.gz"))
        sheet.append({"subject": pid, "image": f"img{k}.nii.gz", "mask": f"mask{k}.nii.gz",
                      "timepoint": visit})
    pd.DataFrame(sheet).to_csv(tmp_path / "sheet.tsv", sep="\t", index=False)
    pd.DataFrame(CLINICAL).to_csv(tmp_path / "clinical.csv", index=False)
    (tmp_path / "dictionary.yaml").write_text(DICTIONARY)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(
        {"imageType": {"Original": {}}, "featureClass": {"shape": ["VoxelVolume"]}}))
    (tmp_path / "cohort.yaml").write_text(yaml.safe_dump({
        "cohort": "tp", "sheet": str(tmp_path / "sheet.tsv"), "key_file": str(tmp_path / "key"),
        "clinical": str(tmp_path / "clinical.csv"), "clinical_id": "pid",
        "clinical_dictionary": str(tmp_path / "dictionary.yaml"),
        "extract": {"params": str(tmp_path / "params.yaml"), "image_types": [],
                    "families": {f: {"enabled": False}
                                 for f in ("semantic", "fractal", "minkowski")}}}))
    snakemake(tmp_path, ["merge", "--cores", "2", "--configfile", str(tmp_path / "cohort.yaml")])
    dataset = pd.read_csv(tmp_path / "results" / "tp" / "merge" / "dataset.csv")
    # the images are numbered by PAIRS: volume grows with k, so it tells which scan a row is
    dataset = dataset.sort_values("original_shape_VoxelVolume").reset_index(drop=True)
    assert dataset["visit"].tolist() == [visit for _, visit in PAIRS]
    assert dataset["ecog"].tolist() == [0, 1, 2, 3]
