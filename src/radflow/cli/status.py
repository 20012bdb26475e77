"""``radflow status``: the run summary of a cohort from its results folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from radflow.cli import workflow as wf
from radflow.summary import SUMMARY, print_run_summary

DESCRIPTION = """\
Print the run summary of a cohort: where its results are, the status counts per stage (from
qc/run_summary.tsv, or from the crawl's and pair stage's tables while the run is not through),
the dataset's size, the logs of failed jobs, and warnings. Give the cohort's results folder
(results/<cohort>), or its config file(s); without either, the only cohort under ./results.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``radflow status [RESULTS] [--configfile FILE ...]``."""
    parser = subparsers.add_parser(
        "status", help="print the run summary of a cohort", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", type=Path, metavar="RESULTS",
                        help="the cohort's results folder, e.g. results/lung")
    parser.add_argument("--configfile", action="append", default=[], metavar="FILE",
                        help="the cohort's config file (repeatable); gives the results folder "
                             "and merge.max_failed_fraction")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the summary; 1 when there is no results folder to summarise."""
    merge = None
    scope = None
    results = args.results
    if args.configfile:
        config = wf.cohort_config(wf.repository(), wf.Invocation(configfiles=tuple(
            args.configfile)))
        merge = config.full.get("merge")
        scope = config.full.get("convert", {}).get("scope")
        results = results or wf.results_folder(config.full, Path("."))
    if results is None:
        cohorts = sorted(p.parent.parent for p in Path("results").glob(f"*/{SUMMARY}"))
        cohorts = cohorts or sorted(p for p in Path("results").glob("*") if p.is_dir())
        if len(cohorts) != 1:
            found = ", ".join(p.as_posix() for p in cohorts) or "none"
            print(f"radflow status: name a cohort's results folder (found under ./results: "
                  f"{found})")
            return 1
        results = cohorts[0]
    print_run_summary(results, merge, convert_scope=scope)
    return 0 if Path(results).is_dir() else 1
