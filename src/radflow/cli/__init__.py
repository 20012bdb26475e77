"""The radflow command.

Subcommands (``radflow COMMAND --help`` explains each):

``radflow run``
    Run the workflow on a cohort (Snakemake with its config file and profile) and print the
    run summary.
``radflow check``
    Validate a cohort's config and inputs, show what the crawl finds and what a run would do.
``radflow status``
    Print the run summary of a cohort from its results folder.
``radflow demo OUT``
    Generate the synthetic demo cohort.
``radflow filter INPUT OUTPUT --filter NAME ...``
    Write a filter response map (mean, LoG, Laws, wavelet) with the input's geometry.

Each subcommand provides ``add_parser(subparsers)``, registering its arguments and a
``run(args)`` callable as the ``func`` default. ``run`` and ``check`` take Snakemake's options
too: they get their words in order as ``args.tokens`` (:func:`radflow.cli.workflow.split_args`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from radflow import __version__
from radflow.errors import RadflowError

DESCRIPTION = "radflow: DICOM cohort -> NIfTI -> image/mask pairs -> radiomics features -> dataset."
EPILOG = """\
a cohort, step by step:
  radflow check --configfile my_cohort.yaml     (config, inputs, what the crawl finds)
  radflow run --configfile my_cohort.yaml       (the workflow, then the run summary)
  radflow status results/my_cohort              (the summary again, any time)
Plain Snakemake works as before: snakemake --configfile my_cohort.yaml
"""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand registered."""
    from radflow import demo
    from radflow.cli import check, run, status
    from radflow.filters import cli as filter_cli

    parser = argparse.ArgumentParser(prog="radflow", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"radflow {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (run, check, status, demo, filter_cli):
        sub_parser = module.add_parser(sub)
        sub_parser.set_defaults(parser=sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``radflow`` command; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if getattr(args, "passthrough", False):
        # run/check: their own words, in the order given (argparse would regroup them)
        args.tokens = argv[argv.index(args.command) + 1:]
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except RadflowError as exc:
        print(f"radflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
