"""The ``radflow`` console command.

Subcommands:

``radflow demo OUT``
    Generate the synthetic demo cohort (DICOM CT series, NIfTI masks, cohort sheet, clinical CSV).
``radflow filter INPUT OUTPUT --filter NAME ...``
    Write a filter response map (mean, LoG, Laws, wavelet) with the input's geometry.

Each subcommand lives in the module that owns it, which provides ``add_parser(subparsers)``
registering its arguments and a ``run(args)`` callable as the ``func`` default.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from radflow import __version__
from radflow.errors import RadflowError


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand registered."""
    from radflow import demo
    from radflow.filters import cli as filter_cli

    parser = argparse.ArgumentParser(prog="radflow", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"radflow {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_parser(sub)
    filter_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``radflow`` command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except RadflowError as exc:
        print(f"radflow {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
