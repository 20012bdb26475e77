"""Benchmark: one CT with many RTSTRUCT ROIs -- radflow vs ten separate PyRadiomics CLI runs.

Not a test. Run from the repository root::

    .venv/bin/python bench/rois.py                 # 10 ROIs, config/pyradiomics.yaml
    .venv/bin/python bench/rois.py --rois 5 --params my.yaml --threads 1

Inputs (written to a temporary folder): a synthetic CT series (DICOM, 160 x 160 x 64 voxels,
0.8 x 0.8 x 2.5 mm, textured tissue) with ``--rois`` spherical lesions of 4-9 mm radius, and one
RTSTRUCT holding one ROI per lesion (contours traced from the voxel spheres).

Timed, each step in a new process, run one after another (what Snakemake does on one core):

* ``radflow``: what the workflow runs -- the image is converted once (``convert_one``), the
  RTSTRUCT once for all ROIs (``convert_one``: one NIfTI per ROI on the image grid), then ONE
  ``extract_one`` job for the image (``radflow.extract.run_extract`` with every pair record: the
  image is read once, the ROIs extracted one after another; Laws off, so both tools compute the
  same features);
* ``radflow, one extract job per ROI``: the same conversions, then one process per ROI (how
  radflow 0.1 ran, for comparison);
* ``pyradiomics CLI x N``: ``pyradiomics image.nii.gz mask_k.nii.gz --param PARAMS`` once per
  ROI on radflow's NIfTI files. PyRadiomics cannot read DICOM series or RTSTRUCTs, so this
  baseline leaves out any conversion: it is the lower bound of a "one CLI run per ROI" pipeline.
  (The label is passed as ``--setting label:K``: the CLI's ``--label`` option is ignored by
  pyradiomics 3.1.4 for a single image/mask pair, which then fails with "Label (1) not present".)

The CLI's and radflow's feature values are compared ROI by ROI (they must be identical).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.demo.synthetic_masks import RoiSpec, contours_from_mask, write_rtstruct
from radflow.dicom.grid import Grid
from radflow.io.atomic import write_json

REPO = Path(__file__).resolve().parents[1]
SHAPE = (64, 160, 160)  # slices, rows, columns
SPACING = (0.8, 0.8, 2.5)


def make_case(folder: Path, n_rois: int) -> tuple[list[Path], Path, Grid]:
    """Write the CT series and the RTSTRUCT; return (CT files, RTSTRUCT file, grid)."""
    rng = np.random.default_rng(7)
    nz, ny, nx = SHAPE
    z, y, x = np.meshgrid(np.arange(nz) * SPACING[2], np.arange(ny) * SPACING[1],
                          np.arange(nx) * SPACING[0], indexing="ij")
    hu = 40 + 15 * rng.standard_normal(SHAPE)
    spheres = []
    for k in range(n_rois):
        radius = 4.0 + 5.0 * k / max(n_rois - 1, 1)
        centre = (20 + 90 * rng.random(), 20 + 90 * rng.random(), 30 + 100 * rng.random())
        inside = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2
        hu = np.where(inside, 90 + 25 * rng.standard_normal(SHAPE), hu)
        spheres.append(inside)
    patient, study = Patient("BENCH-1", "Bench^Patient"), Study(derived_uid("b-st"),
                                                                derived_uid("b-for"))
    uid = str(derived_uid("bench-ct"))
    files = write_series(folder / "ct", np.round(hu + 1024).astype(np.int16), patient=patient,
                         study=study, series_uid=uid, spacing=SPACING)
    grid = Grid((nx, ny, nz), SPACING, (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    sops = [str(derived_uid(uid, k)) for k in range(nz)]
    rois = [RoiSpec(k + 1, f"lesion {k + 1}", tuple(contours_from_mask(m, grid, sops)))
            for k, m in enumerate(spheres)]
    rs = write_rtstruct(folder / "rs" / "rs.dcm", patient=patient, study=study,
                        series_uid=str(derived_uid("bench-rs")), rois=rois,
                        image_series_uid=uid, image_uids=sops)
    return files, rs, grid


def timed(cmd: list[str]) -> float:
    """Wall time (s) of a subprocess; raises when it fails."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{cmd[:3]} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


CONVERT = ("import sys; from radflow.convert import run_convert; "
           "from radflow.settings import GeometrySettings; "
           "run_convert(source_json=sys.argv[1], sidecar_json=sys.argv[2], "
           "settings=GeometrySettings(), image_sidecar=(sys.argv[3:] or [None])[0])")
