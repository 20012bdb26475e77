"""Cross-validated baseline models: is there any signal in the features?

On the export's training rows only (the test rows stay unseen), with the non-redundant features
(the representatives among the export's columns), folds drawn by scikit-learn's
``StratifiedGroupKFold`` (seeded; grouped by subject, so a subject's lesions share a fold;
stratified by class or event):

* binary outcome: ``StandardScaler`` then ``LogisticRegressionCV`` (L2 or L1, ``Cs=10``, inner
  folds again grouped by subject, chosen by ROC AUC, solver liblinear); metric ``cv_auc``, the
  held-out folds' ROC AUC;
* time-to-event outcome: the ``baseline_cox_features`` features with the largest
  |Harrell's C - 0.5| on the fold's training rows, standardised on them, in a penalised Cox
  model (:func:`radflow.analyse.survival.penalised_cox`, L2 or L1) whose strength is chosen
  from :data:`COX_ALPHAS` by inner folds (grouped, by Harrell's C, features chosen again on
  each inner fold's rows); metric ``cv_c_index``, Harrell's C of the held-out folds' linear
  predictor. The cap keeps the Cox fits cheap: statsmodels' Efron Hessian costs
  O(events x rows x features²) a step;
* continuous outcomes get no baseline.

``analysis/baseline.tsv``: ``outcome``, ``outcome_type``, ``model``, ``metric``, ``mean``,
``sd`` (over folds, ddof 1), ``folds`` (folds scored), ``n`` (training rows), ``n_features``
(features a model sees), ``note``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from radflow.analyse.export import SPLIT
from radflow.analyse.rows import SUBJECT
from radflow.analyse.settings import AnalyseSettings, Outcome
from radflow.analyse.survival import harrell_c, penalised_cox

#: Columns of ``analysis/baseline.tsv``.
BASELINE_COLUMNS: tuple[str, ...] = ("outcome", "outcome_type", "model", "metric", "mean", "sd",
                                     "folds", "n", "n_features", "note")
#: Penalty strengths the Cox baseline's inner CV chooses from (statsmodels' elastic-net scale).
COX_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 2, 9))


def group_folds(labels: np.ndarray, groups: np.ndarray, folds: int, seed: int
                ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds that keep each group in one fold (``StratifiedGroupKFold``, shuffled).

    The number of folds is lowered to the number of groups in the smallest class when that is
    smaller (scikit-learn needs one group of each class per fold to stratify).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    per_class = pd.Series(groups).groupby(labels).nunique()
    k = int(max(2, min(folds, per_class.min())))
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class" on tiny classes
        yield from splitter.split(np.zeros(len(labels)), labels, groups)


def _logistic_scores(x: np.ndarray, y: np.ndarray, groups: np.ndarray,
                     settings: AnalyseSettings) -> list[float]:
    """Held-out ROC AUC of each outer fold."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scores = []
    l1 = 1.0 if settings.baseline_penalty == "l1" else 0.0
    for train, test in group_folds(y, groups, settings.baseline_folds, settings.seed):
        if len(np.unique(y[test])) < 2 or len(np.unique(y[train])) < 2:
            continue
        inner = list(group_folds(y[train], groups[train], settings.baseline_folds,
                                 settings.seed))
        model = make_pipeline(StandardScaler(), LogisticRegressionCV(
            Cs=10, l1_ratios=(l1,), cv=inner, scoring="roc_auc", solver="liblinear",
            random_state=settings.seed, max_iter=1000, use_legacy_attributes=False))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # liblinear convergence chatter on tiny folds
            model.fit(x[train], y[train])
        scores.append(float(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1])))
    return scores


def _fold_c(x: np.ndarray, time: np.ndarray, event: np.ndarray, train: np.ndarray,
            test: np.ndarray, alpha: float, penalty: str) -> float:
    """Harrell's C on ``test`` of a penalised Cox model fitted on ``train`` (NaN when the fit
    fails or the fold has no event or comparable pair)."""
    from sklearn.preprocessing import StandardScaler

    if not event[train].any():
        return float("nan")
    scaler = StandardScaler().fit(x[train])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # overflow while a weak penalty is tried
            beta = penalised_cox(time[train], event[train], scaler.transform(x[train]), alpha,
                                 penalty)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return float("nan")
    return harrell_c(time[test], event[test], scaler.transform(x[test]) @ beta)


