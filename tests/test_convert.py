"""Convert stage: a source -> NIfTI + sidecar; failures leave no volume."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from mask_fixtures import PATIENT as MASK_PATIENT
from mask_fixtures import STUDY as MASK_STUDY
from mask_fixtures import index_points, square, write_ct

from radflow.convert import convert_source, label_map, run_convert
from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.demo.synthetic_masks import ContourSpec, RoiSpec, write_rtstruct
from radflow.errors import PairingError
from radflow.io.atomic import write_json
from radflow.io.nifti import read_image, voxel_hash, write_nifti
from radflow.settings import GeometrySettings

PATIENT = Patient("PID-CONVERT-1", "Planted^Name", institution="Planted Hospital",
                  accession="ACC-PLANTED-1", birth_date="19010203")
STUDY = Study(derived_uid("study"), derived_uid("for"))


def _source(files, role="image", kind="dicom"):
    return {"series_key": "s0000000000000001", "case_id": "c000000000001", "kind": kind,
            "role": role, "files": [str(f) for f in files]}


def test_dicom_series_with_per_slice_rescale(tmp_path) -> None:
    stored = np.zeros((3, 4, 4), np.int16)
    stored[0], stored[1], stored[2] = 101, 505, 101
    files = write_series(tmp_path / "d", stored, patient=PATIENT, study=STUDY,
                         series_uid=derived_uid("s"), slope=[0.5, 0.1, 0.5],
                         intercept=[0.0, 0.0, 0.0], acquisition={"KVP": 120})
    out = tmp_path / "out" / "s0000000000000001.nii.gz"
    sidecar = convert_source(_source(files), out, GeometrySettings())
    assert sidecar["status"] == "ok"
    arr = sitk.GetArrayFromImage(read_image(out))
    assert arr.dtype == np.float32
    np.testing.assert_allclose(arr, 50.5, rtol=1e-6)
    assert sidecar["acquisition"]["KVP"] == 120
    text = json.dumps(sidecar)
    for planted in ("PID-CONVERT-1", "Planted", "ACC-PLANTED-1", "19010203"):
        assert planted not in text


def test_integer_ct_is_written_as_int16(tmp_path) -> None:
    """Integer rescale whose values fit int16: an int16 NIfTI (no scl scaling) with the values of
    the float32 conversion; the sidecar hash is the hash of the file as read back."""
    stored = (np.arange(3 * 4 * 5).reshape(3, 4, 5) * 97 % 4000).astype(np.int16)
    files = write_series(tmp_path / "d", stored, patient=PATIENT, study=STUDY,
                         series_uid=derived_uid("s"), intercept=-1024.0,
                         origin=(-249.51171875, -388.2, -1017.125), spacing=(0.7, 0.7, 1.25))
    out = tmp_path / "out" / "s0000000000000001.nii.gz"
    sidecar = convert_source(_source(files), out, GeometrySettings())
    assert sidecar["status"] == "ok"
    back = read_image(out)
    assert back.GetPixelID() == sitk.sitkInt16
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back),
                                  (stored.astype(np.float64) - 1024).astype(np.float32))
    assert sidecar["voxel_hash"] == voxel_hash(back)
    header = nib.load(out).header
    assert header.get_data_dtype() == np.int16 and np.isnan(header["scl_slope"])


def test_missing_slice_fails_without_a_volume(tmp_path) -> None:
    stored = np.zeros((5, 4, 4), np.int16)
    files = write_series(tmp_path / "d", stored, patient=PATIENT, study=STUDY,
                         series_uid=derived_uid("s"), spacing=(1, 1, 2))
    del files[2]
    out = tmp_path / "s0000000000000001.nii.gz"
    out.write_bytes(b"stale volume from an earlier run")
    sidecar = convert_source(_source(files), out, GeometrySettings())
    assert sidecar["status"] == "failed:missing-slice"
    assert not out.exists()


def test_run_convert_writes_sidecar_beside_volume(tmp_path) -> None:
    mask = sitk.GetImageFromArray(np.eye(4, dtype=np.float32)[None].repeat(3, 0))
    write_nifti(tmp_path / "in.nii.gz", mask)
    src = tmp_path / "src.json"
    write_json(src, _source([tmp_path / "in.nii.gz"], role="mask", kind="image-file"))
    run_convert(source_json=str(src), sidecar_json=str(tmp_path / "o" / "s1.json"),
                settings=GeometrySettings())
    sidecar = json.loads((tmp_path / "o" / "s1.json").read_text())
    assert sidecar["status"] == "ok" and sidecar["nifti"] == "s1.mha"  # a sheet file: exact copy
    back = read_image(tmp_path / "o" / "s1.mha")
    assert back.GetPixelID() == sitk.sitkUInt8


@pytest.mark.parametrize("values", [np.array([0.0, 0.5]), np.array([0.0, -1.0])])
def test_label_map_rejects_non_labels(values) -> None:
    img = sitk.GetImageFromArray(np.resize(values, (2, 2, 2)).astype(np.float32))
    with pytest.raises(PairingError) as info:
        label_map(img, "mask s1")
    assert info.value.reason == "invalid-mask"


# --- RTSTRUCT / SEG sources: one mask file per planned ROI on the linked image's grid --------

def _mask_source(tmp_path, labels, outside="fail"):
    ct = write_ct(tmp_path / "ct", "convert")
    rois = [RoiSpec(1, "GTV", (ContourSpec(index_points(ct.grid, square(0.5, 0.5, 2.5, 2.5),
                                                        1.0)),)),
            RoiSpec(2, "PTV", (ContourSpec(index_points(ct.grid, square(0.5, 0.5, 3.5, 3.5),
                                                        1.0)),
                               ContourSpec(index_points(ct.grid, square(0.5, 0.5, 3.5, 3.5),
                                                        9.0)))),
            RoiSpec(300, "Body", (ContourSpec(index_points(ct.grid, square(-0.5, -0.5, 9.5,
                                                                           11.5), 0.0)),))]
    rs = write_rtstruct(tmp_path / "rs.dcm", patient=MASK_PATIENT, study=MASK_STUDY,
                        series_uid="1.2.3.5", rois=rois, image_series_uid=ct.uid,
                        image_uids=ct.sop_uids)
    image = convert_source(_source(ct.files), tmp_path / "out" / "s0000000000000001.nii.gz",
                           GeometrySettings())
    write_json(tmp_path / "out" / "s0000000000000001.json", image)
    source = {"series_key": "s0000000000000002", "case_id": "c000000000001", "kind": "rtstruct",
              "role": "mask", "files": [str(rs)],
              "mask": {"image_key": "s0000000000000001", "labels": labels,
                       "fractional_threshold": 0.5, "contours_outside_image": outside}}
    return source, ct


def test_rtstruct_source_gives_one_label_map_per_roi(tmp_path) -> None:
    source, ct = _mask_source(tmp_path, [1, 2, 300])
    out = tmp_path / "out"
    sidecar = convert_source(source, out / "s0000000000000002.nii.gz", GeometrySettings(),
                             str(out / "s0000000000000001.json"))
    assert sidecar["status"] == "ok" and sidecar["grid"]["size"] == list(ct.grid.size)
    rois = sidecar["rois"]
    assert rois["1"]["status"] == "ok" and rois["1"]["n_voxels"] == 4
    assert rois["2"]["status"] == "failed:roi-outside-image"  # its 2nd contour is off the image
    assert rois["300"]["n_voxels"] == 10 * 12
    body = read_image(out / rois["300"]["nifti"])
    assert body.GetPixelID() == sitk.sitkInt32 and sitk.GetArrayFromImage(body).max() == 300
    gtv = sitk.GetArrayFromImage(read_image(out / rois["1"]["nifti"]))
    assert gtv.dtype == np.uint8 and set(np.unique(gtv)) == {0, 1}
    assert sorted(p.name for p in out.glob("s0000000000000002*")) == [
        "s0000000000000002_1.nii.gz", "s0000000000000002_300.nii.gz"]
    # a rerun planning fewer ROIs removes the files of the others
    source["mask"]["labels"] = [1]
    convert_source(source, out / "s0000000000000002.nii.gz", GeometrySettings(),
                   str(out / "s0000000000000001.json"))
    assert [p.name for p in out.glob("s0000000000000002*")] == ["s0000000000000002_1.nii.gz"]


def test_rtstruct_outside_policy_skip_and_missing_image(tmp_path) -> None:
    source, _ = _mask_source(tmp_path, [2], outside="skip")
    out = tmp_path / "out"
    sidecar = convert_source(source, out / "m.nii.gz", GeometrySettings(),
                             str(out / "s0000000000000001.json"))
    assert sidecar["rois"]["2"]["qc"] == {"contours-outside-image-skipped": 1}
    assert convert_source(source, out / "m.nii.gz", GeometrySettings(), None)["status"] == \
        "failed:image-not-converted"
    write_json(out / "bad.json", {"series_key": "s1", "status": "failed:missing-slice"})
    failed = convert_source(source, out / "m.nii.gz", GeometrySettings(), str(out / "bad.json"))
    assert failed["status"] == "failed:image-missing-slice" and failed["rois"] == {}
    assert not list(out.glob("s0000000000000002_*"))


def test_excluded_reason_keeps_its_kind_and_writes_no_volume(tmp_path) -> None:
    """A reason of kind ``excluded`` (here a cine loop without patient coordinates) is recorded
    as ``excluded:<reason>``, not ``failed:``; the error names no file."""
    from radflow.demo.synthetic_classic import (
        FRAME_TIME,
        US_MULTIFRAME_STORAGE,
        write_classic_multiframe,
    )

    f = write_classic_multiframe(tmp_path / "Planted_Name" / "Planted^Name.dcm",
                                 np.zeros((3, 4, 4), np.uint16), patient=PATIENT, study=STUDY,
                                 series_uid=derived_uid("cine"), sop_class=US_MULTIFRAME_STORAGE,
                                 modality="US", frame_increment_pointer=[FRAME_TIME],
                                 attributes={"FrameTime": 40.0})
    out = tmp_path / "s0000000000000001.nii.gz"
    sidecar = convert_source(_source([f]), out, GeometrySettings())
    assert sidecar["status"] == "excluded:cine-no-geometry"
    assert sidecar["error"].startswith("file 1 of 1: ") and "Planted" not in sidecar["error"]
    assert not out.exists()
