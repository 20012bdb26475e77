"""Synthetic RT Structure Sets and DICOM SEG objects for the demo cohort and test fixtures.

* :func:`contours_from_mask` traces a voxel mask slice by slice (marching squares,
  :func:`skimage.measure.find_contours` at level 0.5). The contours pass between voxel centres, so
  rasterising them with radflow's rule (:mod:`radflow.dicom.rtstruct`) gives the mask back
  exactly, holes included.
* :func:`write_rtstruct` writes an RT Structure Set with pydicom; references can be left out or
  pointed at other UIDs to build broken-reference cases.
* :func:`write_seg` writes a BINARY or FRACTIONAL SEG with highdicom from the source images'
  headers; :func:`write_labelmap_seg` a LABELMAP SEG (Label Map Segmentation Storage) of the
  same segments from one label array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID, ExplicitVRLittleEndian
from skimage.measure import find_contours

from radflow.demo.synthetic import Patient, Study, _base_dataset, derived_uid
from radflow.dicom.grid import Grid
from radflow.dicom.rtstruct import RTSTRUCT_SOP_CLASS

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_ROOT_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (used by RTSTRUCTs)


@dataclass(frozen=True)
class ContourSpec:
    """One contour: LPS points (shape (n, 3)), its type and the image it is drawn on."""

    points: np.ndarray
    geometric_type: str = "CLOSED_PLANAR"
    image_uid: str = ""


@dataclass(frozen=True)
class RoiSpec:
    """One ROI of a structure set to write."""

    number: int
    name: str
    contours: tuple[ContourSpec, ...] = field(default_factory=tuple)
    interpreted_type: str = "GTV"


def contours_from_mask(mask_zyx: np.ndarray, grid: Grid,
                       image_uids: Sequence[str] = ()) -> list[ContourSpec]:
    """Closed planar contours tracing a binary mask on ``grid``.

    Parameters
    ----------
    mask_zyx : numpy.ndarray of bool, shape grid.shape
        The mask, indexed (slice, row, column).
    image_uids
        SOPInstanceUID of each slice (slice-normal order) for the contours' image references.

    Returns
    -------
    list of ContourSpec
        One per outer boundary and per hole boundary, in slice order.
    """
    mask = np.asarray(mask_zyx, dtype=bool)
    affine = grid.index_to_patient
    out = []
    for k in range(mask.shape[0]):
        if not mask[k].any():
            continue
        padded = np.pad(mask[k], 1).astype(float)
        for rc in find_contours(padded, 0.5):
            rc = rc[:-1] - 1.0 if np.allclose(rc[0], rc[-1]) else rc - 1.0
            index = np.column_stack([rc[:, 1], rc[:, 0], np.full(len(rc), float(k))])
            points = index @ affine[:3, :3].T + affine[:3, 3]
            out.append(ContourSpec(points, "CLOSED_PLANAR",
                                   image_uids[k] if k < len(image_uids) else ""))
    return out


def _item(**values: object) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def write_rtstruct(path: str | Path, *, patient: Patient, study: Study, series_uid: str,
                   rois: Sequence[RoiSpec], image_series_uid: str = "",
                   image_uids: Sequence[str] = (), frame_of_reference_uid: str | None = None,
                   label: str = "RTSTRUCT", series_number: int = 90) -> Path:
    """Write an RT Structure Set.

    Parameters
    ----------
    path
        Output file (folders are created).
    series_uid
        SeriesInstanceUID of the structure set itself.
    rois
        The ROIs and their contours.
    image_series_uid
        SeriesInstanceUID written in RTReferencedSeriesSequence ("" leaves the study/series
        references out, as some exporters do).
    image_uids
        SOPInstanceUIDs listed in the series-level ContourImageSequence.
    frame_of_reference_uid
        Default: the study's.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sop_uid = derived_uid(series_uid, "rtstruct")
    ds = _base_dataset(patient, study, UID(RTSTRUCT_SOP_CLASS), sop_uid, ExplicitVRLittleEndian)
    del ds.FrameOfReferenceUID  # not part of the RT Structure Set IOD
    for_uid = frame_of_reference_uid or study.frame_of_reference_uid
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = label
    ds.InstanceNumber = 1
    ds.StructureSetLabel = label
    ds.StructureSetDate = study.date
    ds.StructureSetTime = study.time
    ref_frame = _item(FrameOfReferenceUID=for_uid)
    if image_series_uid:
        contour_images = [_item(ReferencedSOPClassUID=CT_IMAGE_STORAGE,
                                ReferencedSOPInstanceUID=u) for u in image_uids]
        ref_series = _item(SeriesInstanceUID=image_series_uid,
                           ContourImageSequence=contour_images)
        ref_frame.RTReferencedStudySequence = [_item(
            ReferencedSOPClassUID=STUDY_ROOT_SOP_CLASS,
            ReferencedSOPInstanceUID=study.study_uid,
            RTReferencedSeriesSequence=[ref_series])]
    ds.ReferencedFrameOfReferenceSequence = [ref_frame]
    ds.StructureSetROISequence = [
        _item(ROINumber=r.number, ReferencedFrameOfReferenceUID=for_uid, ROIName=r.name,
              ROIGenerationAlgorithm="MANUAL") for r in rois]
    roi_contours = []
    for r in rois:
        contours = []
        for c in r.contours:
            item = _item(ContourGeometricType=c.geometric_type,
                         NumberOfContourPoints=len(c.points),
                         ContourData=[f"{v:.6f}" for v in np.asarray(c.points).ravel()])
            if c.image_uid:
                item.ContourImageSequence = [_item(ReferencedSOPClassUID=CT_IMAGE_STORAGE,
                                                   ReferencedSOPInstanceUID=c.image_uid)]
            contours.append(item)
        roi_contours.append(_item(ROIDisplayColor=[255, 0, 0], ReferencedROINumber=r.number,
                                  ContourSequence=contours))
    ds.ROIContourSequence = roi_contours
    ds.RTROIObservationsSequence = [
        _item(ObservationNumber=r.number, ReferencedROINumber=r.number,
              RTROIInterpretedType=r.interpreted_type, ROIInterpreter="") for r in rois]
    ds.save_as(path, enforce_file_format=True)
    return path


