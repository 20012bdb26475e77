"""Stacking decoded slices into the voxel array of one volume (used by
:func:`radflow.dicom.volume.read_series`).

* :func:`grey_stack`: stored value x RescaleSlope + RescaleIntercept of each slice's own rescale,
  computed in float64 and stored as float32; counts PixelPaddingValue voxels; fails on NaN or
  infinite results (``non-finite-values``).
* :func:`colour_stack`: RGB values (3 x uint8 per voxel), no rescale (colour images have no
  Modality LUT).

Both place slice ``j`` (an index into the slice list) at ``slot[j]`` of the volume and name files
in messages only by ``where`` (their position in the series, :mod:`radflow.dicom.naming`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from radflow.dicom.frames import FrameHeader, frame_labels
from radflow.dicom.headers import get_int
from radflow.dicom.naming import named
from radflow.dicom.pixels import decode_pixels, decode_rgb, drop_pixel_data
from radflow.errors import DicomError


def _frames_of(stored: np.ndarray, ds: Dataset, rows: int, cols: int, colour: bool,
               label: str) -> np.ndarray:
    """Decoded pixels of one object as (frames, rows, cols[, 3]), shape checked."""
    single = 3 if colour else 2
    stored = stored[np.newaxis] if stored.ndim == single else stored
    n_frames = get_int(ds, "NumberOfFrames") or 1
    expected = (n_frames, rows, cols, 3) if colour else (n_frames, rows, cols)
    if stored.shape != expected:
        raise DicomError(f"{label}: decoded pixel array shape {stored.shape}, expected "
                         f"{expected}", reason="invalid-pixel-data")
    return stored


def _slices_of_files(owner: Sequence[int], n_files: int) -> list[list[int]]:
    """For each file, the indices ``j`` of its slices (``owner[j]`` is the file of slice ``j``)."""
    of_file: list[list[int]] = [[] for _ in range(n_files)]
    for j, k in enumerate(owner):
        of_file[k].append(j)
    return of_file


def grey_stack(paths: Sequence[Path], datasets: Sequence[Dataset],
               slices: Sequence[FrameHeader], owner: Sequence[int], slot: Mapping[int, int],
               where: Mapping[Path, str]) -> tuple[np.ndarray, dict[str, Any]]:
    """The float32 voxel array (z, y, x) of monochrome slices, and the sidecar's ``padding``.

    Parameters
    ----------
    paths, datasets
        The files and their data sets (with pixel data; it is dropped once used).
    slices
        The slices of the volume; ``owner[j]`` indexes the data set of slice ``j``.
    slot
        The z index of each slice in the volume.
    where
        How messages name each file.

    Raises
    ------
    DicomError
        ``invalid-pixel-data`` (and the decoder reasons of
        :func:`radflow.dicom.pixels.decode_pixels`), ``non-finite-values``.
    """
    rows, cols = slices[0].rows, slices[0].cols
    stack = np.empty((len(slices), rows, cols), dtype=np.float32)
    of_file = _slices_of_files(owner, len(paths))
    padding = get_int(datasets[0], "PixelPaddingValue")
    n_padding = 0
    for k, (path, ds) in enumerate(zip(paths, datasets, strict=True)):
        with named(where[path]):
            stored = decode_pixels(ds, path)
        stored = _frames_of(stored, ds, rows, cols, False, where[path])
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite results checked below
            for j in of_file[k]:
                f = slices[j]
                plane = stored[f.frame or 0]
                if padding is not None:
                    n_padding += int(np.count_nonzero(plane == _as_stored(padding, plane)))
                stack[slot[j]] = plane.astype(np.float64) * f.slope + f.intercept
        drop_pixel_data(ds)
    bad = ~np.isfinite(stack)
    if bad.any():
        z = int(np.argwhere(bad)[0][0])
        j = next(j for j, s in slot.items() if s == z)
        raise DicomError(f"{int(bad.sum())} non-finite voxel value(s) after rescale, first in "
                         f"slice {z} ({frame_labels([slices[j]], where)[0]})",
                         reason="non-finite-values")
    info = {"padding": {"stored_value": padding, "voxels": n_padding}} if padding is not None \
        else {}
    return stack, info


def colour_stack(paths: Sequence[Path], datasets: Sequence[Dataset],
                 slices: Sequence[FrameHeader], owner: Sequence[int], slot: Mapping[int, int],
                 where: Mapping[Path, str]) -> np.ndarray:
    """The uint8 RGB voxel array (z, y, x, 3) of colour slices (parameters as
    :func:`grey_stack`).

    Raises
    ------
    DicomError
        ``invalid-pixel-data``, ``unsupported-photometric`` and the decoder reasons of
        :func:`radflow.dicom.pixels.decode_rgb`.
    """
    rows, cols = slices[0].rows, slices[0].cols
    stack = np.empty((len(slices), rows, cols, 3), dtype=np.uint8)
    of_file = _slices_of_files(owner, len(paths))
    for k, (path, ds) in enumerate(zip(paths, datasets, strict=True)):
        with named(where[path]):
            stored = decode_rgb(ds, path)
        stored = _frames_of(stored, ds, rows, cols, True, where[path])
        for j in of_file[k]:
            stack[slot[j]] = stored[slices[j].frame or 0]
        drop_pixel_data(ds)
    return stack


def _as_stored(padding: int, plane: np.ndarray) -> int:
    """PixelPaddingValue in the pixels' own type (files often write a signed value as US)."""
    if np.issubdtype(plane.dtype, np.signedinteger) and plane.dtype.itemsize < 8:
        bits = plane.dtype.itemsize * 8
        if padding >= 2 ** (bits - 1):
            return padding - 2 ** bits
    return padding


__all__ = ["colour_stack", "grey_stack"]
