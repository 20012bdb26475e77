"""The reliability stage's tables ``reliability/agreement.tsv`` and
``reliability/reliable_features.tsv``: their columns, one writer and one reader each.

Written by the reliability stage (:mod:`radflow.reliability.agreement` builds them); read by
later stages (analysis, report) and by users. Numbers are written with Python's shortest
round-trip representation, so a table read back equals the table written, and two runs on the
same features give byte-identical files. Undefined statistics are empty cells (NaN when read).

``agreement.tsv`` (one row per feature × source × statistic):

- ``feature``: ``<image_type>_<feature_class>_<feature>``;
- ``source``: ``perturbation:<chain>``, ``retest`` or ``control:<kind>:<region>``;
- ``statistic``: ``ICC(1,1)``, ``ICC(2,1)``, ``ICC(3,1)`` or ``CCC``;
- ``value``, ``ci_low``, ``ci_high``: estimate and two-sided 95 % interval;
- ``n_subjects``: complete subjects used; ``n_raters``: perturbations / timepoints / 2;
- ``note``: why a value is empty (constant feature, too few subjects), subjects left out.

``reliable_features.tsv`` (one row per feature): ``feature``, ``reliable`` (``True`` /
``False``), ``reason`` (why not; empty when reliable).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from radflow.errors import InputFileError

if TYPE_CHECKING:
    import pandas as pd

AGREEMENT_COLUMNS: tuple[str, ...] = ("feature", "source", "statistic", "value", "ci_low",
                                      "ci_high", "n_subjects", "n_raters", "note")
RELIABLE_COLUMNS: tuple[str, ...] = ("feature", "reliable", "reason")
_FLOATS = ("value", "ci_low", "ci_high")
_INTS = ("n_subjects", "n_raters")


def _check_columns(frame: pd.DataFrame, expected: tuple[str, ...], what: str) -> None:
    if tuple(frame.columns) != expected:
        raise ValueError(f"{what} columns {list(frame.columns)}: expected {list(expected)}")


def write_agreement(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write ``reliability/agreement.tsv`` atomically (``table`` has :data:`AGREEMENT_COLUMNS`)."""
    from radflow.io.atomic import write_tsv

    _check_columns(table, AGREEMENT_COLUMNS, "agreement table")
    write_tsv(path, table)


def read_agreement(path: str | os.PathLike[str]) -> pd.DataFrame:
    """``reliability/agreement.tsv`` with float statistics (NaN when empty), integer counts and
    text notes (``""`` when empty).

    Raises
    ------
    InputFileError
        Reason ``bad-agreement-table``: not the columns :func:`write_agreement` writes.
    """
    import pandas as pd

    table = _read(path, AGREEMENT_COLUMNS)
    try:
        numbers = {c: pd.to_numeric(table[c]).astype("float64") for c in _FLOATS}
        numbers |= {c: pd.to_numeric(table[c]).astype("int64") for c in _INTS}
    except (ValueError, TypeError) as exc:
        raise InputFileError(f"{Path(path).name}: a statistic or count is not a number ({exc})",
                             reason="bad-agreement-table") from exc
    return table.assign(**numbers)


def write_reliable_features(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write ``reliability/reliable_features.tsv`` atomically (:data:`RELIABLE_COLUMNS`)."""
    from radflow.io.atomic import write_tsv

    _check_columns(table, RELIABLE_COLUMNS, "reliable-features table")
    write_tsv(path, table)


def read_reliable_features(path: str | os.PathLike[str]) -> pd.DataFrame:
    """``reliability/reliable_features.tsv`` with ``reliable`` as bool.

    Raises
    ------
    InputFileError
        Reason ``bad-agreement-table``: not the columns :func:`write_reliable_features` writes,
        or a ``reliable`` cell other than ``True`` / ``False``.
    """
    table = _read(path, RELIABLE_COLUMNS)
    flags = table["reliable"].map({"True": True, "False": False})
    if flags.isna().any():
        raise InputFileError(f"{Path(path).name}: 'reliable' must be True or False",
                             reason="bad-agreement-table")
    return table.assign(reliable=flags.astype(bool))


def _read(path: str | os.PathLike[str], columns: tuple[str, ...]) -> pd.DataFrame:
    from radflow.records import read_table

    table = read_table(path)
    if tuple(table.columns) != columns:
        raise InputFileError(f"{Path(path).name}: not a radflow reliability table (columns "
                             f"{list(table.columns)}, expected {list(columns)})",
                             reason="bad-agreement-table")
    return table


__all__ = ["AGREEMENT_COLUMNS", "RELIABLE_COLUMNS", "read_agreement", "read_reliable_features",
           "write_agreement", "write_reliable_features"]
