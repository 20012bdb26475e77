"""The reliability stage (issue 16 part 3): in-memory extraction equals the extract stage, the
per-unit jobs (copies, failures, determinism), the aggregate and the workflow end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from scipy import ndimage as ndi

from radflow import extract
from radflow.errors import AgreementError, ConfigError
from radflow.extract.families import feature_families
from radflow.extract.in_memory import InMemoryExtractor, PairVolumes, extract_images
from radflow.extract.table import frame
from radflow.io.nifti import read_image, voxel_hash, write_nifti
from radflow.params_sets import ParamsChoice
from radflow.plan import reliability as rwr
from radflow.records.agreement import AGREEMENT_COLUMNS, read_agreement, read_reliable_features
from radflow.records.reliability import read_reliability_status
from radflow.reliability.settings import CONTROLS_JOB, reliability_settings
from radflow.reliability.stage import (
    FEATURE_TABLE_COLUMNS,
    ReliabilityOutputs,
    run_reliability,
    run_reliability_one,
)

PARAMS = {"setting": {"binWidth": 25},
          "imageType": {"Original": {}},
          "featureClass": {"shape": ["VoxelVolume", "MeshVolume"], "firstorder": [],
                           "glcm": ["Contrast", "JointEntropy"]}}


def _textured(seed: int, shape: tuple[int, int, int] = (14, 22, 22)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.normal(0, 1, shape), 1.2)


def _write_unit(root: Path, *, fill: bool = False) -> list[dict[str, Any]]:
    """One image with two ROIs (labels 1 and 2 of one label map) and their pair records; with
    ``fill`` the ROI of label 1 is the whole image but one slab."""
    values = np.round(-400 + 900 * _textured(3)).astype(np.int16)
    labels = np.zeros(values.shape, np.uint8)
    if fill:
        labels[:, :, 2:] = 1
    else:
        labels[3:10, 4:12, 5:13] = 1
        labels[4:11, 13:19, 12:19] = 2
    values[labels == 1] += 300
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.9, 0.9, 2.0))
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(image)
    write_nifti(root / "img.nii.gz", image)
    write_nifti(root / "mask.nii.gz", mask)
    pairs = []
    for label in (1,) if fill else (1, 2):
        pair = {"pair_id": f"p{label:016x}", "case_id": "c000000000001",
                "image_key": "s0000000000000001", "mask_key": "s0000000000000002",
                "roi": f"roi-{label}", "label": label, "status": "ok",
                "image": str(root / "img.nii.gz"), "mask": str(root / "mask.nii.gz"),
                "image_hash": voxel_hash(read_image(root / "img.nii.gz")),
                "mask_hash": voxel_hash(read_image(root / "mask.nii.gz")),
                "mask_resampled": False}
        path = root / f"{pair['pair_id']}.json"
        path.write_text(json.dumps(pair), encoding="utf-8")
        pairs.append(pair)
    return pairs


@pytest.fixture
def params_path(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(PARAMS), encoding="utf-8")
    return path


def test_in_memory_extraction_equals_the_extract_stage(tmp_path, params_path) -> None:
    # The extract stage's whole pipeline: zscore-roi normalisation, a radflow filter image type,
    # the feature families; two ROIs of one image.
    pairs = _write_unit(tmp_path)
    choice = ParamsChoice(modality="CT", key="CT", file="params.yaml",
                          normalisation="zscore-roi")
    image_types = extract.image_types([{"filter": "mean", "support": 3}])
    families = feature_families(None)
    stage_rows, statuses = extract.extract_unit_rows(pairs, params_path,
                                                     extra_image_types=image_types,
                                                     choice=choice, families=families)
    assert [s["status"] for s in statuses] == ["ok", "ok"]
    extractor = InMemoryExtractor(params_path, extra_image_types=image_types, choice=choice,
                                  families=families)
    volumes = PairVolumes()
    memory_rows = []
    for pair in pairs:
        image, mask = volumes.get(pair)
        memory_rows += extractor.rows(image, mask, pair)  # hashes computed from the volumes
    stage, memory = frame(stage_rows), frame(memory_rows)
    assert {"mean-s3", "original"} <= set(memory["image_type"])
    assert {"fractal", "minkowski", "size"} <= set(memory["feature_class"])
    assert len(memory) > 100
    pd.testing.assert_frame_equal(memory, stage, check_exact=True)
    # the one-call API gives the same rows
    image, mask = PairVolumes().get(pairs[0])
    one = frame(extract_images(image, mask, pairs[0], params_path, extra_image_types=image_types,
                               choice=choice, families=families))
    pd.testing.assert_frame_equal(one, stage[stage["pair_id"] == pairs[0]["pair_id"]]
                                  .reset_index(drop=True), check_exact=True)


def _settings(**changes: Any):
    section = {"perturbation": {"chains": [{"name": "nt", "steps": ["noise", "translation"],
                                            "copies": 2}]},
               "negative_controls": {"kinds": ["shuffled"], "regions": ["roi", "non-roi"]}}
    section.update(changes)
    return reliability_settings(section)


def test_job_writes_each_copy_like_an_extraction_and_reruns_identically(tmp_path,
                                                                         params_path) -> None:
    pairs = _write_unit(tmp_path)
    files = [str(tmp_path / f"{p['pair_id']}.json") for p in pairs]
    settings = _settings()
    outputs = {}
    for job, run in (("nt", "a"), ("nt", "b"), (CONTROLS_JOB, "a")):
        out = tmp_path / run / f"unit.{job}.parquet"
        run_reliability_one(files, params_path, out, out.with_suffix(".json"),
                            case_id="c000000000001", unit="s0000000000000001", job=job,
                            settings=settings)
        outputs[job, run] = out
    # determinism: the same bytes (seeds from the pair keys; no time in the table)
    assert outputs["nt", "a"].read_bytes() == outputs["nt", "b"].read_bytes()
    table = pd.read_parquet(outputs["nt", "a"])
    assert tuple(table.columns) == FEATURE_TABLE_COLUMNS
    assert table.groupby("pair_id")["source"].unique().map(list).to_dict() == {
        p["pair_id"]: ["perturbation:nt:0", "perturbation:nt:1"] for p in pairs}
    original = frame(extract.extract_unit_rows(pairs, params_path)[0])
    copy0 = table[table["source"] == "perturbation:nt:0"].drop(columns="source")
    copy0 = copy0.reset_index(drop=True)
    # same features, same keys and params hash as the original; other values and image hashes
    assert list(copy0["feature"]) == list(original["feature"])
    for column in ("pair_id", "params_hash", "params_set", "mask_key"):
        assert list(copy0[column]) == list(original[column])
    assert (copy0["image_hash"] != original["image_hash"]).all()
    assert not np.allclose(copy0["value"], original["value"])
    status = read_reliability_status(outputs["nt", "a"].with_suffix(".json"))
    assert [c.status for c in status.copies] == ["ok"] * 4
    assert set(status.copies[0].parameters) == {"noise_sigma", "translation_x",
                                                "translation_y", "translation_z"}
    controls = pd.read_parquet(outputs[CONTROLS_JOB, "a"])
    assert set(controls["source"]) == {"control:shuffled:roi", "control:shuffled:non-roi"}
    # the mask is unchanged: shape features equal the original's exactly
    for source in ("control:shuffled:roi", "control:shuffled:non-roi"):
        part = controls[(controls["source"] == source) & (controls["feature_class"] == "shape")]
        ref = original[original["feature_class"] == "shape"]
        assert list(part["value"]) == list(ref["value"])
        assert list(part["mask_hash"]) == list(ref["mask_hash"])


def test_a_copy_that_cannot_be_made_fails_alone(tmp_path, params_path) -> None:
    pairs = _write_unit(tmp_path, fill=True)  # the ROI covers all but two columns of voxels
    files = [str(tmp_path / f"{p['pair_id']}.json") for p in pairs]
    settings = _settings(perturbation={"chains": [{"name": "v", "steps": ["volume"],
                                                   "copies": 3}],
                                       "volume_fractions": [0.5]})
    for job in ("v", CONTROLS_JOB):
        run_reliability_one(files, params_path, tmp_path / f"u.{job}.parquet",
                            tmp_path / f"u.{job}.json", case_id="c000000000001",
                            unit="s0000000000000001", job=job, settings=settings)
    grown = read_reliability_status(tmp_path / "u.v.json")
    assert [c.status for c in grown.copies] == ["failed:roi-too-large"] * 3
    assert pd.read_parquet(tmp_path / "u.v.parquet").empty
    controls = {c.source: c.status for c in read_reliability_status(
        tmp_path / f"u.{CONTROLS_JOB}.json").copies}
    assert controls == {"control:shuffled:roi": "ok", "control:shuffled:non-roi": "ok"}
    # a ROI that is the whole image leaves no non-ROI region
    full = np.ones(sitk.GetArrayViewFromImage(read_image(pairs[0]["mask"])).shape, np.uint8)
    mask = sitk.GetImageFromArray(full)
    mask.CopyInformation(read_image(pairs[0]["mask"]))
    write_nifti(tmp_path / "mask.nii.gz", mask)
    record = {**pairs[0], "mask_hash": voxel_hash(mask)}
    Path(files[0]).write_text(json.dumps(record), encoding="utf-8")
    run_reliability_one(files, params_path, tmp_path / "w.parquet", tmp_path / "w.json",
                        case_id="c000000000001", unit="s0000000000000001", job=CONTROLS_JOB,
                        settings=settings)
    controls = {c.source: c.status for c in read_reliability_status(
        tmp_path / "w.json").copies}
    assert controls == {"control:shuffled:roi": "ok",
                        "control:shuffled:non-roi": "failed:empty-region"}


def test_settings_and_plan_agree() -> None:
    section = {"perturbation": {"chains": [{"name": "a", "steps": ["noise"], "copies": 4},
                                           {"name": "b", "steps": ["rotation"]}]},
               "negative_controls": {"kinds": ["shuffled", "randomised"], "regions": ["roi"]}}
    settings = reliability_settings(section)
    assert settings.jobs == tuple(rwr.reliability_jobs(section)) == ("a", "b", CONTROLS_JOB)
    assert [rwr.job_copies(section, j) for j in settings.jobs] == [4, 10, 2]
    no_controls = {**section, "negative_controls": None}
    assert reliability_settings(no_controls).jobs == ("a", "b") \
        == tuple(rwr.reliability_jobs(no_controls))
    with pytest.raises(ConfigError, match="controls"):
        reliability_settings({"perturbation": {"chains": [{"name": "controls",
                                                           "steps": ["noise"]}]}})
    with pytest.raises(ConfigError, match=r"no source"):
        reliability_settings({"perturbation": {"chains": []}, "retest": False})
    with pytest.raises(ConfigError, match="unknown setting"):
        reliability_settings({"rule": {"treshold": 0.8}})


def test_memory_does_not_grow_with_copies_and_time_does(tmp_path, params_path) -> None:
    pairs = _write_unit(tmp_path)
    files = [str(tmp_path / f"{p['pair_id']}.json") for p in pairs]
    mem = {n: rwr.reliability_mem_mb(files, str(params_path), floor_mb=0) for n in (1, 200)}
    one = rwr.reliability_runtime(files, str(params_path), 1, floor_min=0)
    many = rwr.reliability_runtime(files, str(params_path), 200, floor_min=0)
    assert mem[1] == mem[200] > 0
    extraction = rwr.extract_runtime(files, str(params_path), floor_min=0)
    assert many >= 200 * extraction > one


def _long(pair_ids: list[str], values: dict[str, np.ndarray], source: str = "") -> pd.DataFrame:
    """A long feature table: one row per pair and feature (``values[feature][i]`` of pair i)."""
    rows = [{"case_id": f"c{i // 2:012x}", "image_key": f"s{i:016x}", "mask_key": "s" + "f" * 16,
             "pair_id": pid, "roi": "GTV", "label": 1, "image_type": "original",
             "feature_class": "firstorder", "feature": name, "ibsi_code": "",
             "value": float(v[i]), "radflow_version": "x", "pyradiomics_dist": "x",
             "pyradiomics_version": "x", "simpleitk_version": "x", "numpy_version": "x",
             "params_hash": "h", "params_set": "all:params.yaml", "normalisation": "none",
             "qc": "", "image_hash": "i", "mask_hash": "m"}
            for i, pid in enumerate(pair_ids) for name, v in values.items()]
    table = frame([tuple(r[c] for c in extract.COLUMNS) for r in rows])
    if source:
        table["source"] = source
    return table


def test_aggregate_joins_copies_controls_and_repeat_scans(tmp_path) -> None:
    rng = np.random.default_rng(5)
    pids = [f"p{i:016x}" for i in range(8)]  # cases 0-3, each at T1 (even) and T2 (odd)
    level = np.repeat(rng.normal(0, 10, 4), 2)
    original = _long(pids, {"Stable": level, "Noise": rng.normal(0, 1, 8)})
    original.to_parquet(tmp_path / "features.parquet")
    settings = reliability_settings(
        {"perturbation": {"chains": [{"name": "n", "steps": ["noise"], "copies": 3}]},
         "negative_controls": {"kinds": ["shuffled"], "regions": ["roi"]}})
    copies, statuses = [], []
    for i in range(3):
        table = _long(pids, {"Stable": level + rng.normal(0, 0.01, 8),
                             "Noise": rng.normal(0, 1, 8)}, f"perturbation:n:{i}")
        copies.append(table)
    copies.append(_long(pids, {"Stable": level, "Noise": rng.normal(0, 1, 8)},
                        "control:shuffled:roi"))
    files = []
    for j, table in enumerate(reversed(copies)):  # any order in, one order out
        table.to_parquet(tmp_path / f"copy{j}.parquet")
        files.append(str(tmp_path / f"copy{j}.parquet"))
        status = {"case_id": "c0", "unit": "s0", "job": "n", "n_pairs": 8, "seconds": 1.0,
                  "copies": [{"pair_id": p, "source": str(table["source"].iloc[0]),
                              "status": "ok", "n_features": 2} for p in pids]}
        (tmp_path / f"copy{j}.json").write_text(json.dumps(status))
        statuses.append(str(tmp_path / f"copy{j}.json"))
    pd.DataFrame({"subject": [f"S{i // 2}" for i in range(8)],
                  "image": [f"i{i}.nii.gz" for i in range(8)], "mask": "m.nii.gz",
                  "timepoint": ["T1", "T2"] * 4}).to_csv(tmp_path / "sheet.tsv", sep="\t",
                                                         index=False)
    pd.DataFrame({"pair_id": pids, "sheet_row": range(1, 9)}).to_csv(
        tmp_path / "pair_plan.tsv", sep="\t", index=False)
    out = ReliabilityOutputs(*(str(tmp_path / n) for n in ("rel.parquet", "agreement.tsv",
                                                           "reliable.tsv", "copies.tsv")))
    run_reliability(features_parquet=str(tmp_path / "features.parquet"), copy_files=files,
                    status_files=statuses, pair_plan_tsv=str(tmp_path / "pair_plan.tsv"),
                    sheet=str(tmp_path / "sheet.tsv"), settings=settings, out=out)
    written = pd.read_parquet(out.features)
    assert list(written["source"].drop_duplicates()) == [
        "perturbation:n:0", "perturbation:n:1", "perturbation:n:2", "control:shuffled:roi"]
    assert list(written["pair_id"].drop_duplicates()) == pids
    agreement = read_agreement(out.agreement)
    assert list(agreement["source"].drop_duplicates()) == ["perturbation:n", "retest",
                                                           "control:shuffled:roi"]
    assert set(agreement.loc[agreement["source"] == "retest", "n_subjects"]) == {4}
    reliable = read_reliable_features(out.reliable).set_index("feature")
    assert reliable.loc["original_firstorder_Stable", "reliable"]
    assert not reliable.loc["original_firstorder_Noise", "reliable"]
    # no copy and no timepoint: nothing to judge
    pd.DataFrame({"subject": ["S0"], "image": ["i.nii.gz"], "mask": "m.nii.gz"}).to_csv(
        tmp_path / "sheet.tsv", sep="\t", index=False)
    with pytest.raises(AgreementError, match="nothing to judge"):
        run_reliability(features_parquet=str(tmp_path / "features.parquet"),
                        copy_files=files[:1], status_files=statuses[:1],
                        pair_plan_tsv=str(tmp_path / "pair_plan.tsv"),
                        sheet=str(tmp_path / "sheet.tsv"), settings=settings, out=out)


def test_sheet_timepoint_is_a_label_never_a_date(tmp_path) -> None:
    from radflow.crawl.sheet import read_sheet

    rows = {"subject": ["S1", "S1", "S2"], "image": ["a.nii", "b.nii", "c.nii"],
            "mask": "m.nii", "timepoint": ["baseline", "2", ""]}
    pd.DataFrame(rows).to_csv(tmp_path / "sheet.tsv", sep="\t", index=False)
    assert [r.get("timepoint") for r in read_sheet(tmp_path / "sheet.tsv")] == [
        "baseline", "2", None]
    for date in ("2021-03-04", "20210304", "04.03.2021"):
        pd.DataFrame({**rows, "timepoint": [date, "T2", "T1"]}).to_csv(
            tmp_path / "sheet.tsv", sep="\t", index=False)
        with pytest.raises(ConfigError, match="row 1, column timepoint") as info:
            read_sheet(tmp_path / "sheet.tsv")
        assert date not in str(info.value)


def test_radflow_run_takes_the_reliability_stage() -> None:
    from radflow.cli.workflow import split_args

    assert split_args(["reliability", "--configfile", "c.yaml", "-n"]).targets == (
        "reliability",)


# --- the workflow -------------------------------------------------------------------------------

def _cohort(root: Path) -> list[str]:
    """Four subjects scanned twice (sheet column timepoint): ROI k (a sphere, its own radius)
    holds 100 + 200 k plus a faint texture (SD 2), the background -500 + noise. Under Gaussian
    noise of SD 20 (the chain), the ROI's mean and volume stay put, while its skewness is a
    statistic of the added noise alone: unreliable by construction."""
    rng = np.random.default_rng(11)
    z, y, x = np.indices((12, 24, 24))
    rows = []
    for k in range(4):
        roi = ((z - 6) * 2.0) ** 2 + (y - 12.0) ** 2 + (x - 12.0) ** 2 <= (4 + k) ** 2
        mask = sitk.GetImageFromArray(roi.astype(np.uint8))
        mask.SetSpacing((1.0, 1.0, 2.0))
        sitk.WriteImage(mask, str(root / f"mask{k}.nii.gz"))
        for t in ("T1", "T2"):
            values = np.where(roi, 100 + 200 * k + rng.normal(0, 2, roi.shape),
                              -500 + rng.normal(0, 10, roi.shape))
            image = sitk.GetImageFromArray(np.round(values).astype(np.int16))
            image.CopyInformation(mask)
            sitk.WriteImage(image, str(root / f"img{k}{t}.nii.gz"))
            rows.append({"subject": f"S{k}", "image": f"img{k}{t}.nii.gz",
                         "mask": f"mask{k}.nii.gz", "timepoint": t})
    pd.DataFrame(rows).to_csv(root / "sheet.tsv", sep="\t", index=False)
    (root / "params.yaml").write_text(yaml.safe_dump(
        {"setting": {"binWidth": 25}, "imageType": {"Original": {}},
         "featureClass": {"shape": ["VoxelVolume"], "firstorder": ["Mean", "Skewness"]}}))
    config = {"cohort": "rel", "sheet": str(root / "sheet.tsv"), "key_file": str(root / "key"),
              "extract": {"params": str(root / "params.yaml"), "image_types": [],
                          "families": {f: {"enabled": False}
                                       for f in ("semantic", "fractal", "minkowski")}},
              "reliability": {"enabled": True,
                              "perturbation": {"chains": [{"name": "n", "steps": ["noise"],
                                                           "copies": 3}],
                                               "noise_sigma": 20},
                              "negative_controls": {"kinds": ["shuffled"], "regions": ["roi"]}}}
    (root / "cohort.yaml").write_text(yaml.safe_dump(config))
    return ["--cores", "2", "--configfile", str(root / "cohort.yaml")]


@pytest.mark.slow
def test_workflow_reliability_stage(tmp_path) -> None:
    from workflow_helpers import job_counts, snakemake

    args = _cohort(tmp_path)
    snakemake(tmp_path, args)  # the all target: reliability.enabled
    res = tmp_path / "results" / "rel" / "reliability"
    jobs = sorted(p.name.split(".", 1)[1] for p in res.glob("c*/*.json"))
    assert jobs == ["controls.json"] * 8 + ["n.json"] * 8  # 8 images x (chain + controls)
    features = pd.read_parquet(res / "features.parquet")
    assert tuple(features.columns) == FEATURE_TABLE_COLUMNS
    merged = pd.read_parquet(tmp_path / "results" / "rel" / "merge" / "features.parquet")
    assert set(features["pair_id"]) == set(merged["pair_id"]) and merged["pair_id"].nunique() == 8
    sources = ["perturbation:n:0", "perturbation:n:1", "perturbation:n:2",
               "control:shuffled:roi"]
    assert features.groupby("pair_id")["source"].unique().map(list).map(sorted).tolist() \
        == [sorted(sources)] * 8
    assert len(features) == 4 * len(merged)
    agreement = read_agreement(res / "agreement.tsv")
    assert tuple(agreement.columns) == AGREEMENT_COLUMNS
    assert set(zip(agreement["source"], agreement["statistic"], strict=True)) == {
        ("perturbation:n", "ICC(1,1)"), ("retest", "ICC(2,1)"), ("retest", "ICC(3,1)"),
        ("retest", "CCC"), ("control:shuffled:roi", "ICC(3,1)"),
        ("control:shuffled:roi", "CCC")}
    retest = agreement[agreement["source"] == "retest"]
    assert (retest["n_subjects"] == 4).all() and (retest["n_raters"] == 2).all()
    reliable = read_reliable_features(res / "reliable_features.tsv").set_index("feature")
    assert reliable.loc["original_shape_VoxelVolume", "reliable"]
    assert reliable.loc["original_firstorder_Mean", "reliable"]
    assert not reliable.loc["original_firstorder_Skewness", "reliable"]
    assert "perturbation:n ICC(1,1)" in reliable.loc["original_firstorder_Skewness", "reason"]
    copies = pd.read_csv(res / "copies.tsv", sep="\t")
    assert len(copies) == 8 * 4 and (copies["status"] == "ok").all()
    assert set(copies.loc[copies["job"] == "n", "noise_sigma"]) == {20.0}
    # nothing left to do; forcing the copies again redoes only them and the aggregate (merge
    # does not depend on the reliability stage)
    assert job_counts(snakemake(tmp_path, ["-n", *args]).stdout) == {}
    dry = snakemake(tmp_path, ["-n", "--forcerun", "reliability_one", *args])
    assert job_counts(dry.stdout) == {"reliability_one": 16, "reliability": 1, "all": 1}
    # determinism: the copies made and extracted again give the same bytes
    before = {name: (res / name).read_bytes()
              for name in ("agreement.tsv", "reliable_features.tsv", "features.parquet")}
    snakemake(tmp_path, ["--forcerun", "reliability_one", *args])
    assert {name: (res / name).read_bytes() for name in before} == before


def test_identical_ratings_have_icc_one_with_interval_one() -> None:
    # A feature the same at every session of every subject but different between subjects (a
    # shape feature of one mask used at both timepoints): every ICC is 1, interval [1, 1] (the
    # ICC(2,1) interval was undefined: 0/0 in Satterthwaite's degrees of freedom).
    from radflow.reliability import stats

    ratings = np.repeat(np.array([[1.0, 4.0, 9.0, 2.5]])[..., None], 2, axis=2)
    for form in stats.ICC_FORMS:
        estimate = stats.icc(ratings, form)
        assert (estimate.value[0], estimate.ci_low[0], estimate.ci_high[0]) == (1.0, 1.0, 1.0)
        assert estimate.flags[0] == 0


def test_ccc_of_raters_equal_up_to_rounding_has_an_interval() -> None:
    # The mean of a shuffled ROI differs from the original's in the last bits only (summation
    # order): Lin's CCC must stay <= 1 with an interval (unclipped, 1 + 2e-16 in 1 of 5 cases
    # here, whose atanh has no interval).
    from radflow.reliability import stats

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8)) * 10
    estimate = stats.ccc(x, x + rng.normal(size=x.shape) * 1e-15)
    assert (estimate.value <= 1.0).all() and (estimate.value > 1 - 1e-12).all()
    assert np.isfinite(estimate.ci_low).all() and (estimate.ci_high <= 1.0).all()
    assert (estimate.flags == 0).all()
