"""Colour DICOM: RGB / YBR series convert to an RGB NIfTI and are kept out of radiomics."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom_corpus import pixel_datasets

from radflow.convert import convert_source, run_convert
from radflow.demo.synthetic import MR_IMAGE_STORAGE, Patient, Study, derived_uid, write_series
from radflow.demo.synthetic_classic import write_colour_series
from radflow.dicom.colour import RGB24, pixel_kind
from radflow.dicom.headers import read_dataset
from radflow.dicom.index import find_candidate_files, index_files
from radflow.dicom.pixels import decode_rgb
from radflow.dicom.volume import read_series
from radflow.errors import DicomError, SeriesGeometryError
from radflow.io.nifti import read_image, voxel_hash
from radflow.pair import pair_one
from radflow.settings import CrawlSettings, GeometrySettings, PairSettings

PATIENT = Patient("PID-COLOUR-1", "Roe^Colour")
STUDY = Study(derived_uid("cstudy"), derived_uid("cfor"))
SPACING = (0.5, 0.7, 2.0)
RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (4, 6, 8, 3), dtype=np.uint8)
RGB_PAIRS = np.repeat(RGB[:, :, ::2], 2, axis=2)     # equal pixel pairs: 4:2:2 is lossless


def _colour(folder: Path, name: str = "c", rgb: np.ndarray = RGB, **kwargs) -> list[Path]:
    return write_colour_series(folder, rgb, patient=PATIENT, study=STUDY,
                               series_uid=derived_uid(name), spacing=SPACING, **kwargs)


def _source(files: list[Path]) -> dict:
    return {"series_key": "s00000000000000c1", "case_id": "c000000000001", "kind": "dicom",
            "role": "image", "files": [str(f) for f in files]}


# --- reading ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("photometric", "planar", "max_diff"), [
    ("RGB", 0, 0), ("RGB", 1, 0), ("YBR_FULL", 0, 2), ("YBR_FULL", 1, 2), ("YBR_FULL_422", 0, 2),
])
def test_colour_series_reads_as_rgb(tmp_path, photometric, planar, max_diff):
    """RGB values equal the written ones (YBR: within the rounding of the YBR values, which the
    fixture computes with numpy from PS3.3 C.7.6.3.1.2, independently of pydicom)."""
    rgb = RGB_PAIRS if photometric == "YBR_FULL_422" else RGB
    files = _colour(tmp_path, rgb=rgb, photometric=photometric, planar_configuration=planar)
    volume = read_series(files, GeometrySettings())
    image = volume.image
    assert image.GetNumberOfComponentsPerPixel() == 3
    assert image.GetPixelID() == sitk.sitkVectorUInt8
    assert image.GetSpacing() == pytest.approx(SPACING)
    ours = sitk.GetArrayFromImage(image).astype(int)
    assert ours.shape == rgb.shape
    assert int(np.abs(ours - rgb.astype(int)).max()) <= max_diff
    assert volume.info["samples_per_pixel"] == 3
    assert volume.info["photometric"] == photometric
    assert volume.info["rescale_type"] == ""


@pytest.mark.parametrize(("photometric", "samples", "bits", "kind"), [
    ("MONOCHROME2", 1, 16, "mono"), ("MONOCHROME1", None, 8, "mono"), ("RGB", 3, 8, "colour"),
    ("YBR_FULL_422", 3, 8, "colour"), ("YBR_RCT", 3, None, "colour"),
    ("PALETTE COLOR", 1, 8, None), ("RGB", 3, 16, None), ("MONOCHROME2", 3, 8, None),
    ("YBR_PARTIAL_420", 3, 8, None), ("", None, None, None),
])
def test_pixel_kind(photometric, samples, bits, kind):
    if kind is None:
        with pytest.raises(DicomError) as info:
            pixel_kind(photometric, samples, bits)
        assert info.value.reason == "unsupported-photometric"
    else:
        assert pixel_kind(photometric, samples, bits) == kind


@pytest.mark.testdata
@pytest.mark.parametrize("name", [
    "SC_rgb_small_odd.dcm", "SC_rgb_small_odd_big_endian.dcm", "ExplVR_BigEnd.dcm",
    "SC_ybr_full_422_uncompressed.dcm", "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "SC_rgb_dcmtk_+eb+cy+s4.dcm", "SC_rgb_rle.dcm", "SC_rgb_rle_2frame.dcm",
    "GDCMJ2K_TextGBR.dcm", "examples_ybr_color.dcm", "SC_rgb_jpeg_gdcm.dcm",
])
def test_pydicom_colour_files_decode_to_rgb(testdata, name):
    """Planar configuration 1 (ExplVR_BigEnd), YBR_FULL / YBR_FULL_422 (uncompressed and JPEG),
    YBR_RCT (JPEG 2000) and RLE: the same RGB values as pydicom's default RGB conversion."""
    path = testdata / "pydicom_test_files" / "test_files" / name
    ours = decode_rgb(read_dataset(path), path)
    assert ours.dtype == np.uint8 and ours.shape[-1] == 3
    np.testing.assert_array_equal(ours, pydicom.dcmread(path).pixel_array)


