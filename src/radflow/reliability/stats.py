"""Agreement statistics over many features at once: ICC(1,1), ICC(2,1), ICC(3,1) and Lin's CCC.

Every function takes the ratings of all features as one array and returns one value per feature,
so a cohort's 1,000–2,000 features cost one numpy pass instead of one ANOVA call each
(``pingouin.intraclass_corr`` takes ~12 ms a call: ~4 min for 2,000 features × 10 sources;
this module takes milliseconds). ``pingouin`` stays the reference the tests compare with.

ICC forms (Shrout & Fleiss 1979; McGraw & Wong 1996 names in brackets), with ``MSR`` the
between-subject, ``MSW`` the within-subject, ``MSC`` the between-rater and ``MSE`` the residual
mean square of the subject × rater ANOVA, ``n`` subjects and ``k`` raters:

- ``ICC(1,1)`` one-way random effects, single rating: ``(MSR − MSW) / (MSR + (k−1) MSW)``;
- ``ICC(2,1)`` two-way random effects, absolute agreement [ICC(A,1)]:
  ``(MSR − MSE) / (MSR + (k−1) MSE + k (MSC − MSE) / n)``;
- ``ICC(3,1)`` two-way mixed effects, consistency [ICC(C,1)]: ``(MSR − MSE) / (MSR + (k−1) MSE)``.

Confidence intervals follow McGraw & Wong (1996), as pingouin 0.7 and R's ``psych::ICC`` do:
exact F-distribution bounds for ICC(1,1) and ICC(3,1), Satterthwaite's approximate degrees of
freedom for ICC(2,1). Lin's concordance correlation coefficient (Lin 1989) uses the moments with
divisor ``n``; its interval is the z-transform (``atanh``) interval with the asymptotic variance
of Lin (1989) as corrected by Lin (2000, Biometrics 56:324–325), as R's ``epiR::epi.ccc``.

A subject missing any rating of a feature is left out of that feature (listwise deletion, as
pingouin's ``nan_policy="omit"``). A feature whose values are all equal has no variance to share
out: its estimate and interval are NaN (:data:`CONSTANT`), never a number made of rounding noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats as sps

#: ICC forms computed by :func:`icc`.
ICC_FORMS: tuple[str, ...] = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)")
#: Flag of :attr:`Estimate.flags`: every value of the feature is the same.
CONSTANT = 1
#: Flag: fewer than two complete subjects (or fewer than three for the CCC interval).
TOO_FEW = 2
#: Flag: the interval is undefined (e.g. CCC of a feature constant under one rater only).
NO_INTERVAL = 4

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Estimate:
    """One statistic for ``F`` features.

    Attributes
    ----------
    value, ci_low, ci_high : (F,) float64
        Estimate and confidence bounds (NaN where undefined).
    n_subjects : (F,) int64
        Complete subjects used.
    flags : (F,) int64
        Bitwise OR of :data:`CONSTANT`, :data:`TOO_FEW`, :data:`NO_INTERVAL`.
    """

    value: Array
    ci_low: Array
    ci_high: Array
    n_subjects: NDArray[np.int64]
    flags: NDArray[np.int64]


@dataclass(frozen=True)
class MeanSquares:
    """Mean squares of the subject × rater ANOVA of ``F`` features (each ``(F,)``)."""

    between_subjects: Array  # MSR
    within_subjects: Array  # MSW
    between_raters: Array  # MSC
    residual: Array  # MSE
    n: Array  # complete subjects (float)
    k: int
    constant: NDArray[np.bool_]


def _complete(ratings: Array) -> tuple[Array, NDArray[np.bool_], Array]:
    """Ratings with incomplete subjects zeroed, the mask of complete subjects, and their count."""
    x = np.asarray(ratings, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"ratings must be (features, subjects, raters), got shape {x.shape}")
    complete: NDArray[np.bool_] = np.asarray(~np.isnan(x).any(axis=2))
    n: Array = complete.sum(axis=1).astype(np.float64)
    return np.where(complete[..., None], x, 0.0), complete, n


def _is_constant(x: Array, complete: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """True where all complete ratings of a feature are exactly equal (or there are none)."""
    mask = complete[..., None]
    high = np.where(mask, x, -np.inf).max(axis=(1, 2))
    low = np.where(mask, x, np.inf).min(axis=(1, 2))
    return np.asarray(~(high > low))


def mean_squares(ratings: Array) -> MeanSquares:
    """The two-way ANOVA mean squares of ``ratings``.

    Parameters
    ----------
    ratings : (F, n, k) array_like
        ``F`` features, ``n`` subjects, ``k`` raters; NaN = missing (the subject is left out of
        that feature).
    """
    x, complete, n = _complete(ratings)
    k = x.shape[2]
    with np.errstate(invalid="ignore", divide="ignore"):
        grand = x.sum(axis=(1, 2)) / (n * k)
        rows = x.sum(axis=2) / k
        cols = x.sum(axis=1) / n[:, None]
        ssr = k * (np.where(complete, rows - grand[:, None], 0.0) ** 2).sum(axis=1)
        ssc = n * ((cols - grand[:, None]) ** 2).sum(axis=1)
        ssw = (np.where(complete[..., None], x - rows[..., None], 0.0) ** 2).sum(axis=(1, 2))
        resid = x - rows[..., None] - cols[:, None, :] + grand[:, None, None]
        sse = (np.where(complete[..., None], resid, 0.0) ** 2).sum(axis=(1, 2))
        return MeanSquares(between_subjects=ssr / (n - 1), within_subjects=ssw / (n * (k - 1)),
                           between_raters=ssc / (k - 1), residual=sse / ((n - 1) * (k - 1)),
                           n=n, k=k, constant=_is_constant(x, complete))


def _f_bound(f_ratio: Array, k: int) -> Array:
    """``(F − 1) / (F + k − 1)``, written so that an infinite F (no error variance) gives 1."""
    return np.asarray(1.0 - k / (f_ratio + k - 1.0))


def icc(ratings: Array, form: str, confidence: float = 0.95) -> Estimate:
    """The intraclass correlation ``form`` (one of :data:`ICC_FORMS`) of each feature.

    Parameters
    ----------
    ratings : (F, n, k) array_like
        ``F`` features, ``n`` subjects, ``k >= 2`` raters; NaN = missing.
    form
        ``"ICC(1,1)"``, ``"ICC(2,1)"`` or ``"ICC(3,1)"``.
    confidence
        Level of the two-sided interval.

    Returns
    -------
    Estimate
        Equal to ``pingouin.intraclass_corr`` (rows ``ICC(1,1)``, ``ICC(A,1)``, ``ICC(C,1)``,
        unrounded) on complete data.
    """
    if form not in ICC_FORMS:
        raise ValueError(f"unknown ICC form {form!r}; expected one of {', '.join(ICC_FORMS)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    ms = mean_squares(ratings)
    n, k, q = ms.n, ms.k, 1.0 - (1.0 - confidence) / 2.0
    msr, msw, msc, mse = ms.between_subjects, ms.within_subjects, ms.between_raters, ms.residual
    df1 = n - 1
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if form == "ICC(1,1)":
            value = (msr - msw) / (msr + (k - 1) * msw)
            f_obs, df2 = msr / msw, n * (k - 1)
            low = _f_bound(f_obs / sps.f.ppf(q, df1, df2), k)
            high = _f_bound(f_obs * sps.f.ppf(q, df2, df1), k)
        elif form == "ICC(3,1)":
            value = (msr - mse) / (msr + (k - 1) * mse)
            f_obs, df2 = msr / mse, df1 * (k - 1)
            low = _f_bound(f_obs / sps.f.ppf(q, df1, df2), k)
            high = _f_bound(f_obs * sps.f.ppf(q, df2, df1), k)
        else:
            value = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
            low, high = _icc2_interval(ms, value, q)
    too_few = (n < 2) | (k < 2)
    flags = (np.where(ms.constant, CONSTANT, 0) | np.where(too_few, TOO_FEW, 0)
             | np.where(~np.isfinite(low) | ~np.isfinite(high), NO_INTERVAL, 0))
    undefined = (flags & (CONSTANT | TOO_FEW)) > 0
    no_ci = flags > 0
    return Estimate(value=np.where(undefined, np.nan, value),
                    ci_low=np.where(no_ci, np.nan, low), ci_high=np.where(no_ci, np.nan, high),
                    n_subjects=n.astype(np.int64), flags=flags.astype(np.int64))


def _icc2_interval(ms: MeanSquares, icc2: Array, q: float) -> tuple[Array, Array]:
    """McGraw & Wong (1996) interval of ICC(A,1), Satterthwaite degrees of freedom."""
    n, k = ms.n, ms.k
    msr, msc, mse = ms.between_subjects, ms.between_raters, ms.residual
    df1, df2 = n - 1, (n - 1) * (k - 1)
    fj = msc / mse
    a = n * (1 + (k - 1) * icc2) - k * icc2
    v = df2 * (k * icc2 * fj + a) ** 2 / (df1 * k**2 * icc2**2 * fj**2 + a**2)
    v = np.where(np.isinf(fj), df2 / df1, v)  # no residual variance: the limit of v as MSE -> 0
    # nor any rater variance (every subject rated identically, e.g. a shape feature of one mask
    # at both sessions): the bounds below are 1 for any finite v; take the MSC -> 0 limit, df2
    v = np.where((msc == 0) & (mse == 0), df2, v)
    f_upper = sps.f.ppf(q, df1, v)
    f_lower = sps.f.ppf(q, v, df1)
    spread = k * msc + (k * n - k - n) * mse
    low = n * (msr - f_upper * mse) / (f_upper * spread + n * msr)
    high = n * (f_lower * msr - mse) / (spread + n * f_lower * msr)
    return np.asarray(low), np.asarray(high)


def ccc(x: Array, y: Array, confidence: float = 0.95) -> Estimate:
    """Lin's concordance correlation coefficient of each feature, with its z-transform interval.

    ``ρc = 2 s_xy / (s_x² + s_y² + (x̄ − ȳ)²)``, moments with divisor ``n`` (Lin 1989).

    Parameters
    ----------
    x, y : (F, n) array_like
        Two raters' values of ``F`` features for ``n`` subjects; NaN = missing (the subject is
        left out of that feature).
    confidence
        Level of the two-sided interval: ``tanh(atanh ρc ± z σ)`` with ``σ`` the asymptotic
        standard deviation of ``atanh ρc`` (Lin 1989; corrected, Lin 2000), over ``n − 2``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    ratings = np.stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)], axis=2)
    values, complete, n = _complete(ratings)
    constant = _is_constant(values, complete)
    z = sps.norm.ppf(1.0 - (1.0 - confidence) / 2.0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        means = values.sum(axis=1) / n[:, None]
        dev = np.where(complete[..., None], values - means[:, None, :], 0.0)
        var_x, var_y = ((dev**2).sum(axis=1) / n[:, None]).T
        cov = (dev[..., 0] * dev[..., 1]).sum(axis=1) / n
        shift = means[:, 0] - means[:, 1]
        # |rho| <= 1; rounding can give 1 + 2e-16 for two raters equal but for summation order
        rho = np.clip(2.0 * cov / (var_x + var_y + shift**2), -1.0, 1.0)
        r = cov / np.sqrt(var_x * var_y)
        u = -shift / (var_x * var_y) ** 0.25
        var_p = ((1 - r**2) * rho**2 * (1 - rho**2) / r**2 + 2 * rho**3 * (1 - rho) * u**2 / r
                 - 0.5 * rho**4 * u**4 / r**2) / (n - 2)
        sd_t = np.sqrt(var_p) / (1 - rho**2)
        t = np.arctanh(rho)
        low, high = np.tanh(t - z * sd_t), np.tanh(t + z * sd_t)
    perfect = rho == 1.0
    low, high = np.where(perfect, 1.0, low), np.where(perfect, 1.0, high)
    flags = (np.where(constant, CONSTANT, 0) | np.where(n < 2, TOO_FEW, 0)
             | np.where((n < 3) | ~np.isfinite(low) | ~np.isfinite(high), NO_INTERVAL, 0))
    undefined = (flags & (CONSTANT | TOO_FEW)) > 0
    no_ci = flags > 0
    return Estimate(value=np.where(undefined, np.nan, rho),
                    ci_low=np.where(no_ci, np.nan, low), ci_high=np.where(no_ci, np.nan, high),
                    n_subjects=n.astype(np.int64), flags=flags.astype(np.int64))


__all__ = ["CONSTANT", "ICC_FORMS", "NO_INTERVAL", "TOO_FEW", "Estimate", "MeanSquares", "ccc",
           "icc", "mean_squares"]
