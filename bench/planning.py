"""Planning cost: a dry run of radflow after the crawl vs a toy Snakefile with the same jobs.

    .venv/bin/python bench/planning.py                          # 500, 2000, 8000 series
    .venv/bin/python bench/planning.py --sizes 500 2000 --pairs 5
    .venv/bin/python bench/planning.py --plan-only 20000        # planning of 20,000 series only

For each size N it fabricates a cohort of N sources without DICOM: a cohort sheet of N/2 subjects,
each with one image and one mask file (tiny valid NIfTI files, so that the ``resources:``
functions read real headers), and runs the real crawl on it once (``snakemake crawl``), so the
tables, per-pair plans and private source records are the crawl's own. It then times whole
``snakemake -n`` processes (the full DAG of every job of the default target: N ``convert_one``,
N/2 ``pair_one``, N/2 ``extract_one`` and 4 aggregate jobs: pair, qc, merge, all) of

* radflow's Snakefile (with RADFLOW_PLAN_TRACE: how often the plan was read),
* a toy Snakefile with the same rules, wildcards and job count whose job lists are plain
  ``expand()`` lists read once from the crawl's ``pair_plan.tsv`` (what planning costs at best), and
* the same toy whose per-item rules also declare what radflow's do (``params``, ``log``,
  ``benchmark``, ``threads``, constant ``resources``, ``script``): Snakemake's own per-job cost
  of those directives, so that radflow / this toy is the cost of radflow's planning and of its
  ``resources:`` functions (``--no-directives`` leaves it out),

interleaved A B C A B C (the machine is shared). It prints per-N medians (and ranges), the paired
ratios radflow / toy (median and range), the growth exponent ``log(t_max / t_min) /
log(N_max / N_min)`` of each (1 = linear) and ``uptime``.

``--plan-only N`` times radflow's planning alone in-process (the plan read once, then every
job's lookup; goal: under a minute for 20,000 sources) and one whole dry run of radflow and of the
toy on an N-source cohort.

:func:`make_cohort` and :func:`crawl` are also used by ``tests/test_planning.py``.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: radflow's Snakefile (``--snakefile``: a copy of the workflow, e.g. another checkout).
SNAKEFILE = REPO / "Snakefile"
COHORT = "plan"

_TOY_HEAD = """\
# Toy Snakefile: radflow's rule shapes and job count; plain job lists read once at parse time.
import csv

RES = "results/@COHORT@"
PRIV = ".radflow/private/@COHORT@"
with open(f"{RES}/crawl/pair_plan.tsv", newline="") as fh:
    PAIRS = {r["pair_id"]: r for r in csv.DictReader(fh, delimiter="\\t")}
CASE = {r[k]: r["case_id"] for r in PAIRS.values() for k in ("image_key", "mask_key")}
UNITS = {}
for p, r in PAIRS.items():
    UNITS.setdefault(r["image_key"] or p, []).append(p)

wildcard_constraints:
    case_id=r"c[0-9a-f]{12}", series_key=r"s[0-9a-f]{16}", pair_id=r"p[0-9a-f]{16}",
    unit=r"[sp][0-9a-f]{16}"

rule all:
    input: f"{RES}/merge/dataset.csv"

rule pair:
    input: expand(f"{RES}/pair/{{pair_id}}.json", pair_id=sorted(PAIRS))
    output: f"{RES}/pair/pairs.tsv"
    shell: "touch {output}"

rule qc:
    input:
        [f"{RES}/extract/{PAIRS[p[0]]['case_id']}/{u}.parquet" for u, p in UNITS.items()],
        [f"{RES}/convert/{c}/{s}.json" for s, c in CASE.items()],
        f"{RES}/pair/pairs.tsv",
    output: f"{RES}/qc/run_summary.tsv"
    shell: "touch {output}"

rule merge:
    input:
        [f"{RES}/extract/{PAIRS[p[0]]['case_id']}/{u}.parquet" for u, p in UNITS.items()],
        [f"{RES}/convert/{c}/{s}.json" for s, c in CASE.items()],
        f"{RES}/pair/pairs.tsv",
        f"{RES}/qc/run_summary.tsv",
    output: f"{RES}/merge/dataset.csv"
    shell: "touch {output}"
