"""Stage ``crawl``: index the DICOM root and the cohort sheet; plan conversions and pairs.

This is the workflow's only checkpoint. It reads DICOM headers only and writes

``<results>/crawl/series.tsv``
    One row per DICOM series, unreadable file and sheet file (image or mask): pseudonymous keys,
    modality, geometry summary and ``status`` (``ok`` | ``excluded:<reason>`` |
    ``failed:<reason>``). Nothing is dropped silently.
``<results>/crawl/pair_plan.tsv`` and ``<results>/crawl/pairs/<pair_id>.json``
    The pair plan: the planned image x mask x label pairs (the pair stage's ``pair/pairs.tsv``
    holds the pairs it built): from the cohort sheet, and one per ROI / segment of
    every DICOM RTSTRUCT and SEG, linked to its image series by reference or fallback
    (:mod:`radflow.crawl.masks`; ``pairing_reason`` says how).
``<results>/crawl/rois.tsv``
    One row per ROI / segment of every DICOM mask object, with its name decision
    (:mod:`radflow.rois`).
``<results>/crawl/acquisition.tsv``
    One row per DICOM series: whitelisted, non-identifying acquisition values of its first file
    (:mod:`radflow.records.acquisition`), for the protocol QC gates.
``<private>/sources/<series_key>.json``
    The explicit file list of every source. Source paths can carry patient names (archives are
    often organised by name), so they are kept outside ``results/``.

Per-item JSON files are rewritten only when their content changes, so Snakemake re-runs only the
jobs of series or pairs that really changed when the crawl runs again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from radflow import records
from radflow.crawl.copies import flag_copies
from radflow.crawl.masks import plan_dicom_masks
from radflow.crawl.sheet import (
    check_deid_folders,
    deid_folder_sources,
    located_files,
    plan_sheet_row,
    read_sheet,
    resolve_sheet_path,
)
from radflow.crawl.table import (
    PAIR_COLUMNS,
    CrawlSource,
    Deidentified,
    patient_case_id,
)
from radflow.dicom.acquisition import plane_of
from radflow.dicom.index import SeriesRecord, find_candidate_files, index_files
from radflow.dicom.references import mask_kind
from radflow.io.atomic import write_tsv
from radflow.keys import load_key, study_key, volume_key
from radflow.keys import pair_id as make_pair_id
from radflow.records import Status, write_pair_plan, write_source
from radflow.records.acquisition import (
    AcquisitionRow,
    acquisition_frame,
    write_acquisition_table,
)
from radflow.records.tables import SeriesRow, series_frame, write_series_table
from radflow.records.uid_map import read_uid_map
from radflow.rois import ROI_COLUMNS, check_rules
from radflow.settings import CrawlSettings, RoiSettings
from radflow.text import clean_text

logger = logging.getLogger(__name__)


@dataclass
class CrawlResult:
    """Everything the crawl writes (see module docstring)."""

    series: pd.DataFrame
    pairs: pd.DataFrame  # the pair plan (crawl/pair_plan.tsv)
    sources: dict[str, CrawlSource]
    rois: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ROI_COLUMNS))
    acquisition: pd.DataFrame = field(default_factory=lambda: acquisition_frame([]))


def _series_row(rec: SeriesRecord, key: bytes,
                deidentified: Deidentified | None = None) -> dict[str, Any]:
    is_file_error = not rec.series_uid
    spacing = rec.spacing or (None, None, None)
    return {
        "case_id": patient_case_id(key, rec.patient_id, deidentified) if rec.patient_id else "",
        # One SeriesInstanceUID can yield several volumes (4-D splits: ``split`` = "_t03").
        "series_key": (volume_key(key, "series", rec.series_uid, split=rec.split)
                       if rec.series_uid else volume_key(key, "unreadable", str(rec.files[0]))),
        "study_key": study_key(key, rec.study_uid),
        "source": "dicom",
        "role": "" if is_file_error or Status.parse(rec.status).is_non_image else "image",
        "modality": clean_text(rec.modality, 16),
        "n_instances": rec.n_instances,
        "status": rec.status,
        "rows": rec.rows, "cols": rec.cols, "slices": rec.n_slices,
        "spacing_x": spacing[0], "spacing_y": spacing[1], "spacing_z": spacing[2],
        "orientation": "\\".join(f"{v:.6f}" for v in rec.orientation) if rec.orientation else "",
        "series_number": rec.series_number,
        "series_description": clean_text(rec.series_description),
        "manufacturer": clean_text(getattr(rec, "manufacturer", ""), 64),
        "split": rec.split,
        "resampled": rec.resampled,
        "qc": ",".join(rec.qc),
    }


def crawl(dicom_root: Path | None, sheet: Path | None, key: bytes,
          settings: CrawlSettings, rois: RoiSettings | None = None,
          deidentified: Deidentified | None = None) -> CrawlResult:
    """Index the DICOM tree and the cohort sheet; return the manifest, the pair plan, sources.

    Parameters
    ----------
    dicom_root
        Folder tree of DICOM files, or None.
    sheet
        Cohort sheet, or None. Its relative paths are relative to the sheet's folder.
    key
        Pseudonymisation key (see :mod:`radflow.keys`).
    settings
        Series rules (with ``geometry`` and ``fallback_modalities``, see
        :mod:`radflow.dicom.references`).
    rois
        ROI name rules and SEG/RTSTRUCT reading settings (default: :class:`RoiSettings`).
    deidentified
        ``dicom_root`` is radflow's de-identified tree (see :class:`Deidentified`).
    """
    rois = rois or RoiSettings()
    check_rules(rois)
    rows_sheet = read_sheet(sheet) if sheet else []
    sheet_dir = sheet.parent if sheet else Path.cwd()

    files: list[Path] = find_candidate_files(dicom_root) if dicom_root else []
    if deidentified is not None and dicom_root:  # the stage's own logs are not DICOM
        files = [f for f in files if not (f.parent == dicom_root and f.suffix == ".tsv")]
    sheet_folders = {}
    for row in rows_sheet:
        ref = row["image"]
        if not ref.startswith("series:"):
            target = resolve_sheet_path(ref, sheet_dir)
            if target.is_dir():
                sheet_folders[row["row"]] = target.resolve()
    if deidentified is not None:  # the folders name source files: nothing more to read
        check_deid_folders(sheet_folders, deidentified, sheet)
    else:
        seen = {p.resolve() for p in files}
        for folder in sorted(set(sheet_folders.values())):
            for p in find_candidate_files(folder):
                if p.resolve() not in seen:
                    seen.add(p.resolve())
                    files.append(p)
    logger.info("crawl: %d candidate files", len(files))
    records = index_files(files, settings) if files else []
    records = flag_copies(records, key, settings.duplicate_copies)  # re-exported copies

    sources: dict[str, CrawlSource] = {}
    by_uid: dict[str, SeriesRecord] = {}
    masks, images = [], []
    acquisition = []
    for rec in records:
        row = _series_row(rec, key, deidentified)
        if rec.series_uid:
            acquisition.append(AcquisitionRow.from_mapping({
                "series_key": row["series_key"], "sop_class_uid": rec.sop_class_uid,
                "plane": plane_of(rec.orientation), **dict(rec.acquisition)}))
        if mask_kind(rec.sop_class_uid):
            masks.append((rec, row))
            continue
        images.append((rec, row))
        frames = ([None if f is None else list(f) for f in rec.frames]
                  if rec.frames is not None else None)
        sources[row["series_key"]] = CrawlSource(row["series_key"], row["case_id"], "dicom",
                                                 "image", [str(p) for p in rec.files], row,
                                                 frames)
        if rec.series_uid:
            by_uid[rec.series_uid + rec.split] = rec  # "series:<uid>_e2" names one volume

    uid_map = (read_uid_map(deidentified.uid_map)
               if rows_sheet and deidentified is not None and deidentified.uid_map else None)
    located = located_files(by_uid, deidentified, uid_map) if sheet_folders else {}
    pair_rows = [plan_sheet_row(row, key, sheet_dir, by_uid, sheet_folders.get(row["row"]),
                                sources, located, deidentified, uid_map)
                 for row in rows_sheet]
    mask_plan = plan_dicom_masks(masks, images, key, rois, settings.fallback_modalities)
    reading = {"fractional_threshold": rois.fractional_threshold,
               "contours_outside_image": rois.contours_outside_image}
    for obj in mask_plan.objects:
        row = obj["row"]
        mask = ({"image_key": obj["image_key"], "labels": obj["labels"], **reading}
                if obj["kind"] else None)
        sources[row["series_key"]] = CrawlSource(row["series_key"], row["case_id"],
                                                 obj["kind"] or "dicom", "mask", obj["files"],
                                                 row, mask=mask)
    for plan_row in mask_plan.pairs:
        plan_row["pair_id"] = make_pair_id(plan_row["image_key"], plan_row["mask_key"],
                                           plan_row["label"], plan_row["roi"])
        pair_rows.append(plan_row)

    series = series_frame(SeriesRow.from_mapping(s.row) for s in sources.values())
    pairs = pd.DataFrame(pair_rows, columns=PAIR_COLUMNS).astype({"sheet_row": "Int64"})
    dup = pairs["pair_id"].duplicated(keep="first")
    if dup.any():
        first_rows = ", ".join(str(r) for r in pairs.loc[dup, "sheet_row"])
        logger.warning("cohort sheet rows %s repeat an earlier row (same image, mask, label, roi); "
                    "they are listed once", first_rows)
        pairs = pairs.loc[~dup]
    pairs = pairs.sort_values(["case_id", "pair_id"], kind="stable").reset_index(drop=True)
    _log_counts(series, pairs)
    roi_table = pd.DataFrame(mask_plan.rois, columns=ROI_COLUMNS)
    # mask objects are rows of their own (one per RTSTRUCT/SEG object): not summarised
    listed = set(series["series_key"])
    acquisition = [a for a in acquisition if a.series_key in listed]
    return CrawlResult(series=series, pairs=pairs, sources=sources, rois=roi_table,
                       acquisition=acquisition_frame(acquisition))


def _log_counts(series: pd.DataFrame, pairs: pd.DataFrame) -> None:
    for status, n in series["status"].value_counts().sort_index().items():
        logger.info("crawl: %d source(s) %s", n, status)
    for status, n in pairs["status"].value_counts().sort_index().items():
        logger.info("crawl: %d planned pair(s) %s", n, status)


def write_crawl(result: CrawlResult, series_tsv: Path, pair_plan_tsv: Path, pair_dir: Path,
                sources_dir: Path, rois_tsv: Path | None = None,
                acquisition_tsv: Path | None = None) -> None:
    """Write the crawl's tables and per-item files (per-item files only when changed)."""
    for src in result.sources.values():
        write_source(sources_dir / f"{src.series_key}.json",
                     records.Source(series_key=src.series_key, case_id=src.case_id,
                                    kind=src.kind, role=src.role, files=src.files,
                                    frames=src.frames, mask=src.mask), only_if_changed=True)
    for rec in result.pairs.to_dict("records"):
        plan = records.PairPlan.from_json({k: (None if v is pd.NA else v)
                                           for k, v in rec.items()})
        write_pair_plan(pair_dir / f"{plan.pair_id}.json", plan, only_if_changed=True)
    write_tsv(pair_plan_tsv, result.pairs)
    write_series_table(series_tsv, result.series)
    if rois_tsv is not None:
        write_tsv(rois_tsv, result.rois)
    if acquisition_tsv is not None:
        write_acquisition_table(acquisition_tsv, result.acquisition)


