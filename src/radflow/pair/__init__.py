"""Stage ``pair``: check each planned image x mask x label pair and record the decision.

``pair_one`` (one job per pair) reads the crawl's plan and the two convert sidecars and writes
``<results>/pair/<pair_id>.json``: status (``ok`` | ``failed:<reason>``), the image and mask files
extract should read, their voxel hashes, the number of ROI voxels, and whether the mask was
resampled. For an RTSTRUCT/SEG mask the mask file is the one of the pair's label (one file per
ROI, :mod:`radflow.convert.masks`) and ``mask_qc`` lists what its conversion skipped. ``pair``
gathers the records into ``<results>/pair/pairs.tsv`` and counts the ROI names of the crawl's
``rois.tsv`` into ``<results>/pair/roi_names.tsv`` (:func:`radflow.rois.name_report`).

Grid rule: image and mask are on the same grid when their sizes are equal, origins and spacings
agree within ``grid_atol_mm`` and direction cosines within ``grid_atol_mm / 100``. Otherwise the
mask is resampled onto the image grid with nearest-neighbour interpolation when
``resample_mask: true`` (written to ``<pair_id>_mask.nii.gz``, or ``.mha`` beside a ``.mha``
image, and recorded), and the pair fails with ``failed:grid-mismatch`` when it is not. A mask on
the same grid by this rule whose geometry is still beyond ITK's 1e-6 check (PyRadiomics would
stop with "geometry mismatch") is written there with the image's geometry and unchanged voxels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import SimpleITK as sitk

from radflow import __version__
from radflow.errors import PairingError, RadflowError
from radflow.io.atomic import write_tsv
from radflow.io.nifti import read_image
from radflow.io.volume_files import same_format_path, write_volume
from radflow.records import (
    PairRecord,
    Status,
    read_pair_plan,
    read_pair_record,
    read_sidecar,
    read_table,
    write_pair_record,
)
from radflow.settings import PairSettings

if TYPE_CHECKING:  # pandas only for the pair table (rule pair), not in pair_one jobs
    import pandas as pd

logger = logging.getLogger(__name__)

PAIRS_COLUMNS = [
    "pair_id", "case_id", "image_key", "mask_key", "roi", "label", "status", "n_voxels",
    "mask_resampled", "grid_mismatch", "image_hash", "mask_hash", "pairing_reason",
    "roi_source", "mask_qc",
]


def grid_mismatch(image_grid: dict[str, Any], mask: sitk.Image, atol_mm: float) -> str:
    """Describe how ``mask``'s grid differs from ``image_grid`` ("" when they agree).

    Parameters
    ----------
    image_grid
        ``{"size": [3], "spacing": [3], "origin": [3], "direction": [9]}`` (a convert sidecar's
        ``grid``), spacing/origin in mm, direction row-major (ITK).
    """
    checks = [
        ("size", image_grid["size"], mask.GetSize(), 0.0),
        ("spacing", image_grid["spacing"], mask.GetSpacing(), atol_mm),
        ("origin", image_grid["origin"], mask.GetOrigin(), atol_mm),
        ("direction", image_grid["direction"], mask.GetDirection(), atol_mm / 100),
    ]
    problems = []
    for name, want, got, tol in checks:
        want_a, got_a = np.asarray(want, float), np.asarray(got, float)
        if want_a.shape != got_a.shape or np.max(np.abs(want_a - got_a)) > tol:
            problems.append(f"{name} {_fmt(got_a)} != image {_fmt(want_a)}")
    return "; ".join(problems)


def _fmt(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def resample_to_grid(mask: sitk.Image, image_grid: dict[str, Any]) -> sitk.Image:
    """Nearest-neighbour resampling of a label map onto the image grid (outside -> 0)."""
    ref = sitk.Image([int(v) for v in image_grid["size"]], mask.GetPixelID())
    ref.SetSpacing(image_grid["spacing"])
    ref.SetOrigin(image_grid["origin"])
    ref.SetDirection(image_grid["direction"])
    return sitk.Resample(mask, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                         mask.GetPixelID())


def _file_geometry(path: str) -> tuple[tuple[float, ...], ...]:
    """(spacing, origin, direction) of a volume file as SimpleITK reads it (header only)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.ReadImageInformation()
    return reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection()


