"""Convert step for DICOM masks: one RTSTRUCT or SEG object -> one label-map NIfTI per ROI.

The masks are built on the grid of the image series the crawl linked the object to (read from
that image's convert sidecar, so the image is converted once, whatever the number of ROIs), and
only for the ROIs the crawl planned pairs for (``labels`` in the private source JSON).

Overlap rule: ROIs and segments may overlap (a GTV inside a PTV, overlapping SEG segments), so
each gets its **own file** ``convert/<case_id>/<mask_key>_<label>.nii.gz`` holding the value
``label`` (ROINumber / SegmentNumber) inside and 0 outside. No file name holds an ROI name.

The sidecar ``convert/<case_id>/<mask_key>.json`` records ``status`` of the object (``ok`` when
it could be read on the image grid), the image grid, and under ``rois`` one entry per label:
``status`` (``ok`` or ``failed:<reason>``), ``nifti``, ``voxel_hash``, ``n_voxels`` and ``qc``
(what was skipped, e.g. open contours; see :mod:`radflow.dicom.rtstruct`, :mod:`radflow.dicom.seg`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np

from radflow import __version__
from radflow.dicom.grid import Grid
from radflow.dicom.headers import quiet_pydicom, read_header
from radflow.dicom.rtstruct import Raster, rasterise_roi, read_structure_set
from radflow.dicom.seg import iter_seg_masks, outside_problem
from radflow.errors import PairingError, RadflowError
from radflow.io.nifti import write_nifti
from radflow.records import Status, read_sidecar
from radflow.settings import OutsidePolicy

logger = logging.getLogger(__name__)

MASK_KINDS = ("rtstruct", "seg")


def roi_file_name(mask_key: str, label: int) -> str:
    """File name of the mask of one ROI: ``<mask_key>_<label>.nii.gz``."""
    return f"{mask_key}_{int(label)}.nii.gz"


def _image_grid(image_sidecar: str | None, key: str) -> tuple[Grid, str]:
    if not image_sidecar:
        raise PairingError(f"mask {key}: no image to build the masks on",
                           reason="image-not-converted")
    image = read_sidecar(image_sidecar)
    status = Status.parse(image.status)
    if not status.is_ok:
        raise PairingError(f"mask {key}: image {image.series_key}: {image.status}",
                           reason=f"image-{status.reason}")
    return Grid.from_sidecar(image.grid or {}), image.series_key


def _rasters(source: dict[str, Any], grid: Grid, labels: list[int]) \
        -> Iterator[tuple[int, Raster | RadflowError]]:
    """Each planned label's raster or its per-ROI error, one at a time (bounded memory)."""
    key, kind, mask = source["series_key"], source["kind"], source["mask"]
    # written by the crawl from RoiSettings, whose Literal was checked when the config was read
    policy = cast(OutsidePolicy, mask.get("contours_outside_image", "fail"))
    if kind == "rtstruct":
        ds, _ = read_header(source["files"][0])
        with quiet_pydicom():
            rois = {r.number: r for r in read_structure_set(ds, key).rois}
        for label in labels:
            if label not in rois:
                yield label, PairingError(f"RTSTRUCT {key}: ROI {label} is gone (the file "
                                          "changed since the crawl)", reason="label-absent")
                continue
            try:
                yield label, rasterise_roi(rois[label], grid, outside=policy,
                                           name=f"RTSTRUCT {key}, ROI {label}")
            except RadflowError as exc:
                yield label, exc
        return
    for label, raster in iter_seg_masks(source["files"][0], grid, labels, name=key,
                                        threshold=float(mask.get("fractional_threshold", 0.5))):
        try:
            outside_problem(raster, policy, f"SEG {key}, segment {label}")
            yield label, raster
        except RadflowError as exc:
            yield label, exc


def convert_mask_object(source: dict[str, Any], out_dir: Path,
                        image_sidecar: str | None) -> dict[str, Any]:
    """Convert one RTSTRUCT/SEG source; write its per-ROI NIfTI files; return the sidecar.

    Parameters
    ----------
    source
        The private source record (``kind`` ``rtstruct`` or ``seg``, ``files``, ``mask`` with
        ``image_key``, ``labels`` and the reading settings).
    out_dir
        ``convert/<case_id>/``.
    image_sidecar
        The convert sidecar of the linked image (its ``grid``).

    Problems of the whole object are returned as ``status = "failed:<reason>"``, problems of
    one ROI in its ``rois`` entry; nothing is raised.
    """
    key = source["series_key"]
    labels = [int(v) for v in source.get("mask", {}).get("labels", [])]
    sidecar: dict[str, Any] = {"series_key": key, "case_id": source["case_id"], "role": "mask",
                               "kind": source["kind"], "radflow_version": __version__,
                               "image_key": source.get("mask", {}).get("image_key", ""),
                               "acquisition": {}, "rois": {}}
    written: set[str] = set()
    try:
        grid, _ = _image_grid(image_sidecar, key)
        for label, result in _rasters(source, grid, labels):
            if isinstance(result, RadflowError):
                sidecar["rois"][str(label)] = {"status": str(Status.of_reason(result.reason)),
                                               "error": str(result)}
                logger.warning("convert %s, label %d: failed:%s: %s", key, label, result.reason,
                            result)
                continue
            name = roi_file_name(key, label)
            values = result.mask.astype(np.uint8 if label <= 255 else np.int32) * label
            voxel_hash = write_nifti(out_dir / name, grid.image(values))
            written.add(name)
            sidecar["rois"][str(label)] = {
                "status": "ok", "nifti": name, "voxel_hash": voxel_hash,
                "n_voxels": int(result.mask.sum()), "qc": dict(sorted(Counter(result.qc).items()))}
        sidecar.update(status="ok", grid=_grid_json(grid))
    except RadflowError as exc:
        logger.warning("convert %s: failed:%s: %s", key, exc.reason, exc)
        sidecar.update(status=str(Status.of_reason(exc.reason)), error=str(exc), rois={})
        written.clear()  # no mask of a failed object is left behind
    for stale in out_dir.glob(f"{key}_*.nii.gz"):
        if stale.name not in written:
            stale.unlink(missing_ok=True)
    return sidecar


def _grid_json(grid: Grid) -> dict[str, Any]:
    return {"size": list(grid.size), "spacing": list(grid.spacing),
            "origin": list(grid.origin), "direction": list(grid.direction)}


__all__ = ["MASK_KINDS", "convert_mask_object", "roi_file_name"]
