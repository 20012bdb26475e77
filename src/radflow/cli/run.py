"""``radflow run``: the workflow with the cohort's config, the right profile, and a summary."""

from __future__ import annotations

import argparse
import subprocess
import sys

from radflow.cli import workflow as wf
from radflow.errors import RadflowError
from radflow.summary import print_run_summary

DESCRIPTION = """\
Run the radflow workflow (Snakemake) on a cohort and print where the results are and how every
stage ended.

Stage names (crawl, convert, pair, extract, qc, merge, deidentify, all) may stand anywhere;
without one, the whole workflow runs. --configfile files and --config KEY=VALUE entries are
merged into one config file in .radflow/run/ of the working directory, so that no path (an
archive folder named after a patient, say) reaches the command line that Snakemake copies into
.snakemake/log. Every other option goes to Snakemake unchanged (-n, --cores 8, --forcerun
crawl, ...); options that take a list of rule names (--forcerun, --until, ...) take the stage
names after them, as in Snakemake.
"""

EPILOG = """\
examples:
  radflow run --configfile lung.yaml
  radflow run --configfile lung.yaml convert --cores 8
  radflow run --configfile lung.yaml --profile slurm --jobs 50
  radflow run --configfile lung.yaml -n            (what would run; runs nothing)
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``radflow run``; its arguments are split by :func:`wf.split_args`."""
    parser = subparsers.add_parser(
        "run", help="run the workflow on a cohort", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    add_config_arguments(parser)
    parser.add_argument("--profile", metavar="NAME|DIR",
                        help="workflow profile: default (local; the default), slurm, or a "
                             "folder holding a Snakemake profile config.yaml")
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="STAGE|SNAKEMAKE-OPTION",
                        help="stage names and Snakemake options")
    parser.set_defaults(func=run, passthrough=True)
    return parser


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--configfile`` and ``--config`` (shown in help; parsed by :func:`wf.split_args`)."""
    parser.add_argument("--configfile", nargs="+", metavar="FILE",
                        help="the cohort's config file(s) (YAML); keys as in config/config.yaml")
    parser.add_argument("--config", "-C", nargs="+", metavar="KEY=VALUE",
                        help="single settings on top of the config files")


def _wait(proc: subprocess.Popen[bytes]) -> int:
    """Wait for Snakemake; on Ctrl-C keep waiting: Snakemake got the same signal, and stops its
    jobs and releases its lock itself (subprocess.call would kill it)."""
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            continue


def run(args: argparse.Namespace) -> int:
    """Run Snakemake; print the run summary unless nothing was to run (dry run, lint, ...)."""
    inv = wf.split_args(args.tokens)
    if inv.help:
        args.parser.print_help()
        return 0
    ready = wf.prepare(inv)  # a config error: one message, no Snakemake start
    repo, workdir, config, full = ready.repo, ready.workdir, ready.config, ready.full
    derived = wf.write_derived_config(config.user, workdir) if config.user else None
    # Snakemake's own onsuccess/onerror summary is off (--no-hooks): radflow prints it below,
    # also when there was nothing to do.
    cmd = wf.snakemake_command(repo, inv, derived, ["--no-hooks"])
    code = _wait(subprocess.Popen(cmd, env=wf.snakemake_env()))
    if inv.runs_jobs:
        try:
            print_run_summary(wf.results_folder(full, workdir), full["merge"], failed=code != 0,
                              convert_scope=full["convert"]["scope"])
        except RadflowError as exc:  # not expected after the check: never hide Snakemake's code
            print(f"radflow run: no summary: {exc}", file=sys.stderr)
    return code
