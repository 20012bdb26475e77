"""Benchmark: radflow's extract *stage* vs ``pyradiomics batch -j 2``, the 5 PyRadiomics test cases.

Not a test. Run from the repository root (2 cores; about 5 minutes on an idle machine)::

    .venv/bin/python bench/extract_stage.py                 # prepare once, then 3 A/B pairs
    .venv/bin/python bench/extract_stage.py --pairs 5 --work /tmp/radflow-stage
    .venv/bin/python bench/extract_stage.py --families      # radflow's families off vs on

Preparation (once per ``--work`` folder): a cohort sheet of the five test cases (``brain1``,
``brain2``, ``breast1``, ``lung1``, ``lung2``: NRRD image + label 1), taken by radflow up to the
pair stage (``snakemake pair --cores 2``), with config/pyradiomics.yaml (Original, LoG 1/2/3 mm,
Wavelet, 1 mm B-spline resampling) and ``extract.image_types: []``.

Timed, whole processes, interleaved A B A B (``--pairs`` pairs):

* A ``pyradiomics CLI``: ``pyradiomics batch.csv --param config/pyradiomics.yaml -j 2 -f csv``
  on radflow's *converted* NIfTI files (the files radflow's extract stage reads);
* B ``radflow stage``: ``snakemake extract --cores 2 --forcerun extract_one`` (what a user runs:
  Snakemake start-up, DAG, one job per image, writing Parquet + status).

Peak memory: psutil samples every 50 ms the RSS of the started process and all its descendants;
reported are the peak of the tree's *total* RSS (sum over the processes alive at one sample; what
the machine must hold) and the largest RSS of any *single* process. Shared pages (e.g. the
libraries of forked pool workers) count once per process in the total.

Values: every non-diagnostic feature of every case of the last CLI run is compared with radflow's
Parquet tables, exactly (``==``, NaN equal to NaN); radflow's own feature families (issue 15, on
by default) are counted apart. One extra CLI run on the *source* NRRD files is compared too (it
differs while sheet images are cast to float32 on conversion).

``--families``: the cost of radflow's own feature families (semantic, fractal, Minkowski; issue
15) instead: A ``snakemake extract`` with ``extract.families`` all off, B the same with the
default families on, whole processes interleaved A B A B; prints the paired ratio B/A and the
families' share of the stage's wall time. Then, in one process and interleaved, the families' own
time against PyRadiomics' ``execute`` on the same five pairs (config/pyradiomics.yaml).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil

REPO = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("RADFLOW_TESTDATA", REPO.parent / "shared" / "data"))
CASES = ("brain1", "brain2", "breast1", "lung1", "lung2")
BIN = Path(sys.executable).parent
PARAMS = REPO / "config" / "pyradiomics.yaml"
#: feature_class values of radflow's own families (radflow.extract.families.FEATURE_CLASSES)
FAMILY_CLASSES = ("recist", "size", "density", "suv", "fractal", "minkowski")
FAMILIES_OFF = ("  families: {semantic: {enabled: false}, fractal: {enabled: false}, "
                "minkowski: {enabled: false}}\n")


def run_sampled(cmd: list[str], **kwargs: object) -> tuple[float, float, float]:
    """Run ``cmd``; return (wall s, peak tree-total RSS MB, peak single-process RSS MB)."""
    start = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    peak_total = peak_one = 0
    while proc.poll() is None:
        total = 0
        try:
            procs = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
        for p in procs:
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            total += rss
            peak_one = max(peak_one, rss)
        peak_total = max(peak_total, total)
        time.sleep(0.05)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err[-3000:]}")
    return wall, peak_total / 2**20, peak_one / 2**20


def prepare(work: Path) -> Path:
    """Sheet + configs (families on: ``config.yaml``; off: ``config_no_families.yaml``), radflow
    up to the pair stage; the CLI batch files. Returns the config with the families on."""
    work.mkdir(parents=True, exist_ok=True)
    images = TESTDATA / "pyradiomics_testcases" / "images"
    sheet, config = work / "sheet.tsv", work / "config.yaml"
    with sheet.open("w", encoding="utf-8") as f:
        f.write("subject\timage\tmask\n")
        for case in CASES:
            f.write(f"{case}\t{images / f'{case}_image.nrrd'}\t{images / f'{case}_label.nrrd'}\n")
    common = (f"cohort: tc5\nsheet: {sheet}\nresults_dir: {work / 'results'}\n"
              f"private_dir: {work / 'private'}\nkey_file: {work / 'key'}\n"
              "extract:\n  image_types: []\n")
    config.write_text(common, encoding="utf-8")
    (work / "config_no_families.yaml").write_text(common + FAMILIES_OFF, encoding="utf-8")
    pair_dir = work / "results" / "tc5" / "pair"
    if not (pair_dir / "pairs.tsv").exists():
        subprocess.run([str(BIN / "snakemake"), "pair", "--cores", "2", "--configfile",
                        str(config), "-q"], cwd=REPO, check=True)
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(pair_dir.glob("p*.json"))]
    with (work / "batch_converted.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["ID", "Image", "Mask", "Label"])
        for r in records:
            w.writerow([r["pair_id"], r["image"], r["mask"], r["label"]])
    with (work / "batch_source.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["ID", "Image", "Mask", "Label"])
        for case in CASES:
            w.writerow([case, images / f"{case}_image.nrrd", images / f"{case}_label.nrrd", 1])
    return config


def cli_values(csv_path: Path) -> dict[str, dict[str, float]]:
    """``{ID: {feature: value}}`` from the CLI's CSV (diagnostics dropped)."""
    with csv_path.open(newline="", encoding="utf-8") as f:
        return {row["ID"]: {k: float(v) for k, v in row.items()
                            if k.count("_") >= 2 and not k.startswith("diagnostics_")}
                for row in csv.DictReader(f)}


