"""DICOM RT Structure Sets: reading ROIs and contours, and the one rasterisation rule.

Rasterisation rule (the README's "Segmentations" section states the same)
------------------------------------------------------------------------
An ROI is rasterised on the grid of the image it is paired with (:class:`~radflow.dicom.grid.Grid`):

1. Every contour point is mapped to continuous voxel indices of the grid (voxel centres are
   integers).
2. Each ``CLOSED_PLANAR`` (or ``CLOSED_PLANAR_XOR``) contour is assigned to the image slice nearest
   to its mean slice index ``z``: slice ``round(z)``. A contour whose points are not in one slice
   plane (spread of ``z`` larger than :data:`PLANE_ATOL` slices, e.g. drawn on a reformatted
   plane) fails the ROI (``contour-not-in-slice-plane``). A contour farther than half a slice
   from every slice, or with a point outside the grid in-plane, lies (partly) outside the image:
   the ROI fails (``roi-outside-image``), or with ``rois.contours_outside_image: skip`` such
   contours are skipped (off-slice) or clipped to the grid (in-plane), recorded in the ROI's QC.
3. In its slice, a contour covers the voxels whose **centre lies inside the polygon** by the
   even-odd (crossing-number) rule; centres exactly on an edge or vertex count as inside. The
   polygon filling is :func:`skimage.draw.polygon` (scikit-image), which implements exactly this
   test (O'Rourke's crossing number; edge and vertex points are inside).
4. The contours of one ROI in one slice are combined with exclusive or, so the even-odd rule
   holds across contours: a contour inside another is a hole, a contour inside a hole is an
   island again (and two overlapping separate contours cancel where they overlap).
5. ``POINT``, ``OPEN_PLANAR`` and ``OPEN_NONPLANAR`` contours have no inside: they are skipped and
   counted in the ROI's QC; an ROI with no closed contour at all is excluded at crawl time
   (``excluded:point-roi``, ``excluded:open-contours``, ``excluded:empty-roi``). Contours with fewer
   than three points are skipped and counted as ``degenerate-contours``.

On the STS_002 reference patient (CT, MR, PET) this rule reproduces the provided NIfTI masks voxel
for voxel (``tests/test_rtstruct.py``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset
from skimage.draw import polygon

from radflow.dicom.grid import Grid
from radflow.dicom.headers import get_int, get_str
from radflow.errors import DicomError, PairingError
from radflow.settings import OutsidePolicy
from radflow.text import clean_text

logger = logging.getLogger(__name__)

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
CLOSED_TYPES = frozenset({"CLOSED_PLANAR", "CLOSED_PLANAR_XOR"})
OPEN_TYPES = frozenset({"OPEN_PLANAR", "OPEN_NONPLANAR"})
#: Largest spread of a contour's points along the slice axis (in slices) for it to count as
#: lying in one slice plane.
PLANE_ATOL = 0.1
#: Tolerance (voxels) of the in-plane "inside the grid" test of contour points.
IN_PLANE_ATOL = 1e-3


@dataclass(frozen=True)
class Contour:
    """One contour of an ROI.

    Attributes
    ----------
    geometric_type
        ContourGeometricType (``CLOSED_PLANAR``, ``POINT``, ``OPEN_PLANAR``, ...).
    points : numpy.ndarray, shape (n, 3)
        ContourData in LPS mm.
    image_refs
        SOPInstanceUIDs of its ContourImageSequence.
    """

    geometric_type: str
    points: np.ndarray
    image_refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoiContours:
    """One ROI of a structure set: number, cleaned name and contours."""

    number: int
    name: str
    contours: tuple[Contour, ...] = ()

    @property
    def exclusion(self) -> str:
        """Why the ROI has no inside (``empty-roi``, ``point-roi``, ``open-contours``) or ""."""
        types = {c.geometric_type for c in self.contours}
        if types & CLOSED_TYPES:
            return ""
        if not types:
            return "empty-roi"
        return "point-roi" if types == {"POINT"} else "open-contours"

    @property
    def image_refs(self) -> frozenset[str]:
        """SOPInstanceUIDs referenced by the ROI's closed contours."""
        return frozenset(r for c in self.contours if c.geometric_type in CLOSED_TYPES
                         for r in c.image_refs)


