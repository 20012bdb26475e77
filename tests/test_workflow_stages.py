"""Each stage has a target rule that runs that stage (and what it needs) and nothing after it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from workflow_helpers import job_counts, snakemake

pytestmark = pytest.mark.slow


def _nifti_cohort(root) -> list[str]:
    rng = np.random.default_rng(7)
    rows = []
    for i in range(2):
        img = sitk.GetImageFromArray(rng.normal(0, 50, (10, 12, 12)).astype(np.float32))
        mask_arr = np.zeros((10, 12, 12), np.uint8)
        mask_arr[2:8, 3:9, 3:9] = 1
        mask = sitk.GetImageFromArray(mask_arr)
        sitk.WriteImage(img, str(root / f"img{i}.nii.gz"))
        sitk.WriteImage(mask, str(root / f"mask{i}.nii.gz"))
        rows.append({"subject": f"S{i}", "image": f"img{i}.nii.gz", "mask": f"mask{i}.nii.gz"})
    pd.DataFrame(rows).to_csv(root / "sheet.tsv", sep="\t", index=False)
    (root / "params.yaml").write_text("imageType: {Original: {}}\nfeatureClass: {firstorder: []}\n")
    return ["--cores", "2", "--config", "cohort=stages", f"sheet={root / 'sheet.tsv'}",
            f"key_file={root / 'key'}",
            f"extract={{params: {root / 'params.yaml'}, image_types: []}}"]


def test_stage_targets_run_only_their_stage(tmp_path) -> None:
    args = _nifti_cohort(tmp_path)
    res = tmp_path / "results" / "stages"
    expected = {
        "crawl": ({"crawl": 1}, res / "crawl" / "series.tsv", res / "convert"),
        "convert": ({"convert_one": 4, "convert": 1}, res / "convert", res / "pair"),
        "pair": ({"pair_one": 2, "pair": 1}, res / "pair" / "pairs.tsv", res / "extract"),
        "extract": ({"extract_one": 2, "extract": 1}, res / "extract", res / "merge"),
        "merge": ({"qc": 1, "merge": 1}, res / "merge" / "dataset.csv", None),
    }
    for target, (jobs, made, not_yet) in expected.items():
        run = snakemake(tmp_path, [target, *args])
        assert job_counts(run.stdout + run.stderr) == jobs, target
        assert made.exists(), target
        if not_yet is not None:
            assert not not_yet.exists(), f"{target} ran a later stage"
    # Nothing left to do for any target afterwards.
    for target in expected:
        dry = snakemake(tmp_path, ["-n", target, *args])
        assert job_counts(dry.stdout) == {}, target
    # The run summary and the clinical join report are declared outputs (of rule qc): Snakemake
    # lists them among what --delete-all-output removes, and reruns them when their inputs change.
    listed = snakemake(tmp_path, ["--delete-all-output", "--dry-run", *args])
    would_delete = listed.stdout + listed.stderr
    for report in ("qc/run_summary.tsv", "merge/clinical_join_report.tsv"):
        assert (res / report).is_file(), report
        assert f"results/stages/{report}" in would_delete, report
    assert "results/stages/merge/dataset.csv" in would_delete  # the check can see a listed file
