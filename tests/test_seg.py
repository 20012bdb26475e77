"""DICOM SEG: highdicom's test files (binary, fractional, overlapping) and written fixtures."""

from __future__ import annotations

import shutil

import highdicom as hd
import numpy as np
import pydicom
import pytest
from mask_fixtures import write_ct

from radflow.crawl import crawl
from radflow.demo.synthetic_masks import write_seg
from radflow.dicom.grid import Grid
from radflow.dicom.headers import read_header
from radflow.dicom.seg import outside_problem, read_seg_header, seg_masks
from radflow.dicom.volume import read_series
from radflow.errors import DicomError, PairingError
from radflow.settings import CrawlSettings, GeometrySettings

KEY = b"0123456789abcdef0123456789abcdef"
CT2 = "source_ct_series_pydicom_CT2"
#: The three CT2 slices at z = 103.02, 104.27, 105.52 (17106 at z = -99.48 is 162 slices away).
REGULAR = ("17136", "17166", "17196")


@pytest.fixture(scope="module")
def hd_data(testdata):
    return testdata / "highdicom_seg"


@pytest.fixture(scope="module")
def ct_grid(hd_data) -> tuple[Grid, list[str]]:
    """Grid of the regular part of the CT2 series and its SOPInstanceUIDs in slice order."""
    files = [hd_data / CT2 / f for f in REGULAR]
    image = read_series(files, GeometrySettings()).image
    uids = {pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]:
            pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files}
    return Grid.from_image(image), [uids[z] for z in sorted(uids)]


def _reference(path, uids: list[str], segment: int) -> np.ndarray:
    """highdicom's own per-source-instance frames: the oracle independent of our geometry."""
    seg = hd.seg.segread(path)
    return np.stack([seg.get_pixels_by_source_instance(
        [u], segment_numbers=[segment], rescale_fractional=True,
        assert_missing_frames_are_empty=False)[0, ..., 0] for u in uids])


@pytest.mark.testdata
@pytest.mark.parametrize("name", ["seg_image_ct_binary", "seg_image_ct_binary_fractional"])
def test_binary_segs_land_on_the_referenced_slices(hd_data, ct_grid, name) -> None:
    grid, uids = ct_grid
    path = hd_data / "seg" / f"{name}.dcm"
    masks = seg_masks(path, grid, [1])
    expected = _reference(path, uids, 1) >= 0.5
    np.testing.assert_array_equal(masks[1].mask, expected)
    assert masks[1].mask.sum() == 638 and all(masks[1].mask[k].any() for k in range(3))
    header = read_seg_header(read_header(path)[0], "s-test")
    assert [(s.number, s.name) for s in header.segments] == [(1, "first segment")]


@pytest.mark.testdata
@pytest.mark.parametrize("threshold", [0.5, 0.25, 0.6])
def test_fractional_threshold(hd_data, ct_grid, threshold) -> None:
    grid, uids = ct_grid
    path = hd_data / "seg" / "seg_image_ct_true_fractional.dcm"
    fractions = _reference(path, uids, 1)
    assert set(np.round(np.unique(fractions) * 255)) == {0, 64, 128}
    mask = seg_masks(path, grid, [1], threshold=threshold)[1].mask
    np.testing.assert_array_equal(mask, fractions >= threshold)
    assert mask.sum() == {0.5: 638, 0.25: 661, 0.6: 0}[threshold]


@pytest.mark.testdata
def test_overlapping_segments_each_keep_their_voxels(hd_data, ct_grid) -> None:
    grid, uids = ct_grid
    path = hd_data / "seg" / "seg_image_ct_binary_overlap.dcm"
    header = read_seg_header(read_header(path)[0], "s-test")
    assert [(s.number, s.name, s.n_frames) for s in header.segments] == [
        (1, "first segment", 4), (2, "second segment", 4)]
    masks = seg_masks(path, grid, [1, 2])
    first, second = masks[1].mask, masks[2].mask
    assert (first & second).any(), "the two segments overlap"
    for label, raster in masks.items():
        np.testing.assert_array_equal(raster.mask, _reference(path, uids, label) > 0)
    # the 4th frame of each segment is on the slice at z = -99.48, outside this grid
    assert {k: r.qc["voxels-outside-image"] for k, r in masks.items()} == {1: 16, 2: 4}
    with pytest.raises(PairingError) as info:
        outside_problem(masks[1], "fail", "SEG s-test, segment 1")
    assert info.value.reason == "roi-outside-image"
    outside_problem(masks[2], "skip", "SEG s-test, segment 2")
    assert masks[2].qc == {"voxels-outside-image-skipped": 4}


@pytest.mark.testdata
def test_single_frame_seg_on_its_single_slice(hd_data) -> None:
    image = read_series([hd_data / "ct_image.dcm"], GeometrySettings(min_slices=1)).image
    path = hd_data / "seg" / "seg_image_ct_binary_single_frame.dcm"
    mask = seg_masks(path, Grid.from_image(image), [1])[1].mask
    uid = pydicom.dcmread(hd_data / "ct_image.dcm", stop_before_pixels=True).SOPInstanceUID
    np.testing.assert_array_equal(mask, _reference(path, [uid], 1) > 0)
    assert mask.sum() == 1832


@pytest.mark.testdata
def test_seg_on_a_grid_it_does_not_fit_is_a_grid_mismatch(hd_data, ct_grid) -> None:
    with pytest.raises(PairingError) as info:
        seg_masks(hd_data / "seg" / "seg_image_ct_binary_single_frame.dcm", ct_grid[0], [1])
    assert info.value.reason == "grid-mismatch"