def write_seg(path: str | Path, source_images: Sequence[Dataset],
              segments: Sequence[tuple[int, str, np.ndarray]], *, series_uid: str,
              fractional: bool = False, series_number: int = 91) -> Path:
    """Write a DICOM SEG with highdicom.

    Parameters
    ----------
    source_images
        Headers of the source slices, in the order of the arrays' first axis.
    segments
        ``(segment number, label, array)``; arrays of shape (n_slices, rows, columns), bool for
        BINARY, floats in 0..1 for FRACTIONAL. Segment numbers must be 1, 2, ... in order.
    series_uid
        SeriesInstanceUID of the SEG.
    """
    stack = np.stack([np.asarray(a) for _, _, a in segments], axis=-1)
    kind = (hd.seg.SegmentationTypeValues.FRACTIONAL if fractional
            else hd.seg.SegmentationTypeValues.BINARY)
    return _write(path, source_images, stack.astype(np.float32) if fractional
                  else stack.astype(bool), kind, [(n, name) for n, name, _ in segments],
                  series_uid, series_number)


def write_labelmap_seg(path: str | Path, source_images: Sequence[Dataset], labels: np.ndarray,
                       segments: Sequence[tuple[int, str]], *, series_uid: str,
                       series_number: int = 92) -> Path:
    """Write a LABELMAP SEG (Label Map Segmentation Storage) with highdicom.

    Parameters
    ----------
    source_images
        Headers of the source slices, in the order of the array's first axis.
    labels : numpy.ndarray of unsigned int, shape (n_slices, rows, columns)
        Segment numbers (0 = no segment). Frames without any segment are left out, so the
        frames may cover only part of the source series.
    segments
        ``(segment number, label)`` in ascending number order (numbers need not be
        consecutive); highdicom adds the background segment 0.
    series_uid
        SeriesInstanceUID of the SEG (its SOPInstanceUID is derived from it).
    """
    labels = np.asarray(labels)
    dtype = np.uint8 if int(labels.max(initial=0)) <= 255 else np.uint16
    return _write(path, source_images, labels.astype(dtype),
                  hd.seg.SegmentationTypeValues.LABELMAP, segments, series_uid, series_number)


def _write(path: str | Path, source_images: Sequence[Dataset], pixels: np.ndarray,
           kind: hd.seg.SegmentationTypeValues, segments: Sequence[tuple[int, str]],
           series_uid: str, series_number: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptions = [hd.seg.SegmentDescription(
        segment_number=number, segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL) for number, label in segments]
    seg = hd.seg.Segmentation(
        source_images=list(source_images), pixel_array=pixels, segmentation_type=kind,
        segment_descriptions=descriptions, series_instance_uid=series_uid,
        series_number=series_number, sop_instance_uid=derived_uid(series_uid, "seg"),
        instance_number=1, manufacturer="radflow", manufacturer_model_name="synthetic",
        software_versions="1", device_serial_number="0", omit_empty_frames=True)
    _make_deterministic(seg, source_images[0], series_uid)
    seg.save_as(path)
    return path


def _make_deterministic(seg: Dataset, source: Dataset, series_uid: str) -> None:
    """Replace the creation times and random UIDs highdicom writes, so output bytes repeat."""
    date, time = str(source.get("StudyDate", "20000101")), str(source.get("StudyTime", "000000"))
    for prefix in ("InstanceCreation", "Content", "Series"):
        if f"{prefix}Date" in seg:
            setattr(seg, f"{prefix}Date", date)
        if f"{prefix}Time" in seg:
            setattr(seg, f"{prefix}Time", time)
    for item in seg.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            item.ContributionDateTime = date + time
    organisation = str(derived_uid(series_uid, "dimension-organization"))
    for keyword in ("DimensionOrganizationSequence", "DimensionIndexSequence"):
        for item in seg.get(keyword, []):
            if "DimensionOrganizationUID" in item:
                item.DimensionOrganizationUID = organisation


__all__ = ["ContourSpec", "RoiSpec", "contours_from_mask", "write_labelmap_seg", "write_rtstruct",
           "write_seg"]
