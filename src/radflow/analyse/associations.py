"""Univariate association of every analysed feature with every declared outcome.

One tidy table, ``analysis/associations.tsv`` (README, "Analysis"), one row per outcome x
statistic x feature:

============================  =====================================================  =========
outcome type / ``statistic``  ``estimate`` [``ci_low``, ``ci_high``]; ``p``           library
============================  =====================================================  =========
binary ``auc``                ROC AUC of the feature (higher value = positive);       scikit-learn,
                              stratified percentile bootstrap 95 % interval;          scipy
                              two-sided Mann-Whitney U p-value
time-to-event ``cox_hr``      hazard ratio per SD, Wald 95 % interval and p           statsmodels
time-to-event ``c_index``     Harrell's C of the feature as a risk score (no p)       radflow
time-to-event ``logrank``     log-rank chi² above vs at/below the median; p           statsmodels
continuous ``spearman``       Spearman's rho; Fisher-z 95 % interval of Pearson's r   scipy
                              on ranks; p
============================  =====================================================  =========

``q``: Benjamini-Hochberg FDR over the features of one outcome and statistic (statsmodels
``multipletests(method="fdr_bh")``). ``rank``: 1 = smallest p (C-index: largest |C - 0.5|) within
the outcome and statistic, ties by feature name; rows sorted by outcome (spec order), statistic,
rank. ``n``: rows with the outcome; ``n_events``: positives or events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from radflow.analyse.settings import AnalyseSettings, Outcome
from radflow.analyse.survival import harrell_c, logrank_median_split, univariable_cox

#: Columns of ``analysis/associations.tsv``.
ASSOCIATION_COLUMNS: tuple[str, ...] = ("outcome", "outcome_type", "statistic", "rank",
                                        "feature", "estimate", "ci_low", "ci_high", "p", "q",
                                        "n", "n_events", "note")
#: Statistics of each outcome type, in table order.
STATISTICS: dict[str, tuple[str, ...]] = {"binary": ("auc",),
                                          "time-to-event": ("cox_hr", "c_index", "logrank"),
                                          "continuous": ("spearman",)}
_NAN = float("nan")
Row = dict[str, Any]


def _auc_interval(positive: np.ndarray, negative: np.ndarray, resamples: int, seed: int
                  ) -> tuple[float, float]:
    """Percentile 95 % interval of the AUC, resampling positives and negatives separately."""
    from scipy.stats import bootstrap, mannwhitneyu

    def auc(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        u = mannwhitneyu(x, y, axis=axis, method="asymptotic").statistic
        return np.asarray(u / (x.shape[axis] * y.shape[axis]))

    result = bootstrap((positive, negative), auc, vectorized=True, n_resamples=resamples,
                       method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def binary_rows(x: np.ndarray, y: np.ndarray, resamples: int, seed: int, *,
                interval: bool = True) -> list[Row]:
    """AUC, its bootstrap interval and the Mann-Whitney p of one feature.

    Parameters
    ----------
    x : numpy.ndarray, shape (n,)
        Feature values (complete).
    y : numpy.ndarray, shape (n,)
        0/1 outcome.
    resamples, seed
        Bootstrap resamples and the seed of their generator (the same for every feature).
    interval
        False: no bootstrap interval (``ci_low``/``ci_high`` empty; the negative controls'
        associations, :mod:`.controls`, need the estimate and p only).
    """
    from scipy.stats import mannwhitneyu
    from sklearn.metrics import roc_auc_score

    positive, negative = x[y == 1], x[y == 0]
    base: Row = {"statistic": "auc", "n": len(y), "n_events": len(positive)}
    if len(positive) < 2 or len(negative) < 2:
        return [{**base, "note": "fewer than two rows in a class"}]
    if np.ptp(x) == 0:
        return [{**base, "note": "constant among the rows with this outcome"}]
    low, high = (_auc_interval(positive, negative, resamples, seed) if interval
                 else (_NAN, _NAN))
    p = mannwhitneyu(positive, negative, alternative="two-sided").pvalue
    return [{**base, "estimate": float(roc_auc_score(y, x)), "ci_low": low, "ci_high": high,
             "p": float(p)}]


def survival_rows(x: np.ndarray, time: np.ndarray, event: np.ndarray) -> list[Row]:
    """Cox HR per SD, Harrell's C and the median-split log-rank test of one feature."""
    n_events = int(np.sum(event))
    base: Row = {"n": len(time), "n_events": n_events}
    cox = univariable_cox(time, event, x)
    chi2, p_logrank, why = logrank_median_split(time, event, x)
    c = harrell_c(time, event, x) if np.ptp(x) > 0 else _NAN
    return [{**base, "statistic": "cox_hr", "estimate": cox.hazard_ratio, "ci_low": cox.ci_low,
             "ci_high": cox.ci_high, "p": cox.p, "note": cox.note},
            {**base, "statistic": "c_index", "estimate": c,
             "note": "" if np.isfinite(c) else "no comparable pair or constant feature"},
            {**base, "statistic": "logrank", "estimate": chi2, "p": p_logrank, "note": why}]