@dataclass(frozen=True)
class StructureSet:
    """What radflow uses of an RT Structure Set.

    Attributes
    ----------
    frame_of_reference_uid
        Of the first ReferencedFrameOfReferenceSequence item ("" when absent).
    referenced_series
        SeriesInstanceUIDs of RTReferencedSeriesSequence.
    referenced_instances
        SOPInstanceUIDs of the series-level ContourImageSequence and of every contour.
    rois
        In StructureSetROISequence order.
    """

    frame_of_reference_uid: str
    referenced_series: tuple[str, ...]
    referenced_instances: frozenset[str]
    rois: tuple[RoiContours, ...]

    def points(self) -> np.ndarray:
        """All contour points of all ROIs, shape (n, 3)."""
        arrays = [c.points for r in self.rois for c in r.contours]
        return np.concatenate(arrays) if arrays else np.zeros((0, 3))


@dataclass
class Raster:
    """A rasterised ROI: ``mask`` (bool, shape (z, y, x)) and QC counts of what was skipped."""

    mask: np.ndarray
    qc: Counter[str] = field(default_factory=Counter)


def _items(ds: Dataset, keyword: str) -> list[Dataset]:
    try:
        value = ds.get(keyword)
    except Exception:  # malformed sequence
        return []
    return list(value) if value else []


def read_structure_set(ds: Dataset, name: str) -> StructureSet:
    """Parse an RT Structure Set data set.

    Parameters
    ----------
    ds
        The data set (read with contours; RTSTRUCT has no pixel data).
    name
        How messages name the object (its pseudonymous key).

    Raises
    ------
    DicomError
        ``invalid-rtstruct`` when StructureSetROISequence is missing, an ROI number is missing or
        repeated, or ContourData is not a list of finite x, y, z triplets.
    """
    rois_seq = _items(ds, "StructureSetROISequence")
    if not rois_seq:
        raise DicomError(f"RTSTRUCT {name}: no StructureSetROISequence (3006,0020)",
                         reason="invalid-rtstruct")
    names: dict[int, str] = {}
    for k, item in enumerate(rois_seq):
        number = get_int(item, "ROINumber")
        if number is None or number in names:
            raise DicomError(f"RTSTRUCT {name}: StructureSetROISequence item {k + 1} has a "
                             f"{'missing' if number is None else 'repeated'} ROINumber",
                             reason="invalid-rtstruct")
        names[number] = clean_text(get_str(item, "ROIName")) or f"roi-{number}"
    contours: dict[int, list[Contour]] = {n: [] for n in names}
    instances: set[str] = set()
    for item in _items(ds, "ROIContourSequence"):
        number = get_int(item, "ReferencedROINumber")
        if number not in contours:
            logger.warning("RTSTRUCT %s: ROIContourSequence refers to unknown ROI number %s; "
                           "ignored", name, number)
            continue
        for j, c in enumerate(_items(item, "ContourSequence")):
            contour = _contour(c, f"RTSTRUCT {name}, ROI {number}, contour {j + 1}")
            contours[number].append(contour)
            instances.update(contour.image_refs)
    series: list[str] = []
    for_uid = ""
    for frame in _items(ds, "ReferencedFrameOfReferenceSequence"):
        for_uid = for_uid or get_str(frame, "FrameOfReferenceUID")
        for study in _items(frame, "RTReferencedStudySequence"):
            for ser in _items(study, "RTReferencedSeriesSequence"):
                uid = get_str(ser, "SeriesInstanceUID")
                if uid and uid not in series:
                    series.append(uid)
                instances.update(u for u in (get_str(i, "ReferencedSOPInstanceUID")
                                             for i in _items(ser, "ContourImageSequence")) if u)
    if not for_uid:
        for_uid = next((u for u in (get_str(i, "ReferencedFrameOfReferenceUID")
                                    for i in rois_seq) if u), "")
    rois = tuple(RoiContours(n, names[n], tuple(contours[n])) for n in names)
    return StructureSet(for_uid, tuple(series), frozenset(instances), rois)


