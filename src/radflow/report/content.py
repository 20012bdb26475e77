"""The report's content from the stages' files: status counts, analysis sections, provenance.

Everything here reads tables the earlier stages wrote (never another stage's code) and returns
plain records for the page (:mod:`radflow.report.page`) and the plots it needs as PNG bytes
(:mod:`radflow.report.plots`). Only keys, statuses, feature names, statistics and software
versions reach the page: no clinical value but the outcomes the analysis used, in plots.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from radflow.records import read_table
from radflow.report import plots
from radflow.report.settings import ReportSettings

logger = logging.getLogger(__name__)

#: Config keys whose values are paths on the user's machine: the page shows the file name only
#: (a folder name can carry a name; the key file's location is nobody's business).
PATH_KEYS = ("dicom_root", "sheet", "clinical", "clinical_dictionary", "key_file", "results_dir",
             "private_dir")
PROVENANCE_COLUMNS = ("radflow_version", "pyradiomics_dist", "pyradiomics_version",
                      "simpleitk_version", "numpy_version", "params_set", "params_hash",
                      "normalisation")
#: The statistic of each outcome type that the forest and volcano plots show.
MAIN_STATISTIC = {"binary": "auc", "time-to-event": "cox_hr", "continuous": "spearman"}


@dataclass(frozen=True)
class Plot:
    """A plot of the page: its file inside the report folder, caption, and PNG bytes."""

    file: str
    caption: str
    png: bytes = field(repr=False)


@dataclass(frozen=True)
class TableBlock:
    """A table of the page: a title, column names, rows of text."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def table_block(title: str, frame: pd.DataFrame) -> TableBlock:
    """A :class:`TableBlock` of ``frame`` (numbers to 4 significant digits)."""
    return TableBlock(title, tuple(str(c) for c in frame.columns),
                      tuple(tuple(_fmt(v) for v in row) for row in frame.itertuples(index=False)))


def status_blocks(run_summary: str, join_report: str) -> list[TableBlock]:
    """Every status of every stage with its count (``qc/run_summary.tsv``), and the clinical
    join report's counts by kind."""
    summary = read_table(run_summary)
    kind_reason = summary["status"].str.partition(":")
    table = pd.DataFrame({"stage": summary["stage"], "status": kind_reason[0],
                          "reason": kind_reason[2], "count": summary["count"].astype(int)})
    blocks = [table_block("Status of every item, by stage (qc/run_summary.tsv)", table)]
    if join_report:
        join = read_table(join_report)
        if len(join):
            counts = join.groupby("kind").size().rename("count").reset_index()
            blocks.append(table_block("Clinical join (merge/clinical_join_report.tsv)", counts))
    return blocks


def provenance_blocks(dataset: pd.DataFrame, config: Mapping[str, Any],
                      versions: Mapping[str, str]) -> tuple[list[TableBlock], str]:
    """Software versions and parameter hashes of the features (with the number of pairs of each
    value), the report's own versions, and the run's configuration as YAML (paths as file
    names)."""
    rows = [(name, value, "report") for name, value in versions.items()]
    for column in PROVENANCE_COLUMNS:
        if column in dataset.columns:
            counts = dataset[column].astype(str).value_counts().sort_index()
            rows += [(column, value, f"{n} pairs") for value, n in counts.items()]
    shown = {k: (Path(str(v)).name if k in PATH_KEYS and v else v) for k, v in config.items()}
    text = yaml.safe_dump(shown, sort_keys=True, allow_unicode=True)
    return [TableBlock("Software and parameters", ("item", "value", "where"), tuple(rows))], text


@dataclass
class AnalysisSection:
    """The analysis part of the page (empty when the analysis did not run)."""

    tables: list[TableBlock] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _analysis_rows(dataset: pd.DataFrame, model_ready: pd.DataFrame | None) -> pd.DataFrame:
    """The rows the analysis used (the export's pairs), with the export's outcome columns."""
    if model_ready is None or not len(model_ready):
        return dataset
    outcome_cols = [c for c in model_ready.columns if c not in dataset.columns or c == "pair_id"]
    rows = dataset[dataset["pair_id"].isin(model_ready["pair_id"])]
    return rows.merge(model_ready[outcome_cols], on="pair_id", how="left")


