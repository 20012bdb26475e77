"""Benchmark: radflow's Laws filter against MIRP's, whole processes, A B A B.

Volume: 256 x 256 x 128 random float64 (seeded). Configuration: 3-D kernel L5E5E5, rotation
invariant (24 rotations), max pooling, energy map with δ = 7, IBSI "mirror" boundary (scipy
``reflect``; MIRP is given ``reflect`` too, because MIRP passes its boundary string straight to
scipy, where ``mirror`` does not repeat the edge voxel).

Each run is a fresh process that makes the volume, filters it once and saves the response; the
parent measures the process's wall time and peak RSS (``ru_maxrss`` from ``os.wait4``), and the
child reports the filter call's own time (imports excluded). radflow and MIRP runs alternate
(A B A B), and the script prints each pair's ratios, their median and range, the machine load,
and the largest difference between the two responses relative to the value range (exit status
1 above 1e-4).

MIRP is not a radflow dependency (it pins its own numpy/scipy/ITK). Install it once into a
separate environment; this script runs MIRP with that environment's Python and radflow with the
Python that runs the script::

    python3 -m venv /tmp/benchenv && /tmp/benchenv/bin/pip install mirp   # tested: mirp 2.7.0
    .venv/bin/python bench/laws.py [--pairs 3] [--mirp-python /tmp/benchenv/bin/python]

It calls MIRP's internal ``LawsFilter`` class (``mirp._imagefilters.laws``), the code MIRP's own
IBSI 2 tests exercise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SHAPE = (128, 256, 256)  # (z, y, x): 256 x 256 in-plane, 128 slices
KERNEL = "L5E5E5"
DELTA = 7


def _radflow_filter() -> Callable[[np.ndarray], np.ndarray]:
    from radflow.filters.laws import LawsSettings, laws_filter

    settings = LawsSettings(kernel=KERNEL, rotation_invariant=True, pooling="max",
                            energy_delta=DELTA, boundary="mirror", dimensions="3d")
    return lambda volume: laws_filter(volume, settings)


def _mirp_filter() -> Callable[[np.ndarray], np.ndarray]:
    from mirp._imagefilters.laws import LawsFilter
    from mirp._images.generic_image import GenericImage
    from mirp.settings.generic import SettingsClass

    settings = SettingsClass(
        by_slice=False, base_feature_families="none", response_map_feature_families="none",
        filter_kernels="laws", laws_kernel=KERNEL, laws_compute_energy=True, laws_delta=DELTA,
        laws_rotation_invariance=True, laws_pooling_method="max",
        laws_boundary_condition="reflect")

    def run(volume: np.ndarray) -> np.ndarray:
        image = GenericImage(image_data=volume, image_spacing=(1.0, 1.0, 1.0),
                             image_origin=(0.0, 0.0, 0.0), image_orientation=np.eye(3),
                             image_dimensions=volume.shape, separate_slices=False)
        laws = LawsFilter(image=image, settings=settings, name="laws")
        (current,) = list(laws.generate_object())
        return np.asarray(current.transform(image).get_voxel_grid())

    return run


def child(tool: str, seed: int, out: str) -> None:
    """One measured run: make the volume, filter it, save the response, print the filter time."""
    volume = np.random.default_rng(seed).random(SHAPE)
    func = _radflow_filter() if tool == "radflow" else _mirp_filter()  # imports: not timed
    start = time.perf_counter()
    response = func(volume)
    seconds = time.perf_counter() - start
    np.save(out, response)
    print(json.dumps({"filter_s": seconds}))


def run(python: str, tool: str, seed: int, out: Path) -> dict[str, float]:
    """Run one child process; its wall time (s), peak RSS (MiB) and filter time (s)."""
    start = time.perf_counter()
    proc = subprocess.Popen([python, __file__, "--child", tool, "--seed", str(seed),
                             "--out", str(out)], stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    text = proc.stdout.read() if proc.stdout else ""
    if status != 0:
        raise SystemExit(f"{tool} run failed (status {status})")
    return {"wall_s": wall, "rss_mib": usage.ru_maxrss / 1024,
            "filter_s": json.loads(text.strip().splitlines()[-1])["filter_s"]}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mirp-python", default="/tmp/benchenv/bin/python")
    parser.add_argument("--child", choices=("radflow", "mirp"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.seed, args.out)
        return 0

    mirp_version = subprocess.run(
        [args.mirp_python, "-c", "from importlib.metadata import version; print(version('mirp'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    print(f"volume {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} (x, y, z) float64, kernel {KERNEL}, rotation "
          f"invariant, max pooling, energy delta {DELTA}, mirror boundary; mirp {mirp_version}")
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average, {os.cpu_count()} CPUs)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out_r, out_m = Path(tmp, "radflow.npy"), Path(tmp, "mirp.npy")
        for i in range(args.pairs):
            r = run(sys.executable, "radflow", args.seed, out_r)
            m = run(args.mirp_python, "mirp", args.seed, out_m)
            rows.append((r, m))
            print(f"pair {i + 1}: radflow {r['filter_s']:6.2f} s filter, {r['wall_s']:6.2f} s "
                  f"process, {r['rss_mib']:6.0f} MiB | mirp {m['filter_s']:6.2f} s filter, "
                  f"{m['wall_s']:6.2f} s process, {m['rss_mib']:6.0f} MiB")
        a, b = np.load(out_r), np.load(out_m)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    for what, key, sense in (("speed-up, filter (mirp / radflow time)", "filter_s", "m/r"),
                             ("speed-up, whole process (mirp / radflow)", "wall_s", "m/r"),
                             ("peak RSS ratio (radflow / mirp)", "rss_mib", "r/m")):
        ratios = [(m[key] / r[key]) if sense == "m/r" else (r[key] / m[key]) for r, m in rows]
        print(f"{what}: median {statistics.median(ratios):.2f}x, range "
              f"{min(ratios):.2f}-{max(ratios):.2f}")
    value_range = float(b.max() - b.min())
    rel = float(np.abs(a - b).max()) / value_range
    print(f"max |radflow - mirp| = {rel:.3e} of the value range {value_range:.4g} "
          f"({'OK' if rel <= 1e-4 else 'FAIL'}: limit 1e-4)")
    return 0 if rel <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