"""

#: The per-item rules: (name, input lines, output, wildcards of the output).
_TOY_RULES = [
    ("convert_one", ['f"{PRIV}/sources/{{series_key}}.json"'],
     "convert/{{case_id}}/{{series_key}}"),
    ("pair_one", ["image=lambda w: f\"{RES}/convert/{CASE[PAIRS[w.pair_id]['image_key']]}/\"\n"
                  "            f\"{PAIRS[w.pair_id]['image_key']}.json\"",
                  "mask=lambda w: f\"{RES}/convert/{CASE[PAIRS[w.pair_id]['mask_key']]}/\"\n"
                  "            f\"{PAIRS[w.pair_id]['mask_key']}.json\"",
                  'plan=f"{RES}/crawl/pairs/{{pair_id}}.json"'], "pair/{{pair_id}}"),
    ("extract_one", ['lambda w: expand(f"{RES}/pair/{{pair_id}}.json", pair_id=UNITS[w.unit])'],
     "extract/{{case_id}}/{{unit}}"),
]


def toy_snakefile(directives: bool) -> str:
    """The toy's text; ``directives``: its per-item rules also declare what radflow's do
    (``params``, ``log``, ``benchmark``, ``threads``, constant ``resources``, a ``script``)."""
    suffix = {"convert_one": ".json", "pair_one": ".json", "extract_one": ".parquet"}
    rules = []
    for name, inputs, out in _TOY_RULES:
        text = [f"rule {name}:", "    input:", *[f"        {i}," for i in inputs],
                f'    output: f"{{RES}}/{out}{suffix[name]}"']
        if directives:
            text += ['    params: settings={"a": 1, "b": [1, 2]}, version="0"',
                     f'    log: f"{{RES}}/logs/{out}.log"',
                     f'    benchmark: f"{{RES}}/benchmarks/{out}.tsv"',
                     "    threads: 1",
                     "    resources: mem_mb=1000, runtime=10",
                     '    script: "toy_script.py"']
        else:
            text.append('    shell: "touch {output}"')
        rules.append("\n".join(text))
    return _TOY_HEAD + "\n" + "\n\n".join(rules) + "\n"


def _tiny_nifti() -> bytes:
    """A valid gzip-compressed 4 x 4 x 3 float32 NIfTI-1 file (header + data)."""
    import nibabel as nib

    img = nib.Nifti1Image(np.zeros((4, 4, 3), np.float32), np.eye(4))
    return gzip.compress(img.to_bytes(), mtime=0)


def make_cohort(root: Path, n_series: int) -> list[str]:
    """Fabricate an ``n_series``-source sheet cohort in ``root``; return Snakemake's arguments.

    ``n_series / 2`` subjects, each one image and one mask (distinct files: a source's key is
    derived from its resolved path), listed in ``root/sheet.tsv``.

    Returns
    -------
    list of str
        ``--config ...`` arguments (cohort, sheet, key file, a shape-only params file, no Laws).
    """
    if n_series < 2 or n_series % 2:
        raise ValueError(f"n_series must be an even number >= 2, got {n_series}")
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    blob = _tiny_nifti()
    lines = ["subject\timage\tmask"]
    for i in range(n_series // 2):
        for kind in ("img", "mask"):
            (files / f"{kind}{i:06d}.nii.gz").write_bytes(blob)
        lines.append(f"S{i:06d}\tfiles/img{i:06d}.nii.gz\tfiles/mask{i:06d}.nii.gz")
    (root / "sheet.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "params.yaml").write_text("imageType: {Original: {}}\nfeatureClass: {shape: []}\n",
                                      encoding="utf-8")
    return ["--config", f"cohort={COHORT}", f"sheet={root / 'sheet.tsv'}",
            f"key_file={root / 'key'}",
            f"extract={{params: {root / 'params.yaml'}, image_types: []}}"]


def snakemake(root: Path, args: Sequence[str], *, snakefile: Path | None = None,
              env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run one whole ``snakemake`` process in ``root``; return (wall seconds, process)."""
    full_env = dict(os.environ if env is None else env)
    full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full_env.get('PATH', '')}"
    full_env.pop("RADFLOW_KEY_FILE", None)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile or SNAKEFILE),
           "--directory", str(root), "--cores", "1", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}"
                           f"\n{proc.stderr[-6000:]}")
    return seconds, proc