EXTRACT = ("import sys; from radflow.extract import run_extract; "
           "run_extract(sys.argv[5:], *sys.argv[1:4], threads=int(sys.argv[4]))")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rois", type=int, default=10)
    parser.add_argument("--params", type=Path, default=REPO / "config" / "pyradiomics.yaml")
    parser.add_argument("--threads", type=int, default=1, help="SimpleITK threads (radflow)")
    args = parser.parse_args(argv)
    py, cli = sys.executable, str(Path(sys.executable).with_name("pyradiomics"))
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="radflow-bench-rois-") as tmp_dir:
        tmp = Path(tmp_dir)
        files, rs, _ = make_case(tmp / "dicom", args.rois)
        out = tmp / "convert"
        write_json(tmp / "img.src.json", {"series_key": "simage", "case_id": "c1",
                                          "kind": "dicom", "role": "image",
                                          "files": [str(f) for f in files]})
        labels = list(range(1, args.rois + 1))
        write_json(tmp / "rs.src.json", {
            "series_key": "smask", "case_id": "c1", "kind": "rtstruct", "role": "mask",
            "files": [str(rs)], "mask": {"image_key": "simage", "labels": labels,
                                         "fractional_threshold": 0.5,
                                         "contours_outside_image": "fail"}})
        times["convert image (1 job)"] = timed(
            [py, "-c", CONVERT, str(tmp / "img.src.json"), str(out / "simage.json")])
        times["convert RTSTRUCT, all ROIs (1 job)"] = timed(
            [py, "-c", CONVERT, str(tmp / "rs.src.json"), str(out / "smask.json"),
             str(out / "simage.json")])
        image = json.loads((out / "simage.json").read_text())
        mask = json.loads((out / "smask.json").read_text())
        pairs = []
        for label in labels:
            roi = mask["rois"][str(label)]
            pairs.append({"pair_id": f"p{label}", "case_id": "c1", "image_key": "simage",
                          "mask_key": "smask", "roi": f"lesion {label}", "label": label,
                          "status": "ok", "image": str(out / image["nifti"]),
                          "mask": str(out / roi["nifti"]), "image_hash": image["voxel_hash"],
                          "mask_hash": roi["voxel_hash"]})
            write_json(tmp / f"p{label}.json", pairs[-1])
        times[f"extract, 1 job for {args.rois} ROIs"] = timed(
            [py, "-c", EXTRACT, str(args.params), str(tmp / "unit.parquet"),
             str(tmp / "unit.status.json"), str(args.threads),
             *(str(tmp / f"{p['pair_id']}.json") for p in pairs)])
        unit = pd.read_parquet(tmp / "unit.parquet")
        per_roi = 0.0
        for p in pairs:
            per_roi += timed([py, "-c", EXTRACT, str(args.params),
                              str(tmp / f"{p['pair_id']}.parquet"),
                              str(tmp / f"{p['pair_id']}.status.json"), str(args.threads),
                              str(tmp / f"{p['pair_id']}.json")])
            alone = pd.read_parquet(tmp / f"{p['pair_id']}.parquet")
            same = unit[unit["pair_id"] == p["pair_id"]].reset_index(drop=True)
            pd.testing.assert_frame_equal(same, alone)
        times[f"extract, {args.rois} jobs (one per ROI)"] = per_roi
        cli_total, n_diff, n_values = 0.0, 0, 0
        for p in pairs:
            cli_out = tmp / f"{p['pair_id']}.cli.json"
            cli_total += timed([cli, p["image"], p["mask"], "--param", str(args.params),
                                "--setting", f"label:{p['label']}", "-f", "json", "-o",
                                str(cli_out)])
            theirs = {k: float(v) for k, v in json.loads(cli_out.read_text())[0].items()
                      if not k.startswith("diagnostics_") and k not in ("Image", "Mask")}
            table = unit[unit["pair_id"] == p["pair_id"]]
            ours = {f"{t}_{c}_{f}": v for t, c, f, v in table[
                ["image_type", "feature_class", "feature", "value"]].itertuples(index=False)}
            n_values += len(ours)
            n_diff += (ours.keys() != theirs.keys()) + sum(
                1 for k in ours if k in theirs and not (
                    ours[k] == theirs[k] or (math.isnan(ours[k]) and math.isnan(theirs[k]))))
        times[f"pyradiomics CLI x {args.rois}"] = cli_total
    conv = times["convert image (1 job)"] + times["convert RTSTRUCT, all ROIs (1 job)"]
    radflow = conv + times[f"extract, 1 job for {args.rois} ROIs"]
    per_roi = conv + times[f"extract, {args.rois} jobs (one per ROI)"]
    print(f"image {SHAPE[2]} x {SHAPE[1]} x {SHAPE[0]} voxels, {args.rois} ROIs, params "
          f"{args.params.name}, SimpleITK threads {args.threads}, {os.cpu_count()} CPUs")
    for name, value in times.items():
        print(f"  {name:<42} {value:8.2f} s")
    print(f"  {'radflow (as the workflow runs)':<42} {radflow:8.2f} s   "
          f"ratio to CLI x {args.rois}: {radflow / cli_total:.2f}")
    print(f"  {'radflow, one extract job per ROI':<42} {per_roi:8.2f} s   "
          f"ratio to CLI x {args.rois}: {per_roi / cli_total:.2f}")
    print(f"  a per-ROI pipeline converting the image once per ROI would spend "
          f"{args.rois} x {times['convert image (1 job)']:.2f} s on the image alone")
    print(f"  feature values differing from the CLI: {n_diff} of {n_values}")
    return 0 if n_diff == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
