"""Stage ``analyse``: redundancy, univariate associations, a model-ready export and a baseline.

Reads the merge stage's ``dataset.parquet`` (and the header of ``features_wide.csv``, which
says which columns are features), optionally the reliability stage's
``reliable_features.tsv`` and its ``features.parquet`` (the negative controls); writes into
``<results>/analysis/`` (README, "Analysis"):

``redundancy_clusters.tsv``
    Every feature: its cluster, whether it represents it, its mean |rho| to the cluster, or why
    it was left out (:mod:`.redundancy`).
``associations.tsv``
    Univariate statistics with every declared outcome, BH-FDR ``q`` (:mod:`.associations`),
    and whether a negative control reproduces each (:mod:`.controls`).
``control_associations.tsv``
    The same statistics of the reliability stage's negative controls (empty without them).
``model_ready.parquet`` / ``model_ready.csv``, ``standardisation.tsv``
    The export with its seeded, subject-grouped split and the training rows' scaling
    (:mod:`.export`).
``baseline.tsv``
    Cross-validated penalised logistic / Cox baselines on the training rows (:mod:`.baseline`).

Everything is seeded and sorted: two runs on the same inputs write identical bytes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from radflow.analyse.associations import association_table
from radflow.analyse.baseline import BASELINE_COLUMNS, baseline_table
from radflow.analyse.controls import (
    CONTROL_COLUMNS,
    CONTROL_Q,
    control_association_table,
    flag_associations,
    read_control_features,
)
from radflow.analyse.export import model_ready
from radflow.analyse.redundancy import cluster_table
from radflow.analyse.rows import (
    ID_COLUMNS,
    feature_columns,
    screen_features,
    select_rows,
)
from radflow.analyse.settings import (
    AnalyseSettings,
    Outcome,
    outcome_frame,
    outcomes_from_dictionary,
    settings_from,
)
from radflow.errors import ConfigError, InputFileError
from radflow.io.atomic import write_csv, write_parquet, write_tsv
from radflow.records.agreement import read_reliable_features
from radflow.records.clinical import read_clinical_columns

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalyseOutputs:
    """Destinations of the analysis stage (``<results>/analysis/...``)."""

    clusters: str
    associations: str
    model_ready_parquet: str
    model_ready_csv: str
    standardisation: str
    baseline: str
    #: the negative controls' associations ("": not written)
    control_associations: str = ""


@dataclass(frozen=True)
class AnalyseResult:
    """The tables :func:`analyse` computes (what :func:`run_analyse` writes)."""

    clusters: pd.DataFrame
    associations: pd.DataFrame
    model_ready: pd.DataFrame
    standardisation: pd.DataFrame
    baseline: pd.DataFrame
    control_associations: pd.DataFrame = dataclasses.field(
        default_factory=lambda: pd.DataFrame(columns=list(CONTROL_COLUMNS)))


def read_dataset(path: str | Path) -> pd.DataFrame:
    """``merge/dataset.parquet`` (or ``.csv``, keys read as text).

    Raises
    ------
    InputFileError
        The file cannot be read.
    """
    path = Path(path)
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path, dtype={c: str for c in ID_COLUMNS if c != "label"})
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path.name}: cannot be read ({exc})") from exc


def _check_names(settings: AnalyseSettings, features: list[str]) -> None:
    """Export outcome columns must not clash with identifying or feature columns."""
    taken = set(ID_COLUMNS) | set(features) | {"split"}
    clash = sorted({c for o in settings.outcomes for c in o.export_columns} & taken)
    if clash:
        raise ConfigError(f"analyse.outcomes: names give export columns {clash} that clash "
                          "with identifying, split or feature columns; rename the outcomes")


def analyse(dataset: pd.DataFrame, features: list[str], reliable: pd.DataFrame | None,
            settings: AnalyseSettings, controls: pd.DataFrame | None = None) -> AnalyseResult:
    """All analysis tables from the merged dataset (pure; :func:`run_analyse` does the I/O).

    Parameters
    ----------
    dataset : pandas.DataFrame
        The merge stage's dataset (one row per pair).
    features
        Its feature columns (:func:`radflow.analyse.rows.feature_columns`).
    reliable
        The reliable-features table, or None.
    settings : AnalyseSettings
    controls
        The negative controls' feature values
        (:func:`radflow.analyse.controls.read_control_features`), or None.
    """
    _check_names(settings, features)
    per_subject = select_rows(dataset, settings, one_per_subject=True)
    export_rows = select_rows(dataset, settings,
                              one_per_subject=settings.lesions == "largest")
    analysed, excluded = screen_features(export_rows, features, reliable, settings)
    analysed, more = screen_features(per_subject, analysed, None, settings)
    excluded = sorted(excluded + [(f, f"{why} (largest lesions)") for f, why in more],
                      key=lambda item: features.index(item[0]))
    clusters = cluster_table(per_subject[analysed], settings.redundancy_threshold, excluded)
    outcomes = outcome_frame(per_subject, settings.outcomes)
    associations = association_table(per_subject[analysed], outcomes, settings)
    control_table = (control_association_table(per_subject, analysed, outcomes, controls,
                                               settings) if controls is not None else None)
    associations = flag_associations(associations, control_table)
    representatives = set(clusters.loc[clusters["representative"], "feature"])
    exported = (analysed if settings.export_features == "all"
                else [f for f in analysed if f in representatives])
    export, scaling = model_ready(export_rows, outcome_frame(export_rows, settings.outcomes),
                                  exported, settings)
    baseline = (baseline_table(export, [f for f in exported if f in representatives], settings)
                if settings.baseline else pd.DataFrame(columns=list(BASELINE_COLUMNS)))
    logger.info("analyse: %d subjects, %d export rows; %d of %d features analysed (%d "
                "excluded), %d clusters; %d association rows; %d features exported",
                len(per_subject), len(export), len(analysed), len(features), len(excluded),
                len(representatives), len(associations), len(exported))
    if control_table is not None and controls is not None:
        logger.info("analyse: negative controls %s; %d association(s) with q < %g reproduced "
                    "by a control (survives_control)",
                    ", ".join(sorted(set(controls["source"]))) or "none",
                    int(associations["survives_control"].fillna(False).sum()),
                    CONTROL_Q)
    return AnalyseResult(clusters, associations, export, scaling, baseline,
                         control_table if control_table is not None
                         else pd.DataFrame(columns=list(CONTROL_COLUMNS)))


def run_analyse(*, dataset: str, features_wide: str, settings: AnalyseSettings,
                out: AnalyseOutputs, reliable_features: str = "",
                control_features: str = "") -> AnalyseResult:
    """Entry point of the ``analyse`` rule: read, :func:`analyse`, write every output atomically.

    Parameters
    ----------
    dataset
        ``merge/dataset.parquet`` (or ``.csv``).
    features_wide
        ``merge/features_wide.csv`` (only its header is read).
    settings
        :class:`AnalyseSettings` (:func:`settings_from` the config's ``analyse`` section).
    out
        Destinations.
    reliable_features
        ``reliability/reliable_features.tsv``; ``""``: every feature counts as reliable.
    control_features
        ``reliability/features.parquet`` (its negative controls' rows); ``""``: none.
    """
    table = read_dataset(dataset)
    wide = list(pd.read_csv(features_wide, nrows=0).columns)
    reliable = read_reliable_features(reliable_features) if reliable_features else None
    controls = read_control_features(control_features) if control_features else None
    result = analyse(table, feature_columns(list(table.columns), wide), reliable, settings,
                     controls)
    write_tsv(out.clusters, result.clusters)
    write_tsv(out.associations, result.associations)
    write_parquet(out.model_ready_parquet, result.model_ready)
    write_csv(out.model_ready_csv, result.model_ready)
    write_tsv(out.standardisation, result.standardisation)
    write_tsv(out.baseline, result.baseline)
    if out.control_associations:
        write_tsv(out.control_associations, result.control_associations)
    return result


def stage_settings(mapping: Mapping[str, Any] | None, clinical_columns: str) -> AnalyseSettings:
    """:class:`AnalyseSettings` of the ``analyse`` rule: the config section, its outcomes filled in.

    Parameters
    ----------
    mapping
        The config's ``analyse`` section; ``enabled`` (the Snakefile's switch) is ignored.
        ``outcomes`` null or absent: the outcomes the clinical data dictionary declares
        (:func:`outcomes_from_dictionary`); a list (also an empty one): exactly those.
    clinical_columns
        ``merge/clinical_columns.tsv``; ``""``: none (no outcome from a dictionary).
    """
    values = {k: v for k, v in (mapping or {}).items() if k != "enabled"}
    if values.get("outcomes") is None:
        values["outcomes"] = (outcomes_from_dictionary(read_clinical_columns(clinical_columns))
                              if clinical_columns else ())
        source = "the clinical data dictionary"
    else:
        source = "analyse.outcomes"
    settings = settings_from(values)
    if settings.outcomes:
        logger.info("analyse: outcomes from %s: %s", source,
                    ", ".join(f"{o.name} ({o.type})" for o in settings.outcomes))
    else:
        logger.warning("analyse: no outcome declared (%s has none): the association and "
                       "baseline tables are empty and the export has no outcome column; declare "
                       "outcomes in the clinical data dictionary (role: outcome) or in "
                       "analyse.outcomes", source)
    return settings


def run_analyse_stage(*, dataset: str, features_wide: str, clinical_columns: str,
                      settings: Mapping[str, Any] | None, out: AnalyseOutputs,
                      reliable_features: str = "", control_features: str = ""
                      ) -> AnalyseResult:
    """Entry point of the ``analyse`` rule: :func:`stage_settings`, then :func:`run_analyse`.

    Parameters
    ----------
    dataset, features_wide, reliable_features, control_features, out
        As in :func:`run_analyse`.
    clinical_columns
        ``merge/clinical_columns.tsv`` (the outcomes when ``analyse.outcomes`` is null).
    settings
        The config's ``analyse`` section.
    """
    return run_analyse(dataset=dataset, features_wide=features_wide,
                       settings=stage_settings(settings, clinical_columns), out=out,
                       reliable_features=reliable_features, control_features=control_features)


__all__ = ["AnalyseOutputs", "AnalyseResult", "AnalyseSettings", "Outcome", "analyse",
           "read_dataset", "run_analyse", "run_analyse_stage", "settings_from",
           "stage_settings"]
