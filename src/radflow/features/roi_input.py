"""The checked arrays of an image/mask pair for radflow's own feature families.

:func:`roi_arrays` turns a SimpleITK image and its binary mask into numpy arrays of shape
``(z, y, x)`` (or ``(y, x)`` for a 2-D image), exactly as :func:`SimpleITK.GetArrayFromImage`
returns them, cropped to the ROI's bounding box, plus that box (the crop's index offset in the
whole image) and the *lattice matrix* that maps an index step along the array axes to a physical
vector in mm. It is the one input check of radflow's feature families (semantic, fractal,
Minkowski): input errors are :class:`PairingError` with the reasons ``grid-mismatch``,
``invalid-mask`` and ``empty-mask``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from radflow.errors import PairingError

#: Largest difference (mm, or direction cosine) at which two grids count as the same.
GRID_TOLERANCE = 1e-4


@dataclass(frozen=True)
class RoiArrays:
    """An image/mask pair cropped to the ROI's bounding box.

    Attributes
    ----------
    values : np.ndarray, shape (z, y, x) or (y, x), float64
        Voxel values of the image inside the bounding box (outside the ROI too).
    roi : np.ndarray, shape like ``values``, bool
        The ROI inside the bounding box.
    lattice : np.ndarray, shape (ndim, ndim)
        Column ``a`` is the physical vector (mm, in the image's physical axes x, y[, z]) of one
        index step along array axis ``a`` (axis 0 = slices for a 3-D image):
        ``direction @ diag(spacing)`` with its columns reversed into array-axis order.
    box : tuple of slice, one per array axis
        The bounding box in the whole image's array (``(z, y, x)`` order): ``values`` is
        ``GetArrayViewFromImage(image)[box]``, so ``box[a].start`` is the crop's index offset
        along array axis ``a``.
    """

    values: np.ndarray
    roi: np.ndarray
    lattice: np.ndarray
    box: tuple[slice, ...]

    @property
    def voxel_volume(self) -> float:
        """Volume (mm³; area in mm² for a 2-D image) of one voxel: ``|det lattice|``."""
        return float(abs(np.linalg.det(self.lattice)))


def roi_arrays(image: sitk.Image, mask: sitk.Image, *, family: str,
               dimensions: tuple[int, ...] = (3,)) -> RoiArrays:
    """Check ``mask`` against ``image`` and return both cropped to the ROI's bounding box.

    Parameters
    ----------
    image
        The image (any scalar pixel type), of one of the ``dimensions``.
    mask
        Binary mask: values 0 and 1 only (1 = ROI), on the grid of ``image`` (same size, and
        spacing, origin and direction within :data:`GRID_TOLERANCE`), not empty.
    family
        Feature family named in error messages (``semantic``, ``fractal``, ``minkowski``).
    dimensions
        Allowed image dimensions.

    Returns
    -------
    RoiArrays

    Raises
    ------
    PairingError
        ``invalid-mask`` (wrong dimension, values other than 0 and 1), ``grid-mismatch`` (mask
        not on the image grid) or ``empty-mask``.
    """
    ndim = image.GetDimension()
    if ndim not in dimensions or mask.GetDimension() != ndim:
        allowed = " or ".join(f"{d}-D" for d in dimensions)
        raise PairingError(f"{family} features need a {allowed} image and a mask of the same "
                           f"dimension, got a {ndim}-D image and a {mask.GetDimension()}-D mask",
                           reason="invalid-mask")
    same = image.GetSize() == mask.GetSize() and all(
        np.allclose(getattr(image, f)(), getattr(mask, f)(), rtol=0, atol=GRID_TOLERANCE)
        for f in ("GetSpacing", "GetOrigin", "GetDirection"))
    if not same:
        raise PairingError(f"{family} features: the mask is not on the image grid (size, "
                           "spacing, origin or direction differ)", reason="grid-mismatch")
    raw = sitk.GetArrayViewFromImage(mask)
    # one pass each over the whole mask; everything else works on the bounding box
    low, high = (raw.min(), raw.max()) if raw.size else (0, 0)
    if low < 0 or high > 1 or (raw.dtype.kind == "f" and not np.isin(raw, (0, 1)).all()):
        raise PairingError(f"{family} features: the mask holds values other than 0 and 1",
                           reason="invalid-mask")
    boxes = ndi.find_objects(raw if raw.dtype.kind in "iu" else raw.astype(np.uint8), 1)
    box = boxes[0] if high == 1 and boxes else None
    if box is None:
        raise PairingError(f"{family} features: the mask is empty", reason="empty-mask")
    values = np.asarray(sitk.GetArrayViewFromImage(image)[box], dtype=np.float64)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(ndim, ndim)
    matrix = direction @ np.diag(image.GetSpacing())
    return RoiArrays(values=values, roi=np.ascontiguousarray(raw[box] == 1),
                     lattice=matrix[:, ::-1].copy(), box=tuple(box))
