"""Decoding stored pixel values of one DICOM data set, with a clear error when a decoder is missing.

pydicom decodes every transfer syntax through its plugins; radflow installs only decoders
without GPL code (:data:`DECODER_PACKAGES`): Pillow (JPEG baseline), python-gdcm (JPEG lossless,
BSD-licensed GDCM), pyjpegls (JPEG-LS, CharLS), pylibjpeg-openjpeg (JPEG 2000), pylibjpeg-rle
(RLE; pydicom also has its own). 12-bit JPEG Extended (process 2/4), which pydicom's plugins do
not decode without the GPL libjpeg, is decoded by GDCM's own reader when python-gdcm is present.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
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

from radflow.dicom.headers import get_int, quiet_pydicom
from radflow.errors import DicomError

logger = logging.getLogger(__name__)

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_GDCM = "python-gdcm (BSD; pylibjpeg-libjpeg is GPL and not used by radflow)"
#: Decoder packages without GPL code, per compressed transfer syntax (pip names).
DECODER_PACKAGES: dict[str, str] = {
    JPEGBaseline8Bit: "pillow",
    JPEGExtended12Bit: "pillow (8-bit) or python-gdcm (12-bit)",
    JPEGLossless: _GDCM,
    JPEGLosslessSV1: _GDCM,
    JPEGLSLossless: "pyjpegls",
    JPEGLSNearLossless: "pyjpegls",
    JPEG2000Lossless: "pylibjpeg and pylibjpeg-openjpeg",
    JPEG2000: "pylibjpeg and pylibjpeg-openjpeg",
    HTJ2KLossless: "pylibjpeg and pylibjpeg-openjpeg",
    HTJ2KLosslessRPCL: "pylibjpeg and pylibjpeg-openjpeg",
    HTJ2K: "pylibjpeg and pylibjpeg-openjpeg",
    RLELossless: "pylibjpeg and pylibjpeg-rle",
}


def transfer_syntax(ds: Dataset) -> UID:
    """The data set's TransferSyntaxUID ("" when it has no file meta)."""
    meta = getattr(ds, "file_meta", None)
    return UID(str(meta.get("TransferSyntaxUID", ""))) if meta is not None else UID("")


def decode_pixels(ds: Dataset, path: Path) -> np.ndarray:
    """Stored pixel values of one data set.

    Parameters
    ----------
    ds
        A data set read with its pixel data.
    path
        Its file (GDCM's reader and messages use it).

    Returns
    -------
    numpy.ndarray, shape (rows, cols) or (frames, rows, cols)
        Stored values (before rescale), in the data set's own integer or float type.

    Raises
    ------
    DicomError
        ``missing-decoder`` (the message names the package to install),
        ``unsupported-transfer-syntax``, ``invalid-pixel-data``.
    """
    tsyntax = transfer_syntax(ds)
    if "PixelData" in ds and tsyntax and tsyntax.is_compressed:
        try:
            decoder = get_decoder(tsyntax)
        except NotImplementedError:
            raise DicomError(f"{path.name}: transfer syntax {tsyntax} ({tsyntax.name}) cannot "
                             "be decoded", reason="unsupported-transfer-syntax") from None
        if tsyntax == JPEGExtended12Bit and (get_int(ds, "BitsStored") or 8) > 8:
            return _decode_with_gdcm(ds, path)
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


_GDCM_TYPES = {"UINT8": np.uint8, "INT8": np.int8, "UINT16": np.uint16, "INT16": np.int16,
               "UINT32": np.uint32, "INT32": np.int32}


def _decode_with_gdcm(ds: Dataset, path: Path) -> np.ndarray:
    """Decode with GDCM's own reader (12-bit JPEG Extended, which pydicom's plugins refuse)."""
    try:
        import gdcm  # optional: only for 12-bit JPEG Extended
    except ImportError:
        raise DicomError(f"{path.name}: no decoder installed for 12-bit JPEG Extended; install "
                         "python-gdcm", reason="missing-decoder") from None
    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    if not reader.Read():
        raise DicomError(f"{path.name}: GDCM cannot read the file", reason="invalid-pixel-data")
    image = reader.GetImage()
    scalar = image.GetPixelFormat().GetScalarTypeAsString()
    samples = image.GetPixelFormat().GetSamplesPerPixel()
    buffer = image.GetBuffer()
    data = buffer.encode("utf-8", "surrogateescape") if isinstance(buffer, str) else buffer
    if scalar not in _GDCM_TYPES or samples != 1 or data is None:
        raise DicomError(f"{path.name}: GDCM decoded {scalar} with {samples} sample(s) per "
                         "pixel; expected one integer sample", reason="invalid-pixel-data")
    rows, cols = get_int(ds, "Rows") or 0, get_int(ds, "Columns") or 0
    frames = get_int(ds, "NumberOfFrames") or 1
    arr = np.frombuffer(data, dtype=_GDCM_TYPES[scalar])
    if arr.size != rows * cols * frames:
        raise DicomError(f"{path.name}: GDCM decoded {arr.size} values, expected "
                         f"{rows * cols * frames}", reason="invalid-pixel-data")
    arr = arr.reshape((frames, rows, cols) if frames > 1 else (rows, cols))
    return arr.astype(arr.dtype.newbyteorder("="), copy=True)


def drop_pixel_data(ds: Dataset) -> None:
    """Remove the pixel data elements from ``ds`` (keep headers only, to save memory)."""
    for keyword in PIXEL_KEYWORDS:
        if keyword in ds:
            delattr(ds, keyword)


__all__ = ["DECODER_PACKAGES", "PIXEL_KEYWORDS", "decode_pixels", "drop_pixel_data",
           "transfer_syntax"]
