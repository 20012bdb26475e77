"""Stage ``merge``: feature tables of all pairs + clinical table -> analysis-ready datasets.

Outputs in ``<results>/merge/``:

``features.parquet``
    Long table, one row per pair x feature (keys, ``image_type``, ``feature_class``,
    ``feature``, ``ibsi_code``, ``value`` and provenance columns).
``features_wide.csv``
    One row per pair: keys, provenance, then one column per ``<image_type>_<class>_<feature>``.
``dataset.parquet`` / ``dataset.csv``
    ``features_wide`` joined (left join on ``case_id``) with the clinical columns its data
    dictionary lets through (:mod:`.clinical`; none without a dictionary), whose ID column is
    replaced by the pseudonymous ``case_id`` computed with the same key as at ingest.
``clinical_columns.tsv``
    What each clinical column of the dataset is (:mod:`radflow.records.clinical`).
``landmarks.tsv``, ``minkowski_curves.parquet``
    The side tables of radflow's own feature families (:mod:`.side_tables`).
``clinical_join_report.tsv``
    Unmatched cases on both sides and duplicate clinical IDs, by ``case_id`` only, and the
    clinical columns left out of the results. Written by the ``qc`` rule (:func:`run_qc`) before
    the ``merge`` rule judges the join, so it is there even when the run fails on it; so is
``clinical_violations.tsv``
    The clinical values that break the data dictionary (fatal with ``strict``).

and ``<results>/qc/run_summary.tsv`` (also the ``qc`` rule's): counts of every status per stage.
Both are declared outputs, so ``--delete-all-output`` and reruns see them. A run fails when more
than ``merge.max_unmatched_fraction`` of the imaged cases have no clinical row, on duplicate
clinical IDs, and, with ``strict: true``, when any series, pair or extraction failed. Clinical rows
without imaging are normal (a registry covers more patients than the imaging cohort): they are
listed in the join report and counted in the log, never a reason to fail.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from radflow.errors import MergeError, StrictModeError
from radflow.io.atomic import write_csv, write_parquet, write_tsv
from radflow.io.tables import read_clinical
from radflow.keys import case_id, load_key
from radflow.merge.clinical import PreparedClinical, prepare_clinical, violations_message
from radflow.merge.dictionary import load_dictionary
from radflow.merge.protocol import drop_excluded, excluded_pairs, protocol_flags, with_protocol
from radflow.merge.side_tables import side_tables
from radflow.merge.timepoints import join_on_timepoint, pair_timepoints
from radflow.records import read_extract_status, read_sidecar, read_table
from radflow.records.clinical import write_clinical_columns
from radflow.records.status import FAILED, Status
from radflow.records.tables import read_series_table
from radflow.settings import MergeSettings

logger = logging.getLogger(__name__)

KEY_COLUMNS = ["case_id", "image_key", "mask_key", "pair_id", "roi", "label"]
PROVENANCE_COLUMNS = ["radflow_version", "pyradiomics_dist", "pyradiomics_version",
                      "simpleitk_version", "numpy_version", "params_hash", "params_set",
                      "normalisation", "qc", "image_hash", "mask_hash"]
REPORT_COLUMNS = ["kind", "case_id", "detail"]


@dataclass(frozen=True)
class ClinicalInput:
    """Where the clinical table is and how to read it (``path`` "" = no clinical table);
    ``dictionary``: its data dictionary ("" = none: no clinical column but the join key is
    written; :mod:`.clinical`); ``date_shift_max_days``: the de-identification's date shift
    bound when it shifts DICOM dates, else 0."""

    path: str = ""
    id_column: str = "patient_id"
    sheet: str = ""
    dictionary: str = ""
    date_shift_max_days: int = 0
    #: with a dictionary's timepoint column: the crawl's pair plan and the cohort sheet, which
    #: give each pair its timepoint (:mod:`.timepoints`)
    pair_plan: str = ""
    cohort_sheet: str = ""


@dataclass(frozen=True)
class MergeOutputs:
    """Destinations of the merge stage."""

    features: str
    features_wide: str
    dataset_parquet: str
    dataset_csv: str
    #: the families' side tables ("": not written)
    landmarks: str = ""
    curves: str = ""
    #: what each clinical column of the dataset is ("": not written)
    clinical_columns: str = ""


@dataclass(frozen=True)
class QcOutputs:
    """Destinations of the ``qc`` rule (written before the merge judges the run)."""

    join_report: str
    run_summary: str
    #: clinical values that break the data dictionary ("": not written)
    violations: str = ""


def long_features(feature_files: Sequence[str]) -> pd.DataFrame:
    """Concatenate the extract stage's feature tables, sorted by case, pair, then extraction
    order."""
    tables = [pd.read_parquet(f) for f in feature_files]
    tables = [t for t in tables if len(t)]
    if not tables:
        return pd.DataFrame(columns=[*KEY_COLUMNS, "image_type", "feature_class", "feature",
                                     "ibsi_code", "value", *PROVENANCE_COLUMNS])
    table = pd.concat(tables, ignore_index=True)
    table["_order"] = table.groupby("pair_id").cumcount()
    table = table.sort_values(["case_id", "pair_id", "_order"], kind="stable")
    return table.drop(columns="_order").reset_index(drop=True)


def wide_features(long: pd.DataFrame) -> pd.DataFrame:
    """One row per pair: keys, provenance, then ``<image_type>_<class>_<feature>`` columns."""
    if long.empty:
        return pd.DataFrame(columns=KEY_COLUMNS + PROVENANCE_COLUMNS)
    name = long["image_type"] + "_" + long["feature_class"] + "_" + long["feature"]
    order = list(dict.fromkeys(name))
    values = (long.assign(_name=name)
              .pivot(index="pair_id", columns="_name", values="value")[order])
    meta = long.drop_duplicates("pair_id").set_index("pair_id")[
        [c for c in KEY_COLUMNS + PROVENANCE_COLUMNS if c != "pair_id"]]
    wide = meta.join(values).reset_index()
    wide = wide[KEY_COLUMNS + PROVENANCE_COLUMNS + order]
    return wide.sort_values(["case_id", "pair_id"], kind="stable").reset_index(drop=True)


def join_clinical(wide: pd.DataFrame, clinical: pd.DataFrame, id_column: str, key: bytes,
                  max_unmatched: float) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Left-join ``wide`` with ``clinical`` on pseudonymised IDs.

    Returns
    -------
    dataset : pandas.DataFrame
        ``wide`` keys, then the clinical columns (without the source ID column), then features.
    report : pandas.DataFrame
        Columns ``kind`` (``unmatched-imaging`` | ``unmatched-clinical`` |
        ``duplicate-clinical``), ``case_id``, ``detail``.
    problems : list of str
        Reasons the join is unacceptable (empty when it is fine): duplicate clinical IDs, more
        than ``max_unmatched`` of the imaged cases without a clinical row, clashing columns.
        Clinical cases without imaging are reported, not bounded.
    """
    clinical = clinical.copy()
    clinical.insert(0, "case_id", [case_id(key, v) if v else "" for v in clinical[id_column]])
    clinical = clinical.drop(columns=[id_column])
    rows = []
    missing_id = int((clinical["case_id"] == "").sum())
    if missing_id:
        rows.append({"kind": "missing-clinical-id", "case_id": "",
                     "detail": f"{missing_id} row(s) with an empty {id_column}"})
    clinical = clinical[clinical["case_id"] != ""]
    dup_counts = clinical["case_id"].value_counts()
    dups = sorted(dup_counts[dup_counts > 1].index)
    rows += [{"kind": "duplicate-clinical", "case_id": c, "detail": f"{dup_counts[c]} rows"}
             for c in dups]
    image_cases = sorted(set(wide["case_id"]))
    clinical_cases = sorted(set(clinical["case_id"]))
    no_clinical = sorted(set(image_cases) - set(clinical_cases))
    no_imaging = sorted(set(clinical_cases) - set(image_cases))
    rows += [{"kind": "unmatched-imaging", "case_id": c, "detail": "no clinical row"}
             for c in no_clinical]
    rows += [{"kind": "unmatched-clinical", "case_id": c, "detail": "no feature row"}
             for c in no_imaging]
    report = pd.DataFrame(rows, columns=REPORT_COLUMNS)

    problems = []
    if dups:
        problems.append(f"{len(dups)} duplicate clinical ID(s)")
    if image_cases and len(no_clinical) / len(image_cases) > max_unmatched:
        problems.append(f"{len(no_clinical)} of {len(image_cases)} imaged cases have no clinical "
                        f"row ({len(no_clinical) / len(image_cases):.0%} > "
                        f"merge.max_unmatched_fraction {max_unmatched:.0%})")
    logger.info("clinical join: %d of %d imaged cases without a clinical row; %d of %d clinical "
                "cases without imaging (not bounded)", len(no_clinical), len(image_cases),
                len(no_imaging), len(clinical_cases))
    clinical_cols = [c for c in clinical.columns if c != "case_id"]
    clash = sorted(set(clinical_cols) & set(wide.columns))
    if clash:
        problems.append(f"clinical columns clash with feature table columns: {clash}")
    dataset = wide.merge(clinical.drop_duplicates("case_id"), on="case_id", how="left",
                         validate="many_to_one")
    n_keys = len(KEY_COLUMNS) + len(PROVENANCE_COLUMNS)
    dataset = dataset[list(wide.columns[:n_keys]) + clinical_cols + list(wide.columns[n_keys:])]
    return dataset, report, problems


