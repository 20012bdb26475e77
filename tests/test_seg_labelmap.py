"""Label Map Segmentation Storage (SEG with SegmentationType LABELMAP): read, crawled as a mask
object, converted and paired exactly like the BINARY SEG of the same segments."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from mask_fixtures import Series, convert_and_pair, dice_on_same_grid, write_ct
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from radflow.crawl import crawl
from radflow.demo.synthetic import derived_uid
from radflow.demo.synthetic_masks import write_labelmap_seg, write_seg
from radflow.dicom.headers import read_header
from radflow.dicom.index import find_candidate_files, index_files
from radflow.dicom.references import mask_kind
from radflow.dicom.seg import (
    LABELMAP_SEG_SOP_CLASS,
    SEG_SOP_CLASS,
    read_seg_header,
    seg_masks,
)
from radflow.dicom.sopclass import non_image_message, non_image_reason, sop_class_name
from radflow.errors import DicomError
from radflow.io.nifti import read_image
from radflow.settings import CrawlSettings

KEY = b"0123456789abcdef0123456789abcdef"
SHAPE = (7, 12, 10)  # slices, rows, columns


def _segments(shape: tuple[int, int, int], sparse: bool) -> dict[int, tuple[str, np.ndarray]]:
    """Two segments that touch but do not overlap. ``sparse``: only slices 1, 2 and 5 hold a
    segment, so the label map's frames cover part of the series with a gap between them."""
    first = np.zeros(shape, bool)
    second = np.zeros(shape, bool)
    if sparse:
        first[1, 2:6, 3:8] = True
        first[5, 0:3, 0:2] = True  # touches the series' edge
        second[2, 4:9, 1:5] = True
    else:
        first[1:4, 2:6, 3:8] = True
        second[2:6, 6:11, 1:5] = True
        second[3, 2:6, 0:3] = True
    assert not (first & second).any()
    return {1: ("tumour", first), 2: ("node", second)}


def _label_array(segments: dict[int, tuple[str, np.ndarray]]) -> np.ndarray:
    labels = np.zeros(next(iter(segments.values()))[1].shape, np.uint8)
    for number, (_, mask) in segments.items():
        labels[mask] = number
    return labels


def _write_pair_of_segs(folder: Path, series: Series, segments, *, binary: bool = True,
                        labelmap: bool = True) -> dict[str, Path]:
    """The BINARY SEG and the LABELMAP SEG of the same segments (different series)."""
    out = {}
    if binary:
        out["binary"] = write_seg(folder / "binary.dcm", series.headers(),
                                  [(n, name, m) for n, (name, m) in segments.items()],
                                  series_uid=derived_uid(series.uid, "81"))
    if labelmap:
        out["labelmap"] = write_labelmap_seg(
            folder / "labelmap.dcm", series.headers(), _label_array(segments),
            [(n, name) for n, (name, _) in segments.items()],
            series_uid=derived_uid(series.uid, "82"))
    return out


# --- reading ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sparse", "oblique"), [(False, False), (True, False), (True, True)])
def test_labelmap_seg_gives_the_masks_of_its_binary_twin(tmp_path, sparse, oblique) -> None:
    series = write_ct(tmp_path / "ct", "lm", SHAPE, oblique=oblique)
    segments = _segments(series.grid.shape, sparse)
    paths = _write_pair_of_segs(tmp_path, series, segments)
    ds = pydicom.dcmread(paths["labelmap"])
    assert (ds.SOPClassUID, ds.SegmentationType) == (LABELMAP_SEG_SOP_CLASS, "LABELMAP")
    assert pydicom.dcmread(paths["binary"]).SOPClassUID == SEG_SOP_CLASS
    # one frame per slice holding a segment (empty frames omitted): 3 of 7 when sparse
    occupied = int(_label_array(segments).any(axis=(1, 2)).sum())
    assert ds.NumberOfFrames == occupied == (3 if sparse else 5)
    labelmap = seg_masks(paths["labelmap"], series.grid, [1, 2])
    binary = seg_masks(paths["binary"], series.grid, [1, 2])
    for number, (_, expected) in segments.items():
        np.testing.assert_array_equal(labelmap[number].mask, expected)
        np.testing.assert_array_equal(labelmap[number].mask, binary[number].mask)
        assert not labelmap[number].qc


