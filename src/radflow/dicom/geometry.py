"""Slice geometry of a DICOM series: the one check shared by the crawl and the convert stages.

Pure functions on small arrays (no I/O, no pydicom). Coordinates are DICOM patient coordinates
(LPS, mm). A series is a regular volume when all slices share one orientation, one in-plane grid
(rows, columns, pixel spacing), and their ImagePositionPatient values lie on one line along the
slice normal, evenly spaced.

Conventions
-----------
* ``orientation`` is ImageOrientationPatient: row direction cosines (direction of increasing
  column index) followed by column direction cosines (direction of increasing row index).
* ``pixel_spacing`` is PixelSpacing as DICOM stores it: ``(row spacing, column spacing)``, i.e.
  ``(y, x)``.
* The volume's axes are x = columns, y = rows, z = slices sorted by their distance along the
  normal ``row x column``. Slices are never sorted by InstanceNumber.
* ``direction`` is the 3x3 matrix whose *columns* are the x, y and z axis directions (ITK
  convention), flattened row-major as :meth:`SimpleITK.Image.SetDirection` expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from radflow.dicom.resample import Resampling, plan_resampling
from radflow.errors import SeriesGeometryError
from radflow.settings import GeometrySettings

#: Two slices closer than this along the normal (mm) occupy the same position.
DUPLICATE_POSITION_ATOL_MM = 1e-3
#: Absolute slack (mm) for the in-plane drift of slice positions; covers DS rounding of IPP.
IN_PLANE_ATOL_MM = 0.01
#: Row and column cosines must be unit vectors and orthogonal within this tolerance.
UNIT_ATOL = 1e-3
#: A gap this close (relative) to an integer multiple >= 2 of the median gap is a missing slice.
MISSING_SLICE_RTOL = 0.1


@dataclass(frozen=True)
class SeriesGeometry:
    """Geometry of a regular volume built from a set of slices.

    Attributes
    ----------
    order
        Indices into the input slices, sorted by increasing distance along the normal.
    rows, cols, n_slices
        Voxel counts along y, x and z.
    spacing
        ``(x, y, z)`` in mm: column spacing, row spacing, mean gap between adjacent slices along
        the normal (1.0 for a single slice unless a fallback is given).
    origin
        ImagePositionPatient of the first slice after sorting (LPS, mm).
    orientation
        The six ImageOrientationPatient cosines shared by all slices (as stored).
    direction
        Row-major 3x3 matrix with columns row direction, column direction, normal (orthonormal).
    resampling
        The resampling plan when the slices must be resampled to form this grid (opt-in
        policies for gantry tilt and uneven spacing), else ``None``. ``rows``, ``cols``,
        ``n_slices``, ``spacing`` and ``origin`` then describe the resampled grid, and ``order``
        still indexes the input slices.
    """

    order: tuple[int, ...]
    rows: int
    cols: int
    n_slices: int
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    orientation: tuple[float, ...]
    direction: tuple[float, ...]
    resampling: Resampling | None = None


def direction_matrix(orientation: Sequence[float]) -> np.ndarray:
    """Orthonormal direction matrix from ImageOrientationPatient.

    Parameters
    ----------
    orientation : sequence of float, shape (6,)
        Row direction cosines then column direction cosines.

    Returns
    -------
    numpy.ndarray, shape (3, 3)
        Columns: row direction, column direction, slice normal (row x column). Small rounding
        deviations are removed (Gram-Schmidt).

    Raises
    ------
    SeriesGeometryError
        ``missing-geometry`` for non-finite values, ``invalid-orientation`` when the cosines are
        not (within :data:`UNIT_ATOL`) two orthogonal unit vectors.
    """
    iop = np.asarray(orientation, dtype=float)
    if iop.shape != (6,) or not np.all(np.isfinite(iop)):
        raise SeriesGeometryError("ImageOrientationPatient (0020,0037) must be 6 finite numbers",
                                  reason="missing-geometry")
    row, col = iop[:3], iop[3:]
    row_norm, col_norm, dot = np.linalg.norm(row), np.linalg.norm(col), float(row @ col)
    if abs(row_norm - 1) > UNIT_ATOL or abs(col_norm - 1) > UNIT_ATOL or abs(dot) > UNIT_ATOL:
        raise SeriesGeometryError(
            f"ImageOrientationPatient (0020,0037) is not two orthogonal unit vectors "
            f"(|row| {row_norm:.4f}, |column| {col_norm:.4f}, row.column {dot:.4f})",
            reason="invalid-orientation")
    row = row / row_norm
    col = col - (col @ row) * row
    col = col / np.linalg.norm(col)
    return np.column_stack([row, col, np.cross(row, col)])


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Unit slice normal (row direction x column direction), shape (3,)."""
    return direction_matrix(orientation)[:, 2]