def itk_grid_offset(image_path: str, mask: sitk.Image) -> float | None:
    """How far ``mask``'s grid is from the image file's, when ITK's default check would reject
    it (origin and spacing within 1e-6 x the image's first spacing, direction within 1e-6: the
    check of PyRadiomics' ``checkMask``); ``None`` when it accepts it.
    """
    spacing, origin, direction = _file_geometry(image_path)
    offsets = [np.max(np.abs(np.subtract(want, got))) for want, got in
               ((spacing, mask.GetSpacing()), (origin, mask.GetOrigin()),
                (direction, mask.GetDirection()))]
    tol = 1e-6 * abs(spacing[0])
    if offsets[0] <= tol and offsets[1] <= tol and offsets[2] <= 1e-6:
        return None
    return float(max(offsets))


def _with_geometry(mask: sitk.Image, image_path: str) -> sitk.Image:
    spacing, origin, direction = _file_geometry(image_path)
    out = sitk.Image(mask)
    out.SetSpacing(spacing)
    out.SetOrigin(origin)
    out.SetDirection(direction)
    return out


def _load_sidecar(path: str | None, which: str, label: int | None = None) -> dict[str, Any]:
    """Of a convert sidecar: ``path`` (the NIfTI to read), ``voxel_hash``, ``grid`` and ``qc``;
    for an RTSTRUCT/SEG sidecar, those of the entry of ``label`` (its own file, voxel hash and
    QC)."""
    if not path:
        raise PairingError(f"{which} was not converted", reason=f"{which}-not-converted")
    sidecar = read_sidecar(path)
    status = Status.parse(sidecar.status)
    if not status.is_ok:
        raise PairingError(f"{which} {sidecar.series_key}: {status}",
                           reason=f"{which}-{status.reason}")
    nifti, voxel_hash, qc = sidecar.nifti, sidecar.voxel_hash, {}
    if sidecar.rois is not None:
        roi = sidecar.rois.get(str(label))
        if roi is None:
            raise PairingError(f"{which} {sidecar.series_key}: label {label} was not "
                               "converted", reason="label-absent")
        roi_status = Status.parse(roi.status)
        if not roi_status.is_ok:
            raise PairingError(f"{which} {sidecar.series_key}, label {label}: "
                               f"{roi.status if roi.error is None else roi.error}",
                               reason=roi_status.reason)
        nifti, voxel_hash, qc = roi.nifti, roi.voxel_hash, roi.qc or {}
    return {"path": str(Path(path).with_name(str(nifti))), "voxel_hash": voxel_hash,
            "grid": sidecar.grid, "qc": qc}


def _qc_text(qc: dict[str, int]) -> str:
    return "; ".join(f"{k}={v}" for k, v in sorted(qc.items()) if v)


def pair_one(plan: dict[str, Any], image_sidecar: str | None, mask_sidecar: str | None,
             settings: PairSettings, resampled_mask: Path) -> dict[str, Any]:
    """Check one planned pair; return the pair record (``status`` says whether it is usable).

    Per-pair problems are returned as ``failed:<reason>``, never raised.
    """
    record: dict[str, Any] = {k: plan[k] for k in
                              ("pair_id", "case_id", "image_key", "mask_key", "roi", "label")}
    record.update(status="ok", image="", mask="", image_hash="", mask_hash="", n_voxels=0,
                  mask_resampled=False, grid_mismatch="", radflow_version=__version__,
                  pairing_reason=plan.get("pairing_reason") or "sheet",
                  roi_source=plan.get("roi_source") or plan["roi"], mask_qc="")
    try:
        if plan["status"] != "ok":
            candidates = plan.get("candidates") or ""
            raise PairingError(f"pair {plan['pair_id']}: crawl planned it as {plan['status']}"
                               + (f" (candidates: {candidates})" if candidates else ""),
                               reason=Status.parse(plan["status"]).reason)
        image = _load_sidecar(image_sidecar, "image")
        mask_meta = _load_sidecar(mask_sidecar, "mask", int(plan["label"]))
        record["mask_qc"] = _qc_text(mask_meta.get("qc", {}))
        mask = read_image(mask_meta["path"], name=f"mask {plan['mask_key']}")
        record.update(image=image["path"], image_hash=image["voxel_hash"],
                      mask=mask_meta["path"], mask_hash=mask_meta["voxel_hash"])
        mismatch = grid_mismatch(image["grid"], mask, settings.grid_atol_mm)
        if mismatch:
            record["grid_mismatch"] = mismatch
            if not settings.resample_mask:
                raise PairingError(f"pair {plan['pair_id']}: mask grid differs from the image "
                                   f"grid ({mismatch}); set pair.resample_mask: true to resample "
                                   f"the mask (nearest neighbour)", reason="grid-mismatch")
            mask = resample_to_grid(mask, image["grid"])
            # in the image's format (.nii.gz or .mha): both read back with the same geometry
            target = same_format_path(resampled_mask, image["path"])
            record.update(mask=str(target), mask_hash=write_volume(target, mask),
                          mask_resampled=True)
        elif (offset := itk_grid_offset(image["path"], mask)) is not None:
            # Same grid by radflow's rule, but beyond ITK's 1e-6 check that PyRadiomics applies
            # (e.g. a float64 NRRD mask on a DICOM image whose NIfTI stores float32 geometry):
            # the voxels are kept and the mask takes the image file's geometry.
            mask = _with_geometry(mask, image["path"])
            target = same_format_path(resampled_mask, image["path"])
            record.update(mask=str(target), mask_hash=write_volume(target, mask),
                          grid_mismatch=f"grids differ by up to {offset:.2g} (within "
                                        "grid_atol_mm): the mask takes the image's geometry")
        _check_label(mask, int(plan["label"]), settings.min_voxels, record)
    except RadflowError as exc:
        record["status"] = str(Status.failed(exc.reason))
        record["error"] = str(exc)
        logger.warning("pair %s: %s: %s", plan["pair_id"], record["status"], exc)
    return record


