"""A SimpleITK image whose voxels numpy fills in place (the convert stage's volume buffer).

:func:`SimpleITK.GetImageFromArray` copies an array into a new image, so building a volume in
numpy and then converting it holds the volume twice (2 x 150 MiB for a 300 x 512 x 512 int16
CT). :func:`image_buffer` instead allocates the image first and returns a writable numpy view of
its voxel buffer (SimpleITK's own view, :func:`SimpleITK.GetArrayViewFromImage`, is read-only).
The view keeps the image alive. Set the image's geometry before taking the view and do not
modify the image through SimpleITK while the view is written: SimpleITK copies an image's buffer
on write when the buffer is shared (copy-on-write), which would leave the view on the old one.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

_PIXEL_IDS = {np.dtype(np.int16): sitk.sitkInt16, np.dtype(np.float32): sitk.sitkFloat32}


def image_buffer(shape_zyx: tuple[int, ...], dtype: np.dtype | type,
                 spacing: Sequence[float], origin: Sequence[float],
                 direction: Sequence[float]) -> tuple[sitk.Image, np.ndarray]:
    """A new zero-filled 3-D image and a writable view of its voxels.

    Parameters
    ----------
    shape_zyx
        (slices, rows, columns).
    dtype
        int16 or float32.
    spacing, origin, direction
        The image's geometry (x, y, z; LPS), set before the view is taken.

    Returns
    -------
    image : SimpleITK.Image
        Size (columns, rows, slices).
    voxels : numpy.ndarray, shape ``shape_zyx``, ``dtype``
        Writes change ``image``; it references ``image``, which lives at least as long.
    """
    image = sitk.Image([int(n) for n in reversed(shape_zyx)], _PIXEL_IDS[np.dtype(dtype)])
    image.SetSpacing([float(v) for v in spacing])
    image.SetOrigin([float(v) for v in origin])
    image.SetDirection([float(v) for v in direction])
    view = sitk.GetArrayViewFromImage(image)
    address, shape, view_dtype, nbytes = (view.__array_interface__["data"][0], view.shape,
                                          view.dtype, view.nbytes)
    del view
    memory = (ctypes.c_char * nbytes).from_address(address)
    memory.image = image  # type: ignore[attr-defined]  # keeps the buffer's owner alive
    return image, np.frombuffer(memoryview(memory), dtype=view_dtype).reshape(shape)


__all__ = ["image_buffer"]
