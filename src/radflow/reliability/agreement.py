"""Agreement of radiomic features across perturbations, negative controls and repeat scans
(the list of reliable features drawn from it: :mod:`radflow.reliability.reliable`).

Input: a long feature table, the layout of ``merge/features.parquet`` (``image_type``,
``feature_class``, ``feature``, ``value`` and the key columns) plus a ``source`` column saying
which measurement of the subject a row is:

``original``
    The features of the unchanged image (as in ``merge/features.parquet``).
``perturbation:<chain>:<i>``
    The ``i``-th random perturbation (0, 1, ...) of the image by the perturbation chain
    ``<chain>`` (e.g. ``noise-rotation``; it may hold ``:``, the index is after the last one).
    Subject: the pair (:attr:`AgreementDesign.subject_columns`, default ``pair_id``).
``control:<kind>:<region>``
    A negative control of the pair (e.g. ``control:shuffled:roi``), compared with the pair's
    ``original`` row.
``retest:<timepoint>``
    A repeat scan of a subject (:func:`label_retest` gives these from a ``timepoint`` /
    ``repeat`` column). Subject: :attr:`AgreementDesign.retest_subject_columns`
    (default ``case_id`` + ``roi``), since each scan is its own pair.

Which statistic for which design, and why (README, "Agreement statistics and the reliable list"):

- perturbation chain → ICC(1,1), one-way random effects (Zwanenburg et al. 2019, Sci Rep
  9:614): the perturbations of one subject are independent random draws, and perturbation ``i``
  of one subject has nothing in common with perturbation ``i`` of another, so there is no rater
  factor to model. The original image is not one of the raters (it is not a random draw).
- test–retest → ICC(2,1), two-way random effects, absolute agreement (the rule's default): the
  sessions are the same for every subject and stand for any repeat scan, and a systematic shift
  between sessions (drift, a changed protocol) must count against reliability; ICC(3,1)
  (two-way mixed, consistency: the session offset forgiven) and Lin's CCC (with exactly two
  sessions) are reported beside it.
- negative control → ICC(3,1) and CCC between the original and the control: a high value means
  the feature ranks subjects the same when the texture is destroyed, i.e. it does not measure
  texture. This is a warning, not reliability: controls are not judged by the reliable-list rule
  unless :attr:`radflow.reliability.reliable.ReliableRule.control_max` is set.

All statistics and intervals: :mod:`radflow.reliability.stats` (95 % intervals by default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from radflow.errors import AgreementError
from radflow.records.agreement import AGREEMENT_COLUMNS
from radflow.reliability import stats

#: Source kinds, in the order of the agreement table.
SOURCE_KINDS: tuple[str, ...] = ("original", "perturbation", "retest", "control")
#: Statistics computed per kind (CCC for test–retest only with exactly two timepoints).
STATISTICS: dict[str, tuple[str, ...]] = {
    "perturbation": ("ICC(1,1)",),
    "retest": ("ICC(2,1)", "ICC(3,1)", "CCC"),
    "control": ("ICC(3,1)", "CCC"),
}
#: The ICC of each design (``ReliableRule.statistic == "icc"``).
PRIMARY_ICC: dict[str, str] = {"perturbation": "ICC(1,1)", "retest": "ICC(2,1)",
                               "control": "ICC(3,1)"}
STATISTIC_ORDER: tuple[str, ...] = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "CCC")
FEATURE_COLUMNS: tuple[str, ...] = ("source", "image_type", "feature_class", "feature", "value")


@dataclass(frozen=True)
class SourceLabel:
    """A parsed ``source`` value.

    Attributes
    ----------
    kind
        One of :data:`SOURCE_KINDS`.
    group
        The agreement table's ``source``: ``perturbation:<chain>``, ``retest``,
        ``control:<kind>:<region>`` (``original`` for the original).
    rater
        The rater inside the group: the perturbation index, the timepoint, ``control``.
    """

    kind: str
    group: str
    rater: str


def parse_source(text: str) -> SourceLabel:
    """The :class:`SourceLabel` of a ``source`` value; anything else is an AgreementError."""
    kind, _, rest = str(text).partition(":")
    if kind == "original" and not rest:
        return SourceLabel("original", "original", "original")
    if kind == "perturbation":
        chain, _, index = rest.rpartition(":")
        if chain and index:
            return SourceLabel(kind, f"perturbation:{chain}", index)
    elif kind == "retest" and rest:
        return SourceLabel(kind, "retest", rest)
    elif kind == "control":
        parts = rest.split(":")
        if len(parts) == 2 and all(parts):
            return SourceLabel(kind, f"control:{rest}", "control")
    raise AgreementError(f"source {text!r}: expected original, perturbation:<chain>:<i>, "
                         "control:<kind>:<region> or retest:<timepoint>", reason="bad-source")


@dataclass(frozen=True)
class AgreementDesign:
    """How rows become subjects and raters.

    Attributes
    ----------
    subject_columns
        Columns naming a subject for perturbations and controls (default: the pair).
    retest_subject_columns
        Columns naming a subject across repeat scans (default: ``case_id`` + ``roi``).
    confidence
        Level of the two-sided intervals.
    """

    subject_columns: tuple[str, ...] = ("pair_id",)
    retest_subject_columns: tuple[str, ...] = ("case_id", "roi")
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not 0.0 < self.confidence < 1.0:
            raise AgreementError(f"confidence must be in (0, 1), got {self.confidence}",
                                 reason="bad-confidence")


def full_feature_names(features: pd.DataFrame) -> pd.Series:
    """``<image_type>_<feature_class>_<feature>`` of every row (the wide tables' column names)."""
    return (features["image_type"].astype(str) + "_" + features["feature_class"].astype(str)
            + "_" + features["feature"].astype(str))


def label_retest(features: pd.DataFrame, timepoint_column: str = "timepoint") -> pd.DataFrame:
    """The rows of repeat scans, with ``source`` ``retest:<timepoint>``.

    Parameters
    ----------
    features
        A long feature table with a ``timepoint_column`` (from the cohort sheet's ``repeat`` /
        ``timepoint`` column); rows with an empty or missing timepoint are left out.
    """
    if timepoint_column not in features.columns:
        raise AgreementError(f"feature table has no column {timepoint_column!r} to pair repeat "
                             "scans", reason="no-timepoint")
    tp = features[timepoint_column].astype("string").str.strip()
    keep = tp.notna() & (tp != "")
    out = features.loc[keep].copy()
    out["source"] = "retest:" + tp[keep].astype(str)
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class RaterMatrix:
    """The subject × rater ratings of many features.

    Attributes
    ----------
    features
        Full feature names, one per first axis entry (order of first appearance).
    raters
        Rater labels (last axis), sorted.
    ratings : (F, n, k) float64
        NaN where a subject lacks that rating.
    dropped : (F,) int64
        Subjects with some but not every rating of the feature (left out of its statistics).
    """

    features: tuple[str, ...]
    raters: tuple[str, ...]
    ratings: NDArray[np.float64]
    dropped: NDArray[np.int64]


FEATURE_KEYS: tuple[str, ...] = ("image_type", "feature_class", "feature")


def _factorize(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[NDArray[np.int64],
                                                                    NDArray[np.int64]]:
    """Codes of the distinct combinations of ``columns`` (order of first appearance) and the
    row of each combination's first appearance; vectorised (a long table has millions of rows).
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AgreementError(f"feature table lacks column(s) {', '.join(missing)}",
                             reason="missing-column")
    combined = np.zeros(len(frame), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=False)
        combined, _ = pd.factorize(combined * len(uniques) + codes)
    first = pd.Series(combined).drop_duplicates().index.to_numpy()
    return combined.astype(np.int64), first.astype(np.int64)


def _fill(codes: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]],
          values: NDArray[np.float64], shape: tuple[int, int, int],
          duplicate: Callable[[int], str]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The (F, n, k) ratings array and the per-feature count of incomplete subjects.

    ``duplicate(row)`` names the row of a second rating of one cell for the error message.
    """
    f, s, r = codes
    cell = (f * shape[1] + s) * shape[2] + r
    counts = np.bincount(cell, minlength=int(np.prod(shape)))
    if len(cell) and counts.max() > 1:
        raise AgreementError(duplicate(int(np.flatnonzero(counts[cell] > 1)[0])),
                             reason="duplicate-rating")
    ratings = np.full(shape, np.nan)
    ratings[f, s, r] = values
    seen = ~np.isnan(ratings)
    dropped = (seen.any(axis=2) & ~seen.all(axis=2)).sum(axis=1)
    return ratings, dropped.astype(np.int64)


def _duplicate_message(row_at: Callable[[int], pd.Series], subject_columns: Sequence[str],
                       rater: Callable[[int], str]) -> Callable[[int], str]:
    def message(i: int) -> str:
        row = row_at(i)
        name = "_".join(str(row[c]) for c in FEATURE_KEYS)
        subject = "/".join(str(row[c]) for c in subject_columns)
        return f"feature {name}: two values for subject {subject} from rater {rater(i)}"
    return message


def rater_matrix(rows: pd.DataFrame, subject_columns: Sequence[str],
                 rater_column: str) -> RaterMatrix:
    """The subject × rater matrix of every feature of a long table (the test–retest pairing).

    Parameters
    ----------
    rows
        Long feature rows (``image_type``, ``feature_class``, ``feature``, ``value``) with
        ``subject_columns`` (e.g. ``case_id`` + ``roi``) and ``rater_column`` (e.g.
        ``timepoint``).

    Returns
    -------
    RaterMatrix
        A subject missing a rating of a feature stays in the array (NaN) and is counted in
        ``dropped``: the statistics leave it out of that feature only.

    Raises
    ------
    AgreementError
        Reason ``duplicate-rating``: a subject has two values of one feature from one rater;
        ``missing-column``.
    """
    f_codes, f_first = _factorize(rows, FEATURE_KEYS)
    s_codes, s_first = _factorize(rows, subject_columns)
    if rater_column not in rows.columns:
        raise AgreementError(f"feature table lacks column {rater_column}",
                             reason="missing-column")
    rater_text = rows[rater_column].astype(str).to_numpy()
    raters, r_codes = np.unique(rater_text, return_inverse=True)
    shape = (len(f_first), len(s_first), len(raters))
    ratings, dropped = _fill((f_codes, s_codes, r_codes.astype(np.int64)),
                             rows["value"].to_numpy(dtype=np.float64), shape,
                             _duplicate_message(lambda i: rows.iloc[i], subject_columns,
                                                lambda i: rater_text[i]))
    names = tuple(full_feature_names(rows.iloc[f_first]))
    return RaterMatrix(names, tuple(str(r) for r in raters), ratings, dropped)


def _notes(estimate: stats.Estimate, dropped: NDArray[np.int64]) -> list[str]:
    notes = []
    for flags, d in zip(estimate.flags.tolist(), dropped.tolist(), strict=True):
        parts = []
        if flags & stats.CONSTANT:
            parts.append("constant feature (zero variance)")
        elif flags & stats.TOO_FEW:
            parts.append("fewer than 2 complete subjects")
        elif flags & stats.NO_INTERVAL:
            parts.append("interval undefined")
        if d:
            parts.append(f"{d} subject(s) without every rating left out")
        notes.append("; ".join(parts))
    return notes


def _group_table(matrix: RaterMatrix, group: str, kind: str,
                 confidence: float) -> list[pd.DataFrame]:
    k = len(matrix.raters)
    if k < 2:
        raise AgreementError(f"source {group}: one rater ({', '.join(matrix.raters)}); agreement "
                             "needs at least two", reason="one-rater")
    tables = []
    for statistic in STATISTICS[kind]:
        if statistic == "CCC":
            if k != 2:
                continue  # Lin's CCC compares two raters
            est = stats.ccc(matrix.ratings[..., 0], matrix.ratings[..., 1], confidence)
        else:
            est = stats.icc(matrix.ratings, statistic, confidence)
        tables.append(pd.DataFrame({
            "feature": list(matrix.features), "source": group, "statistic": statistic,
            "value": est.value, "ci_low": est.ci_low, "ci_high": est.ci_high,
            "n_subjects": est.n_subjects, "n_raters": k, "note": _notes(est, matrix.dropped)}))
    return tables


def _group_matrix(features: pd.DataFrame, take: NDArray[np.bool_],
                  f_codes: NDArray[np.int64], names: Sequence[str],
                  rater_of_row: NDArray[np.int64], raters: Sequence[str],
                  subject_columns: Sequence[str]) -> RaterMatrix:
    """The :class:`RaterMatrix` of the rows ``take`` of ``features`` (global feature codes)."""
    missing = [c for c in subject_columns if c not in features.columns]
    if missing:
        raise AgreementError(f"feature table lacks subject column(s) {', '.join(missing)}",
                             reason="missing-column")
    rows = np.flatnonzero(take)
    present, f_local = np.unique(f_codes[rows], return_inverse=True)
    s_codes, s_first = _factorize(features[list(subject_columns)].iloc[rows], subject_columns)
    r_codes = rater_of_row[rows]
    shape = (len(present), len(s_first), len(raters))
    values = features["value"].to_numpy(dtype=np.float64)[rows]
    ratings, dropped = _fill(
        (f_local.astype(np.int64), s_codes, r_codes), values, shape,
        _duplicate_message(lambda i: features.iloc[rows[i]], subject_columns,
                           lambda i: raters[r_codes[i]]))
    return RaterMatrix(tuple(names[i] for i in present), tuple(raters), ratings, dropped)


def agreement_table(features: pd.DataFrame,
                    design: AgreementDesign | None = None) -> pd.DataFrame:
    """Agreement statistics of every feature for every perturbation chain, control and the
    repeat scans of ``features``.

    Parameters
    ----------
    features
        Long feature table with :data:`FEATURE_COLUMNS` and the subject columns of ``design``
        (see the module docstring for ``source``).
    design
        Subjects and interval level (default :class:`AgreementDesign`).

    Returns
    -------
    pandas.DataFrame
        :data:`radflow.records.agreement.AGREEMENT_COLUMNS`; one row per feature × source ×
        statistic, sorted by feature (first appearance in ``features``), source kind
        (perturbation, retest, control), source name and statistic. Undefined values are NaN
        with a ``note`` (constant feature, too few subjects); never an exception.

    Raises
    ------
    AgreementError
        An unknown ``source`` (``bad-source``), a missing column, a second value of one
        feature for one subject and rater (``duplicate-rating``), a control without
        ``original`` rows (``no-original``), a source with one rater (``one-rater``).
    """
    design = design or AgreementDesign()
    missing = [c for c in FEATURE_COLUMNS if c not in features.columns]
    if missing:
        raise AgreementError(f"feature table lacks column(s) {', '.join(missing)}",
                             reason="missing-column")
    f_codes, f_first = _factorize(features, FEATURE_KEYS)
    names = list(full_feature_names(features.iloc[f_first]))
    src_codes, src_uniques = pd.factorize(features["source"].astype(str))
    labels = [parse_source(s) for s in src_uniques]
    groups = sorted({(SOURCE_KINDS.index(v.kind), v.group, v.kind) for v in labels
                     if v.kind != "original"})
    is_original = np.isin(src_codes, [i for i, v in enumerate(labels) if v.kind == "original"])
    parts: list[pd.DataFrame] = []
    for _, group, kind in groups:
        members = [i for i, v in enumerate(labels) if v.group == group]
        take = np.isin(src_codes, members)
        subjects = design.retest_subject_columns if kind == "retest" else design.subject_columns
        raters = sorted({labels[i].rater for i in members})
        if kind == "control":
            if not is_original.any():
                raise AgreementError(f"source {group}: no 'original' rows to compare the control "
                                     "with", reason="no-original")
            take |= is_original & np.isin(f_codes, f_codes[take])
            raters = ["control", "original"]
        rater_index = {r: j for j, r in enumerate(raters)}
        lookup = np.array([rater_index.get(v.rater, -1) if v.group == group or v.kind ==
                           "original" else -1 for v in labels], dtype=np.int64)
        matrix = _group_matrix(features, take, f_codes, names, lookup[src_codes], raters,
                               subjects)
        parts.extend(_group_table(matrix, group, kind, design.confidence))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _DTYPES.items()})
    out = pd.concat(parts, ignore_index=True)
    order = {name: i for i, name in enumerate(names)}
    group_rank = {g: i for i, (_, g, _) in enumerate(groups)}
    out = out.assign(_f=out["feature"].map(order), _g=out["source"].map(group_rank),
                     _s=out["statistic"].map(STATISTIC_ORDER.index))
    out = out.sort_values(["_f", "_g", "_s"], kind="stable")[list(AGREEMENT_COLUMNS)]
    return out.astype(_DTYPES).reset_index(drop=True)


_DTYPES = {"feature": "str", "source": "str", "statistic": "str", "value": "float64",
           "ci_low": "float64", "ci_high": "float64", "n_subjects": "int64",
           "n_raters": "int64", "note": "str"}


__all__ = ["FEATURE_COLUMNS", "FEATURE_KEYS", "PRIMARY_ICC", "SOURCE_KINDS", "STATISTICS",
           "AgreementDesign", "RaterMatrix", "SourceLabel", "agreement_table",
           "full_feature_names", "label_retest", "parse_source", "rater_matrix"]
