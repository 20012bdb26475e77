"""A pair's mask as a DICOM SEG on its source images (highdicom), and the SEG a pair came from.

:func:`mask_on_source_frames` puts the pair's mask (the NIfTI/MHA the extract stage read, on the
converted image's grid) onto the pixels of the source DICOM images: each source pixel's centre
must fall on a voxel centre of the mask grid, and every voxel of the region must be covered, or
the pair fails with ``source-grid-mismatch`` (a resampled volume: gantry tilt or uneven spacing;
a source of several multi-frame images, or one volume of a split multi-frame image). Single-frame
images and one multi-frame image (enhanced CT/MR/PET, planes from its functional groups) are
supported. :func:`build_seg` writes it as a BINARY segmentation with one
segment, algorithm type SEMIAUTOMATIC (a delineation made by a person or another tool, placed
on the image by radflow), algorithm radflow and its version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from radflow.errors import DicomError

#: SpecificCharacterSet of the SEG: UTF-8 (pydicom decodes the source's text first).
CHARSET = "ISO_IR 192"
#: Largest distance (in voxels) of a source pixel centre from a mask voxel centre.
INDEX_TOL = 1e-3
MISMATCH = "source-grid-mismatch"
#: The generic property codes of radflow's segments (the ROI's meaning is its label).
SEGMENT_CATEGORY = codes.SCT.Tissue
SEGMENT_TYPE = codes.SCT.Tissue


@dataclass(frozen=True)
class SegIdentity:
    """UIDs and numbers of a SEG radflow writes (deterministic: see :mod:`radflow.sr.uids`)."""

    series_uid: str
    instance_uid: str
    tracking_uid: str
    tracking_id: str
    series_number: int = 9000


def _vec(ds: Dataset, keyword: str, n: int, name: str) -> np.ndarray:
    value = ds.get(keyword)
    if value is None or len(value) != n:
        raise DicomError(f"{name}: source image without {keyword}", reason=MISMATCH)
    return np.asarray([float(v) for v in value], dtype=np.float64)


def _group(groups: Dataset | None, sequence: str) -> Dataset | None:
    items = groups.get(sequence) if groups is not None else None
    return items[0] if items else None


def frame_planes(sources: Sequence[Dataset], name: str
                 ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Position, orientation and pixel spacing of every frame of the source images, in order.

    Single-frame images: their own attributes. One multi-frame image (enhanced CT/MR/PET):
    per frame from its per-frame functional groups, else the shared ones (PS3.3 C.7.6.16).

    Raises
    ------
    DicomError
        ``source-grid-mismatch``: several multi-frame images (a SEG references either
        single-frame images or exactly one multi-frame image), or a plane attribute missing.
    """
    multi = [ds for ds in sources if int(ds.get("NumberOfFrames", 1) or 1) > 1]
    if not multi:
        return [(_vec(ds, "ImagePositionPatient", 3, name),
                 _vec(ds, "ImageOrientationPatient", 6, name),
                 _vec(ds, "PixelSpacing", 2, name)) for ds in sources]
    if len(sources) != 1:
        raise DicomError(f"{name}: a series of several multi-frame images is not supported",
                         reason=MISMATCH)
    ds = sources[0]
    shared = _group(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(per_frame) != int(ds.NumberOfFrames):
        raise DicomError(f"{name}: a multi-frame source without per-frame functional groups",
                         reason=MISMATCH)
    planes = []
    for groups in per_frame:
        found = []
        for sequence, keyword, n in (("PlanePositionSequence", "ImagePositionPatient", 3),
                                     ("PlaneOrientationSequence", "ImageOrientationPatient", 6),
                                     ("PixelMeasuresSequence", "PixelSpacing", 2)):
            item = _group(groups, sequence) or _group(shared, sequence)
            if item is None:
                raise DicomError(f"{name}: a frame without {sequence}", reason=MISMATCH)
            found.append(_vec(item, keyword, n, name))
        planes.append((found[0], found[1], found[2]))
    return planes


def mask_on_source_frames(mask: sitk.Image, label: int, sources: Sequence[Dataset],
                          name: str) -> np.ndarray:
    """The region ``mask == label`` on the pixels of the source images.

    Parameters
    ----------
    mask
        The pair's mask (integer labels) in LPS patient coordinates.
    label
        The region's value.
    sources
        The source images' headers: single-frame images, or one multi-frame image.
    name
        The pair, for messages.

    Returns
    -------
    numpy.ndarray of bool, shape (n_frames, rows, cols)
        One plane per source frame (:func:`frame_planes` order).

    Raises
    ------
    DicomError
        ``source-grid-mismatch``: a source pixel is not on a mask voxel centre, or a region
        voxel lies on no source frame (and see :func:`frame_planes`).
    """
    arr = sitk.GetArrayViewFromImage(mask)  # (z, y, x)
    inside = arr == label
    size = np.asarray(mask.GetSize())
    direction = np.asarray(mask.GetDirection(), dtype=np.float64).reshape(3, 3)
    to_index = np.linalg.inv(direction @ np.diag(mask.GetSpacing()))
    origin = np.asarray(mask.GetOrigin(), dtype=np.float64)
    planes = frame_planes(sources, name)
    rows, cols = int(sources[0].Rows), int(sources[0].Columns)
    out = np.zeros((len(planes), rows, cols), dtype=bool)
    covered = np.zeros_like(inside)
    for n, (ipp, iop, spacing) in enumerate(planes):
        start = to_index @ (ipp - origin)
        step_c = to_index @ (iop[:3] * spacing[1])
        step_r = to_index @ (iop[3:] * spacing[0])
        corners = np.stack([start, start + step_c * (cols - 1), start + step_r * (rows - 1)])
        if (np.abs(corners - np.round(corners)).max() > INDEX_TOL
                or np.abs(step_c - np.round(step_c)).max() > INDEX_TOL
                or np.abs(step_r - np.round(step_r)).max() > INDEX_TOL
                or (np.round(corners) < 0).any() or (np.round(corners) >= size).any()):
            raise DicomError(f"{name}: source frame {n + 1} of {len(planes)} does not lie on "
                             "the mask's voxel grid (a resampled volume?)", reason=MISMATCH)
        i0, sc, sr = (np.round(v).astype(int) for v in (start, step_c, step_r))
        r, c = np.mgrid[0:rows, 0:cols]
        idx = i0[:, None, None] + sc[:, None, None] * c + sr[:, None, None] * r  # (3, rows, cols)
        out[n] = inside[idx[2], idx[1], idx[0]]
        covered[idx[2], idx[1], idx[0]] = True
    missed = int((inside & ~covered).sum())
    if missed:
        raise DicomError(f"{name}: {missed} voxels of the region lie on no source image",
                         reason=MISMATCH)
    return out


def build_seg(sources: Sequence[Dataset], frames: np.ndarray, *, roi: str,
              identity: SegIdentity, version: str) -> hd.seg.Segmentation:
    """The BINARY DICOM SEG of one region on its source images.

    Parameters
    ----------
    sources
        The source images (headers), in the order of ``frames``.
    frames
        :func:`mask_on_source_frames`.
    roi
        The segment label (the pair's ROI name).
    identity
        UIDs, tracking identifier and series number.
    version
        radflow's version.
    """
    algorithm = hd.AlgorithmIdentificationSequence(
        name="radflow", version=version, family=codes.cid7162.ManualProcessing)
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label=roi[:64] or "ROI",
        segmented_property_category=SEGMENT_CATEGORY, segmented_property_type=SEGMENT_TYPE,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
        algorithm_identification=algorithm, tracking_uid=identity.tracking_uid,
        tracking_id=identity.tracking_id)
    return hd.seg.Segmentation(
        source_images=list(sources), pixel_array=frames.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=identity.series_uid,
        series_number=identity.series_number, sop_instance_uid=identity.instance_uid,
        instance_number=1, manufacturer="radflow", manufacturer_model_name="radflow",
        software_versions=version, device_serial_number="0",
        series_description="radflow segmentation", content_label="ROI",
        content_description=f"radflow: {roi}"[:64], specific_character_set=CHARSET)


__all__ = ["MISMATCH", "SegIdentity", "build_seg", "frame_planes", "mask_on_source_frames"]
