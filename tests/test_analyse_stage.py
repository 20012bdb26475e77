"""The ``analyse`` stage in the workflow: the demo cohort up to ``analyse``, its outcomes taken
from the demo's clinical data dictionary, the tables' columns, and a byte-identical rerun
(README, "Analysis")."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml
from workflow_helpers import REPO, job_counts, snakemake

from radflow.analyse.associations import ASSOCIATION_COLUMNS
from radflow.analyse.baseline import BASELINE_COLUMNS
from radflow.analyse.export import STANDARDISATION_COLUMNS
from radflow.analyse.redundancy import CLUSTER_COLUMNS
from radflow.demo import make_demo_cohort

pytestmark = pytest.mark.slow

TABLES = ("redundancy_clusters.tsv", "associations.tsv", "model_ready.parquet", "model_ready.csv",
          "standardisation.tsv", "baseline.tsv")


def test_the_demo_run_writes_the_analysis_and_a_rerun_the_same_bytes(tmp_path) -> None:
    demo = make_demo_cohort(tmp_path / "demo")
    params = tmp_path / "pyradiomics.yaml"
    shutil.copy(REPO / "config" / "pyradiomics.yaml", params)
    work = tmp_path / "work"
    work.mkdir()
    cfg = tmp_path / "cohort.yaml"
    cfg.write_text(yaml.safe_dump({
        "cohort": "demo", "dicom_root": str(demo.dicom_root), "sheet": str(demo.sheet),
        "clinical": str(demo.clinical), "clinical_id": "patient_id",
        "clinical_dictionary": str(demo.clinical_dictionary),
        "extract": {"params": str(params)}, "analyse": {"enabled": True}}))
    config = ["--configfile", str(cfg)]

    # with analyse.enabled the default target reaches the analysis
    planned = job_counts(snakemake(work, ["-n", "--cores", "2", *config]).stdout)
    assert planned["analyse"] == 1 and planned["merge"] == 1, planned
    snakemake(work, ["--cores", "2", "analyse", *config])
    out = work / "results" / "demo" / "analysis"
    first = {name: (out / name).read_bytes() for name in TABLES}

    dataset = pd.read_parquet(work / "results" / "demo" / "merge" / "dataset.parquet")
    log = (work / "results" / "demo" / "logs" / "analyse.log").read_text(encoding="utf-8")
    # outcomes from the dictionary: outcome (binary-outcome), followup_months (time-to-event)
    assert "outcomes from the clinical data dictionary: outcome (binary), followup_months " \
           "(time-to-event)" in log, log
    associations = pd.read_csv(out / "associations.tsv", sep="\t")
    assert tuple(associations.columns) == tuple(ASSOCIATION_COLUMNS)
    assert set(associations["outcome"]) == {"outcome", "followup_months"}
    assert set(associations["statistic"]) == {"auc", "cox_hr", "c_index", "logrank"}
    clusters = pd.read_csv(out / "redundancy_clusters.tsv", sep="\t")
    assert tuple(clusters.columns) == tuple(CLUSTER_COLUMNS)
    features = [c for c in pd.read_csv(work / "results" / "demo" / "merge" /
                                       "features_wide.csv", nrows=0).columns
                if c in set(clusters["feature"])]
    assert len(features) == len(clusters) > 0
    export = pd.read_parquet(out / "model_ready.parquet")
    assert list(export.columns[:9]) == ["case_id", "pair_id", "image_key", "roi", "label",
                                        "split", "outcome", "followup_months_time",
                                        "followup_months_event"]
    # lesions: largest -> one row per subject, each a subject of the dataset
    assert len(export) == export["case_id"].nunique() == dataset["case_id"].nunique()
    assert set(export["split"]) == {"train", "test"}
    csv = pd.read_csv(out / "model_ready.csv", dtype=str)
    assert list(csv.columns) == list(export.columns) and list(csv["pair_id"]) == \
        list(export["pair_id"])
    scaling = pd.read_csv(out / "standardisation.tsv", sep="\t")
    assert tuple(scaling.columns) == tuple(STANDARDISATION_COLUMNS)
    assert (scaling["n_train"] == (export["split"] == "train").sum()).all()
    baseline = pd.read_csv(out / "baseline.tsv", sep="\t")
    assert tuple(baseline.columns) == tuple(BASELINE_COLUMNS)
    assert list(baseline["outcome"]) == ["outcome", "followup_months"]

    # nothing left to do; a forced rerun writes the same bytes
    assert job_counts(snakemake(work, ["-n", "--cores", "2", *config]).stdout) == {}
    rerun = snakemake(work, ["--cores", "2", "analyse", "--forcerun", "analyse", *config])
    assert job_counts(rerun.stdout + rerun.stderr) == {"analyse": 1}
    assert {name: (out / name).read_bytes() for name in TABLES} == first
