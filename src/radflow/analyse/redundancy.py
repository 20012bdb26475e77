"""Redundant features: Spearman correlation, hierarchical clusters, one representative each.

Rule (README, "Analysis"): the distance between two features is ``1 - |rho|`` (Spearman's
rank correlation over the analysed subjects); scipy's average-linkage clustering merges two
groups while the mean distance between their members is at most ``1 - threshold``, i.e. while
their average |rho| reaches ``analyse.redundancy_threshold``. The representative of a cluster is
the member with the highest mean |rho| to the other members (the most "central"), ties broken by
the feature name. The choice never looks at an outcome: picking the member most associated
with an outcome on the whole cohort would let the test split's outcomes choose the export's
columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Columns of ``analysis/redundancy_clusters.tsv``.
CLUSTER_COLUMNS: tuple[str, ...] = ("feature", "cluster", "representative", "mean_abs_rho",
                                    "note")


def spearman_matrix(values: pd.DataFrame) -> pd.DataFrame:
    """Spearman's rank correlation between all columns (scipy.stats.spearmanr).

    Parameters
    ----------
    values : pandas.DataFrame, shape (n_rows, n_features)
        Complete numeric columns.

    Returns
    -------
    pandas.DataFrame, shape (n_features, n_features)
        Symmetric, ones on the diagonal; rows and columns named like ``values``' columns.
    """
    from scipy.stats import spearmanr

    names = list(values.columns)
    if len(names) < 2:
        return pd.DataFrame(np.ones((len(names), len(names))), index=names, columns=names)
    rho = np.atleast_2d(spearmanr(values.to_numpy(dtype=float), axis=0).statistic)
    if rho.shape == (1, 1):
        rho = np.array([[1.0, rho[0, 0]], [rho[0, 0], 1.0]])
    rho = (rho + rho.T) / 2
    np.fill_diagonal(rho, 1.0)
    return pd.DataFrame(rho, index=names, columns=names)


def clusters(rho: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Cluster features by ``1 - |rho|`` (average linkage) and choose representatives.

    Parameters
    ----------
    rho : pandas.DataFrame, shape (n_features, n_features)
        From :func:`spearman_matrix`.
    threshold : float
        Average |rho| at which groups merge.

    Returns
    -------
    pandas.DataFrame
        One row per feature in ``rho``'s order: ``feature``, ``cluster`` (1, 2, ... numbered in
        the order of their first feature), ``representative`` (bool), ``mean_abs_rho`` (mean
        |rho| to the other members; NaN for a feature alone), ``note`` (``""``).
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    names = list(rho.index)
    if not names:
        return pd.DataFrame(columns=list(CLUSTER_COLUMNS))
    strength = np.abs(rho.to_numpy(dtype=float))
    if len(names) == 1:
        labels = np.array([1])
    else:
        distance = np.clip(1.0 - strength, 0.0, 1.0)
        np.fill_diagonal(distance, 0.0)
        tree = linkage(squareform(distance, checks=False), method="average")
        labels = fcluster(tree, t=1.0 - threshold, criterion="distance")
    renumber = {label: i + 1 for i, label in enumerate(dict.fromkeys(labels))}
    cluster = np.array([renumber[label] for label in labels])
    mean_abs = np.full(len(names), np.nan)
    representative = np.zeros(len(names), dtype=bool)
    for label in np.unique(cluster):
        members = np.flatnonzero(cluster == label)
        if len(members) > 1:
            block = strength[np.ix_(members, members)]
            mean_abs[members] = (block.sum(axis=1) - 1.0) / (len(members) - 1)
        # rounding keeps float noise from breaking ties that are ties
        best = min(members, key=lambda m: (-round(np.nan_to_num(mean_abs[m], nan=1.0), 12),
                                           names[m]))
        representative[best] = True
    return pd.DataFrame({"feature": names, "cluster": cluster, "representative": representative,
                         "mean_abs_rho": mean_abs, "note": ""})[list(CLUSTER_COLUMNS)]


def cluster_table(values: pd.DataFrame, threshold: float,
                  excluded: Sequence[tuple[str, str]] = ()) -> pd.DataFrame:
    """The redundancy cluster table of the analysed features plus the excluded ones.

    Parameters
    ----------
    values : pandas.DataFrame, shape (n_subjects, n_features)
        The analysed features (complete, not constant).
    threshold : float
        ``analyse.redundancy_threshold``.
    excluded
        ``(feature, why)`` of features left out of the analysis: listed after the clustered
        ones with an empty ``cluster`` and ``mean_abs_rho``, ``representative`` False and the
        reason in ``note``.

    Returns
    -------
    pandas.DataFrame
        :data:`CLUSTER_COLUMNS`; ``cluster`` is a nullable integer.
    """
    table = clusters(spearman_matrix(values), threshold)
    left_out = pd.DataFrame({"feature": [f for f, _ in excluded], "cluster": pd.NA,
                             "representative": False, "mean_abs_rho": np.nan,
                             "note": [why for _, why in excluded]})
    parts = [t for t in (table, left_out) if len(t)]
    if not parts:
        return pd.DataFrame(columns=list(CLUSTER_COLUMNS))
    out = pd.concat(parts, ignore_index=True)
    return out.astype({"cluster": "Int64", "representative": bool, "mean_abs_rho": "float64",
                       "note": str})[list(CLUSTER_COLUMNS)]


__all__ = ["CLUSTER_COLUMNS", "cluster_table", "clusters", "spearman_matrix"]
