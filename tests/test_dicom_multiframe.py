"""Classic multi-frame objects (no per-frame functional groups): NM reconstructions, NM planar
and projection images, US / XA cine, single-position stacks, and what stays unsupported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from radflow.demo.synthetic import Patient, Study, derived_uid
from radflow.demo.synthetic_classic import (
    FRAME_TIME,
    NM_IMAGE_STORAGE,
    SLICE_VECTOR,
    US_MULTIFRAME_STORAGE,
    XA_IMAGE_STORAGE,
    write_classic_multiframe,
)
from radflow.demo.synthetic_multiframe import ENHANCED_MR_STORAGE
from radflow.dicom.index import find_candidate_files, index_files
from radflow.dicom.volume import read_series
from radflow.errors import DicomError
from radflow.settings import CrawlSettings, GeometrySettings

PATIENT = Patient("PID-MF-1", "Roe^Frames")
STUDY = Study(derived_uid("mfstudy"), derived_uid("mffor"))
SETTINGS = CrawlSettings(image_modalities=("CT", "MR", "PT", "NM", "US", "XA"))
N, ROWS, COLS = 5, 4, 6
STORED = (np.arange(N * ROWS * COLS) * 7 % 101).astype(np.int16).reshape(N, ROWS, COLS)
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
ORIGIN = (-10.0, 20.0, 30.0)
NM_RECON = ("ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION")


def _write(folder: Path, name: str, stored: np.ndarray = STORED, **kwargs) -> Path:
    return write_classic_multiframe(folder / f"{name}.dcm", stored, patient=PATIENT, study=STUDY,
                                    series_uid=derived_uid(name), **kwargs)


def _crawl(folder: Path, settings: CrawlSettings = SETTINGS):
    return index_files(find_candidate_files(folder), settings)


def _nm_recon(folder: Path, name: str = "nm", stored: np.ndarray = STORED,
              **attributes) -> Path:
    values = {"SpacingBetweenSlices": 3.0, "SliceThickness": 3.0,
              "SliceVector": list(range(1, N + 1)), "NumberOfSlices": N, **attributes}
    return _write(folder, name, stored, sop_class=NM_IMAGE_STORAGE, modality="NM",
                  image_type=NM_RECON, position=ORIGIN, orientation=AXIAL,
                  pixel_spacing=(2.0, 2.5), in_detector=True,
                  frame_increment_pointer=[SLICE_VECTOR], attributes=values)


# --- NM -------------------------------------------------------------------------------------------

def test_nm_recon_tomo_is_a_volume(tmp_path):
    """PS3.3 C.8.4.15: slice s lies (s - 1) x SpacingBetweenSlices along the normal from the
    Detector Information Sequence's ImagePositionPatient."""
    f = _nm_recon(tmp_path)
    (record,) = _crawl(tmp_path)
    assert (record.status, record.qc, record.n_slices) == ("ok", (), N)
    assert record.spacing == pytest.approx((2.5, 2.0, 3.0))
    assert record.origin == pytest.approx(ORIGIN)
    volume = read_series([f], SETTINGS.geometry)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(volume.image), STORED)
    (positions,) = volume.info["frame_positions"]
    assert (positions["source"], positions["assumption"]) == ("nm-reconstruction", False)


def test_nm_negative_spacing_and_slice_vector_order(tmp_path):
    """A negative SpacingBetweenSlices stacks slices in front of the first; frames in another
    order than the slices are placed by the Slice Vector."""
    order = [3, 1, 5, 2, 4]                           # frame k holds slice order[k]
    stored = np.stack([STORED[s - 1] for s in order])
    f = _nm_recon(tmp_path, stored=stored, SpacingBetweenSlices=-3.0, SliceVector=order)
    volume = read_series([f], SETTINGS.geometry)
    # slices ascend along the normal: slice 5 (at z = 30 - 12) first
    np.testing.assert_array_equal(sitk.GetArrayFromImage(volume.image), STORED[::-1])
    assert volume.image.GetOrigin() == pytest.approx((-10.0, 20.0, 18.0))


