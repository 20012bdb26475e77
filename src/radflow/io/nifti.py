"""NIfTI files: the one way radflow reads and writes volumes on disk.

In memory a volume is a :class:`SimpleITK.Image` (what PyRadiomics consumes) with physical
geometry in DICOM/ITK patient coordinates (LPS). On disk it is a gzipped NIfTI-1 file whose
sform/qform carry the same geometry in NIfTI's RAS convention.

Files are written with nibabel so that radflow controls every header byte: ``descrip``,
``aux_file`` and ``intent_name`` are empty, the gzip header has no file name and mtime 0, and the
bytes depend only on voxels and geometry (same input -> identical file). Writes are atomic and
stream the volume through gzip (:func:`radflow.io.atomic.atomic_gzip`) without copying it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from radflow.errors import InputFileError
from radflow.io.atomic import atomic_gzip, gzip_bytes

if TYPE_CHECKING:  # nibabel (and the pydicom/gdcm it pulls in) only where a NIfTI is written
    import nibabel as nib

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


def nifti_image(image: sitk.Image) -> nib.Nifti1Image:
    """The nibabel image radflow writes for a 3-D SimpleITK image, without copying voxels.

    A scalar image keeps its pixel type; an image with 3 components per voxel (a colour volume,
    :mod:`radflow.dicom.colour`) becomes ``DT_RGB24`` (3 x uint8 per voxel). The data are a view
    of the SimpleITK buffer: its (z, y, x) C-order array transposed is the (x, y, z) Fortran-order
    array NIfTI stores, and nibabel writes a Fortran-order array slice by slice, so the volume is
    never copied (``image`` must outlive the returned object).
    """
    if image.GetDimension() != 3:
        raise ValueError(f"expected a 3-D image, got {image.GetDimension()}-D")
    components = image.GetNumberOfComponentsPerPixel()
    data_zyx = sitk.GetArrayViewFromImage(image)
    if components == 3:
        data_zyx = np.ascontiguousarray(data_zyx, dtype=np.uint8)  # no copy for RGB uint8
        data_zyx = data_zyx.view(RGB24).reshape(data_zyx.shape[:3])
    elif components != 1:
        raise ValueError(f"expected 1 or 3 components per voxel, got {components}")
    affine = image_affine_ras(image)
    import nibabel as nib

    img = nib.Nifti1Image(np.transpose(data_zyx), affine)
    hdr = img.header
    hdr.set_xyzt_units("mm", "sec")
    img.set_sform(affine, code=1)  # scanner anatomical
    img.set_qform(affine, code=1)
    hdr["descrip"] = b""
    hdr["aux_file"] = b""
    hdr["intent_name"] = b""
    hdr["db_name"] = b""
    return img


def nifti_bytes(image: sitk.Image) -> bytes:
    """Serialise a 3-D image as gzipped NIfTI-1 bytes with a clean, deterministic header: the
    bytes :func:`write_nifti` writes (see :func:`nifti_image`)."""
    return gzip_bytes(nifti_image(image).to_bytes())


def write_nifti(dest: str | os.PathLike[str], image: sitk.Image) -> str:
    """Write ``image`` to ``dest`` (``.nii.gz``) atomically; return the :func:`voxel_hash` of it.

    The volume is streamed through gzip into the file (no copy of it in memory, see
    :func:`nifti_image`). The hash is the one a reader of the file computes: NIfTI stores
    geometry as float32, so an origin such as -123.456 mm reads back slightly different from the
    float64 value in memory, and later stages that re-hash what they read must find the same
    hash. So the voxels are hashed from memory (the file holds the same bytes) with the pixel
    type and geometry SimpleITK reads back from the file's header (only the header is read).
    """
    with atomic_gzip(dest) as stream:
        nifti_image(image).to_stream(stream)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(dest))
    reader.ReadImageInformation()
    if (reader.GetPixelID(), reader.GetSize()) != (image.GetPixelID(), image.GetSize()):
        return voxel_hash(read_image(dest))  # the reader changes the type: hash what it reads
    return _hash(sitk.GetArrayViewFromImage(image), reader.GetSpacing(), reader.GetOrigin(),
                 reader.GetDirection())


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
    return _hash(sitk.GetArrayViewFromImage(image), image.GetSpacing(), image.GetOrigin(),
                 image.GetDirection())


def _hash(arr: np.ndarray, spacing: tuple[float, ...], origin: tuple[float, ...],
          direction: tuple[float, ...]) -> str:
    """:func:`voxel_hash` of voxels ``arr`` (shape (z, y, x[, components])) and a geometry."""
    arr = np.ascontiguousarray(arr)  # a view of a SimpleITK image already is: no copy
    h = hashlib.sha256()
    h.update(str(arr.dtype.str).encode())
    h.update(repr(arr.shape).encode())
    for values in (spacing, origin, direction):
        h.update(repr(tuple(round(float(v), 6) + 0.0 for v in values)).encode())
    h.update(arr.data.cast("B"))
    return h.hexdigest()
