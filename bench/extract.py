"""Benchmark: radflow's extract stage vs the bare PyRadiomics command line, same inputs.

Not a test. Run from the repository root::

    .venv/bin/python bench/extract.py                   # lung1 test case, config/pyradiomics.yaml
    .venv/bin/python bench/extract.py --case synthetic  # 40^3-voxel lesion, 1 mm voxels
    .venv/bin/python bench/extract.py --params my.yaml --repeat 5

Both tools read the same NIfTI image and mask (written once by radflow's NIfTI writer) and the
same params file. Timed, each ``--repeat`` times (median reported):

* ``pyradiomics CLI``: ``pyradiomics IMAGE MASK --param PARAMS -f json`` in a new process;
* ``radflow job``: ``radflow.extract.run_extract`` in a new process (what one Snakemake job does:
  imports, read pair JSON, hash voxels, extract, write Parquet + status JSON);
* ``radflow in-process``: :func:`radflow.extract.extract_pair` in this (warmed-up) process.

The CLI's and radflow's feature values are compared (they must be identical).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from radflow.extract import extract_pair
from radflow.io.nifti import write_nifti

REPO = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("RADFLOW_TESTDATA", REPO.parent / "shared" / "data"))


def synthetic_case() -> tuple[sitk.Image, sitk.Image]:
    """CT-like volume (1 mm voxels, 96 x 128 x 128) with a textured 40-voxel-diameter sphere."""
    rng = np.random.default_rng(0)
    shape = (96, 128, 128)
    z, y, x = np.indices(shape)
    sphere = (z - 48) ** 2 + (y - 64) ** 2 + (x - 64) ** 2 <= 20 ** 2
    arr = rng.normal(-700, 60, shape)
    arr[sphere] = rng.normal(30, 40, int(sphere.sum()))
    image = sitk.GetImageFromArray(np.round(arr).astype(np.int16))
    mask = sitk.GetImageFromArray(sphere.astype(np.uint8))
    mask.CopyInformation(image)
    return image, mask


def load_case(case: str) -> tuple[sitk.Image, sitk.Image]:
    """Image and mask of a PyRadiomics test case, or the synthetic case."""
    if case == "synthetic":
        return synthetic_case()
    folder = TESTDATA / "pyradiomics_testcases" / "images"
    return (sitk.ReadImage(str(folder / f"{case}_image.nrrd")),
            sitk.ReadImage(str(folder / f"{case}_label.nrrd")))


def timed_run(cmd: list[str]) -> float:
    """Wall time (s) of a subprocess; raises when it fails."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="lung1",
                        help="brain1|brain2|breast1|lung1|lung2|synthetic (default lung1)")
    parser.add_argument("--params", type=Path, default=REPO / "config" / "pyradiomics.yaml")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    cli = Path(sys.executable).with_name("pyradiomics")
    image, mask = load_case(args.case)
    with tempfile.TemporaryDirectory(prefix="radflow-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        img_path, mask_path = tmp / "image.nii.gz", tmp / "mask.nii.gz"
        pair = {"pair_id": f"{args.case}-bench", "case_id": args.case, "image_key": "IMG",
                "mask_key": "MSK", "roi": "ROI", "label": 1, "status": "ok",
                "image": str(img_path), "mask": str(mask_path),
                "image_hash": write_nifti(img_path, image),
                "mask_hash": write_nifti(mask_path, mask), "mask_resampled": False}
        pair_json = tmp / "pair.json"
        pair_json.write_text(json.dumps(pair), encoding="utf-8")
        cli_out = tmp / "cli.json"
        cli_cmd = [str(cli), str(img_path), str(mask_path), "--param", str(args.params),
                   "-f", "json", "-o", str(cli_out)]
        job_code = ("import sys; from radflow.extract import run_extract; "
                    "run_extract(*sys.argv[1:5])")
        job_cmd = [sys.executable, "-c", job_code, str(pair_json), str(args.params),
                   str(tmp / "f.parquet"), str(tmp / "s.json")]

        table, status = extract_pair(pair, args.params)  # warm-up (imports, caches)
        if status["status"] != "ok":
            raise SystemExit(f"radflow extraction failed: {status}")
        times: dict[str, list[float]] = {"pyradiomics CLI": [], "radflow job": [],
                                         "radflow in-process": []}
        for _ in range(args.repeat):
            cli_out.unlink(missing_ok=True)
            times["pyradiomics CLI"].append(timed_run(cli_cmd))
            times["radflow job"].append(timed_run(job_cmd))
            start = time.perf_counter()
            extract_pair(pair, args.params)
            times["radflow in-process"].append(time.perf_counter() - start)

        cli_values = json.loads(cli_out.read_text(encoding="utf-8"))[0]  # one case
        job_table = pd.read_parquet(tmp / "f.parquet")

    ours = {f"{t}_{c}_{f}": v for t, c, f, v in
            job_table[["image_type", "feature_class", "feature", "value"]].itertuples(index=False)}
    theirs = {k: float(v) for k, v in cli_values.items()
              if not k.startswith("diagnostics_") and k not in ("Image", "Mask")}
    same_names = ours.keys() == theirs.keys()
    n_diff = sum(1 for k in ours if k in theirs and not (
        ours[k] == theirs[k] or (math.isnan(ours[k]) and math.isnan(theirs[k]))))

    roi_voxels = int((sitk.GetArrayViewFromImage(mask) == 1).sum())
    print(f"case {args.case}: image {image.GetSize()} spacing "
          f"{tuple(round(s, 4) for s in image.GetSpacing())} mm, ROI {roi_voxels} voxels")
    print(f"params {args.params.name}: {len(table)} features; repeats {args.repeat} "
          f"(median wall time); {os.cpu_count()} CPUs")
    for name, values in times.items():
        print(f"  {name:<20} {statistics.median(values):7.2f} s   "
              f"(runs: {', '.join(f'{v:.2f}' for v in values)})")
    cli_median = statistics.median(times["pyradiomics CLI"])
    for name in ("radflow job", "radflow in-process"):
        ratio = statistics.median(times[name]) / cli_median
        print(f"  ratio {name} / pyradiomics CLI: {ratio:.2f}")
    print(f"  same feature names: {same_names}; values differing: {n_diff} of {len(ours)}")
    return 0 if same_names and n_diff == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
