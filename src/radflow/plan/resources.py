"""Memory and run time of the per-item rules, estimated from the size of what they read.

The Snakefile's ``resources:`` call these functions, so that a SLURM job for a 512 x 512 x 300 CT
asks for more memory and time than one for a 64 x 64 x 36 crop (Snakemake passes ``mem_mb`` to
``sbatch --mem`` and ``runtime``, in minutes, to ``sbatch -t``). Each estimate is a linear model
over the voxel count, fitted to measurements (peak resident memory and wall time of one job on one
core, see :data:`CONVERT`, :data:`PAIR`, :data:`EXTRACT_CROPPED`, :data:`EXTRACT_FULL_IMAGE`,
:data:`MERGE_MB_PER_INPUT_MB` and the README's "Running on a cluster"), then multiplied by a
safety factor (:data:`MEM_SAFETY`, :data:`TIME_SAFETY`: shared nodes are slower and noisier than
the measuring machine), rounded up, and never below the rule's floor.

Snakemake evaluates these functions in the controlling process when a job becomes ready (and
with ``<TBD>`` in a dry run before its inputs exist). They never fail the workflow: a missing
*input* file raises :class:`FileNotFoundError` (Snakemake's signal for "evaluate later"); any other
problem (an unreadable header, a series missing from the crawl table) gives the floor.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml

#: Memory requests are the model's peak times this factor.
MEM_SAFETY = 1.5
#: Time requests are the model's wall time times this factor.
TIME_SAFETY = 3.0
#: Memory requests are rounded up to a multiple of this (MB).
MEM_STEP_MB = 250


@dataclass(frozen=True)
class Cost:
    """A linear cost model of one job: ``base + per_mvoxel * (voxels / 1e6)``.

    Attributes
    ----------
    base_mb, mb_per_mvoxel
        Peak resident memory (MB): interpreter and libraries, plus per million voxels.
    base_s, s_per_mvoxel
        Wall time (s) on one core: start-up, plus per million voxels.
    """

    base_mb: float
    mb_per_mvoxel: float
    base_s: float
    s_per_mvoxel: float

    def mem_mb(self, voxels: float) -> float:
        """Modelled peak memory (MB) for ``voxels`` voxels."""
        return self.base_mb + self.mb_per_mvoxel * voxels / 1e6

    def seconds(self, voxels: float) -> float:
        """Modelled wall time (s) for ``voxels`` voxels."""
        return self.base_s + self.s_per_mvoxel * voxels / 1e6


# Measured with /usr/bin/time on synthetic CT of 64x64x36, 256x256x150 and 512x512x300 voxels
# (radflow 0.1, PyRadiomics 3.1.4, SimpleITK 2.x, Python 3.11, one core of a 2-core VM):
#: convert_one, DICOM series -> float32 NIfTI (gzip): 512x512x300 took 1560 MB and 42 s (radflow
#: 0.1). Since 0.2 an int16 CT takes ~385 MB and 2-4 s; the model keeps the old figures because
#: they cover the resampling path (gantry tilt, uneven spacing: ~20 bytes per voxel).
CONVERT = Cost(base_mb=250, mb_per_mvoxel=17, base_s=5, s_per_mvoxel=0.55)
#: pair_one (reads the mask; resamples it when asked): 512x512x300 took < 940 MB and 4 s.
PAIR = Cost(base_mb=250, mb_per_mvoxel=9, base_s=3, s_per_mvoxel=0.05)
#: extract_one when PyRadiomics crops to the ROI before filtering (``resampledPixelSpacing`` or
#: ``preCrop`` set, as in config/pyradiomics.yaml): the whole image is read and hashed, filters run
#: on the ROI's bounding box. 64^3: 300 MB, 2 s; 256x256x150: 430 MB, 3 s; 512x512x300: 1570 MB,
#: 13-26 s (Original + 3 LoG + 8 wavelet images).
EXTRACT_CROPPED = Cost(base_mb=280, mb_per_mvoxel=16.5, base_s=5, s_per_mvoxel=0.3)
#: extract_one when filters run on the whole image (no resampling, no preCrop): 256x256x150:
#: 1090 MB, 16 s; 512x512x300: 6790 MB, 112 s.
EXTRACT_FULL_IMAGE = Cost(base_mb=280, mb_per_mvoxel=83, base_s=5, s_per_mvoxel=1.5)
#: Filtered images of the ROI's bounding box (after resampling): memory and time per million
#: voxels of the box. The box of an ellipsoid is ~1.9 times its volume; 2.5 allows for padding.
ROI_BOX = Cost(base_mb=0, mb_per_mvoxel=70, base_s=0, s_per_mvoxel=15)
ROI_BOX_FACTOR = 2.5
#: radflow's own feature families (``extract.families``), added per pair on the image as
#: converted: a 512x512x300 CT with a 30 / 80 mm lesion took +85 / +130 MB and 1.4 / 2.0 s
#: (+230 MB with the PET sphere means on that grid); the binary mask of the ROI is one byte per
#: voxel of the image.
FAMILIES = Cost(base_mb=0, mb_per_mvoxel=3, base_s=0, s_per_mvoxel=0.03)
#: merge reads every feature table; pandas holds ~25x their Parquet size, three times over
#: (long table, wide table, dataset). Demo (8 pairs, 190 kB of Parquet): 310 MB, < 10 s.
MERGE_BASE_MB, MERGE_MB_PER_INPUT_MB = 500.0, 75.0
MERGE_BASE_S, MERGE_S_PER_INPUT_MB = 30.0, 1.0

#: PyRadiomics settings that crop the image to the ROI's box (plus padding) before filtering.
_SETTINGS_THAT_CROP = ("resampledPixelSpacing", "preCrop")


def mem_request(model_mb: float, floor_mb: int) -> int:
    """Memory request (MB): ``model_mb * MEM_SAFETY`` rounded up to :data:`MEM_STEP_MB`, >= floor.

    >>> mem_request(1000, 500)
    1500
    >>> mem_request(100, 2000)
    2000
    """
    want = math.ceil(model_mb * MEM_SAFETY / MEM_STEP_MB) * MEM_STEP_MB
    return max(int(want), int(floor_mb))


def runtime_request(model_s: float, floor_min: int) -> int:
    """Run-time request (minutes): ``model_s * TIME_SAFETY`` in whole minutes, >= floor.

    >>> runtime_request(600, 10)
    30
    >>> runtime_request(5, 10)
    10
    """
    return max(math.ceil(model_s * TIME_SAFETY / 60), int(floor_min))


# --- reading sizes ---------------------------------------------------------------------------

def _stamp(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    st = os.stat(path)
    return str(path), st.st_mtime_ns, st.st_size


@lru_cache(maxsize=8)
def _series_voxels(stamp: tuple[str, int, int]) -> Mapping[str, int]:
    from radflow.records.tables import read_series_table  # deferred: the Snakefile imports us

    voxels: dict[str, int] = {}
    table = read_series_table(stamp[0], ["series_key", "rows", "cols", "slices"])
    for key, rows, cols, slices in zip(table["series_key"], table["rows"], table["cols"],
                                       table["slices"], strict=True):
        with contextlib.suppress(TypeError, ValueError):
            voxels[key] = int(float(rows)) * int(float(cols)) * int(float(slices))
    return voxels


def series_voxels(series_tsv: str | os.PathLike[str], series_key: str) -> int | None:
    """Voxels of one series from the crawl's ``series.tsv`` (``rows * cols * slices``).

    The table is read once per change (cached by path, modification time and size), so
    thousands of jobs cost one read. ``None`` when the table or the series' sizes are missing.
    """
    try:
        return _series_voxels(_stamp(series_tsv)).get(series_key)
    except OSError:
        return None


def image_grid(path: str | os.PathLike[str]) -> tuple[tuple[int, ...], tuple[float, ...]] | None:
    """Size (x, y, z) and spacing (mm) of a NIfTI, NRRD or MetaImage file from its header (the
    voxels are not read); ``None`` if unreadable. Cached per change of the file: a job's
    ``mem_mb``, ``runtime`` and ``priority`` all ask for it."""
    try:
        return _image_grid(_stamp(path))
    except OSError:
        return None


@lru_cache(maxsize=64)
def _image_grid(stamp: tuple[str, int, int]) -> tuple[tuple[int, ...], tuple[float, ...]] | None:
    # deferred: the Snakefile imports this module at every start, and most runs need no header
    from radflow.io.volume_files import header_grid

    return header_grid(stamp[0])


def image_voxels(path: str | os.PathLike[str]) -> int | None:
    """Voxels of an image file from its header (:func:`image_grid`); ``None`` if unreadable."""
    grid = image_grid(path)
    return None if grid is None else math.prod(grid[0])


def image_voxel_mm3(path: str | os.PathLike[str]) -> float | None:
    """Volume of one voxel (mm^3) from an image file's header; ``None`` if unreadable."""
    grid = image_grid(path)
    return None if grid is None else float(math.prod(grid[1]))