def test_labelmap_header_skips_the_background_and_counts_every_frame(tmp_path) -> None:
    series = write_ct(tmp_path / "ct", "hdr", SHAPE)
    segments = _segments(series.grid.shape, sparse=True)
    path = _write_pair_of_segs(tmp_path, series, segments, binary=False)["labelmap"]
    ds, _ = read_header(path)
    assert [int(s.SegmentNumber) for s in ds.SegmentSequence] == [0, 1, 2]  # highdicom's
    header = read_seg_header(ds, "s-lm")
    assert header.segmentation_type == "LABELMAP"
    # a label-map frame may hold any segment: each segment counts all 3 frames and their images
    assert [(s.number, s.name, s.n_frames) for s in header.segments] == [
        (1, "tumour", 3), (2, "node", 3)]
    on_slices = {series.sop_uids[k] for k in (1, 2, 5)}
    assert all(s.image_refs == on_slices for s in header.segments)
    assert header.referenced_series == (series.uid,)
    assert header.corners.shape == (4 * 3, 3)


def test_labelmap_with_sparse_segment_numbers(tmp_path) -> None:
    """LABELMAP segment numbers need not be consecutive; each mask holds only its number."""
    series = write_ct(tmp_path / "ct", "gaps", SHAPE)
    labels = np.zeros(series.grid.shape, np.uint8)
    labels[2, 1:4, 1:4] = 3
    labels[4, 5:9, 2:7] = 7
    path = write_labelmap_seg(tmp_path / "lm.dcm", series.headers(), labels,
                              [(3, "liver"), (7, "spleen")],
                              series_uid=derived_uid(series.uid, "83"))
    header = read_seg_header(read_header(path)[0], "s-gaps")
    assert [s.number for s in header.segments] == [3, 7]
    masks = seg_masks(path, series.grid, [3, 7])
    for number in (3, 7):
        np.testing.assert_array_equal(masks[number].mask, labels == number)
    with pytest.raises(DicomError) as info:  # never an empty mask for a number not described
        seg_masks(path, series.grid, [5], name="s-gaps")
    assert info.value.reason == "invalid-seg" and "s-gaps" in str(info.value)


def test_segment_zero_is_refused_outside_label_maps(tmp_path) -> None:
    series = write_ct(tmp_path / "ct", "zero", SHAPE)
    mask = np.zeros(series.grid.shape, bool)
    mask[2, 2:4, 2:4] = True
    ds = pydicom.dcmread(write_seg(tmp_path / "seg.dcm", series.headers(), [(1, "x", mask)],
                                   series_uid=derived_uid(series.uid, "84")))
    ds.SegmentSequence[0].SegmentNumber = 0
    with pytest.raises(DicomError) as info:
        read_seg_header(ds, "s-zero")
    assert info.value.reason == "invalid-seg"


# --- crawl: a mask object, never "excluded" ------------------------------------------------------


def test_crawl_pairs_a_labelmap_seg_by_reference_and_logs_a_mask_object(tmp_path,
                                                                         caplog) -> None:
    series = write_ct(tmp_path / "in" / "ct", "crawl", SHAPE)
    segments = _segments(series.grid.shape, sparse=True)
    _write_pair_of_segs(tmp_path / "in" / "seg", series, segments, binary=False)
    assert mask_kind(LABELMAP_SEG_SOP_CLASS) == "seg"
    with caplog.at_level(logging.INFO, logger="radflow"):
        result = crawl(tmp_path / "in", None, KEY, CrawlSettings())
    masks = result.series[result.series["role"] == "mask"]
    assert masks[["modality", "status", "n_instances"]].values.tolist() == [["SEG", "ok", 1]]
    assert set(result.series["status"]) == {"ok"}  # the CT and the mask object
    pairs = result.pairs.sort_values("label")
    assert pairs[["label", "roi", "status", "pairing_reason"]].values.tolist() == [
        [1, "tumour", "ok", "referenced-series"], [2, "node", "ok", "referenced-series"]]
    assert list(result.rois.sort_values("label")["roi"]) == ["tumour", "node"]  # no background
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "excluded" not in text and "non-image" not in text
    assert "mask object(s) (SEG)" in text and "mask object (SEG) " in text


