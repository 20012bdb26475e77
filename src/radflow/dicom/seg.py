"""DICOM Segmentation (SEG) objects: header summary for the crawl, masks on the image grid.

Reading rule
------------
* Two SOP classes (:data:`SEG_SOP_CLASSES`): Segmentation Storage (SegmentationType BINARY or
  FRACTIONAL: one frame per segment and position, each naming its segment) and Label Map
  Segmentation Storage (SegmentationType LABELMAP: one frame per position whose pixel values are
  segment numbers, so segments cannot overlap).
* Headers (crawl): segments (number, cleaned SegmentLabel), the frames of each segment, the
  source images each frame derives from, the referenced series and the corner pixels of every
  frame (for the extent check of the pairing fallback). Plain pydicom, no pixel data. A LABELMAP
  frame may hold any segment, so every frame (and its source images) counts for every segment;
  a segment whose value no frame holds is found only at convert (an empty mask: the pair fails
  with ``empty-mask``). LABELMAP segment 0 is the background (the voxels of no segment), never an
  ROI.
* Masks (convert): :func:`highdicom.seg.segread` and ``Segmentation.get_volume`` decode the
  frames of the requested segments into one regularly spaced volume (BINARY, FRACTIONAL and
  LABELMAP; frames may cover only part of the source series, missing positions are empty). Each
  segment becomes its own mask, so overlapping segments stay intact. FRACTIONAL values are
  rescaled to 0..1 by MaximumFractionalValue and a voxel is inside when its value is
  **>= the threshold** (``rois.fractional_threshold``, default 0.5); BINARY voxels are inside
  when 1, LABELMAP voxels when they hold the segment's number (the label map is decoded once for
  all its segments).
* The SEG volume must lie on the image grid: the map from SEG voxel indices to image voxel
  indices must be a signed axis permutation (direction cosines within :data:`DIRECTION_ATOL`,
  equal voxel spacing within :data:`SPACING_RTOL`) with an integer offset (within
  :data:`OFFSET_ATOL` voxels). Otherwise the mask fails with ``grid-mismatch`` (SEG voxels are
  never interpolated). The volume is then permuted, flipped, padded and cropped onto the image
  grid with ``highdicom.Volume.match_geometry``. Segment voxels that fall outside the image fail
  the mask (``roi-outside-image``) or, with ``rois.contours_outside_image: skip``, are dropped and
  counted in the mask's QC.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset

from radflow.dicom.grid import Grid, frame_corner_points
from radflow.dicom.headers import get_floats, get_int, get_str, quiet_pydicom
from radflow.dicom.naming import exception_detail
from radflow.dicom.rtstruct import Raster
from radflow.errors import DicomError, PairingError
from radflow.settings import OutsidePolicy
from radflow.text import clean_text

logger = logging.getLogger(__name__)

#: Segmentation Storage (BINARY and FRACTIONAL SEGs).
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
#: Label Map Segmentation Storage (LABELMAP SEGs).
LABELMAP_SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.7"
#: Every SOP class radflow reads as a SEG.
SEG_SOP_CLASSES = (SEG_SOP_CLASS, LABELMAP_SEG_SOP_CLASS)
#: SegmentationType of label maps; their SegmentNumber 0 is the background.
LABELMAP = "LABELMAP"
#: Largest deviation of a direction cosine product from 0 / +-1 for two grids to be aligned.
DIRECTION_ATOL = 1e-3
#: Largest relative difference of voxel spacings for two grids to be aligned.
SPACING_RTOL = 1e-3
#: Largest deviation (voxels) of the SEG-to-image offset from an integer.
OFFSET_ATOL = 0.05


@dataclass(frozen=True)
class SegmentInfo:
    """One segment: number, cleaned label, its number of frames and their source images."""

    number: int
    name: str
    n_frames: int
    image_refs: frozenset[str]

    @property
    def exclusion(self) -> str:
        """``empty-roi`` when no frame holds the segment, else ""."""
        return "" if self.n_frames else "empty-roi"


@dataclass(frozen=True)
class SegHeader:
    """What the crawl uses of a SEG object.

    Attributes
    ----------
    segmentation_type
        SegmentationType (``BINARY``, ``FRACTIONAL``, ``LABELMAP``; upper case, "" when absent).
    frame_of_reference_uid
        FrameOfReferenceUID ("" when absent).
    referenced_series
        SeriesInstanceUIDs of ReferencedSeriesSequence.
    referenced_instances
        SOPInstanceUIDs referenced there and by every frame's source images.
    segments
        In SegmentSequence order (without the LABELMAP background, segment 0).
    corners : numpy.ndarray, shape (4 * n_frames, 3)
        Centres of the corner pixels of every frame (LPS mm).
    """

    segmentation_type: str
    frame_of_reference_uid: str
    referenced_series: tuple[str, ...]
    referenced_instances: frozenset[str]
    segments: tuple[SegmentInfo, ...]
    corners: np.ndarray


def _items(ds: Dataset, keyword: str) -> list[Dataset]:
    try:
        value = ds.get(keyword)
    except Exception:  # malformed sequence
        return []
    return list(value) if value else []


def _first(groups: Sequence[Dataset], keyword: str) -> Dataset | None:
    for group in groups:
        items = _items(group, keyword)
        if items:
            return items[0]
    return None


def read_seg_header(ds: Dataset, name: str) -> SegHeader:
    """Summarise a SEG data set (pixel data not needed).

    Raises
    ------
    DicomError
        ``invalid-seg`` when SegmentSequence is missing, a segment number is missing or
        repeated, or a frame of a BINARY / FRACTIONAL SEG names no segment.
    """
    seg_items = _items(ds, "SegmentSequence")
    if not seg_items:
        raise DicomError(f"SEG {name}: no SegmentSequence (0062,0002)", reason="invalid-seg")
    seg_type = get_str(ds, "SegmentationType").upper()
    labelmap = seg_type == LABELMAP
    names: dict[int, str] = {}
    seen: set[int] = set()
    for k, item in enumerate(seg_items):
        number = get_int(item, "SegmentNumber")
        if number is None or number < (0 if labelmap else 1) or number in seen:
            raise DicomError(f"SEG {name}: SegmentSequence item {k + 1} has a missing, invalid "
                             "or repeated SegmentNumber", reason="invalid-seg")
        seen.add(number)
        if number:  # LABELMAP segment 0: the background, pixels of no segment
            names[number] = clean_text(get_str(item, "SegmentLabel")) or f"segment-{number}"
    frames: Counter[int] = Counter()
    refs: dict[int, set[str]] = {n: set() for n in names}
    shared = _items(ds, "SharedFunctionalGroupsSequence")[:1]
    rows, cols = get_int(ds, "Rows") or 0, get_int(ds, "Columns") or 0
    corners = []
    for f, group in enumerate(_items(ds, "PerFrameFunctionalGroupsSequence")):
        if labelmap:  # a label-map frame may hold any segment
            numbers = list(names)
        else:
            ident = _first([group, *shared], "SegmentIdentificationSequence")
            number = get_int(ident, "ReferencedSegmentNumber") if ident is not None else None
            if number is None:
                raise DicomError(f"SEG {name}: frame {f + 1} names no segment "
                                 "(SegmentIdentificationSequence)", reason="invalid-seg")
            numbers = [number]
        sources = {uid for derivation in _items(group, "DerivationImageSequence")
                   for source in _items(derivation, "SourceImageSequence")
                   if (uid := get_str(source, "ReferencedSOPInstanceUID"))}
        for number in numbers:
            frames[number] += 1
            if number in refs:
                refs[number].update(sources)
        position = _first([group], "PlanePositionSequence")
        orientation = _first([group, *shared], "PlaneOrientationSequence")
        measures = _first([group, *shared], "PixelMeasuresSequence")
        ipp = get_floats(position, "ImagePositionPatient", 3) if position is not None else None
        iop = (get_floats(orientation, "ImageOrientationPatient", 6)
               if orientation is not None else None)
        spacing = get_floats(measures, "PixelSpacing", 2) if measures is not None else None
        if ipp and iop and spacing and rows and cols:
            corners.append(frame_corner_points(ipp, iop, spacing, rows, cols))
    series: list[str] = []
    instances = {u for r in refs.values() for u in r}
    for ser in _items(ds, "ReferencedSeriesSequence"):
        uid = get_str(ser, "SeriesInstanceUID")
        if uid and uid not in series:
            series.append(uid)
        instances.update(u for u in (get_str(i, "ReferencedSOPInstanceUID")
                                     for i in _items(ser, "ReferencedInstanceSequence")) if u)
    segments = tuple(SegmentInfo(n, names[n], frames[n], frozenset(refs[n])) for n in names)
    return SegHeader(seg_type, get_str(ds, "FrameOfReferenceUID"), tuple(series),
                     frozenset(instances), segments,
                     np.concatenate(corners) if corners else np.zeros((0, 3)))


def _highdicom_affine(grid: Grid) -> np.ndarray:
    """The grid's 4x4 affine for (slice, row, column) indices, highdicom's convention."""
    affine = grid.index_to_patient
    out = np.eye(4)
    out[:3, :3] = affine[:3, [2, 1, 0]]
    out[:3, 3] = affine[:3, 3]
    return out


def _aligned_affine(seg_affine: np.ndarray, seg_shape: Sequence[int], grid: Grid,
                    name: str) -> np.ndarray:
    """``seg_affine`` snapped onto the image grid, or ``grid-mismatch`` (see module notes)."""
    image_affine = _highdicom_affine(grid)
    m = np.linalg.solve(image_affine, seg_affine)
    if seg_shape[0] == 1:  # a single plane: its slice spacing is arbitrary, keep the direction
        col = m[:3, 0]
        m[:3, 0] = col / max(float(np.max(np.abs(col))), 1e-12)
    linear, offset = m[:3, :3], m[:3, 3]
    snapped = np.round(linear)
    is_permutation = (np.all(np.abs(np.abs(snapped).sum(axis=0) - 1) == 0)
                      and np.all(np.abs(np.abs(snapped).sum(axis=1) - 1) == 0))
    scale_ok = np.max(np.abs(linear - snapped)) <= max(DIRECTION_ATOL, SPACING_RTOL)
    offset_ok = np.max(np.abs(offset - np.round(offset))) <= OFFSET_ATOL
    if not (is_permutation and scale_ok and offset_ok):
        raise PairingError(f"{name}: the SEG frames are not on the image grid (index map "
                           f"{np.round(m[:3], 3).tolist()}); SEG voxels are not interpolated",
                           reason="grid-mismatch")
    out = np.eye(4)
    out[:3, :3] = snapped
    out[:3, 3] = np.round(offset)
    return image_affine @ out


def seg_masks(path: str | os.PathLike[str], grid: Grid, labels: Sequence[int], *,
              threshold: float = 0.5, name: str = "") -> dict[int, Raster]:
    """The masks of segments ``labels`` of the SEG file ``path`` on ``grid``.

    Parameters
    ----------
    path
        The SEG file.
    grid
        The image grid.
    labels
        Segment numbers to read.
    threshold
        FRACTIONAL segments: a voxel is inside when its fraction is >= ``threshold``.
    name
        How messages name the object (its pseudonymous key).

    Returns
    -------
    dict of int to Raster
        One bool mask of shape ``grid.shape`` per segment number. Segment voxels outside the
        image are not in the mask; their number is ``qc["voxels-outside-image"]`` (the caller
        applies the ``rois.contours_outside_image`` policy, see :func:`outside_problem`).

    Raises
    ------
    DicomError
        ``invalid-seg`` (unreadable, or the frames do not form a regularly spaced volume).
    PairingError
        ``grid-mismatch``.
    """
    return dict(iter_seg_masks(path, grid, labels, threshold=threshold, name=name))


def iter_seg_masks(path: str | os.PathLike[str], grid: Grid, labels: Sequence[int], *,
                   threshold: float = 0.5, name: str = "") -> Iterator[tuple[int, Raster]]:
    """:func:`seg_masks` one segment at a time: ``(label, raster)`` pairs, so that memory holds
    one segment's volume at a time (SEGs can hold a hundred full-size segments); a LABELMAP is
    decoded once, and each segment's mask taken from it."""
    with quiet_pydicom():
        try:
            seg = hd.seg.segread(path)
        except Exception as exc:  # highdicom/pydicom raise many types on malformed objects
            raise DicomError(f"SEG {name}: cannot be read ({exception_detail(exc, path)})",
                             reason="invalid-seg") from exc
        kind = seg.segmentation_type
        numbers = frozenset(int(n) for n in seg.get_segment_numbers())
    target = hd.VolumeGeometry(_highdicom_affine(grid), list(grid.shape), "PATIENT")
    labelmap: hd.Volume | None = None
    for label in (int(v) for v in labels):
        if kind == hd.seg.SegmentationTypeValues.LABELMAP:
            if label not in numbers:  # never an empty mask for a segment that is not there
                raise DicomError(f"SEG {name}: no segment {label}", reason="invalid-seg")
            if labelmap is None:  # decoded once: its values are the segment numbers
                labelmap = _volume(seg, path, name, None)
            volume = labelmap
            inside = np.asarray(volume.array) == label
        else:
            volume = _volume(seg, path, name, label)
            array = np.asarray(volume.array)
            inside = (array >= threshold) if kind == hd.seg.SegmentationTypeValues.FRACTIONAL \
                else (array > 0)
        inside = inside.reshape(inside.shape[:3])  # one segment: drop the channel axis
        affine = _aligned_affine(np.asarray(volume.affine), inside.shape, grid, f"SEG {name}")
        try:
            placed = hd.Volume(inside.astype(np.uint8), affine, "PATIENT").match_geometry(target)
        except RuntimeError as exc:  # cannot happen for a snapped affine; never let it pass
            raise PairingError(f"SEG {name}: frames cannot be placed on the image grid ({exc})",
                               reason="grid-mismatch") from exc
        mask = np.asarray(placed.array) > 0
        raster = Raster(mask)
        lost = int(inside.sum()) - int(mask.sum())
        if lost:
            raster.qc["voxels-outside-image"] = lost
        yield label, raster


