"""The clinical data dictionary: which clinical columns may reach the results, as what.

A dictionary (config key ``clinical_dictionary``, a YAML file in the format of
``config/schema/clinical_dictionary.schema.yaml``; README, "Clinical data dictionary") declares
the ``type`` and ``role`` of each column of the clinical table::

    unknown_columns: drop          # or error
    columns:
      patient_id:      {type: id, role: identifier}
      age:             {type: numeric, role: covariate, unit: years, min: 0, max: 120}
      sex:             {type: categorical, role: covariate, levels: [F, M]}
      ct_date:         {type: date, role: drop}
      diagnosis_date:  {type: date, role: covariate, reference_date: ct_date}
      followup_months: {type: time-to-event, role: outcome, unit: months, event: event}
      event:           {type: event-indicator, role: outcome}
      response:        {type: binary-outcome, role: outcome, levels: [CR, PD], positive: CR}

It is checked twice when the Snakefile is read (so a broken dictionary stops the run before any
job): by the schema (keys, types, roles, the keys each type needs) and here (the ``id`` column is
``clinical_id``; ``reference_date`` and ``event`` name declared columns of the right type, never
an identifier; every written event indicator belongs to a time-to-event column; ``positive`` is
one of ``levels``; output names are unique; one ``timepoint`` column at most: the table then
has a row per subject and timepoint, :mod:`radflow.merge.timepoints`). Every error is a
:class:`~radflow.errors.ConfigError` naming the dictionary file and the key
(``columns.age.max``).

The analysis reads the same declarations (:meth:`ClinicalDictionary.outcomes`,
:meth:`~ClinicalDictionary.covariates`, :meth:`~ClinicalDictionary.survival_pairs`), or their
results-side record ``merge/clinical_columns.tsv`` (:mod:`radflow.records.clinical`).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

from radflow.errors import ConfigError
from radflow.protocol.profile import repository_root
from radflow.settings import check_choices, from_mapping

DICTIONARY_SCHEMA = "clinical_dictionary.schema.yaml"

ColumnType = Literal["id", "categorical", "ordinal", "numeric", "date", "time-to-event",
                     "event-indicator", "binary-outcome", "timepoint"]
ColumnRole = Literal["identifier", "outcome", "covariate", "drop"]
UnknownColumns = Literal["drop", "error"]
#: The roles whose columns are written to ``merge/dataset.*``.
WRITTEN_ROLES: tuple[str, ...] = ("outcome", "covariate")
#: ``levels`` and ``positive`` of a binary column that declares none.
DEFAULT_BINARY_LEVELS: tuple[Any, ...] = (0, 1)
DEFAULT_POSITIVE = 1


def value_text(value: Any) -> str:
    """A table cell or a declared level as text, for comparing the two: integral numbers
    without a decimal point (Excel and pandas give ``1.0`` for 1), text stripped, ``""`` for
    an empty cell, ``true`` / ``false`` for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.strip()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value).strip()
    if math.isnan(number):
        return ""
    return str(int(number)) if number.is_integer() else repr(number)


@dataclass(frozen=True)
class ColumnSpec:
    """The declaration of one clinical column (the keys of the schema's ``column``).

    Attributes
    ----------
    name
        The column's name in the clinical table's header.
    type, role
        See ``config/schema/clinical_dictionary.schema.yaml``.
    levels
        Allowed values (categorical, ordinal in order; binary-outcome and event-indicator:
        two, default ``(0, 1)``).
    positive
        The level written as 1 (binary-outcome, event-indicator; default 1).
    unit, min, max
        Unit and valid range of a numeric or time-to-event column.
    reference_date, format
        A date column's reference date column and the ``strftime`` format of text dates
        (``""``: ISO 8601).
    event
        A time-to-event column's event-indicator column.
    """

    name: str
    type: ColumnType
    role: ColumnRole
    description: str = ""
    levels: tuple[Any, ...] = ()
    positive: Any = None
    unit: str = ""
    min: float | None = None
    max: float | None = None
    reference_date: str = ""
    format: str = ""
    event: str = ""

    def __post_init__(self) -> None:
        check_choices(self, f"columns.{self.name}")

    @property
    def written(self) -> bool:
        """Whether the column reaches ``merge/dataset.*`` (role outcome or covariate)."""
        return self.role in WRITTEN_ROLES

    @property
    def output_name(self) -> str:
        """Its name in the dataset: ``<name>_days_from_<reference_date>`` for a date."""
        if self.type == "date":
            return f"{self.name}_days_from_{self.reference_date}"
        return self.name

    @property
    def binary_levels(self) -> tuple[Any, ...]:
        """The two levels of a binary-outcome or event-indicator column."""
        return self.levels or DEFAULT_BINARY_LEVELS

    @property
    def positive_level(self) -> Any:
        """The level written as 1."""
        return DEFAULT_POSITIVE if self.positive is None else self.positive


