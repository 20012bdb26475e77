"""Cohort sheets: reading and validating them, and turning each row into a planned pair.

A row names its image by ``series:<SeriesInstanceUID>``, by a DICOM folder (the one image series
whose files all lie in it), or by an image file (NIfTI/NRRD/...); its mask is an image file. On a
tree radflow de-identified itself, the row's source references are translated through the
de-identification stage's UID/source map (:mod:`radflow.records.uid_map`): ``series:<UID>`` to the
de-identified UID, a folder to the de-identified series made from its files
(:func:`deid_folder_sources`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from radflow.crawl.table import (
    IMAGE_FILE_SUFFIXES,
    SHEET_SCHEMA,
    CrawlSource,
    Deidentified,
    patient_case_id,
)
from radflow.dicom.index import SeriesRecord
from radflow.errors import ConfigError, InputFileError
from radflow.io.volume_files import header_grid
from radflow.keys import case_id as make_case_id
from radflow.keys import pair_id as make_pair_id
from radflow.keys import volume_key
from radflow.records.status import Status
from radflow.records.tables import SERIES_COLUMNS
from radflow.records.uid_map import UidMap
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
    return (Path(__file__).resolve().parents[3] / "config" / "schema" / name).read_text("utf-8")


def resolve_sheet_path(value: str, sheet_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (sheet_dir / path)


def is_image_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in IMAGE_FILE_SUFFIXES)


def file_source(path: Path, role: str, cid: str, subject_ref: str, key: bytes,
                 sources: dict[str, CrawlSource], modality: str = "") -> tuple[str, str]:
    """Register an image/mask file from the sheet; return (series_key, status).

    ``modality`` is the sheet's ``modality`` column for an image file (``""``: unknown); it
    becomes the file's ``modality`` in ``series.tsv`` (a file named twice keeps the first
    non-empty one)."""
    skey = volume_key(key, "file", str(path.resolve()), subject=subject_ref)
    if skey in sources:
        if modality and not sources[skey].row["modality"]:
            sources[skey].row["modality"] = modality
        return skey, sources[skey].row["status"]
    if not path.is_file():
        status = str(Status.failed("missing-file"))
    elif not is_image_file(path):
        status = str(Status.failed("unsupported-file-type"))
    else:
        status = "ok"
    row = dict.fromkeys(SERIES_COLUMNS, None)
    row.update(case_id=cid, series_key=skey, study_key="", source="file", role=role,
               modality=modality, n_instances=1, status=status, orientation="",
               series_description="", manufacturer="")
    # its size from the header (voxels not read), as for a DICOM series: the Snakefile's
    # resource model reads it from series.tsv instead of opening every file at every start.
    # An unreadable header leaves the cells empty; convert reports the file.
    grid = header_grid(path) if status == "ok" else None
    if grid is not None:
        (cols, rows, slices), (sx, sy, sz) = grid
        row.update(rows=rows, cols=cols, slices=slices, spacing_x=sx, spacing_y=sy,
                   spacing_z=sz)
    sources[skey] = CrawlSource(skey, cid, "image-file", role, [str(path.resolve())], row)
    return skey, status


def plan_sheet_row(row: dict[str, Any], key: bytes, sheet_dir: Path,
                   by_uid: dict[str, SeriesRecord], folder: Path | None,
                   sources: dict[str, CrawlSource], located: dict[str, list[Path]],
                   deidentified: Deidentified | None = None,
                   uid_map: UidMap | None = None) -> dict[str, Any]:
    """The planned pair of one sheet row (a ``pair_plan.tsv`` row); registers its files in
    ``sources``.

    Parameters
    ----------
    folder
        The row's image folder (resolved), when its image is a DICOM folder.
    located
        :func:`located_files` of ``by_uid``, computed once per crawl (only read for folder rows).
    uid_map
        The de-identification's UID/source map (:func:`radflow.records.uid_map.read_uid_map`), when
        ``deidentified`` has one.
    """
    subject = row["subject"]
    cid = make_case_id(key, subject)
    image_ref = row["image"]
    problem = ""
    if image_ref.startswith("series:"):
        uid = image_ref.removeprefix("series:").strip()
        if deidentified is not None:
            uid = deid_series_ref(uid, uid_map)
        rec = by_uid.get(uid)
        image_key = volume_key(key, "series", uid)
        if rec is None or image_key not in sources:
            image_status = str(Status.failed("series-not-found"))
        else:
            image_status = sources[image_key].row["status"]
            if patient_case_id(key, rec.patient_id, deidentified) != cid:
                problem = str(Status.failed("subject-mismatch"))
    elif folder is not None:
        # every file of the series lies in the folder (on a de-identified tree: every source
        # file it was made from)
        candidates = [r for ref, r in by_uid.items()
                      if r.status == "ok" and located.get(ref)
                      and all(folder in p.parents for p in located[ref])]
        if len(candidates) == 1:
            rec = candidates[0]
            image_key = volume_key(key, "series", rec.series_uid, split=rec.split)
            image_status = "ok"
            if patient_case_id(key, rec.patient_id, deidentified) != cid:
                problem = str(Status.failed("subject-mismatch"))
        else:
            image_key = volume_key(key, "folder", str(folder))
            image_status = str(Status.failed("no-series-in-folder" if not candidates
                                              else "ambiguous-series-folder"))
    else:
        image_key, image_status = file_source(resolve_sheet_path(image_ref, sheet_dir),
                                              "image", cid, subject, key, sources,
                                              modality=row.get("modality", ""))
    mask_key, mask_status = file_source(resolve_sheet_path(row["mask"], sheet_dir), "mask",
                                        cid, subject, key, sources)
    status = problem or next((str(Status.failed(f"{which}-{Status.parse(s).reason}"))
                              for which, s in (("image", image_status), ("mask", mask_status))
                              if s != "ok"), "ok")
    return {
        "pair_id": make_pair_id(image_key, mask_key, row["label"], row["roi"]),
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
    if deidentified.source_root is None or deidentified.uid_map is None:
        raise ConfigError(f"cohort sheet {name}, row {min(folders)}: an image folder with "
                          "deidentify=true needs the de-identification's source records "
                          "(the crawl was called without Deidentified.source_root and "
                          ".uid_map)")
    root = Path(deidentified.source_root).resolve()
    for row, folder in sorted(folders.items()):
        if folder != root and root not in folder.parents:
            raise ConfigError(f"cohort sheet {name}, row {row}: the image folder is not inside "
                              "dicom_root, so it was not de-identified; with deidentify=true "
                              "an image folder must be inside dicom_root (or name the image "
                              "by series:<SeriesInstanceUID>)")


def deid_series_ref(uid: str, uid_map: UidMap | None) -> str:
    """The de-identified tree's reference of the sheet's ``series:<uid>``: the de-identified UID
    (and the ``_e2``-style suffix of one volume of a split series). A UID the map does not know,
    or any UID without a map, stays as it is (with ``deid.retain_uids`` that is the UID of the
    de-identified tree; else it names none of its series)."""
    base, sep, split = uid.partition("_")
    new = uid_map.series_uid.get(base) if uid_map is not None else None
    return (new + sep + split) if new else uid


def deid_folder_sources(files: Sequence[str | os.PathLike[str]], uid_map: UidMap,
                        cache: dict[str, list[Path] | None] | None = None) -> list[Path] | None:
    """The source files that the de-identified ``files`` were made from (resolved paths).

    Each de-identified series lies in a folder named after its source ``series_key``
    (:func:`radflow.deidentify.series_output_dir`), whose source files the UID/source map lists. A
    volume that the crawl of the de-identified tree puts together from several such folders
    (single-frame splits) gets the union. None when a folder is not in the map.
    """
    cache = {} if cache is None else cache
    out: list[Path] = []
    for name in dict.fromkeys(Path(f).parent.name for f in files):
        if name not in cache:
            listed = uid_map.source_files.get(name)
            cache[name] = None if listed is None else [Path(f).resolve() for f in listed]
        if cache[name] is None:
            return None
        out.extend(cache[name] or [])
    return out


def located_files(by_uid: dict[str, SeriesRecord], deidentified: Deidentified | None,
                  uid_map: UidMap | None = None) -> dict[str, list[Path]]:
    """Per image volume, the files whose folders a sheet folder is matched against: its own
    (resolved), or on a de-identified tree the source files it was made from (empty when
    unknown, so that it matches no folder)."""
    if deidentified is None:
        return {ref: [Path(f).resolve() for f in rec.files] for ref, rec in by_uid.items()}
    if uid_map is None:
        return {}
    cache: dict[str, list[Path] | None] = {}
    return {ref: deid_folder_sources(rec.files, uid_map, cache) or []
            for ref, rec in by_uid.items()}
