"""The crawl's series table ``crawl/series.tsv``: its row record, its one writer and one reader.

A row (:class:`SeriesRow`) describes one thing the crawl found: a DICOM volume (one series, or
one volume of a split series), a mask object (RTSTRUCT / SEG), an image or mask file of the
cohort sheet, or an unreadable file. Written by the crawl (:func:`write_series_table`); read by
the Snakefile's job lists and resource model (:mod:`radflow.plan`), de-identification, the
``qc`` rule and the run summary (:func:`read_series_table`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radflow.errors import InputFileError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class SeriesRow:
    """One row of ``crawl/series.tsv`` (README, "Columns"). Sizes and numbers are ``None`` when
    unknown (an empty cell)."""

    case_id: str
    series_key: str
    study_key: str
    source: str  # "dicom" | "image-file"
    role: str  # "image" | "mask" | "" (not an image: a report, an unreadable file)
    modality: str
    n_instances: int | None
    status: str  # radflow.records.status.Status text
    rows: int | None
    cols: int | None
    slices: int | None  # slice positions
    spacing_x: float | None
    spacing_y: float | None
    spacing_z: float | None
    orientation: str
    series_number: int | None
    series_description: str
    manufacturer: str
    split: str
    resampled: str
    qc: str  # comma-separated QC warnings

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SeriesRow:
        """The row with these column values; a missing or unknown column is a ``ValueError``
        naming it (a radflow bug, not an input problem)."""
        missing = [c for c in SERIES_COLUMNS if c not in values]
        unknown = sorted(set(values) - set(SERIES_COLUMNS))
        if missing or unknown:
            raise ValueError(f"series row {values.get('series_key', '?')}: missing columns "
                             f"{missing}, unknown columns {unknown}")
        return cls(**{c: _blank_to_none(c, values[c]) for c in SERIES_COLUMNS})


def _blank_to_none(column: str, value: Any) -> Any:
    if column in _OPTIONAL_NUMBERS:
        return None if value is None or value == "" else value
    return "" if value is None else value


SERIES_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SeriesRow))
#: Integer columns (written without a decimal point; empty when unknown).
SERIES_INT_COLUMNS: tuple[str, ...] = ("n_instances", "rows", "cols", "slices", "series_number")
_OPTIONAL_NUMBERS = frozenset({*SERIES_INT_COLUMNS, "spacing_x", "spacing_y", "spacing_z"})


def series_frame(rows: Iterable[SeriesRow]) -> pd.DataFrame:
    """The series table of ``rows``, sorted by ``case_id`` and ``series_key``."""
    import pandas as pd

    frame = pd.DataFrame([asdict(r) for r in rows], columns=list(SERIES_COLUMNS))
    frame = frame.astype({c: "Int64" for c in SERIES_INT_COLUMNS})
    return frame.sort_values(["case_id", "series_key"], kind="stable").reset_index(drop=True)


def write_series_table(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    """Write ``crawl/series.tsv`` (a :func:`series_frame`) atomically."""
    from radflow.io.atomic import write_tsv

    if tuple(frame.columns) != SERIES_COLUMNS:
        raise ValueError(f"series table columns {list(frame.columns)}: expected "
                         f"{list(SERIES_COLUMNS)}")
    write_tsv(path, frame)


def read_series_table(path: str | os.PathLike[str],
                      columns: Iterable[str] = SERIES_COLUMNS) -> pd.DataFrame:
    """``crawl/series.tsv`` as text (every cell a ``str``, empty cells ``""``).

    Parameters
    ----------
    path
        The table.
    columns
        The columns of :class:`SeriesRow` the caller uses (default: all); each must be there.

    Raises
    ------
    InputFileError
        Reason ``bad-series-table``: a needed column is missing (a table from another tool or
        an older radflow: re-run the crawl).
    """
    from radflow.records import read_table

    table = read_table(path)
    unknown = sorted(set(columns) - set(SERIES_COLUMNS))
    if unknown:
        raise ValueError(f"not series table columns: {unknown}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputFileError(f"{Path(path).name}: not a radflow series table (missing columns "
                             f"{', '.join(missing)}); re-run the crawl", reason="bad-series-table")
    return table


__all__ = ["SERIES_COLUMNS", "SERIES_INT_COLUMNS", "SeriesRow", "read_series_table",
           "series_frame", "write_series_table"]
