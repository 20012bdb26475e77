"""The report's plots, each a PNG (bytes) drawn on a matplotlib ``Figure`` (Agg, no pyplot).

- :func:`distributions_png`: histograms of a few features, split by a binary outcome's classes;
- :func:`heatmap_png`: the Spearman correlation heatmap ordered by redundancy cluster, with the
  clusters outlined;
- :func:`forest_png` and :func:`volcano_png`: one outcome's univariate statistics;
- :func:`km_png`: Kaplan-Meier curves of the two halves of a median split (statsmodels'
  ``SurvfuncRight``).

Every plot is deterministic (no random jitter; PNG metadata without the software version).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Reference line of each statistic's estimate, and whether its axis is logarithmic.
REFERENCE: dict[str, tuple[float, bool]] = {"auc": (0.5, False), "c_index": (0.5, False),
                                            "cox_hr": (1.0, True), "spearman": (0.0, False)}
GROUP_COLOURS = ("#1f77b4", "#d62728")


def _png(fig: object, dpi: int = 90) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})  # type: ignore[attr-defined]
    return buffer.getvalue()


def _short(name: str, width: int = 38) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]


def distributions_png(frame: pd.DataFrame, features: Sequence[str],
                      groups: pd.Series | None = None, group_name: str = "") -> bytes:
    """Histograms of ``features`` (columns of ``frame``), one panel each, four per row.

    ``groups``: a 0/1 series aligned with ``frame`` (a binary outcome): the classes are drawn
    over each other; rows without a class are left out of the split.
    """
    from matplotlib.figure import Figure

    cols = min(4, len(features))
    rows = math.ceil(len(features) / cols)
    fig = Figure(figsize=(3.2 * cols, 2.3 * rows), layout="constrained")
    for i, feature in enumerate(features):
        ax = fig.add_subplot(rows, cols, i + 1)
        values = pd.to_numeric(frame[feature], errors="coerce")
        edges = list(np.histogram_bin_edges(values.dropna(),
                                            bins=min(20, max(int(values.notna().sum()), 1))))
        if groups is None:
            ax.hist(values.dropna(), bins=edges, color=GROUP_COLOURS[0])
        else:
            for level, colour in zip((0, 1), GROUP_COLOURS, strict=True):
                ax.hist(values[groups == level].dropna(), bins=edges, color=colour, alpha=0.6,
                        label=f"{group_name} = {level}")
            if i == 0:
                ax.legend(fontsize=7)
        ax.set_title(_short(feature), fontsize=8)
        ax.tick_params(labelsize=7)
    return _png(fig)


def heatmap_png(rho: pd.DataFrame, clusters: pd.Series) -> bytes:
    """``rho`` (features x features, already in cluster order) with each cluster of two or more
    features outlined; ``clusters`` gives each feature's cluster number, in the same order."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    n = len(rho)
    size = min(10.0, 3.0 + n * 0.08)
    fig = Figure(figsize=(size + 1.2, size), layout="constrained")
    ax = fig.add_subplot()
    shown = ax.imshow(rho.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1,
                      interpolation="nearest" if n <= 300 else "antialiased")
    fig.colorbar(shown, ax=ax, shrink=0.8, label="Spearman rho")
    start = 0
    labels = clusters.to_numpy()
    for i in range(1, n + 1):
        if i == n or labels[i] != labels[start]:
            if i - start > 1:
                ax.add_patch(Rectangle((start - 0.5, start - 0.5), i - start, i - start,
                                       fill=False, edgecolor="black",
                                       linewidth=1.0 if n <= 300 else 0.4))
            start = i
    if n <= 40:
        names = [_short(f, 30) for f in rho.index]
        ax.set_xticks(range(n), names, rotation=90, fontsize=6)
        ax.set_yticks(range(n), names, fontsize=6)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{n} features in cluster order")
    return _png(fig)


def forest_png(rows: pd.DataFrame, statistic: str, title: str) -> bytes:
    """Estimates with their 95 % intervals (``feature``, ``estimate``, ``ci_low``, ``ci_high``
    columns), best rank at the top, and the statistic's reference line."""
    from matplotlib.figure import Figure

    ref, log = REFERENCE.get(statistic, (0.0, False))
    rows = rows.iloc[::-1]
    y = np.arange(len(rows))
    est = rows["estimate"].to_numpy(float)
    low = rows["ci_low"].to_numpy(float)
    high = rows["ci_high"].to_numpy(float)
    fig = Figure(figsize=(7.5, 1.0 + 0.28 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    ax.errorbar(est, y, xerr=np.vstack([np.abs(est - low), np.abs(high - est)]), fmt="o",
                color=GROUP_COLOURS[0], ecolor="grey", capsize=2, markersize=4)
    ax.axvline(ref, color="black", linestyle="--", linewidth=0.8)
    if log:
        ax.set_xscale("log")
    ax.set_yticks(y, [_short(f, 50) for f in rows["feature"]], fontsize=7)
    ax.set_xlabel(statistic)
    ax.set_title(title, fontsize=9)
    return _png(fig)


def volcano_png(rows: pd.DataFrame, statistic: str, title: str, q_level: float = 0.05) -> bytes:
    """Effect against -log10 p of every feature (``estimate``, ``p``, ``q`` columns); features
    with ``q`` below ``q_level`` in red. Effect: AUC - 0.5, log2 HR, or rho."""
    from matplotlib.figure import Figure

    ref, log = REFERENCE.get(statistic, (0.0, False))
    est = rows["estimate"].to_numpy(float)
    effect = np.log2(est) if log else est - ref
    p = np.clip(rows["p"].to_numpy(float), 1e-300, 1.0)
    hit = rows["q"].to_numpy(float) < q_level
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(effect[~hit], -np.log10(p[~hit]), s=8, color="grey", label=f"q >= {q_level:g}")
    ax.scatter(effect[hit], -np.log10(p[hit]), s=10, color=GROUP_COLOURS[1],
               label=f"q < {q_level:g}")
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel({"auc": "AUC - 0.5", "cox_hr": "log2 hazard ratio per SD"}.get(statistic,
                                                                                 statistic))
    ax.set_ylabel("-log10 p")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)


def km_curves(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate (statsmodels ``SurvfuncRight``) as step points: the times (0
    first) and the survival just after each."""
    from statsmodels.duration.survfunc import SurvfuncRight

    fit = SurvfuncRight(time, event)
    return (np.concatenate([[0.0], fit.surv_times]),
            np.concatenate([[1.0], fit.surv_prob]))


def km_png(time: np.ndarray, event: np.ndarray, high: np.ndarray, feature: str,
           title: str) -> bytes:
    """Kaplan-Meier curves of the rows above the feature's median (``high``) and the others,
    censored times marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for group, colour, label in ((~high, GROUP_COLOURS[0], "at or below the median"),
                                 (high, GROUP_COLOURS[1], "above the median")):
        if not group.any():
            continue
        t, s = km_curves(time[group], event[group])
        ax.step(t, s, where="post", color=colour, label=f"{label} (n={int(group.sum())})")
        censored = time[group][event[group] == 0]
        at = np.searchsorted(t, censored, side="right") - 1
        ax.plot(censored, s[at], "|", color=colour, markersize=8)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("time")
    ax.set_ylabel("survival")
    ax.set_title(f"{title}\nsplit: {_short(feature, 60)}", fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)


__all__ = ["REFERENCE", "distributions_png", "forest_png", "heatmap_png", "km_curves",
           "km_png", "volcano_png"]
