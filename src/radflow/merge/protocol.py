"""The protocol QC gate's columns in the merged tables (README, "Protocol QC gates").

Every row of ``features_wide`` and ``dataset`` gets ``protocol`` (the profile's name),
``protocol_status`` (``pass`` / ``fail`` / ``unknown``) and ``protocol_failed`` (the failed
rule ids, comma-separated), after the key and provenance columns; without a profile they read
``""``, ``off``, ``""``. Pairs the gate made ``excluded:protocol-failed`` leave the long and
wide feature tables and the dataset.
"""

from __future__ import annotations

import logging

import pandas as pd

from radflow.records.protocol import DATASET_COLUMNS, read_protocol_pairs
from radflow.records.status import Status

logger = logging.getLogger(__name__)

OFF = "off"


def protocol_flags(pairs_tsv: str) -> pd.DataFrame | None:
    """``qc/protocol_pairs.tsv`` indexed by ``pair_id`` (``None`` without a profile)."""
    return read_protocol_pairs(pairs_tsv).set_index("pair_id") if pairs_tsv else None


def excluded_pairs(flags: pd.DataFrame | None) -> set[str]:
    """The pairs the gate excluded (status ``excluded:protocol-failed``)."""
    if flags is None:
        return set()
    return {p for p, s in flags["status"].items() if not Status.parse(s).is_ok}


def with_protocol(table: pd.DataFrame, flags: pd.DataFrame | None, position: int) -> pd.DataFrame:
    """``table`` without excluded pairs and with :data:`DATASET_COLUMNS` inserted at
    ``position`` (after the key and provenance columns). A pair the gate did not judge (none
    should be missing) reads ``unknown``."""
    excluded = excluded_pairs(flags)
    out = table[~table["pair_id"].isin(excluded)].reset_index(drop=True)
    for offset, column in enumerate(DATASET_COLUMNS):
        if flags is None:
            values = pd.Series("" if column != "protocol_status" else OFF, index=out.index)
        else:
            default = "unknown" if column == "protocol_status" else ""
            values = out["pair_id"].map(flags[column]).fillna(default)
        out.insert(position + offset, column, values.astype(str))
    return out


def drop_excluded(long: pd.DataFrame, flags: pd.DataFrame | None) -> pd.DataFrame:
    """The long feature table without the pairs the gate excluded (logged)."""
    excluded = excluded_pairs(flags)
    if excluded:
        logger.info("merge: %d pair(s) excluded:protocol-failed left out of the dataset",
                    len(excluded))
    return long[~long["pair_id"].isin(excluded)].reset_index(drop=True)


__all__ = ["OFF", "drop_excluded", "excluded_pairs", "protocol_flags", "with_protocol"]