def _volume(seg: hd.seg.Segmentation, path: str | os.PathLike[str], name: str,
            label: int | None) -> hd.Volume:
    """Segment ``label`` as a volume (fractions rescaled to 0..1), or with ``label=None`` the
    whole label map of a LABELMAP (values: segment numbers); missing positions are empty.

    Raises ``invalid-seg`` when the frames do not form a regularly spaced volume.
    """
    what = "the label map" if label is None else f"segment {label}"
    with quiet_pydicom():
        try:
            return seg.get_volume(segment_numbers=None if label is None else [label],
                                  combine_segments=label is None, rescale_fractional=True,
                                  allow_missing_positions=True)
        except Exception as exc:  # not a regularly spaced volume, unknown segment, ...
            raise DicomError(f"SEG {name}, {what}: cannot be read as a volume "
                             f"({exception_detail(exc, path)})", reason="invalid-seg") from exc


def outside_problem(raster: Raster, policy: OutsidePolicy, name: str) -> None:
    """Apply the ``rois.contours_outside_image`` policy to a SEG mask.

    Raises ``roi-outside-image`` with ``policy="fail"`` when voxels were outside the image; with
    ``"skip"`` the count is kept in the QC as ``voxels-outside-image-skipped``.
    """
    lost = raster.qc.pop("voxels-outside-image", 0)
    if not lost:
        return
    if policy == "fail":
        raise PairingError(f"{name}: {lost} segment voxel(s) lie outside the image",
                           reason="roi-outside-image")
    raster.qc["voxels-outside-image-skipped"] = lost


__all__ = ["LABELMAP_SEG_SOP_CLASS", "SEG_SOP_CLASS", "SEG_SOP_CLASSES", "SegHeader",
           "SegmentInfo", "iter_seg_masks", "outside_problem", "read_seg_header", "seg_masks"]
