"""The ``report`` rule's entry point: read the stages' files, write the report folder
(see :mod:`radflow.report`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from radflow.errors import InputFileError
from radflow.io.atomic import write_bytes
from radflow.records import read_table
from radflow.records.tables import read_series_table
from radflow.report.content import analysis_section, provenance_blocks, status_blocks
from radflow.report.gallery import read_landmarks, read_pair_records, write_gallery
from radflow.report.page import render_page, write_page
from radflow.report.settings import ReportSettings, settings_from

logger = logging.getLogger(__name__)

NO_ANALYSIS = ("The analysis stage did not run (analyse.enabled: false): no feature "
               "distributions, clusters or associations. Turn it on to see them here.")


@dataclass(frozen=True)
class AnalysisFiles:
    """The analysis stage's tables the report reads (``analysis/...``)."""

    clusters: str
    associations: str
    model_ready: str
    baseline: str


@dataclass(frozen=True)
class ReportInputs:
    """The files the report reads (see the module docstring)."""

    pair_records: Sequence[str]
    series: str
    run_summary: str
    join_report: str
    dataset: str
    features_wide: str
    analysis: AnalysisFiles | None = None
    #: ``merge/landmarks.tsv`` (the RECIST overlays); "": no overlays
    landmarks: str = ""


def _feature_columns(dataset: pd.DataFrame, features_wide: str) -> list[str]:
    from radflow.analyse.rows import feature_columns

    return feature_columns(list(dataset.columns),
                           list(pd.read_csv(features_wide, nrows=0).columns))


def _read(path: str, what: str) -> pd.DataFrame:
    try:
        if path.endswith(".parquet"):
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t")
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{Path(path).name}: cannot read the {what} ({exc})") from exc


def run_report(inputs: ReportInputs, report_dir: str, settings: ReportSettings, *,
               cohort: str, config: Mapping[str, Any], version: str) -> Path:
    """Write the report folder (see the module docstring); return the page's path.

    Parameters
    ----------
    inputs
        The files read.
    report_dir
        ``<results>/report``.
    settings
        :class:`ReportSettings`.
    cohort, config, version
        The cohort's name, the run's configuration (provenance) and radflow's version.
    """
    import matplotlib

    records = read_pair_records(inputs.pair_records)
    series = read_series_table(inputs.series, ["series_key", "modality"])
    modality_of = dict(zip(series["series_key"], series["modality"], strict=True))
    cards = write_gallery(records, modality_of, settings, report_dir,
                          read_landmarks(inputs.landmarks))
    dataset = _read(inputs.dataset, "merged dataset")
    features = _feature_columns(dataset, inputs.features_wide)
    analysis = None
    if inputs.analysis is not None:
        files = inputs.analysis
        analysis = analysis_section(
            dataset, features, read_table(files.clusters),
            _read(files.associations, "association table"),
            _read(files.model_ready, "model-ready export"),
            _read(files.baseline, "baseline table"), settings)
        for plot in analysis.plots:
            write_bytes(Path(report_dir) / plot.file, plot.png)
    provenance, config_text = provenance_blocks(
        dataset, config, {"radflow (report)": version, "matplotlib (report)":
                          matplotlib.__version__})
    plots = analysis.plots if analysis else []
    html = render_page({
        "cohort": cohort, "version": version, "n_pairs": len(cards),
        "n_pictures": sum(bool(c.picture) for c in cards), "cards": cards,
        "per_page": settings.thumbnails_per_page, "planes": ", ".join(settings.planes),
        "margin_mm": f"{settings.margin_mm:g}",
        "status_tables": status_blocks(inputs.run_summary, inputs.join_report),
        "analysis": analysis, "no_analysis": NO_ANALYSIS,
        "feature_plots": [p for p in plots if p.file in ("assets/distributions.png",
                                                         "assets/correlation.png")],
        "outcome_plots": [p for p in plots if p.file not in ("assets/distributions.png",
                                                             "assets/correlation.png")],
        "provenance_tables": provenance, "config_text": config_text})
    page = write_page(report_dir, html)
    logger.info("report: %s (%d pairs, %d pictures, %d plots)", page, len(cards),
                sum(bool(c.picture) for c in cards), len(plots))
    return page


def run_report_stage(*, inputs: ReportInputs, report_dir: str,
                     settings: Mapping[str, Any] | None, cohort: str,
                     config: Mapping[str, Any], version: str) -> Path:
    """Entry point of the ``report`` rule: :func:`settings_from` the config section, then
    :func:`run_report`."""
    return run_report(inputs, report_dir, settings_from(settings), cohort=cohort, config=config,
                      version=version)


__all__ = ["AnalysisFiles", "ReportInputs", "ReportSettings", "run_report", "run_report_stage",
           "settings_from"]
