"""Stacking decoded slices into the voxel array of one volume (used by
:func:`radflow.dicom.volume.read_series`).

* :func:`grey_stack`: stored value x RescaleSlope + RescaleIntercept of each slice's own rescale;
  counts PixelPaddingValue voxels; fails on NaN or infinite results (``non-finite-values``).
  The voxel type is int16 when every slice has an integer RescaleSlope and RescaleIntercept,
  integer stored values, and every rescaled value fits int16 (most CT, and MR/PET stored as
  integers without a fractional slope); otherwise float32, rescaled in float64 and rounded once.
  Both hold exactly the values the float32-only conversion held: an integer of int16's range
  is exact in float32. (No int32: wider integers would not all be exact in float32, and no
  NIfTI ``scl_slope``: readers would redo the rescale in their own precision.)
* :func:`colour_stack`: RGB values (3 x uint8 per voxel), no rescale (colour images have no
  Modality LUT).

A Siemens mosaic file (its slices are tiles: ``FrameHeader.mosaic_tiles``) is cut into its tiles
(:func:`radflow.dicom.mosaic.demosaic`) before its slices are placed.

Both read each file's pixel data when it is stacked (the caller holds headers only, so at most
one file's pixels are in memory besides the volume), place slice ``j`` (an index into the slice
list) at ``slot[j]`` of the volume and name files in messages only by ``where`` (their position
in the series, :mod:`radflow.dicom.naming`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from radflow.dicom.frames import FrameHeader, frame_labels
from radflow.dicom.headers import get_int, read_dataset
from radflow.dicom.mosaic import demosaic
from radflow.dicom.naming import named
from radflow.dicom.pixels import decode_pixels, decode_rgb
from radflow.errors import DicomError

#: ``alloc(shape, dtype)`` returns the (uninitialised or zeroed) array the volume is built in.
Allocator = Callable[[tuple[int, ...], type], np.ndarray]


def _frames_of(stored: np.ndarray, ds: Dataset, rows: int, cols: int, colour: bool,
               label: str, mosaic_tiles: int = 0) -> np.ndarray:
    """Decoded pixels of one object as (frames, rows, cols[, 3]), shape checked; the tiles of
    a mosaic (``mosaic_tiles`` > 0, ``rows`` x ``cols`` the tile size) as its frames."""
    single = 3 if colour else 2
    if mosaic_tiles:
        if stored.ndim != single:
            raise DicomError(f"{label}: decoded mosaic has shape {stored.shape}, expected one "
                             "2-D image", reason="invalid-pixel-data")
        with named(label):
            return demosaic(stored, mosaic_tiles, rows, cols)
    stored = stored[np.newaxis] if stored.ndim == single else stored
    n_frames = get_int(ds, "NumberOfFrames") or 1
    expected = (n_frames, rows, cols, 3) if colour else (n_frames, rows, cols)
    if stored.shape != expected:
        raise DicomError(f"{label}: decoded pixel array shape {stored.shape}, expected "
                         f"{expected}", reason="invalid-pixel-data")
    return stored


def _mosaic_tiles(slices: Sequence[FrameHeader], of_file: Sequence[int]) -> int:
    """Tiles per mosaic of a file's slices (0: not a mosaic)."""
    return slices[of_file[0]].mosaic_tiles if of_file else 0


def _slices_of_files(owner: Sequence[int], n_files: int) -> list[list[int]]:
    """For each file, the indices ``j`` of its slices (``owner[j]`` is the file of slice ``j``)."""
    of_file: list[list[int]] = [[] for _ in range(n_files)]
    for j, k in enumerate(owner):
        of_file[k].append(j)
    return of_file