@pytest.mark.testdata
def test_crawl_of_the_highdicom_folder_gives_clear_reasons(hd_data, tmp_path) -> None:
    """As shipped the CT2 series misses 161 slices: every SEG pair says so, nothing crashes."""
    result = crawl(hd_data, None, KEY, CrawlSettings())
    plans = result.pairs.set_index("mask_key")
    masks = result.series[result.series["role"] == "mask"]
    assert len(masks) == 5 and set(masks["status"]) == {"ok"}
    assert set(result.pairs["pairing_reason"]) == {"referenced-series"}
    ct2 = result.series[result.series["n_instances"] == 4]["series_key"].item()
    on_ct2 = plans[plans["image_key"] == ct2]
    assert set(on_ct2["status"]) == {"failed:image-missing-slice"} and len(on_ct2) == 5
    # the single-slice CT is excluded (too few slices): its SEG pair says so
    assert set(plans[plans["image_key"] != ct2]["status"]) == {"failed:image-too-few-slices"}


@pytest.mark.testdata
def test_crawl_of_the_regular_slices_pairs_by_reference(hd_data, tmp_path) -> None:
    for f in REGULAR:
        shutil.copy(hd_data / CT2 / f, tmp_path / f)
    for name in ("seg_image_ct_binary", "seg_image_ct_binary_overlap"):
        shutil.copy(hd_data / "seg" / f"{name}.dcm", tmp_path / f"{name}.dcm")
    result = crawl(tmp_path, None, KEY, CrawlSettings())
    by_roi = {(p["mask_key"], p["label"]): p for p in result.pairs.to_dict("records")}
    statuses = sorted(p["status"] for p in by_roi.values())
    # the overlap SEG's frames are drawn on 17106, which is not here: never paired silently
    assert statuses == ["failed:missing-referenced-images"] * 2 + ["ok"]
    assert {p["roi"] for p in by_roi.values()} == {"first segment", "second segment"}


# --- fixture-written SEGs -----------------------------------------------------------------


@pytest.mark.parametrize("oblique", [False, True])
def test_written_seg_on_a_series_covering_part_of_it(tmp_path, oblique) -> None:
    series = write_ct(tmp_path / "ct", "seg", oblique=oblique)
    first = np.zeros(series.grid.shape, bool)
    first[1:3, 2:6, 3:8] = True
    second = np.zeros(series.grid.shape, bool)
    second[2:4, 4:9, 1:5] = True  # overlaps the first on slice 2
    path = write_seg(tmp_path / "seg.dcm", series.headers(),
                     [(1, "tumour", first), (2, "oedema", second)], series_uid="1.2.3.99")
    assert pydicom.dcmread(path).NumberOfFrames == 4  # empty frames are omitted
    masks = seg_masks(path, series.grid, [1, 2])
    np.testing.assert_array_equal(masks[1].mask, first)
    np.testing.assert_array_equal(masks[2].mask, second)
    assert not masks[1].qc and not masks[2].qc


def test_fractional_seg_threshold_on_a_written_seg(tmp_path) -> None:
    series = write_ct(tmp_path / "ct", "frac")
    fraction = np.zeros(series.grid.shape, np.float32)
    fraction[2, 3:6, 3:6] = 0.3
    fraction[2, 4, 4] = 0.9
    path = write_seg(tmp_path / "seg.dcm", series.headers(), [(1, "soft", fraction)],
                     series_uid="1.2.3.98", fractional=True)
    assert seg_masks(path, series.grid, [1])[1].mask.sum() == 1
    assert seg_masks(path, series.grid, [1], threshold=0.25)[1].mask.sum() == 9


def test_seg_on_a_shifted_grid_is_refused(tmp_path) -> None:
    series = write_ct(tmp_path / "ct", "shift")
    mask = np.zeros(series.grid.shape, bool)
    mask[1, 2:4, 2:4] = True
    path = write_seg(tmp_path / "seg.dcm", series.headers(), [(1, "x", mask)],
                     series_uid="1.2.3.97")
    g = series.grid
    half_voxel = Grid(g.size, g.spacing, (g.origin[0] + 0.4, g.origin[1], g.origin[2]),
                      g.direction)
    with pytest.raises(PairingError) as info:
        seg_masks(path, half_voxel, [1])
    assert info.value.reason == "grid-mismatch"
    shifted = Grid(g.size, g.spacing, (g.origin[0] + 2 * g.spacing[0], g.origin[1],
                                       g.origin[2]), g.direction)
    moved = seg_masks(path, shifted, [1])[1].mask  # a whole-voxel shift is exact
    np.testing.assert_array_equal(moved[1, 2:4, 0:2], True)
    assert moved.sum() == 4


def test_malformed_seg_header(tmp_path) -> None:
    series = write_ct(tmp_path / "ct", "bad")
    mask = np.zeros(series.grid.shape, bool)
    mask[1, 2:4, 2:4] = True
    ds = pydicom.dcmread(write_seg(tmp_path / "seg.dcm", series.headers(), [(1, "x", mask)],
                                   series_uid="1.2.3.96"))
    ds.SegmentSequence.append(ds.SegmentSequence[0])
    with pytest.raises(DicomError) as info:
        read_seg_header(ds, "s-bad")
    assert info.value.reason == "invalid-seg" and "s-bad" in str(info.value)


def test_unreadable_seg_message_names_no_folder(tmp_path) -> None:
    series = write_ct(tmp_path / "ct", "gone")
    folder = tmp_path / "Doe_Jane"
    folder.mkdir()
    with pytest.raises(DicomError) as info:
        seg_masks(folder / "seg.dcm", series.grid, [1], name="s-gone")  # no such file
    assert info.value.reason == "invalid-seg" and "s-gone" in str(info.value)
    assert "Doe_Jane" not in str(info.value) and "FileNotFoundError" in str(info.value)
