"""Pixel volume of one DICOM series (used by the convert stage).

:func:`read_series_volume` reads an explicit list of files (never "the first series in a
folder"), runs the same geometry check as the crawl (:func:`radflow.dicom.headers.frames_geometry`),
decodes the pixels with pydicom, applies each slice's own RescaleSlope/RescaleIntercept and
returns a float32 :class:`SimpleITK.Image` in LPS patient coordinates.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from radflow.dicom.frames import FrameHeader, check_rescale, frame_headers, frames_geometry
from radflow.dicom.headers import (
    get_float,
    get_str,
    get_strs,
    quiet_pydicom,
    read_dataset,
)
from radflow.errors import DicomError
from radflow.settings import GeometrySettings

logger = logging.getLogger(__name__)

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
#: Decoder packages without GPL code, per compressed transfer syntax (pip names).
DECODER_PACKAGES: dict[str, str] = {
    JPEGBaseline8Bit: "pillow",
    JPEGExtended12Bit: "pillow",
    JPEGLossless: "python-gdcm (BSD; pylibjpeg-libjpeg is GPL and not used by radflow)",
    JPEGLosslessSV1: "python-gdcm (BSD; pylibjpeg-libjpeg is GPL and not used by radflow)",
    JPEGLSLossless: "pyjpegls",
    JPEGLSNearLossless: "pyjpegls",
    JPEG2000Lossless: "pylibjpeg and pylibjpeg-openjpeg",
    JPEG2000: "pylibjpeg and pylibjpeg-openjpeg",
    HTJ2KLossless: "pylibjpeg and pylibjpeg-openjpeg",
    HTJ2KLosslessRPCL: "pylibjpeg and pylibjpeg-openjpeg",
    HTJ2K: "pylibjpeg and pylibjpeg-openjpeg",
    RLELossless: "pylibjpeg and pylibjpeg-rle",
}


def read_series_volume(files: Sequence[str | os.PathLike[str]], settings: GeometrySettings) \
        -> tuple[sitk.Image, list[Dataset]]:
    """Read the slices in ``files`` as one volume.

    Parameters
    ----------
    files
        Every file of the series (single-frame slices, or enhanced multi-frame objects).
    settings
        Geometry tolerances (the same check as the crawl).

    Returns
    -------
    image : SimpleITK.Image
        float32, size (x=columns, y=rows, z=slices); voxel = stored * RescaleSlope +
        RescaleIntercept of its own slice (1 / 0 when absent). Spacing (x, y, z) mm; origin =
        ImagePositionPatient of the first slice along the normal; direction columns = row
        direction, column direction, normal (LPS).
    datasets : list of pydicom.dataset.Dataset
        The files' data sets in slice order (a multi-frame file once, at its first slice), with
        the pixel data elements removed to save memory.

    Raises
    ------
    InputFileError
        A file cannot be read (``truncated``, ``not-dicom``, ...).
    DicomError
        ``no-slices``, ``inconsistent-series``, ``missing-pixel-data``,
        ``unsupported-photometric``, ``unsupported-multiframe``, ``unsupported-modality-lut``,
        ``invalid-rescale``,
        ``missing-decoder`` (the message names the package to install),
        ``unsupported-transfer-syntax``, ``invalid-pixel-data``, ``non-finite-values``.
    SeriesGeometryError
        From the geometry check (``missing-slice``, ``mixed-orientation``, ...).
    """
    paths = [Path(f) for f in files]
    if not paths:
        raise DicomError("no files given for the series", reason="no-slices")
    datasets = [read_dataset(p) for p in paths]
    frames: list[FrameHeader] = []
    owner: list[int] = []  # index into datasets of each frame
    for k, (path, ds) in enumerate(zip(paths, datasets, strict=True)):
        with quiet_pydicom(path):
            _check_image(ds, path, datasets[0], paths[0])
            found = frame_headers(ds, path)
        frames.extend(found)
        owner.extend([k] * len(found))
    geometry = frames_geometry(frames, settings, get_float(datasets[0], "SliceThickness"))
    check_rescale(frames)
    volume = np.empty((geometry.n_slices, geometry.rows, geometry.cols), dtype=np.float32)
    slot = {j: z for z, j in enumerate(geometry.order)}
    for k, (path, ds) in enumerate(zip(paths, datasets, strict=True)):
        stored = _decode(ds, path)
        mine = [j for j in range(len(frames)) if owner[j] == k]
        if stored.ndim == 2:
            stored = stored[np.newaxis]
        if stored.shape != (len(mine), geometry.rows, geometry.cols):
            raise DicomError(f"{path.name}: decoded pixel array shape {stored.shape}, expected "
                             f"{(len(mine), geometry.rows, geometry.cols)}",
                             reason="invalid-pixel-data")
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite results checked below
            for j in mine:
                f = frames[j]
                volume[slot[j]] = stored[f.frame or 0].astype(np.float64) * f.slope + f.intercept
        for keyword in _PIXEL_KEYWORDS:
            if keyword in ds:
                delattr(ds, keyword)
    bad = ~np.isfinite(volume)
    if bad.any():
        z = int(np.argwhere(bad)[0][0])
        raise DicomError(f"{int(bad.sum())} non-finite voxel value(s) after rescale, first in "
                         f"slice {z} ({frames[geometry.order[z]].label})",
                         reason="non-finite-values")
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    first_slot: dict[int, int] = {}
    for z, j in enumerate(geometry.order):
        first_slot.setdefault(owner[j], z)
    ordered = [datasets[k] for k in sorted(first_slot, key=first_slot.__getitem__)]
    return image, ordered


def _check_image(ds: Dataset, path: Path, first: Dataset, first_path: Path) -> None:
    for keyword in ("SeriesInstanceUID", "SOPClassUID"):
        if get_str(ds, keyword) != get_str(first, keyword):
            raise DicomError(f"{keyword} of {path.name} differs from {first_path.name}",
                             reason="inconsistent-series")
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        raise DicomError(f"{path.name}: no Pixel Data (7FE0,0010)", reason="missing-pixel-data")
    photometric = get_str(ds, "PhotometricInterpretation").upper()
    samples = ds.get("SamplesPerPixel", 1)
    if photometric not in ("MONOCHROME1", "MONOCHROME2") or samples != 1:
        raise DicomError(f"{path.name}: PhotometricInterpretation {photometric or '(none)'} "
                         f"with {samples} sample(s) per pixel; only MONOCHROME1/2 is supported",
                         reason="unsupported-photometric")
    if "ModalityLUTSequence" in ds and "RescaleSlope" not in ds:
        raise DicomError(f"{path.name}: Modality LUT Sequence (0028,3000) instead of "
                         "RescaleSlope/Intercept is not supported",
                         reason="unsupported-modality-lut")
    if "LOCALIZER" in (v.upper() for v in get_strs(ds, "ImageType")):
        logger.warning("%s: ImageType contains LOCALIZER", path.name)


def _decode(ds: Dataset, path: Path) -> np.ndarray:
    """Stored pixel values of one data set, shape (rows, cols) or (frames, rows, cols)."""
    meta = getattr(ds, "file_meta", None)
    tsyntax = UID(str(meta.get("TransferSyntaxUID", ""))) if meta is not None else UID("")
    if "PixelData" in ds and tsyntax and tsyntax.is_compressed:
        try:
            decoder = get_decoder(tsyntax)
        except NotImplementedError:
            raise DicomError(f"{path.name}: transfer syntax {tsyntax} ({tsyntax.name}) cannot "
                             "be decoded", reason="unsupported-transfer-syntax") from None
        if not decoder.is_available:
            package = DECODER_PACKAGES.get(tsyntax, "a pydicom decoder plugin for it")
            raise DicomError(f"{path.name}: no decoder installed for {tsyntax.name} ({tsyntax}); "
                             f"install {package}", reason="missing-decoder")
    try:
        with quiet_pydicom(path):
            return np.asarray(ds.pixel_array)
    except Exception as exc:  # decoders raise many types on corrupt data
        raise DicomError(f"{path.name}: pixel data cannot be decoded ({type(exc).__name__}: "
                         f"{str(exc)[:200]})", reason="invalid-pixel-data") from exc


__all__ = ["DECODER_PACKAGES", "read_series_volume"]
