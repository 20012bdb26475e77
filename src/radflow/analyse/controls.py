"""Associations that also hold for a negative control (README, "Analysis").

When the reliability stage made negative controls (``reliability/features.parquet``, rows with
``source`` ``control:<kind>:<region>``, e.g. ``control:shuffled:roi``: the pair's image with the
voxels of the region shuffled or randomised, the mask unchanged), each control's values of every
analysed feature go through the same univariate test as the real values, on the same subjects
(the same lesion rows) and outcomes: :func:`control_association_table` writes them to
``analysis/control_associations.tsv`` (``source`` first, then the association columns; no
bootstrap interval), with their own Benjamini-Hochberg ``q`` per control, outcome and statistic.

A real association is flagged (:func:`flag_associations`, columns ``survives_control`` and
``controls`` of ``associations.tsv``) when some control's version of the same feature has the
same statistic with ``q`` < :data:`CONTROL_Q` in the same direction (AUC and C on the same side
of 0.5, hazard ratio of 1, rho of 0; the log-rank has none). Such a feature still tells the
outcome apart once its texture is destroyed: it follows the region's size, shape or histogram
(what the control keeps), not its texture. ``survives_control`` is empty where nothing was
judged: no negative controls, or a statistic without a p-value (Harrell's C).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from radflow.analyse.associations import ASSOCIATION_COLUMNS, association_table
from radflow.analyse.settings import AnalyseSettings
from radflow.errors import InputFileError

#: A control's association "holds" below this Benjamini-Hochberg q.
CONTROL_Q = 0.05
#: ``source`` prefix of the negative controls' rows in ``reliability/features.parquet``.
CONTROL_PREFIX = "control:"
#: Columns of ``analysis/control_associations.tsv``.
CONTROL_COLUMNS: tuple[str, ...] = ("source", *(c for c in ASSOCIATION_COLUMNS
                                                if c not in ("ci_low", "ci_high")))
#: Columns :func:`flag_associations` adds to the association table.
FLAG_COLUMNS: tuple[str, ...] = ("survives_control", "controls")
#: The estimate of no association, per statistic (the direction test; None: no direction).
_NULL = {"auc": 0.5, "c_index": 0.5, "cox_hr": 1.0, "spearman": 0.0, "logrank": None}
_READ = ["pair_id", "image_type", "feature_class", "feature", "value", "source"]


def read_control_features(path: str | Path) -> pd.DataFrame:
    """The negative controls' rows of ``reliability/features.parquet`` (columns
    ``pair_id``, ``source``, ``name`` = ``<image_type>_<class>_<feature>``, ``value``).

    Raises
    ------
    InputFileError
        The file cannot be read or lacks a column.
    """
    try:
        table = pd.read_parquet(path, columns=_READ)
    except (OSError, ValueError, KeyError) as exc:
        raise InputFileError(f"{Path(path).name}: cannot be read as the reliability stage's "
                             f"feature table ({exc})") from exc
    table = table[table["source"].astype(str).str.startswith(CONTROL_PREFIX)]
    name = table["image_type"] + "_" + table["feature_class"] + "_" + table["feature"]
    return pd.DataFrame({"pair_id": table["pair_id"].astype(str),
                         "source": table["source"].astype(str), "name": name,
                         "value": table["value"].astype("float64")}).reset_index(drop=True)


def control_values(controls: pd.DataFrame, source: str, pair_ids: Sequence[str],
                   features: Sequence[str]) -> pd.DataFrame:
    """One control's values: a row per pair of ``pair_ids`` (in that order), a column per
    feature (NaN where the control has no value: a copy that failed, a feature it lacks)."""
    rows = controls[controls["source"] == source]
    wide = rows.pivot_table(index="pair_id", columns="name", values="value", aggfunc="first")
    return wide.reindex(index=list(pair_ids), columns=list(features)).reset_index(drop=True)


def control_association_table(per_subject: pd.DataFrame, features: Sequence[str],
                              outcomes: pd.DataFrame, controls: pd.DataFrame,
                              settings: AnalyseSettings) -> pd.DataFrame:
    """The association statistics of every control's version of ``features``.

    Parameters
    ----------
    per_subject
        The rows the real associations use (one per subject; its ``pair_id``).
    features
        The analysed features.
    outcomes
        :func:`radflow.analyse.settings.outcome_frame` of ``per_subject``.
    controls
        :func:`read_control_features`.
    settings
        The outcomes and the seed.

    Returns
    -------
    pandas.DataFrame
        :data:`CONTROL_COLUMNS`, by source (sorted), then as :func:`association_table`.
    """
    tables = []
    for source in sorted(set(controls["source"])):
        values = control_values(controls, source, list(per_subject["pair_id"]), features)
        table = association_table(values, outcomes.reset_index(drop=True), settings,
                                  interval=False)
        tables.append(table.assign(source=source))
    if not tables:
        return pd.DataFrame(columns=list(CONTROL_COLUMNS))
    return pd.concat(tables, ignore_index=True)[list(CONTROL_COLUMNS)]


def _side(estimate: pd.Series, statistic: pd.Series) -> pd.Series:
    """+1 / -1 / 0 of an estimate against its null value (0 for the log-rank: no side)."""
    null = statistic.map(_NULL)
    side = np.sign(estimate.astype(float) - null.astype(float).fillna(0.0))
    return side.where(null.notna(), 0.0)


def flag_associations(associations: pd.DataFrame, control_table: pd.DataFrame | None
                      ) -> pd.DataFrame:
    """``associations`` with :data:`FLAG_COLUMNS` (module docstring).

    Parameters
    ----------
    associations
        :func:`radflow.analyse.associations.association_table`.
    control_table
        :func:`control_association_table`; None: no negative controls (nothing judged).
    """
    table = associations.copy()
    table["survives_control"] = pd.Series(pd.NA, index=table.index, dtype="boolean")
    table["controls"] = ""
    if control_table is None or control_table.empty or table.empty:
        return table
    key = ["outcome", "statistic", "feature"]
    ctl = control_table[control_table["q"].notna()].copy()
    ctl["_side"] = _side(ctl["estimate"], ctl["statistic"])
    holds = ctl[ctl["q"] < CONTROL_Q]
    real_side = _side(table["estimate"], table["statistic"]).rename("_real")
    tested = table["p"].notna()
    joined = holds.merge(table.loc[tested, key].join(real_side).reset_index(), on=key)
    joined = joined[(joined["_side"] == joined["_real"]) | (joined["_real"] == 0)]
    which = joined.groupby("index")["source"].agg(lambda s: ";".join(sorted(set(s))))
    judged = tested & table.set_index(key).index.isin(ctl.set_index(key).index)
    table.loc[judged, "survives_control"] = False
    table.loc[which.index, "survives_control"] = True
    table.loc[which.index, "controls"] = which
    return table


__all__ = ["CONTROL_COLUMNS", "CONTROL_Q", "FLAG_COLUMNS", "control_association_table",
           "control_values", "flag_associations", "read_control_features"]
