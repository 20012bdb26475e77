"""Which rows and which feature columns of the merged dataset the analysis uses.

Rows: the dataset has one row per pair (image x mask x ROI label). ``analyse.rois`` keeps some
ROI names; a subject (``case_id``) with several rows then has several lesions. ``largest`` keeps
the row with the largest ``volume_feature`` (ties and missing volumes: the smallest ``pair_id``
among the largest), ``per-lesion`` keeps them all (README, "Analysis").

Features: the dataset's ``<image_type>_<class>_<feature>`` columns are those of
``merge/features_wide.csv`` without its key, provenance and protocol columns (the clinical
columns sit between those and the features in ``dataset``, so the wide table's header is what
tells them apart). A feature leaves the analysis, with a note, when it is not numeric, has a
missing or infinite value in a row of the export, is constant there, or (``reliable_only``) is
not on the reliable list.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from radflow.analyse.settings import VOLUME_FEATURES, AnalyseSettings
from radflow.errors import AnalysisError, ConfigError
from radflow.merge import KEY_COLUMNS, PROVENANCE_COLUMNS
from radflow.records.protocol import DATASET_COLUMNS

SUBJECT = "case_id"
LESION = "pair_id"
#: Identifying columns the export keeps (pseudonymous keys only).
ID_COLUMNS: tuple[str, ...] = ("case_id", "pair_id", "image_key", "roi", "label")


def feature_columns(dataset_columns: Sequence[str], wide_columns: Sequence[str]) -> list[str]:
    """The feature columns of the dataset, in extraction order.

    Parameters
    ----------
    dataset_columns
        Columns of ``merge/dataset.parquet``.
    wide_columns
        Columns of ``merge/features_wide.csv`` (its header).
    """
    not_features = {*KEY_COLUMNS, *PROVENANCE_COLUMNS, *DATASET_COLUMNS}
    present = set(dataset_columns)
    return [c for c in wide_columns if c not in not_features and c in present]


def volume_column(columns: Sequence[str], settings: AnalyseSettings) -> str:
    """``settings.volume_feature`` or the first of :data:`VOLUME_FEATURES` in ``columns``
    (``""`` when none is).

    Raises
    ------
    ConfigError
        ``volume_feature`` is set but not a column.
    """
    if settings.volume_feature:
        if settings.volume_feature not in columns:
            raise ConfigError(f"analyse.volume_feature {settings.volume_feature!r} is not a "
                              "feature of the dataset")
        return settings.volume_feature
    return next((c for c in VOLUME_FEATURES if c in columns), "")


def select_rows(dataset: pd.DataFrame, settings: AnalyseSettings, *, one_per_subject: bool
                ) -> pd.DataFrame:
    """The dataset rows of ``settings.rois``; with ``one_per_subject`` the largest lesion of each.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``case_id`` and ``pair_id``, index reset.

    Raises
    ------
    AnalysisError
        One row per subject is asked for, some subject has several, and there is no volume
        feature to choose by.
    """
    rows = dataset
    if settings.rois:
        rows = rows[rows["roi"].isin(settings.rois)]
    rows = rows.sort_values([SUBJECT, LESION], kind="stable").reset_index(drop=True)
    if not one_per_subject or not rows[SUBJECT].duplicated().any():
        return rows
    volume = volume_column(list(rows.columns), settings)
    if not volume:
        raise AnalysisError("some subjects have several lesions and the dataset has no volume "
                            f"feature ({', '.join(VOLUME_FEATURES)}); set analyse.volume_feature "
                            "or analyse.rois")
    size = pd.to_numeric(rows[volume], errors="coerce").fillna(-np.inf)
    order = rows.assign(_size=-size).sort_values([SUBJECT, "_size", LESION], kind="stable")
    largest = order.drop_duplicates(SUBJECT).drop(columns="_size")
    return largest.sort_values([SUBJECT, LESION], kind="stable").reset_index(drop=True)


def screen_features(rows: pd.DataFrame, features: Sequence[str],
                    reliable: pd.DataFrame | None, settings: AnalyseSettings
                    ) -> tuple[list[str], list[tuple[str, str]]]:
    """Split ``features`` into analysed ones and excluded ones with the reason.

    Parameters
    ----------
    rows
        The rows checked (those of the export, which include the analysed subjects' rows).
    features
        Candidate feature columns.
    reliable
        ``reliability/reliable_features.tsv`` (``feature``, ``reliable``, ``reason``) or None.
    settings
        Its ``reliable_only``.

    Returns
    -------
    analysed : list of str
        In ``features``' order.
    excluded : list of (str, str)
        ``(feature, why)``.
    """
    flags: dict[str, tuple[bool, str]] = {}
    if reliable is not None and settings.reliable_only:
        flags = {f: (bool(ok), str(why)) for f, ok, why in
                 zip(reliable["feature"], reliable["reliable"], reliable["reason"], strict=True)}
    analysed: list[str] = []
    excluded: list[tuple[str, str]] = []
    for feature in features:
        column = rows[feature]
        why = ""
        if flags and feature not in flags:
            why = "not in the reliable-features table"
        elif flags and not flags[feature][0]:
            why = f"not reliable: {flags[feature][1]}"
        elif not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            why = "not numeric"
        else:
            values = column.to_numpy(dtype=float)
            bad = int((~np.isfinite(values)).sum())
            if bad:
                why = f"missing or infinite in {bad} of {len(values)} rows"
            elif len(values) and np.ptp(values) == 0:
                why = f"constant ({values[0]:g} in all {len(values)} rows)"
        if why:
            excluded.append((feature, why))
        else:
            analysed.append(feature)
    return analysed, excluded


__all__ = ["ID_COLUMNS", "LESION", "SUBJECT", "feature_columns", "screen_features",
           "select_rows", "volume_column"]