def run_crawl(*, dicom_root: str, sheet: str, key_file: str, settings: CrawlSettings,
              series_tsv: str, pair_plan_tsv: str, sources_dir: str,
              rois_tsv: str | None = None,
              rois: RoiSettings | None = None,
              deidentified: Deidentified | None = None,
              acquisition_tsv: str | None = None) -> None:
    """Entry point of ``scripts/crawl.py``: load (or create) the key, crawl, write outputs.

    Per-pair plans go to ``pairs/<pair_id>.json`` beside ``pair_plan_tsv``; the acquisition
    table is written when ``acquisition_tsv`` is given (the workflow's crawl, not the private
    crawl of de-identification).
    """
    key = load_key(key_file, create=True)
    result = crawl(Path(dicom_root) if dicom_root else None, Path(sheet) if sheet else None,
                   key, settings, rois, deidentified)
    write_crawl(result, Path(series_tsv), Path(pair_plan_tsv),
                Path(pair_plan_tsv).parent / "pairs",
                Path(sources_dir), Path(rois_tsv) if rois_tsv else None,
                Path(acquisition_tsv) if acquisition_tsv else None)


__all__: Sequence[str] = ["CrawlResult", "Deidentified", "crawl", "deid_folder_sources",
                          "patient_case_id", "read_sheet", "run_crawl", "write_crawl"]
