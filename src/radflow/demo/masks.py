"""The demo cohort's DICOM masks: one patient's regions as an RTSTRUCT, one patient's as a SEG.

These two patients are not in the demo's cohort sheet: the crawl finds their masks in the DICOM
tree and pairs them with the analysed series by reference. The RTSTRUCT traces the voxel label map
(:func:`radflow.demo.synthetic_masks.contours_from_mask`) and also holds a point ROI that the crawl
must exclude (``excluded:point-roi``); the SEG stores the label map as a BINARY segmentation.
Both rasterise back to exactly the label map, so the demo's geometry truth holds for them too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from radflow.demo.phantom import NODE_LABEL, Grid
from radflow.demo.synthetic import Patient, Study, derived_uid
from radflow.demo.synthetic_masks import (
    ContourSpec,
    RoiSpec,
    contours_from_mask,
    write_rtstruct,
    write_seg,
)
from radflow.dicom.grid import Grid as VoxelGrid

#: Demo patient index -> kind of DICOM mask. Fixed indices (not counted in ``n_patients``), so
#: these patients are the same whatever the cohort size.
DICOM_MASK_PATIENTS = {100: "rtstruct", 103: "seg"}
#: ROI names (and labels) of the regions.
ROI_NAMES = {1: "lesion", NODE_LABEL: "node"}


def _voxel_grid(grid: Grid) -> VoxelGrid:
    return VoxelGrid(grid.size, grid.spacing, grid.origin, grid.direction)


def slice_uids(series_uid: str, n_slices: int) -> list[str]:
    """SOPInstanceUIDs of the analysed series per slice-normal index (written top slice first)."""
    return [str(derived_uid(series_uid, n_slices - 1 - z)) for z in range(n_slices)]


def write_dicom_mask(kind: str, series_dir: Path, out_dir: Path, *, patient: Patient,
                     study: Study, grid: Grid, labels: np.ndarray, series_uid: str,
                     seed: int) -> list[str]:
    """Write the RTSTRUCT or SEG of one demo patient into ``out_dir``; return its ROI names.

    Parameters
    ----------
    series_dir
        Folder of the analysed series (its headers are the SEG's source images).
    labels : numpy.ndarray of uint8, shape (slices, rows, columns)
        The label map in slice-normal order.
    series_uid
        The analysed series' SeriesInstanceUID.
    """
    present = [label for label in ROI_NAMES if (labels == label).any()]
    mask_uid = str(derived_uid("radflow-demo", seed, patient.patient_id, "series", kind))
    if kind == "rtstruct":
        uids = slice_uids(series_uid, grid.size[2])
        vgrid = _voxel_grid(grid)
        rois = [RoiSpec(label, ROI_NAMES[label],
                        tuple(contours_from_mask(labels == label, vgrid, uids)))
                for label in present]
        centre = np.asarray(grid.point(*(np.asarray(grid.size) - 1) / 2))[None]
        rois.append(RoiSpec(9, "reference point", (ContourSpec(centre, "POINT"),), "MARKER"))
        write_rtstruct(out_dir / "RS000001.dcm", patient=patient, study=study,
                       series_uid=mask_uid, rois=rois, image_series_uid=series_uid,
                       image_uids=uids, label="GTV contours")
        return [ROI_NAMES[label] for label in present]
    headers = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p
               for p in sorted(series_dir.glob("*.dcm"))}
    ordered = [pydicom.dcmread(headers[u], stop_before_pixels=True)
               for u in slice_uids(series_uid, grid.size[2])]
    write_seg(out_dir / "SEG000001.dcm", ordered,
              [(k + 1, ROI_NAMES[label], labels == label) for k, label in enumerate(present)],
              series_uid=mask_uid)
    return [ROI_NAMES[label] for label in present]


__all__ = ["DICOM_MASK_PATIENTS", "ROI_NAMES", "slice_uids", "write_dicom_mask"]
