"""Benchmark: radflow's convert job vs ``dcm2niix -z y`` on one synthetic CT series.

Not a test. Run from the repository root::

    .venv/bin/python bench/convert.py                  # 300 x 512 x 512 CT, 3 pairs
    .venv/bin/python bench/convert.py --slices 60 --pairs 5 --keep /tmp/bench-convert

A synthetic CT series (int16 stored values, RescaleIntercept -1024, one uncompressed file per
slice, written with :func:`radflow.demo.synthetic.write_series`) is generated once: a body
ellipse of soft tissue with two lungs and a spine, smoothly varying along z, plus Gaussian noise
(sd 12 HU) inside the body, so that gzip has realistic work (noise dominates the compressed size).

Then, A B A B in whole fresh processes (the machine is shared, so runs are paired and
interleaved), ``--pairs`` times:

* ``dcm2niix``: ``dcm2niix -z y -f ref -o DIR SERIES`` (the Debian build calls ``pigz`` when it is
  installed, as here: multi-threaded gzip, level 6);
* ``radflow``: :func:`radflow.convert.run_convert` on a source JSON in a new Python process (what
  one ``convert_one`` job does: imports, read the series, write NIfTI + sidecar).

Each child's wall time, peak RSS and CPU time (``ru_maxrss``, ``ru_utime + ru_stime`` of
:func:`os.wait4`, which cover the children it waited for, e.g. dcm2niix's ``pigz``) are
recorded; the script prints the medians,
the paired ratios radflow / dcm2niix (median and range), ``uptime``, and checks that both outputs
hold the same physical volume (values exactly equal after orienting both to LPS; origin, spacing
and direction within 1e-3 mm) and that the sidecar's ``voxel_hash`` equals the hash of the file
as read back.

Gzip choice (radflow.io.atomic): python-isal (``isal``, ISA-L's igzip, level 2 of 0-3),
measured on 60 slices of this volume (30 MiB of int16), one core, single-threaded:

============  =======  ==========
codec         time s   size/raw
============  =======  ==========
zlib 6        2.81     0.278       (radflow before: stdlib gzip level 6)
zlib 1        0.53     0.285
zlib-ng 2     0.41     0.282
zlib-ng 6     0.54     0.275
isal 1        0.23     0.298
isal 2        0.21     0.294
isal 3        0.20     0.286
pigz -6       1.71     0.279       (what dcm2niix -z y runs; 2 threads)
============  =======  ==========

ISA-L is 2-3x faster than zlib-ng and 10x faster than zlib level 6, for files 3-6 % larger than
level 6. Level 2 is python-isal's default (xopen likewise avoids level 3, which on other data
compresses no better than level 2). The gzip stream has mtime 0 and no file name, as before; the
deflate bytes differ from zlib's, so files written before this change are not byte-identical to
new ones (their voxels and voxel hashes are).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.io.nifti import read_image, voxel_hash

RADFLOW_CODE = ("import sys; from radflow.convert import run_convert; "
                "from radflow.settings import GeometrySettings; "
                "run_convert(source_json=sys.argv[1], sidecar_json=sys.argv[2], "
                "settings=GeometrySettings())")


def phantom(n_slices: int, rows: int = 512, cols: int = 512, seed: int = 0) -> np.ndarray:
    """CT-like stored values (HU + 1024), int16, shape (n_slices, rows, cols)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:rows, :cols].astype(np.float32)
    body = ((y - rows / 2) / (rows * 0.38)) ** 2 + ((x - cols / 2) / (cols * 0.45)) ** 2 < 1
    spine = ((y - rows * 0.62) / (rows * 0.06)) ** 2 + ((x - cols / 2) / (cols * 0.05)) ** 2 < 1
    lungs = ((y - rows * 0.45) / (rows * 0.2)) ** 2 \
        + ((np.abs(x - cols / 2) - cols * 0.18) / (cols * 0.13)) ** 2 < 1
    out = np.empty((n_slices, rows, cols), np.int16)
    for z in range(n_slices):
        hu = np.full((rows, cols), -1000.0, np.float32)
        hu[body] = 40 + 10 * np.sin(z / 20)
        hu[lungs & body] = -850
        hu[spine] = 700 + 200 * np.cos(z / 15)
        hu += rng.normal(0, 12, (rows, cols)).astype(np.float32) * body
        out[z] = np.rint(hu) + 1024
    return out


def make_series(folder: Path, n_slices: int, slope: float) -> list[Path]:
    """Write (or reuse) the synthetic series; return its files in slice order."""
    done = folder / "done.json"
    if done.is_file() and json.loads(done.read_text()) == {"slices": n_slices, "slope": slope}:
        return sorted(folder.glob("IM*.dcm"))
    shutil.rmtree(folder, ignore_errors=True)
    files = write_series(folder, phantom(n_slices), patient=Patient("BENCH-1", "Bench^Ct"),
                         study=Study(derived_uid("bench-study"), derived_uid("bench-for")),
                         series_uid=derived_uid("bench-series"), spacing=(0.78, 0.78, 1.25),
                         origin=(-199.6, -210.3, -612.5), slope=slope, intercept=-1024.0)
    done.write_text(json.dumps({"slices": n_slices, "slope": slope}))
    return files