def _check_label(mask: sitk.Image, label: int, min_voxels: int, record: dict[str, Any]) -> None:
    arr = sitk.GetArrayViewFromImage(mask)
    n = int(np.count_nonzero(arr == label))
    record["n_voxels"] = n
    if n == 0:
        present = sorted(int(v) for v in np.unique(arr) if v != 0)
        if not present:
            raise PairingError(f"pair {record['pair_id']}: mask is empty", reason="empty-mask")
        raise PairingError(f"pair {record['pair_id']}: label {label} is absent from the mask "
                           f"(labels present: {present[:10]})", reason="label-absent")
    if n < min_voxels:
        raise PairingError(f"pair {record['pair_id']}: label {label} has {n} voxels, "
                           f"expected at least {min_voxels}", reason="mask-too-small")


def run_pair(*, plan_json: str, image_sidecar: str | None, mask_sidecar: str | None,
             out_json: str, settings: PairSettings) -> None:
    """Entry point of ``scripts/pair_one.py`` (rule ``pair_one``)."""
    plan = read_pair_plan(plan_json).to_json()
    out = Path(out_json)
    resampled = out.with_name(out.name.removesuffix(".json") + "_mask.nii.gz")
    record = pair_one(plan, image_sidecar, mask_sidecar, settings, resampled)
    for stale in {resampled, same_format_path(resampled, ".mha")} - {Path(record["mask"])}:
        stale.unlink(missing_ok=True)
    write_pair_record(out, PairRecord.from_json(record))
    logger.info("pair %s: %s", plan["pair_id"], record["status"])


def pairs_table(pair_jsons: Sequence[str]) -> pd.DataFrame:
    """Gather pair records into the ``pairs.tsv`` table (columns :data:`PAIRS_COLUMNS`)."""
    import pandas as pd

    records = [read_pair_record(p).to_json() for p in pair_jsons]
    table = pd.DataFrame(records, columns=PAIRS_COLUMNS)
    return table.sort_values(["case_id", "pair_id"], kind="stable").reset_index(drop=True)


def run_pair_table(*, pair_jsons: Sequence[str], out_tsv: str, rois_tsv: str | None = None,
                   roi_names_tsv: str | None = None) -> None:
    """Entry point of ``scripts/pair.py`` (rule ``pair``).

    With ``rois_tsv`` (the crawl's ``rois.tsv``) and ``roi_names_tsv``, also writes the ROI name
    counts.
    """
    table = pairs_table(pair_jsons)
    write_tsv(out_tsv, table)
    if rois_tsv and roi_names_tsv:
        from radflow.rois import name_report

        rois = read_table(rois_tsv)
        write_tsv(roi_names_tsv, name_report(rois))
    for status, n in table["status"].value_counts().sort_index().items():
        logger.info("pair: %d pair(s) %s", n, status)


__all__ = ["PAIRS_COLUMNS", "grid_mismatch", "pair_one", "pairs_table", "resample_to_grid",
           "run_pair", "run_pair_table"]