def test_nm_recon_without_spacing_uses_thickness_as_an_assumption(tmp_path):
    _nm_recon(tmp_path, SpacingBetweenSlices="")
    (record,) = _crawl(tmp_path)
    assert (record.status, record.qc) == ("ok", ("frame-positions-assumed",))


def test_nm_gated_recon_splits_by_time_slot(tmp_path):
    stored = np.concatenate([STORED, STORED + 1000])
    f = _write(tmp_path, "gated", stored, sop_class=NM_IMAGE_STORAGE, modality="NM",
               image_type=("ORIGINAL", "PRIMARY", "RECON GATED TOMO", "EMISSION"),
               position=ORIGIN, orientation=AXIAL, pixel_spacing=(2.0, 2.0), in_detector=True,
               attributes={"SpacingBetweenSlices": 3.0, "TimeSlotVector": [1] * N + [2] * N,
                           "RRIntervalVector": [1] * (2 * N),
                           "SliceVector": list(range(1, N + 1)) * 2})
    records = _crawl(tmp_path)
    assert [(r.status, r.split, r.n_slices) for r in records] == [("ok", "_t01", N),
                                                                   ("ok", "_t02", N)]
    second = read_series([f], SETTINGS.geometry, frames=records[1].frames)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(second.image), STORED + 1000)


def test_nm_recon_without_detector_position_names_it(tmp_path):
    _write(tmp_path, "nm", sop_class=NM_IMAGE_STORAGE, modality="NM", image_type=NM_RECON,
           orientation=AXIAL, pixel_spacing=(2.0, 2.0), in_detector=True,
           attributes={"SpacingBetweenSlices": 3.0})
    (record,) = _crawl(tmp_path)
    assert record.status == "failed:unsupported-multiframe"
    assert "ImagePositionPatient (0020,0032)" in record.message
    assert "ImageOrientationPatient" not in record.message


@pytest.mark.parametrize("kind", ["STATIC", "WHOLE BODY", "DYNAMIC", "GATED", "TOMO",
                                  "GATED TOMO"])
def test_nm_planar_and_projection_images_are_excluded(tmp_path, kind):
    _write(tmp_path, "nm", sop_class=NM_IMAGE_STORAGE, modality="NM",
           image_type=("ORIGINAL", "PRIMARY", kind, "EMISSION"), pixel_spacing=(2.0, 2.0))
    (record,) = _crawl(tmp_path)
    assert record.status == "excluded:nm-projection"
    assert kind in record.message


def test_nm_outside_default_modalities(tmp_path):
    _nm_recon(tmp_path)
    (record,) = _crawl(tmp_path, CrawlSettings())
    assert record.status == "excluded:modality-nm"


# --- cine -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("sop_class", "modality"), [(US_MULTIFRAME_STORAGE, "US"),
                                                    (XA_IMAGE_STORAGE, "XA")])
def test_cine_without_geometry_is_excluded(tmp_path, sop_class, modality):
    f = _write(tmp_path, "cine", sop_class=sop_class, modality=modality,
               frame_increment_pointer=[FRAME_TIME], attributes={"FrameTime": 33.3})
    (record,) = _crawl(tmp_path)
    assert record.status == "excluded:cine-no-geometry"
    assert "Frame Time" in record.message
    with pytest.raises(DicomError) as info:
        read_series([f], SETTINGS.geometry)
    assert info.value.reason == "cine-no-geometry"


def test_cine_of_one_plane_is_a_time_series(tmp_path):
    """With patient geometry, cine frames are time points of one plane: split by time point,
    each a single slice (not a volume)."""
    _write(tmp_path, "cine", position=ORIGIN, orientation=AXIAL, pixel_spacing=(1.0, 1.0),
           frame_increment_pointer=[FRAME_TIME], attributes={"FrameTime": 40.0})
    records = _crawl(tmp_path)
    assert [r.status for r in records] == ["failed:too-few-slices"]


