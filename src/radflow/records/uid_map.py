"""The de-identification's UID/source map: its one writer and its one reader.

The ``deidentify`` rule writes ``<private>/deid/uid_map.tsv`` (a declared output; private,
because it holds source UIDs and source paths), one row per source file of every de-identified
series:

``series_key``
    The source series' key: the name of the series' folder on the de-identified tree
    (:func:`radflow.deidentify.series_output_dir`).
``source_series_uid``
    Its source SeriesInstanceUID (empty when no file of it could be read).
``series_uid``
    The SeriesInstanceUID its de-identified files carry (the keyed replacement, or the source UID
    with ``deid.retain_uids``; empty with the source UID).
``source_file``
    One of its source files.

The crawl of the de-identified tree reads it (:func:`read_uid_map`) to translate the cohort
sheet's source references (``series:<UID>`` and DICOM folders) into de-identified series, so
the crawl never imports the de-identification package. This module imports no stage; it is the
UID map's record module (like :mod:`radflow.records` for the other stage files).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from radflow.errors import InputFileError
from radflow.io.atomic import write_tsv
from radflow.records import read_table

UID_MAP_COLUMNS = ["series_key", "source_series_uid", "series_uid", "source_file"]


@dataclass(frozen=True)
class UidMapEntry:
    """One de-identified series: its source key, source and new SeriesInstanceUID, source
    files."""

    series_key: str
    source_series_uid: str
    series_uid: str
    source_files: Sequence[str]


@dataclass(frozen=True)
class UidMap:
    """:func:`read_uid_map`'s result.

    Attributes
    ----------
    series_uid
        Source SeriesInstanceUID -> the de-identified one.
    source_files
        Source series key (a de-identified series' folder name) -> its source files, as listed.
    """

    series_uid: dict[str, str] = field(default_factory=dict)
    source_files: dict[str, tuple[str, ...]] = field(default_factory=dict)


def write_uid_map(path: str | os.PathLike[str], entries: Iterable[UidMapEntry]) -> None:
    """Write the map atomically (one row per source file, see the module docstring)."""
    rows = [(e.series_key, e.source_series_uid, e.series_uid, str(f))
            for e in entries for f in e.source_files]
    write_tsv(path, pd.DataFrame(rows, columns=UID_MAP_COLUMNS))


def read_uid_map(path: str | os.PathLike[str]) -> UidMap:
    """Read a map written by :func:`write_uid_map`.

    Raises
    ------
    InputFileError
        When the file is missing, unreadable or lacks a column.
    """
    try:
        table = read_table(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"de-identification UID map {Path(path).name}: cannot be read "
                             f"({type(exc).__name__})", reason="unreadable-uid-map") from exc
    missing = [c for c in UID_MAP_COLUMNS if c not in table.columns]
    if missing:
        raise InputFileError(f"de-identification UID map {Path(path).name}: no column(s) "
                             f"{', '.join(missing)}", reason="unreadable-uid-map")
    uids = {s: d for s, d in zip(table["source_series_uid"], table["series_uid"], strict=True)
            if s and d}
    files: dict[str, list[str]] = {}
    for key, f in zip(table["series_key"], table["source_file"], strict=True):
        files.setdefault(key, []).append(f)
    return UidMap(uids, {k: tuple(v) for k, v in files.items()})


__all__ = ["UID_MAP_COLUMNS", "UidMap", "UidMapEntry", "read_uid_map", "write_uid_map"]