def crawl(root: Path, config: Sequence[str]) -> None:
    """Run the real crawl stage (``snakemake crawl``) on the cohort of :func:`make_cohort`."""
    snakemake(root, ["crawl", *config])


def write_toy(root: Path, *, directives: bool = False) -> Path:
    """A toy Snakefile for the crawled cohort in ``root`` (same rules and job count)."""
    path = root / ("ToyDirectives.smk" if directives else "Toy.smk")
    path.write_text(toy_snakefile(directives).replace("@COHORT@", COHORT), encoding="utf-8")
    (root / "toy_script.py").write_text("raise SystemExit('a dry run never runs this')\n",
                                        encoding="utf-8")
    return path


def job_total(output: str) -> int:
    """The ``total`` line of Snakemake's job stats table."""
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "total" and parts[1].isdigit():
            return int(parts[1])
    raise RuntimeError(f"no job stats in the dry run's output:\n{output[-2000:]}")


def dry_run(root: Path, config: Sequence[str], snakefile: Path | None = None,
            trace: Path | None = None) -> tuple[float, int]:
    """One whole-process dry run of every job of the default target: (seconds, job count).

    ``trace``: radflow appends a line per read of the crawl's plan to it (RADFLOW_PLAN_TRACE).
    """
    env = dict(os.environ)
    if trace is not None:
        env["RADFLOW_PLAN_TRACE"] = str(trace)
    seconds, proc = snakemake(root, ["-n", "--quiet", "rules", *config], snakefile=snakefile,
                              env=env)
    return seconds, job_total(proc.stdout + proc.stderr)


def _prepare(base: Path, n: int) -> tuple[Path, list[str]]:
    root = base / f"n{n}"
    root.mkdir()
    config = make_cohort(root, n)
    start = time.perf_counter()
    crawl(root, config)
    print(f"N={n}: cohort made and crawled in {time.perf_counter() - start:.1f} s", flush=True)
    return root, config


def _exponent(times: dict[int, float]) -> float:
    lo, hi = min(times), max(times)
    return math.log(times[hi] / times[lo]) / math.log(hi / lo)


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f} (range {min(values):.2f}-{max(values):.2f})"


def bench(sizes: Sequence[int], pairs: int, base: Path, directives: bool = True) -> None:
    """Interleaved dry runs (radflow, toy[, toy with directives]) per size; print the summary."""
    variants = ["radflow", "toy"] + (["toy+directives"] if directives else [])
    medians: dict[str, dict[int, float]] = {v: {} for v in variants}
    for n in sizes:
        root, config = _prepare(base, n)
        snakefiles = {"radflow": None, "toy": write_toy(root),
                      "toy+directives": write_toy(root, directives=True)}
        times: dict[str, list[float]] = {v: [] for v in variants}
        reads: list[int] = []
        for i in range(pairs):
            jobs = {}
            for v in variants:
                trace = root / f"plan_reads_{i}.txt" if v == "radflow" else None
                seconds, jobs[v] = dry_run(root, config if v == "radflow" else [],
                                           snakefiles[v], trace)
                times[v].append(seconds)
                if trace is not None:
                    reads.append(len(trace.read_text(encoding="utf-8").splitlines()))
            if len(set(jobs.values())) != 1:
                raise RuntimeError(f"N={n}: job counts differ: {jobs}")
            print(f"N={n} round {i + 1}: " + ", ".join(f"{v} {times[v][-1]:.2f} s"
                                                        for v in variants)
                  + f" ({jobs['radflow']} jobs; radflow read the plan {reads[-1]}x)", flush=True)
        for v in variants:
            medians[v][n] = statistics.median(times[v])
        print(f"N={n}: {jobs['radflow']} jobs, {pairs} rounds; median s: "
              + ", ".join(f"{v} {_spread(times[v])}" for v in variants), flush=True)
        for v in variants[1:]:
            ratios = [a / b for a, b in zip(times["radflow"], times[v], strict=True)]
            print(f"N={n}: paired ratio radflow/{v}: median {_spread(ratios)}", flush=True)
        print(f"N={n}: load: {_uptime()}", flush=True)
        shutil.rmtree(root)
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        print(f"growth exponent {lo}->{hi} sources, log(t{hi}/t{lo})/log({hi}/{lo}) of the "
              "medians (1 = linear; goal for radflow <= 1.1): "
              + ", ".join(f"{v} {_exponent(medians[v]):.2f}" for v in variants))