def grey_stack(paths: Sequence[Path], datasets: Sequence[Dataset],
               slices: Sequence[FrameHeader], owner: Sequence[int], slot: Mapping[int, int],
               where: Mapping[Path, str], alloc: Allocator = np.empty) \
        -> tuple[np.ndarray, dict[str, Any]]:
    """The voxel array (z, y, x) of monochrome slices, and the sidecar's ``padding``.

    The array is int16 or float32 (rule in the module docstring); values are exactly
    ``float32(stored * slope + intercept)`` computed in float64.

    Parameters
    ----------
    paths, datasets
        The files and their headers (pixel data are read from the files here).
    slices
        The slices of the volume; ``owner[j]`` indexes the data set of slice ``j``.
    slot
        The z index of each slice in the volume.
    where
        How messages name each file.
    alloc
        Allocates the volume (e.g. in a SimpleITK image, :mod:`radflow.dicom.imagebuffer`);
        called once, or twice when an int16 volume must become float32.

    Returns
    -------
    stack : numpy.ndarray, shape (slices, rows, cols), int16 or float32
    info : dict
        ``{"padding": ...}`` when PixelPaddingValue is set, else empty.

    Raises
    ------
    InputFileError
        A file cannot be read again (changed since its header was read).
    DicomError
        ``invalid-pixel-data`` (and the decoder reasons of
        :func:`radflow.dicom.pixels.decode_pixels`), ``non-finite-values``.
    """
    rows, cols = slices[0].rows, slices[0].cols
    integer = all(_is_int(f.slope) and _is_int(f.intercept) for f in slices)
    shape = (len(slices), rows, cols)
    stack = alloc(shape, np.int16 if integer else np.float32)
    of_file = _slices_of_files(owner, len(paths))
    padding = get_int(datasets[0], "PixelPaddingValue")
    n_padding = 0
    bad: dict[int, int] = {}  # z -> non-finite voxels (float32 only)
    for k, (path, ds) in enumerate(zip(paths, datasets, strict=True)):
        with named(where[path]):
            stored = decode_pixels(read_dataset(path), path)
        stored = _frames_of(stored, ds, rows, cols, False, where[path],
                            _mosaic_tiles(slices, of_file[k]))
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite results checked below
            for j in of_file[k]:
                f = slices[j]
                plane = stored[f.frame or 0]
                if padding is not None:
                    n_padding += int(np.count_nonzero(plane == _as_stored(padding, plane)))
                if stack.dtype == np.int16:
                    if _rescale_int16(plane, int(f.slope), int(f.intercept), stack[slot[j]]):
                        continue
                    wide = alloc(shape, np.float32)
                    wide[...] = stack  # the slices so far: exact (|v| <= 2**15)
                    stack = wide
                stack[slot[j]] = plane.astype(np.float64) * f.slope + f.intercept
                n_bad = stack[slot[j]].size - int(np.count_nonzero(np.isfinite(stack[slot[j]])))
                if n_bad:
                    bad[slot[j]] = n_bad
        del stored
    if bad:
        z = min(bad)
        j = next(j for j, s in slot.items() if s == z)
        raise DicomError(f"{sum(bad.values())} non-finite voxel value(s) after rescale, first "
                         f"in slice {z} ({frame_labels([slices[j]], where)[0]})",
                         reason="non-finite-values")
    return stack, _padding_info(padding, n_padding)


def _padding_info(padding: int | None, n_padding: int) -> dict[str, Any]:
    return {"padding": {"stored_value": padding, "voxels": n_padding}} if padding is not None \
        else {}


def _is_int(value: float) -> bool:
    """An integer rescale parameter small enough that ``stored * slope + intercept`` is exact in
    float64 for any stored value below 2**32 in magnitude (the float32 path computes that)."""
    return float(value).is_integer() and abs(value) < 2**20


def _rescale_int16(plane: np.ndarray, slope: int, intercept: int, out: np.ndarray) -> bool:
    """Write ``plane * slope + intercept`` into the int16 ``out`` when every value fits int16.

    Parameters
    ----------
    plane : numpy.ndarray, shape (rows, cols)
        Stored values of one slice.
    out : numpy.ndarray, shape (rows, cols), int16
        Its slot in the volume.

    Returns
    -------
    bool
        False (``out`` untouched) when the stored values are not integers or a rescaled value
        falls outside int16; the caller then converts the volume to float32.

    Notes
    -----
    The range is checked exactly (Python integers, from the plane's extremes); the values are
    then computed in int16 with wrap-around: the result is congruent to the true value modulo
    2**16 and lies in int16's range, so it is the true value.
    """
    if plane.dtype.kind not in "iu" or plane.size == 0:
        return False
    lo, hi = int(plane.min()), int(plane.max())
    if lo <= -(2**32) or hi >= 2**32:
        return False
    ends = (lo * slope + intercept, hi * slope + intercept)
    if min(ends) < -(2**15) or max(ends) > 2**15 - 1:
        return False
    np.copyto(out, plane, casting="unsafe")  # modular for integers
    if slope != 1:
        out *= np.int16((slope + 2**15) % 2**16 - 2**15)
    if intercept != 0:
        out += np.int16((intercept + 2**15) % 2**16 - 2**15)
    return True


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
            stored = decode_rgb(read_dataset(path), path)
        stored = _frames_of(stored, ds, rows, cols, True, where[path],
                            _mosaic_tiles(slices, of_file[k]))
        for j in of_file[k]:
            stack[slot[j]] = stored[slices[j].frame or 0]
    return stack


def _as_stored(padding: int, plane: np.ndarray) -> int:
    """PixelPaddingValue in the pixels' own type (files often write a signed value as US)."""
    if np.issubdtype(plane.dtype, np.signedinteger) and plane.dtype.itemsize < 8:
        bits = plane.dtype.itemsize * 8
        if padding >= 2 ** (bits - 1):
            return padding - 2 ** bits
    return padding


__all__ = ["colour_stack", "grey_stack"]