def unit_statuses(status_json: str | Path) -> list[dict[str, Any]]:
    """The per-pair statuses in a status record of :func:`radflow.extract.run_extract`.

    Raises
    ------
    InputFileError
        The record is unreadable or has no ``pairs`` list.
    """
    return [dataclasses.asdict(p) for p in read_extract_status(status_json).pairs]


def run_summary(series_tsv: str, sidecars: Sequence[str], pairs_tsv: str,
                status_files: Sequence[str]) -> pd.DataFrame:
    """Count statuses per stage (columns ``stage``, ``status``, ``count``).

    ``status_files`` are the extract stage's unit records; each lists the status of every pair
    it extracted, and the ``extract`` counts are per pair.
    """
    def statuses(files: Sequence[str]) -> list[str]:
        return [read_sidecar(f).status for f in files]

    extracted = [pair["status"] for f in status_files for pair in unit_statuses(f)]

    per_stage = {
        "crawl": read_series_table(series_tsv, ["status"])["status"],
        "convert": pd.Series(statuses(sidecars), dtype=str),
        "pair": read_table(pairs_tsv)["status"],
        "extract": pd.Series(extracted, dtype=str),
    }
    rows = [{"stage": stage, "status": status, "count": int(n)}
            for stage, values in per_stage.items()
            for status, n in sorted(values.value_counts().items())]
    return pd.DataFrame(rows, columns=["stage", "status", "count"])


