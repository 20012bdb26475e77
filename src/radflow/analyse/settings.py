"""The analysis settings and the outcome spec, and reading outcome values from the dataset.

Built once with :func:`radflow.settings.from_mapping` (``from_mapping(AnalyseSettings, mapping,
section="analyse")``); every outcome of ``outcomes`` becomes an :class:`Outcome` the same way,
so a typo in any key is a :class:`~radflow.errors.ConfigError`. The outcome spec is this
mapping, or the outcomes the clinical data dictionary declares
(:func:`outcomes_from_dictionary`; README, "Analysis").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from radflow.errors import AnalysisError, ConfigError
from radflow.settings import check_choices, from_mapping

OutcomeType = Literal["binary", "time-to-event", "continuous"]
#: ``analyse.lesions``: how subjects with several lesions (rows) enter the export and the model.
LesionChoice = Literal["largest", "per-lesion"]
#: ``analyse.export_features``: which analysed features the model-ready table keeps.
ExportFeatures = Literal["all", "representatives"]
Penalty = Literal["l2", "l1"]

#: Volume features tried in this order when ``analyse.volume_feature`` is "" (PyRadiomics'
#: shape class, then radflow's ``size`` family).
VOLUME_FEATURES: tuple[str, ...] = ("original_shape_VoxelVolume", "original_size_VoxelVolume",
                                    "original_shape_MeshVolume", "original_size_MeshVolume")


@dataclass(frozen=True)
class Outcome:
    """One declared outcome (an entry of ``analyse.outcomes``).

    Attributes
    ----------
    name
        The outcome's name in the result tables and the export's outcome columns.
    type
        ``binary`` (``column``; ``positive`` names the positive value), ``time-to-event``
        (``time`` and ``event`` columns; ``event`` is 1/0 or True/False) or ``continuous``
        (``column``).
    column, time, event
        Dataset (clinical) columns.
    positive
        Binary outcomes: the value that counts as positive, compared as text (``"1"`` also
        matches 1 and 1.0). ``""``: of two numeric or True/False values, the larger.
    """

    name: str
    type: OutcomeType
    column: str = ""
    time: str = ""
    event: str = ""
    positive: str = ""

    def __post_init__(self) -> None:
        check_choices(self, f"analyse.outcomes.{self.name}")
        if not self.name:
            raise ConfigError("analyse.outcomes: every outcome needs a name")
        if self.type == "time-to-event":
            if not self.time or not self.event or self.column:
                raise ConfigError(f"analyse.outcomes.{self.name}: a time-to-event outcome "
                                  "takes 'time' and 'event' columns (and no 'column')")
        elif not self.column or self.time or self.event:
            raise ConfigError(f"analyse.outcomes.{self.name}: a {self.type} outcome takes one "
                              "'column' (and no 'time' / 'event')")
        if self.positive and self.type != "binary":
            raise ConfigError(f"analyse.outcomes.{self.name}: 'positive' is for binary outcomes")

    @property
    def columns(self) -> tuple[str, ...]:
        """The dataset columns the outcome reads."""
        return (self.time, self.event) if self.type == "time-to-event" else (self.column,)

    @property
    def export_columns(self) -> tuple[str, ...]:
        """Its export columns: ``<name>``, or ``<name>_time`` and ``<name>_event``."""
        if self.type == "time-to-event":
            return (f"{self.name}_time", f"{self.name}_event")
        return (self.name,)


@dataclass(frozen=True)
class AnalyseSettings:
    """The analysis (config section ``analyse``; README, "Analysis").

    Attributes
    ----------
    outcomes
        The declared outcomes (:class:`Outcome`, built from mappings).
    rois
        ROI names (the dataset's ``roi``) analysed; empty: every ROI.
    lesions
        ``largest`` (default): one row per subject, its largest lesion by ``volume_feature``.
        ``per-lesion``: the export keeps every lesion row and the split and the baseline's folds
        group rows by subject. The univariate statistics and the redundancy clusters always use
        one row per subject (the largest lesion): their p-values assume independent rows.
    volume_feature
        The feature that says which lesion is largest; ``""``: the first of
        :data:`VOLUME_FEATURES` the dataset has.
    reliable_only
        With a reliable-features table: unreliable features leave the analysis (noted in the
        cluster table). Without one, every feature is analysed.
    redundancy_threshold
        Features whose clusters' average |Spearman rho| reaches this value form one cluster.
    export_features
        ``all`` analysed features, or one ``representatives`` per redundancy cluster.
    test_fraction
        Share of subjects in the test split.
    stratify_by
        The outcome whose classes (binary) or events (time-to-event) stratify the split; ``""``:
        the first binary or time-to-event outcome; a continuous outcome: no stratification.
    seed
        Seed of the split, the bootstrap and the baseline's folds.
    bootstrap_resamples
        Stratified bootstrap resamples of the AUC's 95 % interval.
    baseline
        Fit the cross-validated baseline models (training split only).
    baseline_folds
        Folds of the baseline's cross-validation (outer; the logistic model's inner CV too).
    baseline_penalty
        ``l2`` (ridge) or ``l1`` (lasso) for both baseline models (their strengths are chosen
        by inner cross-validation).
    baseline_cox_features
        The Cox baseline's features: this many, the strongest by |Harrell's C - 0.5| on each
        fold's training rows (the logistic baseline takes every representative).
    """

    outcomes: tuple[Any, ...] = ()
    rois: tuple[str, ...] = ()
    lesions: LesionChoice = "largest"
    volume_feature: str = ""
    reliable_only: bool = True
    redundancy_threshold: float = 0.9
    export_features: ExportFeatures = "all"
    test_fraction: float = 0.3
    stratify_by: str = ""
    seed: int = 17
    bootstrap_resamples: int = 2000
    baseline: bool = True
    baseline_folds: int = 5
    baseline_penalty: Penalty = "l2"
    baseline_cox_features: int = 10

    def __post_init__(self) -> None:
        check_choices(self, "analyse")
        outcomes = tuple(o if isinstance(o, Outcome) else
                         from_mapping(Outcome, o, section=f"analyse.outcomes[{i}]")
                         for i, o in enumerate(self.outcomes))
        object.__setattr__(self, "outcomes", outcomes)
        names = [o.name for o in outcomes]
        if len(set(names)) != len(names):
            raise ConfigError(f"analyse.outcomes: duplicate names in {names}")
        if self.stratify_by and self.stratify_by not in names:
            raise ConfigError(f"analyse.stratify_by {self.stratify_by!r} is not an outcome "
                              f"({', '.join(names) or 'none declared'})")
        if not 0 < self.redundancy_threshold <= 1:
            raise ConfigError("analyse.redundancy_threshold must be in (0, 1], got "
                              f"{self.redundancy_threshold!r}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"analyse.test_fraction must be in (0, 1), got "
                              f"{self.test_fraction!r}")
        if self.baseline_folds < 2 or self.bootstrap_resamples < 100 \
                or self.baseline_cox_features < 1:
            raise ConfigError("analyse: baseline_folds must be >= 2, bootstrap_resamples "
                              ">= 100 and baseline_cox_features >= 1")


def _text(value: object) -> str:
    """A cell as text; whole numbers without a decimal part (1.0 -> "1"), True -> "True"."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def binary_values(table: pd.DataFrame, outcome: Outcome) -> pd.Series:
    """The binary outcome as a nullable 0/1 integer series (``<NA>`` where missing).

    Raises
    ------
    AnalysisError
        The column has more than two values, or ``positive`` is not one of them, or it has
        two text values and no ``positive``.
    """
    raw = table[outcome.column]
    present = raw.notna()
    values = sorted({_text(v) for v in raw[present]})
    where = f"analyse.outcomes.{outcome.name} (column {outcome.column!r})"
    if len(values) > 2:
        raise AnalysisError(f"{where}: a binary outcome has at most two values, found "
                            f"{len(values)} ({', '.join(values[:5])}...)")
    if outcome.positive:
        if outcome.positive not in values:
            raise AnalysisError(f"{where}: positive value {outcome.positive!r} not among "
                                f"{values}")
        positive = outcome.positive
    elif values and set(values) <= {"True", "False"}:
        positive = "True"
    else:
        numbers = pd.to_numeric(pd.Series(values), errors="coerce")
        if numbers.isna().any():
            raise AnalysisError(f"{where}: text values {values}: set 'positive'")
        positive = values[int(numbers.to_numpy().argmax())]
    coded = pd.Series(pd.NA, index=table.index, dtype="Int64")
    coded[present] = [int(_text(v) == positive) for v in raw[present]]
    return coded


