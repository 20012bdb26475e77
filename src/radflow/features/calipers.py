"""Caliper geometry of a binary mask: in-plane (RECIST) diameters, 3-D diameter, principal axes,
mesh volume.

Conventions (the README section "RECIST and semantic size" says the same for users)
-------------------------------------------------------------------------------------
* **Arrays** are ``(z, y, x)`` as :func:`SimpleITK.GetArrayFromImage` returns them; an index is
  written ``(i, j, k)`` (column, row, slice), as ITK does. The **acquisition plane** is spanned by
  the image's first two axes (direction-matrix columns 0 and 1); slices run along the third.
* **Voxel boundaries, not centres.** A voxel is the box ``[i-1/2, i+1/2] x [j-1/2, j+1/2] x
  [k-1/2, k+1/2]`` in index space. In-plane diameters are measured on the union of the pixel
  squares of one slice, the 3-D diameter on the union of the voxel boxes. A one-pixel lesion
  therefore has an in-plane diameter of one pixel diagonal ``sqrt(sx^2 + sy^2)``, never 0.
* **Geometry** is physical (mm): an index offset ``d`` is ``M @ d`` with
  ``M = direction @ diag(spacing)``; oblique and non-orthogonal grids are handled exactly.

Only extreme points are used: the convex hull of a union of boxes is the hull of the corners of
each row's first and last box, so the work grows with the number of rows, not voxels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
from scipy.spatial import ConvexHull
from scipy.spatial.distance import cdist
from skimage.measure import marching_cubes

#: Half-width (mm) of the offsets at which a perpendicular line is re-evaluated beside each
#: breakpoint (a line through a pixel corner).
_EPS_MM = 1e-6
#: Rows x columns of the largest distance block held in memory at once.
_BLOCK = 2_000_000


@dataclass(frozen=True)
class Grid:
    """Index-to-patient mapping of an image grid.

    Attributes
    ----------
    origin
        Array of shape ``(3,)``: patient coordinates (mm) of index ``(0, 0, 0)``.
    matrix
        Array of shape ``(3, 3)``: ``direction @ diag(spacing)``; ``origin + matrix @ (i, j, k)``
        is the patient position of the continuous index ``(i, j, k)``.
    """

    origin: np.ndarray
    matrix: np.ndarray

    @classmethod
    def of(cls, origin: tuple[float, ...], spacing: tuple[float, ...],
           direction: tuple[float, ...]) -> Grid:
        """Grid of a SimpleITK image's ``GetOrigin()``, ``GetSpacing()``, ``GetDirection()``."""
        d = np.asarray(direction, dtype=float).reshape(3, 3)
        return cls(np.asarray(origin, dtype=float), d * np.asarray(spacing, dtype=float)[None, :])

    @property
    def voxel_volume(self) -> float:
        """Volume of one voxel in mm³ (``|det matrix|``)."""
        return float(abs(np.linalg.det(self.matrix)))

    def plane(self) -> tuple[np.ndarray, np.ndarray]:
        """In-plane isometry: ``(R, R_inv)``, each of shape ``(2, 2)``.

        ``R @ (i, j)`` are 2-D coordinates (mm) in the acquisition plane that preserve distances
        (``R`` is the triangular factor of ``matrix[:, :2]``).
        """
        r = np.linalg.qr(self.matrix[:, :2]).R
        return r, np.linalg.inv(r)

    def to_patient(self, index: np.ndarray) -> np.ndarray:
        """Patient coordinates (mm) of continuous indices of shape ``(n, 3)`` (``(i, j, k)``)."""
        return self.origin[None, :] + np.asarray(index, dtype=float) @ self.matrix.T


@dataclass(frozen=True)
class Caliper:
    """A measured segment.

    Attributes
    ----------
    length
        Length in mm (0 when nothing was measured).
    ends
        Array of shape ``(2, 3)``: continuous indices ``(i, j, k)`` of the two end points.
    """

    length: float
    ends: np.ndarray


