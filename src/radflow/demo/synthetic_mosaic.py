"""Synthetic Siemens mosaic series for test fixtures (companion of :mod:`radflow.demo.synthetic`).

A Siemens EPI / DWI / fMRI series stores each volume as one MR image whose pixels are the
volume's slices tiled into a square grid (ImageType ``MOSAIC``), described by the private Siemens
CSA image header. :func:`write_mosaic_series` writes such a series with pydicom, one file per
volume, laid out as the scanner does:

* tile ``k`` (slice ``k`` of the volume) at grid row ``k // grid``, grid column ``k % grid``,
  ``grid = ceil(sqrt(n_slices))``; unused tiles are 0;
* ImagePositionPatient is the scanner's mosaic position: the first slice's position moved back
  by half the difference between the mosaic and the tile size (rows and columns);
* a CSA2 image header (``SV10`` layout, as :mod:`nibabel.nicom.csareader` reads it) in the
  private block ``SIEMENS CSA HEADER`` (0029,1010) with ``NumberOfImagesInMosaic``,
  ``SliceNormalVector``, ``ProtocolSliceNumber`` and ``AcquisitionMatrixText``.

nibabel reads CSA headers but cannot write them, so :func:`csa2_header` builds the bytes here
(for tests only). Every piece can be left out or overridden to build the broken variants.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian

from radflow.demo.synthetic import MR_IMAGE_STORAGE, Patient, Study, _base_dataset, derived_uid

#: The private creator of the Siemens CSA header block (group 0029).
CSA_CREATOR = "SIEMENS CSA HEADER"
MOSAIC_IMAGE_TYPE = ("ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC")
#: CSA value representation per tag written by default.
_CSA_VR = {"NumberOfImagesInMosaic": "US", "SliceNormalVector": "FD",
           "ProtocolSliceNumber": "IS", "AcquisitionMatrixText": "SH", "B_value": "IS"}


def csa2_header(tags: Mapping[str, Sequence[object]],
                vrs: Mapping[str, str] | None = None) -> bytes:
    """The bytes of a CSA2 (``SV10``) header holding ``tags`` (name -> values).

    Layout: ``SV10``, 4 unused bytes, tag count and a check value (uint32, little endian);
    per tag a 64-byte name, VM, 4-byte VR, SyngoDT, item count and a check value (int32); per
    item four int32 (the second is the value's length) and the value as text, NUL-terminated
    and padded to 4 bytes.

    Parameters
    ----------
    tags
        Values per tag, written as text (``"%.8f"`` for floats).
    vrs
        VR per tag (default: :data:`_CSA_VR`, else ``"LO"``).
    """
    vrs = {**_CSA_VR, **(vrs or {})}
    out = [b"SV10", b"\x04\x03\x02\x01", struct.pack("<2I", len(tags), 77)]
    for name, values in tags.items():
        out.append(struct.pack("<64si4s3i", name.encode("ascii"), len(values),
                               vrs.get(name, "LO").encode("ascii"), 0, len(values), 77))
        for value in values:
            text = f"{value:.8f}" if isinstance(value, float) else str(value)
            data = text.encode("ascii") + b"\0"
            out.append(struct.pack("<4i", len(data), len(data), 77, len(data)))
            out.append(data + b"\0" * (-len(data) % 4))
    return b"".join(out)


def tile_mosaic(volume: np.ndarray) -> np.ndarray:
    """Tile a volume (slices, rows, cols) into its mosaic image (unused tiles 0)."""
    n, rows, cols = volume.shape
    grid = math.isqrt(n - 1) + 1
    tiles = np.zeros((grid * grid, rows, cols), dtype=volume.dtype)
    tiles[:n] = volume
    return tiles.reshape(grid, grid, rows, cols).swapaxes(1, 2).reshape(grid * rows, grid * cols)


def write_mosaic_series(
    folder: str | Path,
    volumes: np.ndarray,
    *,
    patient: Patient,
    study: Study,
    series_uid: str,
    spacing: tuple[float, float, float] = (2.0, 2.0, 3.0),
    first_position: tuple[float, float, float] = (0.0, 0.0, 0.0),
    row_direction: tuple[float, float, float] = (1.0, 0.0, 0.0),
    column_direction: tuple[float, float, float] = (0.0, 1.0, 0.0),
    reverse_normal: bool = False,
    image_type: Sequence[str] = MOSAIC_IMAGE_TYPE,
    csa: Mapping[str, Sequence[object] | None] | None = None,
    csa_bytes: bytes | None = None,
    attributes: Mapping[str, Any] | None = None,
    with_csa: bool = True,
) -> list[Path]:
    """Write a Siemens mosaic series, one MR file per volume (time point).

    Parameters
    ----------
    folder
        Destination folder (created).
    volumes : numpy.ndarray, shape (time points, slices, rows, columns), int16 or uint16
        Stored values; slice ``k`` of a volume is tile ``k`` of its mosaic.
    spacing
        (column spacing x, row spacing y, slice spacing) in mm; the slice spacing is written as
        SpacingBetweenSlices (SliceThickness is 80 % of it, as with a slice gap).
    first_position
        Position of the first slice's top-left voxel (LPS, mm).
    row_direction, column_direction
        ImageOrientationPatient.
    reverse_normal
        Tiles follow each other along ``-(row x column)`` (the CSA SliceNormalVector points
        against the orientation's normal, as in Siemens sagittal mosaics).
    csa
        CSA tags to add or override (``None`` as a value removes the tag).
    csa_bytes
        Raw bytes written instead of the CSA image header (to break it).
    attributes
        DICOM attributes to add or override in every file (``None`` removes one).
    with_csa
        ``False`` writes no CSA header at all.

    Returns
    -------
    list of pathlib.Path
        The files written, one per time point (``MOS0001.dcm`` ...; InstanceNumber and
        AcquisitionNumber 1, 2, ...).
    """
    volumes = np.asarray(volumes)
    if volumes.ndim != 4 or volumes.dtype not in (np.int16, np.uint16):
        raise ValueError("volumes must be a 4-D int16/uint16 array (time, slices, rows, cols)")
    n_time, n_slices, rows, cols = volumes.shape
    grid = math.isqrt(n_slices - 1) + 1
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    row_dir = np.asarray(row_direction, float)
    col_dir = np.asarray(column_direction, float)
    normal = np.cross(row_dir, col_dir) * (-1.0 if reverse_normal else 1.0)
    mosaic_position = (np.asarray(first_position, float)
                       - row_dir * spacing[0] * (grid * cols - cols) / 2
                       - col_dir * spacing[1] * (grid * rows - rows) / 2)
    tags: dict[str, Sequence[object]] = {
        "NumberOfImagesInMosaic": [n_slices],
        "SliceNormalVector": [float(v) for v in normal],
        "ProtocolSliceNumber": [0],
        "AcquisitionMatrixText": [f"{rows}p*{cols}"],
    }
    for name, values in (csa or {}).items():
        if values is None:
            tags.pop(name, None)
        else:
            tags[name] = values
    header = csa_bytes if csa_bytes is not None else csa2_header(tags)
    written = []
    for t in range(n_time):
        ds = _base_dataset(patient, study, MR_IMAGE_STORAGE, derived_uid(series_uid, t),
                           ExplicitVRLittleEndian)
        ds.Modality = "MR"
        ds.Manufacturer = "SIEMENS"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 1
        ds.SeriesDescription = "ep2d_bold"
        ds.ImageType = list(image_type)
        ds.InstanceNumber = t + 1
        ds.AcquisitionNumber = t + 1
        ds.PatientPosition = "HFS"
        ds.ImagePositionPatient = [float(v) for v in mosaic_position]
        ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        ds.SpacingBetweenSlices = float(spacing[2])
        ds.SliceThickness = round(0.8 * float(spacing[2]), 6)
        ds.AcquisitionMatrix = [rows, 0, 0, cols]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = grid * rows, grid * cols
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1 if volumes.dtype == np.int16 else 0
        if with_csa:
            block = ds.private_block(0x0029, CSA_CREATOR, create=True)
            block.add_new(0x10, "OB", header)
        for keyword, value in (attributes or {}).items():
            if value is None:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        ds.PixelData = np.ascontiguousarray(
            tile_mosaic(volumes[t]).astype(volumes.dtype.newbyteorder("<"))).tobytes()
        path = folder / f"MOS{t + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
    return written


__all__ = ["CSA_CREATOR", "MOSAIC_IMAGE_TYPE", "csa2_header", "tile_mosaic",
           "write_mosaic_series"]