def run_child(cmd: list[str]) -> tuple[float, float, float]:
    """Run ``cmd``; return (wall s, peak RSS MiB, CPU s), RSS and CPU of it and the children it
    waited for."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): "
                         f"{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def same_volume(ours: Path, theirs: Path) -> str:
    """Compare two NIfTI files in physical space; return a one-line verdict."""
    a = sitk.DICOMOrient(sitk.ReadImage(str(ours)), "LPS")
    b = sitk.DICOMOrient(sitk.ReadImage(str(theirs)), "LPS")
    if a.GetSize() != b.GetSize():
        return f"DIFFERENT sizes {a.GetSize()} vs {b.GetSize()}"
    geo = max(float(np.max(np.abs(np.subtract(f(a), f(b)))))
              for f in (sitk.Image.GetOrigin, sitk.Image.GetSpacing, sitk.Image.GetDirection))
    va = sitk.GetArrayViewFromImage(a).astype(np.float64)
    vb = sitk.GetArrayViewFromImage(b).astype(np.float64)
    equal = bool(np.array_equal(va, vb))
    verdict = "IDENTICAL" if equal and geo <= 1e-3 else "DIFFERENT"
    return (f"{verdict}: voxels equal {equal} (radflow {a.GetPixelIDTypeAsString()}, dcm2niix "
            f"{b.GetPixelIDTypeAsString()}), max geometry difference {geo:.2e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="work folder to keep (series is reused)")
    parser.add_argument("--slope", type=float, default=1.0,
                        help="RescaleSlope (default 1: int16 volume; e.g. 0.5: float32 volume)")
    args = parser.parse_args(argv)
    dcm2niix = shutil.which("dcm2niix")
    if dcm2niix is None:
        raise SystemExit("dcm2niix not found")
    work = args.keep or Path(tempfile.mkdtemp(prefix="radflow-bench-convert-"))
    series = work / ("series" if args.slope == 1 else f"series-slope{args.slope:g}")
    files = make_series(series, args.slices, args.slope)
    source = work / "source.json"
    source.write_text(json.dumps({"series_key": "sBENCH", "case_id": "cBENCH", "kind": "dicom",
                                  "role": "image", "files": [str(f) for f in files]}))
    out = work / "out"
    times: dict[str, list[float]] = {"dcm2niix": [], "radflow": []}
    rss: dict[str, list[float]] = {"dcm2niix": [], "radflow": []}
    cpu: dict[str, list[float]] = {"dcm2niix": [], "radflow": []}
    for _ in range(args.pairs):
        for name in ("dcm2niix", "radflow"):
            shutil.rmtree(out / name, ignore_errors=True)
            (out / name).mkdir(parents=True)
            cmd = ([dcm2niix, "-z", "y", "-f", "ref", "-o", str(out / name), str(series)]
                   if name == "dcm2niix" else
                   [sys.executable, "-c", RADFLOW_CODE, str(source), str(out / name / "s.json")])
            wall, peak, used = run_child(cmd)
            times[name].append(wall)
            rss[name].append(peak)
            cpu[name].append(used)
    ours, theirs = out / "radflow" / "s.nii.gz", out / "dcm2niix" / "ref.nii.gz"
    sidecar = json.loads((out / "radflow" / "s.json").read_text())
    print(f"series: {args.slices} x 512 x 512 CT, int16 stored, RescaleSlope {args.slope:g}, "
          f"{len(files)} files; pairs {args.pairs} "
          f"(A B A B); {os.cpu_count()} CPUs")
    for name in times:
        print(f"  {name:<9} wall median {statistics.median(times[name]):6.2f} s (runs "
              f"{', '.join(f'{v:.2f}' for v in times[name])}); peak RSS median "
              f"{statistics.median(rss[name]):6.0f} MiB (runs "
              f"{', '.join(f'{v:.0f}' for v in rss[name])}); CPU median "
              f"{statistics.median(cpu[name]):5.2f} s")
    for what, values in (("wall", times), ("peak RSS", rss), ("CPU", cpu)):
        ratios = [a / b for a, b in zip(values["radflow"], values["dcm2niix"], strict=True)]
        print(f"  ratio radflow/dcm2niix {what}: median {statistics.median(ratios):.2f} "
              f"(range {min(ratios):.2f}-{max(ratios):.2f})")
    print(f"  file size: radflow {ours.stat().st_size / 2**20:.1f} MiB, dcm2niix "
          f"{theirs.stat().st_size / 2**20:.1f} MiB")
    print(f"  volumes: {same_volume(ours, theirs)}")
    print(f"  sidecar status {sidecar['status']}; voxel_hash equals hash of the file read back: "
          f"{sidecar.get('voxel_hash') == voxel_hash(read_image(ours))}")
    print("  " + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