def row_extremes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First and last set column of every non-empty row.

    Parameters
    ----------
    mask
        Boolean array of shape ``(z, y, x)``.

    Returns
    -------
    k, j, first, last
        Integer arrays of shape ``(n_rows,)``.
    """
    k, j = np.nonzero(mask.any(axis=2))
    rows = mask[k, j, :]
    first = rows.argmax(axis=1)
    last = mask.shape[2] - 1 - rows[:, ::-1].argmax(axis=1)
    return k, j, first, last


def farthest_pair(points: np.ndarray) -> tuple[float, int, int]:
    """Largest distance between two of ``points`` (shape ``(n, d)``) and their row numbers."""
    best, pair = -1.0, (0, 0)
    step = max(1, _BLOCK // max(1, len(points)))
    for start in range(0, len(points), step):
        d2 = cdist(points[start:start + step], points, "sqeuclidean")
        flat = int(np.argmax(d2))
        value = float(d2.flat[flat])
        if value > best:
            best = value
            pair = (start + flat // len(points), flat % len(points))
    return float(np.sqrt(best)), pair[0], pair[1]


def _hull_vertices(points: np.ndarray) -> np.ndarray:
    """Rows of the convex-hull vertices of ``points`` (shape ``(n, d)``, full-dimensional)."""
    return points[ConvexHull(points).vertices]


def inplane_longest(mask: np.ndarray, grid: Grid) -> tuple[Caliper, np.ndarray]:
    """Longest in-plane diameter over all slices (RECIST 1.1), between pixel boundaries.

    Parameters
    ----------
    mask
        Boolean array of shape ``(z, y, x)``, not empty; indices are relative to ``grid``.
    grid
        The grid of ``mask``.

    Returns
    -------
    caliper
        The longest diameter; both ends lie on the slice ``k`` (``ends[:, 2]``) where it was
        found (the first such slice on a tie).
    per_slice
        Array of shape ``(z,)``: the longest diameter of every slice (0 on empty slices).
    """
    r, _ = grid.plane()
    k, j, first, last = row_extremes(mask)
    lo, hi = first - 0.5, last + 0.5
    corners = np.stack([
        np.stack([lo, j - 0.5], axis=1), np.stack([lo, j + 0.5], axis=1),
        np.stack([hi, j - 0.5], axis=1), np.stack([hi, j + 0.5], axis=1)], axis=1)  # (n, 4, 2)
    per_slice = np.zeros(mask.shape[0])
    best = Caliper(0.0, np.zeros((2, 3)))
    for kk in np.unique(k):
        idx = np.unique(corners[k == kk].reshape(-1, 2), axis=0)
        hull = _hull_vertices(idx)
        length, a, b = farthest_pair(hull @ r.T)
        per_slice[kk] = length
        if length > best.length:
            ends = np.column_stack([hull[[a, b]], [kk, kk]]).astype(float)
            best = Caliper(length, ends)
    return best, per_slice


def perpendicular_extent(mask2d: np.ndarray, slice_index: int, long_axis: Caliper,
                         grid: Grid) -> Caliper:
    """Largest extent of a slice's lesion along lines perpendicular to its long axis.

    For each line perpendicular to the long axis, the extent is the distance from where the line
    first enters the union of pixel squares to where it last leaves it (a caliper measurement;
    for a convex lesion, the longest perpendicular chord). The extent is piecewise linear in the
    line's offset with breakpoints where the line passes a corner of a boundary pixel, so
    evaluating the lines through those corners (and ``1e-6`` mm beside them) gives the exact
    maximum.

    Parameters
    ----------
    mask2d
        Boolean array of shape ``(y, x)``: the slice of the long axis, not empty.
    slice_index
        Its ``k`` index (copied into the end points).
    long_axis
        The long axis on this slice (:func:`inplane_longest`).
    grid
        The grid of the mask.

    Returns
    -------
    Caliper
        The short axis (the first line of largest extent on a tie).
    """
    r, r_inv = grid.plane()
    p, q = long_axis.ends[:, :2] @ r.T
    u = (q - p) / np.linalg.norm(q - p)
    n = np.array([-u[1], u[0]])
    alpha, beta = r_inv @ u, r_inv @ n  # index-space direction of offsets and of the lines
    boundary = mask2d & ~ndi.binary_erosion(mask2d, border_value=0)
    pj, pi = np.nonzero(boundary)
    pix = np.stack([pi, pj], axis=1).astype(float)
    corner_offsets = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
    corners = (pix[:, None, :] + corner_offsets[None, :, :]).reshape(-1, 2)
    s_mid = np.unique(np.round(corners @ r.T @ u, 9))
    offsets = np.concatenate([s_mid - _EPS_MM, s_mid, s_mid + _EPS_MM])
    best_len, best_ends = -1.0, np.zeros((2, 2))
    step = max(1, _BLOCK // max(1, len(pix)))
    for start in range(0, len(offsets), step):
        s = offsets[start:start + step, None]
        lo, hi = np.full((len(s), len(pix)), -np.inf), np.full((len(s), len(pix)), np.inf)
        for axis in (0, 1):
            base = s * alpha[axis]  # index coordinate of the line at t = 0
            cell = pix[None, :, axis]
            if abs(beta[axis]) > 1e-12:
                t1 = (cell - 0.5 - base) / beta[axis]
                t2 = (cell + 0.5 - base) / beta[axis]
                lo = np.maximum(lo, np.minimum(t1, t2))
                hi = np.minimum(hi, np.maximum(t1, t2))
            else:  # the line runs along this index axis: all or nothing
                outside = np.abs(base - cell) > 0.5
                lo = np.where(outside, np.inf, lo)
                hi = np.where(outside, -np.inf, hi)
        hit = lo <= hi
        enter = np.where(hit, lo, np.inf).min(axis=1)
        leave = np.where(hit, hi, -np.inf).max(axis=1)
        extent = np.where(np.isfinite(enter), leave - enter, -1.0)
        row = int(np.argmax(extent))
        if extent[row] > best_len:
            best_len = float(extent[row])
            sv = float(s[row, 0])
            best_ends = np.array([sv * u + enter[row] * n, sv * u + leave[row] * n])
    index2 = best_ends @ r_inv.T
    ends = np.column_stack([index2, [slice_index, slice_index]]).astype(float)
    return Caliper(max(best_len, 0.0), ends)


def longest_3d(mask: np.ndarray, grid: Grid) -> Caliper:
    """Longest 3-D diameter between voxel boundaries (corners of the voxel boxes).

    Parameters
    ----------
    mask
        Boolean array of shape ``(z, y, x)``, not empty.
    grid
        The grid of ``mask``.
    """
    k, j, first, last = row_extremes(mask)
    pts = []
    for i in (first - 0.5, last + 0.5):
        for dj in (-0.5, 0.5):
            for dk in (-0.5, 0.5):
                pts.append(np.stack([i, j + dj, k + dk], axis=1))
    index = np.unique(np.concatenate(pts).astype(float), axis=0)
    hull = _hull_vertices(index)
    length, a, b = farthest_pair(hull @ grid.matrix.T)
    return Caliper(length, hull[[a, b]])


def principal_axes(mask: np.ndarray, grid: Grid) -> np.ndarray:
    """PyRadiomics' axis lengths ``4 sqrt(lambda)`` of the voxel-centre covariance.

    ``lambda`` are the eigenvalues of the (population) covariance of the patient coordinates of
    the voxel centres; the values equal PyRadiomics' LeastAxisLength, MinorAxisLength and
    MajorAxisLength on the same mask. For a solid ellipsoid with semi-axis ``a``,
    ``lambda = a^2 / 5``, so ``4 sqrt(lambda) = 0.894 x 2a``.

    Parameters
    ----------
    mask
        Boolean array of shape ``(z, y, x)``, not empty.
    grid
        The grid of ``mask``.

    Returns
    -------
    numpy.ndarray
        Shape ``(3,)``: least, minor, major axis length in mm.
    """
    kk, jj, ii = np.nonzero(mask)
    xyz = np.stack([ii, jj, kk], axis=1).astype(float) @ grid.matrix.T
    xyz -= xyz.mean(axis=0)
    eig = np.linalg.eigvalsh(xyz.T @ xyz / len(xyz))
    return 4.0 * np.sqrt(np.clip(eig, 0.0, None))


def mesh_volume(mask: np.ndarray, grid: Grid) -> float:
    """Volume (mm³) enclosed by the marching-cubes surface (level 0.5) of the padded mask.

    Parameters
    ----------
    mask
        Boolean array of shape ``(z, y, x)``, not empty.
    grid
        The grid of ``mask``.
    """
    padded = np.pad(mask, 1).astype(np.float32)
    verts, faces, _, _ = marching_cubes(padded, level=0.5, allow_degenerate=False)
    tri = verts[faces]  # (n, 3 vertices, 3 index coordinates (k, j, i))
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    return float(abs(signed)) * grid.voxel_volume
