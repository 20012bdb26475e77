"""Synthetic multi-frame DICOM and re-encoding for test fixtures (companion of
:mod:`radflow.demo.synthetic`).

* :func:`write_enhanced` writes an Enhanced MR / Enhanced CT object with per-frame functional
  groups (position, rescale, echo time, b-value, temporal position), the way scanners write
  4-D acquisitions in one file.
* :func:`write_legacy_converted` converts a single-frame series with highdicom (an independent
  implementation) into a Legacy Converted Enhanced CT/MR object.
* :func:`recompress` re-encodes a file in a transfer syntax pydicom cannot write (JPEG baseline,
  JPEG lossless) with GDCM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLossless,
    JPEGLosslessSV1,
)

from radflow.demo.synthetic import Patient, Study, _base_dataset, derived_uid

ENHANCED_CT_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2.1")
ENHANCED_MR_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4.1")


def item(**values: object) -> Dataset:
    """A sequence item (data set) with the given keyword values."""
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds




def multiframe_dataset(stored: np.ndarray, *, patient: Patient, study: Study, sop_class: UID,
                       series_uid: str, modality: str, description: str,
                       image_type: Sequence[str], instance: str) -> tuple[Dataset, np.ndarray]:
    """The header of one multi-frame object of 16-bit monochrome frames (no geometry).

    Parameters
    ----------
    stored : numpy.ndarray, shape (frames, rows, columns), int16 or uint16
        Stored values per frame.
    instance
        Tag for the SOPInstanceUID, derived from ``series_uid``.

    Returns
    -------
    (pydicom.Dataset, numpy.ndarray)
        The data set and ``stored`` as an array.
    """
    stored = np.asarray(stored)
    if stored.ndim != 3 or stored.dtype not in (np.int16, np.uint16):
        raise ValueError("stored must be a 3-D int16/uint16 array (frames, rows, columns)")
    n, rows, cols = stored.shape
    ds = _base_dataset(patient, study, sop_class, derived_uid(series_uid, instance),
                       ExplicitVRLittleEndian)
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.SeriesDescription = description
    ds.InstanceNumber = 1
    ds.ImageType = list(image_type)
    ds.NumberOfFrames = n
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    return ds, stored


def save_frames(ds: Dataset, stored: np.ndarray, path: str | Path) -> Path:
    """Attach ``stored`` (frames, rows, columns) as little-endian Pixel Data; write ``path``."""
    ds.PixelData = np.ascontiguousarray(stored.astype(stored.dtype.newbyteorder("<"))).tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_enhanced(
    path: str | Path,
    stored: np.ndarray,
    *,
    patient: Patient,
    study: Study,
    series_uid: str,
    positions: Sequence[Sequence[float]],
    modality: str = "MR",
    row_direction: tuple[float, float, float] = (1.0, 0.0, 0.0),
    column_direction: tuple[float, float, float] = (0.0, 1.0, 0.0),
    pixel_spacing: tuple[float, float] = (1.0, 1.0),
    slice_thickness: float = 1.0,
    slope: float | Sequence[float] = 1.0,
    intercept: float | Sequence[float] = 0.0,
    echo_times: Sequence[float] | None = None,
    b_values: Sequence[float] | None = None,
    temporal_positions: Sequence[int] | None = None,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "M", "NONE"),
    per_frame: Callable[[int, Dataset], None] | None = None,
) -> Path:
    """Write one enhanced multi-frame object with per-frame functional groups.

    Parameters
    ----------
    path
        Destination file (its folder is created).
    stored : numpy.ndarray, shape (frames, rows, columns), int16 or uint16
        Stored values per frame, in the order written.
    positions : sequence of (x, y, z)
        ImagePositionPatient per frame (Plane Position Sequence).
    pixel_spacing
        ``(row spacing, column spacing)`` as DICOM stores PixelSpacing (Pixel Measures).
    slope, intercept
        Per frame or one value (Pixel Value Transformation Sequence, per frame).
    echo_times, b_values, temporal_positions
        Per frame: EffectiveEchoTime (MR Echo), DiffusionBValue (MR Diffusion),
        TemporalPositionIndex (Frame Content); omitted when ``None``.
    per_frame
        Called as ``per_frame(k, item)`` on each per-frame functional group item, to break
        things.
    """
    sop_class = ENHANCED_CT_STORAGE if modality == "CT" else ENHANCED_MR_STORAGE
    ds, stored = multiframe_dataset(stored, patient=patient, study=study, sop_class=sop_class,
                                    series_uid=series_uid, modality=modality,
                                    description="ENHANCED", image_type=image_type,
                                    instance="enhanced")
    n = stored.shape[0]
    ds.ContentDate, ds.ContentTime = study.date, study.time
    ds.AcquisitionDateTime = study.date + study.time
    ds.SharedFunctionalGroupsSequence = [item(
        PlaneOrientationSequence=[item(ImageOrientationPatient=[
            float(v) for v in (*row_direction, *column_direction)])],
        PixelMeasuresSequence=[item(PixelSpacing=[float(v) for v in pixel_spacing],
                                     SliceThickness=float(slice_thickness))],
    )]
    slopes = list(slope) if isinstance(slope, Sequence) else [slope] * n
    intercepts = list(intercept) if isinstance(intercept, Sequence) else [intercept] * n
    groups = []
    for k in range(n):
        content = item(FrameAcquisitionNumber=1)
        if temporal_positions is not None:
            content.TemporalPositionIndex = int(temporal_positions[k])
        group = item(
            FrameContentSequence=[content],
            PlanePositionSequence=[item(ImagePositionPatient=[float(v) for v in positions[k]])],
            PixelValueTransformationSequence=[item(
                RescaleSlope=f"{slopes[k]:.6g}", RescaleIntercept=f"{intercepts[k]:.6g}",
                RescaleType="HU" if modality == "CT" else "US")],
        )
        if echo_times is not None:
            group.MREchoSequence = [item(EffectiveEchoTime=float(echo_times[k]))]
        if b_values is not None:
            group.MRDiffusionSequence = [item(
                DiffusionBValue=float(b_values[k]),
                DiffusionDirectionality="NONE" if b_values[k] == 0 else "ISOTROPIC")]
        if per_frame is not None:
            per_frame(k, group)
        groups.append(group)
    ds.PerFrameFunctionalGroupsSequence = groups
    return save_frames(ds, stored, path)


def write_legacy_converted(files: Sequence[str | Path], path: str | Path, *,
                           series_uid: str) -> Path:
    """Convert a single-frame CT or MR series into one Legacy Converted Enhanced object.

    Uses highdicom's ``LegacyConvertedEnhancedCTImage`` / ``...MRImage`` (an implementation
    independent of radflow's reader).
    """
    from highdicom.legacy import (
        LegacyConvertedEnhancedCTImage,
        LegacyConvertedEnhancedMRImage,
    )

    datasets = [pydicom.dcmread(f) for f in files]
    cls = (LegacyConvertedEnhancedCTImage if datasets[0].Modality == "CT"
           else LegacyConvertedEnhancedMRImage)
    image = cls(datasets, series_instance_uid=series_uid, series_number=90,
                sop_instance_uid=derived_uid(series_uid, "legacy"), instance_number=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save_as(path)
    return path


_GDCM_SYNTAXES = {
    JPEGBaseline8Bit: "JPEGBaselineProcess1",
    JPEGLossless: "JPEGLosslessProcess14",
    JPEGLosslessSV1: "JPEGLosslessProcess14_1",
}


def recompress(path: str | Path, syntax: UID, *, quality: int = 90) -> None:
    """Re-encode ``path`` in place as JPEG baseline (8-bit, lossy) or JPEG lossless, with GDCM.

    Raises
    ------
    ValueError
        For another transfer syntax (use pydicom's ``Dataset.compress`` for RLE, JPEG-LS and
        JPEG 2000) or when GDCM cannot encode the image.
    """
    import gdcm

    if syntax not in _GDCM_SYNTAXES:
        raise ValueError(f"recompress supports {sorted(_GDCM_SYNTAXES)}, not {syntax}")
    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    if not reader.Read():
        raise ValueError(f"GDCM cannot read {path}")
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(getattr(gdcm.TransferSyntax,
                                                         _GDCM_SYNTAXES[syntax])))
    change.SetInput(reader.GetImage())
    if syntax == JPEGBaseline8Bit:
        codec = gdcm.JPEGCodec()
        codec.SetLossless(False)
        codec.SetQuality(quality)
        change.SetUserCodec(codec)
    if not change.Change():
        raise ValueError(f"GDCM cannot encode {path} as {syntax.name}")
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(path))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    if not writer.Write():
        raise ValueError(f"GDCM cannot write {path}")


__all__ = ["ENHANCED_CT_STORAGE", "ENHANCED_MR_STORAGE", "item", "multiframe_dataset",
           "recompress", "save_frames", "write_enhanced",
           "write_legacy_converted"]
