"""4-D split planning, resampling plans and character-set correction, on small literal inputs."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset

from radflow.dicom.charset import charset_warnings, correct_charset
from radflow.dicom.dimensions import FrameDimensions as D
from radflow.dicom.dimensions import plan_split
from radflow.dicom.resample import plan_resampling, resample_stack
from radflow.errors import DicomError

P = [0, 1, 2]   # three positions


@pytest.mark.parametrize(("positions", "dims", "axes", "groups"), [
    # two echoes by EchoNumbers
    (P * 2, [D(echo_number=1)] * 3 + [D(echo_number=2)] * 3, ("echo",),
     [("_e1", (0, 1, 2)), ("_e2", (3, 4, 5))]),
    # echo times only: ranked
    (P * 2, [D(echo_time=80.0)] * 3 + [D(echo_time=9.5)] * 3, ("echo",),
     [("_e1", (3, 4, 5)), ("_e2", (0, 1, 2))]),
    # b-values that round to distinct integers, and a fractional pair that does not
    (P * 2, [D(b_value=0.0)] * 3 + [D(b_value=1000.0)] * 3, ("b-value",),
     [("_b0", (0, 1, 2)), ("_b1000", (3, 4, 5))]),
    (P * 2, [D(b_value=0.2)] * 3 + [D(b_value=0.4)] * 3, ("b-value",),
     [("_b0p2", (0, 1, 2)), ("_b0p4", (3, 4, 5))]),
    # echo varies together with time (each echo one time point): echo alone suffices
    (P * 2, [D(echo_number=1, trigger_time=5.0)] * 3 + [D(echo_number=2, trigger_time=9.0)] * 3,
     ("echo",), [("_e1", (0, 1, 2)), ("_e2", (3, 4, 5))]),
    # two echoes at two time points: both needed
    (P * 4, [D(echo_number=e, temporal_position=t) for e, t in
             [(1, 1)] * 3 + [(2, 1)] * 3 + [(1, 2)] * 3 + [(2, 2)] * 3],
     ("echo", "time"), [("_e1_t01", (0, 1, 2)), ("_e1_t02", (6, 7, 8)),
                        ("_e2_t01", (3, 4, 5)), ("_e2_t02", (9, 10, 11))]),
    # a time series of one slice position: groups of one image are accepted
    ([0, 0, 0], [D(acquisition_number=a) for a in (12, 11, 10)], ("acquisition",),
     [("_a01", (2,)), ("_a02", (1,)), ("_a03", (0,))]),
])
def test_plan_split(positions, dims, axes, groups):
    plan = plan_split(positions, dims)
    assert plan is not None
    assert plan.axes == axes
    assert list(plan.groups) == groups


def test_plan_split_nothing_varies():
    assert plan_split(P * 2, [D(echo_number=1)] * 6) is None
    # an attribute missing on some images cannot split (the duplicates are then compared)
    assert plan_split(P * 2, [D(echo_number=1)] * 3 + [D(echo_number=2)] * 2 + [D()]) is None


@pytest.mark.parametrize(("positions", "dims"), [
    # b = 800 twice per position (two gradient directions): no split separates them
    (P * 3, [D(b_value=0.0)] * 3 + [D(b_value=800.0)] * 6),
    # trigger time differs on every image: one group per image is not a split
    ([0, 0, 1, 1, 2, 2], [D(trigger_time=float(t)) for t in range(6)]),
])
def test_plan_split_ambiguous(positions, dims):
    with pytest.raises(DicomError) as info:
        plan_split(positions, dims)
    assert info.value.reason == "ambiguous-split"


AXIAL = np.eye(3)


def test_resampling_plan_uneven_keeps_ends_and_grid():
    positions = np.array([[0, 0, z] for z in (0.0, 2.0, 4.0, 7.0, 8.0)])
    plan = plan_resampling(positions, AXIAL, (0.5, 0.5), 4, 6, ("uneven-spacing",))
    assert (plan.rows, plan.cols, plan.grid_shift) == (4, 6, (0, 0))
    assert plan.n_slices == 5 and plan.z_spacing == pytest.approx(2.0)
    stack = np.arange(5 * 4 * 6, dtype=float).reshape(5, 4, 6)
    out = resample_stack(stack, plan, fill_value=-1.0)
    np.testing.assert_array_equal(out[[0, 1, 2, 4]], stack[[0, 1, 2, 4]])  # on input slices
    np.testing.assert_allclose(out[3], stack[2] + (stack[3] - stack[2]) * 2 / 3)  # z = 6


def test_resampling_plan_tilt_grows_grid_by_whole_voxels():
    # each slice 0.75 voxel further along the columns direction (-x): grid grows 2 columns left
    positions = np.array([[-0.75 * 0.5 * k, 0, 2.0 * k] for k in range(3)])
    plan = plan_resampling(positions, AXIAL, (0.5, 0.5), 4, 6, ("gantry-tilt",))
    assert plan.grid_shift == (-2, 0) and (plan.rows, plan.cols) == (4, 8)
    assert plan.tilt_degrees == pytest.approx(np.degrees(np.arctan2(0.75, 4.0)))
    stack = np.arange(3 * 4 * 6, dtype=float).reshape(3, 4, 6)
    out = resample_stack(stack, plan, fill_value=-1.0)
    np.testing.assert_array_equal(out[0][:, 2:], stack[0])      # slice 0 moved by 2 voxels
    np.testing.assert_array_equal(out[0][:, :2], -1.0)          # nothing there: fill value
    # slice 2 starts 1.5 voxels left of slice 0, i.e. at output column 0.5: output column i
    # lies halfway between its input columns i - 1 and i
    np.testing.assert_allclose(out[2][:, 1:6], (stack[2][:, :-1] + stack[2][:, 1:]) / 2)


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # the test writes "UTF-8"
@pytest.mark.parametrize(("value", "fixed", "codes"), [
    ("ISO_IR 149", "ISO 2022 IR 149", ("charset-corrected",)),
    ("UTF-8", "ISO_IR 192", ("charset-corrected",)),
    ("ISO_IR 192", "ISO_IR 192", ()),
    (["", "ISO 2022 IR 149"], ["", "ISO 2022 IR 149"], ()),
    ("ISO_IR 999", "ISO_IR 999", ("charset-unknown",)),
])
def test_correct_charset(value, fixed, codes):
    ds = Dataset()
    ds.SpecificCharacterSet = value
    ds.set_original_encoding(False, True, "iso8859")
    assert correct_charset(ds) == codes
    assert ds.SpecificCharacterSet == fixed


def test_charset_warnings_map_to_codes():
    class W:
        def __init__(self, text):
            self.message = text

    caught = [W("Failed to decode byte string with encodings: UTF8 - using replacement "
                "characters in decoded string"), W("Unknown encoding 'X' - using default"),
              W("something else")]
    assert charset_warnings(caught) == ("charset-decode-error", "charset-unknown")
