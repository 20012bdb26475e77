"""Pixel volume of one DICOM series (used by the convert stage).

:func:`read_series` reads an explicit list of files (never "the first series in a folder"),
optionally only some frames of multi-frame files (one volume of a 4-D split), runs the same
geometry check as the crawl (:func:`radflow.dicom.frames.frames_geometry`), decodes the pixels
(:func:`radflow.dicom.pixels.decode_pixels`), applies each slice's own
RescaleSlope/RescaleIntercept, resamples when the cohort's policy asks for it
(:mod:`radflow.dicom.resample`) and returns a float32 :class:`SimpleITK.Image` in LPS patient
coordinates, with a JSON-ready record of what was done for the sidecar.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset

from radflow.dicom.frames import FrameHeader, check_rescale, frame_headers, frames_geometry
from radflow.dicom.headers import get_float, get_int, get_str, get_strs, quiet_pydicom, read_dataset
from radflow.dicom.pixels import (
    DECODER_PACKAGES,
    PIXEL_KEYWORDS,
    decode_pixels,
    drop_pixel_data,
    transfer_syntax,
)
from radflow.dicom.resample import resample_stack, resampling_record
from radflow.errors import DicomError
from radflow.settings import GeometrySettings

logger = logging.getLogger(__name__)


@dataclass
class SeriesVolume:
    """A converted series.

    Attributes
    ----------
    image
        float32 volume, size (x=columns, y=rows, z=slices), LPS geometry.
    datasets
        The files' data sets in slice order (a multi-frame file once, at its first slice),
        without pixel data.
    info
        For the sidecar: ``input_slices``, ``transfer_syntax``, ``rescale_type``, and when they
        apply ``padding`` (PixelPaddingValue and how many voxels hold it) and ``resampling``
        (see :func:`radflow.dicom.resample.resampling_record`).
    """

    image: sitk.Image
    datasets: list[Dataset]
    info: dict[str, Any] = field(default_factory=dict)


def read_series_volume(files: Sequence[str | os.PathLike[str]], settings: GeometrySettings, *,
                       frames: Sequence[Sequence[int] | None] | None = None) \
        -> tuple[sitk.Image, list[Dataset]]:
    """Read the slices in ``files`` as one volume; ``(image, datasets)`` of :func:`read_series`.

    Raises
    ------
    InputFileError, DicomError, SeriesGeometryError
        As :func:`read_series`.
    """
    volume = read_series(files, settings, frames=frames)
    return volume.image, volume.datasets


def read_series(files: Sequence[str | os.PathLike[str]], settings: GeometrySettings, *,
                frames: Sequence[Sequence[int] | None] | None = None) -> SeriesVolume:
    """Read the slices in ``files`` as one volume.

    Parameters
    ----------
    files
        Every file of the series (single-frame slices, or enhanced multi-frame objects).
    settings
        Geometry tolerances and policies (the same check as the crawl).
    frames
        Per file, the 0-based frames to use (``None``: all); ``None``: all frames of all files.
        A 4-D split of a multi-frame object names its frames here.

    Returns
    -------
    SeriesVolume
        voxel = stored * RescaleSlope + RescaleIntercept of its own slice (1 / 0 when absent).
        Spacing (x, y, z) mm; origin = ImagePositionPatient of the first slice along the normal
        (moved by whole voxels when a tilted stack is resampled onto a larger grid); direction
        columns = row direction, column direction, normal (LPS).

    Raises
    ------
    InputFileError
        A file cannot be read (``truncated``, ``not-dicom``, ...).
    DicomError
        ``no-slices``, ``inconsistent-series``, ``missing-pixel-data``,
        ``unsupported-photometric``, ``unsupported-multiframe``, ``unsupported-modality-lut``,
        ``invalid-rescale``, ``inconsistent-rescale-type``, ``missing-decoder`` (the message
        names the package to install), ``unsupported-transfer-syntax``,
        ``invalid-pixel-data``, ``non-finite-values``.
    SeriesGeometryError
        From the geometry check (``missing-slice``, ``mixed-orientation``, ...).
    """
    paths = [Path(f) for f in files]
    if not paths:
        raise DicomError("no files given for the series", reason="no-slices")
    if frames is not None and len(frames) != len(paths):
        raise ValueError("frames must give one entry per file")
    datasets = [read_dataset(p) for p in paths]
    slices: list[FrameHeader] = []
    owner: list[int] = []  # index into datasets of each slice
    for k, (path, ds) in enumerate(zip(paths, datasets, strict=True)):
        with quiet_pydicom(path):
            _check_image(ds, path, datasets[0], paths[0])
            found = _select(frame_headers(ds, path), frames[k] if frames else None, path)
        slices.extend(found)
        owner.extend([k] * len(found))
    geometry = frames_geometry(slices, settings, get_float(datasets[0], "SliceThickness"))
    check_rescale(slices)
    rows, cols = slices[0].rows, slices[0].cols
    stack = np.empty((len(slices), rows, cols), dtype=np.float32)
    slot = {j: z for z, j in enumerate(geometry.order)}
    padding = get_int(datasets[0], "PixelPaddingValue")
    n_padding = 0
    for k, (path, ds) in enumerate(zip(paths, datasets, strict=True)):
        stored = decode_pixels(ds, path)
        stored = stored[np.newaxis] if stored.ndim == 2 else stored
        n_frames = get_int(ds, "NumberOfFrames") or 1
        if stored.shape != (n_frames, rows, cols):
            raise DicomError(f"{path.name}: decoded pixel array shape {stored.shape}, expected "
                             f"{(n_frames, rows, cols)}", reason="invalid-pixel-data")
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite results checked below
            for j in (j for j in range(len(slices)) if owner[j] == k):
                f = slices[j]
                plane = stored[f.frame or 0]
                if padding is not None:
                    n_padding += int(np.count_nonzero(plane == _as_stored(padding, plane)))
                stack[slot[j]] = plane.astype(np.float64) * f.slope + f.intercept
        drop_pixel_data(ds)
    bad = ~np.isfinite(stack)
    if bad.any():
        z = int(np.argwhere(bad)[0][0])
        raise DicomError(f"{int(bad.sum())} non-finite voxel value(s) after rescale, first in "
                         f"slice {z} ({slices[geometry.order[z]].label})",
                         reason="non-finite-values")
    info: dict[str, Any] = {"input_slices": len(slices),
                            "transfer_syntax": str(transfer_syntax(datasets[0])),
                            "rescale_type": slices[0].rescale_type}
    if padding is not None:
        info["padding"] = {"stored_value": padding, "voxels": n_padding}
    if geometry.resampling is not None:
        fill = float(stack.min())
        stack = resample_stack(stack, geometry.resampling, fill)
        info["resampling"] = resampling_record(geometry.resampling, fill, geometry.spacing[:2])
        logger.warning("resampled (%s): %d -> %d slices, tilt %.2f degrees",
                       "+".join(geometry.resampling.reasons), len(slices),
                       geometry.resampling.n_slices, geometry.resampling.tilt_degrees)
    image = sitk.GetImageFromArray(stack)
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    first_slot: dict[int, int] = {}
    for z, j in enumerate(geometry.order):
        first_slot.setdefault(owner[j], z)
    ordered = [datasets[k] for k in sorted(first_slot, key=first_slot.__getitem__)]
    return SeriesVolume(image=image, datasets=ordered, info=info)


def _as_stored(padding: int, plane: np.ndarray) -> int:
    """PixelPaddingValue in the pixels' own type (files often write a signed value as US)."""
    if np.issubdtype(plane.dtype, np.signedinteger) and plane.dtype.itemsize < 8:
        bits = plane.dtype.itemsize * 8
        if padding >= 2 ** (bits - 1):
            return padding - 2 ** bits
    return padding


def _select(found: list[FrameHeader], wanted: Sequence[int] | None, path: Path) \
        -> list[FrameHeader]:
    if wanted is None:
        return found
    if any(not 0 <= i < len(found) for i in wanted) or len(set(wanted)) != len(wanted):
        raise DicomError(f"{path.name}: frames {list(wanted)[:5]}... requested, the file has "
                         f"{len(found)}; the file changed since the crawl",
                         reason="inconsistent-series")
    return [found[i] for i in wanted]


def _check_image(ds: Dataset, path: Path, first: Dataset, first_path: Path) -> None:
    for keyword in ("SeriesInstanceUID", "SOPClassUID"):
        if get_str(ds, keyword) != get_str(first, keyword):
            raise DicomError(f"{keyword} of {path.name} differs from {first_path.name}",
                             reason="inconsistent-series")
    if not any(k in ds for k in PIXEL_KEYWORDS):
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


__all__ = ["DECODER_PACKAGES", "SeriesVolume", "read_series", "read_series_volume"]
