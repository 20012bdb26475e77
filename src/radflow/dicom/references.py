"""Linking a SEG or RTSTRUCT to the image series it was drawn on.

:func:`read_mask_object` summarises a mask object's header (:class:`MaskObject`: its ROIs or
segments, references and contour/frame extent); :func:`link_mask` picks its image series.

Pairing order (the README's "Segmentations" section states the same); the first step that gives
a result decides, and its name is the pair's ``pairing_reason``:

1. ``referenced-series``: an image series whose SeriesInstanceUID the object references
   (RTSTRUCT: RTReferencedSeriesSequence; SEG: ReferencedSeriesSequence). Several matches (e.g.
   the volumes of a split series) are narrowed to those holding a referenced SOP instance.
2. ``referenced-instances``: an image series holding a referenced SOPInstanceUID (RTSTRUCT:
   ContourImageSequence; SEG: ReferencedInstanceSequence and each frame's source images).
3. ``frame-of-reference`` (fallback): the series with the object's FrameOfReferenceUID whose
   extent contains every contour point (SEG: every frame corner), restricted to the modalities in
   ``crawl.fallback_modalities`` (empty: any), when exactly one such series exists.
4. ``common-folder`` (fallback): among the candidates of step 3 when there were several, else
   among all image series of the patient (same modality restriction), the series whose folder
   shares the longest path with the object's file.

Only series of the same patient are considered, and every step also considers excluded or
failed image series, so that a mask drawn on, say, a DERIVED series is linked to it (and its pair
reports ``failed:image-derived``) rather than silently to its neighbour; steps 3-4 leave out only
series that are no volumes (``excluded:localizer``, ``excluded:too-few-slices``). A series of the
frame of reference whose extent is unknown (excluded before, or failing, the geometry check)
stays a candidate of step 3, since the mask may have been drawn on it. When a
step leaves several candidates the link fails with ``ambiguous-reference`` naming them by series
key, never picking one; when nothing is found it fails with ``reference-not-found``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radflow.dicom.grid import Grid
from radflow.dicom.headers import get_str, quiet_pydicom, read_header
from radflow.dicom.rtstruct import RTSTRUCT_SOP_CLASS, read_structure_set
from radflow.dicom.seg import SEG_SOP_CLASSES, read_seg_header
from radflow.errors import DicomError
from radflow.records.status import Status

logger = logging.getLogger(__name__)

#: SOP class UID -> mask kind (Segmentation and Label Map Segmentation Storage are both "seg").
MASK_SOP_CLASSES = {RTSTRUCT_SOP_CLASS: "rtstruct", **dict.fromkeys(SEG_SOP_CLASSES, "seg")}
#: Tolerance (voxels) of the extent test of the frame-of-reference fallback.
EXTENT_ATOL = 0.05
#: Exclusions of image series that are not volumes a contour can be drawn on; such series are
#: no fallback candidates. Other excluded series (derived, other modality) are: a mask drawn on
#: one of them must not be linked to its neighbour instead.
NOT_A_VOLUME = frozenset({"localizer", "too-few-slices"})


@dataclass(frozen=True)
class MaskRoi:
    """One ROI (RTSTRUCT) or segment (SEG).

    Attributes
    ----------
    label
        ROINumber / SegmentNumber: the label of its mask.
    name
        ROIName / SegmentLabel, cleaned free text.
    exclusion
        ``""`` or why it has no inside (``empty-roi``, ``point-roi``, ``open-contours``).
    image_refs
        SOPInstanceUIDs its contours / frames are drawn on.
    """

    label: int
    name: str
    exclusion: str
    image_refs: frozenset[str]


@dataclass(frozen=True)
class MaskObject:
    """Header summary of one SEG or RTSTRUCT object.

    Attributes
    ----------
    points : numpy.ndarray, shape (n, 3)
        Contour points (RTSTRUCT) or frame corner pixel centres (SEG), LPS mm.
    """

    kind: str
    sop_instance_uid: str
    frame_of_reference_uid: str
    referenced_series: tuple[str, ...]
    referenced_instances: frozenset[str]
    rois: tuple[MaskRoi, ...]
    points: np.ndarray


def mask_kind(sop_class_uid: str) -> str:
    """``"rtstruct"``, ``"seg"`` or ``""`` for other SOP classes."""
    return MASK_SOP_CLASSES.get(sop_class_uid, "")


def referenced_series(path: str | os.PathLike[str]) -> frozenset[str]:
    """The SeriesInstanceUIDs a SEG or RTSTRUCT file names as its images (RTSTRUCT:
    ``RTReferencedSeriesSequence``; SEG: ``ReferencedSeriesSequence``), from its header only;
    empty when the file cannot be read (the crawl's mask step reports that file).
    """
    try:
        ds, _ = read_header(path)
    except (DicomError, OSError):
        return frozenset()
    uids = {get_str(ser, "SeriesInstanceUID")
            for frame in ds.get("ReferencedFrameOfReferenceSequence") or []
            for study in frame.get("RTReferencedStudySequence") or []
            for ser in study.get("RTReferencedSeriesSequence") or []}
    uids |= {get_str(ser, "SeriesInstanceUID")
             for ser in ds.get("ReferencedSeriesSequence") or []}
    return frozenset(u for u in uids if u)


def read_mask_object(path: str | os.PathLike[str], name: str) -> MaskObject:
    """Read the header of a SEG or RTSTRUCT file and summarise it.

    Parameters
    ----------
    name
        How messages name the object (its pseudonymous key).

    Raises
    ------
    InputFileError
        The file cannot be read (reasons of :func:`radflow.dicom.headers.read_header`).
    DicomError
        ``invalid-rtstruct`` / ``invalid-seg`` for a malformed object, ``invalid-dicom`` for
        another SOP class.
    """
    ds, _ = read_header(path)
    kind = mask_kind(get_str(ds, "SOPClassUID"))
    if not kind:
        raise DicomError(f"{name}: not an RTSTRUCT or SEG object", reason="invalid-dicom")
    sop = get_str(ds, "SOPInstanceUID")
    with quiet_pydicom(Path(path)):
        try:
            if kind == "rtstruct":
                ss = read_structure_set(ds, name)
                rois = tuple(MaskRoi(r.number, r.name, r.exclusion, r.image_refs)
                             for r in ss.rois)
                return MaskObject(kind, sop, ss.frame_of_reference_uid, ss.referenced_series,
                                  ss.referenced_instances, rois, ss.points())
            sh = read_seg_header(ds, name)
            rois = tuple(MaskRoi(s.number, s.name, s.exclusion, s.image_refs)
                         for s in sh.segments)
            return MaskObject(kind, sop, sh.frame_of_reference_uid, sh.referenced_series,
                              sh.referenced_instances, rois, sh.corners)
        except DicomError:
            raise
        except Exception as exc:  # a value pydicom parsed but that radflow cannot use
            raise DicomError(f"{kind.upper()} {name}: header cannot be interpreted "
                             f"({type(exc).__name__})", reason=f"invalid-{kind}") from exc


@dataclass(frozen=True)
class ImageCandidate:
    """An image series a mask object may be linked to.

    Attributes
    ----------
    series_key
        Its pseudonymous key (the only way messages name it).
    status
        Its crawl status.
    folder
        The deepest folder holding all its files.
    grid
        Its voxel grid when the crawl's geometry check passed, else ``None``.
    """

    series_key: str
    series_uid: str
    frame_of_reference_uid: str
    modality: str
    status: str
    folder: Path
    grid: Grid | None


@dataclass(frozen=True)
class Link:
    """The result of :func:`link_mask`.

    Attributes
    ----------
    image
        The linked series, or ``None``.
    reason
        The pairing step that decided (``referenced-series``, ``referenced-instances``,
        ``frame-of-reference``, ``common-folder``); ``""`` when nothing was found.
    status
        ``ok``, ``failed:ambiguous-reference`` or ``failed:reference-not-found``.
    candidates
        Series keys left when ambiguous.
    message
        Why (names series by key only).
    """

    image: ImageCandidate | None
    reason: str
    status: str
    candidates: tuple[str, ...] = ()
    message: str = ""


def _decide(reason: str, found: Sequence[ImageCandidate]) -> Link | None:
    if len(found) == 1:
        return Link(found[0], reason, "ok")
    if len(found) > 1:
        keys = tuple(sorted(c.series_key for c in found))
        return Link(None, reason, str(Status.failed("ambiguous-reference")), keys,
                    f"{len(keys)} image series remain after the {reason} step: "
                    f"{', '.join(keys)}")
    return None


def _depth(a: Path, b: Path) -> int:
    try:
        return len(Path(os.path.commonpath([a, b])).parts)
    except ValueError:  # different drives
        return 0


def _inside(mask: MaskObject, grid: Grid | None) -> bool:
    if grid is None:  # extent unknown (no geometry check): the series stays a candidate
        return True
    if not len(mask.points):
        return True
    return bool(grid.contains(grid.to_index(mask.points), EXTENT_ATOL).all())


def link_mask(mask: MaskObject, mask_file: Path, images: Sequence[ImageCandidate],
              instances: Callable[[ImageCandidate], frozenset[str]],
              fallback_modalities: Sequence[str] = ()) -> Link:
    """Find the image series of ``mask`` (see the module notes for the order).

    Parameters
    ----------
    mask
        The object's header summary.
    mask_file
        Its file (for the common-folder step).
    images
        The image series of the same patient.
    instances
        Returns the SOPInstanceUIDs of a candidate's files (read lazily: only steps 1-2 need
        them).
    fallback_modalities
        Modalities allowed in steps 3-4 (empty: any).
    """
    by_series = [c for c in images if c.series_uid in mask.referenced_series]
    if len(by_series) > 1 and mask.referenced_instances:
        narrowed = [c for c in by_series if instances(c) & mask.referenced_instances]
        by_series = narrowed or by_series
    decided = _decide("referenced-series", by_series)
    if decided is None and mask.referenced_instances:
        decided = _decide("referenced-instances",
                          [c for c in images if instances(c) & mask.referenced_instances])
    if decided is not None:
        return decided
    allowed = {m.upper() for m in fallback_modalities}
    usable = [c for c in images if Status.parse(c.status).reason not in NOT_A_VOLUME
              and (not allowed or c.modality.upper() in allowed)]
    same_frame = [c for c in usable if mask.frame_of_reference_uid
                  and c.frame_of_reference_uid == mask.frame_of_reference_uid
                  and _inside(mask, c.grid)]
    if len(same_frame) == 1:
        return Link(same_frame[0], "frame-of-reference", "ok")
    pool = same_frame or usable
    if not pool:
        return Link(None, "", str(Status.failed("reference-not-found")), (),
                    "no image series of the patient matches the references, and no usable "
                    "image series is left for the fallbacks")
    depths = {c.series_key: _depth(mask_file.parent, c.folder) for c in pool}
    best = max(depths.values())
    decided = _decide("common-folder", [c for c in pool if depths[c.series_key] == best])
    if decided is not None:
        return decided
    return Link(None, "", str(Status.failed("reference-not-found")))


def read_sop_instances(files: Sequence[str | os.PathLike[str]]) -> frozenset[str]:
    """SOPInstanceUIDs of image files (headers only; unreadable files are left out)."""
    found = set()
    for f in files:
        try:
            ds, _ = read_header(f)
        except (OSError, ValueError):  # unreadable files are recorded by the crawl already
            continue
        uid = get_str(ds, "SOPInstanceUID")
        if uid:
            found.add(uid)
    return frozenset(found)


__all__ = [
    "MASK_SOP_CLASSES",
    "ImageCandidate",
    "Link",
    "MaskObject",
    "MaskRoi",
    "link_mask",
    "mask_kind",
    "read_mask_object",
    "read_sop_instances",
    "referenced_series",
]