def radflow_values(work: Path, *, families: bool = False) -> dict[str, dict[str, float]]:
    """``{pair_id: {feature: value}}`` from radflow's extract Parquet tables: PyRadiomics'
    features, or (``families``) those of radflow's own families."""
    out: dict[str, dict[str, float]] = {}
    for path in (work / "results" / "tc5" / "extract").glob("*/*.parquet"):
        table = pd.read_parquet(path)
        table = table[table["feature_class"].isin(FAMILY_CLASSES) == families]
        for pid, t, c, f, v in table[["pair_id", "image_type", "feature_class", "feature",
                                      "value"]].itertuples(index=False):
            out.setdefault(pid, {})[f"{t}_{c}_{f}"] = float(v)
    return out


def compare(ours: dict[str, dict[str, float]], theirs: dict[str, dict[str, float]]
            ) -> tuple[int, int, int]:
    """(identical, different, missing on either side) over every (case, feature)."""
    same = diff = missing = 0
    for case in ours.keys() | theirs.keys():
        a, b = ours.get(case, {}), theirs.get(case, {})
        missing += len(a.keys() ^ b.keys())
        for k in a.keys() & b.keys():
            if a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])):
                same += 1
            else:
                diff += 1
    return same, diff, missing


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def families_ab(work: Path, config: Path, pairs: int) -> int:
    """A: the stage with radflow's families off, B: on (whole processes, A B A B)."""
    cmd = [str(BIN / "snakemake"), "extract", "--cores", "2", "--forcerun", "extract_one", "-q",
           "--configfile"]
    print(f"start: {uptime()}")
    walls: dict[str, list[float]] = {"off": [], "on": []}
    for i in range(pairs):
        walls["off"].append(run_sampled([*cmd, str(work / "config_no_families.yaml")],
                                        cwd=REPO)[0])
        walls["on"].append(run_sampled([*cmd, str(config)], cwd=REPO)[0])
        print(f"pair {i + 1}: families off {walls['off'][-1]:6.2f} s  on {walls['on'][-1]:6.2f} s"
              f"  ratio {walls['on'][-1] / walls['off'][-1]:.3f}", flush=True)
    ratios = [b / a for a, b in zip(walls["off"], walls["on"], strict=True)]
    print(f"families off: median {statistics.median(walls['off']):.2f} s, on: median "
          f"{statistics.median(walls['on']):.2f} s")
    print(f"paired ratio on/off: median {statistics.median(ratios):.3f} (range "
          f"{min(ratios):.3f}-{max(ratios):.3f}, {len(ratios)} pairs): the families add "
          f"{100 * (statistics.median(ratios) - 1):.1f} % to the stage")
    own = radflow_values(work, families=True)
    print(f"family values: {sum(map(len, own.values()))} in {len(own)} cases")
    in_process(work, pairs)
    print(f"end:   {uptime()}")
    return 0


