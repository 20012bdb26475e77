"""Synthetic classic multi-frame and colour DICOM for test fixtures (companion of
:mod:`radflow.demo.synthetic` and :mod:`radflow.demo.synthetic_multiframe`).

* :func:`write_classic_multiframe` writes a multi-frame object without per-frame functional
  groups: NM (planar, TOMO, RECON TOMO with a Detector Information Sequence), US / XA cine
  (Frame Increment Pointer to Frame Time), or any SOP class with one plane position at the top
  level or in the shared functional groups.
* :func:`write_colour_series` writes single-frame colour slices (RGB, YBR_FULL, YBR_FULL_422;
  planar configuration 0 or 1). YBR values are computed here with the equations of PS3.3
  C.7.6.3.1.2 (numpy only), independently of pydicom's colour conversion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from radflow.demo.synthetic import MR_IMAGE_STORAGE, Patient, Study, _base_dataset, derived_uid
from radflow.demo.synthetic_multiframe import item, multiframe_dataset, save_frames

NM_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.20")
US_MULTIFRAME_STORAGE = UID("1.2.840.10008.5.1.4.1.1.3.1")
XA_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.12.1")
SC_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.7")
FRAME_TIME = 0x00181063
SLICE_VECTOR = 0x00540080


def _floats(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values]


def write_classic_multiframe(
    path: str | Path,
    stored: np.ndarray,
    *,
    patient: Patient,
    study: Study,
    series_uid: str,
    sop_class: UID = MR_IMAGE_STORAGE,
    modality: str = "MR",
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    position: Sequence[float] | None = None,
    orientation: Sequence[float] | None = None,
    pixel_spacing: Sequence[float] | None = None,
    in_shared_groups: bool = False,
    in_detector: bool = False,
    frame_increment_pointer: Sequence[int] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Path:
    """Write one classic multi-frame object (no per-frame functional groups).

    Parameters
    ----------
    stored : numpy.ndarray, shape (frames, rows, columns), int16 or uint16
        Stored values per frame, in frame order.
    position, orientation, pixel_spacing
        ImagePositionPatient, ImageOrientationPatient, PixelSpacing; omitted when ``None``.
    in_shared_groups
        Write position, orientation and pixel spacing into SharedFunctionalGroupsSequence
        (Plane Position, Plane Orientation, Pixel Measures) instead of the top level.
    in_detector
        Write position and orientation into the one item of DetectorInformationSequence (NM
        RECON TOMO), pixel spacing at the top level.
    frame_increment_pointer
        Tags for Frame Increment Pointer (0028,0009), e.g. :data:`FRAME_TIME`.
    attributes
        Other top-level attributes (keyword -> value), e.g. ``SpacingBetweenSlices``,
        ``SliceVector``, ``FrameTime``.
    """
    ds, stored = multiframe_dataset(stored, patient=patient, study=study, sop_class=sop_class,
                                    series_uid=series_uid, modality=modality,
                                    description="MULTIFRAME", image_type=image_type,
                                    instance="classic")
    if frame_increment_pointer is not None:
        ds.FrameIncrementPointer = list(frame_increment_pointer)
    plane = {}
    if position is not None:
        plane["ImagePositionPatient"] = _floats(position)
    if orientation is not None:
        plane["ImageOrientationPatient"] = _floats(orientation)
    if in_shared_groups:
        group = Dataset()
        if position is not None:
            group.PlanePositionSequence = [item(ImagePositionPatient=_floats(position))]
        if orientation is not None:
            group.PlaneOrientationSequence = [item(ImageOrientationPatient=_floats(orientation))]
        if pixel_spacing is not None:
            group.PixelMeasuresSequence = [item(PixelSpacing=_floats(pixel_spacing))]
        ds.SharedFunctionalGroupsSequence = [group]
    elif in_detector:
        ds.DetectorInformationSequence = [item(**plane)]
        if pixel_spacing is not None:
            ds.PixelSpacing = _floats(pixel_spacing)
    else:
        for keyword, value in plane.items():
            setattr(ds, keyword, value)
        if pixel_spacing is not None:
            ds.PixelSpacing = _floats(pixel_spacing)
    for keyword, value in (attributes or {}).items():
        setattr(ds, keyword, value)
    return save_frames(ds, stored, path)


def rgb_to_ybr_full(rgb: np.ndarray) -> np.ndarray:
    """RGB -> YBR_FULL (PS3.3 C.7.6.3.1.2), rounded and clipped to uint8."""
    r, g, b = (rgb[..., c].astype(np.float64) for c in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    return np.clip(np.rint(np.stack([y, cb, cr], axis=-1)), 0, 255).astype(np.uint8)


def _pixel_bytes(rgb: np.ndarray, photometric: str, planar: int) -> bytes:
    """Encoded bytes of one (rows, cols, 3) uint8 RGB frame."""
    values = rgb if photometric == "RGB" else rgb_to_ybr_full(rgb)
    if photometric == "YBR_FULL_422":
        # per pair of pixels along a row: Y1 Y2 CB CR (chroma of the pair averaged)
        y = values[..., 0].reshape(values.shape[0], -1, 2)
        chroma = values[..., 1:].reshape(values.shape[0], -1, 2, 2).astype(np.float64)
        cb = np.rint(chroma[..., 0].mean(axis=-1)).astype(np.uint8)[..., np.newaxis]
        cr = np.rint(chroma[..., 1].mean(axis=-1)).astype(np.uint8)[..., np.newaxis]
        return np.concatenate([y, cb, cr], axis=-1).tobytes()
    if planar == 1:
        return np.ascontiguousarray(np.moveaxis(values, -1, 0)).tobytes()
    return np.ascontiguousarray(values).tobytes()


def write_colour_series(
    folder: str | Path,
    rgb: np.ndarray,
    *,
    patient: Patient,
    study: Study,
    series_uid: str,
    photometric: str = "RGB",
    planar_configuration: int = 0,
    sop_class: UID = SC_IMAGE_STORAGE,
    modality: str = "MR",
    image_type: Sequence[str] = ("DERIVED", "SECONDARY", "OTHER"),
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    file_names: Sequence[str] | None = None,
) -> list[Path]:
    """Write single-frame colour slices with plane geometry (axial, slices along +z).

    Parameters
    ----------
    rgb : numpy.ndarray, shape (slices, rows, columns, 3), uint8
        The RGB values the slices hold (for YBR_FULL_422, give pairs of equal pixels along each
        row to make the subsampling lossless; Columns must be even).
    photometric
        ``RGB``, ``YBR_FULL`` or ``YBR_FULL_422`` (planar configuration 0 only).
    spacing
        (column spacing x, row spacing y, slice spacing) in mm.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError("rgb must be a (slices, rows, columns, 3) uint8 array")
    if photometric == "YBR_FULL_422" and (planar_configuration != 0 or rgb.shape[2] % 2):
        raise ValueError("YBR_FULL_422 needs planar configuration 0 and an even column count")
    n, rows, cols, _ = rgb.shape
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = list(file_names) if file_names is not None else [f"IM{k:04d}.dcm" for k in range(n)]
    written = []
    for k in range(n):
        ds = _base_dataset(patient, study, sop_class, derived_uid(series_uid, k),
                           ExplicitVRLittleEndian)
        ds.Modality = modality
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 1
        ds.SeriesDescription = "COLOUR"
        ds.ImageType = list(image_type)
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = _floats((origin[0], origin[1], origin[2] + k * spacing[2]))
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        ds.SliceThickness = float(spacing[2])
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = photometric
        ds.PlanarConfiguration = planar_configuration
        ds.Rows, ds.Columns = rows, cols
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelRepresentation = 0
        ds.PixelData = _pixel_bytes(rgb[k], photometric, planar_configuration)
        path = folder / names[k]
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
    return written


__all__ = ["FRAME_TIME", "NM_IMAGE_STORAGE", "SC_IMAGE_STORAGE", "SLICE_VECTOR",
           "US_MULTIFRAME_STORAGE", "XA_IMAGE_STORAGE", "rgb_to_ybr_full",
           "write_classic_multiframe", "write_colour_series"]
