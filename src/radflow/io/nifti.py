"""NIfTI files: the one way radflow reads and writes volumes on disk.

In memory a volume is a :class:`SimpleITK.Image` (what PyRadiomics consumes) with physical
geometry in DICOM/ITK patient coordinates (LPS). On disk it is a gzipped NIfTI-1 file whose
sform/qform carry the same geometry in NIfTI's RAS convention.

Files are written with nibabel so that radflow controls every header byte: ``descrip``,
``aux_file`` and ``intent_name`` are empty, the gzip header has no file name and mtime 0, and the
bytes depend only on voxels and geometry (same input -> identical file). Writes are atomic.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from radflow.errors import InputFileError
from radflow.io.atomic import gzip_bytes, write_bytes

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
#: NIfTI's RGB24 voxel type (``DT_RGB24``), as nibabel reads and writes it.
RGB24 = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])


def image_affine_ras(image: sitk.Image) -> np.ndarray:
    """Return the 4x4 voxel-index -> RAS (mm) affine of a 3-D SimpleITK image.

    Returns
    -------
    numpy.ndarray, shape (4, 4)
        Maps (i, j, k, 1) with i along x (columns), j along y (rows), k along slices.
    """
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    origin = np.asarray(image.GetOrigin(), dtype=float)
    affine = np.eye(4)
    affine[:3, :3] = _LPS_TO_RAS @ direction @ np.diag(spacing)
    affine[:3, 3] = _LPS_TO_RAS @ origin
    return affine


def nifti_bytes(image: sitk.Image) -> bytes:
    """Serialise a 3-D image as gzipped NIfTI-1 bytes with a clean, deterministic header.

    A scalar image keeps its pixel type; an image with 3 components per voxel (a colour volume,
    :mod:`radflow.dicom.colour`) is written as ``DT_RGB24`` (3 x uint8 per voxel).
    """
    if image.GetDimension() != 3:
        raise ValueError(f"expected a 3-D image, got {image.GetDimension()}-D")
    components = image.GetNumberOfComponentsPerPixel()
    data_zyx = sitk.GetArrayViewFromImage(image)
    if components == 3:
        data_xyz = np.ascontiguousarray(np.transpose(data_zyx, (2, 1, 0, 3)), dtype=np.uint8)
        data_xyz = data_xyz.view(RGB24).reshape(data_xyz.shape[:3])
    elif components == 1:
        data_xyz = np.ascontiguousarray(np.transpose(data_zyx, (2, 1, 0)))
    else:
        raise ValueError(f"expected 1 or 3 components per voxel, got {components}")
    affine = image_affine_ras(image)
    img = nib.Nifti1Image(data_xyz, affine)
    hdr = img.header
    hdr.set_xyzt_units("mm", "sec")
    img.set_sform(affine, code=1)  # scanner anatomical
    img.set_qform(affine, code=1)
    hdr["descrip"] = b""
    hdr["aux_file"] = b""
    hdr["intent_name"] = b""
    hdr["db_name"] = b""
    return gzip_bytes(img.to_bytes())


def write_nifti(dest: str | os.PathLike[str], image: sitk.Image) -> str:
    """Write ``image`` to ``dest`` (``.nii.gz``) atomically; return the :func:`voxel_hash` of it.

    The hash is computed from the file as a reader sees it: NIfTI stores geometry as float32, so
    an origin such as -123.456 mm reads back slightly different from the float64 value in memory,
    and later stages that re-hash what they read must find the same hash.
    """
    write_bytes(dest, nifti_bytes(image))
    return voxel_hash(read_image(dest))


def read_image(path: str | os.PathLike[str], name: str | None = None) -> sitk.Image:
    """Read a NIfTI or NRRD volume as a SimpleITK image.

    Parameters
    ----------
    name
        How error messages name the file (default: its file name). Stages pass a pseudonymous
        key, since input file names can carry patient names.

    Raises
    ------
    InputFileError
        When the file is missing or not a readable image.
    """
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise InputFileError(f"{name}: no such image file", reason="missing-file")
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputFileError(f"{name}: not a readable NIfTI/NRRD image",
                             reason="unreadable-image") from exc


def voxel_hash(image: sitk.Image) -> str:
    """SHA-256 over voxel bytes, dtype, shape and geometry (rounded to 1e-6 mm).

    Independent of file format and header bytes, so the same volume read from NRRD or NIfTI hashes
    the same.
    """
    arr = np.ascontiguousarray(sitk.GetArrayViewFromImage(image))
    h = hashlib.sha256()
    h.update(str(arr.dtype.str).encode())
    h.update(repr(arr.shape).encode())
    for values in (image.GetSpacing(), image.GetOrigin(), image.GetDirection()):
        h.update(repr(tuple(round(float(v), 6) + 0.0 for v in values)).encode())
    h.update(arr.tobytes())
    return h.hexdigest()