def analysis_section(dataset: pd.DataFrame, features: Sequence[str], clusters: pd.DataFrame,
                     associations: pd.DataFrame, model_ready: pd.DataFrame | None,
                     baseline: pd.DataFrame, settings: ReportSettings) -> AnalysisSection:
    """Distributions, the correlation heatmap, association tables and plots, Kaplan-Meier
    curves and the baseline from the analysis tables."""
    out = AnalysisSection()
    rows = _analysis_rows(dataset, model_ready)
    outcomes = associations.drop_duplicates("outcome")[["outcome", "outcome_type"]]
    binary = [o for o, t in outcomes.itertuples(index=False) if t == "binary"]
    groups = (pd.to_numeric(rows[binary[0]], errors="coerce")
              if binary and binary[0] in rows.columns else None)
    # distributions: the strongest associations, else the cluster representatives
    ranked = associations.sort_values(["rank"], kind="stable")["feature"].drop_duplicates()
    chosen = [f for f in ranked if f in rows.columns] or \
        [f for f in clusters.loc[clusters["representative"].astype(str) == "True", "feature"]
         if f in rows.columns] or [f for f in features if f in rows.columns]
    chosen = chosen[:settings.distribution_features]
    if chosen:
        out.plots.append(Plot("assets/distributions.png",
                              f"Distributions of {len(chosen)} features over the {len(rows)} "
                              "analysed rows" + (f", by {binary[0]}" if groups is not None
                                                 else ""),
                              plots.distributions_png(rows, chosen, groups,
                                                      binary[0] if binary else "")))
    _heatmap(out, rows, clusters, settings)
    for outcome, otype in outcomes.itertuples(index=False):
        _outcome_parts(out, rows, associations[associations["outcome"] == outcome], outcome,
                       otype, settings)
    if len(baseline):
        out.tables.append(table_block("Cross-validated baseline (analysis/baseline.tsv)",
                                      baseline))
    return out


def _heatmap(out: AnalysisSection, rows: pd.DataFrame, clusters: pd.DataFrame,
             settings: ReportSettings) -> None:
    analysed = clusters[clusters["cluster"].astype(str) != ""].copy()
    analysed = analysed[analysed["feature"].isin(rows.columns)]
    if len(analysed) < 2:
        out.notes.append("No correlation heatmap: fewer than two analysed features.")
        return
    what = "every analysed feature"
    if len(analysed) > settings.heatmap_max_features:
        analysed = analysed[analysed["representative"].astype(str) == "True"]
        what = "the cluster representatives"
    analysed = analysed.assign(_c=pd.to_numeric(analysed["cluster"])).sort_values(
        ["_c", "feature"], kind="stable").head(settings.heatmap_max_features)
    names = list(analysed["feature"])
    rho = rows[names].apply(pd.to_numeric, errors="coerce").corr(method="spearman")
    out.plots.append(Plot("assets/correlation.png",
                          f"Spearman correlation of {what} ({len(names)}), in redundancy-cluster "
                          "order; boxes: clusters of two or more (analysis/redundancy_clusters"
                          ".tsv)", plots.heatmap_png(rho, analysed["_c"])))


def _outcome_parts(out: AnalysisSection, rows: pd.DataFrame, assoc: pd.DataFrame, outcome: str,
                   otype: str, settings: ReportSettings) -> None:
    top = settings.top_associations
    for statistic, part in assoc.groupby("statistic", sort=False):
        part = part.sort_values("rank", kind="stable")
        shown = part[["rank", "feature", "estimate", "ci_low", "ci_high", "p", "q", "n",
                      "n_events", "note"]].head(top)
        out.tables.append(table_block(f"{outcome} ({otype}): {statistic}, top {len(shown)} of "
                                      f"{len(part)}", shown))
    main = assoc[assoc["statistic"] == MAIN_STATISTIC.get(otype, "")].dropna(
        subset=["estimate", "ci_low", "ci_high", "p"]).sort_values("rank", kind="stable")
    slug = "".join(ch if ch.isalnum() else "-" for ch in outcome)
    if len(main):
        stat = MAIN_STATISTIC[otype]
        out.plots.append(Plot(f"assets/forest-{slug}.png",
                              f"{outcome}: {stat} with 95 % intervals, the {min(top, len(main))} "
                              "best-ranked features",
                              plots.forest_png(main.head(top), stat, f"{outcome}: {stat}")))
        out.plots.append(Plot(f"assets/volcano-{slug}.png",
                              f"{outcome}: every analysed feature's {stat} against its p; red: "
                              "Benjamini-Hochberg q < 0.05",
                              plots.volcano_png(main, stat, f"{outcome}: {stat}")))
    if otype == "time-to-event":
        _km(out, rows, assoc, outcome, slug)


def _km(out: AnalysisSection, rows: pd.DataFrame, assoc: pd.DataFrame, outcome: str,
        slug: str) -> None:
    logrank = assoc[(assoc["statistic"] == "logrank") & assoc["p"].notna()]
    time_col, event_col = f"{outcome}_time", f"{outcome}_event"
    if not len(logrank) or time_col not in rows.columns:
        out.notes.append(f"{outcome}: no Kaplan-Meier curves (no log-rank statistic).")
        return
    feature = str(logrank.sort_values("rank", kind="stable")["feature"].iloc[0])
    if feature not in rows.columns:
        return
    # one row per subject, as the log-rank test had (the export has one unless per-lesion)
    data = rows.drop_duplicates("case_id")[[feature, time_col, event_col]].apply(
        pd.to_numeric, errors="coerce").dropna()
    values = data[feature].to_numpy(float)
    high = values > np.median(values)
    out.plots.append(Plot(f"assets/km-{slug}.png",
                          f"{outcome}: Kaplan-Meier curves of the median split of the feature "
                          "ranked first by the log-rank test",
                          plots.km_png(data[time_col].to_numpy(float),
                                       data[event_col].to_numpy(int), high, feature, outcome)))


__all__ = ["PATH_KEYS", "AnalysisSection", "Plot", "TableBlock", "analysis_section",
           "provenance_blocks", "status_blocks", "table_block"]
