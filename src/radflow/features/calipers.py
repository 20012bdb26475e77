"""Caliper geometry of a binary mask: in-plane (RECIST) diameters, 3-D diameter, principal axes,
mesh volume.

Conventions (the README section "RECIST and semantic size" says the same for users)
-------------------------------------------------------------------------------------
* **Arrays** are ``(z, y, x)`` as :func:`SimpleITK.GetArrayFromImage` returns them; an index is
  written ``(i, j, k)`` (column, row, slice), as ITK does. The **acquisition plane** is spanned by
  the image's first two axes (direction-matrix columns 0 and 1); slices run along the third.
* **Voxel boundaries, not centres.** Diameters run between the centres of the faces (edges, in
  the plane) that separate a lesion voxel from a non-lesion neighbour: the vertices of the
  marching-squares / marching-cubes surface at level 0.5, which lie on the voxel boundaries. A
  face centre is half a step from its voxel's centre along one index axis. A one-pixel lesion
  therefore has an in-plane diameter of ``max(sx, sy)``, never 0, and the values equal
  PyRadiomics' ``Maximum2DDiameterSlice`` and ``Maximum3DDiameter`` (orthogonal grids).
* **Geometry** is physical (mm): an index offset ``d`` is ``M @ d`` with
  ``M = direction @ diag(spacing)``; oblique and non-orthogonal grids are handled exactly.

Only extreme points are used: the convex hull of the face centres is the hull of the outermost two
on every grid line (:func:`face_centres`), so the work grows with the number of lines, not voxels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull
from scipy.spatial.distance import cdist
from skimage.measure import find_contours, marching_cubes

#: Distance (mm) below which a contour vertex counts as lying on a perpendicular line.
_EPS_MM = 1e-9
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


def face_centres(mask: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Extreme boundary-face centres of ``mask`` along the grid lines parallel to ``axes``.

    A face between a set voxel and an unset neighbour (or the array border) along array axis
    ``a`` has its centre half a step from the voxel's centre along ``a``. On every grid line
    parallel to ``a`` only the outermost two such faces can be vertices of the convex hull (the
    others lie between them on the same line), so only they are returned.

    Parameters
    ----------
    mask
        Boolean array of shape ``(z, y, x)``, not empty.
    axes
        Array axes (0: z, 1: y, 2: x) whose faces are wanted: ``(1, 2)`` for the in-plane
        contour of each slice, ``(0, 1, 2)`` for the 3-D surface.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, 3)``: continuous indices ``(i, j, k)`` of the face centres (``k`` is an
        integer slice index unless axis 0 is among ``axes``).
    """
    parts = []
    for axis in axes:
        has = mask.any(axis=axis)
        first = mask.argmax(axis=axis)[has] - 0.5
        last = mask.shape[axis] - 0.5 - np.flip(mask, axis=axis).argmax(axis=axis)[has]
        others = [c.astype(float) for c in np.nonzero(has)]
        for end in (first, last):
            zyx = [*others[:axis], end, *others[axis:]]
            parts.append(np.stack(zyx[::-1], axis=1))
    return np.concatenate(parts)


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
    """Rows of the convex-hull vertices of ``points`` (shape ``(n, d)``, full-dimensional: the
    face centres of a voxel or pixel already span its dimension)."""
    return points[ConvexHull(points).vertices]


def _by_slice(points: np.ndarray) -> list[np.ndarray]:
    """``points`` (shape ``(n, 3)``, ``(i, j, k)``) grouped by ``k``, ascending."""
    order = np.argsort(points[:, 2], kind="stable")
    points = points[order]
    _, starts = np.unique(points[:, 2], return_index=True)
    return np.split(points, starts[1:])


