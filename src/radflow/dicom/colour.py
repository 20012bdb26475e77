"""Colour images: which photometric interpretations radflow reads, and the RGB NIfTI it writes.

A colour series (SamplesPerPixel 3, PhotometricInterpretation RGB, YBR_FULL, YBR_FULL_422, or
YBR_RCT / YBR_ICT in JPEG 2000, 8 bits per sample, planar configuration 0 or 1) converts to one
RGB volume: YBR data are converted to RGB (:func:`radflow.dicom.pixels.decode_rgb`), and the
volume is written by :func:`radflow.io.nifti.write_nifti` as a NIfTI-1 file of datatype RGB24
(``DT_RGB24``, 3 x uint8 per voxel), with the same affine as any other volume. Voxels are the
stored values: colour images have no Modality LUT (RescaleSlope/Intercept do not apply).

Radiomics needs one grey value per voxel; the colour of a screenshot, fused overlay or
colour-coded map is a display rendering (window, colour map, burned-in annotations), not a
measurement, and turning it into grey would give numbers that look valid and mean nothing. So a
converted colour series gets the convert status ``excluded:colour-image`` (:data:`COLOUR_REASON`):
its NIfTI is written (for viewing and checking), and the pair and extract stages skip it, naming
the reason. The crawl lists it as ``ok`` with QC ``colour-image``.

PALETTE COLOR, other multi-sample interpretations and colour with more than 8 bits per sample are
``failed:unsupported-photometric``.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from radflow.errors import DicomError
from radflow.io.nifti import RGB24

MONOCHROME = frozenset({"MONOCHROME1", "MONOCHROME2"})
#: Photometric interpretations decoded to RGB (YBR_RCT / YBR_ICT: JPEG 2000 colour transforms,
#: reversed by the decoder).
COLOUR_PHOTOMETRICS = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT"})
#: Convert status reason of a converted colour series; QC code of the crawl.
COLOUR_REASON = "colour-image"


def pixel_kind(photometric: str, samples: int | None, bits_allocated: int | None) -> str:
    """``"mono"`` or ``"colour"`` for the image pixel description of one object.

    Raises
    ------
    DicomError
        ``unsupported-photometric`` for anything else (the message says what was found).
    """
    photometric = (photometric or "").upper()
    samples = 1 if samples is None else samples
    if samples == 1 and photometric in MONOCHROME:
        return "mono"
    if samples == 3 and photometric in COLOUR_PHOTOMETRICS:
        if bits_allocated not in (None, 8):
            raise DicomError(f"PhotometricInterpretation {photometric} with {bits_allocated} "
                             "bits per sample; colour is read with 8 bits per sample only",
                             reason="unsupported-photometric")
        return "colour"
    raise DicomError(f"PhotometricInterpretation {photometric or '(none)'} with {samples} "
                     "sample(s) per pixel; MONOCHROME1/2 (1 sample) and RGB, YBR_FULL, "
                     "YBR_FULL_422, YBR_RCT, YBR_ICT (3 samples) are supported",
                     reason="unsupported-photometric")


def check_same_kind(kind: str, label: str, first_kind: str, first_label: str) -> None:
    """One pixel kind per series: every object monochrome, or every object colour.

    ``kind`` / ``first_kind`` are :func:`pixel_kind` results; the labels name the objects
    (their positions in the series, :mod:`radflow.dicom.naming`). The crawl and the convert
    stage both call this.

    Raises
    ------
    DicomError
        ``unsupported-photometric`` when the kinds differ.
    """
    if kind != first_kind:
        names = {"mono": "monochrome", "colour": "colour"}
        raise DicomError(f"{label} is a {names[kind]} image, {first_label} a "
                         f"{names[first_kind]} one", reason="unsupported-photometric")


def is_colour(image: sitk.Image) -> bool:
    """Whether a converted volume is a colour (RGB) volume."""
    return image.GetNumberOfComponentsPerPixel() == 3


def colour_image(stack: np.ndarray) -> sitk.Image:
    """A SimpleITK RGB image (3 x uint8 per voxel) from an array of shape (z, y, x, 3)."""
    if stack.ndim != 4 or stack.shape[-1] != 3:
        raise ValueError(f"expected shape (z, y, x, 3), got {stack.shape}")
    return sitk.GetImageFromArray(np.ascontiguousarray(stack, dtype=np.uint8), isVector=True)


__all__ = ["COLOUR_PHOTOMETRICS", "COLOUR_REASON", "MONOCHROME", "RGB24", "check_same_kind",
           "colour_image", "is_colour", "pixel_kind"]