def event_values(table: pd.DataFrame, outcome: Outcome) -> tuple[pd.Series, pd.Series]:
    """Times (float, NaN where missing) and events (nullable 0/1) of a time-to-event outcome.

    Raises
    ------
    AnalysisError
        A time that is not a number or is negative, an event other than 0/1/True/False.
    """
    where = f"analyse.outcomes.{outcome.name}"
    times = pd.to_numeric(table[outcome.time], errors="coerce").astype("float64")
    bad_time = table[outcome.time].notna() & times.isna()
    if bad_time.any() or (times < 0).any():
        raise AnalysisError(f"{where}: column {outcome.time!r} must hold times >= 0")
    raw = table[outcome.event]
    codes = {"0": 0, "1": 1, "False": 0, "True": 1}
    texts = raw[raw.notna()].map(_text)
    unknown = sorted(set(texts) - set(codes))
    if unknown:
        raise AnalysisError(f"{where}: column {outcome.event!r} must hold 0/1 or True/False, "
                            f"found {unknown[:5]}")
    events = pd.Series(pd.NA, index=table.index, dtype="Int64")
    events[raw.notna()] = [codes[t] for t in texts]
    return times, events


def continuous_values(table: pd.DataFrame, outcome: Outcome) -> pd.Series:
    """A continuous outcome as float (NaN where missing).

    Raises
    ------
    AnalysisError
        A value that is not a number.
    """
    values = pd.to_numeric(table[outcome.column], errors="coerce").astype("float64")
    if (table[outcome.column].notna() & values.isna()).any():
        raise AnalysisError(f"analyse.outcomes.{outcome.name}: column {outcome.column!r} "
                            "must hold numbers")
    return values