def _contour(item: Dataset, where: str) -> Contour:
    kind = get_str(item, "ContourGeometricType").upper()
    try:
        raw = item.get("ContourData")
        data = np.asarray([float(v) for v in (raw if raw is not None else [])], dtype=float)
    except (TypeError, ValueError):
        raise DicomError(f"{where}: ContourData (3006,0050) is not numeric",
                         reason="invalid-rtstruct") from None
    if data.size % 3 or not np.all(np.isfinite(data)):
        raise DicomError(f"{where}: ContourData (3006,0050) must be finite x, y, z triplets",
                         reason="invalid-rtstruct")
    refs = tuple(u for u in (get_str(i, "ReferencedSOPInstanceUID")
                             for i in _items(item, "ContourImageSequence")) if u)
    return Contour(kind, data.reshape(-1, 3), refs)


def rasterise_roi(roi: RoiContours, grid: Grid, *, outside: OutsidePolicy = "fail",
                  name: str = "") -> Raster:
    """Rasterise one ROI on ``grid`` by the module's rule.

    Parameters
    ----------
    roi
        The ROI's contours.
    grid
        The image grid.
    outside
        ``"fail"``: a contour outside the image fails the ROI; ``"skip"``: it is skipped
        (off-slice) or clipped (in-plane) and counted in the QC.
    name
        How messages name the ROI (mask key and label).

    Returns
    -------
    Raster
        ``mask`` of shape ``grid.shape``; ``qc`` counts ``open-contours-skipped``,
        ``point-contours-skipped``, ``degenerate-contours``, ``contours-outside-image-skipped``,
        ``contours-clipped``.

    Raises
    ------
    PairingError
        ``roi-outside-image`` (with ``outside="fail"``) or ``contour-not-in-slice-plane``.
    """
    nz, ny, nx = grid.shape
    raster = Raster(np.zeros(grid.shape, dtype=bool))
    for j, contour in enumerate(roi.contours):
        kind = contour.geometric_type
        if kind not in CLOSED_TYPES:
            raster.qc["point-contours-skipped" if kind == "POINT"
                      else "open-contours-skipped"] += 1
            continue
        if len(contour.points) < 3:
            raster.qc["degenerate-contours"] += 1
            continue
        idx = grid.to_index(contour.points)
        spread = float(np.ptp(idx[:, 2]))
        if spread > PLANE_ATOL:
            raise PairingError(f"{name}: contour {j + 1} spans {spread:.2f} slices; it does not "
                               "lie in one slice plane of the image",
                               reason="contour-not-in-slice-plane")
        z = float(np.mean(idx[:, 2]))
        k = int(np.floor(z + 0.5))
        in_plane = grid.contains(np.column_stack([idx[:, :2], np.zeros(len(idx))]),
                                 IN_PLANE_ATOL)
        if not 0 <= k < nz or not in_plane.all():
            if outside == "fail":
                where = (f"slice index {z:.2f}, more than half a slice outside 0..{nz - 1}"
                         if not 0 <= k < nz else
                         f"{int((~in_plane).sum())} point(s) outside the image in-plane")
                raise PairingError(f"{name}: contour {j + 1} lies outside the image ({where})",
                                   reason="roi-outside-image")
            if not 0 <= k < nz:
                raster.qc["contours-outside-image-skipped"] += 1
                continue
            raster.qc["contours-clipped"] += 1
        rr, cc = polygon(idx[:, 1], idx[:, 0], shape=(ny, nx))
        plane = np.zeros((ny, nx), dtype=bool)
        plane[rr, cc] = True
        raster.mask[k] ^= plane
    return raster


__all__ = [
    "CLOSED_TYPES",
    "RTSTRUCT_SOP_CLASS",
    "Contour",
    "Raster",
    "RoiContours",
    "StructureSet",
    "rasterise_roi",
    "read_structure_set",
]
