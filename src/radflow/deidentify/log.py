"""The de-identification log and the private pseudonym table.

``actions.tsv`` (public, under ``results/``): one row per attribute tag and action with the
number of elements it was applied to, over the whole cohort — never a value. Columns ``tag``
(``(gggg,eeee)``; private ``(gggg,xxee)``, private creators ``(gggg,00xx)``; table patterns
such as ``(60xx,3000)``), ``keyword``, ``action`` (``X`` removed, ``Z`` emptied, ``D`` dummy or
pseudonym, ``K`` kept by the table or an option, ``C`` cleaned: date shifted, descriptor
cleaned, safe private attribute kept, ``U`` UID replaced, ``K-unlisted`` kept because the table
does not list it), ``count``.

The pseudonym table (source patient ID <-> ``case_id``) re-identifies patients: it is written
only below the configured private folder, with mode 0600, never under ``results/``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from radflow.deidentify.dataset import keyword_of
from radflow.deidentify.tree import SeriesResult
from radflow.dicom.headers import get_str, read_header
from radflow.errors import InputFileError
from radflow.io.atomic import atomic_path, write_tsv
from radflow.keys import case_id as make_case_id

ACTION_COLUMNS = ["tag", "keyword", "action", "count"]
SERIES_COLUMNS = ["case_id", "series_key", "status", "n_files"]
PSEUDONYM_COLUMNS = ["source_patient_id", "case_id"]


def merge_counts(results: Iterable[SeriesResult]) -> Counter[tuple[str, str]]:
    """Sum the action counts of several series."""
    total: Counter[tuple[str, str]] = Counter()
    for result in results:
        total.update(result.counts)
    return total


def actions_table(counts: Mapping[tuple[str, str], int]) -> pd.DataFrame:
    """``actions.tsv`` as a table, sorted by tag and action."""
    rows = [{"tag": t, "keyword": keyword_of(t), "action": a, "count": int(n)}
            for (t, a), n in sorted(counts.items())]
    return pd.DataFrame(rows, columns=ACTION_COLUMNS)


def write_actions_log(dest: str | os.PathLike[str],
                      counts: Mapping[tuple[str, str], int]) -> None:
    """Write ``actions.tsv`` atomically."""
    write_tsv(dest, actions_table(counts))


def series_table(results: Iterable[SeriesResult]) -> pd.DataFrame:
    """One row per series: ``case_id``, ``series_key``, ``status``, ``n_files``."""
    rows = [{"case_id": r.case_id, "series_key": r.series_key, "status": r.status,
             "n_files": r.n_files} for r in results]
    return pd.DataFrame(rows, columns=SERIES_COLUMNS).sort_values(
        ["case_id", "series_key"], kind="stable").reset_index(drop=True)


def collect_pseudonyms(file_lists: Iterable[Sequence[str | os.PathLike[str]]],
                       key: bytes) -> pd.DataFrame:
    """Source patient ID -> ``case_id`` from the first readable file of each series.

    The result re-identifies patients: pass it only to :func:`write_pseudonym_table`.
    """
    found: dict[str, str] = {}
    for files in file_lists:
        for f in files:
            try:
                ds, _ = read_header(f)
            except InputFileError:
                continue
            pid = get_str(ds, "PatientID")
            if pid:
                found[pid] = make_case_id(key, pid)
            break
    rows = sorted(found.items(), key=lambda kv: kv[1])
    return pd.DataFrame(rows, columns=PSEUDONYM_COLUMNS)


def write_pseudonym_table(dest: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write the pseudonym table atomically with mode 0600 (owner only).

    ``dest`` must be in the private folder, outside ``results/``; the caller decides where.
    """
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        os.chmod(tmp, 0o600)
        table.to_csv(tmp, sep="\t", index=False, lineterminator="\n")
    os.chmod(dest, 0o600)


__all__ = ["ACTION_COLUMNS", "actions_table", "collect_pseudonyms", "merge_counts",
           "series_table", "write_actions_log", "write_pseudonym_table"]