@dataclass(frozen=True)
class ClinicalDictionary:
    """A checked clinical data dictionary (:func:`load_dictionary`).

    Attributes
    ----------
    columns
        The declarations, in the dictionary's order.
    unknown_columns
        ``drop``: a table column the dictionary does not declare is left out and listed in the
        join report; ``error``: it stops the run.
    strict
        Any value that breaks its declaration fails the merge.
    file
        The dictionary's file name (for messages).
    """

    columns: tuple[ColumnSpec, ...]
    unknown_columns: UnknownColumns = "drop"
    strict: bool = False
    description: str = ""
    file: str = ""

    def __post_init__(self) -> None:
        check_choices(self, "clinical dictionary")

    def column(self, name: str) -> ColumnSpec | None:
        """The declaration of ``name`` (``None``: not declared)."""
        return next((c for c in self.columns if c.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        """The declared column names."""
        return tuple(c.name for c in self.columns)

    @property
    def written(self) -> tuple[ColumnSpec, ...]:
        """The columns that reach the dataset (role outcome or covariate)."""
        return tuple(c for c in self.columns if c.written)

    def outcomes(self) -> tuple[ColumnSpec, ...]:
        """The outcome columns (their ``type`` says how to analyse them)."""
        return tuple(c for c in self.columns if c.role == "outcome")

    def covariates(self) -> tuple[ColumnSpec, ...]:
        """The covariate columns."""
        return tuple(c for c in self.columns if c.role == "covariate")

    @property
    def timepoint(self) -> ColumnSpec | None:
        """The ``timepoint`` column: the table has one row per subject and timepoint, joined on
        (``case_id``, the pair's cohort-sheet timepoint); ``None``: one row per subject."""
        return next((c for c in self.columns if c.type == "timepoint"), None)

    def survival_pairs(self) -> tuple[tuple[str, str], ...]:
        """``(time, event)`` dataset column names of every written time-to-event outcome."""
        return tuple((c.output_name, c.event) for c in self.columns
                     if c.type == "time-to-event" and c.written)


def load_dictionary(path: str | Path, clinical_id: str) -> ClinicalDictionary:
    """Read and check the dictionary at ``path`` for a table joined on ``clinical_id``.

    Raises
    ------
    ConfigError
        The file cannot be read as YAML, breaks ``config/schema/clinical_dictionary.schema.yaml``
        or is inconsistent (module docstring); the message names the file and the key.
    """
    import jsonschema
    import yaml

    path = Path(path)
    where = f"clinical dictionary {path.name}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(f"{where}: cannot be read as YAML ({type(exc).__name__}: {first})"
                          ) from exc
    schema_file = repository_root() / "config" / "schema" / DICTIONARY_SCHEMA
    schema = yaml.safe_load(schema_file.read_text(encoding="utf-8"))
    # the deepest error; an unknown key or a wrong type first (a misspelt key also makes a
    # required one missing; a list in place of a mapping breaks every rule about keys)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data),
                    key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        first = max(errors, key=lambda e: (e.validator in ("additionalProperties", "type"),
                                           len(e.absolute_path)))
        raise ConfigError(f"{where}: {_schema_message(first, data)} "
                          f"(config/schema/{DICTIONARY_SCHEMA})")
    columns = tuple(from_mapping(ColumnSpec, {"name": str(name), **spec},
                                 section=f"{where}: columns.{name}")
                    for name, spec in data["columns"].items())
    dictionary = from_mapping(ClinicalDictionary, {**data, "columns": columns, "file": path.name},
                              section=where)
    _check(dictionary, clinical_id, where)
    return dictionary


def checked_dictionary(dictionary: str, clinical: str, clinical_id: str) -> str:
    """The dictionary file (resolved path), read and checked so that a broken dictionary stops
    the run before any job; ``""`` when none is configured. For the Snakefile.

    Raises
    ------
    ConfigError
        The dictionary is broken, or given without a clinical table.
    """
    if not dictionary:
        return ""
    if not clinical:
        raise ConfigError("clinical_dictionary is set but clinical is not: the dictionary "
                          "describes the clinical table")
    load_dictionary(dictionary, clinical_id)
    return dictionary


def joins_on_timepoint(dictionary: str, clinical_id: str) -> bool:
    """Whether the dictionary file (``""``: none) declares a ``timepoint`` column: the merge
    then needs the crawl's pair plan and the cohort sheet. For the Snakefile."""
    return bool(dictionary) and load_dictionary(dictionary, clinical_id).timepoint is not None


def _check(d: ClinicalDictionary, clinical_id: str, where: str) -> None:
    """The checks the schema cannot express (module docstring)."""
    def fail(key: str, message: str) -> NoReturn:
        raise ConfigError(f"{where}: columns.{key}: {message}")

    ids = [c.name for c in d.columns if c.type == "id"]
    for name in ids:
        if name != clinical_id:
            fail(f"{name}.type", f"type id is the join key, and the join key is clinical_id "
                                 f"{clinical_id!r}; set clinical_id: {name} or declare "
                                 f"{name!r} role identifier with another type")
    declared_id = d.column(clinical_id)
    if declared_id is not None and declared_id.type != "id":
        fail(f"{clinical_id}.type", f"{clinical_id!r} is clinical_id (the join key, replaced by "
                                    "the pseudonymous case_id): declare it {type: id, "
                                    "role: identifier}")
    for c in d.columns:
        if c.type == "date" and c.reference_date:
            _check_link(d, c, "reference_date", "date", fail)
        if c.type == "time-to-event":
            ev = _check_link(d, c, "event", "event-indicator", fail)
            if c.written and not ev.written:
                fail(f"{c.name}.event", f"the time-to-event column is written but its event "
                                        f"{ev.name!r} is role {ev.role}: declare it role outcome")
        if c.type in ("binary-outcome", "event-indicator"):
            texts = [value_text(v) for v in c.binary_levels]
            if value_text(c.positive_level) not in texts:
                fail(f"{c.name}.positive", f"{c.positive_level!r} is not one of the levels "
                                           f"{list(c.binary_levels)}")
        if c.min is not None and c.max is not None and c.min > c.max:
            fail(f"{c.name}.min", f"min {c.min:g} is above max {c.max:g}")
        if c.type == "date" and c.format and not re.search(r"%[dj]", c.format):
            fail(f"{c.name}.format", f"{c.format!r} has no day (%d or %j): a date needs one")
    timepoints = [c.name for c in d.columns if c.type == "timepoint"]
    if len(timepoints) > 1:
        fail(f"{timepoints[1]}.type", f"one timepoint column at most ({', '.join(timepoints)} "
                                      "are declared type timepoint)")
    events = {c.event for c in d.columns if c.type == "time-to-event" and c.written}
    for c in d.columns:
        if c.type == "event-indicator" and c.written and c.name not in events:
            fail(f"{c.name}.type", "a written event indicator must be the event of a written "
                                   "time-to-event column (its event key)")
    out = [c.output_name for c in d.written]
    clashes = sorted({n for n in out if out.count(n) > 1}
                     | {c.output_name for c in d.written
                        if c.type == "date" and c.output_name in d.names})
    if clashes:
        raise ConfigError(f"{where}: two columns would be written as {clashes[0]!r}")
    if "case_id" in out:
        fail("case_id.role", "case_id is the pseudonym radflow writes; declare the table's "
                             "case_id column role drop")


def _check_link(d: ClinicalDictionary, c: ColumnSpec, key: str, wanted: str,
                fail: Callable[[str, str], NoReturn]) -> ColumnSpec:
    """The column ``c.<key>`` names: declared, of type ``wanted``, not an identifier."""
    name = getattr(c, key)
    target = d.column(name)
    if target is None:
        near = difflib.get_close_matches(name, d.names, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        fail(f"{c.name}.{key}", f"{name!r} is not a declared column{hint}")
    if target.name == c.name:
        fail(f"{c.name}.{key}", "a column cannot be its own " + key)
    if target.type != wanted:
        fail(f"{c.name}.{key}", f"{name!r} is type {target.type}, not {wanted}")
    if target.role == "identifier":
        fail(f"{c.name}.{key}", f"{name!r} is role identifier: an identifier never reaches the "
                                "results, not even through another column")
    return target


def _key(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _schema_message(error: Any, data: Any) -> str:
    """One line naming the key and what is wrong with it."""
    while error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    key = _key(error.absolute_path)
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        owner = _owner(error.instance)
        return (f"{key + '.' if error.absolute_path else ''}{missing[0] if missing else '?'}: "
                f"required{owner}")
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in known]
        name = str(unknown[0]) if unknown else "?"
        near = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else f" (keys: {', '.join(known)})"
        return f"{key}: unknown key {name!r}{hint}"
    if error.validator == "not" and isinstance(error.validator_value, dict):
        extra = error.validator_value.get("required", ["?"])[0]
        return f"{key}.{extra}: not a key of a column of type {_owner_type(error.instance)}"
    if error.validator in ("enum", "const"):
        allowed = [str(v) for v in (error.validator_value if error.validator == "enum"
                                    else [error.validator_value])]
        near = difflib.get_close_matches(str(error.instance), allowed, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else f" (one of {', '.join(allowed)})"
        parent = _parent(data, error)
        if key.endswith(".role") and isinstance(parent, dict):
            parent = {"type": parent.get("type", "?")}
        owner = "" if key.endswith(".type") else _owner(parent)
        return f"{key}: {error.instance!r} not allowed here{owner}{hint}"
    if error.validator == "type" and isinstance(error.instance, bool):
        return (f"{key}: {error.instance!r} is a boolean: YAML reads yes, no, true and false as "
                "booleans; quote the value ('yes')")
    return f"{key}: {error.message}"


def _parent(data: Any, error: Any) -> Any:
    node = data
    for part in list(error.absolute_path)[:-1]:
        node = node[part]
    return node


def _owner_type(instance: Any) -> str:
    return str(instance.get("type", "?")) if isinstance(instance, dict) else "?"


def _owner(instance: Any) -> str:
    if not isinstance(instance, dict) or "type" not in instance:
        return ""
    role = f" (role {instance['role']})" if "role" in instance else ""
    return f" for a column of type {instance['type']}{role}"


__all__ = ["WRITTEN_ROLES", "ClinicalDictionary", "ColumnSpec", "checked_dictionary",
           "joins_on_timepoint", "load_dictionary", "value_text"]