def test_index_record_of_a_labelmap_seg_series(tmp_path, caplog) -> None:
    series = write_ct(tmp_path / "ct", "idx", SHAPE)
    segments = _segments(series.grid.shape, sparse=False)
    _write_pair_of_segs(tmp_path / "seg", series, segments)
    with caplog.at_level(logging.INFO, logger="radflow"):
        records = index_files(find_candidate_files(tmp_path / "seg"), CrawlSettings())
    assert sorted(r.sop_class_uid for r in records) == [SEG_SOP_CLASS, LABELMAP_SEG_SOP_CLASS]
    # the index's record only says "no image"; the crawl reads it as a mask object
    assert {(r.status, r.message) for r in records} == {
        ("excluded:non-image-seg", "mask object(s) (SEG)")}
    assert not any("excluded" in r.getMessage() for r in caplog.records)


def test_non_image_message_names_the_class_or_says_it_is_unknown(tmp_path) -> None:
    assert sop_class_name(LABELMAP_SEG_SOP_CLASS) == "Label Map Segmentation Storage"
    assert non_image_reason("", LABELMAP_SEG_SOP_CLASS) == "non-image-label-map-segmentation"
    assert (non_image_message(LABELMAP_SEG_SOP_CLASS)
            == "not an image (SOP class 'Label Map Segmentation Storage')")
    private = "1.3.12.2.1107.5.9.1"  # a Siemens private class
    assert non_image_message(private) == "not an image (a private or unknown SOP class)"
    path = _non_image_file(tmp_path / "csa.dcm", private, "OT")
    (record,) = index_files([path], CrawlSettings())
    assert record.status == "excluded:non-image-unknown-sop-class"
    assert record.message == "not an image (a private or unknown SOP class)"
    assert private not in record.message


def _non_image_file(path: Path, sop_class: str, modality: str) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, "1.2.3.4.5.6"
    ds.SeriesInstanceUID, ds.StudyInstanceUID = "1.2.3.4.5", "1.2.3.4"
    ds.PatientID, ds.Modality = "PID-X", modality
    ds.save_as(path, enforce_file_format=True)
    return path


# --- duplicates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["same-series", "other-series"])
def test_one_sop_instance_with_two_contents_is_a_conflict(tmp_path, where) -> None:
    series = write_ct(tmp_path / "in" / "ct", "dup", SHAPE)
    segments = _segments(series.grid.shape, sparse=True)
    path = _write_pair_of_segs(tmp_path / "in" / "a", series, segments, binary=False)["labelmap"]
    shutil.copy(path, tmp_path / "in" / "a" / "copy.dcm")  # an identical copy: read once
    other = _label_array(segments)
    other[3, 0:2, 0:2] = 2
    second = write_labelmap_seg(tmp_path / "in" / "b" / "labelmap.dcm", series.headers(), other,
                                [(1, "tumour"), (2, "node")],
                                series_uid=derived_uid(series.uid, "82"))
    assert pydicom.dcmread(second).SOPInstanceUID == pydicom.dcmread(path).SOPInstanceUID
    if where == "other-series":  # the same SOP instance re-filed under another series
        ds = pydicom.dcmread(second)
        ds.SeriesInstanceUID = derived_uid(series.uid, "99")
        ds.save_as(second)
    result = crawl(tmp_path / "in", None, KEY, CrawlSettings())
    masks = result.series[result.series["role"] == "mask"]
    assert masks[["status", "n_instances"]].values.tolist() == [
        ["failed:conflicting-duplicates", 3]]
    assert result.pairs.empty


