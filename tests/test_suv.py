"""PET standardised uptake values (radflow.dicom.suv, radflow.convert.pet).

Every expected factor is written out from first principles: SUVbw = activity [Bq/ml] x
weight [g] / dose at the reference time [Bq], the dose at time t after the injection being
dose x 2^(-t / half-life). The synthetic series (radflow.demo.synthetic_pet) is an FDG scan at
10:15:00, injected at 09:15:00 with 370 MBq (half-life 6586.2 s), 75 kg, 1.75 m, male.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from radflow.convert import convert_source
from radflow.demo.synthetic import Patient, Study, derived_uid
from radflow.demo.synthetic_pet import write_pet_series
from radflow.dicom.reasons import REASONS
from radflow.dicom.suv import body_surface_area_m2, lean_body_mass_kg, suv_factors
from radflow.errors import ConfigError, SuvError
from radflow.io.nifti import read_image
from radflow.settings import ConvertSettings, GeometrySettings, from_mapping

PATIENT = Patient("PID-SUV-1", "Planted^Pet", birth_date="19010203", accession="ACC-SUV-1")
STUDY = Study(derived_uid("suv-study"), derived_uid("suv-for"))
WEIGHT_G, DOSE_BQ, HALF_LIFE_S = 75_000.0, 3.7e8, 6586.2
#: Injection 09:15:00, scan 10:15:00: START decays the dose over 3600 s.
START_FACTOR = WEIGHT_G / (DOSE_BQ * 2 ** (-3600 / HALF_LIFE_S))


def _headers(tmp_path, n: int = 3, **kwargs) -> list[pydicom.Dataset]:
    files = write_pet_series(tmp_path / "pet", np.zeros((n, 2, 2), np.uint16), patient=PATIENT,
                             study=STUDY, series_uid=derived_uid("suv", str(tmp_path)),
                             **kwargs)
    return [pydicom.dcmread(f, stop_before_pixels=True) for f in files]


def _reason(tmp_path, method: str = "suv-bw", **kwargs) -> str:
    with pytest.raises(SuvError) as info:
        suv_factors(_headers(tmp_path, **kwargs), method)
    assert REASONS[info.value.reason][0] == "failed"
    return info.value.reason


# --- the three decay corrections ---------------------------------------------------------------


def test_start_decay_correction_matches_the_hand_computed_factor(tmp_path) -> None:
    result = suv_factors(_headers(tmp_path), "suv-bw")
    # 2^(-3600/6586.2) = 0.684633; 75000 g / (3.7e8 Bq x 0.684633) = 2.96075e-4 g/Bq
    assert result.factor == pytest.approx(2.96075e-4, rel=1e-5)
    assert result.method == "suv-bw" and result.factor == pytest.approx(START_FACTOR, rel=1e-9)
    inputs = result.inputs.to_json()
    assert inputs["elapsed_s"] == pytest.approx(3600.0)
    assert inputs["reference_from"] == "SeriesDate/SeriesTime"
    assert inputs["injection_from"] == "RadiopharmaceuticalStartDateTime"
    assert (inputs["weight_kg"], inputs["dose_bq"], inputs["half_life_s"]) == (75.0, 3.7e8,
                                                                              6586.2)
    assert inputs["decay_factor"] == pytest.approx(2 ** (-3600 / HALF_LIFE_S))


def test_admin_decay_correction_uses_the_whole_dose(tmp_path) -> None:
    """Voxels decay-corrected to the injection: no decay, and neither times nor half-life."""
    result = suv_factors(_headers(tmp_path, header={"DecayCorrection": "ADMIN"},
                                  radiopharmaceutical={"RadionuclideHalfLife": None,
                                                       "RadiopharmaceuticalStartTime": None,
                                                       "RadiopharmaceuticalStartDateTime": None}),
                         "suv-bw")
    assert result.factor == pytest.approx(WEIGHT_G / DOSE_BQ, rel=1e-12)  # 2.02703e-4
    assert result.to_json()["inputs"]["decay_factor"] == 1.0


def test_no_decay_correction_averages_the_dose_over_each_frame(tmp_path) -> None:
    """Two bed positions of 180 s: slices 0-1 start at 10:15:00, slices 2-3 at 10:18:00."""
    times = ["101500", "101500", "101800", "101800"]
    headers = _headers(tmp_path, n=4, header={"DecayCorrection": "NONE",
                                              "CorrectedImage": ["ATTN", "SCAT"]},
                       slice_header=lambda k: {"AcquisitionTime": times[k]})
    result = suv_factors(headers, "suv-bw")
    rate, frame = math.log(2) / HALF_LIFE_S, 180.0
    mean_over_frame = (1 - math.exp(-rate * frame)) / (rate * frame)
    expected = [WEIGHT_G / (DOSE_BQ * 2 ** (-t / HALF_LIFE_S) * mean_over_frame)
                for t in (3600, 3600, 3780, 3780)]
    assert result.factor is None
    np.testing.assert_allclose(result.factors, expected, rtol=1e-9)
    assert result.to_json()["inputs"]["elapsed_s"] == [3600.0, 3600.0, 3780.0, 3780.0]


# --- the times: vendor pitfalls ------------------------------------------------------------------


def test_series_time_after_acquisition_uses_the_earliest_acquisition(tmp_path) -> None:
    """A series re-saved at 11:30 (GE / Siemens post-processing): the scan started at the
    earliest AcquisitionTime, 10:15:00 (the others are later bed positions)."""
    times = ["101800", "101500", "102100"]
    result = suv_factors(_headers(tmp_path, header={"SeriesTime": "113000"},
                                  slice_header=lambda k: {"AcquisitionTime": times[k]}),
                         "suv-bw")
    assert result.factor == pytest.approx(START_FACTOR, rel=1e-9)
    assert result.inputs.reference_from.startswith("earliest AcquisitionDate/AcquisitionTime")


def test_missing_start_date_assumes_the_scan_date(tmp_path) -> None:
    result = suv_factors(_headers(tmp_path, radiopharmaceutical={
        "RadiopharmaceuticalStartDateTime": None}), "suv-bw")
    assert result.factor == pytest.approx(START_FACTOR, rel=1e-9)
    assert result.inputs.injection_from == "RadiopharmaceuticalStartTime on the scan date"


@pytest.mark.parametrize("start_datetime", [None, "20240102234500"])
def test_midnight_crossing(tmp_path, start_datetime) -> None:
    """Injected 23:45, scanned 00:30 the next day: 45 min of decay, with or without the date."""
    day_two = {"SeriesDate": "20240103", "SeriesTime": "003000", "AcquisitionDate": "20240103",
               "AcquisitionTime": "003000"}
    result = suv_factors(_headers(tmp_path, header=day_two, radiopharmaceutical={
        "RadiopharmaceuticalStartTime": "234500",
        "RadiopharmaceuticalStartDateTime": start_datetime}), "suv-bw")
    assert result.factor == pytest.approx(WEIGHT_G / (DOSE_BQ * 2 ** (-2700 / HALF_LIFE_S)),
                                          rel=1e-9)
    if start_datetime is None:
        assert "midnight" in result.inputs.injection_from


def test_a_start_datetime_after_the_scan_falls_back_to_the_start_time(tmp_path) -> None:
    """As in the shared STS_002 PET: a de-identification that shifted the StartDateTime one day
    past the series date. The StartTime on the scan date (the QIBA rule) gives the 1 h."""
    result = suv_factors(_headers(tmp_path, radiopharmaceutical={
        "RadiopharmaceuticalStartDateTime": "20240103091500"}), "suv-bw")
    assert result.factor == pytest.approx(START_FACTOR, rel=1e-9)
    assert "RadiopharmaceuticalStartDateTime not used" in result.inputs.injection_from


@pytest.mark.parametrize(("pharm", "header"), [
    ({"RadiopharmaceuticalStartDateTime": "20240103091500", "RadiopharmaceuticalStartTime": None},
     {}),                                                    # after the scan, nothing to fall back
    ({"RadiopharmaceuticalStartDateTime": None, "RadiopharmaceuticalStartTime": "103000"},
     {}),                                                    # 23.75 h before: > 10 half-lives
    ({"RadiopharmaceuticalStartDateTime": "20231225091500"}, {}),  # a week before, no start time
])
def test_implausible_times(tmp_path, pharm, header) -> None:
    if "RadiopharmaceuticalStartTime" not in pharm:
        pharm = {**pharm, "RadiopharmaceuticalStartTime": None}
    assert _reason(tmp_path, radiopharmaceutical=pharm, header=header) == "suv-implausible-times"


# --- units -------------------------------------------------------------------------------------


def _philips(element: int, value: str):
    def add(_k: int, ds: pydicom.Dataset) -> None:
        ds.private_block(0x7053, "Philips PET Private Group", create=True).add_new(
            element, "DS", value)
    return add


def test_philips_counts_with_the_suv_scale_factor(tmp_path) -> None:
    result = suv_factors(_headers(tmp_path, header={"Units": "CNTS"},
                                  per_slice=_philips(0x00, "0.000412")), "suv-bw")
    assert result.factor == pytest.approx(0.000412)
    assert result.inputs.vendor_scale == "Philips SUV Scale Factor (7053,1000)"


def test_philips_counts_with_the_activity_concentration_factor(tmp_path) -> None:
    """(7053,1009) x rescaled value = Bq/ml, then as BQML."""
    result = suv_factors(_headers(tmp_path, header={"Units": "CNTS"},
                                  per_slice=_philips(0x09, "2.5")), "suv-bw")
    assert result.factor == pytest.approx(2.5 * START_FACTOR, rel=1e-9)


def test_stored_suv_keeps_its_values_and_can_become_sul(tmp_path) -> None:
    gml = {"Units": "GML", "SUVType": "BW"}
    stored = suv_factors(_headers(tmp_path / "a", header=gml), "suv-bw")
    assert (stored.method, stored.factor) == ("stored-suv", 1.0)
    sul = suv_factors(_headers(tmp_path / "b", header={**gml, "SUVType": None}), "suv-lbm")
    bmi = 75 / 1.75 ** 2
    assert sul.factor == pytest.approx(9270 / (6680 + 216 * bmi), rel=1e-12)  # LBM / weight
    assert sul.inputs.suv_type == "BW (assumed)"


@pytest.mark.parametrize(("header", "kwargs"), [
    ({"Units": None}, {}),
    ({"Units": "PROPCNTS"}, {}),
    ({"Units": "CNTS"}, {}),                                  # no Philips scale factor
    ({"Units": "GML", "SUVType": "LBM"}, {"method": "suv-bw"}),  # James LBM: not convertible
])
def test_units_that_cannot_become_suv(tmp_path, header, kwargs) -> None:
    assert _reason(tmp_path, header=header, **kwargs) == "suv-units-unknown"


# --- each unsafe header: its reason ---------------------------------------------------------------


@pytest.mark.parametrize(("header", "pharm", "method", "reason"), [
    ({"PatientWeight": None}, {}, "suv-bw", "suv-missing-weight"),
    ({"PatientWeight": "0"}, {}, "suv-bw", "suv-missing-weight"),
    ({"PatientWeight": "75000"}, {}, "suv-bw", "suv-missing-weight"),   # grams written as kg
    ({}, {"RadionuclideTotalDose": None}, "suv-bw", "suv-missing-dose"),
    ({}, {"RadionuclideTotalDose": "370"}, "suv-bw", "suv-missing-dose"),  # MBq written as Bq
    ({}, {"sequence": None}, "suv-bw", "suv-missing-dose"),
    ({}, {"RadionuclideHalfLife": None}, "suv-bw", "suv-missing-half-life"),
    ({}, {"RadiopharmaceuticalStartTime": None, "RadiopharmaceuticalStartDateTime": None},
     "suv-bw", "suv-missing-start-time"),
    ({"SeriesTime": None, "AcquisitionTime": None}, {}, "suv-bw", "suv-missing-scan-time"),
    ({"DecayCorrection": None}, {}, "suv-bw", "suv-decay-unknown"),
    ({"DecayCorrection": "SCAN"}, {}, "suv-bw", "suv-decay-unknown"),
    ({"CorrectedImage": ["ATTN"]}, {}, "suv-bw", "suv-decay-unknown"),    # START without DECY
    ({"DecayCorrection": "NONE"}, {}, "suv-bw", "suv-decay-unknown"),     # NONE with DECY
    ({"DecayCorrection": "NONE", "CorrectedImage": ["ATTN"], "ActualFrameDuration": None}, {},
     "suv-bw", "suv-decay-unknown"),
    ({"CorrectedImage": ["DECY", "SCAT"]}, {}, "suv-bw", "suv-not-attenuation-corrected"),
    ({"CorrectedImage": None}, {}, "suv-bw", "suv-not-attenuation-corrected"),
    ({"PatientSize": None}, {}, "suv-lbm", "suv-missing-height-or-sex"),
    ({"PatientSize": "175"}, {}, "suv-bsa", "suv-missing-height-or-sex"),  # cm written as m
    ({"PatientSex": "O"}, {}, "suv-lbm", "suv-missing-height-or-sex"),
])
def test_each_unsafe_header_gives_its_reason(tmp_path, header, pharm, method, reason) -> None:
    assert _reason(tmp_path, method, header=header, radiopharmaceutical=pharm) == reason


@pytest.mark.parametrize("changed", [{"PatientWeight": "80.0"}, {"SeriesTime": "101600"},
                                     {"Units": "CNTS"}])
def test_slices_that_disagree_are_inconsistent(tmp_path, changed) -> None:
    assert _reason(tmp_path, slice_header=lambda k: changed if k == 2 else {}) == \
        "suv-inconsistent-headers"


# --- SUL and SUVbsa -------------------------------------------------------------------------------


def test_lean_body_mass_and_body_surface_area_by_hand() -> None:
    # BMI 75 / 1.75^2 = 24.4898; men 9270 x 75 / (6680 + 216 x 24.4898) = 58.0837 kg,
    # women 9270 x 75 / (8780 + 244 x 24.4898) = 47.1180 kg (Janmahasatian 2005)
    assert lean_body_mass_kg(75, 1.75, "M") == pytest.approx(58.0837, rel=1e-5)
    assert lean_body_mass_kg(75, 1.75, "F") == pytest.approx(47.1180, rel=1e-5)
    # Du Bois: 0.007184 x 75^0.425 x 175^0.725 = 1.90314 m2
    assert body_surface_area_m2(75, 1.75) == pytest.approx(1.90314, rel=1e-5)


def test_sul_and_suv_bsa_factors(tmp_path) -> None:
    decayed = DOSE_BQ * 2 ** (-3600 / HALF_LIFE_S)
    sul = suv_factors(_headers(tmp_path / "m"), "suv-lbm")
    assert sul.factor == pytest.approx(58.0837e3 / decayed, rel=1e-5)
    assert sul.inputs.lean_body_mass_kg == pytest.approx(58.0837, rel=1e-5)
    female = suv_factors(_headers(tmp_path / "f", header={"PatientSex": "F"}), "suv-lbm")
    assert female.factor == pytest.approx(47.1180e3 / decayed, rel=1e-5)
    bsa = suv_factors(_headers(tmp_path / "b", header={"PatientSex": None}), "suv-bsa")
    assert bsa.factor == pytest.approx(1.90314e4 / decayed, rel=1e-5)  # cm2 / Bq


def test_the_record_holds_no_date_or_time_of_day(tmp_path) -> None:
    for method in ("suv-bw", "suv-lbm"):
        dump = json.dumps(suv_factors(_headers(tmp_path / method), method).to_json())
        for value in ("20240102", "2024", "091500", "101500", "09:15", "10:15"):
            assert value not in dump, value


# --- end to end: convert --------------------------------------------------------------------------


def _convert(tmp_path, stored, settings=None, **kwargs):
    files = write_pet_series(tmp_path / "dicom", stored, patient=PATIENT, study=STUDY,
                             series_uid=derived_uid("suv-e2e", str(tmp_path)), **kwargs)
    out = tmp_path / "out" / "s0000000000000001.nii.gz"
    source = {"series_key": "s0000000000000001", "case_id": "c000000000001", "kind": "dicom",
              "role": "image", "files": [str(f) for f in files]}
    return convert_source(source, out, GeometrySettings(), convert=settings), out


def _stored(n: int = 3) -> np.ndarray:
    return (np.arange(n * 4 * 5).reshape(n, 4, 5) * 1237 % 40000).astype(np.uint16)


def test_convert_writes_bqml_pet_as_suv_within_0_1_percent(tmp_path) -> None:
    stored = _stored()
    sidecar, out = _convert(tmp_path, stored, slope=0.25)   # Bq/ml = stored x 0.25
    assert sidecar["status"] == "ok"
    assert sidecar["suv"]["method"] == "suv-bw"
    assert sidecar["suv"]["factor"] == pytest.approx(START_FACTOR, rel=1e-9)
    image = read_image(out)
    assert image.GetPixelID() == sitk.sitkFloat32
    expected = stored.astype(np.float64) * 0.25 * START_FACTOR
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), expected, rtol=1e-3)
    text = json.dumps(sidecar)
    for planted in ("PID-SUV-1", "Planted", "ACC-SUV-1", "19010203", "20240102"):
        assert planted not in text


def test_convert_applies_per_slice_factors_without_decay_correction(tmp_path) -> None:
    times = ["101500", "101500", "101800", "101800"]
    stored = _stored(4)
    sidecar, out = _convert(tmp_path, stored, header={"DecayCorrection": "NONE",
                                                      "CorrectedImage": ["ATTN"]},
                            slice_header=lambda k: {"AcquisitionTime": times[k]})
    assert sidecar["status"] == "ok" and len(sidecar["suv"]["factors"]) == 4
    rate = math.log(2) / HALF_LIFE_S
    mean_over_frame = (1 - math.exp(-rate * 180)) / (rate * 180)
    factors = [WEIGHT_G / (DOSE_BQ * 2 ** (-t / HALF_LIFE_S) * mean_over_frame)
               for t in (3600, 3600, 3780, 3780)]
    np.testing.assert_allclose(sitk.GetArrayFromImage(read_image(out)),
                               stored * np.asarray(factors)[:, None, None], rtol=1e-3)


def test_convert_unsafe_header_fails_without_a_volume(tmp_path) -> None:
    sidecar, out = _convert(tmp_path, _stored(), header={"PatientWeight": None})
    assert sidecar["status"] == "failed:suv-missing-weight"
    assert "PatientWeight" in sidecar["error"] and not out.exists()


def test_convert_pet_units_choices(tmp_path) -> None:
    stored = _stored()
    kept, out = _convert(tmp_path / "stored", stored, ConvertSettings(pet_units="stored"),
                         header={"PatientWeight": None})
    assert kept["status"] == "ok" and kept["suv"]["method"] == "stored"
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_image(out)), stored)
    sul, out = _convert(tmp_path / "sul", stored, ConvertSettings(pet_units="suv-lbm"))
    assert sul["suv"]["method"] == "suv-lbm"
    lbm_g = 9270 * 75 / (6680 + 216 * 75 / 1.75 ** 2) * 1000
    np.testing.assert_allclose(sitk.GetArrayFromImage(read_image(out)),
                               stored * lbm_g / (DOSE_BQ * 2 ** (-3600 / HALF_LIFE_S)),
                               rtol=1e-3)


# --- real data: the shared STS_002 PET ---------------------------------------------------------


@pytest.mark.testdata
def test_sts_002_pet_is_stored_suv_and_keeps_its_values(testdata, tmp_path) -> None:
    """The shared PET has Units GML (SUVType BW, already converted to SUV by its curator):
    suv-bw keeps the stored values bit for bit (factor 1, method stored-suv), equal to the
    curator's NIfTI; suv-lbm scales them by LBM / weight (99 kg, 1.74 m, male)."""
    folder = testdata / "sts_002_ct_mr_pet_rtstruct" / "PET"
    files = sorted((folder / "dicom" / "image").glob("*.dcm"))
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert (first.Units, first.SUVType, first.DecayCorrection) == ("GML", "BW", "ADMIN")
    source = {"series_key": "s0000000000000001", "case_id": "c000000000001", "kind": "dicom",
              "role": "image", "files": [str(f) for f in files]}
    runs = {}
    for units in ("suv-bw", "stored", "suv-lbm"):
        out = tmp_path / units / "s0000000000000001.nii.gz"
        sidecar = convert_source(source, out, GeometrySettings(),
                                 convert=ConvertSettings(pet_units=units))
        assert sidecar["status"] == "ok"
        runs[units] = (sidecar, sitk.GetArrayFromImage(read_image(out)))
    sidecar, suv = runs["suv-bw"]
    assert (sidecar["suv"]["method"], sidecar["suv"]["factor"]) == ("stored-suv", 1.0)
    np.testing.assert_array_equal(suv, runs["stored"][1])
    assert float(suv.max()) == pytest.approx(21.68, abs=0.01)
    curated = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "nifti" / "image" /
                                                        "image.nii.gz")))
    np.testing.assert_allclose(np.sort(suv, axis=None), np.sort(curated, axis=None), rtol=1e-6)
    bmi = 99 / 1.74 ** 2
    ratio = 9270 / (6680 + 216 * bmi)  # LBM / weight, Janmahasatian 2005 (male)
    np.testing.assert_allclose(runs["suv-lbm"][1], suv.astype(np.float64) * ratio, rtol=1e-6)
    assert runs["suv-lbm"][0]["suv"]["factor"] == pytest.approx(ratio, rel=1e-12)


def test_pet_units_setting_is_checked() -> None:
    assert from_mapping(ConvertSettings, {"pet_units": "suv-bsa"}).pet_units == "suv-bsa"
    assert ConvertSettings().pet_units == "suv-bw"
    with pytest.raises(ConfigError, match=r"convert\.pet_units must be one of"):
        from_mapping(ConvertSettings, {"pet_units": "suv"}, section="convert")
