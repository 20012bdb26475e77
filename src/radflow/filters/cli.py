"""``radflow filter``: write one filter response map with the input's geometry.

Examples::

    radflow filter ct.nii.gz laws.nii.gz --filter laws --kernel L5E5E5 --rotation-invariant \\
        --pooling max --energy-delta 7 --boundary mirror
    radflow filter ct.nii.gz log.nii.gz --filter log --sigma-mm 1.5 --truncate 4
    radflow filter ct.nii.gz mean.nii.gz --filter mean --support 5 --2d
    radflow filter ct.nii.gz wav.nii.gz --filter wavelet --wavelet db3 --level 1 --band LLH

Option values are checked here rather than by argparse, so that every bad value gives one line
``radflow filter: error: --OPTION: ... choose one of ...`` and exit code 2 (a
:class:`~radflow.errors.FilterError` caught by :func:`radflow.cli.main`).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from radflow.errors import FilterError
from radflow.filters.base import BOUNDARY_MODES, POOLINGS, check_choice, check_int
from radflow.filters.registry import FILTERS as REGISTRY
from radflow.io.nifti import read_image, write_nifti
from radflow.settings import from_mapping

logger = logging.getLogger(__name__)

FILTERS: tuple[str, ...] = ("mean", "log", "laws", "wavelet")
DTYPES: dict[str, int] = {"float32": sitk.sitkFloat32, "float64": sitk.sitkFloat64}

#: Filter-specific options (argparse dest -> flag) accepted by each filter.
_OPTIONS: dict[str, dict[str, str]] = {
    "mean": {"support": "--support"},
    "log": {"sigma_mm": "--sigma-mm", "truncate": "--truncate"},
    "laws": {"kernel": "--kernel", "rotation_invariant": "--rotation-invariant",
             "pooling": "--pooling", "energy_delta": "--energy-delta"},
    "wavelet": {"wavelet": "--wavelet", "level": "--level", "band": "--band",
                "rotation_invariant": "--rotation-invariant", "pooling": "--pooling"},
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "mean": ("support",), "log": ("sigma_mm",), "laws": ("kernel",), "wavelet": ("wavelet", "band"),
}
_EXAMPLES = {"support": "5", "sigma_mm": "1.5", "kernel": "L5E5E5", "wavelet": "db3",
             "band": "LLH"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``filter`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "filter", help="write a filter response map (mean, LoG, Laws, wavelet)",
        description="Apply one IBSI 2 convolutional filter to a volume and write the response "
                    "map as NIfTI with the input's origin, spacing and direction.")
    p.add_argument("input", metavar="INPUT", help="input volume (NIfTI or NRRD)")
    p.add_argument("output", metavar="OUTPUT", help="output response map (.nii.gz)")
    p.add_argument("--filter", required=True, metavar="NAME", help="one of " + ", ".join(FILTERS))
    p.add_argument("--boundary", default="mirror", metavar="MODE",
                   help="mirror (default), nearest, wrap or constant (zero padding)")
    p.add_argument("--2d", dest="two_d", action="store_true",
                   help="filter every axial slice separately (default: 3-D)")
    p.add_argument("--dtype", default="float32", metavar="TYPE",
                   help="voxel type of OUTPUT: float32 (default) or float64; computed in float64")
    g = p.add_argument_group("mean")
    g.add_argument("--support", metavar="M", help="box side in voxels (odd)")
    g = p.add_argument_group("log")
    g.add_argument("--sigma-mm", metavar="SIGMA", help="Gaussian sigma in mm")
    g.add_argument("--truncate", metavar="T", help="kernel half-width in sigmas (default 4)")
    g = p.add_argument_group("laws and wavelet")
    g.add_argument("--kernel", metavar="NAME", help="Laws kernel, e.g. L5E5E5 (3-D) or L5E5 (--2d)")
    g.add_argument("--rotation-invariant", action="store_true",
                   help="pool over all right-angle rotations of the kernel")
    g.add_argument("--pooling", metavar="POOL",
                   help="max or mean (default: max for laws, mean for wavelet)")
    g.add_argument("--energy-delta", metavar="DELTA", help="Laws energy map distance in voxels")
    g.add_argument("--wavelet", metavar="NAME", help="PyWavelets name, e.g. haar, db2, db3, coif1")
    g.add_argument("--level", metavar="N", help="wavelet decomposition level (default 1)")
    g.add_argument("--band", metavar="BAND", help="sub-band, letters in x,y,z order, e.g. LLH")
    p.set_defaults(func=run)
    return p


def _int(value: str, flag: str, *, minimum: int, odd: bool = False) -> int:
    try:
        number = int(value)
    except ValueError:
        raise FilterError(f"{flag}: {value!r} is not allowed; expected an "
                          + ("odd " if odd else "") + f"integer ≥ {minimum}") from None
    return check_int(number, flag, minimum=minimum, odd=odd)


def _float(value: str, flag: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise FilterError(f"{flag}: {value!r} is not allowed; expected a number > 0") from None


def _given(args: argparse.Namespace, dest: str) -> bool:
    value = getattr(args, dest)
    return value is not None and value is not False


def _check_options(args: argparse.Namespace, name: str) -> None:
    """Reject options of other filters and missing required options."""
    own = _OPTIONS[name]
    for other in FILTERS:
        for dest, flag in _OPTIONS[other].items():
            if dest not in own and _given(args, dest):
                raise FilterError(f"{flag} is not an option of --filter {name}; its options are "
                                  f"{', '.join(own.values())}")
    for dest in _REQUIRED[name]:
        if not _given(args, dest):
            raise FilterError(f"{own[dest]} is required with --filter {name} "
                              f"(e.g. {own[dest]} {_EXAMPLES[dest]})")


def _settings(args: argparse.Namespace, name: str) -> tuple[object, Callable[..., sitk.Image]]:
    """Build the settings object (through the one settings path,
    :func:`radflow.settings.from_mapping`) and pick the image function of filter ``name``
    (:data:`radflow.filters.registry.FILTERS`)."""
    values: dict[str, object] = {"boundary": check_choice(args.boundary, BOUNDARY_MODES,
                                                          "--boundary"),
                                 "dimensions": "2d" if args.two_d else "3d"}
    if args.pooling is not None:
        values["pooling"] = check_choice(args.pooling, POOLINGS, "--pooling")
    if name == "mean":
        values["support"] = _int(args.support, "--support", minimum=1, odd=True)
    elif name == "log":
        values["sigma_mm"] = _float(args.sigma_mm, "--sigma-mm")
        if args.truncate is not None:
            values["truncate"] = _float(args.truncate, "--truncate")
    elif name == "laws":
        values["kernel"] = args.kernel
        values["rotation_invariant"] = args.rotation_invariant
        if args.energy_delta is not None:
            values["energy_delta"] = _int(args.energy_delta, "--energy-delta", minimum=0)
    else:
        values.update(wavelet=args.wavelet, band=args.band,
                      rotation_invariant=args.rotation_invariant)
        if args.level is not None:
            values["level"] = _int(args.level, "--level", minimum=1)
    entry = REGISTRY[name]
    return from_mapping(entry.settings, values, section="radflow filter"), entry.image


def run(args: argparse.Namespace) -> int:
    """Execute ``radflow filter``; raises :class:`FilterError` on bad options."""
    name = check_choice(args.filter, FILTERS, "--filter")
    check_choice(args.dtype, DTYPES, "--dtype")
    _check_options(args, name)
    try:
        settings, image_func = _settings(args, name)
    except FilterError as exc:
        # Settings name their fields ("energy_delta: ..."); report the command-line flag instead.
        field, sep, rest = str(exc).partition(": ")
        if sep and field.isidentifier():
            raise FilterError(f"--{field.replace('_', '-')}: {rest}") from None
        raise
    out = Path(args.output)
    if not out.name.endswith(".nii.gz"):
        raise FilterError(f"OUTPUT: {out.name!r} is not allowed; the name must end with .nii.gz")
    image = read_image(args.input)
    response = image_func(image, settings)
    response = sitk.Cast(response, DTYPES[args.dtype])
    write_nifti(out, response)
    logger.info("wrote %s (%s filter, %s)", out.name, name, settings)
    return 0
