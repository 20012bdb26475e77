"""The protocol QC gate's tables: ``qc/protocol.tsv`` and ``qc/protocol_pairs.tsv``.

``qc/protocol.tsv``: one row per (series or study) x rule: the value judged, the limit, the
result (``pass`` / ``fail`` / ``unknown``) and a note. ``qc/protocol_pairs.tsv``: one row per
planned pair: the profile, the verdict over its image series' and its study's rules, the failed
and the unknown rule ids, and the pair's ``status`` (``ok``, or ``excluded:protocol-failed``
with ``protocol.on_fail: exclude``). Written by the ``protocol`` rule
(:mod:`radflow.protocol`); the pairs table is read by the merge
(:func:`read_protocol_pairs`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from radflow.errors import InputFileError

if TYPE_CHECKING:
    import pandas as pd

PROTOCOL_COLUMNS: tuple[str, ...] = (
    "protocol", "level", "case_id", "study_key", "series_key", "rule", "attribute", "value",
    "limit", "result", "note")
PROTOCOL_PAIR_COLUMNS: tuple[str, ...] = (
    "pair_id", "case_id", "image_key", "protocol", "protocol_status", "protocol_failed",
    "protocol_unknown", "status")
#: The columns the merge adds to every row of the dataset.
DATASET_COLUMNS: tuple[str, ...] = ("protocol", "protocol_status", "protocol_failed")


def _write(path: str | os.PathLike[str], frame: pd.DataFrame, columns: tuple[str, ...],
           what: str) -> None:
    from radflow.io.atomic import write_tsv

    if tuple(frame.columns) != columns:
        raise ValueError(f"{what} columns {list(frame.columns)}: expected {list(columns)}")
    write_tsv(path, frame)


def write_protocol_table(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    """Write ``qc/protocol.tsv`` (columns :data:`PROTOCOL_COLUMNS`) atomically."""
    _write(path, frame, PROTOCOL_COLUMNS, "protocol table")


def write_protocol_pairs(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    """Write ``qc/protocol_pairs.tsv`` (columns :data:`PROTOCOL_PAIR_COLUMNS`) atomically."""
    _write(path, frame, PROTOCOL_PAIR_COLUMNS, "protocol pair table")


def read_protocol_pairs(path: str | os.PathLike[str]) -> pd.DataFrame:
    """``qc/protocol_pairs.tsv`` as text (every cell a ``str``).

    Raises
    ------
    InputFileError
        Reason ``bad-protocol-table``: a column is missing (re-run the ``protocol`` rule).
    """
    from radflow.records import read_table

    table = read_table(path)
    missing = [c for c in PROTOCOL_PAIR_COLUMNS if c not in table.columns]
    if missing:
        raise InputFileError(f"{Path(path).name}: not a radflow protocol pair table (missing "
                             f"columns {', '.join(missing)})", reason="bad-protocol-table")
    return table


__all__ = ["DATASET_COLUMNS", "PROTOCOL_COLUMNS", "PROTOCOL_PAIR_COLUMNS",
           "read_protocol_pairs", "write_protocol_pairs", "write_protocol_table"]