# --- the dicom2nifti colour series --------------------------------------------------------------

@pytest.mark.testdata
def test_dicom2nifti_rgb_nifti_matches_expected(testdata, tmp_path):
    """generic/rgb/001 (RGB Secondary Capture, JPEG 2000, 4 slices) converts to an RGB24 NIfTI
    whose voxels equal dicom2nifti's expected output (its RGBA file: same R, G, B; alpha is a
    constant 255) and whose affine matches it, compared with nibabel after reorienting both to
    the closest canonical axes. The sidecar says excluded:colour-image."""
    root = testdata / "dicom2nifti_series" / "generic" / "rgb"
    files = sorted((root / "001").iterdir())
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert (ds.SOPClassUID.name, ds.PhotometricInterpretation, ds.SamplesPerPixel,
            ds.PlanarConfiguration) == ("Secondary Capture Image Storage", "RGB", 3, 0)
    out = tmp_path / "s00000000000000c1.nii.gz"
    sidecar = convert_source(_source(files), out, GeometrySettings())
    assert sidecar["status"] == "excluded:colour-image"
    assert "radiomics" in sidecar["error"]
    assert sidecar["volume"]["samples_per_pixel"] == 3
    assert sidecar["volume"]["photometric"] == "RGB"
    assert sidecar["grid"]["size"] == [52, 77, 4]
    ours = nib.load(out)
    assert ours.get_data_dtype() == RGB24 and int(ours.header["datatype"]) == 128
    theirs = nib.load(root / "001_ground_truth.nii.gz")
    ours_c, theirs_c = nib.as_closest_canonical(ours), nib.as_closest_canonical(theirs)
    np.testing.assert_allclose(ours_c.affine, theirs_c.affine, rtol=0, atol=1e-3)
    a, b = np.asarray(ours_c.dataobj), np.asarray(theirs_c.dataobj)
    assert a.shape == b.shape == (52, 77, 4)
    for channel in "RGB":
        np.testing.assert_array_equal(a[channel], b[channel])
    assert set(np.unique(b["A"])) == {255}
    assert sidecar["voxel_hash"] == voxel_hash(read_image(out))


@pytest.mark.testdata
def test_dicom2nifti_rgb_crawl_status(testdata):
    """A Secondary Capture: excluded by default, admitted with include_derived (QC colour-image)."""
    folder = testdata / "dicom2nifti_series" / "generic" / "rgb" / "001"
    files = find_candidate_files(folder)
    (default,) = index_files(files, CrawlSettings())
    assert default.status == "excluded:secondary-capture"
    (derived,) = index_files(files, CrawlSettings(include_derived=True))
    assert (derived.status, derived.qc, derived.n_slices) == ("ok", ("colour-image",), 4)


# --- crawl and pipeline ---------------------------------------------------------------------------

def test_colour_mr_series_is_ok_with_qc_and_skipped_by_pairing(tmp_path):
    """An RGB series of an imaging SOP class: the crawl lists it ok (QC colour-image), convert
    writes the RGB NIfTI with excluded:colour-image, and the pair stage refuses it by name."""
    files = _colour(tmp_path / "in", sop_class=MR_IMAGE_STORAGE,
                    image_type=("ORIGINAL", "PRIMARY", "OTHER"))
    (record,) = index_files(find_candidate_files(tmp_path / "in"), CrawlSettings())
    assert (record.status, record.qc) == ("ok", ("colour-image",))
    source = tmp_path / "source.json"
    source.write_text(json.dumps(_source(files)), encoding="utf-8")
    sidecar_path = tmp_path / "out" / "s00000000000000c1.json"
    run_convert(source_json=str(source), sidecar_json=str(sidecar_path),
                settings=GeometrySettings())
    sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    assert sidecar["status"] == "excluded:colour-image"
    assert (tmp_path / "out" / sidecar["nifti"]).is_file()
    plan = {"pair_id": "p0000000000000001", "case_id": "c000000000001",
            "image_key": "s00000000000000c1", "mask_key": "s00000000000000m1", "roi": "GTV",
            "label": 1, "status": "ok"}
    record = pair_one(plan, str(sidecar_path), None, PairSettings(), tmp_path / "r.nii.gz")
    assert record["status"] == "failed:image-colour-image"


