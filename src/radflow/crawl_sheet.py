"""Cohort sheets: reading and validating them, and turning each row into a planned pair.

A row names its image by ``series:<SeriesInstanceUID>``, by a DICOM folder (the one image series
whose files all lie in it), or by an image file (NIfTI/NRRD/...); its mask is an image file. On a
tree radflow de-identified itself, a folder row is matched through the de-identification's
private source records (:func:`deid_folder_sources`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from radflow.crawl_records import (
    IMAGE_FILE_SUFFIXES,
    SERIES_COLUMNS,
    SERIES_KEY_PATTERN,
    SHEET_SCHEMA,
    Deidentified,
    Source,
    pair_id_for,
    patient_case_id,
)
from radflow.deid.uids import replace_uid
from radflow.dicom.index import SeriesRecord
from radflow.errors import ConfigError, InputFileError
from radflow.keys import case_id as make_case_id
from radflow.keys import series_key
from radflow.text import clean_text


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


def resolve_sheet_path(value: str, sheet_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (sheet_dir / path)


def is_image_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in IMAGE_FILE_SUFFIXES)


def file_source(path: Path, role: str, cid: str, subject_ref: str, key: bytes,
                 sources: dict[str, Source]) -> tuple[str, str]:
    """Register an image/mask file from the sheet; return (series_key, status)."""
    skey = series_key(key, f"file:{subject_ref}:{path.resolve()}")
    if skey in sources:
        return skey, sources[skey].row["status"]
    if not path.is_file():
        status = "failed:missing-file"
    elif not is_image_file(path):
        status = "failed:unsupported-file-type"
    else:
        status = "ok"
    row = dict.fromkeys(SERIES_COLUMNS, None)
    row.update(case_id=cid, series_key=skey, study_key="", source="file", role=role,
               modality="", n_instances=1, status=status, orientation="",
               series_description="", manufacturer="")
    sources[skey] = Source(skey, cid, "image-file", role, [str(path.resolve())], row)
    return skey, status


def plan_sheet_row(row: dict[str, Any], key: bytes, sheet_dir: Path,
                   by_uid: dict[str, SeriesRecord], folder: Path | None,
                   sources: dict[str, Source], located: dict[str, list[Path]],
                   deidentified: Deidentified | None = None) -> dict[str, Any]:
    """The planned pair of one sheet row (a ``pairs.tsv`` row); registers its files in
    ``sources``.

    Parameters
    ----------
    folder
        The row's image folder (resolved), when its image is a DICOM folder.
    located
        :func:`located_files` of ``by_uid``, computed once per crawl (only read for folder rows).
    """
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
        image_key = series_key(key, uid)
        if rec is None or image_key not in sources:
            image_status = "failed:series-not-found"
        else:
            image_status = sources[image_key].row["status"]
            if patient_case_id(key, rec.patient_id, deidentified) != cid:
                problem = "failed:subject-mismatch"
    elif folder is not None:
        # every file of the series lies in the folder (on a de-identified tree: every source
        # file it was made from)
        candidates = [r for ref, r in by_uid.items()
                      if r.status == "ok" and located.get(ref)
                      and all(folder in p.parents for p in located[ref])]
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
        image_key, image_status = file_source(resolve_sheet_path(image_ref, sheet_dir),
                                              "image", cid, subject, key, sources)
    mask_key, mask_status = file_source(resolve_sheet_path(row["mask"], sheet_dir), "mask",
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


def check_deid_folders(folders: dict[int, Path], deidentified: Deidentified,
                        sheet: Path | None) -> None:
    """Sheet image folders on a de-identified tree must lie in the de-identified source root.

    Messages name the sheet file and row, never the folder (its path may hold a patient name).
    """
    name = sheet.name if sheet else ""
    if not folders:
        return
    if deidentified.source_root is None or deidentified.sources_dir is None:
        raise ConfigError(f"cohort sheet {name}, row {min(folders)}: an image folder with "
                          "deidentify=true needs the de-identification's source records "
                          "(the crawl was called without Deidentified.source_root and "
                          ".sources_dir)")
    root = Path(deidentified.source_root).resolve()
    for row, folder in sorted(folders.items()):
        if folder != root and root not in folder.parents:
            raise ConfigError(f"cohort sheet {name}, row {row}: the image folder is not inside "
                              "dicom_root, so it was not de-identified; with deidentify=true "
                              "an image folder must be inside dicom_root (or name the image "
                              "by series:<SeriesInstanceUID>)")


def deid_folder_sources(files: Sequence[str], sources_dir: str | Path,
                        cache: dict[str, list[Path] | None] | None = None) -> list[Path] | None:
    """The source files that the de-identified ``files`` were made from (resolved paths).

    Each de-identified series lies in a folder named after its source ``series_key``
    (:func:`radflow.deid.series_output_dir`), whose private source record
    ``<sources_dir>/<series_key>.json`` lists the source files. A volume that the crawl of the
    de-identified tree puts together from several such folders (single-frame splits) gets the
    union. None when a folder has no source record.
    """
    cache = {} if cache is None else cache
    out: list[Path] = []
    for name in dict.fromkeys(Path(f).parent.name for f in files):
        if name not in cache:
            record = Path(sources_dir) / f"{name}.json"
            if SERIES_KEY_PATTERN.fullmatch(name) and record.is_file():
                listed = json.loads(record.read_text("utf-8")).get("files", [])
                cache[name] = [Path(f).resolve() for f in listed]
            else:
                cache[name] = None
        if cache[name] is None:
            return None
        out.extend(cache[name] or [])
    return out


def located_files(by_uid: dict[str, SeriesRecord],
                   deidentified: Deidentified | None) -> dict[str, list[Path]]:
    """Per image volume, the files whose folders a sheet folder is matched against: its own
    (resolved), or on a de-identified tree the source files it was made from (empty when
    unknown, so that it matches no folder)."""
    if deidentified is None:
        return {ref: [Path(f).resolve() for f in rec.files] for ref, rec in by_uid.items()}
    if deidentified.sources_dir is None:
        return {}
    cache: dict[str, list[Path] | None] = {}
    return {ref: deid_folder_sources(rec.files, deidentified.sources_dir, cache) or []
            for ref, rec in by_uid.items()}