def planning_seconds(root: Path) -> tuple[float, int]:
    """radflow's planning alone, in this process: the first :func:`read_plan` and, for every
    job, what its input function does (``read_plan`` again, then the job's lookup).

    Returns
    -------
    tuple of (float, int)
        Seconds and the number of jobs looked up.
    """
    from radflow import plan as rw

    res, priv = root / "results" / COHORT, root / ".radflow" / "private" / COHORT
    tables = (str(res / "crawl" / "series.tsv"), str(res / "crawl" / "pair_plan.tsv"), "paired")
    start = time.perf_counter()
    plan = rw.read_plan(*tables)
    jobs = 0
    for key in plan.convert["series_key"]:
        rw.convert_inputs(rw.read_plan(*tables), str(res), str(priv), key)
        jobs += 1
    for pair_id in plan.pairs["pair_id"]:
        rw.pair_sidecars(rw.read_plan(*tables), str(res), pair_id)
        jobs += 1
    for unit in plan.units:
        rw.unit_pair_ids(rw.read_plan(*tables), unit)
        jobs += 1
    rw.unit_files(rw.read_plan(*tables), "{case_id}/{unit}.parquet")
    rw.all_sidecars(rw.read_plan(*tables), str(res))
    return time.perf_counter() - start, jobs


def plan_only(n: int, base: Path) -> None:
    """An ``n``-source cohort: radflow's planning alone (goal: < 60 s for 20,000 sources), then
    one whole dry run of radflow and one of the toy."""
    root, config = _prepare(base, n)
    seconds, jobs = planning_seconds(root)
    print(f"plan-only N={n}: radflow's planning (read_plan + the lookups of {jobs} jobs) took "
          f"{seconds:.2f} s in-process (goal < 60 s)", flush=True)
    trace = root / "plan_reads.txt"
    seconds, jobs = dry_run(root, config, trace=trace)
    reads = len(trace.read_text(encoding="utf-8").splitlines())
    toy_seconds, _ = dry_run(root, [], write_toy(root))
    print(f"plan-only N={n}: whole dry run of {jobs} jobs: radflow {seconds:.1f} s (plan read "
          f"{reads}x), the toy {toy_seconds:.1f} s; load: {_uptime()}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000],
                    help="cohort sizes (sources; even numbers)")
    ap.add_argument("--pairs", type=int, default=3,
                    help="interleaved rounds (A B [C]) per size (>= 3)")
    ap.add_argument("--no-directives", action="store_true",
                    help="leave out the toy whose rules also declare log, benchmark, ...")
    ap.add_argument("--plan-only", type=int, metavar="N",
                    help="only time one radflow dry run of an N-source cohort")
    ap.add_argument("--snakefile", type=Path,
                    help="radflow's Snakefile (default: this checkout's)")
    ap.add_argument("--keep", type=Path, help="work in this folder (default: a temporary one)")
    args = ap.parse_args(argv)
    if args.snakefile:
        global SNAKEFILE
        SNAKEFILE = args.snakefile.resolve()
    print(_uptime(), flush=True)
    with tempfile.TemporaryDirectory(prefix="radflow-planning-") as tmp:
        base = args.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        if args.plan_only:
            plan_only(args.plan_only, base)
        else:
            bench(sorted(args.sizes), args.pairs, base, directives=not args.no_directives)
    print(_uptime())


if __name__ == "__main__":
    main()