def test_colour_and_monochrome_in_one_series_fail(tmp_path):
    _colour(tmp_path / "in", name="mixed", sop_class=MR_IMAGE_STORAGE,
            image_type=("ORIGINAL", "PRIMARY", "OTHER"))
    grey = write_series(tmp_path / "in", np.zeros((1, 6, 8), np.int16), patient=PATIENT,
                        study=STUDY, series_uid=derived_uid("mixed"), modality="MR",
                        spacing=SPACING, slice_positions=[8.0], file_names=["IM0099.dcm"],
                        uid_seed="grey")
    (record,) = index_files(find_candidate_files(tmp_path / "in"), CrawlSettings())
    assert record.status == "failed:unsupported-photometric"
    assert "colour" in record.message and "monochrome" in record.message
    with pytest.raises(DicomError) as info:
        read_series(sorted((tmp_path / "in").iterdir()), GeometrySettings())
    assert info.value.reason == "unsupported-photometric"
    assert grey[0].name not in str(info.value)


def test_palette_and_16_bit_colour_fail(tmp_path):
    files = _colour(tmp_path / "p", name="p", sop_class=MR_IMAGE_STORAGE,
                    image_type=("ORIGINAL", "PRIMARY", "OTHER"))
    for f in files:
        ds = pydicom.dcmread(f)
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelData = ds.PixelData * 2
        ds.save_as(f)
    (record,) = index_files(find_candidate_files(tmp_path / "p"), CrawlSettings())
    assert record.status == "failed:unsupported-photometric"
    assert "16 bits" in record.message
    with pytest.raises(DicomError) as info:
        read_series(files, GeometrySettings())
    assert info.value.reason == "unsupported-photometric"


def test_colour_resampled_per_channel(tmp_path):
    """The uneven-spacing policy resamples each channel; the result stays RGB uint8."""
    files = _colour(tmp_path, sop_class=MR_IMAGE_STORAGE)
    ds = pydicom.dcmread(files[-1])
    ds.ImagePositionPatient = [0.0, 0.0, 6.5]       # gaps 2, 2, 2.5 mm
    ds.save_as(files[-1])
    with pytest.raises(SeriesGeometryError) as info:
        read_series(files, GeometrySettings())
    assert info.value.reason == "uneven-spacing"
    volume = read_series(files, GeometrySettings(uneven_spacing="resample"))
    assert volume.image.GetPixelID() == sitk.sitkVectorUInt8
    arr = sitk.GetArrayFromImage(volume.image)
    np.testing.assert_array_equal(arr[0], RGB[0])
    assert volume.info["resampling"]["fill_value"] == 0.0


@pytest.mark.testdata
def test_every_pydicom_colour_image_decodes_or_gets_a_reason(testdata):
    """Every colour file decodes to RGB (lossy JPEG-LS, JPEG with and without colour transform,
    JPEG 2000, RLE, planar configuration 1, big endian, odd sizes), except those with more than
    8 bits per sample (unsupported-photometric)."""
    outcomes = {}
    for path, ds in pixel_datasets(testdata, samples_per_pixel=3):
        try:
            pixel_kind(str(ds.get("PhotometricInterpretation", "")), 3,
                       ds.get("BitsAllocated"))
            outcomes[path.name] = decode_rgb(ds, path).shape
        except DicomError as exc:
            outcomes[path.name] = exc.reason
    assert len(outcomes) >= 30
    failed = sorted(name for name, v in outcomes.items() if isinstance(v, str))
    # RGB with 16 and 32 bits per sample (RLE): the only colour files radflow does not read
    assert failed == ["SC_rgb_rle_16bit.dcm", "SC_rgb_rle_16bit_2frame.dcm",
                      "SC_rgb_rle_32bit.dcm", "SC_rgb_rle_32bit_2frame.dcm"], outcomes
    assert outcomes["SC_rgb_rle_16bit.dcm"] == "unsupported-photometric"   # 16 bits per sample
    assert outcomes["SC_rgb_small_odd.dcm"] == (3, 3, 3)