def test_identical_copies_of_a_labelmap_seg_are_one_object(tmp_path) -> None:
    series = write_ct(tmp_path / "in" / "ct", "copy", SHAPE)
    segments = _segments(series.grid.shape, sparse=True)
    path = _write_pair_of_segs(tmp_path / "in" / "a", series, segments, binary=False)["labelmap"]
    (tmp_path / "in" / "b").mkdir()
    shutil.copy(path, tmp_path / "in" / "b" / "same.dcm")
    result = crawl(tmp_path / "in", None, KEY, CrawlSettings())
    masks = result.series[result.series["role"] == "mask"]
    assert masks[["status", "n_instances"]].values.tolist() == [["ok", 2]]
    assert list(result.pairs["status"]) == ["ok", "ok"]


# --- end to end: crawl, convert and pair like the BINARY SEG ------------------------------------


@pytest.mark.parametrize("sparse", [False, True])
def test_labelmap_and_binary_segs_pair_with_identical_masks(tmp_path, sparse) -> None:
    """Two cohorts with one CT: one holds the BINARY SEG, one the LABELMAP SEG of the same
    segments. Every pair is ok, and the mask NIfTIs are voxel-identical (Dice 1.0) and equal
    the segments drawn."""
    series = write_ct(tmp_path / "ct", "e2e", SHAPE)
    segments = _segments(series.grid.shape, sparse)
    segs = _write_pair_of_segs(tmp_path / "segs", series, segments)
    records = {}
    for kind, seg in segs.items():
        cohort = tmp_path / kind / "in"
        shutil.copytree(tmp_path / "ct", cohort / "ct")
        shutil.copy(seg, cohort / "seg.dcm")
        result = crawl(cohort, None, KEY, CrawlSettings())
        assert set(result.pairs["pairing_reason"]) == {"referenced-series"}
        out = tmp_path / kind / "out"
        out.mkdir()
        records[kind] = convert_and_pair(result, out)
    assert sorted(records["labelmap"]) == sorted(records["binary"]) == ["node", "tumour"]
    by_name = {name: (number, mask) for number, (name, mask) in segments.items()}
    for roi, (number, expected) in by_name.items():
        lm, binary = records["labelmap"][roi], records["binary"][roi]
        assert lm["status"] == binary["status"] == "ok"
        assert lm["label"] == binary["label"] == number
        assert lm["n_voxels"] == binary["n_voxels"] == int(expected.sum())
        lm_mask, binary_mask = read_image(lm["mask"]), read_image(binary["mask"])
        assert dice_on_same_grid(lm_mask, binary_mask) == 1.0
        np.testing.assert_array_equal(sitk.GetArrayFromImage(lm_mask),
                                      sitk.GetArrayFromImage(binary_mask))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(lm_mask) == number, expected)
        assert lm["mask_hash"] == binary["mask_hash"]


def test_a_described_segment_the_label_map_never_holds_fails_its_pair(tmp_path) -> None:
    """Headers cannot tell which segments a label map's frames hold: a described segment whose
    value is absent is planned, converted empty and fails at pairing, never paired silently."""
    series = write_ct(tmp_path / "in" / "ct", "absent", SHAPE)
    labels = np.zeros(series.grid.shape, np.uint8)
    labels[2, 2:6, 2:6] = 1
    write_labelmap_seg(tmp_path / "in" / "lm.dcm", series.headers(), labels,
                       [(1, "tumour"), (2, "node")], series_uid=derived_uid(series.uid, "85"))
    result = crawl(tmp_path / "in", None, KEY, CrawlSettings())
    assert list(result.pairs.sort_values("label")["status"]) == ["ok", "ok"]
    out = tmp_path / "out"
    out.mkdir()
    records = convert_and_pair(result, out)
    assert (records["tumour"]["status"], records["tumour"]["n_voxels"]) == ("ok", 16)
    assert records["node"]["status"] == "failed:empty-mask"
