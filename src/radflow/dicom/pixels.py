"""Decoding stored pixel values of one DICOM data set, with a clear error when a decoder is missing.

pydicom decodes every transfer syntax through its plugins; radflow installs only decoders
without GPL code (:data:`DECODER_PACKAGES`): Pillow (JPEG baseline), python-gdcm (JPEG lossless,
BSD-licensed GDCM), pyjpegls (JPEG-LS, CharLS), pylibjpeg-openjpeg (JPEG 2000), pylibjpeg-rle
(RLE; pydicom also has its own). 12-bit JPEG Extended (process 2/4), which pydicom's plugins do
not decode without the GPL libjpeg, is decoded by GDCM's own reader when python-gdcm is present.

:func:`decode_pixels` gives stored values of monochrome images, :func:`decode_rgb` RGB values of
colour images (YBR_FULL / YBR_FULL_422 converted with :func:`pydicom.pixels.convert_color_space`).
Messages name no file (callers add its position in the series, :mod:`radflow.dicom.naming`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import convert_color_space, get_decoder
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

from radflow.dicom.headers import get_int, get_str, quiet_pydicom
from radflow.dicom.naming import exception_detail, uid_name
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
    if _check_decoder(ds, tsyntax):
        return _decode_with_gdcm(ds, path)
    try:
        with quiet_pydicom(path):
            return np.asarray(ds.pixel_array)
    except Exception as exc:  # decoders raise many types on corrupt data
        raise DicomError(f"pixel data cannot be decoded ({exception_detail(exc, path)})",
                         reason="invalid-pixel-data") from exc


def _check_decoder(ds: Dataset, tsyntax: UID) -> bool:
    """Raise when no decoder can be used; ``True`` when GDCM's own reader must decode."""
    if "PixelData" in ds and tsyntax and tsyntax.is_compressed:
        try:
            decoder = get_decoder(tsyntax)
        except NotImplementedError:
            raise DicomError(f"transfer syntax {uid_name(tsyntax, 'transfer syntax')} cannot "
                             "be decoded",
                             reason="unsupported-transfer-syntax") from None
        if tsyntax == JPEGExtended12Bit and (get_int(ds, "BitsStored") or 8) > 8:
            return True
        if not decoder.is_available:
            package = DECODER_PACKAGES.get(tsyntax, "a pydicom decoder plugin for it")
            raise DicomError(f"no decoder installed for {uid_name(tsyntax, 'transfer syntax')}; "
                             f"install {package}", reason="missing-decoder")
    return False


def decode_rgb(ds: Dataset, path: Path) -> np.ndarray:
    """RGB values of a colour data set (3 samples per pixel, 8 bits).

    The pixels are decoded as stored (pydicom reorders planar configuration 1 and upsamples
    YBR_FULL_422); YBR_FULL / YBR_FULL_422 values are then converted to RGB with
    :func:`pydicom.pixels.convert_color_space` (JPEG 2000 decoders reverse YBR_RCT / YBR_ICT
    themselves).

    Returns
    -------
    numpy.ndarray, shape (rows, cols, 3) or (frames, rows, cols, 3), uint8

    Raises
    ------
    DicomError
        As :func:`decode_pixels`, and ``unsupported-photometric`` when the decoded data are in
        another colour space.
    """
    tsyntax = transfer_syntax(ds)
    _check_decoder(ds, tsyntax)
    try:
        with quiet_pydicom(path):
            if tsyntax:
                # pydicom annotates **kwargs as DecodeOptions instead of Unpack[DecodeOptions]
                arr, meta = get_decoder(tsyntax).as_array(ds, as_rgb=False)  # type: ignore[arg-type]
                space = str(meta.get("photometric_interpretation", ""))
            else:  # a raw data set without file meta: pydicom's own guess, converted to RGB
                arr, space = ds.pixel_array, "RGB"
    except Exception as exc:  # decoders raise many types on corrupt data
        raise DicomError(f"pixel data cannot be decoded ({exception_detail(exc, path)})",
                         reason="invalid-pixel-data") from exc
    if space in ("YBR_FULL", "YBR_FULL_422"):
        arr = convert_color_space(arr, space, "RGB")
    elif space != "RGB":
        raise DicomError(f"PhotometricInterpretation {get_str(ds, 'PhotometricInterpretation')} "
                         f"decoded as {space or '(unknown)'}, not RGB",
                         reason="unsupported-photometric")
    arr = np.asarray(arr)
    if arr.dtype != np.uint8 or arr.shape[-1:] != (3,):
        raise DicomError(f"colour pixel data decoded as {arr.dtype} with shape {arr.shape}; "
                         "expected 3 x uint8 per pixel", reason="invalid-pixel-data")
    return arr


_GDCM_TYPES = {"UINT8": np.uint8, "INT8": np.int8, "UINT16": np.uint16, "INT16": np.int16,
               "UINT32": np.uint32, "INT32": np.int32}


def _decode_with_gdcm(ds: Dataset, path: Path) -> np.ndarray:
    """Decode with GDCM's own reader (12-bit JPEG Extended, which pydicom's plugins refuse)."""
    try:
        import gdcm  # optional: only for 12-bit JPEG Extended
    except ImportError:
        raise DicomError("no decoder installed for 12-bit JPEG Extended; install "
                         "python-gdcm", reason="missing-decoder") from None
    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    if not reader.Read():
        raise DicomError("GDCM cannot read the file", reason="invalid-pixel-data")
    image = reader.GetImage()
    scalar = image.GetPixelFormat().GetScalarTypeAsString()
    samples = image.GetPixelFormat().GetSamplesPerPixel()
    buffer = image.GetBuffer()
    data = buffer.encode("utf-8", "surrogateescape") if isinstance(buffer, str) else buffer
    if scalar not in _GDCM_TYPES or samples != 1 or data is None:
        raise DicomError(f"GDCM decoded {scalar} with {samples} sample(s) per "
                         "pixel; expected one integer sample", reason="invalid-pixel-data")
    rows, cols = get_int(ds, "Rows") or 0, get_int(ds, "Columns") or 0
    frames = get_int(ds, "NumberOfFrames") or 1
    arr = np.frombuffer(data, dtype=_GDCM_TYPES[scalar])
    if arr.size != rows * cols * frames:
        raise DicomError(f"GDCM decoded {arr.size} values, expected "
                         f"{rows * cols * frames}", reason="invalid-pixel-data")
    arr = arr.reshape((frames, rows, cols) if frames > 1 else (rows, cols))
    return arr.astype(arr.dtype.newbyteorder("="), copy=True)


def drop_pixel_data(ds: Dataset) -> None:
    """Remove the pixel data elements from ``ds`` (keep headers only, to save memory)."""
    for keyword in PIXEL_KEYWORDS:
        if keyword in ds:
            delattr(ds, keyword)


__all__ = ["DECODER_PACKAGES", "PIXEL_KEYWORDS", "decode_pixels", "decode_rgb",
           "drop_pixel_data", "transfer_syntax"]
