"""Table-driven tests of the series geometry check over small literal arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.dicom.geometry import (
    affine_lps,
    check_series_geometry,
    check_slice_spacing,
    direction_matrix,
    sort_along_normal,
)
from radflow.errors import SeriesGeometryError
from radflow.settings import GeometrySettings

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
C, S = math.cos(math.radians(30)), math.sin(math.radians(30))
OBLIQUE = (C, S, 0.0, 0.0, 0.0, -1.0)  # row rotated 30 degrees in the axial plane, column foot


def _check(positions, orientations=AXIAL, spacing=(0.5, 0.5), shape=(4, 4), **kwargs):
    pos = np.asarray(positions, dtype=float)
    n = pos.shape[0]
    iop = np.asarray(orientations, dtype=float)
    iop = np.tile(iop, (n, 1)) if iop.ndim == 1 else iop
    pxs = np.asarray(spacing, dtype=float)
    pxs = np.tile(pxs, (n, 1)) if pxs.ndim == 1 else pxs
    dims = np.asarray(shape)
    dims = np.tile(dims, (n, 1)) if dims.ndim == 1 else dims
    return check_series_geometry(pos, iop, pxs, dims, GeometrySettings(), **kwargs)


@pytest.mark.parametrize(("iop", "normal"), [
    (AXIAL, (0, 0, 1)),
    (CORONAL, (0, 1, 0)),
    (SAGITTAL, (-1, 0, 0)),
    (OBLIQUE, (-S, C, 0)),
])
def test_direction_matrix_columns_are_row_column_normal(iop, normal):
    d = direction_matrix(iop)
    np.testing.assert_allclose(d[:, 0], iop[:3], atol=1e-12)
    np.testing.assert_allclose(d[:, 1], iop[3:], atol=1e-12)
    np.testing.assert_allclose(d[:, 2], normal, atol=1e-12)
    np.testing.assert_allclose(d.T @ d, np.eye(3), atol=1e-12)


@pytest.mark.parametrize(("iop", "reason"), [
    ((1.0, 0.0, 0.0, 0.0, 0.5, 0.0), "invalid-orientation"),    # column not unit
    ((1.0, 0.0, 0.0, 0.6, 0.8, 0.0), "invalid-orientation"),    # not orthogonal
    ((1.0, 0.0, 0.0, 0.0, 1.0, math.nan), "missing-geometry"),
])
def test_direction_matrix_rejects_bad_orientation(iop, reason):
    with pytest.raises(SeriesGeometryError) as info:
        direction_matrix(iop)
    assert info.value.reason == reason


def test_direction_matrix_removes_rounding():
    d = direction_matrix((1.0, 0.0, 0.0, 0.0004, 0.9999999, 0.0))
    np.testing.assert_allclose(d.T @ d, np.eye(3), atol=1e-12)


def test_sort_along_normal_never_uses_input_order():
    positions = np.array([[0, 0, 6.0], [0, 0, -3.0], [0, 0, 0.0], [0, 0, 3.0]])
    order, dist = sort_along_normal(positions, np.array([0.0, 0.0, 1.0]))
    assert order.tolist() == [1, 2, 3, 0]
    assert dist.tolist() == [-3.0, 0.0, 3.0, 6.0]
    order, dist = sort_along_normal(positions, np.array([0.0, 0.0, -1.0]))  # sagittal-like flip
    assert order.tolist() == [0, 3, 2, 1]


@pytest.mark.parametrize(("distances", "reason"), [
    ([0.0, 3.0, 6.0, 12.0, 15.0], "missing-slice"),            # one slice missing (gap 2x)
    ([0.0, 3.0, 6.0, 15.0, 18.0, 21.0], "missing-slice"),      # two slices missing (gap 3x)
    ([0.0, 3.0, 6.0, 10.5, 13.5], "uneven-spacing"),        # gap 1.5x
    ([0.0, 3.0, 6.1, 9.0, 12.0], "uneven-spacing"),         # 3 % off
    ([0.0, 3.0, 3.0, 6.0], "duplicate-position"),
    ([0.0, 3.0, 3.0005, 6.0], "duplicate-position"),           # within 1e-3 mm
])
def test_slice_spacing_failures(distances, reason):
    with pytest.raises(SeriesGeometryError) as info:
        check_slice_spacing(np.array(distances), rtol=0.01)
    assert info.value.reason == reason


def test_slice_spacing_message_names_gap_index_and_expected():
    with pytest.raises(SeriesGeometryError) as info:
        check_slice_spacing(np.array([0.0, 3.0, 6.0, 12.0, 15.0]), rtol=0.01,
                            labels=[f"file {k} of 5" for k in range(1, 6)])
    message = str(info.value)
    assert "slice gap 6 mm at sorted index 3 (file 4 of 5), expected 3 mm" in message


def test_slice_spacing_within_tolerance_returns_mean_gap():
    assert check_slice_spacing(np.array([0.0, 3.0, 6.02, 9.0]), rtol=0.01) == pytest.approx(3.0)


@pytest.mark.parametrize(("case", "reason"), [
    ({"positions": [[0, 0, 0], [0, 0, math.nan], [0, 0, 2]]}, "missing-geometry"),
    ({"positions": [[0, 0, 0], [0, 0, 1], [0, 0, 2]],
      "orientations": [AXIAL, (1, 0, 0, 0, 1, math.nan), AXIAL]}, "missing-geometry"),
    ({"positions": [[0, 0, 0], [0, 0, 1], [0, 0, 2]],
      "spacing": [(0.5, 0.5), (math.nan, 0.5), (0.5, 0.5)]}, "missing-geometry"),
    ({"positions": [[0, 0, 0], [0, 0, 1], [0, 0, 2]],
      "shape": [(4, 4), (4, 5), (4, 4)]}, "inconsistent-dimensions"),
    ({"positions": [[0, 0, 0], [0, 0, 1], [0, 0, 2]],
      "orientations": [AXIAL, AXIAL, CORONAL]}, "mixed-orientation"),
    ({"positions": [[0, 0, 0], [0, 0, 1], [0, 0, 2]],
      "orientations": [AXIAL, (1, 0, 0, 0, 1, 0.001), AXIAL]}, "mixed-orientation"),
    ({"positions": [[0, 0, 0], [0, 0, 1], [0, 0, 2]],
      "orientations": (1, 0, 0, 0, 0.9, 0)}, "invalid-orientation"),
    ({"positions": [[0, 0, 0], [0, 0, 1], [0, 0, 2]],
      "spacing": [(0.5, 0.5), (0.5, 0.6), (0.5, 0.5)]}, "inconsistent-pixel-spacing"),
    ({"positions": [[0, 0, 0], [0, 0, 1], [0, 0, 2]], "spacing": (0.0, 0.5)},
     "invalid-pixel-spacing"),
    ({"positions": [[0, 0, 0], [0, 0, 2], [0, 0, 2], [0, 0, 4]]}, "duplicate-position"),
    ({"positions": [[0, 0, 0], [0, 0.25, 1], [0, 0.5, 2], [0, 0.75, 3]]}, "gantry-tilt"),
    ({"positions": [[0, 0, 0], [0, 0, 1], [0, 0, 3], [0, 0, 4]]}, "missing-slice"),
    ({"positions": [[0, 0, 0], [0, 0, 1], [0, 0, 2.5], [0, 0, 3.5]]}, "uneven-spacing"),
    ({"positions": np.zeros((0, 3))}, "no-slices"),
])
def test_series_geometry_failures(case, reason):
    with pytest.raises(SeriesGeometryError) as info:
        _check(**case)
    assert info.value.reason == reason


def test_series_geometry_sorted_and_summarised():
    # shuffled input order; pixel spacing (row 0.8, column 0.5) -> spacing x 0.5, y 0.8
    positions = [[10, 20, 7.5], [10, 20, 0.0], [10, 20, 5.0], [10, 20, 2.5]]
    geometry = _check(positions, spacing=(0.8, 0.5), shape=(3, 5))
    assert geometry.order == (1, 3, 2, 0)
    assert geometry.spacing == pytest.approx((0.5, 0.8, 2.5))
    assert geometry.origin == (10.0, 20.0, 0.0)
    assert (geometry.rows, geometry.cols, geometry.n_slices) == (3, 5, 4)
    assert geometry.direction == pytest.approx((1, 0, 0, 0, 1, 0, 0, 0, 1))


def test_series_geometry_tolerates_ipp_rounding_and_small_jitter():
    positions = [[0, 0, 0.0], [0.004, -0.003, 3.01], [0, 0.002, 5.99], [0.001, 0, 9.0]]
    geometry = _check(positions)
    assert geometry.spacing[2] == pytest.approx(3.0)


def test_series_geometry_single_slice_uses_fallback_spacing():
    assert _check([[0, 0, 0]]).spacing[2] == 1.0
    assert _check([[0, 0, 0]], single_slice_spacing=2.5).spacing[2] == 2.5


@pytest.mark.parametrize("iop", [AXIAL, CORONAL, SAGITTAL, OBLIQUE])
def test_affine_matches_simpleitk_physical_points(iop):
    normal = direction_matrix(iop)[:, 2]
    origin = np.array([-12.5, 30.0, 101.0])
    positions = [origin + k * 2.0 * normal for k in (2, 0, 1)]
    geometry = _check(positions, orientations=iop, spacing=(0.8, 0.5), shape=(3, 5))
    image = sitk.Image(geometry.cols, geometry.rows, geometry.n_slices, sitk.sitkFloat32)
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    affine = affine_lps(geometry)
    for index in [(0, 0, 0), (4, 0, 0), (0, 2, 0), (4, 2, 2), (1, 1, 1)]:
        expected = affine @ np.array([*index, 1.0])
        np.testing.assert_allclose(image.TransformIndexToPhysicalPoint(index), expected[:3],
                                   atol=1e-9)
    # voxel (x=i, y=j, z=k) sits at IPP_k + i * column spacing * row_dir + j * row spacing * col_dir
    point = np.array(image.TransformIndexToPhysicalPoint((4, 2, 1)))
    expected = positions[2] + 4 * 0.5 * np.array(iop[:3]) + 2 * 0.8 * np.array(iop[3:])
    np.testing.assert_allclose(point, expected, atol=1e-9)