def sort_along_normal(positions: np.ndarray, normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort slice positions by their distance along the normal.

    Parameters
    ----------
    positions : numpy.ndarray, shape (n, 3)
        ImagePositionPatient of each slice.
    normal : numpy.ndarray, shape (3,)
        Unit slice normal.

    Returns
    -------
    order : numpy.ndarray of int, shape (n,)
        Stable sort order (ties keep input order).
    distances : numpy.ndarray, shape (n,)
        Sorted distances along the normal (mm).
    """
    dist = np.asarray(positions, dtype=float) @ np.asarray(normal, dtype=float)
    order = np.argsort(dist, kind="stable")
    return order, dist[order]


def check_duplicate_positions(distances: np.ndarray, labels: Sequence[str] | None = None) -> None:
    """Raise ``duplicate-position`` when two sorted distances (shape (n,)) nearly coincide.

    Two slices at one position usually mean several acquisitions (echoes, time points,
    repeated scans) share one SeriesInstanceUID; radflow does not guess which one to keep.
    """
    gaps = np.diff(np.asarray(distances, dtype=float))
    dup = np.flatnonzero(gaps < DUPLICATE_POSITION_ATOL_MM)
    if dup.size:
        k = int(dup[0])
        raise SeriesGeometryError(
            f"{dup.size} duplicate slice position(s); first at sorted index {k + 1}"
            f"{_label(labels, k + 1)} (same position as index {k}{_label(labels, k)})",
            reason="duplicate-position")


def check_slice_spacing(distances: np.ndarray, rtol: float,
                        labels: Sequence[str] | None = None) -> float:
    """Check that sorted distances along the normal are evenly spaced; return the mean gap (mm).

    Parameters
    ----------
    distances : numpy.ndarray, shape (n,)
        Sorted slice distances along the normal, n >= 2.
    rtol
        Largest allowed relative deviation of any gap from the median gap.
    labels
        Optional name of each sorted slice for messages (``file 3 of 120``; never a file name).

    Raises
    ------
    SeriesGeometryError
        ``duplicate-position`` (gap < :data:`DUPLICATE_POSITION_ATOL_MM`), ``missing-slice``
        (any gap close to an integer multiple >= 2 of the median gap) or ``uneven-spacing``.
    """
    check_duplicate_positions(distances, labels)
    gaps = np.diff(np.asarray(distances, dtype=float))
    median = float(np.median(gaps))
    bad = np.flatnonzero(np.abs(gaps - median) > rtol * median)
    if bad.size:
        ratio = gaps[bad] / median
        multiple = np.round(ratio)
        missing = bad[(multiple >= 2) & (np.abs(ratio - multiple) <= MISSING_SLICE_RTOL * multiple)]
        k = int(missing[0]) if missing.size else int(bad[0])
        raise SeriesGeometryError(
            f"slice gap {gaps[k]:.4g} mm at sorted index {k + 1}{_label(labels, k + 1)}, "
            f"expected {median:.4g} mm (relative tolerance {rtol:g}; "
            f"{bad.size} uneven gap(s))",
            reason="missing-slice" if missing.size else "uneven-spacing")
    return float((distances[-1] - distances[0]) / (len(distances) - 1))


def check_in_plane_alignment(positions: np.ndarray, normal: np.ndarray, orientation_atol: float,
                             labels: Sequence[str] | None = None) -> None:
    """Check that sorted slice positions lie on one line along the normal (no gantry tilt/shear).

    Parameters
    ----------
    positions : numpy.ndarray, shape (n, 3)
        ImagePositionPatient of each slice, sorted along the normal.
    normal : numpy.ndarray, shape (3,)
        Unit slice normal.
    orientation_atol
        Tolerated sine of the angle between the stacking direction and the normal.

    Raises
    ------
    SeriesGeometryError
        ``gantry-tilt`` when a slice's in-plane offset from the first slice exceeds
        ``orientation_atol * distance + IN_PLANE_ATOL_MM``.
    """
    pos = np.asarray(positions, dtype=float)
    delta = pos - pos[0]
    along = delta @ normal
    offset = np.linalg.norm(delta - np.outer(along, normal), axis=1)
    allowed = orientation_atol * np.abs(along) + IN_PLANE_ATOL_MM
    bad = np.flatnonzero(offset > allowed)
    if bad.size:
        k = int(bad[0])
        angle = float(np.degrees(np.arctan2(offset[k], abs(along[k]))))
        raise SeriesGeometryError(
            f"slice positions are not stacked along the slice normal: sorted index {k}"
            f"{_label(labels, k)} is offset {offset[k]:.3g} mm in-plane "
            f"(tilt {angle:.2f} degrees; gantry tilt or sheared stack)", reason="gantry-tilt")


def check_series_geometry(
    positions: np.ndarray,
    orientations: np.ndarray,
    pixel_spacings: np.ndarray,
    shapes: np.ndarray,
    settings: GeometrySettings,
    *,
    labels: Sequence[str] | None = None,
    single_slice_spacing: float | None = None,
) -> SeriesGeometry:
    """The geometry check of a series; returns its :class:`SeriesGeometry`.

    Parameters
    ----------
    positions : numpy.ndarray, shape (n, 3)
        ImagePositionPatient per slice; NaN where missing.
    orientations : numpy.ndarray, shape (n, 6)
        ImageOrientationPatient per slice; NaN where missing.
    pixel_spacings : numpy.ndarray, shape (n, 2)
        PixelSpacing per slice ``(row spacing, column spacing)``; NaN where missing.
    shapes : numpy.ndarray of int, shape (n, 2)
        ``(rows, columns)`` per slice.
    settings
        Tolerances.
    labels
        Name of each input slice used in messages (``file 3 of 120``, ``file 1 of 1, frame 3``;
        never a file name, see :mod:`radflow.dicom.naming`).
    single_slice_spacing
        z spacing to report for a one-slice series (e.g. SliceThickness); default 1.0.

    Raises
    ------
    SeriesGeometryError
        With reason ``no-slices``, ``missing-geometry``, ``inconsistent-dimensions``,
        ``mixed-orientation``, ``invalid-orientation``, ``inconsistent-pixel-spacing``,
        ``invalid-pixel-spacing``, ``duplicate-position``, ``gantry-tilt``, ``missing-slice`` or
        ``uneven-spacing`` (checked in that order). With ``settings.gantry_tilt`` /
        ``settings.uneven_spacing`` = ``"resample"``, ``gantry-tilt`` / ``uneven-spacing`` are
        not raised: the returned geometry is the resampled grid and carries the
        :class:`~radflow.dicom.resample.Resampling` plan.
    """
    pos = np.asarray(positions, dtype=float).reshape(-1, 3)
    iop = np.asarray(orientations, dtype=float).reshape(-1, 6)
    pxs = np.asarray(pixel_spacings, dtype=float).reshape(-1, 2)
    dims = np.asarray(shapes, dtype=np.int64).reshape(-1, 2)
    n = pos.shape[0]
    if n == 0:
        raise SeriesGeometryError("series has no image slices", reason="no-slices")
    if not (iop.shape[0] == pxs.shape[0] == dims.shape[0] == n):
        raise ValueError("positions, orientations, pixel_spacings and shapes differ in length")
    for name, tag, arr in (("ImagePositionPatient", "(0020,0032)", pos),
                           ("ImageOrientationPatient", "(0020,0037)", iop),
                           ("PixelSpacing", "(0028,0030)", pxs)):
        missing = np.flatnonzero(~np.all(np.isfinite(arr), axis=1))
        if missing.size:
            k = int(missing[0])
            raise SeriesGeometryError(
                f"{name} {tag} missing or invalid in {missing.size} slice(s), first at input "
                f"index {k}{_label(labels, k)}", reason="missing-geometry")
    odd = np.flatnonzero(np.any(dims != dims[0], axis=1))
    if odd.size:
        k = int(odd[0])
        raise SeriesGeometryError(
            f"rows x columns {dims[k, 0]}x{dims[k, 1]} at input index {k}{_label(labels, k)}, "
            f"expected {dims[0, 0]}x{dims[0, 1]} as in index 0{_label(labels, 0)}",
            reason="inconsistent-dimensions")
    odd = np.flatnonzero(np.max(np.abs(iop - iop[0]), axis=1) > settings.orientation_atol)
    if odd.size:
        k = int(odd[0])
        raise SeriesGeometryError(
            f"ImageOrientationPatient at input index {k}{_label(labels, k)} differs from index "
            f"0{_label(labels, 0)} by more than {settings.orientation_atol:g} "
            f"({odd.size} slice(s) differ)", reason="mixed-orientation")
    direction = direction_matrix(iop[0])
    if np.any(pxs <= 0):
        raise SeriesGeometryError("PixelSpacing (0028,0030) must be positive",
                                  reason="invalid-pixel-spacing")
    odd = np.flatnonzero(np.max(np.abs(pxs - pxs[0]), axis=1)
                         > settings.slice_spacing_rtol * np.max(pxs[0]))
    if odd.size:
        k = int(odd[0])
        raise SeriesGeometryError(
            f"PixelSpacing at input index {k}{_label(labels, k)} differs from index 0",
            reason="inconsistent-pixel-spacing")
    normal = direction[:, 2]
    order, dist = sort_along_normal(pos, normal)
    sorted_labels = [labels[i] for i in order] if labels is not None else None
    spacing_xy = (float(pxs[0, 1]), float(pxs[0, 0]))
    resampling = None
    if n == 1:
        z = float(single_slice_spacing) if single_slice_spacing else 1.0
    else:
        check_duplicate_positions(dist, sorted_labels)
        repair: list[str] = []
        try:
            check_in_plane_alignment(pos[order], normal, settings.orientation_atol, sorted_labels)
        except SeriesGeometryError:
            if settings.gantry_tilt != "resample":
                raise
            repair.append("gantry-tilt")
        try:
            z = check_slice_spacing(dist, settings.slice_spacing_rtol, sorted_labels)
        except SeriesGeometryError as exc:
            if exc.reason != "uneven-spacing" or settings.uneven_spacing != "resample":
                raise
            repair.append("uneven-spacing")
        if repair:
            resampling = plan_resampling(pos[order], direction, spacing_xy, int(dims[0, 0]),
                                         int(dims[0, 1]), tuple(repair))
    origin = pos[order[0]]
    rows, cols, n_out = int(dims[0, 0]), int(dims[0, 1]), n
    if resampling is not None:
        z, rows, cols, n_out = (resampling.z_spacing, resampling.rows, resampling.cols,
                                resampling.n_slices)
        origin = (origin + resampling.grid_shift[0] * spacing_xy[0] * direction[:, 0]
                  + resampling.grid_shift[1] * spacing_xy[1] * direction[:, 1])
    return SeriesGeometry(
        order=tuple(int(i) for i in order),
        rows=rows,
        cols=cols,
        n_slices=n_out,
        spacing=(spacing_xy[0], spacing_xy[1], z),
        origin=tuple(float(v) for v in origin),  # type: ignore[arg-type]
        orientation=tuple(float(v) for v in iop[0]),
        direction=tuple(float(v) for v in direction.ravel()),
        resampling=resampling,
    )


def affine_lps(geometry: SeriesGeometry) -> np.ndarray:
    """Voxel index (x=column, y=row, z=slice) -> LPS (mm) affine, shape (4, 4)."""
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(geometry.direction).reshape(3, 3) @ np.diag(geometry.spacing)
    affine[:3, 3] = geometry.origin
    return affine


def _label(labels: Sequence[str] | None, k: int) -> str:
    return f" ({labels[k]})" if labels is not None and 0 <= k < len(labels) else ""


__all__ = [
    "DUPLICATE_POSITION_ATOL_MM",
    "IN_PLANE_ATOL_MM",
    "SeriesGeometry",
    "affine_lps",
    "check_duplicate_positions",
    "check_in_plane_alignment",
    "check_series_geometry",
    "check_slice_spacing",
    "direction_matrix",
    "slice_normal",
    "sort_along_normal",
]
