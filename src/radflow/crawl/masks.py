"""Crawl step for DICOM masks: every SEG and RTSTRUCT becomes a mask source and one planned pair
per ROI or segment.

For each SEG/RTSTRUCT series the index found (its record says ``excluded:non-image-*``: no image),
every file is one mask object (keyed by its SOPInstanceUID, whatever series holds it; label-map
SEGs included). Its header is summarised
(:func:`radflow.dicom.references.read_mask_object`), linked to an image series of the same patient
(:func:`radflow.dicom.references.link_mask`; the step that decided is the pair's
``pairing_reason``), and each ROI passes the name rules (:mod:`radflow.rois`). An ROI that is
paired gets ``label`` = its ROINumber / SegmentNumber (the value of its mask) and ``roi`` = its
canonical (cleaned) name.

Statuses
--------
* mask object (``series.tsv``, role ``mask``): ``ok``; ``failed:invalid-rtstruct`` /
  ``failed:invalid-seg`` / a read reason; ``failed:conflicting-duplicates`` (one SOPInstanceUID,
  files with different content, in one series or several; identical copies are read once).
* ROI (``crawl/rois.tsv``): ``ok``, ``excluded:empty-roi`` / ``point-roi`` / ``open-contours``
  (nothing to rasterise), ``excluded:roi-excluded`` / ``roi-not-included`` / ``roi-unmapped``
  (name rules).
* planned pair: ``ok``; ``failed:ambiguous-reference`` (candidates in ``candidates``);
  ``failed:reference-not-found``; ``failed:missing-referenced-images`` (linked by reference, but
  contours / frames of the ROI are drawn on images the series does not hold);
  ``failed:image-<reason>`` (the linked series is not usable).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radflow.dicom.geometry import direction_matrix
from radflow.dicom.grid import Grid
from radflow.dicom.records import SeriesRecord
from radflow.dicom.references import (
    ImageCandidate,
    Link,
    MaskObject,
    link_mask,
    mask_kind,
    read_mask_object,
    read_sop_instances,
)
from radflow.errors import RadflowError
from radflow.keys import volume_key
from radflow.records import Status
from radflow.rois import decide
from radflow.settings import RoiSettings

logger = logging.getLogger(__name__)


@dataclass
class MaskPlan:
    """What the crawl records for the DICOM masks.

    Attributes
    ----------
    objects
        One entry per mask object: ``row`` (the ``series.tsv`` row), ``files``, ``kind``,
        ``image_key``, ``labels`` (of the ROIs to convert).
    pairs
        Planned pair rows (without ``pair_id``), one per paired ROI.
    rois
        ``crawl/rois.tsv`` rows, one per ROI of every readable object.
    """

    objects: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    rois: list[dict[str, Any]] = field(default_factory=list)


def image_candidate(rec: SeriesRecord, row: dict[str, Any]) -> ImageCandidate:
    """An :class:`ImageCandidate` of a crawled image series (its ``series.tsv`` row)."""
    grid = None
    if (rec.origin is not None and rec.spacing is not None and rec.orientation is not None
            and rec.rows and rec.cols and rec.n_slices):
        try:
            direction = direction_matrix(rec.orientation)
        except RadflowError:
            direction = None
        if direction is not None:
            grid = Grid((int(rec.cols), int(rec.rows), int(rec.n_slices)),
                        tuple(float(v) for v in rec.spacing),  # type: ignore[arg-type]
                        tuple(float(v) for v in rec.origin),  # type: ignore[arg-type]
                        tuple(float(v) for v in direction.ravel()))
    folder = Path(os.path.commonpath([str(Path(f).parent) for f in rec.files]))
    return ImageCandidate(row["series_key"], rec.series_uid, rec.frame_of_reference_uid,
                          rec.modality, rec.status, folder, grid)


def _mask_key(key: bytes, sop_uid: str, path: Path) -> str:
    return (volume_key(key, "mask", sop_uid) if sop_uid
            else volume_key(key, "mask-file", str(path.resolve())))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class _Parsed:
    """One mask object as read: its files, header summary (``None`` when it failed), status."""

    base: dict[str, Any]
    kind: str
    files: list[Path]
    obj: MaskObject | None
    status: str
    message: str = ""


def _read_objects(rec: SeriesRecord, base: dict[str, Any], key: bytes,
                  parsed: dict[str, _Parsed]) -> None:
    """Add the SOP instances of one mask series to ``parsed`` (by mask key, across series: a
    key names one SOPInstanceUID, so two series holding it are one object or a conflict)."""
    kind = mask_kind(rec.sop_class_uid) or "mask"
    for path in rec.files:
        path = Path(path)
        tmp_key = _mask_key(key, "", path)
        try:
            obj = read_mask_object(path, tmp_key)
        except RadflowError as exc:
            parsed[tmp_key] = _Parsed(base, kind, [path], None,
                                      str(Status.of_reason(exc.reason)), str(exc))
            continue
        mkey = _mask_key(key, obj.sop_instance_uid, path)
        seen = parsed.get(mkey)
        if seen is None:
            parsed[mkey] = _Parsed(base, obj.kind, [path], obj, "ok")
            continue
        seen.files.append(path)
        if seen.status == "ok" and _digest(seen.files[0]) != _digest(path):
            seen.obj, seen.status = None, str(Status.failed("conflicting-duplicates"))
            seen.message = (f"{len(seen.files)} files share one SOPInstanceUID with different "
                            "content")
        # else an identical copy: read once


def plan_dicom_masks(masks: Sequence[tuple[SeriesRecord, dict[str, Any]]],
                     images: Sequence[tuple[SeriesRecord, dict[str, Any]]], key: bytes,
                     rois: RoiSettings, fallback_modalities: Sequence[str] = ()) -> MaskPlan:
    """Plan the mask sources, pairs and ROI rows of the crawled SEG/RTSTRUCT series.

    Parameters
    ----------
    masks
        ``(record, series.tsv row)`` of every SEG/RTSTRUCT series.
    images
        ``(record, series.tsv row)`` of every image series (any status).
    key
        Pseudonymisation key.
    rois
        ROI name rules and mask reading settings.
    fallback_modalities
        ``crawl.fallback_modalities``.
    """
    by_case: dict[str, list[ImageCandidate]] = {}
    files_of: dict[str, tuple[str, ...]] = {}
    status_of: dict[str, str] = {}
    for rec, row in images:
        if row["role"] != "image" or not row["case_id"]:
            continue
        cand = image_candidate(rec, row)
        by_case.setdefault(row["case_id"], []).append(cand)
        files_of[cand.series_key] = tuple(str(f) for f in rec.files)
        status_of[cand.series_key] = rec.status
    cache: dict[str, frozenset[str]] = {}

    def instances(c: ImageCandidate) -> frozenset[str]:
        if c.series_key not in cache:
            cache[c.series_key] = read_sop_instances(files_of[c.series_key])
        return cache[c.series_key]

    plan = MaskPlan()
    parsed: dict[str, _Parsed] = {}
    for rec, base in masks:
        if Status.parse(rec.status).is_non_image:  # the index's mark of a mask-object series
            _read_objects(rec, base, key, parsed)
        else:  # the series failed as a whole (e.g. a truncated file)
            plan.objects.append(_object(base, base["series_key"], list(rec.files), "", rec.status,
                                        "", ()))
    for mkey, item in parsed.items():
        base, files, obj = item.base, item.files, item.obj
        if obj is None:
            logger.warning("mask object (%s) %s: %s: %s", item.kind.upper(), mkey, item.status,
                           item.message)
            plan.objects.append(_object(base, mkey, files, "", item.status, "", ()))
            continue
        link = link_mask(obj, files[0], by_case.get(base["case_id"], []), instances,
                         fallback_modalities)
        labels = _plan_rois(obj, mkey, base["case_id"], link, rois, instances, status_of, plan)
        image_key = link.image.series_key if link.image is not None else ""
        plan.objects.append(_object(base, mkey, files, obj.kind, "ok", image_key, labels))
        _log_link(f"mask object ({obj.kind.upper()}) {mkey}", link)
    return plan


def _object(base: dict[str, Any], mkey: str, files: list[Path], kind: str, status: str,
            image_key: str, labels: Sequence[int]) -> dict[str, Any]:
    row = dict(base)
    row.update(series_key=mkey, role="mask", n_instances=len(files), status=status,
               rows=None, cols=None, slices=None, spacing_x=None, spacing_y=None,
               spacing_z=None, orientation="")
    return {"row": row, "files": [str(f) for f in files], "kind": kind,
            "image_key": image_key, "labels": [int(v) for v in labels]}


def _plan_rois(obj: MaskObject, mkey: str, case_id: str, link: Link, rules: RoiSettings,
               instances: Callable[[ImageCandidate], frozenset[str]],
               status_of: dict[str, str], plan: MaskPlan) -> list[int]:
    """Add the ROI rows and planned pairs of one object; return the labels to convert."""
    labels = []
    by_reference = link.reason in ("referenced-series", "referenced-instances")
    for roi in obj.rois:
        decision = decide(roi.name, rules)
        status = str(Status.excluded(roi.exclusion)) if roi.exclusion else decision.status
        plan.rois.append({"case_id": case_id, "mask_key": mkey, "label": roi.label,
                          "roi_source": decision.source_name, "roi": decision.roi,
                          "match": decision.match, "status": status})
        if status != "ok":
            continue
        image = link.image
        image_status = status_of.get(image.series_key, "") if image is not None else ""
        pair_status = link.status
        if image is not None:
            missing = roi.image_refs - instances(image) if by_reference else frozenset()
            if missing:
                pair_status = str(Status.failed("missing-referenced-images"))
                logger.warning("mask object %s, label %d: drawn on %d image(s) that series %s "
                               "does not hold", mkey, roi.label, len(missing), image.series_key)
            elif image_status != "ok":
                pair_status = str(Status.failed("image-" + Status.parse(image_status).reason))
        if pair_status == "ok":
            labels.append(roi.label)
        plan.pairs.append({
            "case_id": case_id, "image_key": image.series_key if image is not None else "",
            "mask_key": mkey, "label": roi.label, "roi": decision.roi,
            "roi_source": decision.source_name, "sheet_row": None,
            "image_status": image_status, "mask_status": "ok", "status": pair_status,
            "pairing_reason": link.reason, "candidates": ",".join(link.candidates),
        })
    return labels


def _log_link(what: str, link: Link) -> None:
    if link.image is not None:
        logger.info("%s: paired with image %s (%s)", what, link.image.series_key, link.reason)
    else:
        logger.warning("%s: %s (%s)", what, link.status, link.message)


__all__ = ["MaskPlan", "image_candidate", "plan_dicom_masks"]
