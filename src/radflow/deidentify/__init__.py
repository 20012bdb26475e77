"""Stage ``deidentify``: the crawled cohort -> a de-identified DICOM tree (``deidentify: true``).

Rules (see the Snakefile and the README, "Privacy"):

``deid_crawl`` (checkpoint)
    The crawl of the source ``dicom_root``; its tables and source records stay in the private
    folder (``<private>/deid_crawl/``, ``<private>/deid_sources/``): source series descriptions
    and paths may name patients.
``deidentify_one`` (per series, :func:`run_deidentify_one`)
    One series into ``<results>/deid/<case_id>/<f…>/<series_key>/`` and its status/counts
    record into ``<results>/deid/.series/<series_key>.json`` (hidden: the crawl of the
    de-identified tree skips it).
``deidentify`` (target, :func:`run_deidentify`)
    ``<results>/deid/actions.tsv`` (tag, keyword, action, count), ``<results>/deid/series.tsv``
    (status per series), the private pseudonym table ``<private>/pseudonyms.tsv`` and the
    private UID/source map ``<private>/deid/uid_map.tsv`` (:mod:`radflow.records.uid_map`).

The main ``crawl`` then reads ``<results>/deid`` with
:class:`radflow.crawl.Deidentified` (PatientID = ``case_id`` passes through unchanged), and the
cohort sheet's source references through the UID/source map.

The library behind the rules, by PS3.15 Annex E (Basic Application Level Confidentiality Profile
with options), keyed so that pseudonyms, UIDs and date shifts are consistent:
:mod:`~radflow.deidentify.profile` (the standard's action table, :class:`DeidSettings`),
:mod:`~radflow.deidentify.uids` (keyed UID replacement), :mod:`~radflow.deidentify.dates`
(per-patient date shift), :mod:`~radflow.deidentify.clean` (Clean Descriptors),
:mod:`~radflow.deidentify.burned_in`, :mod:`~radflow.deidentify.dataset` (one data set),
:mod:`~radflow.deidentify.tree` (one series into a folder), :mod:`~radflow.deidentify.log`
(``actions.tsv`` and the private pseudonym table).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from radflow.deidentify.log import (
    collect_pseudonyms,
    merge_counts,
    series_table,
    write_actions_log,
    write_pseudonym_table,
)
from radflow.deidentify.profile import DeidSettings
from radflow.deidentify.tree import SeriesResult, deid_units, deidentify_series, series_output_dir
from radflow.deidentify.uids import replace_uid
from radflow.dicom.headers import get_str, read_header
from radflow.errors import InputFileError
from radflow.io.atomic import write_json, write_tsv
from radflow.keys import load_key
from radflow.records import read_source
from radflow.records.tables import read_series_table
from radflow.records.uid_map import UidMapEntry, write_uid_map
from radflow.settings import from_mapping

logger = logging.getLogger(__name__)


def deid_settings(values: Mapping[str, Any] | None) -> DeidSettings:
    """:class:`DeidSettings` from the config's ``deid`` block."""
    return from_mapping(DeidSettings, values, section="deid")


def unit_keys(series_tsv: str | Path, sources_dir: str | Path) -> list[str]:
    """Series keys to de-identify: :func:`radflow.deidentify.deid_units` of the crawl's current
    source records (files left by earlier crawls are ignored)."""
    series = read_series_table(series_tsv, ["series_key"])
    records = []
    for key in series["series_key"]:
        path = Path(sources_dir) / f"{key}.json"
        if path.is_file():
            records.append(read_source(path).to_json())
    return [u["series_key"] for u in deid_units(records)]


def run_deidentify_one(*, source: str, record: str, dicom_root: str, key_file: str,
                       settings: Mapping[str, Any]) -> SeriesResult:
    """De-identify the series of one private source record; write its status record
    ``<deid root>/.series/<series_key>.json`` (the series goes below that deid root)."""
    src = read_source(source).to_json()
    key = load_key(key_file)
    out = series_output_dir(Path(record).parent.parent, key, src["case_id"], src["series_key"],
                            src["files"], dicom_root or None)
    result = deidentify_series(src["files"], out, deid_settings(settings), key, src["case_id"],
                               src["series_key"])
    write_json(record, result.record())
    return result


def source_series_uid(files: Sequence[str]) -> str:
    """SeriesInstanceUID of the first readable file of ``files`` (empty when none is)."""
    for f in files:
        try:
            ds, _ = read_header(f)
        except InputFileError:
            continue
        return get_str(ds, "SeriesInstanceUID").strip(" \0")
    return ""


def uid_map_entries(results: Sequence[SeriesResult], file_lists: Sequence[Sequence[str]],
                    key: bytes, retain_uids: bool) -> list[UidMapEntry]:
    """The UID/source map of the de-identified series (``results[i]`` made of
    ``file_lists[i]``)."""
    entries = []
    for result, files in zip(results, file_lists, strict=True):
        uid = source_series_uid(files)
        new = uid if retain_uids else replace_uid(key, uid)
        entries.append(UidMapEntry(result.series_key, uid, new, list(files)))
    return entries


def run_deidentify(*, records: Sequence[str], sources_dir: str, key_file: str, actions_tsv: str,
                   series_tsv: str, pseudonyms_tsv: str, uid_map_tsv: str,
                   retain_uids: bool = False) -> None:
    """Collect the per-series records into ``actions.tsv`` and ``series.tsv``; write the
    pseudonym table and the UID/source map (both private)."""
    results = [SeriesResult.from_record(json.loads(Path(r).read_text("utf-8")))
               for r in records]
    write_actions_log(actions_tsv, merge_counts(results))
    write_tsv(series_tsv, series_table(results))
    key = load_key(key_file)
    file_lists = [read_source(Path(sources_dir) / f"{r.series_key}.json").files
                  for r in results]
    write_pseudonym_table(pseudonyms_tsv, collect_pseudonyms(file_lists, key))
    write_uid_map(uid_map_tsv, uid_map_entries(results, file_lists, key, retain_uids))
    statuses = pd.Series([r.status for r in results], dtype=str).value_counts().sort_index()
    for status, n in statuses.items():
        logger.info("deidentify: %d series %s", n, status)


__all__ = ["deid_settings", "run_deidentify", "run_deidentify_one", "source_series_uid",
           "uid_map_entries", "unit_keys"]