def _strongest(x: np.ndarray, time: np.ndarray, event: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` columns of ``x`` with the largest |Harrell's C - 0.5| on these rows
    (ties: the first column)."""
    if x.shape[1] <= k:
        return np.arange(x.shape[1])
    strength = np.nan_to_num(np.array([abs(harrell_c(time, event, x[:, j]) - 0.5)
                                       for j in range(x.shape[1])]), nan=0.0)
    return np.sort(np.argsort(-strength, kind="stable")[:k])


def _cox_scores(x: np.ndarray, time: np.ndarray, event: np.ndarray, groups: np.ndarray,
                settings: AnalyseSettings) -> list[float]:
    """Held-out Harrell's C of each outer fold; the features (``baseline_cox_features``
    strongest on the fold's training rows) and the penalty (inner folds) are chosen on the
    fold's training rows only."""
    k, penalty = settings.baseline_cox_features, settings.baseline_penalty
    scores = []
    for train, test in group_folds(event, groups, settings.baseline_folds, settings.seed):
        xt, tt, et = x[train], time[train], event[train]
        inner = list(group_folds(et, groups[train], settings.baseline_folds, settings.seed))
        chosen = [_strongest(xt[a], tt[a], et[a], k) for a, _ in inner]
        means = []
        for alpha in COX_ALPHAS:
            fold_c = [_fold_c(xt[:, cols], tt, et, a, b, alpha, penalty)
                      for (a, b), cols in zip(inner, chosen, strict=True)]
            finite = [c for c in fold_c if np.isfinite(c)]
            means.append(float(np.mean(finite)) if finite else np.nan)
        alpha = (COX_ALPHAS[int(np.nanargmax(means))] if np.isfinite(means).any()
                 else 1.0)
        c = _fold_c(x[:, _strongest(xt, tt, et, k)], time, event, train, test, alpha, penalty)
        if np.isfinite(c):
            scores.append(c)
    return scores


def _row(outcome: Outcome, scores: list[float], n: int, n_features: int,
         settings: AnalyseSettings, note: str = "") -> dict[str, object]:
    binary = outcome.type == "binary"
    model = (f"logistic-{settings.baseline_penalty}" if binary
             else f"cox-{settings.baseline_penalty}")
    return {"outcome": outcome.name, "outcome_type": outcome.type, "model": model,
            "metric": "cv_auc" if binary else "cv_c_index",
            "mean": float(np.mean(scores)) if scores else np.nan,
            "sd": float(np.std(scores, ddof=1)) if len(scores) > 1 else np.nan,
            "folds": len(scores), "n": n, "n_features": n_features,
            "note": note or ("" if scores else "no fold could be scored")}


def baseline_table(export: pd.DataFrame, features: Sequence[str],
                   settings: AnalyseSettings) -> pd.DataFrame:
    """Cross-validated baseline scores of every binary and time-to-event outcome.

    Parameters
    ----------
    export : pandas.DataFrame
        :func:`radflow.analyse.export.model_ready`'s table.
    features
        The baseline's features (the representatives among the export's columns).
    settings : AnalyseSettings

    Returns
    -------
    pandas.DataFrame
        :data:`BASELINE_COLUMNS`, one row per binary or time-to-event outcome (spec order).
    """
    train = export[export[SPLIT] == "train"]
    rows = []
    for outcome in settings.outcomes:
        if outcome.type == "continuous":
            continue
        columns = outcome.export_columns
        rows_ok = train[list(columns)].notna().all(axis=1)
        data = train[rows_ok]
        x = data[list(features)].to_numpy(dtype=float)
        groups = data[SUBJECT].to_numpy()
        if not features or len(data) < 2 * settings.baseline_folds:
            rows.append(_row(outcome, [], len(data), len(features), settings,
                             "no feature" if not features else "too few training rows"))
            continue
        if outcome.type == "binary":
            scores = _logistic_scores(x, data[columns[0]].to_numpy(dtype=int), groups, settings)
            used = len(features)
        else:
            scores = _cox_scores(x, data[columns[0]].to_numpy(dtype=float),
                                 data[columns[1]].to_numpy(dtype=int), groups, settings)
            used = min(len(features), settings.baseline_cox_features)
        rows.append(_row(outcome, scores, len(data), used, settings))
    return pd.DataFrame(rows, columns=list(BASELINE_COLUMNS))


__all__ = ["BASELINE_COLUMNS", "baseline_table", "group_folds"]