def _summary_and_join(*, feature_files: Sequence[str], status_files: Sequence[str],
                      pairs_tsv: str, series_tsv: str, sidecars: Sequence[str],
                      clinical: ClinicalInput, key_file: str, settings: MergeSettings
                      ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame,
                                 pd.DataFrame, list[str], PreparedClinical]:
    """Run summary, long/wide features, dataset, join report, join problems and the clinical
    table as its data dictionary lets it through (:mod:`.clinical`)."""
    summary = run_summary(series_tsv, sidecars, pairs_tsv, status_files)
    long = long_features(feature_files)
    wide = wide_features(long)
    problems: list[str] = []
    if clinical.path:
        key = load_key(key_file)
        dictionary = (load_dictionary(clinical.dictionary, clinical.id_column)
                      if clinical.dictionary else None)
        prepared = prepare_clinical(
            read_clinical(clinical.path, clinical.id_column, clinical.sheet),
            clinical.id_column, dictionary, key, clinical.date_shift_max_days)
        if prepared.timepoint:
            dataset, report, problems = join_on_timepoint(
                wide, prepared.table, clinical.id_column, prepared.timepoint, key,
                settings.max_unmatched_fraction,
                pair_timepoints(clinical.pair_plan, clinical.cohort_sheet)
                if clinical.pair_plan else {}, keep_timepoint=prepared.timepoint_written)
        else:
            dataset, report, problems = join_clinical(wide, prepared.table, clinical.id_column,
                                                      key, settings.max_unmatched_fraction)
        report = pd.concat([report, prepared.report], ignore_index=True)
    else:
        dataset = wide
        prepared = PreparedClinical(pd.DataFrame())
        report = pd.DataFrame([{"kind": "no-clinical-table", "case_id": "",
                                "detail": "clinical not configured"}], columns=REPORT_COLUMNS)
    return summary, long, wide, dataset, report, problems, prepared


