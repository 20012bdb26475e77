"""Stage ``crawl``: index the DICOM root and the cohort sheet; plan conversions and pairs.

This is the workflow's only checkpoint. It reads DICOM headers only and writes

``<results>/crawl/series.tsv``
    One row per DICOM series, unreadable file and sheet file (image or mask): pseudonymous keys,
    modality, geometry summary and ``status`` (``ok`` | ``excluded:<reason>`` |
    ``failed:<reason>``). Nothing is dropped silently.
``<results>/crawl/pairs.tsv`` and ``<results>/crawl/pairs/<pair_id>.json``
    The planned image x mask x label pairs: from the cohort sheet, and one per ROI / segment of
    every DICOM RTSTRUCT and SEG, linked to its image series by reference or fallback
    (:mod:`radflow.crawl_masks`; ``pairing_reason`` says how).
``<results>/crawl/rois.tsv``
    One row per ROI / segment of every DICOM mask object, with its name decision
    (:mod:`radflow.rois`).
``<private>/sources/<series_key>.json``
    The explicit file list of every source. Source paths can carry patient names (archives are
    often organised by name), so they are kept outside ``results/``.

Per-item JSON files are rewritten only when their content changes, so Snakemake re-runs only the
jobs of series or pairs that really changed when the crawl runs again.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from radflow.crawl_masks import plan_dicom_masks
from radflow.deid.uids import replace_uid
from radflow.dicom.index import SeriesRecord, find_candidate_files, index_files
from radflow.dicom.references import mask_kind
from radflow.errors import ConfigError, InputFileError
from radflow.io.atomic import write_json, write_tsv
from radflow.keys import case_id as make_case_id
from radflow.keys import keyed_hash, load_key, series_key
from radflow.rois import ROI_COLUMNS, check_rules
from radflow.settings import CrawlSettings, RoiSettings
from radflow.text import clean_text

log = logging.getLogger(__name__)

SERIES_COLUMNS = [
    "case_id", "series_key", "study_key", "source", "role", "modality", "n_instances", "status",
    "rows", "cols", "slices", "spacing_x", "spacing_y", "spacing_z", "orientation",
    "series_number", "series_description", "manufacturer", "split", "resampled", "qc",
]
INT_COLUMNS = ["n_instances", "rows", "cols", "slices", "series_number"]
PAIR_COLUMNS = ["pair_id", "case_id", "image_key", "mask_key", "label", "roi", "sheet_row",
                "image_status", "mask_status", "status", "pairing_reason", "candidates",
                "roi_source"]
IMAGE_FILE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
SHEET_SCHEMA = "sheet.schema.yaml"
#: A PatientID that already is a case key (radflow's de-identified tree writes ``case_id`` there).
CASE_ID_PATTERN = re.compile(r"c[0-9a-f]{12}")


@dataclass(frozen=True)
class Deidentified:
    """How to read a tree radflow de-identified itself (``deidentify: true``).

    Its PatientIDs are ``case_id`` values and are used as such (not hashed again), so case keys,
    the cohort sheet's subjects and the clinical join are the same as on the source tree. Its
    top-level ``*.tsv`` files (``actions.tsv``, ``series.tsv``) are the stage's logs, not DICOM.
    ``uids_replaced``: the sheet's ``series:<UID>`` references are mapped to the replaced UIDs
    (False with ``deid.retain_uids``).
    """

    uids_replaced: bool = True


def patient_case_id(key: bytes, patient_id: str, deidentified: Deidentified | None) -> str:
    """``case_id`` of a PatientID: its keyed hash, or itself on a de-identified tree."""
    pid = patient_id.strip()
    if deidentified is not None and CASE_ID_PATTERN.fullmatch(pid):
        return pid
    return make_case_id(key, pid)


@dataclass
class Source:
    """One thing the convert stage turns into a NIfTI file (kept private: it holds paths)."""

    series_key: str
    case_id: str
    kind: str  # "dicom" | "image-file" | "rtstruct" | "seg"
    role: str  # "image" | "mask"
    files: list[str]
    row: dict[str, Any] = field(default_factory=dict)  # the public series.tsv row
    frames: list[list[int] | None] | None = None  # per file, for one volume of a split
    #: rtstruct/seg: the image whose grid the masks are built on, the labels to convert and the
    #: mask reading settings (in the source JSON so that only mask conversions re-run when
    #: they change).
    mask: dict[str, Any] | None = None


@dataclass
class CrawlResult:
    """Everything the crawl writes (see module docstring)."""

    series: pd.DataFrame
    pairs: pd.DataFrame
    sources: dict[str, Source]
    rois: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ROI_COLUMNS))


def pair_id_for(image_key: str, mask_key: str, label: int, roi: str) -> str:
    """Stable pair key (``p`` + 16 hex) from already pseudonymous parts."""
    text = f"{image_key}\0{mask_key}\0{label}\0{roi}"
    return "p" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _series_row(rec: SeriesRecord, key: bytes,
                deidentified: Deidentified | None = None) -> dict[str, Any]:
    is_file_error = not rec.series_uid
    # One SeriesInstanceUID can yield several volumes (4-D splits: ``split`` = "_t03", "_b800").
    ref = (rec.series_uid + rec.split) if rec.series_uid else f"unreadable:{rec.files[0]}"
    spacing = rec.spacing or (None, None, None)
    return {
        "case_id": patient_case_id(key, rec.patient_id, deidentified) if rec.patient_id else "",
        "series_key": series_key(key, ref),
        "study_key": ("t" + keyed_hash(key, "study", rec.study_uid, 16)) if rec.study_uid else "",
        "source": "dicom",
        "role": "" if is_file_error or rec.status.startswith("excluded:non-image") else "image",
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


def read_sheet(path: Path) -> list[dict[str, Any]]:
    """Read and validate a cohort sheet (TSV, or CSV by its ``.csv`` suffix).

    Returns one dict per row with ``label`` as int (default 1) and ``roi`` defaulting to
    ``label-<label>``; ``row`` is the 1-based data row number.

    Raises
    ------
    ConfigError
        When a row violates ``config/schema/sheet.schema.yaml`` (the message names the row and
        column, never the value of ``subject``).
    """
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError) as exc:
        raise InputFileError(f"cohort sheet {path.name}: cannot be read as "
                             f"{'CSV' if sep == ',' else 'TSV'} ({exc})") from exc
    table.columns = [c.strip() for c in table.columns]
    schema = yaml.safe_load(_schema_text(SHEET_SCHEMA))
    validator = jsonschema.Draft202012Validator(schema)
    rows = []
    for i, raw in enumerate(table.to_dict("records"), start=1):
        row = {k: v.strip() for k, v in raw.items() if v.strip() != ""}
        if "label" in row:
            try:
                row["label"] = int(row["label"])
            except ValueError:
                raise ConfigError(f"cohort sheet {path.name}, row {i}: label must be an integer "
                                  f"(got {clean_text(row['label'], 20)!r})") from None
        errors = sorted(validator.iter_errors(row), key=lambda e: list(e.path))
        if errors:
            err = errors[0]
            if err.path:  # a bad value: name the rule, never echo the value (it may be PHI)
                raise ConfigError(f"cohort sheet {path.name}, row {i}, column {err.path[0]}: "
                                  f"value breaks the '{err.validator}' rule of "
                                  f"config/schema/{SHEET_SCHEMA}")
            raise ConfigError(f"cohort sheet {path.name}, row {i}: {err.message}")
        row.setdefault("label", 1)
        row["roi"] = clean_text(row.get("roi") or f"label-{row['label']}")
        row["row"] = i
        rows.append(row)
    return rows


def _schema_text(name: str) -> str:
    # The schemas live in the repository's config/schema (radflow is installed editable).
    return (Path(__file__).resolve().parents[2] / "config" / "schema" / name).read_text("utf-8")


def _resolve_sheet_path(value: str, sheet_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (sheet_dir / path)


def _is_image_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in IMAGE_FILE_SUFFIXES)


def crawl(dicom_root: Path | None, sheet: Path | None, key: bytes,
          settings: CrawlSettings, rois: RoiSettings | None = None,
          fallback_modalities: Sequence[str] = (),
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
        Series rules.
    rois
        ROI name rules and SEG/RTSTRUCT reading settings (default: :class:`RoiSettings`).
    fallback_modalities
        ``pair.fallback_modalities`` (see :mod:`radflow.dicom.references`).
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
            target = _resolve_sheet_path(ref, sheet_dir)
            if target.is_dir():
                if deidentified is not None:
                    raise ConfigError(f"cohort sheet {sheet.name if sheet else ''}, row "
                                      f"{row['row']}: an image folder is not supported with "
                                      "deidentify=true (the folder is not de-identified); "
                                      "use series:<SeriesInstanceUID>")
                sheet_folders[row["row"]] = target.resolve()
    seen = {p.resolve() for p in files}
    for folder in sorted(set(sheet_folders.values())):
        for p in find_candidate_files(folder):
            if p.resolve() not in seen:
                seen.add(p.resolve())
                files.append(p)
    log.info("crawl: %d candidate files", len(files))
    records = index_files(files, settings) if files else []

    sources: dict[str, Source] = {}
    by_uid: dict[str, SeriesRecord] = {}
    masks, images = [], []
    for rec in records:
        row = _series_row(rec, key, deidentified)
        if mask_kind(rec.sop_class_uid):
            masks.append((rec, row))
            continue
        images.append((rec, row))
        frames = ([None if f is None else list(f) for f in rec.frames]
                  if rec.frames is not None else None)
        sources[row["series_key"]] = Source(row["series_key"], row["case_id"], "dicom", "image",
                                            [str(p) for p in rec.files], row, frames)
        if rec.series_uid:
            by_uid[rec.series_uid + rec.split] = rec  # "series:<uid>_e2" names one volume

    pair_rows = [_plan_row(row, key, sheet_dir, by_uid, sheet_folders.get(row["row"]), sources,
                           deidentified)
                 for row in rows_sheet]
    mask_plan = plan_dicom_masks(masks, images, key, rois, fallback_modalities)
    reading = {"fractional_threshold": rois.fractional_threshold,
               "contours_outside_image": rois.contours_outside_image}
    for obj in mask_plan.objects:
        row = obj["row"]
        mask = ({"image_key": obj["image_key"], "labels": obj["labels"], **reading}
                if obj["kind"] else None)
        sources[row["series_key"]] = Source(row["series_key"], row["case_id"],
                                            obj["kind"] or "dicom", "mask", obj["files"], row,
                                            mask=mask)
    for plan_row in mask_plan.pairs:
        plan_row["pair_id"] = pair_id_for(plan_row["image_key"], plan_row["mask_key"],
                                          plan_row["label"], plan_row["roi"])
        pair_rows.append(plan_row)

    series = pd.DataFrame([s.row for s in sources.values()], columns=SERIES_COLUMNS)
    series = series.astype({c: "Int64" for c in INT_COLUMNS})
    series = series.sort_values(["case_id", "series_key"], kind="stable").reset_index(drop=True)
    pairs = pd.DataFrame(pair_rows, columns=PAIR_COLUMNS).astype({"sheet_row": "Int64"})
    dup = pairs["pair_id"].duplicated(keep="first")
    if dup.any():
        first_rows = ", ".join(str(r) for r in pairs.loc[dup, "sheet_row"])
        log.warning("cohort sheet rows %s repeat an earlier row (same image, mask, label, roi); "
                    "they are listed once", first_rows)
        pairs = pairs.loc[~dup]
    pairs = pairs.sort_values(["case_id", "pair_id"], kind="stable").reset_index(drop=True)
    _log_counts(series, pairs)
    roi_table = pd.DataFrame(mask_plan.rois, columns=ROI_COLUMNS)
    return CrawlResult(series=series, pairs=pairs, sources=sources, rois=roi_table)


def _file_source(path: Path, role: str, cid: str, subject_ref: str, key: bytes,
                 sources: dict[str, Source]) -> tuple[str, str]:
    """Register an image/mask file from the sheet; return (series_key, status)."""
    skey = series_key(key, f"file:{subject_ref}:{path.resolve()}")
    if skey in sources:
        return skey, sources[skey].row["status"]
    if not path.is_file():
        status = "failed:missing-file"
    elif not _is_image_file(path):
        status = "failed:unsupported-file-type"
    else:
        status = "ok"
    row = dict.fromkeys(SERIES_COLUMNS, None)
    row.update(case_id=cid, series_key=skey, study_key="", source="file", role=role,
               modality="", n_instances=1, status=status, orientation="",
               series_description="", manufacturer="")
    sources[skey] = Source(skey, cid, "image-file", role, [str(path.resolve())], row)
    return skey, status


def _plan_row(row: dict[str, Any], key: bytes, sheet_dir: Path,
              by_uid: dict[str, SeriesRecord], folder: Path | None,
              sources: dict[str, Source],
              deidentified: Deidentified | None = None) -> dict[str, Any]:
    subject = row["subject"]
    cid = make_case_id(key, subject)
    image_ref = row["image"]
    problem = ""
    if image_ref.startswith("series:"):
        uid = image_ref.removeprefix("series:").strip()
        if deidentified is not None and deidentified.uids_replaced:
            base, sep, split = uid.partition("_")  # "<uid>_e2": one volume of a split series
            uid = replace_uid(key, base) + sep + split
        rec = by_uid.get(uid)
        if rec is None or series_key(key, uid) not in sources:
            image_key, image_status = series_key(key, uid), "failed:series-not-found"
        else:
            image_key = series_key(key, uid)
            image_status = sources[image_key].row["status"]
            if patient_case_id(key, rec.patient_id, deidentified) != cid:
                problem = "failed:subject-mismatch"
    elif folder is not None:
        candidates = [r for r in by_uid.values()
                      if r.status == "ok" and all(folder in Path(f).resolve().parents
                                                  for f in r.files)]
        if len(candidates) == 1:
            rec = candidates[0]
            image_key = series_key(key, rec.series_uid + rec.split)
            image_status = "ok"
            if patient_case_id(key, rec.patient_id, deidentified) != cid:
                problem = "failed:subject-mismatch"
        else:
            image_key = series_key(key, f"folder:{folder}")
            image_status = ("failed:no-series-in-folder" if not candidates
                            else "failed:ambiguous-series-folder")
    else:
        image_key, image_status = _file_source(_resolve_sheet_path(image_ref, sheet_dir),
                                               "image", cid, subject, key, sources)
    mask_key, mask_status = _file_source(_resolve_sheet_path(row["mask"], sheet_dir), "mask",
                                         cid, subject, key, sources)
    status = problem or next((f"failed:{which}-{s.split(':', 1)[1]}"
                              for which, s in (("image", image_status), ("mask", mask_status))
                              if s != "ok"), "ok")
    return {
        "pair_id": pair_id_for(image_key, mask_key, row["label"], row["roi"]),
        "case_id": cid, "image_key": image_key, "mask_key": mask_key,
        "label": row["label"], "roi": row["roi"], "sheet_row": row["row"],
        "image_status": image_status, "mask_status": mask_status, "status": status,
        "pairing_reason": "sheet", "candidates": "", "roi_source": row["roi"],
    }


def _log_counts(series: pd.DataFrame, pairs: pd.DataFrame) -> None:
    for status, n in series["status"].value_counts().sort_index().items():
        log.info("crawl: %d source(s) %s", n, status)
    for status, n in pairs["status"].value_counts().sort_index().items():
        log.info("crawl: %d planned pair(s) %s", n, status)


def write_crawl(result: CrawlResult, series_tsv: Path, pairs_tsv: Path, pair_dir: Path,
                sources_dir: Path, rois_tsv: Path | None = None) -> None:
    """Write the crawl's tables and per-item files (per-item files only when changed)."""
    for src in result.sources.values():
        record: dict[str, Any] = {"series_key": src.series_key, "case_id": src.case_id,
                                  "kind": src.kind, "role": src.role, "files": src.files}
        if src.frames is not None:
            record["frames"] = src.frames
        if src.mask is not None:
            record["mask"] = src.mask
        write_json(sources_dir / f"{src.series_key}.json", record, only_if_changed=True)
    for rec in result.pairs.to_dict("records"):
        rec = {k: (None if v is pd.NA else v) for k, v in rec.items()}
        write_json(pair_dir / f"{rec['pair_id']}.json", rec, only_if_changed=True)
    write_tsv(pairs_tsv, result.pairs)
    write_tsv(series_tsv, result.series)
    if rois_tsv is not None:
        write_tsv(rois_tsv, result.rois)


def run_crawl(*, dicom_root: str, sheet: str, key_file: str, settings: CrawlSettings,
              series_tsv: str, pairs_tsv: str, sources_dir: str, rois_tsv: str | None = None,
              rois: RoiSettings | None = None, fallback_modalities: Sequence[str] = (),
              deidentified: Deidentified | None = None) -> None:
    """Entry point of ``scripts/crawl.py``: load (or create) the key, crawl, write outputs.

    Per-pair plans go to ``pairs/<pair_id>.json`` beside ``pairs_tsv``.
    """
    key = load_key(key_file, create=True)
    result = crawl(Path(dicom_root) if dicom_root else None, Path(sheet) if sheet else None,
                   key, settings, rois, fallback_modalities, deidentified)
    write_crawl(result, Path(series_tsv), Path(pairs_tsv), Path(pairs_tsv).parent / "pairs",
                Path(sources_dir), Path(rois_tsv) if rois_tsv else None)


__all__: Sequence[str] = ["CrawlResult", "Deidentified", "crawl", "patient_case_id", "read_sheet",
                          "run_crawl", "write_crawl"]
