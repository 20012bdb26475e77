"""Small synthetic CT series with RTSTRUCT / SEG masks for the mask tests (written in tmp_path)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from radflow.convert import convert_source
from radflow.crawl import CrawlResult
from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.dicom.grid import Grid
from radflow.io.atomic import write_json
from radflow.pair import pair_one
from radflow.settings import GeometrySettings, PairSettings

PATIENT = Patient("PID-MASK-1", "Planted^Maskname", institution="Planted Mask Hospital",
                  accession="ACC-MASK-1", birth_date="19020304")
STUDY = Study(derived_uid("mask-study"), derived_uid("mask-for"))


def oblique_directions() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Row and column cosines of a plane tilted about two axes (no axis-aligned component)."""
    a, b = np.radians(20.0), np.radians(-12.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rot = rx @ rz
    return tuple(float(v) for v in rot[:, 0]), tuple(float(v) for v in rot[:, 1])


@dataclass(frozen=True)
class Series:
    """A written CT series: its files, UID, grid and SOPInstanceUIDs in slice order."""

    files: list[Path]
    uid: str
    grid: Grid
    sop_uids: list[str]

    def headers(self) -> list[pydicom.Dataset]:
        """Headers in slice order (for SEG source images)."""
        return [pydicom.dcmread(f, stop_before_pixels=True) for f in self.files]


def write_ct(folder: Path, name: str, shape: tuple[int, int, int] = (5, 12, 10), *,
             spacing: tuple[float, float, float] = (0.8, 0.7, 2.5),
             origin: tuple[float, float, float] = (-4.0, 3.0, 10.0),
             oblique: bool = False, patient: Patient = PATIENT, study: Study = STUDY,
             modality: str = "CT") -> Series:
    """Write a CT series of ``shape`` (slices, rows, columns) with slices in normal order."""
    row, col = oblique_directions() if oblique else ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
    uid = str(derived_uid("mask-series", name))
    stored = (np.arange(np.prod(shape)) % 50 + 100).reshape(shape).astype(np.int16)
    # one voxel from the name: series with identical pixels would be re-exported copies
    stored.flat[0] = 200 + zlib.crc32(name.encode()) % 1000
    files = write_series(folder, stored, patient=patient, study=study, series_uid=uid,
                         spacing=spacing, origin=origin, row_direction=row,
                         column_direction=col, modality=modality)
    direction = np.column_stack([row, col, np.cross(row, col)])
    grid = Grid((shape[2], shape[1], shape[0]), spacing, origin,
                tuple(float(v) for v in direction.ravel()))
    return Series(files, uid, grid, [str(derived_uid(uid, k)) for k in range(shape[0])])


def index_points(grid: Grid, xy: list[tuple[float, float]], z: float) -> np.ndarray:
    """LPS points of in-plane voxel indices ``(x, y)`` at slice index ``z``, shape (n, 3)."""
    idx = np.array([[x, y, z] for x, y in xy], float)
    affine = grid.index_to_patient
    return idx @ affine[:3, :3].T + affine[:3, 3]


def square(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    """Corners of an axis-aligned rectangle in index space."""
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def convert_and_pair(result: CrawlResult, out: Path) -> dict[str, dict]:
    """Convert every ``ok`` source of a crawl (images before the masks built on their grids)
    and pair every planned pair, as the workflow's convert_one and pair_one jobs would.

    Returns the pair records by ROI name (masks written to ``out/<pair_id>_mask.nii.gz``).
    """
    sidecars: dict[str, str] = {}
    for src in sorted(result.sources.values(), key=lambda s: s.kind in ("rtstruct", "seg")):
        if src.row["status"] != "ok":
            continue
        record = {"series_key": src.series_key, "case_id": src.case_id, "kind": src.kind,
                  "role": src.role, "files": src.files, "frames": src.frames, "mask": src.mask}
        image = sidecars.get(src.mask["image_key"]) if src.mask else None
        sidecar = convert_source(record, out / f"{src.series_key}.nii.gz", GeometrySettings(),
                                 image)
        write_json(out / f"{src.series_key}.json", sidecar)
        sidecars[src.series_key] = str(out / f"{src.series_key}.json")
    return {plan["roi"]: pair_one(plan, sidecars.get(plan["image_key"]),
                                  sidecars.get(plan["mask_key"]), PairSettings(),
                                  out / f"{plan['pair_id']}_mask.nii.gz")
            for plan in result.pairs.to_dict("records")}


def dice_on_same_grid(mask: sitk.Image, reference: sitk.Image) -> float:
    """Dice of two masks (non-zero voxels) after checking they lie on the same grid (origin to
    1e-3 mm, spacing to 1e-5 mm, direction to 1e-6)."""
    np.testing.assert_allclose(mask.GetOrigin(), reference.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(mask.GetSpacing(), reference.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(mask.GetDirection(), reference.GetDirection(), atol=1e-6)
    ours = sitk.GetArrayFromImage(mask) > 0
    theirs = sitk.GetArrayFromImage(reference) > 0
    return float(2 * np.logical_and(ours, theirs).sum() / (ours.sum() + theirs.sum()))
