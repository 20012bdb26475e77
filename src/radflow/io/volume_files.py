"""Exact volume copies: MetaImage (``.mha``) files for images and masks named in a cohort sheet.

A NIfTI/NRRD file named in the cohort sheet is analysed as SimpleITK reads it, which is what the
``pyradiomics`` command line computes on for the same file. The convert stage writes that
in-memory image so that reading the copy gives it back **bit for bit**:

* the pixel type is kept (an int16 NRRD stays int16: PyRadiomics' B-spline resampling returns the
  input's pixel type, so int16 input is rounded after interpolation and float32 input is not);
* spacing, origin and direction are kept as float64. NIfTI-1 stores them as float32 (an origin
  of -99.609374999999986 mm becomes -99.609375), and NRRD stores ``spacing x direction``
  vectors that ITK's reader splits again with rounding (oblique grids do not round-trip);
  MetaImage stores spacing, origin and direction separately as decimal float64 numbers written
  with :func:`repr` (shortest text that parses back to the same double).

The header is written here, field by field, so no text of the user's file (NRRD key/value
fields, NIfTI ``descrip``, any metadata SimpleITK read) can reach the copy. The data are zlib
compressed (ISA-L at :data:`radflow.io.atomic.GZIP_LEVEL`); the bytes depend only on voxels and
geometry. Writes are atomic.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from isal import isal_zlib

from radflow.errors import InputFileError
from radflow.io.atomic import GZIP_LEVEL, write_bytes
from radflow.io.nifti import read_image, voxel_hash, write_nifti

#: Suffix of the exact copies.
MHA_SUFFIX = ".mha"

#: numpy dtype -> MetaImage ``ElementType``.
_ELEMENT_TYPES = {
    np.dtype(np.int8): "MET_CHAR", np.dtype(np.uint8): "MET_UCHAR",
    np.dtype(np.int16): "MET_SHORT", np.dtype(np.uint16): "MET_USHORT",
    np.dtype(np.int32): "MET_INT", np.dtype(np.uint32): "MET_UINT",
    np.dtype(np.int64): "MET_LONG_LONG", np.dtype(np.uint64): "MET_ULONG_LONG",
    np.dtype(np.float32): "MET_FLOAT", np.dtype(np.float64): "MET_DOUBLE",
}


def _numbers(values: tuple[float, ...] | list[float]) -> str:
    return " ".join(repr(float(v) + 0.0) for v in values)  # + 0.0: no "-0.0"


def mha_bytes(image: sitk.Image) -> bytes:
    """Serialise a 3-D image as a compressed MetaImage file with a radflow-written header.

    Parameters
    ----------
    image
        3-D SimpleITK image, scalar or with several components per voxel; voxel array of
        shape (z, y, x) or (z, y, x, components). Its metadata dictionary is not written.

    Raises
    ------
    InputFileError
        When the image is not 3-D or has a pixel type MetaImage cannot hold
        (``failed:unsupported-pixel-type``).
    """
    if image.GetDimension() != 3:
        raise InputFileError(f"expected a 3-D image, got {image.GetDimension()}-D",
                             reason="not-3d")
    data = np.ascontiguousarray(sitk.GetArrayViewFromImage(image))
    element = _ELEMENT_TYPES.get(data.dtype.newbyteorder("="))
    if element is None:
        raise InputFileError(f"voxel type {data.dtype} cannot be stored",
                             reason="unsupported-pixel-type")
    data = data.astype(data.dtype.newbyteorder("<"), copy=False)
    body = isal_zlib.compress(data.tobytes(), GZIP_LEVEL)
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    fields = [
        ("ObjectType", "Image"),
        ("NDims", "3"),
        ("BinaryData", "True"),
        ("BinaryDataByteOrderMSB", "False"),
        ("CompressedData", "True"),
        ("CompressedDataSize", str(len(body))),
        # MetaImage lists the direction column by column (one axis after the other).
        ("TransformMatrix", _numbers(direction.T.ravel().tolist())),
        ("Offset", _numbers(image.GetOrigin())),
        ("ElementSpacing", _numbers(image.GetSpacing())),
        ("DimSize", " ".join(str(int(v)) for v in image.GetSize())),
    ]
    components = image.GetNumberOfComponentsPerPixel()
    if components != 1:
        fields.append(("ElementNumberOfChannels", str(components)))
    fields += [("ElementType", element), ("ElementDataFile", "LOCAL")]
    header = "".join(f"{key} = {value}\n" for key, value in fields)
    return header.encode("ascii") + body


def write_mha(dest: str | os.PathLike[str], image: sitk.Image) -> str:
    """Write ``image`` to ``dest`` (``.mha``) atomically; return the :func:`voxel_hash` of it.

    The file is read back: its pixel type, size, spacing, origin and direction must equal the
    image's exactly (float64 equality), else nothing is left at ``dest``.

    Raises
    ------
    InputFileError
        When the copy would not be exact (``failed:inexact-copy``), or as :func:`mha_bytes`.
    """
    dest = Path(dest)
    write_bytes(dest, mha_bytes(image))
    back = read_image(dest, name=dest.name)
    for what, want, got in (
            ("pixel type", image.GetPixelID(), back.GetPixelID()),
            ("components", image.GetNumberOfComponentsPerPixel(),
             back.GetNumberOfComponentsPerPixel()),
            ("size", image.GetSize(), back.GetSize()),
            ("spacing", image.GetSpacing(), back.GetSpacing()),
            ("origin", image.GetOrigin(), back.GetOrigin()),
            ("direction", image.GetDirection(), back.GetDirection())):
        if want != got:
            dest.unlink(missing_ok=True)
            raise InputFileError(f"the copy's {what} reads back as {got}, not {want}",
                                 reason="inexact-copy")
    return voxel_hash(back)


def header_grid(path: str | os.PathLike[str]) -> tuple[tuple[int, ...], tuple[float, ...]] | None:
    """``(size, spacing)`` of a NIfTI, NRRD or MetaImage file from its header (voxels not read).

    Returns
    -------
    tuple or None
        Size (x, y, z) in voxels and spacing (mm) of the first 3 axes; ``None`` when the file
        cannot be read.
    """
    reader = sitk.ImageFileReader()
    reader.SetFileName(os.fspath(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    size, spacing = reader.GetSize(), reader.GetSpacing()
    return (tuple(int(v) for v in size[:3]), tuple(float(v) for v in spacing[:3])
            ) if len(size) >= 3 else None


def same_format_path(nifti_path: str | os.PathLike[str], like: str | os.PathLike[str]) -> Path:
    """``nifti_path`` (``<name>.nii.gz``), as ``<name>.mha`` when ``like`` is a ``.mha`` file.

    A volume derived from another (a mask resampled onto its image's grid) is written in the
    format of that volume, so both read back with the same geometry bits.
    """
    path = Path(nifti_path)
    if Path(like).name.endswith(MHA_SUFFIX):
        return path.with_name(path.name.removesuffix(".nii.gz") + MHA_SUFFIX)
    return path


def write_volume(dest: str | os.PathLike[str], image: sitk.Image) -> str:
    """Write ``image`` as MetaImage (``dest`` ends with ``.mha``) or NIfTI; return its voxel hash.

    Any other suffix than ``.mha`` is written by :func:`radflow.io.nifti.write_nifti`.
    """
    if Path(dest).name.endswith(MHA_SUFFIX):
        return write_mha(dest, image)
    return write_nifti(dest, image)
