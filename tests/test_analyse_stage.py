"""The ``analyse`` stage in the workflow, on one run of the demo cohort (16 patients with a
sheet + 2 found by the crawl: 18 subjects) up to ``analyse``: its outcomes taken from the demo's
clinical data dictionary, the tables' columns, a byte-identical rerun, and the demo's planted
outcome (a lesion-volume threshold) found by the analysis (README, "Analysis", "Demo cohort")."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import demo_config, job_counts, snakemake

from radflow.analyse import analyse, read_dataset
from radflow.analyse.associations import ASSOCIATION_COLUMNS
from radflow.analyse.baseline import BASELINE_COLUMNS
from radflow.analyse.controls import CONTROL_COLUMNS, FLAG_COLUMNS
from radflow.analyse.export import STANDARDISATION_COLUMNS
from radflow.analyse.redundancy import CLUSTER_COLUMNS
from radflow.analyse.rows import feature_columns
from radflow.analyse.settings import Outcome, settings_from
from radflow.demo import make_demo_cohort
from radflow.demo.clinical import OUTCOME_VOLUME_MM3

pytestmark = pytest.mark.slow

TABLES = ("redundancy_clusters.tsv", "associations.tsv", "model_ready.parquet", "model_ready.csv",
          "standardisation.tsv", "baseline.tsv", "control_associations.tsv")
#: Patients with a sheet row: the 8 profiles twice (8 subjects are too few for the planted
#: outcome to pass the FDR over ~1,200 features: an AUC of 1 in 5 against 3 has p 0.036).
N_PATIENTS = 16
#: Volume-type features: the volume itself, measured by PyRadiomics and by radflow's family.
VOLUMES = ("original_shape_VoxelVolume", "original_shape_MeshVolume",
           "original_size_VoxelVolume", "original_size_MeshVolume")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The demo's workflow run up to ``analyse``: (work folder, config arguments)."""
    tmp_path = tmp_path_factory.mktemp("analyse_stage")
    demo = make_demo_cohort(tmp_path / "demo", n_patients=N_PATIENTS)
    config = demo_config(tmp_path, demo, analyse={"enabled": True})
    work = tmp_path / "work"

    # with analyse.enabled the default target reaches the analysis
    planned = job_counts(snakemake(work, ["-n", "--cores", "2", *config]).stdout)
    assert planned["analyse"] == 1 and planned["merge"] == 1, planned
    snakemake(work, ["--cores", "2", "analyse", *config])
    return work, config


def test_the_demo_run_writes_the_analysis_and_a_rerun_the_same_bytes(run) -> None:
    work, config = run
    out = work / "results" / "demo" / "analysis"
    first = {name: (out / name).read_bytes() for name in TABLES}

    dataset = pd.read_parquet(work / "results" / "demo" / "merge" / "dataset.parquet")
    log = (work / "results" / "demo" / "logs" / "analyse.log").read_text(encoding="utf-8")
    # outcomes from the dictionary: outcome (binary-outcome), followup_months (time-to-event)
    assert "outcomes from the clinical data dictionary: outcome (binary), followup_months " \
           "(time-to-event)" in log, log
    associations = pd.read_csv(out / "associations.tsv", sep="\t")
    assert tuple(associations.columns) == (*ASSOCIATION_COLUMNS, *FLAG_COLUMNS)
    # no reliability stage, no negative controls: nothing judged, an empty control table
    assert associations["survives_control"].isna().all()
    controls = pd.read_csv(out / "control_associations.tsv", sep="\t")
    assert tuple(controls.columns) == CONTROL_COLUMNS and controls.empty
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


def _geometry(feature: str) -> bool:
    """A feature of the mask's geometry alone (PyRadiomics' shape class, radflow's size,
    Minkowski and RECIST families)."""
    return feature.split("_")[1] in ("shape", "size", "minkowski", "recist")


def test_the_planted_outcome_puts_volume_features_at_the_top_and_noise_below_fdr(run) -> None:
    work, _ = run
    results = work / "results" / "demo"
    dataset = read_dataset(results / "merge" / "dataset.parquet")
    # the demo plants the outcome on the largest region's volume, the row the analysis keeps
    largest = dataset.groupby("case_id")["original_shape_VoxelVolume"].max()
    outcome = dataset.groupby("case_id")["outcome"].first()
    assert (outcome == (largest > OUTCOME_VOLUME_MM3).astype(int)).all(), (largest, outcome)
    assert outcome.sum() == (outcome == 0).sum() == 9

    table = pd.read_csv(results / "analysis" / "associations.tsv", sep="\t")
    auc = table[(table["outcome"] == "outcome") & (table["statistic"] == "auc")]
    assert len(auc) > 1000 and auc["p"].notna().all()
    top = auc[auc["p"] == auc["p"].min()]
    # the top-ranked associations: every volume feature, and only features of the mask's size
    assert set(VOLUMES) <= set(top["feature"]), top["feature"].tolist()
    assert all(_geometry(f) for f in top["feature"]), top["feature"].tolist()
    volumes = auc.set_index("feature").loc[list(VOLUMES)]
    assert (volumes["estimate"] > 0.9).all() and (volumes["q"] < 0.05).all(), volumes

    # a feature of seeded random numbers, analysed with the real ones, does not pass the FDR
    rng = np.random.default_rng(20240101)
    noisy = dataset.assign(original_firstorder_RandomControl=rng.normal(size=len(dataset)))
    wide = list(pd.read_csv(results / "merge" / "features_wide.csv", nrows=0).columns)
    features = [*feature_columns(list(dataset.columns), wide),
                "original_firstorder_RandomControl"]
    settings = replace(settings_from({"baseline": False}),
                      outcomes=(Outcome("outcome", "binary", column="outcome", positive="1"),))
    again = analyse(noisy, features, None, settings).associations
    again = again[again["statistic"] == "auc"].set_index("feature")
    assert again.loc["original_firstorder_RandomControl", "q"] >= 0.05, \
        again.loc["original_firstorder_RandomControl"]
    assert (again.loc[list(VOLUMES), "q"] < 0.05).all()
    assert (again.loc[list(VOLUMES), "estimate"] > 0.9).all()
