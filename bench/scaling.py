"""Scaling of the whole workflow: 1 vs 2 local cores, 1 vs 2 SLURM job slots, SLURM overhead.

    .venv/bin/python bench/scaling.py                      # local only
    .venv/bin/python bench/scaling.py --slurm radflow      # also on SLURM, partition `radflow`

Generates the demo cohort (``--patients``, default 12) and runs the real Snakefile on it from
scratch in fresh working directories:

* locally with ``--cores 1`` and ``--cores 2`` (the default profile);
* with ``--slurm PARTITION``: through ``--workflow-profile config/profiles/slurm`` with
  ``--jobs 1 --cores 1`` vs ``--jobs 2 --cores 2`` (N SLURM jobs at a time; a grouped job uses up
  to N CPUs).

SimpleITK is pinned to one thread per job (``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1``) so that one
core means one core.

It prints the wall times, the speed-ups (goal: >= 1.7 on 2 cores; next to what two CPU-bound
processes gain on this machine at the time, as shared machines give less) and the overhead of
SLURM per job: the SLURM run with one slot minus the local run on one core, divided by the jobs
Snakemake ran, and, from the accounting (``sacct``), the mean queue wait (Start - Submit) and the
mean time a job spends outside its ``srun`` steps (the plugin's wrapper around each job). A test
cluster: ``tests/cluster/start_slurm.sh`` (root). The jobs' status is polled every
``--init-seconds`` (the plugin's default is 40 s; see the README, "Running on a cluster").
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import yaml

from radflow.demo import make_demo_cohort

REPO = Path(__file__).resolve().parents[1]
_RUN_ID = re.compile(r"SLURM run ID: (\S+)")
_JOB_HEADER = re.compile(r"^\s*(localrule|rule|checkpoint) (\w+):\s*$", re.MULTILINE)
_TARGETS = {"all", "convert", "extract"}


def run_workflow(work: Path, config: Path, extra: list[str]) -> tuple[float, str]:
    """Run the workflow from scratch in ``work``; return (wall seconds, log)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # One thread per job: SimpleITK would otherwise use every core of the machine in a job that
    # has one (radflow does not limit it yet), and "1 core" would not mean one core.
    env["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(work), "--configfile", str(config), *extra]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        sys.exit(f"snakemake failed ({proc.returncode}):\n{log[-5000:]}")
    return wall, log


_SPIN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(20_000_000):\n    x += i\n"


def machine_speedup() -> float:
    """What 2 cores give this machine right now: 2 CPU-bound processes vs 1 (ideal: 2.0).

    A shared or throttled machine gives less; read the workflow's speed-up against this.
    """
    def run(n: int) -> float:
        started = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(n)]
        for proc in procs:
            proc.wait()
        return time.perf_counter() - started

    one = run(1)
    return 2 * one / run(2)


def remote_jobs(log: str) -> int:
    """Jobs Snakemake ran (or submitted), without the action-less target rules."""
    counts = Counter(m.group(2) for m in _JOB_HEADER.finditer(log))
    return sum(n for rule, n in counts.items() if rule not in _TARGETS)


