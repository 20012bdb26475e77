"""The job lists the Snakefile's input functions need: the crawl checkpoint's plan (which series
are converted, which pairs and extraction units exist), read once per process, and the files
each job reads.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pandas as pd

from radflow.errors import ConfigError
from radflow.params_sets import ParamsSets, unit_choice
from radflow.records import read_table
from radflow.records.tables import read_series_table

logger = logging.getLogger(__name__)

#: Set to a file name: every actual read of the crawl's tables by :func:`read_plan` appends one
#: line to it (process id and table paths), so that a test can count plan reads per dry run.
PLAN_TRACE_ENV = "RADFLOW_PLAN_TRACE"


@dataclass(frozen=True)
class Plan:
    """What the crawl found: series to convert and pairs to build, with lookup indexes.

    Built once per change of the crawl's tables (see :func:`read_plan`); the input functions of
    the per-item rules look a job up in the indexes (a dict access), never in the tables.

    Attributes
    ----------
    convert : pandas.DataFrame
        Columns ``case_id, series_key, image_key`` of every source to convert; ``image_key`` is
        the image an RTSTRUCT/SEG mask is built on ("" for other sources).
    pairs : pandas.DataFrame
        The crawl's pair plan ``crawl/pair_plan.tsv`` (``pair_id, case_id, image_key,
        mask_key, image_status, mask_status, ...``).
    converted : Mapping[str, tuple[str, str]]
        ``series_key -> (case_id, image_key)`` of ``convert`` (its first row per key).
    pair_rows : Mapping[str, Mapping[str, str]]
        ``pair_id -> row`` of ``pairs`` (its first row per id).
    units : Mapping[str, tuple[str, tuple[str, ...]]]
        Extraction unit (see :func:`extract_units`) ``-> (case_id, pair ids)``, in unit order,
        the pair ids sorted.
    notes : tuple of str
        What the user may not expect from ``convert.scope`` (see :func:`scope_notes`); logged
        once when the plan is read.
    modalities : Mapping[str, str]
        Extraction unit ``->`` the modality of its image series (``series.tsv``; a unit
        without an image series is not listed): it chooses the unit's parameter set.
    """

    convert: pd.DataFrame
    pairs: pd.DataFrame
    converted: Mapping[str, tuple[str, str]]
    pair_rows: Mapping[str, Mapping[str, str]]
    units: Mapping[str, tuple[str, tuple[str, ...]]]
    notes: tuple[str, ...] = ()
    modalities: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def _stamp(path: str) -> tuple[str, int, int, int]:
    """What identifies a version of a file: absolute path, inode, size, modification time."""
    st = os.stat(path)
    return os.path.abspath(path), st.st_ino, st.st_size, st.st_mtime_ns


def read_plan(series_tsv: str, pair_plan_tsv: str, scope: str) -> Plan:
    """The crawl checkpoint's plan: which series are converted, which pairs and units exist.

    The tables are read and the plan derived once per process and version of the tables
    (memoised on their path, inode, size and modification time, and ``scope``): the input
    functions call this for every job (re-reading the tables per job made a dry run quadratic
    in the cohort's size). The returned plan is shared: treat it as read-only.

    Parameters
    ----------
    series_tsv, pair_plan_tsv
        The crawl's ``series.tsv`` and ``pair_plan.tsv``.
    scope
        ``paired``: only sources used by a planned pair; ``all``: also every other ``ok`` image
        series. Either way only ``ok`` sources, and an RTSTRUCT/SEG mask only when its image is
        converted too (its masks are built on the image's grid).
    """
    return _read_plan(_stamp(series_tsv), _stamp(pair_plan_tsv), scope)


#: The columns of ``series.tsv`` the plan uses.
PLAN_COLUMNS = ("case_id", "series_key", "source", "role", "status")


@functools.lru_cache(maxsize=4)
def _read_plan(series_stamp: tuple[str, int, int, int], pairs_stamp: tuple[str, int, int, int],
               scope: str) -> Plan:
    trace = os.environ.get(PLAN_TRACE_ENV)
    if trace:
        with open(trace, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\t{series_stamp[0]}\t{pairs_stamp[0]}\t{scope}\n")
    series = read_series_table(series_stamp[0], PLAN_COLUMNS)
    pairs = read_table(pairs_stamp[0])
    ok = series[series["status"] == "ok"]
    dicom_mask = (ok["source"] == "dicom") & (ok["role"] == "mask")
    grids = pairs[(pairs["status"] == "ok") & pairs["mask_key"].isin(ok.loc[dicom_mask,
                                                                            "series_key"])]
    image_of = dict(zip(grids["mask_key"], grids["image_key"], strict=True))
    used = (set(pairs["image_key"]) | set(pairs["mask_key"]) | set(image_of.values()))
    wanted = ok[ok["series_key"].isin(used) | ((ok["role"] == "image") & (scope == "all"))]
    wanted = wanted[~dicom_mask.loc[wanted.index] | wanted["series_key"].isin(image_of)]
    convert = wanted[["case_id", "series_key"]].drop_duplicates().reset_index(drop=True)
    convert["image_key"] = [image_of.get(k, "") for k in convert["series_key"]]
    converted: dict[str, tuple[str, str]] = {}
    for case, key, image in zip(convert["case_id"], convert["series_key"], convert["image_key"],
                                strict=True):
        converted.setdefault(key, (case, image))
    pair_rows: dict[str, Mapping[str, str]] = {}
    for row in pairs.to_dict("records"):
        pair_rows.setdefault(row["pair_id"], MappingProxyType(row))
    grouped: dict[str, tuple[str, list[str]]] = {}  # unit -> (its first row's case, pair ids)
    table = extract_units_of(pairs)
    for unit, case, pair_id in zip(table["unit"], table["case_id"], table["pair_id"],
                                   strict=True):
        grouped.setdefault(unit, (case, []))[1].append(pair_id)
    units = {unit: (case, tuple(ids)) for unit, (case, ids) in grouped.items()}
    # (read when there: a table written by hand for a test may lack it; then all unknown)
    modality_of = (dict(zip(series["series_key"], series["modality"], strict=True))
                   if "modality" in series.columns else {})
    modalities = {unit: modality_of[unit] for unit in units if unit in modality_of}
    images = set(ok.loc[ok["role"] == "image", "series_key"])
    n_converted = len(images & set(converted))
    notes = scope_notes(scope, n_images=len(images), n_converted=n_converted, n_pairs=len(pairs))
    for note in notes:
        # A warning (Snakemake shows it) when nothing will be converted, else for the log only.
        logger.log(logging.INFO if n_converted else logging.WARNING, "radflow: %s", note)
    return Plan(convert=convert, pairs=pairs, converted=MappingProxyType(converted),
                pair_rows=MappingProxyType(pair_rows), units=MappingProxyType(units),
                notes=notes, modalities=MappingProxyType(modalities))


def scope_notes(scope: str, *, n_images: int, n_converted: int, n_pairs: int) -> tuple[str, ...]:
    """What ``convert.scope`` leaves out, in words (empty when every ``ok`` image is converted).

    Parameters
    ----------
    scope
        ``convert.scope``.
    n_images
        ``ok`` image series the crawl found.
    n_converted
        How many of them the plan converts.
    n_pairs
        Rows of the crawl's pair plan.
    """
    if scope != "paired" or n_converted == n_images:
        return ()
    if n_pairs == 0:
        return (f"convert.scope is 'paired' and no pairs were found: 0 of {n_images} image "
                "series will be converted; set convert.scope: all to convert every image",)
    return (f"convert.scope is 'paired': {n_images - n_converted} of {n_images} image series are "
            "in no pair and will not be converted; set convert.scope: all to convert every "
            "image",)


def sidecar_path(results: str, case_id: str, series_key: str) -> str:
    """Location of the convert sidecar (status + acquisition parameters) of one source."""
    return f"{results}/convert/{case_id}/{series_key}.json"


def convert_inputs(plan: Plan, results: str, private: str, series_key: str) -> dict[str, str]:
    """Inputs of ``convert_one``: the private source record and, for an RTSTRUCT/SEG mask, the
    sidecar of the image whose grid its masks are built on."""
    inputs = {"source": f"{private}/sources/{series_key}.json"}
    image_key = plan.converted.get(series_key, ("", ""))[1]
    if image_key:
        image = plan.converted.get(image_key)
        if image is None:
            raise ConfigError(f"mask {series_key}: its image {image_key} is not "
                              "planned for conversion")
        inputs["image"] = sidecar_path(results, image[0], image_key)
    return inputs


def pair_sidecars(plan: Plan, results: str, pair_id: str) -> dict[str, str]:
    """The convert sidecars a pair job reads: only for sources the crawl found ``ok`` and that
    are converted (an RTSTRUCT/SEG whose pair failed at crawl time is not)."""
    row = plan.pair_rows.get(pair_id)
    if row is None:
        raise ConfigError(f"pair {pair_id} is not in the crawl's pair_plan.tsv")
    inputs = {}
    if row["image_status"] == "ok" and row["image_key"] in plan.converted:
        inputs["image"] = sidecar_path(results, row["case_id"], row["image_key"])
    if row["mask_status"] == "ok" and row["mask_key"] in plan.converted:
        inputs["mask"] = sidecar_path(results, row["case_id"], row["mask_key"])
    return inputs


def all_sidecars(plan: Plan, results: str) -> list[str]:
    """The convert sidecars of every source of the plan (the ``convert`` and ``merge`` rules)."""
    return [sidecar_path(results, case, key) for case, key in zip(
        plan.convert["case_id"], plan.convert["series_key"], strict=True)]


def extract_units_of(pairs: pd.DataFrame) -> pd.DataFrame:
    """Extraction units of a pair plan table: see :func:`extract_units`."""
    units = pairs["image_key"].where(pairs["image_key"] != "", pairs["pair_id"])
    table = pd.DataFrame({"unit": units, "case_id": pairs["case_id"],
                          "pair_id": pairs["pair_id"]})
    return table.sort_values(["unit", "pair_id"], kind="stable").reset_index(drop=True)


def extract_units(plan: Plan) -> pd.DataFrame:
    """Extraction units: the pairs of one image are extracted by one job.

    Returns
    -------
    pandas.DataFrame
        Columns ``unit, case_id, pair_id``, one row per pair, sorted by unit. ``unit`` is the
        pair's ``image_key`` (a series key), or its ``pair_id`` when the crawl found no image.
    """
    return extract_units_of(plan.pairs)


def unit_files(plan: Plan, pattern: str) -> list[str]:
    """``pattern`` (with ``{case_id}`` and ``{unit}`` fields) for every extraction unit."""
    return [pattern.format(case_id=case, unit=unit) for unit, (case, _) in plan.units.items()]


def unit_pair_ids(plan: Plan, unit: str) -> list[str]:
    """The pair ids of one extraction unit (see :func:`extract_units`), sorted.

    Raises
    ------
    ConfigError
        No pair of the crawl's plan belongs to ``unit``.
    """
    if unit not in plan.units:
        raise ConfigError(f"extraction unit {unit} is not in the crawl's pair_plan.tsv")
    return list(plan.units[unit][1])


def extract_params(plan: Plan, sets: ParamsSets, unit: str) -> str | list[str]:
    """The ``params`` input of ``extract_one``: the PyRadiomics params file of the unit's
    modality (:meth:`radflow.params_sets.ParamsSets.path`), or ``[]`` when the modality has no
    parameter set (the job then records ``excluded:no-params-for-modality``). A dict look-up."""
    return sets.path(plan.modalities.get(unit, "")) or []


def unit_params_set(plan: Plan, sets: ParamsSets, unit: str) -> dict[str, str]:
    """The ``params_set`` param of ``extract_one``: the unit's modality, params key and file and
    its normalisation (:func:`radflow.params_sets.unit_choice`). A dict look-up."""
    return unit_choice(sets, plan.modalities.get(unit, ""))
