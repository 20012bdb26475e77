"""Siemens mosaic images: one 2-D image that holds a whole volume as a grid of tiles.

Siemens EPI, DWI, fMRI and perfusion series store each volume as one "mosaic" image: the slices
of the volume are tiles of a square grid, left to right and top to bottom, in spatial order
along the slice normal. Such an image carries ``MOSAIC`` in ImageType, and its private Siemens
CSA image header (``SIEMENS CSA HEADER``, element (0029,xx10)) gives the number of tiles
(``NumberOfImagesInMosaic``) and the direction in which the tiles follow each other
(``SliceNormalVector``). The header is read with nibabel's :mod:`nibabel.nicom.csareader`.

Geometry, as nibabel's :class:`nibabel.nicom.dicomwrappers.MosaicWrapper` and dcm2niix compute it:

* ``grid = ceil(sqrt(NumberOfImagesInMosaic))`` tiles per row and per column; a tile has
  ``Rows / grid`` rows and ``Columns / grid`` columns (both must divide exactly);
* ImagePositionPatient of a mosaic is the position the top-left voxel would have if the whole
  mosaic were one slice centred on the volume. The first tile's top-left voxel lies
  ``(Rows - tile rows) / 2`` rows and ``(Columns - tile columns) / 2`` columns further;
* tile ``k`` lies ``k`` x SpacingBetweenSlices (else SliceThickness) from the first tile along
  ``SliceNormalVector``. That vector is parallel to the normal of ImageOrientationPatient
  (row x column) but may point the other way (sagittal mosaics): the tiles are placed along
  the IOP normal with the CSA vector's sign, so the geometry check sorts them like any slices;
* a CSA ``ProtocolSliceNumber`` above 1 for the first tile means the tiles are stored in
  reverse protocol order; dcm2niix calls that case untested, so radflow refuses it.

Anything missing or inconsistent (no CSA header or tile count, a mosaic size that does not
divide into the grid, no slice spacing, no or a non-parallel slice normal, a multi-frame object)
is a :class:`~radflow.errors.DicomError` with reason ``mosaic-unreadable``: a mosaic is never
read as one 2-D image. Messages name no file (callers add its position in the series).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from radflow.dicom.headers import get_float, get_floats, get_int, get_strs, number_of_frames
from radflow.errors import DicomError

#: The ImageType value that marks a mosaic.
MOSAIC_IMAGE_TYPE = "MOSAIC"
#: CSA ``SliceNormalVector`` and the ImageOrientationPatient normal must be parallel: the
#: absolute cosine of the angle between them may differ from 1 by at most this.
NORMAL_COS_ATOL = 1e-4
REASON = "mosaic-unreadable"


@dataclass(frozen=True)
class MosaicLayout:
    """Where the tiles of one mosaic image lie.

    Attributes
    ----------
    n_tiles
        NumberOfImagesInMosaic: the slices of the volume (tiles ``0 .. n_tiles - 1``).
    grid
        Tiles per row and per column of the mosaic, ``ceil(sqrt(n_tiles))``.
    tile_rows, tile_cols
        Rows and columns of one tile (``Rows / grid``, ``Columns / grid``).
    positions
        ImagePositionPatient of each tile's top-left voxel (LPS, mm), tile order.
    """

    n_tiles: int
    grid: int
    tile_rows: int
    tile_cols: int
    positions: tuple[tuple[float, float, float], ...]


def is_mosaic(ds: Dataset) -> bool:
    """Whether ImageType holds ``MOSAIC`` (a Siemens mosaic; see the module notes)."""
    return MOSAIC_IMAGE_TYPE in (v.upper() for v in get_strs(ds, "ImageType"))


def _csa_image_header(ds: Dataset) -> Mapping[str, Any] | None:
    """The parsed CSA image header, ``None`` when absent; ``mosaic-unreadable`` when broken."""
    with warnings.catch_warnings():
        # importing nibabel.nicom warns that its DICOM *readers* are experimental; only the CSA
        # parser is used here
        warnings.simplefilter("ignore", UserWarning)
        from nibabel.nicom import csareader
    try:
        header: Mapping[str, Any] | None = csareader.get_csa_header(ds, "image")
    except Exception as exc:  # the parser raises CSAReadError, AssertionError, struct.error ...
        raise DicomError(f"mosaic: the Siemens CSA image header cannot be parsed "
                         f"({type(exc).__name__})", reason=REASON) from exc
    return header


def _csa_values(header: Mapping[str, Any], name: str) -> list[Any]:
    tag = header.get("tags", {}).get(name)
    items = tag.get("items") if isinstance(tag, Mapping) else None
    return list(items) if isinstance(items, list) else []


def _csa_int(header: Mapping[str, Any], name: str) -> int | None:
    values = _csa_values(header, name)
    try:
        value = float(values[0]) if values else math.nan
    except (TypeError, ValueError):
        return None
    return int(value) if math.isfinite(value) and value == int(value) else None


def _csa_vector(header: Mapping[str, Any], name: str) -> np.ndarray | None:
    values = _csa_values(header, name)
    try:
        vector = np.array([float(v) for v in values], dtype=float)
    except (TypeError, ValueError):
        return None
    return vector if vector.shape == (3,) and np.all(np.isfinite(vector)) else None


def _fail(what: str) -> DicomError:
    return DicomError(f"Siemens mosaic (ImageType MOSAIC): {what}; its tiles cannot be placed",
                      reason=REASON)


def mosaic_layout(ds: Dataset) -> MosaicLayout:
    """Tile count, tile size and tile positions of a mosaic image (see the module notes).

    Parameters
    ----------
    ds
        The header of an image for which :func:`is_mosaic` is true (pixel data not needed).

    Raises
    ------
    DicomError
        ``mosaic-unreadable``, the message naming what is missing or inconsistent.
    """
    if number_of_frames(ds) > 1:
        raise _fail(f"a multi-frame object ({number_of_frames(ds)} frames)")
    header = _csa_image_header(ds)
    if header is None:
        raise _fail("no Siemens CSA image header (0029,xx10)")
    n_tiles = _csa_int(header, "NumberOfImagesInMosaic")
    if n_tiles is None or n_tiles < 1:
        raise _fail("no NumberOfImagesInMosaic in the CSA image header")
    rows, cols = get_int(ds, "Rows") or 0, get_int(ds, "Columns") or 0
    grid = math.isqrt(n_tiles - 1) + 1  # ceil(sqrt(n_tiles))
    if rows <= 0 or cols <= 0 or rows % grid or cols % grid:
        raise _fail(f"{rows} x {cols} pixels do not divide into a {grid} x {grid} grid of "
                    f"{n_tiles} tiles")
    protocol_slice = _csa_int(header, "ProtocolSliceNumber")
    if protocol_slice is not None and protocol_slice > 1:
        raise _fail(f"the first tile is protocol slice {protocol_slice} (CSA "
                    "ProtocolSliceNumber), not 0: tile order unknown")
    position = get_floats(ds, "ImagePositionPatient", 3)
    orientation = get_floats(ds, "ImageOrientationPatient", 6)
    pixel_spacing = get_floats(ds, "PixelSpacing", 2)
    if position is None or orientation is None or pixel_spacing is None:
        missing = [name for name, value in (("ImagePositionPatient", position),
                                            ("ImageOrientationPatient", orientation),
                                            ("PixelSpacing", pixel_spacing)) if value is None]
        raise _fail(f"no {', '.join(missing)}")
    spacing = get_float(ds, "SpacingBetweenSlices")
    if spacing is None or spacing <= 0:
        spacing = get_float(ds, "SliceThickness")
    if spacing is None or spacing <= 0:
        raise _fail("no positive SpacingBetweenSlices (0018,0088) or SliceThickness (0018,0050)")
    csa_normal = _csa_vector(header, "SliceNormalVector")
    if csa_normal is None or np.linalg.norm(csa_normal) == 0:
        raise _fail("no SliceNormalVector in the CSA image header")
    row_dir = np.asarray(orientation[:3], dtype=float)
    col_dir = np.asarray(orientation[3:], dtype=float)
    normal = np.cross(row_dir, col_dir)
    if np.linalg.norm(normal) == 0:
        raise _fail("ImageOrientationPatient has no slice normal")
    normal /= np.linalg.norm(normal)
    cosine = float(normal @ csa_normal / np.linalg.norm(csa_normal))
    if abs(abs(cosine) - 1) > NORMAL_COS_ATOL:
        raise _fail(f"CSA SliceNormalVector is not parallel to the normal of "
                    f"ImageOrientationPatient (cosine {cosine:.5f})")
    tile_rows, tile_cols = rows // grid, cols // grid
    row_spacing, col_spacing = pixel_spacing
    first = (np.asarray(position, dtype=float)
             + row_dir * col_spacing * (cols - tile_cols) / 2
             + col_dir * row_spacing * (rows - tile_rows) / 2)
    step = math.copysign(spacing, cosine) * normal
    tiles = [first + k * step for k in range(n_tiles)]
    positions = tuple((float(p[0]), float(p[1]), float(p[2])) for p in tiles)
    return MosaicLayout(n_tiles=n_tiles, grid=grid, tile_rows=tile_rows, tile_cols=tile_cols,
                        positions=positions)


def demosaic(stored: np.ndarray, n_tiles: int, tile_rows: int, tile_cols: int) -> np.ndarray:
    """Cut a mosaic's pixels into its tiles.

    Parameters
    ----------
    stored : numpy.ndarray, shape (rows, cols) or (rows, cols, samples)
        The decoded mosaic image.
    n_tiles, tile_rows, tile_cols
        From :class:`MosaicLayout`.

    Returns
    -------
    numpy.ndarray, shape (n_tiles, tile_rows, tile_cols[, samples])
        Tile ``k`` is grid row ``k // grid``, grid column ``k % grid`` (a view when possible).

    Raises
    ------
    DicomError
        ``invalid-pixel-data`` when the array is not ``grid`` x ``grid`` tiles of that size.
    """
    grid = math.isqrt(n_tiles - 1) + 1 if n_tiles > 0 else 0
    if n_tiles < 1 or stored.ndim < 2 or stored.shape[:2] != (grid * tile_rows,
                                                              grid * tile_cols):
        raise DicomError(f"decoded mosaic of shape {stored.shape}, expected "
                         f"{grid * tile_rows} x {grid * tile_cols} ({grid} x {grid} tiles of "
                         f"{tile_rows} x {tile_cols})", reason="invalid-pixel-data")
    rest = stored.shape[2:]
    tiles = stored.reshape(grid, tile_rows, grid, tile_cols, *rest).swapaxes(1, 2)
    return tiles.reshape(grid * grid, tile_rows, tile_cols, *rest)[:n_tiles]


__all__ = ["MOSAIC_IMAGE_TYPE", "NORMAL_COS_ATOL", "MosaicLayout", "demosaic", "is_mosaic",
           "mosaic_layout"]