def _seconds(elapsed: str) -> float:
    days, _, hms = elapsed.rpartition("-")
    parts = [float(p) for p in hms.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    return (float(days) * 86400 if days else 0.0) + parts[0] * 3600 + parts[1] * 60 + parts[2]


def sacct_overheads(run_id: str) -> dict[str, float]:
    """Mean queue wait and mean time outside srun steps of one run's SLURM jobs (seconds)."""
    time.sleep(3)  # slurmctld hands the last records to slurmdbd asynchronously
    out = subprocess.run(
        ["sacct", "--parsable2", "--noheader", "--starttime", "now-1days", "--name", run_id,
         "--format=JobID,Submit,Start,Elapsed,Comment"],
        capture_output=True, text=True, check=True).stdout
    jobs: dict[str, dict[str, object]] = {}
    for line in out.splitlines():
        job_id, submit, start, elapsed, comment = line.split("|", 4)
        if re.fullmatch(r"\d+", job_id):
            wait = (datetime.fromisoformat(start) - datetime.fromisoformat(submit)).total_seconds()
            jobs[job_id] = {"wait": wait, "elapsed": _seconds(elapsed), "steps": 0.0,
                            "comment": comment}
        elif re.fullmatch(r"\d+\.\d+", job_id):
            jobs[job_id.split(".")[0]]["steps"] += _seconds(elapsed)  # type: ignore[operator]
    n = max(len(jobs), 1)
    return {"slurm_jobs": len(jobs),
            "queue_wait_s": sum(j["wait"] for j in jobs.values()) / n,  # type: ignore[misc]
            "outside_steps_s": sum(j["elapsed"] - j["steps"]  # type: ignore[operator]
                                   for j in jobs.values()) / n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=12)
    parser.add_argument("--params", type=Path, default=REPO / "config" / "pyradiomics.yaml",
                        help="PyRadiomics params (default: config/pyradiomics.yaml)")
    parser.add_argument("--slurm", metavar="PARTITION", help="also run on SLURM")
    parser.add_argument("--init-seconds", type=int, default=2,
                        help="--slurm-init-seconds-before-status-checks (default 2)")
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    args = parser.parse_args(argv)

    base = args.keep or Path(tempfile.mkdtemp(prefix="radflow-scaling-"))
    base.mkdir(parents=True, exist_ok=True)
    demo = make_demo_cohort(base / "demo", n_patients=args.patients)
    config = base / "cohort.yaml"
    config.write_text(yaml.safe_dump({
        "cohort": "bench", "dicom_root": str(demo.dicom_root), "sheet": str(demo.sheet),
        "clinical": str(demo.clinical), "key_file": str(base / "key"),
        "extract": {"params": str(args.params.resolve())}}))
    print(f"demo: {args.patients} patients in {base}; params {args.params}")

    calibration = machine_speedup()
    rows = []
    local = {}
    for cores in (1, 2):
        wall, log = run_workflow(base / f"local{cores}", config, ["--cores", str(cores)])
        local[cores] = wall
        rows.append((f"local --cores {cores}", wall, remote_jobs(log)))
    speedup = {"local": local[1] / local[2]}

    slurm = {}
    overheads = {}
    if args.slurm:
        profile = ["--workflow-profile", str(REPO / "config" / "profiles" / "slurm"),
                   "--default-resources", f"slurm_partition={args.slurm}",
                   "--slurm-init-seconds-before-status-checks", str(args.init_seconds)]
        for slots in (1, 2):
            # N job slots = N CPUs, as locally: a grouped job may use N CPUs too.
            wall, log = run_workflow(base / f"slurm{slots}", config,
                                     [*profile, "--jobs", str(slots), "--cores", str(slots)])
            slurm[slots] = (wall, remote_jobs(log))
            rows.append((f"SLURM --jobs {slots}", wall, remote_jobs(log)))
            overheads[slots] = sacct_overheads(_RUN_ID.search(log).group(1))
        speedup["slurm"] = slurm[1][0] / slurm[2][0]

    print(f"\n{'run':<20} {'wall s':>8} {'jobs':>5}")
    for name, wall, jobs in rows:
        print(f"{name:<20} {wall:8.1f} {jobs:5d}")
    print(f"\nspeed-up on 2 cores (local): {speedup['local']:.2f}x (goal >= 1.7); this machine "
          f"now: {calibration:.2f}x for 2 CPU-bound processes (ideal 2.00)")
    if args.slurm:
        print(f"speed-up with 2 SLURM job slots: {speedup['slurm']:.2f}x")
        wall1, jobs1 = slurm[1]
        print(f"SLURM overhead per Snakemake job (1 slot vs 1 local core): "
              f"{(wall1 - local[1]) / jobs1:.1f} s over {jobs1} jobs "
              f"({overheads[1]['slurm_jobs']} SLURM jobs: grouped convert/pair)")
        for slots, o in overheads.items():
            print(f"  --jobs {slots}: mean queue wait {o['queue_wait_s']:.1f} s, mean time "
                  f"outside srun steps {o['outside_steps_s']:.1f} s per SLURM job")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
