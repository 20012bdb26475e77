"""The model-ready export: one row per subject (or lesion), a seeded split, train-only scaling.

``analysis/model_ready.parquet`` and ``.csv`` (README, "Analysis"): the identifying columns
(:data:`radflow.analyse.rows.ID_COLUMNS`, pseudonymous keys only), ``split`` (``train`` /
``test``), the coded outcomes (:attr:`radflow.analyse.settings.Outcome.export_columns`: binary
0/1, ``<name>_time`` / ``<name>_event``, continuous as is) and the feature columns with their
raw values. The split draws subjects, never rows, so every lesion of a subject is on one side;
it is stratified by the classes (binary) or events (time-to-event) of ``analyse.stratify_by``.

``analysis/standardisation.tsv``: ``feature``, ``mean``, ``sd``, ``n_train``, fitted on the
training rows only (scikit-learn's ``StandardScaler``: population SD, ddof 0; a feature constant
on the training rows gets ``sd`` 1, as scikit-learn does). The export's values are *not*
standardised: a model applies ``(x - mean) / sd`` with these parameters to train and test rows
alike, so no test-row information reaches the scaling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from radflow.analyse.rows import ID_COLUMNS, LESION, SUBJECT
from radflow.analyse.settings import AnalyseSettings, Outcome
from radflow.errors import AnalysisError

#: Columns of ``analysis/standardisation.tsv``.
STANDARDISATION_COLUMNS: tuple[str, ...] = ("feature", "mean", "sd", "n_train")
SPLIT = "split"


def stratifying_outcome(settings: AnalyseSettings) -> Outcome | None:
    """``settings.stratify_by``, else the first binary or time-to-event outcome (or None)."""
    if settings.stratify_by:
        return next(o for o in settings.outcomes if o.name == settings.stratify_by)
    return next((o for o in settings.outcomes if o.type != "continuous"), None)


def subject_strata(rows: pd.DataFrame, outcomes: pd.DataFrame, outcome: Outcome | None
                   ) -> pd.Series:
    """One stratum label per subject (index ``case_id``, sorted).

    The class (binary) or event flag (time-to-event) of the subject's first row (clinical
    outcomes are per subject); ``missing`` where absent; one stratum for everyone without a
    stratifying outcome. Strata with a single subject are pooled into ``other``, and ``other``
    into the largest stratum when it is still alone (a stratified split needs two of each).
    """
    subjects = rows[SUBJECT]
    if outcome is None or outcome.type == "continuous":
        labels = pd.Series("all", index=subjects)
    else:
        column = outcome.export_columns[-1]
        labels = pd.Series(outcomes[column].astype("string").fillna("missing").to_numpy(),
                           index=subjects)
    labels = labels[~labels.index.duplicated()].sort_index()
    counts = labels.value_counts()
    labels = labels.where(labels.map(counts) > 1, "other")
    counts = labels.value_counts()
    if counts.get("other", 0) == 1 and len(counts) > 1:
        biggest = counts.drop("other").sort_values(ascending=False, kind="stable").index[0]
        labels = labels.replace("other", biggest)
    return labels


def split_subjects(strata: pd.Series, test_fraction: float, seed: int) -> pd.Series:
    """``train`` / ``test`` per subject (index of ``strata``), stratified, seeded.

    scikit-learn's ``train_test_split`` over the sorted subjects, so the same subjects and seed
    give the same split.

    Raises
    ------
    AnalysisError
        Fewer than two subjects per split.
    """
    from sklearn.model_selection import train_test_split

    subjects = np.asarray(strata.index)
    n_test = int(np.ceil(test_fraction * len(subjects)))
    if len(subjects) < 4 or n_test < 2 or len(subjects) - n_test < 2:
        raise AnalysisError(f"{len(subjects)} subject(s): too few for a train/test split "
                            f"with test_fraction {test_fraction:g}")
    stratify = strata.to_numpy() if strata.nunique() > 1 else None
    if stratify is not None and n_test < strata.nunique():
        stratify = None
    _, test = train_test_split(subjects, test_size=n_test, random_state=seed,
                               stratify=stratify)
    return pd.Series(np.where(np.isin(subjects, test), "test", "train"), index=subjects)


def standardisation(train: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD of every column of the training rows (scikit-learn ``StandardScaler``).

    Parameters
    ----------
    train : pandas.DataFrame, shape (n_train, n_features)

    Returns
    -------
    pandas.DataFrame
        :data:`STANDARDISATION_COLUMNS`, one row per column of ``train``.
    """
    from sklearn.preprocessing import StandardScaler

    if train.shape[1] == 0:
        return pd.DataFrame(columns=list(STANDARDISATION_COLUMNS))
    scaler = StandardScaler().fit(train.to_numpy(dtype=float))
    return pd.DataFrame({"feature": list(train.columns), "mean": scaler.mean_,
                         "sd": scaler.scale_, "n_train": len(train)})


def model_ready(rows: pd.DataFrame, outcomes: pd.DataFrame, features: Sequence[str],
                settings: AnalyseSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The export table and its standardisation parameters.

    Parameters
    ----------
    rows : pandas.DataFrame, shape (n_rows, ...)
        Export rows (:func:`radflow.analyse.rows.select_rows`), sorted by subject and lesion.
    outcomes : pandas.DataFrame, shape (n_rows, n_outcome_columns)
        :func:`radflow.analyse.settings.outcome_frame` of ``rows``.
    features
        The export's feature columns.
    settings : AnalyseSettings

    Returns
    -------
    export : pandas.DataFrame
        Identifying columns, ``split``, outcomes, features (module docstring).
    scaling : pandas.DataFrame
        :data:`STANDARDISATION_COLUMNS`.
    """
    strata = subject_strata(rows, outcomes, stratifying_outcome(settings))
    split = split_subjects(strata, settings.test_fraction, settings.seed)
    ids = [c for c in ID_COLUMNS if c in rows.columns]
    export = pd.concat([rows[ids].reset_index(drop=True),
                        pd.DataFrame({SPLIT: rows[SUBJECT].map(split).to_numpy()}),
                        outcomes.reset_index(drop=True),
                        rows[list(features)].astype("float64").reset_index(drop=True)], axis=1)
    export = export.sort_values([SUBJECT, LESION], kind="stable").reset_index(drop=True)
    scaling = standardisation(export.loc[export[SPLIT] == "train", list(features)])
    return export, scaling


__all__ = ["SPLIT", "STANDARDISATION_COLUMNS", "model_ready", "split_subjects",
           "standardisation", "stratifying_outcome", "subject_strata"]
