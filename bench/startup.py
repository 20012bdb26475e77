"""Benchmark: process start-up of the per-series jobs (convert_one, pair_one, extract_one).

Not a test. Run from the repository root::

    .venv/bin/python bench/startup.py                      # start-up, 3 interleaved rounds
    .venv/bin/python bench/startup.py --cohort 1000        # + end-to-end jobs per minute of a
                                                           #   1,000-subject (2,000-series) cohort

A tiny cohort (one sheet subject: an 8 x 8 x 8 int16 NIfTI image and a 4 x 4 x 4 label-1 mask,
1 mm voxels) is run once to the extract stage. Then, per round (A B A B ..., ``--rounds``):

* ``python -c pass`` and a toy Snakemake ``script:`` job (the script writes one file): the floor
  of any job (interpreter start; Snakemake's preamble unpickling its ``snakemake`` object);
* ``imports <rule>``: ``python -c`` with Snakemake's preamble imports plus the script's imports;
* ``job <rule>``: ``snakemake --forcerun <rule> --allowed-rules <rule> --cores 1`` on the tiny
  cohort, timed by the job's own ``benchmark:`` file (the script process only: preamble,
  imports, the work on an 8^3 volume, writing outputs) — the per-job figure.

``--cohort N``: N sheet subjects (2 N series: image + mask, 8^3 each) run end to end
(``snakemake --cores 2``: crawl, 2 N convert_one, N pair_one, N extract_one, merge); prints the
wall time and the jobs per minute (100 subjects took 8 minutes on a loaded 2-core VM).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PREAMBLE = ("import pickle; from snakemake.logging import logger; "
            "from snakemake.iocontainers import Snakemake")
RULES = {"convert_one": "scripts/convert_one.py", "pair_one": "scripts/pair_one.py",
         "extract_one": "scripts/extract_one.py"}
TOY_SNAKEFILE = """
rule toy:
    output: "toy.txt"
    benchmark: "toy.tsv"
    script: "toy.py"
"""
TOY_SCRIPT = "open(snakemake.output[0], 'w').write('ok')\n"


def write_cohort(folder: Path, n: int) -> Path:
    """``n`` subjects of 8^3 NIfTI image + mask and their sheet; returns the config file."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sheet = folder / "sheet.tsv"
    with sheet.open("w", encoding="utf-8") as f:
        f.write("subject\timage\tmask\n")
        for i in range(n):
            image = sitk.GetImageFromArray(rng.integers(-100, 100, (8, 8, 8)).astype(np.int16))
            arr = np.zeros((8, 8, 8), np.uint8)
            arr[2:6, 2:6, 2:6] = 1
            mask = sitk.GetImageFromArray(arr)
            img_path, mask_path = folder / f"s{i:05d}_image.nii", folder / f"s{i:05d}_mask.nii"
            sitk.WriteImage(image, str(img_path))
            sitk.WriteImage(mask, str(mask_path))
            f.write(f"s{i:05d}\t{img_path}\t{mask_path}\n")
    config = folder / "config.yaml"
    config.write_text(f"cohort: c{n}\nsheet: {sheet}\nresults_dir: {folder / 'results'}\n"
                      f"private_dir: {folder / 'private'}\nkey_file: {folder / 'key'}\n"
                      "extract: {image_types: []}\n", encoding="utf-8")
    return config


def timed(cmd: list[str], **kwargs: object) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def script_imports(script: str) -> str:
    lines = (REPO / script).read_text(encoding="utf-8").splitlines()
    return "; ".join(line for line in lines if line.startswith(("import ", "from ")))


def benchmark_seconds(results: Path, rule_dir: str) -> float:
    """The ``s`` column of the newest benchmark file of a rule."""
    files = sorted((results / "benchmarks" / rule_dir).rglob("*.tsv"),
                   key=lambda p: p.stat().st_mtime)
    with files[-1].open(encoding="utf-8") as f:
        return float(next(csv.DictReader(f, delimiter="\t"))["s"])


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cohort", type=int, default=0,
                        help="subjects of the end-to-end run (0 = skip; 1000 = 2,000 series)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/radflow-bench-startup"))
    args = parser.parse_args(argv)
    python, snakemake = str(BIN / "python"), str(BIN / "snakemake")
    print(f"start: {uptime()}")

    tiny = args.work / "tiny"
    config = write_cohort(tiny, 1)
    subprocess.run([snakemake, "extract", "--cores", "1", "--configfile", str(config), "-q"],
                   cwd=REPO, check=True, capture_output=True)
    results = tiny / "results" / "c1"
    toy = args.work / "toy"
    toy.mkdir(parents=True, exist_ok=True)
    (toy / "Snakefile").write_text(TOY_SNAKEFILE, encoding="utf-8")
    (toy / "toy.py").write_text(TOY_SCRIPT, encoding="utf-8")

    times: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        steps = {"python -c pass": lambda: timed([python, "-c", "pass"])}
        for rule, script in RULES.items():
            code = f"{PREAMBLE}; {script_imports(script)}"
            steps[f"imports {rule}"] = lambda code=code: timed([python, "-c", code], cwd=REPO)

        def toy_job() -> float:
            (toy / "toy.txt").unlink(missing_ok=True)
            timed([snakemake, "--cores", "1", "-q"], cwd=toy)
            with (toy / "toy.tsv").open(encoding="utf-8") as f:
                return float(next(csv.DictReader(f, delimiter="\t"))["s"])

        steps["job toy script"] = toy_job
        for rule in RULES:
            def job(rule: str = rule) -> float:
                timed([snakemake, "extract", "--cores", "1", "--configfile", str(config),
                       "--forcerun", rule, "--allowed-rules", rule, "-q"], cwd=REPO)
                return benchmark_seconds(results, rule.removesuffix("_one"))
            steps[f"job {rule}"] = job
        for name, step in steps.items():
            times.setdefault(name, []).append(step())
    toy_med = statistics.median(times["job toy script"])
    print(f"per-job start-up, tiny series ({args.rounds} interleaved rounds, median; "
          "jobs timed by their benchmark: file)")
    for name, values in times.items():
        extra = ""
        if name.startswith("job ") and name != "job toy script":
            ratios = [v / t for v, t in zip(values, times["job toy script"], strict=True)]
            extra = (f"  vs toy job: x{statistics.median(ratios):.1f} "
                     f"(range {min(ratios):.1f}-{max(ratios):.1f})")
        print(f"  {name:<22} {statistics.median(values):6.2f} s  "
              f"(runs {', '.join(f'{v:.2f}' for v in values)}){extra}")
    print(f"  toy job median {toy_med:.2f} s")

    if args.cohort:
        config = write_cohort(args.work / f"cohort{args.cohort}", args.cohort)
        n_jobs = 4 * args.cohort + 4  # crawl, convert x2, pair, pair table, extract, merge, all
        wall = timed([snakemake, "--cores", "2", "--configfile", str(config), "-q"], cwd=REPO)
        print(f"cohort of {args.cohort} subjects ({2 * args.cohort} series), local --cores 2: "
              f"{wall:.0f} s end to end, ~{n_jobs} jobs, {n_jobs / wall * 60:.0f} jobs/min, "
              f"{2 * args.cohort / wall * 60:.0f} series/min")
    print(f"end:   {uptime()}  (CPUs: {os.cpu_count()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
