"""Typed records of the files that cross a stage boundary, and the ``kind:reason`` status.

Each file one stage writes and another reads has one frozen dataclass here, with exactly one
reader and one writer; no other module parses another stage's file.

- :class:`Source`: ``<private>/sources/<series_key>.json``, written by the crawl, read by
  convert and de-identification;
- :class:`PairPlan`: ``crawl/pairs/<pair_id>.json`` (a row of the crawl's pair plan), written
  by the crawl, read by pair;
- :class:`ConvertSidecar` (with :class:`RoiEntry` per RTSTRUCT/SEG ROI):
  ``convert/<case_id>/<series_key>.json``, written by convert, read by convert (the image of a
  mask object), pair and merge;
- :class:`PairRecord`: ``pair/<pair_id>.json``, written by pair, read by pair (the table),
  extract and the resource estimates;
- :class:`ExtractStatus` (with :class:`PairStatus` per pair): ``extract/<case_id>/<unit>.json``,
  written by extract, read by merge;
- :class:`~radflow.records.side.ExtractSide` (:mod:`radflow.records.side`): the landmarks and
  Minkowski curves of radflow's own feature families, ``extract/<case_id>/<unit>.side.json``,
  written by extract, read by merge.

:class:`Status` (:mod:`radflow.records.status`) owns the ``kind:reason`` text.

The crawl's ``series.tsv`` has its row record :class:`~radflow.records.tables.SeriesRow`, one
writer and one reader (:mod:`radflow.records.tables`). The other tables (``pair_plan.tsv``,
whose rows are the :class:`PairPlan` records; ``pairs.tsv``, the :class:`PairRecord` rows;
``rois.tsv``) are read by :func:`read_table` (every cell a string, empty cells kept as ``""``)
and written by :func:`radflow.io.atomic.write_tsv`.

The JSON files are written by :func:`radflow.io.atomic.write_json` (sorted keys, two-space
indent): a record's ``to_json`` gives the same keys as the stage wrote before the records
existed, so the files are byte-identical. Optional keys are ``None`` in the record and absent
from the file.

This module imports no pandas at module level (the extract and pair jobs stay lean).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from radflow.records.files import (
    ConvertSidecar,
    ExtractStatus,
    PairPlan,
    PairRecord,
    PairStatus,
    RoiEntry,
    Source,
    peek_json,
    read_extract_status,
    read_pair_json,
    read_pair_plan,
    read_pair_record,
    read_sidecar,
    read_source,
    write_extract_status,
    write_pair_plan,
    write_pair_record,
    write_sidecar,
    write_source,
)
from radflow.records.status import RELAYED_PREFIXES, Status, StatusError

if TYPE_CHECKING:
    import pandas as pd


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A radflow TSV table: every column ``str``, empty cells ``""`` (no NaN), leading zeros
    kept. Written by :func:`radflow.io.atomic.write_tsv`."""
    import pandas as pd

    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


__all__ = ["RELAYED_PREFIXES", "ConvertSidecar", "ExtractStatus", "PairPlan", "PairRecord",
           "PairStatus", "RoiEntry", "Source", "Status", "StatusError", "peek_json",
           "read_extract_status", "read_pair_json", "read_pair_plan", "read_pair_record",
           "read_sidecar", "read_source", "read_table", "write_extract_status",
           "write_pair_plan", "write_pair_record", "write_sidecar", "write_source"]
