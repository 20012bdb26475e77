"""The ``sr`` stage: one job per extraction unit (an image and all its pairs) writes, for every
pair whose image is a DICOM series, a DICOM SEG of its mask (or references the DICOM SEG it
came from) and a Comprehensive 3D SR (TID 1500) of its features; and the stage's status table.

Statuses of a pair (``sr/<case_id>/<unit>.json`` and ``sr/status.tsv``): ``ok``;
``excluded:no-dicom-source`` (the image is a NIfTI/NRRD file named in the sheet, or there is
none); ``skipped:<status>`` (the pair, or its extraction, is not ``ok``);
``failed:source-grid-mismatch`` (:mod:`radflow.sr.seg`); ``failed:sr-error`` (highdicom
refused to build an object; the message says why).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pydicom
from pydicom.dataset import Dataset

from radflow.errors import DicomError, InputFileError, RadflowError
from radflow.io.atomic import atomic_path, write_json, write_tsv
from radflow.io.nifti import read_image
from radflow.records import (
    Status,
    read_extract_status,
    read_pair_record,
    read_source,
)
from radflow.settings import from_mapping
from radflow.sr.report import (
    ReportContext,
    ReportIdentity,
    SegmentRef,
    build_report,
    measurement_groups,
    uid_of,
)
from radflow.sr.seg import SegIdentity, build_seg, mask_on_source_frames
from radflow.sr.settings import SrSettings

logger = logging.getLogger(__name__)

#: Columns of ``sr/status.tsv``.
STATUS_COLUMNS = ("case_id", "image_key", "pair_id", "roi", "label", "status", "sr_file",
                  "seg_file", "seg", "n_measurements", "n_left_out", "message")
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


@dataclass(frozen=True)
class PairSr:
    """The ``sr`` stage's outcome for one pair (a row of ``sr/status.tsv``).

    ``sr_file`` / ``seg_file``: file names in the unit's folder (``""``: none written); ``seg``:
    ``written`` (radflow's SEG), ``referenced`` (the DICOM SEG the mask came from) or ``""``.
    """

    case_id: str
    image_key: str
    pair_id: str
    roi: str
    label: int | None
    status: str
    sr_file: str = ""
    seg_file: str = ""
    seg: str = ""
    n_measurements: int = 0
    n_left_out: int = 0
    message: str = ""


def _headers(files: Sequence[str]) -> list[Dataset]:
    return [pydicom.dcmread(f, stop_before_pixels=True) for f in files]


def _sources(paths: Sequence[str]) -> dict[str, Any]:
    out = {}
    for path in paths:
        record = read_source(path)
        out[record.series_key] = record
    return out


def run_sr_unit(*, pairs: Sequence[str], features: str, extract_status: str,
                sources: Sequence[str], settings: Mapping[str, Any] | SrSettings,
                pet_units: str, version: str, out_dir: str, out_status: str) -> list[PairSr]:
    """Write the SEG and SR of every pair of one extraction unit and the unit's status record.

    Parameters
    ----------
    pairs
        The unit's pair records (``pair/<pair_id>.json``).
    features, extract_status
        The unit's extract outputs (``extract/<case_id>/<unit>.parquet`` and ``.json``).
    sources
        The crawl's source records of the unit's image and masks (those that exist).
    settings
        The ``sr`` section.
    pet_units
        ``convert.pet_units`` (the unit of PET intensities).
    version
        radflow's version.
    out_dir
        The unit's folder of DICOM files (created, even when empty).
    out_status
        The unit's status record (JSON: ``{"pairs": [<PairSr>...]}``).
    """
    cfg = settings if isinstance(settings, SrSettings) else from_mapping(
        SrSettings, settings, section="sr")
    started = time.perf_counter()
    records = _sources(sources)
    statuses = {p.pair_id: p for p in read_extract_status(extract_status).pairs}
    rows = pd.read_parquet(features) if os.path.getsize(features) else pd.DataFrame()
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    cache: dict[str, list[Dataset]] = {}
    results = []
    for path in pairs:
        pair = read_pair_record(path)
        base = PairSr(case_id=pair.case_id or "", image_key=pair.image_key or "",
                      pair_id=pair.pair_id, roi=pair.roi or "", label=pair.label, status="")
        image = records.get(pair.image_key or "")
        extract = statuses.get(pair.pair_id)
        if image is None or image.kind != "dicom":
            result = replace(base, status=str(Status.excluded("no-dicom-source")))
        elif pair.status != "ok":
            result = replace(base, status=str(Status.skipped(pair.status)))
        elif extract is None or extract.status != "ok":
            missing = Status.failed("not-extracted")  # no status in the unit's record
            result = replace(base, status=str(Status.skipped(
                extract.status if extract is not None else missing)))
        else:
            try:
                result = _write_pair(pair, image, records.get(pair.mask_key or ""),
                                     rows[rows["pair_id"] == pair.pair_id], cfg, pet_units,
                                     version, out_dir, cache, base)
            except RadflowError as exc:
                result = replace(base, status=str(Status.of_reason(exc.reason)),
                                message=str(exc))
            except (ValueError, TypeError, AttributeError) as exc:  # highdicom's refusals
                result = replace(base, status=str(Status.failed("sr-error")),
                                message=f"{pair.pair_id}: {type(exc).__name__}: {exc}"[:500])
        logger.info("%s: %s%s", pair.pair_id, result.status,
                    f" ({result.message})" if result.message else "")
        results.append(result)
    write_json(out_status, {"unit": Path(out_dir).name, "n_pairs": len(results),
                            "seconds": round(time.perf_counter() - started, 3),
                            "pairs": [asdict(r) for r in results]})
    return results


def _write_pair(pair: Any, image: Any, mask_source: Any, rows: pd.DataFrame, cfg: SrSettings,
                pet_units: str, version: str, out_dir: str, cache: dict[str, list[Dataset]],
                base: PairSr) -> PairSr:
    """The SEG (unless the mask is a DICOM SEG) and the SR of one pair."""
    if image.frames is not None and any(f is not None for f in image.frames):
        raise DicomError(f"{pair.pair_id}: the image is part of a multi-frame split",
                         reason="source-grid-mismatch")
    if image.series_key not in cache:
        cache.clear()
        cache[image.series_key] = _headers(image.files)
    headers = cache[image.series_key]
    if cfg.image_types:
        rows = rows[rows["image_type"].isin(cfg.image_types)]
    content = "|".join(str(rows[c].iloc[0]) if len(rows) else "" for c in
                       ("image_hash", "mask_hash", "params_hash"))
    tracking_uid = uid_of("roi", pair.pair_id)
    tracking_id = f"{pair.roi or 'ROI'} ({pair.pair_id})"
    evidence = list(headers)
    seg_file = ""
    seg_ds: Dataset | None = None
    if mask_source is not None and mask_source.kind == "seg":
        seg = pydicom.dcmread(mask_source.files[0], stop_before_pixels=True)
        segment = SegmentRef(str(seg.SOPClassUID), str(seg.SOPInstanceUID), int(pair.label or 1),
                             str(headers[0].SeriesInstanceUID))
        evidence.append(seg)
        seg_kind = "referenced"
    else:
        mask = read_image(pair.mask or "", name=f"{pair.pair_id} mask")
        frames = mask_on_source_frames(mask, int(pair.label or 1), headers, pair.pair_id)
        identity = SegIdentity(uid_of("seg-series", pair.pair_id, content, version),
                               uid_of("seg", pair.pair_id, content, version), tracking_uid,
                               tracking_id)
        seg_ds = build_seg(headers, frames, roi=pair.roi or "", identity=identity,
                           version=version)
        seg_file = f"{pair.pair_id}.seg.dcm"
        segment = SegmentRef(SEG_STORAGE, identity.instance_uid, 1,
                             str(headers[0].SeriesInstanceUID))
        evidence.append(seg_ds)
        seg_kind = "written"
    context = ReportContext(modality=str(headers[0].get("Modality", "")), pet_units=pet_units,
                            uncoded=cfg.uncoded)
    identity_sr = ReportIdentity(uid_of("sr-series", pair.pair_id, content, version),
                                 uid_of("sr", pair.pair_id, content, version), tracking_uid,
                                 tracking_id)
    groups, left_out = measurement_groups(rows, segment, identity_sr, context, version)
    n = left_out.pop("measurements")
    if not groups:
        raise DicomError(f"{pair.pair_id}: no feature row to report", reason="sr-error")
    sr = build_report(evidence, groups, identity_sr, version)
    sr_file = f"{pair.pair_id}.sr.dcm"
    if seg_ds is not None:  # both written only when both could be built
        _save(seg_ds, Path(out_dir) / seg_file)
    _save(sr, Path(out_dir) / sr_file)
    return replace(base, status="ok", sr_file=sr_file, seg_file=seg_file, seg=seg_kind,
                  n_measurements=n, n_left_out=sum(left_out.values()),
                  message=", ".join(f"{v} {k}" for k, v in left_out.items() if v))


def _save(dataset: Dataset, dest: Path) -> None:
    with atomic_path(dest) as tmp:
        dataset.save_as(tmp, enforce_file_format=True)


def write_status_table(records: Sequence[str], out: str) -> pd.DataFrame:
    """``sr/status.tsv``: the rows of every unit's status record, sorted by case and pair."""
    rows: list[dict[str, Any]] = []
    for path in records:
        try:
            rows += json.loads(Path(path).read_text(encoding="utf-8"))["pairs"]
        except (OSError, ValueError, KeyError) as exc:
            raise InputFileError(f"{Path(path).name}: not an sr status record ({exc})",
                                 reason="bad-status-record") from exc
    table = pd.DataFrame(rows, columns=list(STATUS_COLUMNS))
    table = table.sort_values(["case_id", "pair_id"], kind="stable").reset_index(drop=True)
    table["label"] = table["label"].astype("Int64").astype(str).replace("<NA>", "")
    write_tsv(out, table)
    return table


__all__ = ["STATUS_COLUMNS", "PairSr", "run_sr_unit", "write_status_table"]