def outcome_frame(table: pd.DataFrame, outcomes: tuple[Outcome, ...]) -> pd.DataFrame:
    """The coded outcomes of ``table``, columns :attr:`Outcome.export_columns` in spec order.

    Raises
    ------
    ConfigError
        An outcome names a column the dataset does not have.
    """
    columns: dict[str, pd.Series] = {}
    for outcome in outcomes:
        missing = [c for c in outcome.columns if c not in table.columns]
        if missing:
            raise ConfigError(f"analyse.outcomes.{outcome.name}: no column(s) {missing} in the "
                              "dataset (clinical columns come from the clinical table)")
        if outcome.type == "binary":
            columns[outcome.name] = binary_values(table, outcome)
        elif outcome.type == "continuous":
            columns[outcome.name] = continuous_values(table, outcome)
        else:
            time_col, event_col = outcome.export_columns
            columns[time_col], columns[event_col] = event_values(table, outcome)
    return pd.DataFrame(columns, index=table.index)


def outcomes_from_dictionary(columns: pd.DataFrame) -> tuple[Outcome, ...]:
    """The outcomes declared in ``merge/clinical_columns.tsv`` (role ``outcome``).

    ``binary-outcome`` -> binary (the merge stage writes its positive level as 1);
    ``time-to-event`` -> time-to-event with its ``event`` column, named after the time column;
    ``numeric`` -> continuous. Other types (categorical, ordinal, dates, event indicators,
    which belong to their time column) are not outcomes of the analysis.

    Parameters
    ----------
    columns : pandas.DataFrame
        :func:`radflow.records.clinical.read_clinical_columns`' table (cells as text).
    """
    outcomes = []
    for row in columns[columns["role"] == "outcome"].itertuples(index=False):
        if row.type == "binary-outcome":
            outcomes.append(Outcome(row.column, "binary", column=row.column, positive="1"))
        elif row.type == "time-to-event":
            outcomes.append(Outcome(row.column, "time-to-event", time=row.column,
                                    event=row.event))
        elif row.type == "numeric":
            outcomes.append(Outcome(row.column, "continuous", column=row.column))
    return tuple(outcomes)


def settings_from(mapping: Mapping[str, Any] | None) -> AnalyseSettings:
    """:class:`AnalyseSettings` from the config's ``analyse`` section."""
    return from_mapping(AnalyseSettings, mapping, section="analyse")


__all__ = ["VOLUME_FEATURES", "AnalyseSettings", "Outcome", "binary_values",
           "continuous_values", "event_values", "outcome_frame", "outcomes_from_dictionary",
           "settings_from"]
