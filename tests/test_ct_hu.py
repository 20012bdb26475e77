"""CT values: QC warnings for implausible HU, a suspect rescale and padding
(radflow.dicom.plausibility.hu_qc), recorded in the convert sidecar; padding is kept out of an
ROI by PyRadiomics' resegmentation range."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset

from radflow import radiomics_adapter as ra
from radflow.convert import convert_source, run_convert
from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.dicom.plausibility import HU_CEILING, HU_FLOOR, hu_qc, padding_range
from radflow.dicom.reasons import QC_WARNINGS
from radflow.dicom.volume import read_series
from radflow.io.atomic import write_json
from radflow.records import read_sidecar
from radflow.settings import GeometrySettings

PATIENT = Patient("PID-HU-1", "Planted^Hu")
STUDY = Study(derived_uid("hu-study"), derived_uid("hu-for"))
USUAL = [(1.0, -1024.0, "")]


def _source(files, key="s00000000000000a1"):
    return {"series_key": key, "case_id": "c000000000001", "kind": "dicom", "role": "image",
            "files": [str(f) for f in files]}


def _ct_stored(n=4, size=16, outside=-2000):
    """Stored values of a CT: a disc of soft tissue and bone (HU -1024 .. 976 with intercept
    -1024) in air, ``outside`` in the corners (outside the scan circle)."""
    y, x = np.mgrid[:size, :size]
    r2 = (y - (size - 1) / 2) ** 2 + (x - (size - 1) / 2) ** 2
    plane = np.where(r2 <= (size / 2 - 1) ** 2, 1064, 24).astype(np.int16)  # 40 HU / -1000 HU
    plane[size // 2, size // 2] = 2000                                          # 976 HU
    plane[r2 > (size / 2) ** 2] = outside
    return np.stack([plane] * n), int(np.count_nonzero(r2 > (size / 2) ** 2)) * n


# --- the pure check -------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "rescales", "padding", "expected"), [
    # plausible CT: air at -1024, bone, metal on the extended scale (31743 is the top)
    ([-1024, -1000, 0, 1500, 3071, 20000, HU_CEILING], USUAL, None, {}),
    ([HU_FLOOR, -1024, 40], USUAL, None, {}),                     # the floor itself is plausible
    ([HU_FLOOR - 1, -1024, 40], USUAL, None, {"hu-out-of-range": 1}),
    ([-1024, 40, HU_CEILING + 1, 62512], USUAL, None, {"hu-out-of-range": 2}),
    # typical padding without PixelPaddingValue: the minimum at -3024 or -2000 HU
    ([-3024, -3024, -1024, 40], USUAL, None, {"padding-present": 2}),
    ([-2000, -2000, -2000, -1024, 40], [(1.0, 0.0, "")], None, {"padding-present": 3}),
    # -3524 is no padding value radflow knows, and nothing declares it
    ([-3524, -3524, -1024, 40], USUAL, None, {"hu-out-of-range": 2}),
    # declared padding (PixelPaddingValue after rescale) is not out of range, other values are
    ([-3524, -3524, -1500, 40], USUAL, (-3524.0, -3524.0),
     {"padding-present": 2, "hu-out-of-range": 1}),
    ([-3024, -2900, -2524, -2400, 40], USUAL, (-3024.0, -2524.0),   # a padding range
     {"padding-present": 3, "hu-out-of-range": 1}),
    ([-1024, -1024, 40], USUAL, (-1024.0, -1024.0), {"padding-present": 2}),  # padding = air
    ([-1024, 40], USUAL, (-3024.0, -3024.0), {}),                 # declared, but no voxel holds it
    # an unusual rescale explains implausible values ...
    ([-2048, -1000, 40], [(1.0, -2048.0, "")] * 3, None,
     {"hu-out-of-range": 1, "hu-rescale-suspect": 3}),
    ([-1024, 40, 40000], [(10.0, -1024.0, ""), (1.0, -1024.0, "HU")], None,
     {"hu-out-of-range": 1, "hu-rescale-suspect": 1}),
    ([-1024, 40, 40000], [(1.0, -1024.0, "US")], None,
     {"hu-out-of-range": 1, "hu-rescale-suspect": 1}),
    # ... but is no warning while the values are plausible (e.g. a phantom in mm or a rescaled
    # test image)
    ([-9.9, 0.0, 9.9], [(0.001, 0.0, "US")], None, {}),
])
def test_hu_qc_table(values, rescales, padding, expected) -> None:
    dtype = np.int16 if all(float(v).is_integer() and abs(v) < 2**15 for v in values) \
        else np.float32
    voxels = np.array(values, dtype=dtype).reshape(1, 1, -1)
    assert hu_qc(voxels, rescales, padding) == expected
    assert set(expected) <= set(QC_WARNINGS)


def test_hu_qc_counts_across_blocks_without_copying() -> None:
    """Counts are exact over a volume larger than one counting block; int16 and float32 agree."""
    rng = np.random.default_rng(0)
    voxels = rng.integers(-1024, 3000, size=(40, 512, 512), dtype=np.int16)
    voxels[:, :10, :] = -3024
    voxels[7, 100, 5:9] = -1500
    voxels[33, 200, 200] = HU_FLOOR - 1
    expected = {"padding-present": 40 * 10 * 512, "hu-out-of-range": 5}
    assert hu_qc(voxels, USUAL) == expected
    assert hu_qc(voxels.astype(np.float32), USUAL) == expected


def test_padding_range_from_header() -> None:
    ds = Dataset()
    assert padding_range(ds, 1.0, -1024.0) is None
    ds.BitsAllocated, ds.PixelRepresentation = 16, 1
    ds.PixelPaddingValue = 63536            # -2000 written as US, as files often do
    assert padding_range(ds, 1.0, -1024.0) == (-3024.0, -3024.0)
    ds.PixelPaddingValue = -2000
    ds.PixelPaddingRangeLimit = -1500
    assert padding_range(ds, 1.0, -1024.0) == (-3024.0, -2524.0)
    ds.PixelRepresentation = 0              # unsigned pixels: the value is what it says
    ds.PixelPaddingValue, ds.PixelPaddingRangeLimit = 0, 10
    assert padding_range(ds, 2.0, -1024.0) == (-1024.0, -1004.0)


# --- through the convert stage --------------------------------------------------------------------

def test_plausible_ct_has_no_qc(tmp_path) -> None:
    stored, _ = _ct_stored(outside=24)
    files = write_series(tmp_path / "d", stored, patient=PATIENT, study=STUDY,
                         series_uid=derived_uid("hu-ok"))
    sidecar = convert_source(_source(files), tmp_path / "o" / "s.nii.gz", GeometrySettings())
    assert sidecar["status"] == "ok" and "qc" not in sidecar


@pytest.mark.parametrize("declared", [True, False])
def test_padding_recorded_in_sidecar(tmp_path, declared) -> None:
    """Padding -2000 stored (-3024 HU): declared by PixelPaddingValue or recognised as the
    typical value; either way ``padding-present`` with the number of voxels, and the voxels
    themselves are kept."""
    stored, n_outside = _ct_stored()
    extra = {"PixelPaddingValue": -2000} if declared else {}
    files = write_series(tmp_path / "d", stored, patient=PATIENT, study=STUDY,
                         series_uid=derived_uid(f"hu-pad-{declared}"), acquisition=extra)
    sidecar_json = tmp_path / "o" / "s00000000000000a1.json"
    source_json = tmp_path / "source.json"
    write_json(source_json, _source(files))
    run_convert(source_json=str(source_json), sidecar_json=str(sidecar_json),
                settings=GeometrySettings())
    sidecar = read_sidecar(sidecar_json)          # the record reads the new key back
    assert sidecar.status == "ok"
    assert sidecar.qc == {"padding-present": n_outside}
    assert ("padding" in sidecar.volume) is declared    # the header's value was read (or not)
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(sidecar_json.parent / sidecar.nifti)))
    assert int(np.count_nonzero(arr == -3024)) == n_outside


def test_unusual_rescale_with_implausible_values(tmp_path) -> None:
    """An intercept of -2048 (e.g. applied on top of one already applied) puts air at -2024 HU:
    out of range, and the rescale is named as the likely cause (one count per slice)."""
    stored, _ = _ct_stored(outside=24)
    files = write_series(tmp_path / "d", stored, patient=PATIENT, study=STUDY,
                         series_uid=derived_uid("hu-bad"), intercept=-2048.0)
    sidecar = convert_source(_source(files), tmp_path / "o" / "s.nii.gz", GeometrySettings())
    n_air = int(np.count_nonzero(stored == 24))
    assert sidecar["status"] == "ok"        # a warning, not a failure
    assert sidecar["qc"] == {"hu-out-of-range": n_air, "hu-rescale-suspect": len(stored)}


def test_value_above_every_ct_scale(tmp_path) -> None:
    """Stored 32767 with intercept 0: 32767 HU is above the extended scale's 31743."""
    stored, _ = _ct_stored(outside=24)
    stored = stored - 1024  # intercept 0 below: same HU
    stored[1, 3, 8] = 32767
    files = write_series(tmp_path / "d", stored.astype(np.int16), patient=PATIENT, study=STUDY,
                         series_uid=derived_uid("hu-high"), intercept=0.0)
    sidecar = convert_source(_source(files), tmp_path / "o" / "s.nii.gz", GeometrySettings())
    assert sidecar["qc"] == {"hu-out-of-range": 1}