def in_process(work: Path, pairs: int) -> None:
    """The families' own time against PyRadiomics' on the same five pairs, in one process,
    interleaved A B A B (imports and reading not timed): robust to a loaded machine, where the
    whole-process difference drowns in the stage's noise."""
    from radflow.extract.families import family_features, feature_families
    from radflow.io.nifti import read_image
    from radflow.radiomics_adapter import feature_rows, load_params

    params, families = load_params(PARAMS), feature_families(None)
    records = [json.loads(p.read_text(encoding="utf-8"))
               for p in sorted((work / "results" / "tc5" / "pair").glob("p*.json"))]
    inputs = [(read_image(r["image"]), read_image(r["mask"]), int(r["label"])) for r in records]
    ratios = []
    for i in range(pairs):
        radiomics = own = 0.0
        for image, mask, label in inputs:
            start = time.perf_counter()
            feature_rows(image, mask, params, label=label)
            radiomics += time.perf_counter() - start
            start = time.perf_counter()
            family_features(image, mask, label, families)
            own += time.perf_counter() - start
        ratios.append(own / radiomics)
        print(f"in-process pair {i + 1}: PyRadiomics {radiomics:6.2f} s  families {own:5.2f} s"
              f"  ratio {own / radiomics:.3f}", flush=True)
    print(f"in-process families / PyRadiomics ({len(inputs)} cases): median "
          f"{statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3, help="A/B pairs (default 3)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/radflow-bench-extract-stage"))
    parser.add_argument("--families", action="store_true",
                        help="time radflow's own feature families (off vs on) instead")
    args = parser.parse_args(argv)
    config = prepare(args.work)
    if args.families:
        return families_ab(args.work, config, args.pairs)
    cli_out = args.work / "cli_converted.csv"
    cli_cmd = [str(BIN / "pyradiomics"), str(args.work / "batch_converted.csv"), "--param",
               str(PARAMS), "-j", "2", "-f", "csv", "-o", str(cli_out)]
    stage_cmd = [str(BIN / "snakemake"), "extract", "--cores", "2", "--configfile", str(config),
                 "--forcerun", "extract_one", "-q"]
    print(f"start: {uptime()}")
    runs: dict[str, list[tuple[float, float, float]]] = {"cli": [], "radflow": []}
    for i in range(args.pairs):
        cli_out.unlink(missing_ok=True)  # -o appends
        runs["cli"].append(run_sampled(cli_cmd, cwd=args.work))
        runs["radflow"].append(run_sampled(stage_cmd, cwd=REPO))
        a, b = runs["cli"][-1][0], runs["radflow"][-1][0]
        print(f"pair {i + 1}: CLI {a:6.2f} s  radflow {b:6.2f} s  ratio {b / a:.2f}", flush=True)
    ratios = [b[0] / a[0] for a, b in zip(runs["cli"], runs["radflow"], strict=True)]
    for name, label in (("cli", "pyradiomics -j 2"), ("radflow", "snakemake extract")):
        walls = [r[0] for r in runs[name]]
        print(f"{label:<18} wall median {statistics.median(walls):6.2f} s (runs "
              f"{', '.join(f'{w:.2f}' for w in walls)}); peak RSS tree total "
              f"{max(r[1] for r in runs[name]):6.0f} MB, largest process "
              f"{max(r[2] for r in runs[name]):5.0f} MB")
    print(f"paired ratio radflow/CLI: median {statistics.median(ratios):.2f} "
          f"(range {min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} pairs)")
    ours = radflow_values(args.work)
    same, diff, missing = compare(ours, cli_values(cli_out))
    print(f"values vs CLI on converted NIfTI: {same} identical, {diff} different, "
          f"{missing} missing ({len(ours)} cases); radflow's own families: "
          f"{sum(map(len, radflow_values(args.work, families=True).values()))} more values")
    src_out = args.work / "cli_source.csv"
    src_out.unlink(missing_ok=True)
    subprocess.run([str(BIN / "pyradiomics"), str(args.work / "batch_source.csv"), "--param",
                    str(PARAMS), "-j", "2", "-f", "csv", "-o", str(src_out)], check=True,
                   capture_output=True, cwd=args.work)
    ours_by_case = {_source_case(args.work, pid): v for pid, v in ours.items()}
    same, diff, missing = compare(ours_by_case, cli_values(src_out))
    print(f"values vs CLI on source NRRD:      {same} identical, {diff} different, "
          f"{missing} missing")
    print(f"end:   {uptime()}")
    return 0


def _source_case(work: Path, pair_id: str) -> str:
    """Test-case name (``lung1``...) of a radflow pair, from its image's private source record."""
    pair = json.loads((work / "results" / "tc5" / "pair" / f"{pair_id}.json").read_text())
    source = json.loads((work / "private" / "tc5" / "sources" / f"{pair['image_key']}.json")
                        .read_text())
    return Path(source["files"][0]).name.removesuffix("_image.nrrd")


if __name__ == "__main__":
    sys.exit(main())
