"""Benchmark: the resource requests of the per-item rules against their ``benchmark:`` records.

Not a test. Run from the repository root::

    .venv/bin/python bench/resources.py                       # 64x64x36, 256x256x150, 512x512x300
    .venv/bin/python bench/resources.py --sizes 64x64x36      # a quick look

Writes one synthetic CT patient per size (DICOM, 0.75 x 0.75 x 1 mm, textured tissue, one 15 mm
spherical lesion in an RTSTRUCT found by the crawl) and runs the real workflow on them with
``--cores 1`` and the default config (``config/pyradiomics.yaml``: LoG + wavelet after resampling
to 1 mm; the default Laws image type). Every ``convert_one``, ``pair_one``, ``extract_one`` and
``merge`` job writes a Snakemake ``benchmark:`` record (``results/<cohort>/benchmarks/``); the
script prints, per job, the image size, what the job asked for (``mem_mb``, ``runtime``, as
computed by :mod:`radflow.plan.resources` and printed by Snakemake) and what the record measured
(``max_rss``, wall seconds), with the ratios. A request below its measurement is flagged; the
script then exits 1.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.demo.synthetic_masks import RoiSpec, contours_from_mask, write_rtstruct
from radflow.dicom.grid import Grid

REPO = Path(__file__).resolve().parents[1]
SPACING = (0.75, 0.75, 1.0)
DEFAULT_SIZES = ("64x64x36", "256x256x150", "512x512x300")
_JOB = re.compile(r"^(?:local)?rule (?P<rule>\w+):\n(?:[ \t]+.*\n)*?"
                  r"[ \t]+benchmark: (?P<bench>\S+)\n"
                  r"(?:[ \t]+.*\n)*?[ \t]+resources: (?P<res>.*)", re.MULTILINE)


def write_patient(root: Path, index: int, size: tuple[int, int, int]) -> None:
    """A CT of ``size`` (columns, rows, slices) and an RTSTRUCT with one spherical lesion."""
    nx, ny, nz = size
    rng = np.random.default_rng(index)
    hu = (40 + 15 * rng.standard_normal((nz, ny, nx), dtype=np.float32))
    z, y, x = np.ogrid[:nz, :ny, :nx]
    centre = (nz / 2, ny / 2, nx / 2)
    radius = min(15.0, 0.4 * nx * SPACING[0], 0.4 * nz * SPACING[2])
    inside = (((z - centre[0]) * SPACING[2]) ** 2 + ((y - centre[1]) * SPACING[1]) ** 2
              + ((x - centre[2]) * SPACING[0]) ** 2) <= radius**2
    hu[inside] += 50 + 25 * rng.standard_normal(int(inside.sum()), dtype=np.float32)
    patient = Patient(f"RES-{index}", f"Resources^{index}")
    study = Study(derived_uid("res-st", index), derived_uid("res-for", index))
    uid = str(derived_uid("res-ct", index))
    write_series(root / f"p{index}" / "ct", np.round(hu + 1024).astype(np.int16),
                 patient=patient, study=study, series_uid=uid, spacing=SPACING)
    grid = Grid((nx, ny, nz), SPACING, (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    sops = [str(derived_uid(uid, k)) for k in range(nz)]
    roi = RoiSpec(1, "lesion", tuple(contours_from_mask(inside, grid, sops)))
    write_rtstruct(root / f"p{index}" / "rs" / "rs.dcm", patient=patient, study=study,
                   series_uid=str(derived_uid("res-rs", index)), rois=[roi],
                   image_series_uid=uid, image_uids=sops)


def run(work: Path, dicom_root: Path) -> str:
    """Run the workflow on one core; return Snakemake's output."""
    cfg = work / "cohort.yaml"
    cfg.write_text(yaml.safe_dump({"cohort": "res", "dicom_root": str(dicom_root),
                                   "key_file": str(work / "key")}))
    env = dict(os.environ, ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                           "--directory", str(work), "--cores", "1", "--configfile", str(cfg)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        raise SystemExit(f"snakemake failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    return proc.stdout + proc.stderr


def report(work: Path, log: str, voxels_of: dict[str, str]) -> pd.DataFrame:
    """One row per benchmarked job: request and measurement."""
    rows = []
    for m in _JOB.finditer(log):
        res = dict(item.split("=", 1) for item in m["res"].split(", "))
        bench = pd.read_csv(work / m["bench"], sep="\t")
        key = Path(m["bench"]).stem
        rows.append({"rule": m["rule"], "image": voxels_of.get(key, ""),
                     "mem_mb": int(res["mem_mb"]), "max_rss": float(bench["max_rss"].item()),
                     "runtime_s": 60 * int(res["runtime"]), "s": float(bench["s"].item())})
    table = pd.DataFrame(rows)
    table["mem_ratio"] = (table["mem_mb"] / table["max_rss"]).round(2)
    table["time_ratio"] = (table["runtime_s"] / table["s"]).round(1)
    return table.sort_values(["rule", "image"], kind="stable").reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES),
                        help="image sizes as COLUMNSxROWSxSLICES")
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    with tempfile.TemporaryDirectory(prefix="radflow-bench-resources-") as tmp_dir:
        tmp = Path(tmp_dir)
        for i, size in enumerate(sizes):
            write_patient(tmp / "dicom", i, size)
        work = tmp / "work"
        work.mkdir()
        log = run(work, tmp / "dicom")
        series = pd.read_csv(work / "results/res/crawl/series.tsv", sep="\t", dtype=str,
                             keep_default_na=False)
        pairs = pd.read_csv(work / "results/res/crawl/pair_plan.tsv", sep="\t", dtype=str,
                            keep_default_na=False)
        size_of = {r.series_key: f"{r.cols}x{r.rows}x{r.slices}"
                   for r in series.itertuples() if r.modality == "CT"}
        voxels_of = dict(size_of)
        for r in pairs.itertuples():
            voxels_of[r.pair_id] = voxels_of[r.mask_key] = size_of.get(r.image_key, "")
        table = report(work, log, voxels_of)
    print(f"{len(sizes)} CT patient(s), one 15 mm lesion each; --cores 1; default config; "
          f"{os.cpu_count()} CPUs")
    print(table.to_string(index=False))
    low = table[(table["mem_mb"] < table["max_rss"]) | (table["runtime_s"] < table["s"])]
    if len(low):
        print(f"REQUEST BELOW MEASUREMENT for {len(low)} job(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