def run_qc(*, feature_files: Sequence[str], status_files: Sequence[str], pairs_tsv: str,
           series_tsv: str, sidecars: Sequence[str], clinical: ClinicalInput, key_file: str,
           settings: MergeSettings, out: QcOutputs) -> None:
    """Entry point of ``scripts/qc.py``: the run summary and the clinical join report.

    Never fails on the data: the ``merge`` rule, which runs after it, judges the join and
    strict mode, so both files are there to read when the run fails.
    """
    summary, _, _, _, report, _, prepared = _summary_and_join(
        feature_files=feature_files, status_files=status_files, pairs_tsv=pairs_tsv,
        series_tsv=series_tsv, sidecars=sidecars, clinical=clinical, key_file=key_file,
        settings=settings)
    write_tsv(out.run_summary, summary)
    for rec in summary.to_dict("records"):
        logger.info("summary: %-8s %-40s %d", rec["stage"], rec["status"], rec["count"])
    write_tsv(out.join_report, report)
    if out.violations:
        write_tsv(out.violations, prepared.violations)


def run_merge(*, feature_files: Sequence[str], status_files: Sequence[str], pairs_tsv: str,
              series_tsv: str, sidecars: Sequence[str], clinical: ClinicalInput, key_file: str,
              settings: MergeSettings, strict: bool, out: MergeOutputs,
              protocol_pairs: str = "", side_files: Sequence[str] = ()) -> None:
    """Entry point of ``scripts/merge.py`` (after :func:`run_qc` wrote the summary and report).

    ``protocol_pairs``: the protocol gate's ``qc/protocol_pairs.tsv`` ("" without a profile):
    its columns join every row, its excluded pairs leave the tables (:mod:`.protocol`).
    ``side_files``: the extract stage's side records, gathered into ``out.landmarks`` and
    ``out.curves`` (:mod:`.side_tables`).

    Raises
    ------
    MergeError
        When the clinical join is unacceptable (see module docstring); with ``strict`` or the
        data dictionary's ``strict``, when a clinical value breaks the dictionary.
    StrictModeError
        With ``strict``, when any status in the run summary is ``failed:``.
    """
    summary, long, wide, dataset, _, problems, prepared = _summary_and_join(
        feature_files=feature_files, status_files=status_files, pairs_tsv=pairs_tsv,
        series_tsv=series_tsv, sidecars=sidecars, clinical=clinical, key_file=key_file,
        settings=settings)
    if problems:
        raise MergeError("clinical join rejected: " + "; ".join(problems)
                         + " (see merge/clinical_join_report.tsv)", reason="clinical-join")
    if len(prepared.violations) and (strict or prepared.strict):
        raise MergeError(f"strict: {len(prepared.violations)} clinical value(s) break the data "
                         f"dictionary: {violations_message(prepared.violations)} (see "
                         "merge/clinical_violations.tsv)", reason="clinical-values")
    failed = summary[summary["status"].map(lambda s: Status.parse(s).kind == FAILED)]
    if strict and len(failed):
        raise StrictModeError(f"strict mode: {int(failed['count'].sum())} failure(s): "
                              + ", ".join(f"{r.stage} {r.status} x{r.count}"
                                          for r in failed.itertuples()))
    flags = protocol_flags(protocol_pairs)
    long = drop_excluded(long, flags)
    wide = with_protocol(wide, flags, len(KEY_COLUMNS) + len(PROVENANCE_COLUMNS))
    dataset = with_protocol(dataset, flags, len(KEY_COLUMNS) + len(PROVENANCE_COLUMNS))
    write_parquet(out.features, long)
    if out.landmarks or out.curves:
        landmarks, curves = side_tables(side_files, excluded_pairs(flags))
        if out.landmarks:
            write_tsv(out.landmarks, landmarks)
        if out.curves:
            write_parquet(out.curves, curves)
    write_csv(out.features_wide, wide)
    write_parquet(out.dataset_parquet, dataset)
    write_csv(out.dataset_csv, dataset)
    if out.clinical_columns:
        write_clinical_columns(out.clinical_columns, prepared.columns)
    logger.info("merge: %d feature values, %d pairs, %d dataset rows", len(long), len(wide),
             len(dataset))
