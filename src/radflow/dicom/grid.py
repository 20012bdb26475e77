"""The voxel grid of a converted image, as masks from RTSTRUCT and SEG are built on it.

A :class:`Grid` is what a convert sidecar records under ``grid`` (ITK conventions: ``size`` and
``spacing`` in x, y, z order; ``direction`` row-major 3x3 with the x, y, z axis directions as
columns; LPS millimetres). Arrays on a grid are indexed ``[z, y, x]`` as
:func:`SimpleITK.GetArrayFromImage` returns them. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from radflow.errors import PairingError


@dataclass(frozen=True)
class Grid:
    """A 3-D voxel grid in patient coordinates (LPS, mm).

    Attributes
    ----------
    size
        Voxels along x (columns), y (rows), z (slices).
    spacing
        Voxel spacing along x, y, z (mm).
    origin
        Centre of voxel ``(0, 0, 0)``.
    direction
        Row-major 3x3 matrix whose columns are the x, y and z axis directions.
    """

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]

    @classmethod
    def from_sidecar(cls, grid: Mapping[str, Any]) -> Grid:
        """The grid of a convert sidecar's ``grid`` entry.

        Raises
        ------
        PairingError
            ``invalid-grid`` when an entry is missing or has the wrong length.
        """
        try:
            size = tuple(int(v) for v in grid["size"])
            spacing = tuple(float(v) for v in grid["spacing"])
            origin = tuple(float(v) for v in grid["origin"])
            direction = tuple(float(v) for v in grid["direction"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PairingError(f"image grid record is incomplete ({exc})",
                               reason="invalid-grid") from None
        if len(size) != 3 or len(spacing) != 3 or len(origin) != 3 or len(direction) != 9:
            raise PairingError("image grid record must be 3-D", reason="invalid-grid")
        return cls(size, spacing, origin, direction)

    @classmethod
    def from_image(cls, image: sitk.Image) -> Grid:
        """The grid of a 3-D SimpleITK image."""
        return cls(tuple(int(v) for v in image.GetSize()),  # type: ignore[arg-type]
                   tuple(float(v) for v in image.GetSpacing()),  # type: ignore[arg-type]
                   tuple(float(v) for v in image.GetOrigin()),  # type: ignore[arg-type]
                   tuple(float(v) for v in image.GetDirection()))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(z, y, x)``."""
        return (self.size[2], self.size[1], self.size[0])

    @property
    def index_to_patient(self) -> np.ndarray:
        """4x4 affine mapping ``(x, y, z, 1)`` voxel indices to LPS mm, shape (4, 4)."""
        affine = np.eye(4)
        affine[:3, :3] = np.asarray(self.direction, float).reshape(3, 3) @ np.diag(self.spacing)
        affine[:3, 3] = self.origin
        return affine

    def to_index(self, points: np.ndarray) -> np.ndarray:
        """Continuous voxel indices of patient points.

        Parameters
        ----------
        points : numpy.ndarray, shape (n, 3)
            LPS coordinates (mm).

        Returns
        -------
        numpy.ndarray, shape (n, 3)
            ``(x, y, z)`` indices; voxel centres are integers.
        """
        pts = np.asarray(points, dtype=float).reshape(-1, 3)
        linear = self.index_to_patient[:3, :3]
        return np.linalg.solve(linear, (pts - np.asarray(self.origin)).T).T

    def contains(self, index: np.ndarray, atol: float = 1e-3) -> np.ndarray:
        """Whether continuous indices (shape (n, 3)) lie inside the grid's voxels.

        A point is inside when every index lies in ``[-0.5, size - 0.5]`` (voxel edges) within
        ``atol`` voxels. Returns a boolean array of shape (n,).
        """
        idx = np.asarray(index, dtype=float).reshape(-1, 3)
        upper = np.asarray(self.size, float) - 0.5
        return np.all((idx >= -0.5 - atol) & (idx <= upper + atol), axis=1)

    def image(self, array_zyx: np.ndarray) -> sitk.Image:
        """A SimpleITK image of ``array_zyx`` (shape :attr:`shape`) on this grid."""
        arr = np.asarray(array_zyx)
        if arr.shape != self.shape:
            raise ValueError(f"array shape {arr.shape} != grid shape {self.shape}")
        image = sitk.GetImageFromArray(arr)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image


def corner_points(grid: Grid) -> np.ndarray:
    """The 8 outer voxel-edge corners of ``grid`` in LPS mm, shape (8, 3)."""
    lo, hi = -0.5, np.asarray(grid.size, float) - 0.5
    corners = np.array([[x, y, z] for x in (lo, hi[0]) for y in (lo, hi[1])
                        for z in (lo, hi[2])], float)
    affine = grid.index_to_patient
    return corners @ affine[:3, :3].T + affine[:3, 3]


def frame_corner_points(position: Sequence[float], orientation: Sequence[float],
                        pixel_spacing: Sequence[float], rows: int, cols: int) -> np.ndarray:
    """Centres of the four corner pixels of one image plane, shape (4, 3).

    Parameters
    ----------
    position
        ImagePositionPatient (centre of the first pixel).
    orientation
        ImageOrientationPatient (row direction then column direction cosines).
    pixel_spacing
        PixelSpacing ``(row spacing, column spacing)`` as DICOM stores it.
    """
    p = np.asarray(position, float)
    row_dir, col_dir = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    along_row = row_dir * float(pixel_spacing[1]) * (cols - 1)
    along_col = col_dir * float(pixel_spacing[0]) * (rows - 1)
    return np.array([p, p + along_row, p + along_col, p + along_row + along_col])


__all__ = ["Grid", "corner_points", "frame_corner_points"]