@pytest.mark.testdata
def test_pydicom_us_cine_is_excluded(testdata):
    """examples_ybr_color.dcm: US Multi-frame, 30 YBR_FULL_422 frames, Frame Time, no patient
    geometry (ImageType DERIVED: admitted with include_derived)."""
    path = testdata / "pydicom_test_files" / "test_files" / "examples_ybr_color.dcm"
    (record,) = index_files([path], CrawlSettings(image_modalities=("US",),
                                                  include_derived=True))
    assert record.status == "excluded:cine-no-geometry"


# --- one plane position -----------------------------------------------------------------------

@pytest.mark.parametrize("shared", [False, True])
def test_single_position_stack_with_recorded_assumption(tmp_path, shared):
    """IPP, IOP and PixelSpacing once (top level or shared functional groups) and a slice
    spacing: frames stacked along the normal, QC frame-positions-assumed."""
    spacing = {"SliceThickness": 2.5} if shared else {"SpacingBetweenSlices": 2.5}
    extra = {"sop_class": ENHANCED_MR_STORAGE, "in_shared_groups": True} if shared else {}
    f = _write(tmp_path, "stack", position=ORIGIN, orientation=AXIAL, pixel_spacing=(0.7, 0.8),
               attributes=spacing, **extra)
    (record,) = _crawl(tmp_path)
    assert (record.status, record.qc) == ("ok", ("frame-positions-assumed",))
    assert record.spacing == pytest.approx((0.8, 0.7, 2.5))
    volume = read_series([f], SETTINGS.geometry)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(volume.image), STORED)
    assert volume.image.GetOrigin() == pytest.approx(ORIGIN)
    (positions,) = volume.info["frame_positions"]
    assert (positions["source"], positions["assumption"]) == ("assumed-stack", True)


def test_single_position_without_spacing_names_it(tmp_path):
    _write(tmp_path, "stack", position=ORIGIN, orientation=AXIAL, pixel_spacing=(1.0, 1.0))
    (record,) = _crawl(tmp_path)
    assert record.status == "failed:unsupported-multiframe"
    assert "SpacingBetweenSlices (0018,0088)" in record.message


def test_no_geometry_names_the_missing_attributes(tmp_path):
    f = _write(tmp_path, "bare", pixel_spacing=(1.0, 1.0))
    (record,) = _crawl(tmp_path)
    assert record.status == "failed:unsupported-multiframe"
    assert "ImagePositionPatient (0020,0032), ImageOrientationPatient (0020,0037) missing" \
        in record.message
    with pytest.raises(DicomError) as info:
        read_series([f], SETTINGS.geometry)
    assert info.value.reason == "unsupported-multiframe"
    assert str(info.value).startswith("file 1 of 1: ")


def test_per_frame_groups_of_the_wrong_count(tmp_path):
    f = _write(tmp_path, "enh", position=ORIGIN, orientation=AXIAL, pixel_spacing=(1.0, 1.0),
               attributes={"SpacingBetweenSlices": 1.0})
    ds = pydicom.dcmread(f)
    ds.PerFrameFunctionalGroupsSequence = [pydicom.Dataset() for _ in range(N - 1)]
    ds.save_as(f)
    (record,) = _crawl(tmp_path)
    assert record.status == "failed:unsupported-multiframe"
    assert f"{N} frames and {N - 1} per-frame functional group items" in record.message


@pytest.mark.testdata
def test_pydicom_emri_small_names_what_is_missing(testdata):
    """emri_small.dcm is an Enhanced MR object with 10 frames but no functional groups and no
    plane position, orientation or pixel spacing anywhere (only SpacingBetweenSlices)."""
    path = testdata / "pydicom_test_files" / "pydicom_data_selected" / "emri_small.dcm"
    (record,) = index_files([path], SETTINGS)
    assert record.status == "failed:unsupported-multiframe"
    for attribute in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        assert attribute in record.message
    with pytest.raises(DicomError) as info:
        read_series([path], GeometrySettings())
    assert info.value.reason == "unsupported-multiframe"
