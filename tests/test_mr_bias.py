"""MR bias-field correction (N4, SimpleITK) as an opt-in step of the convert stage
(``convert.mr_bias_correction``; radflow.convert.bias)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from radflow.convert import convert_source, run_convert
from radflow.convert.bias import N4_SETTINGS, SHRINK, n4_correct, shrink_factors
from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.errors import ConfigError
from radflow.io.atomic import write_json
from radflow.io.nifti import read_image, voxel_hash
from radflow.records import read_sidecar
from radflow.settings import ConvertSettings, GeometrySettings, from_mapping

REPO = Path(__file__).resolve().parents[1]
PATIENT = Patient("PID-N4-1", "Planted^Bias")
STUDY = Study(derived_uid("n4-study"), derived_uid("n4-for"))
ON = ConvertSettings(mr_bias_correction=True)


def _source(files, key="s00000000000000b1"):
    return {"series_key": key, "case_id": "c000000000001", "kind": "dicom", "role": "image",
            "files": [str(f) for f in files]}


def _phantom(seed=0):
    """Stored values of an MR phantom (z, y, x) = (24, 64, 64) and its uniform region.

    An ellipsoid of one tissue (400) with a brighter insert (600) in air (0), times a smooth
    multiplicative bias field (exp of a linear ramp in x, a quadratic term in y and a ramp in z:
    about 0.65 .. 1.5), plus Gaussian noise (sd 5).
    """
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[0:24, 0:64, 0:64].astype(float)
    body = ((x - 32) / 28) ** 2 + ((y - 32) / 28) ** 2 + ((z - 12) / 11) ** 2 < 1
    insert = ((x - 24) / 8) ** 2 + ((y - 32) / 8) ** 2 + ((z - 12) / 5) ** 2 < 1
    truth = np.where(body, 400.0, 0.0)
    truth[insert] = 600.0
    bias = np.exp(0.35 * (x - 32) / 32 + 0.2 * ((y - 32) / 32) ** 2 - 0.15 * (z - 12) / 12)
    stored = np.round(truth * bias + rng.normal(0, 5, truth.shape)).clip(0).astype(np.int16)
    # the uniform tissue, away from its edges and the insert
    uniform = (((x - 32) / 24) ** 2 + ((y - 32) / 24) ** 2 + ((z - 12) / 8) ** 2 < 1) & ~(
        ((x - 24) / 11) ** 2 + ((y - 32) / 11) ** 2 + ((z - 12) / 7) ** 2 < 1)
    return stored, uniform


def _write_mr(folder, stored, uid="n4-mr"):
    return write_series(folder, stored, patient=PATIENT, study=STUDY,
                        series_uid=derived_uid(uid), modality="MR", intercept=0.0,
                        spacing=(1.5, 1.5, 3.0))


def _cv(values: np.ndarray) -> float:
    return float(values.std() / values.mean())


def test_n4_flattens_a_known_bias(tmp_path) -> None:
    """The coefficient of variation inside the uniform tissue falls from 0.124 (the bias) to
    0.015 (about the noise's 0.013); the output is float32 on the same grid, and the sidecar
    records the method and every setting."""
    stored, uniform = _phantom()
    files = _write_mr(tmp_path / "d", stored)
    out = tmp_path / "o" / "s00000000000000b1.nii.gz"
    sidecar = convert_source(_source(files), out, GeometrySettings(), convert=ON)
    assert sidecar["status"] == "ok"
    image = read_image(out)
    assert image.GetPixelID() == sitk.sitkFloat32
    assert image.GetSize() == (64, 64, 24)
    assert image.GetSpacing() == pytest.approx((1.5, 1.5, 3.0))
    corrected = sitk.GetArrayFromImage(image)
    before, after = _cv(stored[uniform].astype(float)), _cv(corrected[uniform].astype(float))
    assert before > 0.1
    assert after < before / 4 and after < 0.03
    record = sidecar["bias_correction"]
    assert record["method"] == "n4" and record["mask"] == "otsu"
    assert record["shrink"] == [SHRINK, SHRINK, SHRINK]
    assert {k: record[k] for k in N4_SETTINGS} == N4_SETTINGS
    assert record["library"].startswith("SimpleITK ")
    assert 0 < record["seconds"] < 60 and record["iterations_last_level"] >= 1
    assert sidecar["voxel_hash"] == voxel_hash(image)


def test_n4_is_deterministic(tmp_path) -> None:
    stored, _ = _phantom(seed=1)
    files = _write_mr(tmp_path / "d", stored)
    hashes = []
    for run in range(2):
        out = tmp_path / f"run{run}" / "s00000000000000b1.nii.gz"
        hashes.append(convert_source(_source(files), out, GeometrySettings(),
                                     convert=ON)["voxel_hash"])
    assert hashes[0] == hashes[1]


def test_off_by_default_output_unchanged(tmp_path) -> None:
    """Without the switch (the default, and the config file's value) an MR is written as before:
    int16, the stored values, no ``bias_correction`` key."""
    stored, _ = _phantom()
    files = _write_mr(tmp_path / "d", stored)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    from_config = from_mapping(ConvertSettings, config["convert"], section="convert")
    assert from_config.mr_bias_correction is False
    results = []
    for name, convert in (("none", None), ("default", ConvertSettings()),
                          ("config", from_config)):
        out = tmp_path / name / "s00000000000000b1.nii.gz"
        sidecar = convert_source(_source(files), out, GeometrySettings(), convert=convert)
        assert "bias_correction" not in sidecar
        image = read_image(out)
        assert image.GetPixelID() == sitk.sitkInt16
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image), stored)
        results.append(sidecar["voxel_hash"])
    assert len(set(results)) == 1


def test_only_mr_is_corrected(tmp_path) -> None:
    """A CT series is written as it is, switch on or not."""
    stored, _ = _phantom()
    files = write_series(tmp_path / "d", stored, patient=PATIENT, study=STUDY,
                         series_uid=derived_uid("n4-ct"), modality="CT", intercept=-1024.0)
    out = tmp_path / "o" / "s00000000000000b1.nii.gz"
    sidecar = convert_source(_source(files), out, GeometrySettings(), convert=ON)
    assert sidecar["status"] == "ok" and "bias_correction" not in sidecar
    assert read_image(out).GetPixelID() == sitk.sitkInt16


def test_sidecar_record_round_trips(tmp_path) -> None:
    stored, _ = _phantom()
    files = _write_mr(tmp_path / "d", stored)
    source_json, sidecar_json = tmp_path / "source.json", tmp_path / "o" / "s00000000000000b1.json"
    write_json(source_json, _source(files))
    run_convert(source_json=str(source_json), sidecar_json=str(sidecar_json),
                settings=GeometrySettings(), convert=ON)
    sidecar = read_sidecar(sidecar_json)
    assert sidecar.status == "ok"
    assert sidecar.bias_correction is not None and sidecar.bias_correction["method"] == "n4"
    assert sidecar.to_json()["bias_correction"] == sidecar.bias_correction


def test_constant_volume_fails_without_a_volume(tmp_path) -> None:
    """N4 needs a foreground: a constant series is ``failed:bias-correction-failed`` (never an
    uncorrected volume in a cohort the user asked to correct)."""
    files = _write_mr(tmp_path / "d", np.full((4, 16, 16), 7, np.int16), uid="n4-flat")
    out = tmp_path / "o" / "s00000000000000b1.nii.gz"
    sidecar = convert_source(_source(files), out, GeometrySettings(), convert=ON)
    assert sidecar["status"] == "failed:bias-correction-failed"
    assert "Otsu" in sidecar["error"] and not out.exists()


def test_shrink_factors_keep_short_axes() -> None:
    assert shrink_factors((256, 256, 176)) == [4, 4, 4]
    assert shrink_factors((115, 90, 35)) == [4, 4, 4]
    assert shrink_factors((64, 64, 10)) == [4, 4, 2]
    assert shrink_factors((64, 64, 3)) == [4, 4, 1]


def test_n4_correct_keeps_the_grid() -> None:
    stored, _ = _phantom()
    image = sitk.GetImageFromArray(stored)
    image.SetSpacing((0.9, 0.8, 2.5))
    image.SetOrigin((-10.0, 20.0, 5.0))
    image.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    corrected, _ = n4_correct(image)
    assert corrected.GetPixelID() == sitk.sitkFloat32
    for getter in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):
        assert getattr(corrected, getter)() == getattr(image, getter)()


def test_setting_is_checked() -> None:
    assert from_mapping(ConvertSettings, {"mr_bias_correction": True}).mr_bias_correction
    with pytest.raises(ConfigError, match="mr_bias_corection"):
        from_mapping(ConvertSettings, {"mr_bias_corection": True}, section="convert")


@pytest.mark.testdata
def test_sts_002_mr_with_n4(testdata, tmp_path) -> None:
    """The real T1 MR of STS_002 (115 x 90 x 35; already N4-corrected by mirp upstream, so the
    field found here is small) converts with N4 and finishes quickly."""
    folder = testdata / "sts_002_ct_mr_pet_rtstruct" / "MR_T1" / "dicom" / "image"
    files = sorted(folder.iterdir())
    out = tmp_path / "s00000000000000b1.nii.gz"
    sidecar = convert_source(_source(files), out, GeometrySettings(), convert=ON)
    assert sidecar["status"] == "ok"
    record = sidecar["bias_correction"]
    assert record["shrink"] == [4, 4, 4] and record["seconds"] < 30
    image = read_image(out)
    assert image.GetPixelID() == sitk.sitkFloat32 and image.GetSize() == (115, 90, 35)
    values = sitk.GetArrayFromImage(image)
    assert np.isfinite(values).all()
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(
        testdata / "sts_002_ct_mr_pet_rtstruct" / "MR_T1" / "nifti" / "image" / "image.nii.gz")))
    # the reference holds the uncorrected values: their ratio is 1 / the field N4 found
    ratio = values[reference > 0] / reference[reference > 0]
    assert 0.5 < float(np.median(ratio)) < 2.0    # a multiplicative field near 1
    assert float(ratio.std()) > 1e-3               # and not a constant: N4 did something
