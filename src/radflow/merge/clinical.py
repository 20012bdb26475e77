"""The clinical table through its data dictionary: the columns and values that may reach
``merge/dataset.*`` (safety first).

:func:`prepare_clinical` keeps the ID column (the join key, replaced by the pseudonymous
``case_id`` in the join) and the columns the dictionary declares role ``outcome`` or
``covariate``, with their values checked against the declared type; nothing else:

* without a dictionary, no clinical column but the join key is written;
* a column the dictionary does not declare is dropped (``unknown_columns: drop``, the default)
  or stops the run (``error``); identifier and drop columns are never written. Every column
  left out is listed in the join report (kinds ``undeclared-column``, ``identifier-column``,
  ``dropped-column``) and in the log;
* a value that breaks its declaration becomes empty and is listed in
  ``merge/clinical_violations.tsv`` by column, row (as a spreadsheet numbers it, the header
  being row 1) and ``case_id``, with what is wrong (never the text itself: a free-text cell
  may hold anything; numbers are shown);
* a date is written only as whole days from the reference date of the same row
  (``<column>_days_from_<reference>``), never as a date.

Dates and de-identification: with ``deidentify: true`` (and ``deid.dates: shift``) every date
of a patient is moved by the patient's keyed DICOM shift
(:func:`radflow.deidentify.dates.date_shift_days`, the same key and ``case_id``), so that the
clinical dates radflow handles lie on the same timeline as the de-identified DICOM. The day
offsets it writes do not change: a difference of two dates of one patient is the same after
both moved by the same number of days. With or without de-identification, the results hold no
clinical date.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from radflow.errors import ConfigError
from radflow.keys import case_id
from radflow.merge.dictionary import ClinicalDictionary, ColumnSpec, value_text
from radflow.records.clinical import CLINICAL_COLUMNS

logger = logging.getLogger(__name__)

VIOLATION_COLUMNS: tuple[str, ...] = ("column", "row", "case_id", "problem", "rule")
#: Join-report kinds of the columns left out of the results.
COLUMN_KINDS: tuple[str, ...] = ("undeclared-column", "identifier-column", "dropped-column")
_ISO_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ].*)?$")
#: A timepoint label, as the cohort sheet's ``timepoint`` (config/schema/sheet.schema.yaml): a
#: label or a small number, never a date.
_TIMEPOINT = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]{0,31}|[0-9]{1,3})$")


@dataclass(frozen=True)
class PreparedClinical:
    """The clinical table as it may be joined, and what was left out of it.

    Attributes
    ----------
    table
        The ID column, then the written columns under their dataset names, in table order.
    report
        Join-report rows (``kind``, ``case_id`` empty, ``detail``) of every column left out.
    violations
        :data:`VIOLATION_COLUMNS`: one row per value that breaks its declaration.
    columns
        The ``merge/clinical_columns.tsv`` record of the written columns.
    strict
        The dictionary's ``strict``: any violation fails the merge.
    timepoint
        The dictionary's ``timepoint`` column (in ``table`` as text, also with role ``drop``):
        the join is on the subject and this column (:mod:`radflow.merge.timepoints`); ``""``:
        none.
    timepoint_written
        Whether that column stays in the dataset (role ``covariate``).
    """

    table: pd.DataFrame
    report: pd.DataFrame = field(default_factory=lambda: _frame([], ("kind", "case_id",
                                                                     "detail")))
    violations: pd.DataFrame = field(default_factory=lambda: _frame([], VIOLATION_COLUMNS))
    columns: pd.DataFrame = field(default_factory=lambda: _frame([], CLINICAL_COLUMNS))
    strict: bool = False
    timepoint: str = ""
    timepoint_written: bool = False


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


def prepare_clinical(table: pd.DataFrame, id_column: str, dictionary: ClinicalDictionary | None,
                     key: bytes, date_shift_max_days: int = 0) -> PreparedClinical:
    """Select and check the clinical columns the dictionary lets through (module docstring).

    Parameters
    ----------
    table
        The clinical table as :func:`radflow.io.tables.read_clinical` reads it (row ``i`` is
        spreadsheet row ``i + 2``).
    id_column
        ``clinical_id``, the join key.
    dictionary
        The checked dictionary; ``None``: keep the join key only.
    key
        The pseudonymisation key (``case_id`` of each row, the date shift).
    date_shift_max_days
        The de-identification's ``deid.max_date_shift_days`` when it shifts DICOM dates, else 0.

    Raises
    ------
    ConfigError
        The dictionary declares a column the table lacks, or (``unknown_columns: error``) the
        table has a column the dictionary does not declare.
    """
    others = [c for c in table.columns if c != id_column]
    if dictionary is None:
        if others:
            logger.warning("clinical: no clinical_dictionary: %d column(s) of the clinical table "
                           "not written (%s); declare them in a data dictionary (README, "
                           "\"Clinical data dictionary\") to keep them", len(others),
                           ", ".join(others))
        report = [{"kind": "undeclared-column", "case_id": "",
                   "detail": f"{c}: no clinical dictionary (clinical_dictionary); not written"}
                  for c in others]
        return PreparedClinical(table[[id_column]].copy(),
                                _frame(report, ("kind", "case_id", "detail")))
    where = f"clinical dictionary {dictionary.file}"
    missing = [c for c in dictionary.names if c not in table.columns]
    if missing:
        raise ConfigError(f"{where}: declares column(s) the clinical table does not have: "
                          f"{', '.join(missing)} (its columns: "
                          f"{', '.join(map(str, table.columns))})")
    undeclared = [c for c in others if dictionary.column(c) is None]
    if undeclared and dictionary.unknown_columns == "error":
        raise ConfigError(f"{where}: the clinical table has column(s) the dictionary does not "
                          f"declare: {', '.join(undeclared)} (unknown_columns: error)")
    report = [{"kind": "undeclared-column", "case_id": "",
               "detail": f"{c}: not in the clinical dictionary; not written"} for c in undeclared]
    for c in others:
        spec = dictionary.column(c)
        if spec is not None and not spec.written and spec.type != "id":
            kind = "identifier-column" if spec.role == "identifier" else "dropped-column"
            report.append({"kind": kind, "case_id": "",
                           "detail": f"{c}: role {spec.role}; not written"})
    if report:
        logger.info("clinical: %d column(s) not written: %s", len(report),
                    "; ".join(r["detail"] for r in report))

    cids = [case_id(key, v) if v else "" for v in table[id_column]]
    checker = _Checker(table, cids, key, date_shift_max_days)
    out = {id_column: table[id_column]}
    for c in others:
        spec = dictionary.column(c)
        if spec is not None and (spec.written or spec.type == "timepoint"):
            out[spec.output_name] = checker.values(spec, dictionary)
    violations = _frame(sorted(checker.violations, key=lambda v: (v["row"], v["column"])),
                        VIOLATION_COLUMNS)
    if len(violations):
        logger.warning("clinical: %d value(s) break the clinical dictionary and are left empty "
                       "(merge/clinical_violations.tsv)", len(violations))
    timepoint = dictionary.timepoint
    return PreparedClinical(pd.DataFrame(out), _frame(report, ("kind", "case_id", "detail")),
                            violations, _columns_record(dictionary, others), dictionary.strict,
                            timepoint.name if timepoint else "",
                            bool(timepoint and timepoint.written))


def violations_message(violations: pd.DataFrame, shown: int = 5) -> str:
    """``age row 5: non-numeric text (numeric); ...`` for the first ``shown`` violations."""
    parts = [f"{v.column} row {v.row}: {v.problem} ({v.rule})"
             for v in violations.head(shown).itertuples()]
    more = f"; and {len(violations) - shown} more" if len(violations) > shown else ""
    return "; ".join(parts) + more


def _columns_record(dictionary: ClinicalDictionary, order: Sequence[str]) -> pd.DataFrame:
    rows = []
    for name in order:
        spec = dictionary.column(name)
        if spec is None or not spec.written:
            continue
        binary = spec.type in ("binary-outcome", "event-indicator")
        levels = spec.binary_levels if binary else spec.levels
        rows.append({
            "column": spec.output_name, "source": spec.name, "type": spec.type,
            "role": spec.role, "unit": "days" if spec.type == "date" else spec.unit,
            "levels": json.dumps(list(levels)) if levels else "",
            "positive": value_text(spec.positive_level) if binary else "",
            "event": spec.event, "reference": spec.reference_date,
            "description": spec.description})
    return _frame(rows, CLINICAL_COLUMNS)


class _Checker:
    """Converts declared columns cell by cell and collects the violations."""

    def __init__(self, table: pd.DataFrame, cids: list[str], key: bytes,
                 date_shift_max_days: int) -> None:
        self.table = table
        self.cids = cids
        self.key = key
        self.max_shift = date_shift_max_days
        self.violations: list[dict[str, Any]] = []
        self._dates: dict[str, list[dt.date | None]] = {}

    def flag(self, spec: ColumnSpec, i: int, problem: str, rule: str) -> None:
        self.violations.append({"column": spec.name, "row": i + 2, "case_id": self.cids[i],
                                "problem": problem, "rule": rule})

    def values(self, spec: ColumnSpec, dictionary: ClinicalDictionary) -> pd.Series:
        """The dataset column of ``spec`` (violating cells empty)."""
        cells = self.table[spec.name].tolist()
        if spec.type in ("numeric", "time-to-event"):
            return pd.Series([self.number(spec, i, v) for i, v in enumerate(cells)],
                             dtype="float64")
        if spec.type in ("categorical", "ordinal"):
            levels = {value_text(level): level for level in spec.levels}
            values = [self.level(spec, i, v, levels) for i, v in enumerate(cells)]
            numeric = all(isinstance(x, (int, float)) for x in spec.levels)
            return pd.Series(values, dtype="float64" if numeric else "object")
        if spec.type == "timepoint":  # a label, compared as text with the cohort sheet's
            labels = [value_text(v) for v in cells]
            for i, label in enumerate(labels):
                if not label:
                    self.flag(spec, i, "no timepoint (the row cannot be joined)", "timepoint")
                elif not _TIMEPOINT.match(label):
                    self.flag(spec, i, "not a timepoint label (a label or a number of up to 3 "
                                       "digits, as in the cohort sheet; never a date)", "timepoint")
                    labels[i] = ""
            return pd.Series([label or None for label in labels], dtype="object")
        if spec.type in ("binary-outcome", "event-indicator"):
            positive = value_text(spec.positive_level)
            levels = {value_text(level): int(value_text(level) == positive)
                      for level in spec.binary_levels}
            return pd.Series([self.level(spec, i, v, levels) for i, v in enumerate(cells)],
                             dtype="Int64")
        # date: whole days from the reference date of the same row
        reference = dictionary.column(spec.reference_date)
        if reference is None:  # load_dictionary checked the link
            raise ConfigError(f"columns.{spec.name}.reference_date: not a declared column")
        dates, refs = self.dates(spec), self.dates(reference)
        offsets: list[int | None] = []
        for i, (date, ref) in enumerate(zip(dates, refs, strict=True)):
            if date is not None and ref is None:
                self.flag(spec, i, f"no valid reference date in {reference.name}",
                          "reference_date")
            offsets.append((date - ref).days if date is not None and ref is not None else None)
        return pd.Series(offsets, dtype="Int64")

    def number(self, spec: ColumnSpec, i: int, value: Any) -> float | None:
        if _missing(value):
            return None
        if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
            self.flag(spec, i, "a date, not a number", spec.type)
            return None
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            try:
                number = float(text)
            except ValueError:
                self.flag(spec, i, "non-numeric text", spec.type)
                return None
        elif isinstance(value, bool):
            self.flag(spec, i, "a boolean", spec.type)
            return None
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):  # a time of day, say
                self.flag(spec, i, f"a {type(value).__name__}, not a number", spec.type)
                return None
        if not math.isfinite(number):
            self.flag(spec, i, "not a finite number", spec.type)
            return None
        if spec.type == "time-to-event" and number < 0:
            self.flag(spec, i, f"{number:g} < 0", "time-to-event >= 0")
            return None
        if spec.min is not None and number < spec.min:
            self.flag(spec, i, f"{number:g} < {spec.min:g}", "min")
            return None
        if spec.max is not None and number > spec.max:
            self.flag(spec, i, f"{number:g} > {spec.max:g}", "max")
            return None
        return number

    def level(self, spec: ColumnSpec, i: int, value: Any, levels: dict[str, Any]) -> Any:
        text = value_text(value)
        if not text:
            return None
        if text not in levels:
            self.flag(spec, i, f"not one of the {len(levels)} levels", "levels")
            return None
        return levels[text]

    def dates(self, spec: ColumnSpec) -> list[dt.date | None]:
        """The column's dates (each checked once), moved by the patient's DICOM date shift when
        de-identification shifts dates (module docstring)."""
        if spec.name not in self._dates:
            cells = self.table[spec.name].tolist()
            parsed = [self.date(spec, i, v) for i, v in enumerate(cells)]
            self._dates[spec.name] = shift_dates(parsed, self.cids, self.key, self.max_shift)
        return self._dates[spec.name]

    def date(self, spec: ColumnSpec, i: int, value: Any) -> dt.date | None:
        if _missing(value):
            return None
        if isinstance(value, dt.datetime):  # also a pandas Timestamp
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            try:
                if spec.format:
                    return dt.datetime.strptime(text, spec.format).date()
                m = _ISO_DATE.match(text)
                if m:
                    return dt.date.fromisoformat(m[1])
            except ValueError:
                pass
            wanted = f"format {spec.format}" if spec.format else "YYYY-MM-DD"
            self.flag(spec, i, f"text that is not a date ({wanted})", "date")
            return None
        self.flag(spec, i, "a number, not a date (a date cell or YYYY-MM-DD text)", "date")
        return None


def _missing(value: Any) -> bool:
    """An empty cell: None, NaN, NaT (text is never missing here; blank text is checked by the
    caller)."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def shift_dates(dates: Sequence[dt.date | None], cids: Sequence[str], key: bytes,
                max_days: int) -> list[dt.date | None]:
    """Each date moved by its patient's de-identification shift
    (:func:`radflow.deidentify.dates.date_shift_days`); unchanged when ``max_days`` is 0."""
    if not max_days:
        return list(dates)
    from radflow.deidentify.dates import date_shift_days  # deferred: it loads pydicom

    out: list[dt.date | None] = []
    for date, cid in zip(dates, cids, strict=True):
        days = date_shift_days(key, cid, max_days) if cid else 0
        try:
            out.append(None if date is None else date + dt.timedelta(days=days))
        except OverflowError:
            out.append(None)
    return out


__all__ = ["COLUMN_KINDS", "VIOLATION_COLUMNS", "PreparedClinical", "prepare_clinical",
           "shift_dates", "violations_message"]
