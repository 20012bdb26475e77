"""Minkowski functionals of a 3-D binary image by counting 2 × 2 × 2 voxel configurations.

Method (Ohser & Mücklich 2000; Legland, Kiêu & Devaux 2007, "Computation of Minkowski measures
on 2D and 3D binary images", Image Anal. Stereol. 26:83-92; Ohser & Schladitz 2009, "3D images
of materials structures", ch. 4-5)
------------------------------------------------------------------------------------------------
The binary image is padded with one background voxel on every side and every *cell* of the
lattice (2 × 2 × 2 neighbouring voxel centres) is given its configuration index
``sum(bit(corner) << (4*dz + 2*dy + dx))``, 0-255. Each functional is additive, so it is the dot
product of the 256-bin histogram of configurations with a look-up table (LUT) of one value per
configuration; one histogram serves all four functionals. The LUTs are derived here from first
principles (not copied):

* **Volume**: each voxel lies in 8 cells, ``popcount / 8 × voxel volume`` (= voxel count ×
  voxel volume, PyRadiomics' ``VoxelVolume``).
* **Surface area** (Crofton): ``S = 2 Σ_u w_u a_u n_u``, where ``n_u`` counts the transitions
  ROI/background between lattice neighbours along direction ``u``, ``a_u = v / |u|`` is the area
  per lattice line and ``w_u`` the direction's weight; a segment of ``u`` lies in 4 (axis), 2
  (face diagonal) or 1 (body diagonal) cells.
* **Mean breadth** (Crofton): ``b = Σ_u w_u δ_u Σ_planes χ(X ∩ plane)``, the Euler
  characteristics of the sections by the lattice planes normal to ``u``, ``δ_u`` the distance
  between two such planes. A section's χ is summed over its elementary faces: Gray's quad rule on
  rectangular faces (4- or 8-connectivity in the plane) and ``V − E + F`` shares on the
  triangular faces of the body-diagonal planes (each lattice point in 6 triangles, each edge
  in 2). The integrated mean curvature is ``M = 2π b``.
* **Euler characteristic**: with 26-connectivity, χ of the union of the closed voxel cubes
  (vertices − edges + faces − cubes of the cubical complex, shared out between the cells around
  each lattice vertex); with 6-connectivity, χ of the complex whose vertices are voxel centres
  and whose edges, squares and cubes join 6-adjacent centres. Both equal
  :func:`skimage.measure.euler_number` (connectivity 3 and 1); the tests hold them to it.

Directions: 3 (the axes, weight 1/3 each) or 13 (axes, 6 face diagonals and 4 body diagonals,
weighted by the area of their cells in the spherical Voronoi partition of the 26 physical
directions, :class:`scipy.spatial.SphericalVoronoi`; on a cubic grid 0.0916, 0.0740 and 0.0704,
Legland's values). For the mean breadth the directions are the normals of the lattice planes
(the same 13 on a cubic grid). The lattice may be anisotropic or skewed: every length and weight
comes from the physical lattice vectors.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.spatial import SphericalVoronoi

#: Corners of a cell as (dz, dy, dx); corner ``b`` holds bit ``b`` of the configuration index.
CORNERS: tuple[tuple[int, int, int], ...] = tuple(
    (z, y, x) for z in (0, 1) for y in (0, 1) for x in (0, 1))
_BIT = {corner: bit for bit, corner in enumerate(CORNERS)}

_AXES = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
_FACE_DIAGONALS = ((1, 1, 0), (1, -1, 0), (1, 0, 1), (1, 0, -1), (0, 1, 1), (0, 1, -1))
_BODY_DIAGONALS = ((1, 1, 1), (1, 1, -1), (1, -1, 1), (1, -1, -1))

#: Corner occupancy of every configuration: ``_OCCUPIED[c, b]`` is bit ``b`` of ``c``.
_OCCUPIED = ((np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1).astype(bool)


def configuration_histogram(region: np.ndarray) -> np.ndarray:
    """Histogram of the 2 × 2 × 2 configurations of ``region`` padded with background.

    Parameters
    ----------
    region : np.ndarray, shape (z, y, x), bool

    Returns
    -------
    np.ndarray, shape (256,), int64
        Number of cells with each configuration index (cells entirely outside the ROI included).
    """
    padded = np.pad(region.astype(np.uint8), 1)
    shape = tuple(n - 1 for n in padded.shape)
    index = np.zeros(shape, dtype=np.uint8)
    for bit, (dz, dy, dx) in enumerate(CORNERS):
        index |= padded[dz:dz + shape[0], dy:dy + shape[1], dx:dx + shape[2]] << bit
    return np.bincount(index.ravel(), minlength=256).astype(np.int64)


@dataclass(frozen=True)
class MinkowskiTables:
    """Look-up tables of the four functionals, each of shape (256,), float64."""

    volume: np.ndarray
    surface: np.ndarray
    mean_breadth: np.ndarray
    euler: np.ndarray

    def measure(self, histogram: np.ndarray) -> tuple[float, float, float, int]:
        """(volume mm³, surface area mm², mean breadth mm, Euler characteristic) of the image
        whose configuration histogram (shape (256,)) is ``histogram``."""
        h = histogram.astype(np.float64)
        return (float(h @ self.volume), float(h @ self.surface), float(h @ self.mean_breadth),
                round(float(h @ self.euler)))


def minkowski_tables(lattice: np.ndarray, directions: int, connectivity: int) -> MinkowskiTables:
    """The LUTs for a lattice, a number of directions (3 or 13) and a connectivity (6 or 26).

    Parameters
    ----------
    lattice : np.ndarray, shape (3, 3)
        Column ``a``: physical vector (mm) of one step along array axis ``a`` (z, y, x).
    directions
        3 or 13 (see the module docstring).
    connectivity
        6 or 26: of the ROI in 3-D; plane sections use 4- or 8-connectivity accordingly.
    """
    key = tuple(float(v) for v in np.asarray(lattice, dtype=np.float64).ravel())
    return _tables(key, directions, connectivity)


@lru_cache(maxsize=32)
def _tables(lattice_key: tuple[float, ...], directions: int, connectivity: int
            ) -> MinkowskiTables:
    lattice = np.array(lattice_key).reshape(3, 3)
    volume = abs(float(np.linalg.det(lattice)))
    tables = MinkowskiTables(
        volume=_OCCUPIED.sum(axis=1) * volume / 8.0,
        surface=_surface_lut(lattice, volume, directions),
        mean_breadth=_mean_breadth_lut(lattice, volume, directions, connectivity),
        euler=_euler_lut(connectivity))
    for table in (tables.volume, tables.surface, tables.mean_breadth, tables.euler):
        table.setflags(write=False)
    return tables


def direction_weights(vectors: list[np.ndarray]) -> np.ndarray:
    """Weights (sum 1) of directions ``±vectors``: the spherical Voronoi cell areas of the
    ``2 n`` unit vectors, the two cells of ``u`` and ``−u`` together, over 4π."""
    units = np.array([v / np.linalg.norm(v) for v in vectors])
    areas = SphericalVoronoi(np.vstack([units, -units]), radius=1.0).calculate_areas()
    n = len(vectors)
    return np.asarray((areas[:n] + areas[n:]) / (4.0 * np.pi))


def _steps(directions: int) -> tuple[tuple[int, int, int], ...]:
    return _AXES if directions == 3 else _AXES + _FACE_DIAGONALS + _BODY_DIAGONALS


def _segments(step: tuple[int, int, int]) -> list[tuple[int, int]]:
    """Bit pairs of the cell corners ``p`` and ``p + step`` (both inside the cell)."""
    pairs = []
    for corner in CORNERS:
        other = (corner[0] + step[0], corner[1] + step[1], corner[2] + step[2])
        if other in _BIT:
            pairs.append((_BIT[corner], _BIT[other]))
    return pairs


def _surface_lut(lattice: np.ndarray, volume: float, directions: int) -> np.ndarray:
    steps = _steps(directions)
    vectors = [lattice @ np.array(s, dtype=np.float64) for s in steps]
    weights = np.full(3, 1 / 3) if directions == 3 else direction_weights(vectors)
    lut = np.zeros(256)
    for step, vector, weight in zip(steps, vectors, weights, strict=True):
        cells_per_segment = 2 ** step.count(0)
        line_area = volume / float(np.linalg.norm(vector))
        for a, b in _segments(step):
            crossed = _OCCUPIED[:, a] != _OCCUPIED[:, b]
            lut += 2.0 * weight * line_area * crossed / cells_per_segment
    return lut


def _mean_breadth_lut(lattice: np.ndarray, volume: float, directions: int,
                      connectivity: int) -> np.ndarray:
    # (in-plane step 1, in-plane step 2, faces as corner-bit lists, cells per face)
    families: list[tuple[np.ndarray, np.ndarray, list[list[int]], int]] = []
    for axis in range(3):
        s1, s2 = (np.eye(3, dtype=int)[k] for k in range(3) if k != axis)
        faces = []
        for side in (0, 1):
            p = np.zeros(3, dtype=int)
            p[axis] = side
            faces.append(_corner_bits([p, p + s1, p + s2, p + s1 + s2]))
        families.append((s1, s2, faces, 2))
    if directions == 13:
        for diagonal in _FACE_DIAGONALS:
            s1 = np.array(diagonal)
            s2 = np.eye(3, dtype=int)[diagonal.index(0)]
            p = (s1 < 0).astype(int)
            families.append((s1, s2, [_corner_bits([p, p + s1, p + s2, p + s1 + s2])], 1))
        for signs in _BODY_DIAGONALS:
            flip = np.array(signs) < 0
            up = [np.where(flip, 1 - c, c) for c in np.eye(3, dtype=int)]
            down = [np.where(flip, 1 - c, c) for c in 1 - np.eye(3, dtype=int)]
            families.append((up[1] - up[0], up[2] - up[0],
                             [_corner_bits(up), _corner_bits(down)], 1))
    normals = [np.cross(lattice @ s1, lattice @ s2) for s1, s2, _, _ in families]
    weights = np.full(3, 1 / 3) if directions == 3 else direction_weights(normals)
    lut = np.zeros(256)
    for (_, _, faces, cells_per_face), normal, weight in zip(families, normals, weights,
                                                              strict=True):
        spacing = volume / float(np.linalg.norm(normal))
        for face in faces:
            lut += weight * spacing * _face_euler(face, connectivity) / cells_per_face
    return lut


def _corner_bits(corners: list[np.ndarray]) -> list[int]:
    return [_BIT[(int(c[0]), int(c[1]), int(c[2]))] for c in corners]


def _face_euler(face: list[int], connectivity: int) -> np.ndarray:
    """Share of one face in the Euler characteristic of its plane, for every configuration.

    A quad ``[p, p+s1, p+s2, p+s1+s2]`` follows Gray's rule (1 pixel: 1/4, 3 pixels: −1/4, two
    diagonal pixels: +1/2 with 4-connectivity, −1/2 with 8-connectivity, else 0); a triangle
    gives ``n/6 − e/2 + f`` for its ``n`` set corners, ``e`` set edges and ``f`` set face.
    """
    occupied = _OCCUPIED[:, face]
    n = occupied.sum(axis=1)
    if len(face) == 3:
        return np.asarray(n / 6.0 - n * (n - 1) / 4.0 + (n == 3))
    diagonal = (n == 2) & ((occupied[:, 0] & occupied[:, 3]) | (occupied[:, 1] & occupied[:, 2]))
    share = np.where(n == 1, 0.25, 0.0) - np.where(n == 3, 0.25, 0.0)
    return np.asarray(share + np.where(diagonal, 0.5 if connectivity == 6 else -0.5, 0.0))


def _euler_lut(connectivity: int) -> np.ndarray:
    occupied = _OCCUPIED
    corners = np.array(CORNERS)
    if connectivity == 26:
        # Cell = the 8 voxel cubes around one lattice vertex of the cube complex: the vertex
        # (1), its 6 half-edges (1/2 each), 12 quarter-faces (1/4) and 8 eighth-cubes (1/8).
        halves = sum(occupied[:, corners[:, a] == s].any(axis=1).astype(float)
                     for a in range(3) for s in (0, 1))
        quarters = sum(occupied[:, (corners[:, a] == sa) & (corners[:, b] == sb)]
                       .any(axis=1).astype(float)
                       for a, b in itertools.combinations(range(3), 2)
                       for sa in (0, 1) for sb in (0, 1))
        return np.asarray(occupied.any(axis=1) - halves / 2 + quarters / 4
                          - occupied.sum(axis=1) / 8)
    # 6-connectivity: voxel centres (in 8 cells), axis edges (in 4), squares (in 2), cubes (1).
    edges = sum((occupied[:, a] & occupied[:, b]).astype(float)
                for step in _AXES for a, b in _segments(step))
    squares = sum(occupied[:, corners[:, a] == s].all(axis=1).astype(float)
                  for a in range(3) for s in (0, 1))
    return np.asarray(occupied.sum(axis=1) / 8 - edges / 4 + squares / 2
                      - occupied.all(axis=1))
