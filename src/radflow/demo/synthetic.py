"""Synthetic DICOM writing for the demo cohort and for test fixtures.

Writes real, standard-conformant single-frame image series with pydicom (CT Image Storage or MR
Image Storage) and a minimal non-image object, with full control of geometry, per-slice rescale,
character sets and identifying attributes, so that tests can build every edge case from a clean
series and the demo can plant known patient data to check it never reaches an output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    generate_uid,
)

CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")
MR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4")
BASIC_TEXT_SR_STORAGE = UID("1.2.840.10008.5.1.4.1.1.88.11")

#: A root under which deterministic UIDs are derived (pydicom's own prefix).
UID_PREFIX = "1.2.826.0.1.3680043.8.498."


def derived_uid(*parts: object) -> UID:
    """A deterministic UID derived from ``parts`` (same parts -> same UID)."""
    return generate_uid(prefix=UID_PREFIX, entropy_srcs=[str(p) for p in parts])


@dataclass(frozen=True)
class Patient:
    """Identifying and demographic values written into every object of a patient.

    ``charset`` is the DICOM SpecificCharacterSet: ``"ISO_IR 192"`` (UTF-8) or
    ``["", "ISO 2022 IR 149"]`` (Korean with code extensions), for example; ``None`` omits the
    attribute (default repertoire, ASCII only), as many archives do.
    """

    patient_id: str
    name: str
    birth_date: str = "19600101"
    sex: str = "O"
    age: str = "060Y"
    weight_kg: float | None = None
    accession: str = "ACC0001"
    institution: str = "Radflow Demo Hospital"
    charset: str | Sequence[str] | None = "ISO_IR 192"


@dataclass(frozen=True)
class Study:
    """Study-level identity (one per acquisition session)."""

    study_uid: str
    frame_of_reference_uid: str
    date: str = "20240102"
    time: str = "101500"
    description: str = "CT THORAX"


def _base_dataset(patient: Patient, study: Study, sop_class: UID, sop_uid: UID,
                  transfer_syntax: UID) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    if patient.charset is not None:
        ds.SpecificCharacterSet = patient.charset
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.PatientAge = patient.age
    if patient.weight_kg is not None:
        ds.PatientWeight = f"{patient.weight_kg:.1f}"
    ds.AccessionNumber = patient.accession
    ds.InstitutionName = patient.institution
    ds.ReferringPhysicianName = "Referrer^Demo"
    ds.StudyInstanceUID = study.study_uid
    ds.StudyID = "1"
    ds.StudyDate = study.date
    ds.StudyTime = study.time
    ds.StudyDescription = study.description
    ds.FrameOfReferenceUID = study.frame_of_reference_uid
    return ds


def write_series(
    folder: str | Path,
    stored: np.ndarray,
    *,
    patient: Patient,
    study: Study,
    series_uid: str,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    row_direction: tuple[float, float, float] = (1.0, 0.0, 0.0),
    column_direction: tuple[float, float, float] = (0.0, 1.0, 0.0),
    slice_positions: Sequence[float] | None = None,
    slope: float | Sequence[float] = 1.0,
    intercept: float | Sequence[float] = -1024.0,
    modality: str = "CT",
    series_number: int = 1,
    series_description: str = "AXIAL 1.0",
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    instance_numbers: Sequence[int] | None = None,
    file_names: Sequence[str] | None = None,
    transfer_syntax: UID = ExplicitVRLittleEndian,
    acquisition: Mapping[str, Any] | None = None,
    per_slice: Callable[[int, Dataset], None] | None = None,
    uid_seed: str = "",
) -> list[Path]:
    """Write a single-frame image series, one file per slice.

    Parameters
    ----------
    folder
        Destination folder (created).
    stored : numpy.ndarray, shape (n_slices, rows, columns), dtype int16 or uint16
        Stored pixel values (before rescale), slice by slice in the order written.
    spacing
        (column spacing x, row spacing y, slice spacing) in mm. PixelSpacing is written as
        ``[row spacing, column spacing]`` as DICOM defines it.
    origin
        ImagePositionPatient of slice 0 (LPS, mm).
    row_direction, column_direction
        The two ImageOrientationPatient direction cosines.
    slice_positions
        Distance of each slice along the slice normal from ``origin`` (mm); default
        ``k * spacing[2]``. Use it for missing slices or uneven spacing.
    slope, intercept
        RescaleSlope/RescaleIntercept, one value or one per slice.
    instance_numbers
        InstanceNumber per slice (default 1..n); shuffle them to test normal-based sorting.
    file_names
        File name per slice (default ``IM{k:04d}.dcm``).
    acquisition
        Extra attributes (keyword -> value) written into every slice, e.g. ``{"KVP": 120}``.
    per_slice
        Called as ``per_slice(k, dataset)`` just before slice ``k`` is saved, to break things.
    uid_seed
        Mixed into the SOPInstanceUIDs, so that several calls can write one series (echoes,
        time points) without repeating an instance UID. Default: UIDs from the series UID only.

    Returns
    -------
    list of pathlib.Path
        The files written, in slice order.
    """
    stored = np.asarray(stored)
    if stored.ndim != 3 or stored.dtype not in (np.int16, np.uint16):
        raise ValueError("stored must be a 3-D int16/uint16 array (slices, rows, columns)")
    n, rows, cols = stored.shape
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    row_dir = np.asarray(row_direction, float)
    col_dir = np.asarray(column_direction, float)
    normal = np.cross(row_dir, col_dir)
    positions = (list(slice_positions) if slice_positions is not None
                 else [k * spacing[2] for k in range(n)])
    slopes = list(slope) if isinstance(slope, Sequence) else [slope] * n
    intercepts = list(intercept) if isinstance(intercept, Sequence) else [intercept] * n
    numbers = list(instance_numbers) if instance_numbers is not None else list(range(1, n + 1))
    names = list(file_names) if file_names is not None else [f"IM{k:04d}.dcm" for k in range(n)]
    sop_class = CT_IMAGE_STORAGE if modality == "CT" else MR_IMAGE_STORAGE
    written = []
    for k in range(n):
        sop_uid = derived_uid(series_uid, uid_seed, k) if uid_seed else derived_uid(series_uid, k)
        ds = _base_dataset(patient, study, sop_class, sop_uid, transfer_syntax)
        ds.Modality = modality
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = series_description
        ds.SeriesDate = study.date
        ds.ImageType = list(image_type)
        ds.InstanceNumber = numbers[k]
        ds.AcquisitionNumber = 1
        ds.PatientPosition = "HFS"
        ds.ImagePositionPatient = [float(v) for v in np.asarray(origin) + positions[k] * normal]
        ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        ds.SliceThickness = float(spacing[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = rows
        ds.Columns = cols
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
        if modality == "CT" or slopes[k] != 1.0 or intercepts[k] != 0.0:
            ds.RescaleSlope = f"{slopes[k]:.6g}"
            ds.RescaleIntercept = f"{intercepts[k]:.6g}"
            if modality == "CT":
                ds.RescaleType = "HU"
        for keyword, value in (acquisition or {}).items():
            setattr(ds, keyword, value)
        big_endian = transfer_syntax == ExplicitVRBigEndian
        ds.PixelData = np.ascontiguousarray(
            stored[k].astype(stored.dtype.newbyteorder(">" if big_endian else "<"))).tobytes()
        if per_slice is not None:
            per_slice(k, ds)
        path = folder / names[k]
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
    return written


def write_text_report(folder: str | Path, *, patient: Patient, study: Study, series_uid: str,
                      text: str = "No abnormality.", file_name: str = "SR0001.dcm") -> Path:
    """Write a minimal Basic Text SR (a non-image object the crawl must list as excluded)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sop_uid = derived_uid(series_uid, "sr")
    ds = _base_dataset(patient, study, BASIC_TEXT_SR_STORAGE, sop_uid, ExplicitVRLittleEndian)
    ds.Modality = "SR"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 99
    ds.SeriesDescription = "REPORT"
    ds.InstanceNumber = 1
    ds.ContentDate = study.date
    ds.ContentTime = study.time
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    concept = Dataset()
    concept.CodeValue = "121070"
    concept.CodingSchemeDesignator = "DCM"
    concept.CodeMeaning = "Findings"
    ds.ConceptNameCodeSequence = [concept]
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    item.ConceptNameCodeSequence = [concept]
    item.TextValue = text
    ds.ContentSequence = [item]
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    path = folder / file_name
    ds.save_as(path, enforce_file_format=True)
    return path


__all__ = [
    "BASIC_TEXT_SR_STORAGE",
    "CT_IMAGE_STORAGE",
    "MR_IMAGE_STORAGE",
    "Patient",
    "Study",
    "derived_uid",
    "write_series",
    "write_text_report",
]