def test_mr_values_are_not_checked(tmp_path) -> None:
    stored, _ = _ct_stored()
    files = write_series(tmp_path / "d", stored, patient=PATIENT, study=STUDY,
                         series_uid=derived_uid("hu-mr"), modality="MR", intercept=-1024.0)
    sidecar = convert_source(_source(files), tmp_path / "o" / "s.nii.gz", GeometrySettings())
    assert sidecar["status"] == "ok" and "qc" not in sidecar


# --- padding and the resegmentation range ---------------------------------------------------------

# pykwalify (called by PyRadiomics) loads schema functions with the deprecated load_module().
@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
def test_resegmentation_range_keeps_padding_out_of_the_roi() -> None:
    """An ROI drawn across the edge of the scan circle holds padding (-3024 HU): without a
    resegmentation range it drags the first-order minimum and mean down; with
    ``resegmentRange: [-1000, 3071]`` (what the CT defaults must use) the padding voxels leave the
    ROI and the features are those of the tissue alone."""
    rng = np.random.default_rng(3)
    tissue = np.round(rng.normal(40, 20, (12, 24, 24))).astype(np.int16)
    image_arr = tissue.copy()
    image_arr[:, :, 18:] = -3024                     # outside the scan circle
    mask_arr = np.zeros_like(image_arr, dtype=np.uint8)
    mask_arr[2:10, 6:18, 8:22] = 1                   # reaches 4 columns into the padding
    image = sitk.GetImageFromArray(image_arr)
    mask = sitk.GetImageFromArray(mask_arr)
    for img in (image, mask):
        img.SetSpacing((1.0, 1.0, 2.0))
    features = {"firstorder": ["Minimum", "Mean", "Maximum"]}

    def first_order(setting):
        params = {"setting": {"binWidth": 25, **setting}, "imageType": {"Original": {}},
                  "featureClass": features}
        table = ra.compute_features(image, mask, params, label=1)
        return dict(zip(table["feature"], table["value"], strict=True))

    plain = first_order({})
    assert plain["Minimum"] == -3024                  # the test would see padding in the ROI
    reseg = first_order({"resegmentRange": [-1000, 3071]})
    assert reseg["Minimum"] >= -1000
    inside = image_arr[(mask_arr == 1) & (image_arr != -3024)]
    assert reseg["Minimum"] == inside.min() and reseg["Maximum"] == inside.max()
    assert reseg["Mean"] == pytest.approx(inside.mean(), rel=1e-9)