def inplane_longest(mask: np.ndarray, grid: Grid) -> tuple[Caliper, np.ndarray]:
    """Longest in-plane diameter over all slices (RECIST 1.1), between boundary-edge centres.

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
    per_slice = np.zeros(mask.shape[0])
    best = Caliper(0.0, np.zeros((2, 3)))
    for points in _by_slice(face_centres(mask, (1, 2))):
        kk = int(points[0, 2])
        hull = _hull_vertices(points[:, :2])  # a slice's face centres span the plane
        length, a, b = farthest_pair(hull @ r.T)
        per_slice[kk] = length
        if length > best.length:
            best = Caliper(length, np.column_stack([hull[[a, b]], [kk, kk]]).astype(float))
    return best, per_slice


def contour_segments(mask2d: np.ndarray) -> np.ndarray:
    """Segments of the marching-squares contour (level 0.5) of a slice.

    The vertices are the centres of the boundary edges; diagonal neighbours are joined
    (``fully_connected="high"``: 8-connectivity in the plane, as the 26-connected components).

    Parameters
    ----------
    mask2d
        Boolean array of shape ``(y, x)``, not empty.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, 2, 2)``: the two end points ``(i, j)`` of every segment.
    """
    padded = np.pad(mask2d, 1).astype(np.float64)
    contours = find_contours(padded, 0.5, fully_connected="high")
    segments = np.concatenate([np.stack([c[:-1], c[1:]], axis=1) for c in contours])
    return segments[..., ::-1] - 1.0  # (row, column) of the padded slice -> (i, j)


def perpendicular_extent(mask2d: np.ndarray, slice_index: int, long_axis: Caliper,
                         grid: Grid) -> Caliper:
    """Largest extent of a slice's lesion along lines perpendicular to its long axis.

    For each line perpendicular to the long axis, the extent is the distance from where the line
    first meets the contour polygon (:func:`contour_segments`) to where it last leaves it (a
    caliper measurement, across concavities too; for a convex lesion, the longest perpendicular
    chord). Between two consecutive vertex offsets the line crosses the same segments, so the
    extent (a maximum minus a minimum of linear functions of the offset) is convex there and
    peaks at an end, on a line through a vertex; every such line is measured.

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
        The short axis (the line of largest extent nearest the long axis' first end on a tie).
    """
    r, r_inv = grid.plane()
    p, q = long_axis.ends[:, :2] @ r.T
    u = (q - p) / np.linalg.norm(q - p)
    n = np.array([-u[1], u[0]])
    seg = contour_segments(mask2d) @ r.T  # (m, 2 ends, 2) plane mm
    su, sn = seg @ u, seg @ n  # (m, 2): offset along the long axis, position along the line
    offsets = np.unique(np.round(su.ravel(), 9))
    lo_t, hi_t = np.minimum(sn[:, 0], sn[:, 1]), np.maximum(sn[:, 0], sn[:, 1])
    best_len, best_ends = -1.0, np.zeros((2, 2))
    step = max(1, _BLOCK // max(1, len(seg)))
    for start in range(0, len(offsets), step):
        s = offsets[start:start + step, None]
        da, db = su[None, :, 0] - s, su[None, :, 1] - s
        da = np.where(np.abs(da) < _EPS_MM, 0.0, da)
        db = np.where(np.abs(db) < _EPS_MM, 0.0, db)
        meets = da * db <= 0
        along = (da == 0) & (db == 0)  # a segment on the line: both its ends count
        with np.errstate(invalid="ignore", divide="ignore"):
            t = sn[None, :, 0] + da / (da - db) * (sn[None, :, 1] - sn[None, :, 0])
        enter = np.where(meets, np.where(along, lo_t[None, :], t), np.inf).min(axis=1)
        leave = np.where(meets, np.where(along, hi_t[None, :], t), -np.inf).max(axis=1)
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
    """Longest 3-D diameter between boundary-face centres (the marching-cubes vertices).

    Parameters
    ----------
    mask
        Boolean array of shape ``(z, y, x)``, not empty.
    grid
        The grid of ``mask``.
    """
    hull = _hull_vertices(face_centres(mask, (0, 1, 2)))
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
