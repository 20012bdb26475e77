"""Survival statistics for the analysis: univariable Cox, Harrell's C, log-rank, penalised Cox.

The Cox models and the log-rank test are statsmodels' (``PHReg`` with Efron's tie handling, the
default of R's ``coxph`` and of lifelines; ``survdiff``). The Cox optimum is found by scipy's
trust-region Newton method on ``PHReg``'s own log-likelihood, score and Hessian, since
statsmodels' Newton steps have no step control; ``PHReg.fit`` from there gives the Wald
statistics. lifelines is not a dependency: its
releases require pandas < 3 (lifelines issue #1685), and radflow runs on pandas 3; the tests
check these numbers against lifelines' on a fixed table (``tests/test_analyse.py``).

No library radflow may depend on computes Harrell's C (scikit-survival is GPL-3), so
:func:`harrell_c` counts the pairs itself, with lifelines' ``concordance_index`` conventions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Pairs counted at a time by :func:`harrell_c` (bounds its memory to ~100 MB).
_PAIR_BLOCK = 4_000_000


def harrell_c(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's concordance index of a risk score (higher = earlier event expected).

    A pair is comparable when the subject with the shorter time had the event; at equal times
    when one had the event and the other was censored (the censored one lived longer); two
    events at the same time are not comparable. A comparable pair is concordant when the earlier
    event has the higher risk; equal risks count one half. This is lifelines'
    ``concordance_index(time, -risk, event)`` (Harrell et al. 1996, Stat Med 15:361).

    Parameters
    ----------
    time : numpy.ndarray, shape (n,)
        Event or censoring times.
    event : numpy.ndarray, shape (n,)
        1 (or True) where the event was observed.
    risk : numpy.ndarray, shape (n,)
        Risk scores.

    Returns
    -------
    float
        Between 0 and 1; NaN without comparable pairs. O(n²) pairs, counted in blocks.
    """
    time = np.asarray(time, dtype=float)
    died = np.asarray(event).astype(bool)
    risk = np.asarray(risk, dtype=float)
    first = np.flatnonzero(died)
    block = max(1, _PAIR_BLOCK // max(len(time), 1))
    pairs = concordant = 0.0
    for start in range(0, len(first), block):
        i = first[start:start + block, None]
        later = (time[None, :] > time[i]) | ((time[None, :] == time[i]) & ~died[None, :])
        pairs += later.sum()
        concordant += (later & (risk[i] > risk[None, :])).sum()
        concordant += 0.5 * (later & (risk[i] == risk[None, :])).sum()
    return float(concordant / pairs) if pairs else float("nan")


@dataclass(frozen=True)
class CoxResult:
    """A univariable Cox model of a standardised feature.

    Attributes
    ----------
    hazard_ratio, ci_low, ci_high
        Hazard ratio per standard deviation and its Wald 95 % interval.
    p
        Wald p-value of the coefficient.
    note
        ``""``, or why the numbers are missing or doubtful (no convergence).
    """

    hazard_ratio: float
    ci_low: float
    ci_high: float
    p: float
    note: str = ""


def univariable_cox(time: np.ndarray, event: np.ndarray, feature: np.ndarray) -> CoxResult:
    """Cox proportional hazards model of one feature, standardised (mean 0, SD 1, ddof 1).

    Parameters
    ----------
    time, event, feature : numpy.ndarray, shape (n,)
        Complete rows only.

    Returns
    -------
    CoxResult
        The hazard ratio per SD of the feature; NaN with a note when the feature is constant or
        there is no event.
    """
    from statsmodels.duration.hazard_regression import PHReg

    sd = float(np.std(feature, ddof=1)) if len(feature) > 1 else 0.0
    if not sd > 0 or not np.any(event):
        return CoxResult(*(float("nan"),) * 4,
                         note="constant feature" if not sd > 0 else "no event")
    z = (feature - feature.mean()) / sd
    nan = float("nan")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PHReg(time, z[:, None], status=np.asarray(event, dtype=float), ties="efron")
        # statsmodels' Newton steps have no step control and diverge on a skewed feature (a
        # raw volume: z up to 8); the trust-region optimum, polished by its Newton fit, does not
        try:
            start, converged = _cox_optimum(model, 0.0)
            fit = model.fit(start_params=start, disp=0)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            # the likelihood has no maximum (a feature that orders all events perfectly):
            # the coefficient runs off to infinity
            return CoxResult(nan, nan, nan, nan, "Cox fit did not converge (no finite optimum)")
    # statsmodels warns (ConvergenceWarning, overflow) when the fit fails; its numbers are then
    # no estimate (typically a coefficient on its way to infinity) and are not reported
    if caught or not converged:
        why = f" ({caught[0].category.__name__})" if caught else ""
        return CoxResult(nan, nan, nan, nan, f"Cox fit did not converge{why}")
    with np.errstate(over="ignore"):  # a wide interval's upper bound may be inf
        low, high = np.exp(fit.conf_int(alpha=0.05)[0])
    return CoxResult(float(np.exp(fit.params[0])), float(low), float(high),
                     float(fit.pvalues[0]))


def logrank_median_split(time: np.ndarray, event: np.ndarray, feature: np.ndarray
                         ) -> tuple[float, float, str]:
    """Log-rank test between rows above the feature's median and the others.

    Returns
    -------
    chi2, p : float
        The test statistic (1 degree of freedom) and its p-value; NaN when one group is empty
        (more than half the rows share the median value).
    note : str
        Why the test is missing, else ``""``.
    """
    from statsmodels.duration.survfunc import survdiff

    high = (feature > np.median(feature)).astype(int)
    if high.min() == high.max():
        return float("nan"), float("nan"), "median split leaves one group empty"
    if not np.any(event):
        return float("nan"), float("nan"), "no event"
    chi2, p = survdiff(time, np.asarray(event, dtype=float), high)
    return float(chi2), float(p), ""


def penalised_cox(time: np.ndarray, event: np.ndarray, x: np.ndarray, alpha: float,
                  penalty: str) -> np.ndarray:
    """Coefficients of a penalised Cox model (Efron ties) on standardised columns ``x``.

    The objective is statsmodels' elastic net: ``-loglike / n + alpha * P(beta)`` with
    ``P = |beta|^2 / 2`` (``l2``) or ``|beta|_1`` (``l1``). ``l1`` is statsmodels'
    ``fit_regularized``; ``l2`` minimises the same objective with scipy's trust-region Newton
    method on ``PHReg``'s own log-likelihood, score and Hessian (statsmodels' coordinate descent
    takes seconds for 20 columns; this takes milliseconds and reaches the same optimum, checked
    in the tests).

    Parameters
    ----------
    time, event : numpy.ndarray, shape (n,)
    x : numpy.ndarray, shape (n, p)
    alpha : float
    penalty : {"l2", "l1"}

    Returns
    -------
    numpy.ndarray, shape (p,)
    """
    from statsmodels.duration.hazard_regression import PHReg

    model = PHReg(time, x, status=np.asarray(event, dtype=float), ties="efron")
    if penalty == "l1":
        return np.asarray(model.fit_regularized(alpha=alpha, L1_wt=1.0).params, dtype=float)
    return _cox_optimum(model, alpha)[0]


def _cox_optimum(model: Any, alpha: float) -> tuple[np.ndarray, bool]:
    """Minimum of ``-loglike / n + alpha * |beta|^2 / 2`` of a statsmodels ``PHReg`` (scipy's
    trust-region Newton method on the model's log-likelihood, score and Hessian), and whether
    the optimiser converged."""
    from scipy.optimize import minimize

    n, p = model.exog.shape
    result = minimize(lambda b: -model.loglike(b) / n + alpha * b @ b / 2, np.zeros(p),
                      jac=lambda b: -model.score(b) / n + alpha * b,
                      hess=lambda b: -model.hessian(b) / n + alpha * np.eye(p),
                      method="trust-exact", options={"gtol": 1e-10})
    # near the optimum the objective's change drops below float precision and scipy stops
    # with "failure to predict improvement"; a vanishing gradient is convergence all the same
    gradient = np.max(np.abs(result.jac)) if p else 0.0
    return np.asarray(result.x, dtype=float), bool(result.success or gradient < 1e-7)


__all__ = ["CoxResult", "harrell_c", "logrank_median_split", "penalised_cox", "univariable_cox"]
