"""Associations reproduced by a negative control (radflow.analyse.controls; README, "Analysis").

A synthetic cohort (tests/test_analyse.py) whose binary outcome follows the volume, and
negative controls in the reliability stage's long layout: a control keeps the shape features
(the mask is unchanged) and destroys what depends on the voxels' places.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_analyse import AXIS, COPY, FEATURES, RANDOM, VOLUME, settings, synthetic_dataset

from radflow.analyse import AnalyseOutputs, analyse, run_analyse
from radflow.analyse.associations import ASSOCIATION_COLUMNS, binary_rows
from radflow.analyse.controls import (
    CONTROL_COLUMNS,
    CONTROL_Q,
    FLAG_COLUMNS,
    flag_associations,
    read_control_features,
)
from radflow.merge import KEY_COLUMNS, PROVENANCE_COLUMNS
from radflow.records.protocol import DATASET_COLUMNS

SHUFFLED = "control:shuffled:roi"
RANDOMISED = "control:randomised:roi"


def control_rows(data: pd.DataFrame) -> pd.DataFrame:
    """The controls' long table: in both controls the volume is the original's (an intensity
    control keeps the mask); ``shuffled`` keeps the near-copy of the volume, ``randomised``
    turns it around (a reversed association); the axis length and the random features become
    noise (as a texture feature would); one pair has no ``randomised`` copy (failed)."""
    rng = np.random.default_rng(11)
    rows = []
    for source in (SHUFFLED, RANDOMISED):
        for _, row in data.iterrows():
            if source == RANDOMISED and row["pair_id"] == data["pair_id"].iat[5]:
                continue
            for name in FEATURES:
                value = row[name]
                if name == COPY and source == RANDOMISED:
                    value = -value
                elif name not in (VOLUME, COPY):
                    value = rng.normal()
                image_type, feature_class, feature = name.split("_", 2)
                rows.append({"pair_id": row["pair_id"], "image_type": image_type,
                             "feature_class": feature_class, "feature": feature,
                             "value": float(value), "source": source})
    return pd.DataFrame(rows)


def test_a_control_that_keeps_the_volume_reproduces_its_association(tmp_path) -> None:
    data = synthetic_dataset(n=60)
    long = control_rows(data)
    path = tmp_path / "features.parquet"
    long.to_parquet(path, index=False)
    controls = read_control_features(path)
    assert set(controls["source"]) == {SHUFFLED, RANDOMISED}
    result = analyse(data, FEATURES, None, settings(baseline=False), controls)

    table = result.control_associations
    assert tuple(table.columns) == CONTROL_COLUMNS
    auc = table[table["statistic"] == "auc"].set_index(["source", "feature"])
    real = result.associations
    real_auc = real[real["statistic"] == "auc"].set_index("feature")
    # the same test on the same values gives the same numbers
    assert auc.at[(SHUFFLED, VOLUME), "estimate"] == real_auc.at[VOLUME, "estimate"]
    assert auc.at[(SHUFFLED, VOLUME), "p"] == real_auc.at[VOLUME, "p"]
    # and matches binary_rows on the control's own values (one pair missing in randomised)
    kept = data[data["pair_id"] != data["pair_id"].iat[5]]
    x = -kept[COPY].to_numpy(dtype=float)
    expected = binary_rows(x, kept["response"].to_numpy(dtype=int), 100, 0, interval=False)[0]
    assert auc.at[(RANDOMISED, COPY), "estimate"] == expected["estimate"] < 0.1
    assert auc.at[(RANDOMISED, COPY), "n"] == len(data) - 1

    flags = real.set_index(["statistic", "feature"])
    assert tuple(real.columns) == (*ASSOCIATION_COLUMNS, *FLAG_COLUMNS)
    assert flags.at[("auc", VOLUME), "q"] < CONTROL_Q
    assert flags.at[("auc", VOLUME), "survives_control"]
    assert flags.at[("auc", VOLUME), "controls"] == f"{RANDOMISED};{SHUFFLED}"
    # reversed in one control: only the other reproduces it
    assert flags.at[("auc", COPY), "controls"] == SHUFFLED
    # the axis length goes with the outcome, but no control's noise does: not flagged
    assert flags.at[("auc", AXIS), "q"] < CONTROL_Q
    axis = flags.at[("auc", AXIS), "survives_control"]
    assert axis is not pd.NA and not axis
    assert flags.at[("auc", AXIS), "controls"] == ""
    assert not flags.loc[[("auc", f) for f in RANDOM], "survives_control"].any()
    # the survival statistics are judged too (Cox HR and log-rank have a p, Harrell's C none)
    assert flags.at[("cox_hr", VOLUME), "survives_control"]
    assert flags.loc["c_index", "survives_control"].isna().all()


def test_without_controls_nothing_is_judged() -> None:
    data = synthetic_dataset(n=40)
    result = analyse(data, FEATURES, None, settings(baseline=False))
    assert result.associations["survives_control"].isna().all()
    assert (result.associations["controls"] == "").all()
    assert result.control_associations.empty
    assert tuple(result.control_associations.columns) == CONTROL_COLUMNS
    empty = flag_associations(result.associations[list(ASSOCIATION_COLUMNS)], None)
    assert empty["survives_control"].isna().all()


def test_run_analyse_writes_the_control_table(tmp_path) -> None:
    data = synthetic_dataset(n=40)
    merge = tmp_path / "merge"
    merge.mkdir()
    data.to_parquet(merge / "dataset.parquet", index=False)
    wide = [*KEY_COLUMNS, *PROVENANCE_COLUMNS, *DATASET_COLUMNS, *FEATURES]
    pd.DataFrame(columns=wide).to_csv(merge / "features_wide.csv", index=False)
    # the reliability stage's table also holds perturbed copies: only controls are read
    long = control_rows(data)
    perturbed = long[long["source"] == SHUFFLED].assign(source="perturbation:ntcv:0")
    pd.concat([long, perturbed]).to_parquet(tmp_path / "features.parquet", index=False)
    names = ["redundancy_clusters.tsv", "associations.tsv", "model_ready.parquet",
             "model_ready.csv", "standardisation.tsv", "baseline.tsv",
             "control_associations.tsv"]
    out = AnalyseOutputs(*[str(tmp_path / "out" / name) for name in names])
    run_analyse(dataset=str(merge / "dataset.parquet"),
                features_wide=str(merge / "features_wide.csv"),
                control_features=str(tmp_path / "features.parquet"),
                settings=settings(baseline=False), out=out)
    written = pd.read_csv(tmp_path / "out" / "control_associations.tsv", sep="\t")
    assert set(written["source"]) == {SHUFFLED, RANDOMISED}
    assoc = pd.read_csv(tmp_path / "out" / "associations.tsv", sep="\t",
                        keep_default_na=False)
    row = assoc[(assoc["statistic"] == "auc") & (assoc["feature"] == VOLUME)].iloc[0]
    assert row["survives_control"] == "True" and row["controls"] == f"{RANDOMISED};{SHUFFLED}"


# --- the workflow -------------------------------------------------------------------------------

def _cohort(root) -> list[str]:
    """Twelve subjects, one image each: a sphere whose radius (volume) sets the outcome, and a
    texture inside it that is smooth (spatially correlated) for the positive subjects and white
    for the negative ones, with the same histogram (mean 100, SD 20). Shuffling the ROI's voxels
    (the negative control) keeps the volume and the histogram and destroys the smoothness."""
    import SimpleITK as sitk
    import yaml
    from scipy import ndimage

    rng = np.random.default_rng(5)
    z, y, x = np.indices((16, 32, 32))
    sheet, clinical = [], []
    for k in range(12):
        positive = k % 2
        radius = (9.0 if positive else 6.0) + 0.25 * (k // 2)
        roi = (z - 8.0) ** 2 * 4 + (y - 16.0) ** 2 + (x - 16.0) ** 2 <= radius ** 2
        field = rng.standard_normal(roi.shape)
        if positive:
            field = ndimage.gaussian_filter(field, 1.5)
        field = (field - field[roi].mean()) / field[roi].std()
        values = np.where(roi, 100 + 20 * field, -500 + rng.normal(0, 10, roi.shape))
        mask = sitk.GetImageFromArray(roi.astype(np.uint8))
        mask.SetSpacing((1.0, 1.0, 2.0))
        image = sitk.GetImageFromArray(np.round(values).astype(np.int16))
        image.CopyInformation(mask)
        sitk.WriteImage(mask, str(root / f"mask{k}.nii.gz"))
        sitk.WriteImage(image, str(root / f"img{k}.nii.gz"))
        sheet.append({"subject": f"S{k:02d}", "image": f"img{k}.nii.gz",
                      "mask": f"mask{k}.nii.gz", "modality": "CT"})
        clinical.append({"pid": f"S{k:02d}", "response": positive})
    pd.DataFrame(sheet).to_csv(root / "sheet.tsv", sep="\t", index=False)
    pd.DataFrame(clinical).to_csv(root / "clinical.csv", index=False)
    (root / "dictionary.yaml").write_text(
        "columns:\n  pid: {type: id, role: identifier}\n"
        "  response: {type: binary-outcome, role: outcome}\n")
    (root / "params.yaml").write_text(yaml.safe_dump(
        {"setting": {"binWidth": 10}, "imageType": {"Original": {}},
         "featureClass": {"shape": ["VoxelVolume"], "firstorder": ["Mean", "Variance"],
                          "glcm": ["Correlation", "JointEnergy"]}}))
    config = {"cohort": "ctl", "sheet": str(root / "sheet.tsv"), "key_file": str(root / "key"),
              "clinical": str(root / "clinical.csv"), "clinical_id": "pid",
              "clinical_dictionary": str(root / "dictionary.yaml"),
              "extract": {"params": str(root / "params.yaml"), "image_types": [],
                          "families": {f: {"enabled": False}
                                       for f in ("semantic", "fractal", "minkowski")}},
              "reliability": {"enabled": True,
                              "perturbation": {"chains": [{"name": "n", "steps": ["noise"],
                                                           "copies": 2}],
                                               "noise_sigma": 1},
                              "negative_controls": {"kinds": ["shuffled"], "regions": ["roi"]}},
              "analyse": {"enabled": True, "reliable_only": False, "baseline": False,
                          "bootstrap_resamples": 200}}
    (root / "cohort.yaml").write_text(yaml.safe_dump(config))
    return ["--cores", "2", "--configfile", str(root / "cohort.yaml")]


@pytest.mark.slow
def test_workflow_analysis_flags_what_the_negative_control_reproduces(tmp_path) -> None:
    from workflow_helpers import snakemake

    args = _cohort(tmp_path)
    snakemake(tmp_path, ["analyse", *args])
    out = tmp_path / "results" / "ctl" / "analysis"
    controls = pd.read_csv(out / "control_associations.tsv", sep="\t")
    assert set(controls["source"]) == {"control:shuffled:roi"}
    assoc = pd.read_csv(out / "associations.tsv", sep="\t", dtype=str, keep_default_na=False)
    auc = assoc[assoc["statistic"] == "auc"].set_index("feature")
    # the volume and the smoothness both tell the classes apart ...
    for feature in ("original_shape_VoxelVolume", "original_glcm_Correlation"):
        assert float(auc.at[feature, "q"]) < CONTROL_Q, auc.loc[feature]
    # ... the volume survives shuffling the ROI's voxels, the texture does not
    assert auc.at["original_shape_VoxelVolume", "survives_control"] == "True"
    assert auc.at["original_shape_VoxelVolume", "controls"] == "control:shuffled:roi"
    assert auc.at["original_glcm_Correlation", "survives_control"] == "False"
    ctl = controls.set_index("feature")
    assert float(ctl.at["original_glcm_Correlation", "q"]) >= CONTROL_Q
    # the same test on the control's values: the histogram is kept, so are its statistics
    assert ctl.at["original_firstorder_Mean", "p"] == float(auc.at["original_firstorder_Mean",
                                                                   "p"])
