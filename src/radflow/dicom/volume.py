"""Pixel volume of one DICOM series (used by the convert stage).

:func:`read_series` reads an explicit list of files (never "the first series in a folder"),
optionally only some frames of multi-frame files (one volume of a 4-D split), runs the same
geometry check as the crawl (:func:`radflow.dicom.frames.frames_geometry`), decodes the pixels
(:mod:`radflow.dicom.stack`), applies each slice's own RescaleSlope/RescaleIntercept, resamples
when the cohort's policy asks for it (:mod:`radflow.dicom.resample`) and returns an int16 or
float32 :class:`SimpleITK.Image` in LPS patient coordinates, with a JSON-ready record of what was
done for the sidecar. Colour series give an RGB image (3 x uint8 per voxel, no rescale;
:mod:`radflow.dicom.colour`).

Voxel type: int16 when every slice has an integer RescaleSlope and RescaleIntercept, the stored
values are integers and every rescaled value fits int16 (most CT); otherwise float32 (e.g. PET
or MR with a fractional slope, values beyond int16). Either way the values are exactly those of
``float32(stored * slope + intercept)`` computed in float64. A resampled series (gantry tilt,
uneven spacing) is float32: interpolated values are not integers.

Memory: headers are read first (geometry check); each file's pixels are then read and decoded
while its slices are stacked, directly into the voxel buffer of the returned image
(:mod:`radflow.dicom.imagebuffer`), so a volume exists once in memory.

Messages name files by their position in the given file list (``file 3 of 120``), never by name
(:mod:`radflow.dicom.naming`).
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

from radflow.dicom.colour import check_same_kind, colour_image, pixel_kind
from radflow.dicom.frames import FrameHeader, check_rescale, frame_headers, frames_geometry
from radflow.dicom.headers import get_float, get_int, get_str, get_strs, quiet_pydicom, read_header
from radflow.dicom.imagebuffer import image_buffer
from radflow.dicom.multiframe import POSITION_SOURCES
from radflow.dicom.naming import file_labels, named
from radflow.dicom.pixels import DECODER_PACKAGES, transfer_syntax
from radflow.dicom.plausibility import hu_qc, padding_range
from radflow.dicom.resample import resample_stack, resampling_record
from radflow.dicom.stack import colour_stack, grey_stack
from radflow.errors import DicomError
from radflow.settings import GeometrySettings

logger = logging.getLogger(__name__)


@dataclass
class SeriesVolume:
    """A converted series.

    Attributes
    ----------
    image
        int16 or float32 volume (rule in the module docstring), size (x=columns, y=rows,
        z=slices), LPS geometry; for a colour series an RGB volume (3 x uint8 per voxel).
    datasets
        The files' data sets in slice order (a multi-frame file once, at its first slice),
        without pixel data.
    info
        For the sidecar: ``input_slices``, ``transfer_syntax``, ``rescale_type``,
        ``samples_per_pixel``, ``photometric`` (as stored; colour is written as RGB), and when
        they apply ``padding`` (PixelPaddingValue and how many voxels hold it), ``resampling``
        (see :func:`radflow.dicom.resample.resampling_record`), ``frame_positions`` (how the
        frames of a classic multi-frame object were placed) and ``mosaic`` (the volume was cut
        from Siemens mosaic images: tiles per mosaic, tile rows and columns;
        :mod:`radflow.dicom.mosaic`).
    qc
        QC warning -> count of a CT volume's values (:func:`radflow.dicom.plausibility.hu_qc`,
        on the values before any resampling); empty for other modalities.
    """

    image: sitk.Image
    datasets: list[Dataset]
    info: dict[str, Any] = field(default_factory=dict)
    qc: dict[str, int] = field(default_factory=dict)


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
        Every file of the series (single-frame slices, or multi-frame objects), sorted as the
        crawl lists them: messages name files by their position in this list.
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
        ``unsupported-photometric``, ``unsupported-multiframe``, ``nm-projection`` and
        ``cine-no-geometry`` (kind ``excluded``), ``unsupported-modality-lut``,
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
    where = file_labels(paths)
    datasets, has_pixels = [], []
    for path in paths:
        with named(where[path]):
            ds, pixels = read_header(path)
        datasets.append(ds)
        has_pixels.append(pixels)
    slices: list[FrameHeader] = []
    owner: list[int] = []  # index into datasets of each slice
    kinds = []
    for k, (path, ds) in enumerate(zip(paths, datasets, strict=True)):
        with quiet_pydicom(path), named(where[path]):
            kinds.append(_check_image(ds, has_pixels[k], datasets[0], where[path],
                                      where[paths[0]]))
            found = _select(frame_headers(ds, path), frames[k] if frames else None)
        slices.extend(found)
        owner.extend([k] * len(found))
    for path, kind in zip(paths, kinds, strict=True):
        check_same_kind(kind, where[path], kinds[0], where[paths[0]])
    geometry = frames_geometry(slices, settings, get_float(datasets[0], "SliceThickness"),
                               where)
    check_rescale(slices, where)
    slot = {j: z for z, j in enumerate(geometry.order)}
    info: dict[str, Any] = {"input_slices": len(slices),
                            "transfer_syntax": str(transfer_syntax(datasets[0])),
                            "rescale_type": slices[0].rescale_type,
                            "samples_per_pixel": get_int(datasets[0], "SamplesPerPixel") or 1,
                            "photometric": get_str(datasets[0], "PhotometricInterpretation")}
    colour = kinds[0] == "colour"
    buffers: list[sitk.Image] = []
    qc: dict[str, int] = {}

    def alloc(shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """The volume in the voxel buffer of the returned image (no copy of it later)."""
        if geometry.resampling is not None:  # resampling makes a new array anyway
            return np.empty(shape, dtype)
        image, voxels = image_buffer(shape, dtype, geometry.spacing, geometry.origin,
                                     geometry.direction)
        buffers[:] = [image]
        return voxels

    if colour:
        stack = colour_stack(paths, datasets, slices, owner, slot, where)
        info["rescale_type"] = ""
    else:
        stack, extra = grey_stack(paths, datasets, slices, owner, slot, where, alloc)
        info.update(extra)
        if get_str(datasets[0], "Modality").upper() == "CT":
            qc = hu_qc(stack, [(f.slope, f.intercept, f.rescale_type) for f in slices],
                       padding_range(datasets[0], slices[0].slope, slices[0].intercept))
    info.update(_positions_record(slices))
    info.update(_mosaic_record(slices))
    if geometry.resampling is not None:
        fill = 0.0 if colour else float(stack.min())
        stack = _resample(stack, geometry.resampling, fill, colour)
        info["resampling"] = resampling_record(geometry.resampling, fill, geometry.spacing[:2])
        logger.warning("resampled (%s): %d -> %d slices, tilt %.2f degrees",
                       "+".join(geometry.resampling.reasons), len(slices),
                       geometry.resampling.n_slices, geometry.resampling.tilt_degrees)
    if buffers:
        image = buffers[0]  # ``stack`` is its voxel buffer; geometry already set
    else:
        image = colour_image(stack) if colour else sitk.GetImageFromArray(stack)
        image.SetSpacing(geometry.spacing)
        image.SetOrigin(geometry.origin)
        image.SetDirection(geometry.direction)
    del stack
    first_slot: dict[int, int] = {}
    for z, j in enumerate(geometry.order):
        first_slot.setdefault(owner[j], z)
    ordered = [datasets[k] for k in sorted(first_slot, key=first_slot.__getitem__)]
    return SeriesVolume(image=image, datasets=ordered, info=info, qc=qc)


def _resample(stack: np.ndarray, plan: Any, fill: float, colour: bool) -> np.ndarray:
    """Resample a grey stack, or each channel of an RGB stack (rounded back to uint8)."""
    if not colour:
        return resample_stack(stack, plan, fill)
    channels = [resample_stack(stack[..., c].astype(np.float32), plan, fill) for c in range(3)]
    return np.clip(np.rint(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)


def _positions_record(slices: Sequence[FrameHeader]) -> dict[str, Any]:
    """``frame_positions`` for the sidecar when frame positions were derived, not read."""
    sources = sorted({f.position_source for f in slices if f.position_source})
    if not sources:
        return {}
    return {"frame_positions": [{"source": s, "assumption": POSITION_SOURCES[s][0],
                                 "meaning": POSITION_SOURCES[s][1]} for s in sources]}


def _mosaic_record(slices: Sequence[FrameHeader]) -> dict[str, Any]:
    """``mosaic`` for the sidecar when the slices are tiles of Siemens mosaics."""
    tiles = sorted({f.mosaic_tiles for f in slices if f.mosaic_tiles})
    if not tiles:
        return {}
    return {"mosaic": {"tiles": tiles[0] if len(tiles) == 1 else tiles,
                       "tile_rows": slices[0].rows, "tile_cols": slices[0].cols}}


def _select(found: list[FrameHeader], wanted: Sequence[int] | None) -> list[FrameHeader]:
    if wanted is None:
        return found
    if any(not 0 <= i < len(found) for i in wanted) or len(set(wanted)) != len(wanted):
        raise DicomError(f"frames {list(wanted)[:5]}... requested, the file has {len(found)}; "
                         "the file changed since the crawl", reason="inconsistent-series")
    return [found[i] for i in wanted]


def _check_image(ds: Dataset, has_pixels: bool, first: Dataset, label: str,
                 first_label: str) -> str:
    """Check one object's header (exception messages are prefixed with its ``label`` by the
    caller); return its pixel kind (``"mono"`` or ``"colour"``)."""
    for keyword in ("SeriesInstanceUID", "SOPClassUID"):
        if get_str(ds, keyword) != get_str(first, keyword):
            raise DicomError(f"{keyword} differs from {first_label}",
                             reason="inconsistent-series")
    if not has_pixels:
        raise DicomError("no Pixel Data (7FE0,0010)", reason="missing-pixel-data")
    kind = pixel_kind(get_str(ds, "PhotometricInterpretation"), get_int(ds, "SamplesPerPixel"),
                      get_int(ds, "BitsAllocated"))
    if kind == "mono" and "ModalityLUTSequence" in ds and "RescaleSlope" not in ds:
        raise DicomError("Modality LUT Sequence (0028,3000) instead of RescaleSlope/Intercept "
                         "is not supported", reason="unsupported-modality-lut")
    if "LOCALIZER" in (v.upper() for v in get_strs(ds, "ImageType")):
        logger.warning("%s: ImageType contains LOCALIZER", label)
    return kind


__all__ = ["DECODER_PACKAGES", "SeriesVolume", "read_series", "read_series_volume"]
