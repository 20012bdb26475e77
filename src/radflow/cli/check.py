"""``radflow check``: validate a cohort's config and inputs, show what the crawl would find and
what a run would do, without writing any result."""

from __future__ import annotations

import argparse
import logging
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from radflow.cli import workflow as wf
from radflow.cli.run import add_config_arguments
from radflow.crawl import CrawlResult, crawl
from radflow.io.tables import read_clinical
from radflow.keys import case_id, load_key
from radflow.plan import deidentify_on, resolve_paths
from radflow.settings import RoiSettings, crawl_settings, from_mapping
from radflow.summary import format_table, stage_counts

DESCRIPTION = """\
Check a cohort before running it: validate its config against config/schema/, check that its
inputs exist, crawl the DICOM headers and the cohort sheet in memory (nothing is written; as
long as the crawl of a run), and print the patients, series and candidate pairs it finds, how
many clinical rows match a patient, and which jobs a run would run now (Snakemake's dry run).
Only counts and statuses are printed, never a path or a patient's identifier.
"""

def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``radflow check``."""
    parser = subparsers.add_parser(
        "check", help="check a cohort's config and inputs; show what a run would do",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False)
    add_config_arguments(parser)
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="SNAKEMAKE-OPTION",
                        help="options for the dry run (e.g. -d DIR, the working directory)")
    parser.set_defaults(func=run, passthrough=True)
    return parser


def crawl_in_memory(full: dict[str, Any], repo: Path, workdir: Path) -> tuple[CrawlResult, bytes]:
    """Crawl the cohort's inputs without writing anything; return the result and the key used
    (the cohort's key when it exists, else a throw-away one: the counts are the same)."""
    paths = resolve_paths(full, repo)
    key_file = Path(paths.key_file)
    key_file = key_file if key_file.is_absolute() else workdir / key_file
    key = load_key(key_file) if key_file.is_file() else secrets.token_bytes(32)
    result = crawl(Path(paths.dicom_root) if paths.dicom_root else None,
                   Path(paths.sheet) if paths.sheet else None, key,
                   crawl_settings(full["crawl"], full["geometry"]),
                   from_mapping(RoiSettings, full["rois"], section="rois"))
    return result, key


def crawl_lines(result: CrawlResult) -> list[str]:
    """Patients, series (by status) and candidate pairs (by crawl status) of a crawl."""
    series = result.series
    patients = {c for c in series.get("case_id", pd.Series(dtype=str)) if c}
    summary = pd.DataFrame(
        [{"stage": stage, "status": status, "count": int(n)}
         for stage, table in (("series", series), ("pairs", result.pairs))
         if "status" in table
         for status, n in sorted(table["status"].value_counts().items())],
        columns=["stage", "status", "count"])
    lines = [f"crawl: {len(patients)} patients, {len(series)} series and files, "
             f"{len(result.pairs)} candidate pairs (image x mask x label)"]
    stages = stage_counts(summary)
    return lines + (format_table(stages) if stages else [])


def clinical_line(full: dict[str, Any], repo: Path, result: CrawlResult, key: bytes) -> str:
    """How many clinical rows match a crawled patient (IDs mapped with the same key)."""
    paths = resolve_paths(full, repo)
    if not paths.clinical:
        return "clinical: none configured"
    table = read_clinical(paths.clinical, full["clinical_id"], full["clinical_sheet"])
    patients = set(result.series.get("case_id", pd.Series(dtype=str)))
    matched = sum(1 for v in table[full["clinical_id"]] if v and case_id(key, v) in patients)
    return f"clinical: {len(table)} rows, {matched} match a patient of the crawl"


def dry_run_lines(repo: Path, inv: wf.Invocation, config: wf.CohortConfig,
                  workdir: Path) -> list[str]:
    """What a run would do now: Snakemake's dry run, as job counts and reasons."""
    derived = wf.write_derived_config(config.user, workdir) if config.user else None
    cmd = wf.snakemake_command(repo, inv, derived, ["--dry-run"])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=wf.snakemake_env(),
                          check=False)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = [line for line in output.splitlines() if line.strip()][-6:]
        return ["a run now: Snakemake's dry run failed:", *(f"  {line}" for line in tail)]
    if "Nothing to be done" in output:
        return ["a run now: nothing to do (every result is up to date)"]
    counts = job_counts(output)
    lines = [f"a run now would run {sum(counts.values())} jobs: "
             + ", ".join(f"{rule} {n}" for rule, n in counts.items())]
    if "The run involves checkpoint jobs" in output:
        lines.append("  (the jobs after the crawl are planned once it has run)")
    return lines + reasons(output)


def job_counts(output: str) -> dict[str, int]:
    """Snakemake's "Job stats" table: {rule: count}, in table order (the last table)."""
    counts: dict[str, int] = {}
    in_table = False
    for line in output.splitlines():
        if line.startswith("job") and "count" in line:
            in_table, counts = True, {}
            continue
        if in_table:
            m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if m and m.group(1) != "total":
                counts[m.group(1)] = int(m.group(2))
            elif line.strip().startswith("total") or (not line.strip() and counts):
                in_table = False
    return counts


def reasons(output: str) -> list[str]:
    """The "Reasons:" block of a dry run (why each rule would run), indented."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Reasons:")), None)
    if start is None:
        return []
    block = ["  why:"]
    for line in lines[start + 1:]:
        if not line.startswith("    ") or "check individual jobs" in line:
            if block[1:] and not line.startswith("    "):
                break
            continue
        block.append("  " + line.rstrip())
    return block if len(block) > 1 else []


def run(args: argparse.Namespace) -> int:
    """Run the ``check`` subcommand; 0 when the config and inputs are fine."""
    inv = wf.split_args(args.tokens)
    if inv.help:
        args.parser.print_help()
        return 0
    ready = wf.prepare(inv)  # a config error: one message, no Snakemake start
    repo, workdir, config, full = ready.repo, ready.workdir, ready.config, ready.full
    print(f"config: valid ({len(inv.configfiles)} config file(s), {len(inv.config)} --config "
          "setting(s), checked against config/schema/config.schema.yaml)")
    resolve_paths(full, repo)  # raises ConfigError naming a missing input
    names = [k for k in ("dicom_root", "sheet", "clinical") if full.get(k)]
    print(f"inputs: found ({', '.join(names)}, extract.params)")
    if deidentify_on(full):
        print("deidentify: true (the run crawls the de-identified copy; the counts below are "
              "those of the source tree)")
    if not args.verbose:  # the crawl's own INFO lines would bury the counts
        logging.getLogger("radflow").setLevel(logging.WARNING)
    result, key = crawl_in_memory(full, repo, workdir)
    for line in [*crawl_lines(result), clinical_line(full, repo, result, key),
                 *dry_run_lines(repo, inv, config, workdir)]:
        print(line)
    print(f"results: {wf.results_folder(full, workdir).as_posix()}/")
    return 0


__all__ = ["add_parser", "crawl_lines", "job_counts", "reasons", "run"]