def _read_json(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """A stage file's JSON object, unchecked (:func:`radflow.records.peek_json`);
    :class:`FileNotFoundError` passes through (Snakemake: evaluate later)."""
    from radflow.records import peek_json  # deferred: the Snakefile imports this module

    return peek_json(path)


@dataclass(frozen=True)
class ExtractPlan:
    """What of a PyRadiomics params file matters for the cost of one extraction.

    Attributes
    ----------
    crops
        PyRadiomics crops the image to the ROI (plus padding) before filtering.
    filters
        At least one filtered image type (LoG, Wavelet, ...) besides ``Original``, or a radflow
        filter image type.
    resampled_mm3
        Voxel volume after resampling (``resampledPixelSpacing``), ``None`` without resampling.
    """

    crops: bool
    filters: bool
    resampled_mm3: float | None


@lru_cache(maxsize=8)
def _extract_plan(stamp: tuple[str, int, int], custom_filters: bool) -> ExtractPlan:
    with open(stamp[0], encoding="utf-8") as fh:
        params = yaml.safe_load(fh) or {}
    setting = params.get("setting") or {}
    spacing = setting.get("resampledPixelSpacing")
    image_types = params.get("imageType") or {"Original": {}}
    resampled = (float(math.prod(spacing)) if isinstance(spacing, list) and len(spacing) == 3
                 and all(isinstance(s, (int, float)) and s > 0 for s in spacing) else None)
    return ExtractPlan(crops=any(bool(setting.get(k)) for k in _SETTINGS_THAT_CROP),
                       filters=custom_filters or any(t != "Original" for t in image_types),
                       resampled_mm3=resampled)


def extract_plan(params_path: str | os.PathLike[str], *,
                 custom_filters: bool = False) -> ExtractPlan:
    """Read the cost-relevant settings of a PyRadiomics params file (cached per change).

    An unreadable file gives the most expensive plan (no cropping, filters).
    """
    try:
        return _extract_plan(_stamp(params_path), bool(custom_filters))
    except (OSError, yaml.YAMLError, AttributeError, TypeError):
        return ExtractPlan(crops=False, filters=True, resampled_mm3=None)


# --- per-rule requests -----------------------------------------------------------------------

def _convert_voxels(series_tsv: str, series_key: str, source_json: str | None) -> int | None:
    voxels = series_voxels(series_tsv, series_key)
    if voxels is None and source_json:
        # A sheet file whose size the crawl could not read (or a table from before 0.4.0).
        files = _read_json(source_json).get("files")
        if isinstance(files, list) and len(files) == 1 and isinstance(files[0], str):
            voxels = image_voxels(files[0])
    return voxels


def convert_mem_mb(series_tsv: str, series_key: str, source_json: str | None = None, *,
                   floor_mb: int = 1000) -> int:
    """``convert_one``: memory (MB) for one series or sheet file.

    Parameters
    ----------
    series_tsv, series_key
        The crawl's table and the series' key: ``rows * cols * slices`` of a DICOM series.
    source_json
        The job's input (the source's file list): a NIfTI file's header when the table has no
        size for it.
    floor_mb
        The smallest request.
    """
    voxels = _convert_voxels(series_tsv, series_key, source_json)
    return floor_mb if voxels is None else mem_request(CONVERT.mem_mb(voxels), floor_mb)


def convert_runtime(series_tsv: str, series_key: str, source_json: str | None = None, *,
                    floor_min: int = 5) -> int:
    """``convert_one``: run time (minutes); see :func:`convert_mem_mb`."""
    voxels = _convert_voxels(series_tsv, series_key, source_json)
    return floor_min if voxels is None else runtime_request(CONVERT.seconds(voxels), floor_min)


def _sidecar_voxels(sidecar: str | None) -> int | None:
    if not sidecar:
        return None
    grid = _read_json(sidecar).get("grid")
    size = grid.get("size") if isinstance(grid, dict) else None
    with contextlib.suppress(TypeError, ValueError):
        return math.prod(int(s) for s in size) if size and len(size) == 3 else None
    return None


def pair_mem_mb(image_sidecar: str | None, *, floor_mb: int = 1000) -> int:
    """``pair_one``: memory (MB), from the image grid in its convert sidecar (the mask's grid)."""
    voxels = _sidecar_voxels(image_sidecar)
    return floor_mb if voxels is None else mem_request(PAIR.mem_mb(voxels), floor_mb)


def pair_runtime(image_sidecar: str | None, *, floor_min: int = 5) -> int:
    """``pair_one``: run time (minutes)."""
    voxels = _sidecar_voxels(image_sidecar)
    return floor_min if voxels is None else runtime_request(PAIR.seconds(voxels), floor_min)


def _extract_model(pair_json: str, params_path: str, custom_filters: bool,
                   families: bool = False) -> tuple[float, float] | None:
    """Modelled (MB, s) of one extraction, or ``None`` when the sizes cannot be read."""
    pair = _read_json(pair_json)
    image = pair.get("image")
    voxels = image_voxels(image) if image else None
    if not image or voxels is None:
        return None
    plan = extract_plan(params_path, custom_filters=custom_filters)
    whole_image = plan.filters and not plan.crops
    cost = EXTRACT_FULL_IMAGE if whole_image else EXTRACT_CROPPED
    mem, sec = cost.mem_mb(voxels), cost.seconds(voxels)
    roi = pair.get("n_voxels")
    voxel_mm3 = image_voxel_mm3(image)
    if not whole_image and isinstance(roi, int) and roi > 0 and voxel_mm3:
        box = roi * ROI_BOX_FACTOR * voxel_mm3 / (plan.resampled_mm3 or voxel_mm3)
        mem, sec = mem + ROI_BOX.mem_mb(box), sec + ROI_BOX.seconds(box)
    if families:
        mem, sec = mem + FAMILIES.mem_mb(voxels), sec + FAMILIES.seconds(voxels)
    return mem, sec


def _unit_model(pair_jsons: str | Sequence[str], params_path: str,
                custom_filters: bool, families: bool = False) -> tuple[float, float] | None:
    """Modelled (MB, s) of one extraction unit (the pairs of one image, one process).

    Memory is the largest pair's (the image is held once; masks one at a time); time is the sum
    of the pairs' times, counting the process start once. ``None`` when no size can be read.
    """
    paths = [pair_jsons] if isinstance(pair_jsons, str) else list(pair_jsons)
    models = [m for m in (_extract_model(p, params_path, custom_filters, families)
                          for p in paths) if m is not None]
    if not models:
        return None
    mem = max(m[0] for m in models)
    sec = sum(m[1] for m in models) - (len(models) - 1) * EXTRACT_CROPPED.base_s
    return mem, sec


def extract_mem_mb(pair_jsons: str | Sequence[str], params_path: str, *,
                   custom_filters: bool = False, families: bool = False,
                   floor_mb: int = 1000) -> int:
    """``extract_one``: memory (MB) from the image size, the ROI sizes and the params file.

    Parameters
    ----------
    pair_jsons
        The unit's pair records (``pair/<pair_id>.json``: image path, ROI voxel count).
    params_path
        The PyRadiomics params file (whether filters run on the whole image or the ROI box).
    custom_filters
        radflow filter image types are configured (``extract.image_types``: a filter even when
        the params file has none; the Laws cost model stands for all of them).
    families
        radflow's own feature families are on (``extract.families``; :data:`FAMILIES`).
    floor_mb
        The smallest request (config ``extract.mem_mb``).
    """
    model = _unit_model(pair_jsons, params_path, custom_filters, families)
    return floor_mb if model is None else mem_request(model[0], floor_mb)


def extract_runtime(pair_jsons: str | Sequence[str], params_path: str, *,
                    custom_filters: bool = False, families: bool = False,
                    floor_min: int = 10) -> int:
    """``extract_one``: run time (minutes); see :func:`extract_mem_mb`."""
    model = _unit_model(pair_jsons, params_path, custom_filters, families)
    return floor_min if model is None else runtime_request(model[1], floor_min)


def extract_priority(pair_jsons: str | Sequence[str], params_path: str,
                     custom_filters: bool = False, families: bool = False) -> int:
    """``extract_one``: scheduling priority, the unit's modelled run time in seconds (0 when the
    sizes cannot be read): the longest units start first, so that few cores are not left
    waiting for one long job started last (largest-first scheduling).

    Snakemake evaluates priorities when it builds the DAG: units whose pair records do not
    exist yet (a run from scratch) get 0 (their order is then the DAG's); re-extracting a
    paired cohort (``snakemake extract``) schedules largest-first.
    """
    try:
        model = _unit_model(pair_jsons, params_path, custom_filters, families)
    except OSError:  # pair records not written yet: not an input-function failure here
        return 0
    return 0 if model is None else round(model[1])


def inputs_mb(paths: Iterable[str | os.PathLike[str]]) -> float:
    """Total size (MiB) of the files in ``paths`` that exist (a job's ``input``).

    Snakemake's ``input.size_mb`` gives the same number but costs ~0.1 s per call for the
    thousands of inputs of ``merge`` and ``qc`` (each checks its file through Snakemake's storage
    layer); a plain ``os.stat`` per file costs a few milliseconds in all.
    """
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += os.stat(path).st_size
    return total / 2**20


def merge_mem_mb(input_mb: float, *, floor_mb: int = 2000) -> int:
    """``merge``: memory (MB) from the total size of its inputs (mostly feature Parquet files)."""
    return mem_request(MERGE_BASE_MB + MERGE_MB_PER_INPUT_MB * max(input_mb, 0.0), floor_mb)


def merge_runtime(input_mb: float, *, floor_min: int = 15) -> int:
    """``merge``: run time (minutes)."""
    return runtime_request(MERGE_BASE_S + MERGE_S_PER_INPUT_MB * max(input_mb, 0.0), floor_min)


__all__ = [
    "CONVERT", "EXTRACT_CROPPED", "EXTRACT_FULL_IMAGE", "MEM_SAFETY", "PAIR", "ROI_BOX",
    "TIME_SAFETY", "Cost", "ExtractPlan", "convert_mem_mb", "convert_runtime", "extract_mem_mb",
    "extract_plan", "extract_priority", "extract_runtime", "image_grid", "image_voxel_mm3",
    "image_voxels", "inputs_mb", "mem_request", "merge_mem_mb", "merge_runtime", "pair_mem_mb",
    "pair_runtime", "runtime_request", "series_voxels",
]
