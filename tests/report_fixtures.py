"""A small synthetic cohort's stage files for the report tests (no workflow run).

:func:`make_report_inputs` writes, below a folder, what the report reads: tiny CT / MR / PET
volumes with an ellipsoid ROI each (NIfTI, known spacing), their pair records, a series table,
a run summary and join report, a merged dataset with a few features and outcomes, and analysis
tables with the analyse stage's documented columns (written here, not computed: the report only
reads them). Pair, case and series keys are made with radflow's key patterns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from radflow.records import PairRecord, write_pair_record
from radflow.report.stage import AnalysisFiles, ReportInputs

FEATURES = ("original_shape_VoxelVolume", "original_firstorder_Mean",
            "original_firstorder_Entropy", "original_glcm_Contrast", "random_feature")
MODALITIES = ("CT", "MR", "PT")


@dataclass(frozen=True)
class ReportCohort:
    inputs: ReportInputs
    pair_ids: tuple[str, ...]
    failed_pair: str


def _volume(path: Path, array: np.ndarray, spacing: tuple[float, float, float]) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin((-10.0, -20.0, 30.0))
    sitk.WriteImage(image, str(path))


def make_report_inputs(root: Path, n_pairs: int = 30, *, analysis: bool = True,
                       seed: int = 3) -> ReportCohort:
    """Write the stage files of ``n_pairs`` pairs (the last one failed) below ``root``."""
    rng = np.random.default_rng(seed)
    res = root / "results" / "t"
    for sub in ("pair", "crawl", "qc", "merge", "analysis", "convert"):
        (res / sub).mkdir(parents=True, exist_ok=True)
    series_rows, records, data = [], [], []
    z, y, x = np.mgrid[0:12, 0:32, 0:32]
    for i in range(n_pairs):
        case, image_key, mask_key = f"c{i:012x}", f"s{2 * i:016x}", f"s{2 * i + 1:016x}"
        pair_id = f"p{i + 1:016x}"
        modality = MODALITIES[i % 3]
        radius = 3.0 + (i % 5)
        inside = ((x - 16) / radius) ** 2 + ((y - 15) / (radius * 1.5)) ** 2 + \
            ((z - 6) * 3.0 / radius) ** 2 <= 1.0
        base = {"CT": -800.0 if i % 2 else 30.0, "MR": 300.0, "PT": 1.0}[modality]
        image = (base + rng.normal(0, 20 if modality != "PT" else 0.2, inside.shape)
                 + inside * (100.0 if modality != "PT" else 5.0)).astype(np.float32)
        folder = res / "convert" / case
        folder.mkdir(exist_ok=True)
        _volume(folder / f"{image_key}.nii.gz", image, (0.8, 0.8, 3.0))
        _volume(folder / f"{mask_key}.nii.gz", inside.astype(np.uint8), (0.8, 0.8, 3.0))
        failed = i == n_pairs - 1
        status = "failed:empty-mask" if failed else "ok"
        rec = PairRecord(pair_id=pair_id, status=status, case_id=case, image_key=image_key,
                         mask_key=mask_key, roi="lesion", label=1,
                         image=str(folder / f"{image_key}.nii.gz"),
                         mask=str(folder / f"{mask_key}.nii.gz"), n_voxels=int(inside.sum()))
        write_pair_record(res / "pair" / f"{pair_id}.json", rec)
        records.append(str(res / "pair" / f"{pair_id}.json"))
        series_rows += [{"series_key": image_key, "modality": modality},
                        {"series_key": mask_key, "modality": "SEG"}]
        if not failed:
            volume = float(inside.sum())
            data.append({"case_id": case, "image_key": image_key, "mask_key": mask_key,
                         "pair_id": pair_id, "roi": "lesion", "label": 1,
                         "radflow_version": "0.7.0", "params_hash": "ab" * 32,
                         "params_set": f"{modality}:config/params/x.yaml",
                         "outcome": int(volume > 300), "followup": 10.0 + i,
                         "event": i % 2,
                         "original_shape_VoxelVolume": volume,
                         "original_firstorder_Mean": float(image[inside].mean()),
                         "original_firstorder_Entropy": float(rng.normal()),
                         "original_glcm_Contrast": volume * 0.01 + float(rng.normal(0, 0.1)),
                         "random_feature": float(rng.normal())})
    pd.DataFrame(series_rows).to_csv(res / "crawl" / "series.tsv", sep="\t", index=False)
    pd.DataFrame({"stage": ["crawl", "crawl", "pair", "pair"],
                  "status": ["excluded:localizer", "ok", "failed:empty-mask", "ok"],
                  "count": [1, 2 * n_pairs, 1, n_pairs - 1]}).to_csv(
        res / "qc" / "run_summary.tsv", sep="\t", index=False)
    pd.DataFrame({"kind": ["undeclared-column"], "case_id": [""], "detail": ["notes"]}).to_csv(
        res / "merge" / "clinical_join_report.tsv", sep="\t", index=False)
    dataset = pd.DataFrame(data)
    dataset.to_parquet(res / "merge" / "dataset.parquet")
    keys = ["case_id", "image_key", "mask_key", "pair_id", "roi", "label", "radflow_version",
            "params_hash", "params_set"]
    dataset[keys + list(FEATURES)].to_csv(res / "merge" / "features_wide.csv", index=False)
    files = _analysis_tables(res / "analysis", dataset) if analysis else None
    inputs = ReportInputs(pair_records=records, series=str(res / "crawl" / "series.tsv"),
                          run_summary=str(res / "qc" / "run_summary.tsv"),
                          join_report=str(res / "merge" / "clinical_join_report.tsv"),
                          dataset=str(res / "merge" / "dataset.parquet"),
                          features_wide=str(res / "merge" / "features_wide.csv"),
                          analysis=files)
    pair_ids = tuple(json.loads(Path(r).read_text())["pair_id"] for r in records)
    return ReportCohort(inputs, pair_ids, pair_ids[-1])


def _analysis_tables(out: Path, dataset: pd.DataFrame) -> AnalysisFiles:
    clusters = pd.DataFrame({
        "feature": list(FEATURES),
        "cluster": [1, 2, 3, 1, 4],
        "representative": [True, True, True, False, True],
        "mean_abs_rho": [0.95, None, None, 0.95, None], "note": [""] * 5})
    rows = []
    for outcome, otype, stat in (("outcome", "binary", "auc"),
                                 ("followup", "time-to-event", "cox_hr"),
                                 ("followup", "time-to-event", "logrank")):
        for rank, feature in enumerate(FEATURES, start=1):
            est = {"auc": 0.95 - 0.1 * rank, "cox_hr": 1.8 / rank, "logrank": 5.0 / rank}[stat]
            ci = (None, None) if stat == "logrank" else (est * 0.8, est * 1.2)
            rows.append({"outcome": outcome, "outcome_type": otype, "statistic": stat,
                         "rank": rank, "feature": feature, "estimate": est, "ci_low": ci[0],
                         "ci_high": ci[1], "p": 0.001 * rank ** 3, "q": 0.004 * rank ** 3,
                         "n": len(dataset), "n_events": 10, "note": ""})
    model = dataset[["case_id", "pair_id", "image_key", "roi", "label"]].assign(
        split=["train", "test"] * (len(dataset) // 2) + ["train"] * (len(dataset) % 2),
        outcome=dataset["outcome"], followup_time=dataset["followup"],
        followup_event=dataset["event"])
    model = pd.concat([model, dataset[list(FEATURES)]], axis=1)
    baseline = pd.DataFrame({"outcome": ["outcome"], "outcome_type": ["binary"],
                             "model": ["logistic-l2"], "metric": ["cv_auc"], "mean": [0.8],
                             "sd": [0.1], "folds": [5], "n": [len(dataset)],
                             "n_features": [4], "note": [""]})
    files = AnalysisFiles(str(out / "redundancy_clusters.tsv"), str(out / "associations.tsv"),
                          str(out / "model_ready.parquet"), str(out / "baseline.tsv"))
    clusters.to_csv(files.clusters, sep="\t", index=False)
    pd.DataFrame(rows).to_csv(files.associations, sep="\t", index=False)
    model.to_parquet(files.model_ready)
    baseline.to_csv(files.baseline, sep="\t", index=False)
    return files