def continuous_rows(x: np.ndarray, y: np.ndarray) -> list[Row]:
    """Spearman's rho, a Fisher-z interval and its p-value."""
    from scipy.stats import pearsonr, rankdata, spearmanr

    base: Row = {"statistic": "spearman", "n": len(y)}
    if len(y) < 4 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return [{**base, "note": "fewer than four rows or a constant column"}]
    result = spearmanr(x, y)
    interval = pearsonr(rankdata(x), rankdata(y)).confidence_interval(confidence_level=0.95)
    return [{**base, "estimate": float(result.statistic), "ci_low": float(interval.low),
             "ci_high": float(interval.high), "p": float(result.pvalue)}]


def _outcome_rows(values: pd.DataFrame, outcomes: pd.DataFrame, outcome: Outcome,
                  settings: AnalyseSettings, *, interval: bool = True) -> list[Row]:
    """Rows of one outcome for every feature (rows missing the outcome or, in a negative
    control's table, the feature's value left out of that feature's statistics)."""
    rows: list[Row] = []
    if outcome.type == "time-to-event":
        time_col, event_col = outcome.export_columns
        keep = (outcomes[time_col].notna() & outcomes[event_col].notna()).to_numpy()
        time = outcomes[time_col].to_numpy(dtype=float, na_value=np.nan)
        event = outcomes[event_col].to_numpy(dtype=float, na_value=np.nan)

        def one(x: np.ndarray, use: np.ndarray) -> list[Row]:
            return survival_rows(x, time[use], event[use].astype(int))
    else:
        keep = outcomes[outcome.name].notna().to_numpy()
        y = outcomes[outcome.name].to_numpy(dtype=float, na_value=np.nan)
        if outcome.type == "binary":
            def one(x: np.ndarray, use: np.ndarray) -> list[Row]:
                return binary_rows(x, y[use].astype(int), settings.bootstrap_resamples,
                                   settings.seed, interval=interval)
        else:
            def one(x: np.ndarray, use: np.ndarray) -> list[Row]:
                return continuous_rows(x, y[use])
    compute: Callable[[np.ndarray, np.ndarray], list[Row]] = one
    for feature in values.columns:
        x_all = values[feature].to_numpy(dtype=float)
        use = keep & np.isfinite(x_all)
        if use.sum() < 3 and use.sum() < keep.sum():  # a control's values missing
            found = [{"statistic": s, "n": int(use.sum()), "note": "fewer than three values"}
                     for s in STATISTICS[outcome.type]]
        else:
            found = compute(x_all[use], use)
        rows += [{"outcome": outcome.name, "outcome_type": outcome.type, "feature": feature,
                  **row} for row in found]
    return rows


def _fdr_and_rank(table: pd.DataFrame) -> pd.DataFrame:
    """``q`` (BH within outcome x statistic, over the rows with a p) and ``rank``."""
    from statsmodels.stats.multitest import multipletests

    table = table.copy()
    table["q"] = np.nan
    table["rank"] = 0
    for _, group in table.groupby(["outcome", "statistic"], sort=False):
        tested = group["p"].notna()
        if tested.any():
            table.loc[group.index[tested], "q"] = multipletests(
                group.loc[tested, "p"].to_numpy(), method="fdr_bh")[1]
        strength = (-(group["estimate"] - 0.5).abs() if group["statistic"].iat[0] == "c_index"
                    else group["p"])
        order = pd.DataFrame({"s": strength.fillna(np.inf), "f": group["feature"]})
        ranked = order.sort_values(["s", "f"], kind="stable").index
        table.loc[ranked, "rank"] = np.arange(1, len(ranked) + 1)
    return table


def association_table(values: pd.DataFrame, outcomes: pd.DataFrame,
                      settings: AnalyseSettings, *, interval: bool = True) -> pd.DataFrame:
    """Univariate statistics of every feature with every outcome of ``settings``.

    Parameters
    ----------
    values : pandas.DataFrame, shape (n_subjects, n_features)
        Analysed features, one row per subject (a missing value, possible in a negative
        control's table, leaves the row out of that feature's statistics).
    outcomes : pandas.DataFrame, shape (n_subjects, n_outcome_columns)
        :func:`radflow.analyse.settings.outcome_frame` of the same rows.
    settings : AnalyseSettings
    interval
        False: no bootstrap interval of the AUC (the negative controls' tables).

    Returns
    -------
    pandas.DataFrame
        :data:`ASSOCIATION_COLUMNS`, sorted (module docstring).
    """
    rows: list[Row] = []
    for outcome in settings.outcomes:
        rows += _outcome_rows(values, outcomes, outcome, settings, interval=interval)
    table = pd.DataFrame(rows, columns=[c for c in ASSOCIATION_COLUMNS
                                        if c not in ("q", "rank")])
    table = table.astype({"estimate": "float64", "ci_low": "float64", "ci_high": "float64",
                          "p": "float64", "n": "int64", "n_events": "Int64"})
    table["note"] = table["note"].astype(object).fillna("").astype(str)
    table = _fdr_and_rank(table)
    outcome_order = {o.name: i for i, o in enumerate(settings.outcomes)}
    statistic_order = {s: i for stats in STATISTICS.values() for i, s in enumerate(stats)}
    key = pd.DataFrame({"o": table["outcome"].map(outcome_order),
                        "s": table["statistic"].map(statistic_order), "r": table["rank"]})
    table = table.loc[key.sort_values(["o", "s", "r"], kind="stable").index]
    return table[list(ASSOCIATION_COLUMNS)].reset_index(drop=True)


__all__ = ["ASSOCIATION_COLUMNS", "STATISTICS", "association_table", "binary_rows",
           "continuous_rows", "survival_rows"]