# --- real data ------------------------------------------------------------------------------------

@pytest.mark.testdata
def test_sts_002_ct_is_plausible(testdata, tmp_path) -> None:
    files = sorted((testdata / "sts_002_ct_mr_pet_rtstruct" / "CT" / "dicom" / "image").iterdir())
    sidecar = convert_source(_source(files), tmp_path / "s.nii.gz", GeometrySettings())
    assert sidecar["status"] == "ok"
    assert "hu-out-of-range" not in sidecar.get("qc", {})
    assert "qc" not in sidecar                   # cropped by mirp: no padding either


@pytest.mark.testdata
@pytest.mark.parametrize(("name", "expected"), [
    # GE: PixelPaddingValue -2000 (stored), intercept -1024: padding at -3024 HU
    ("pydicom_data_selected/693_UNCR.dcm", {"padding-present": 55772}),
    # no PixelPaddingValue, intercept 0: -2000 HU outside the circle; air noise reaches -1047
    ("test_files/J2K_pixelrep_mismatch.dcm", {"padding-present": 56252}),
    # the same image as 693_UNCR, lossy JPEG 2000: ringing around the padding edge leaves values
    # between -3995 and -1100 HU that are neither padding nor tissue
    ("test_files/693_J2KI.dcm", {"padding-present": 494, "hu-out-of-range": 59666}),
])
def test_real_ct_files(testdata, name, expected) -> None:
    path = testdata / "pydicom_test_files" / name
    volume = read_series([path], GeometrySettings(min_slices=1))
    assert volume.qc == expected
    padding = volume.info.get("padding")
    if padding:   # counted on stored values by the reader: the same voxels
        assert padding["voxels"] == expected["padding-present"]
