"""acquisition_sidecar: whitelisted, JSON-safe, never identifying."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.dicom.sidecar import acquisition_sidecar

IDENTIFYING = {
    "PatientName": "Zebedee^Quux",
    "PatientID": "MRN-778899",
    "PatientBirthDate": "19410203",
    "AccessionNumber": "ACC-5566",
    "InstitutionName": "St Elsewhere Clinic",
    "InstitutionAddress": "1 Hidden Lane Springfield",
    "StationName": "CTSTATION7",
    "DeviceSerialNumber": "SN-424242",
    "OperatorsName": "Tech^Tina",
    "PerformingPhysicianName": "Doc^Dora",
    "OtherPatientIDs": "OLD-ID-31337",
    "StudyDate": "20230405",
    "AcquisitionDateTime": "20230405101112",
    "StudyID": "STUDYNR-9090",
}


def _planted_series(tmp_path) -> Dataset:
    patient = Patient(patient_id=IDENTIFYING["PatientID"], name=IDENTIFYING["PatientName"],
                      birth_date=IDENTIFYING["PatientBirthDate"], sex="F", age="071Y",
                      weight_kg=63.5, accession=IDENTIFYING["AccessionNumber"],
                      institution=IDENTIFYING["InstitutionName"])
    study = Study(study_uid=derived_uid("sc-study"), frame_of_reference_uid=derived_uid("sc-for"),
                  date=IDENTIFYING["StudyDate"])
    extra = {k: v for k, v in IDENTIFYING.items()
             if k not in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber",
                          "InstitutionName", "StudyDate")}
    acquisition = {"KVP": "120", "XRayTubeCurrent": 250, "Exposure": 18,
                   "ConvolutionKernel": "B30f", "CTDIvol": 7.25, "PatientSize": "1.68",
                   "ReconstructionDiameter": "350.0", "BodyPartExamined": "CHEST", **extra}
    files = write_series(tmp_path, np.zeros((3, 2, 2), np.int16), patient=patient, study=study,
                         series_uid=derived_uid("sc-series"),
                         series_description="CHEST\t1.0\x1b B30f " + "y" * 70,
                         acquisition=acquisition)
    return pydicom.dcmread(files[0], stop_before_pixels=True)


pytestmark = pytest.mark.filterwarnings("ignore:The value length:UserWarning")  # long text written


def test_sidecar_has_no_identifying_values(tmp_path):
    ds = _planted_series(tmp_path)
    for keyword, value in IDENTIFYING.items():   # the planted values really are in the file
        assert str(ds.get(keyword)) == value
    sidecar = acquisition_sidecar(ds)
    dump = json.dumps(sidecar)
    for value in [*IDENTIFYING.values(), "Zebedee", "Quux", "1941"]:
        assert value not in dump, value
    for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID,
                ds.FrameOfReferenceUID, ds.SOPClassUID):
        assert uid not in dump
    assert "Date" not in dump and "UID" not in dump


def test_sidecar_values_and_types(tmp_path):
    sidecar = acquisition_sidecar(_planted_series(tmp_path))
    assert sidecar["Modality"] == "CT"
    assert sidecar["KVP"] == 120.0 and isinstance(sidecar["KVP"], float)
    assert sidecar["XRayTubeCurrent"] == 250 and isinstance(sidecar["XRayTubeCurrent"], int)
    assert sidecar["CTDIvol"] == pytest.approx(7.25)
    assert sidecar["ConvolutionKernel"] == "B30f"
    assert sidecar["ImageType"] == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert sidecar["SliceThickness"] == 1.0
    assert (sidecar["PatientSex"], sidecar["PatientAge"]) == ("F", "071Y")
    assert sidecar["PatientWeight"] == 63.5 and sidecar["PatientSize"] == 1.68
    assert sidecar["SeriesDescription"].startswith("CHEST 1.0 B30f yyy")
    assert len(sidecar["SeriesDescription"]) == 64
    assert "MagneticFieldStrength" not in sidecar          # absent attributes are left out
    assert json.loads(json.dumps(sidecar)) == sidecar


def _item(**values) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def test_pet_radiopharmaceutical_without_times_or_dates():
    ds = Dataset()
    ds.Modality, ds.Units, ds.DecayCorrection = "PT", "BQML", "START"
    nuclide = _item(CodeValue="C-111A1", CodingSchemeDesignator="SRT", CodeMeaning="^18^Fluorine")
    ds.RadiopharmaceuticalInformationSequence = [_item(
        Radiopharmaceutical="Fluorodeoxyglucose", RadionuclideHalfLife="6586.2",
        RadionuclideTotalDose="3.7e8", RadiopharmaceuticalStartTime="091500",
        RadiopharmaceuticalStartDateTime="20230405091500",
        RadionuclideCodeSequence=[nuclide])]
    sidecar = acquisition_sidecar(ds)
    assert sidecar["Radiopharmaceutical"] == {
        "Radiopharmaceutical": "Fluorodeoxyglucose", "RadionuclideHalfLife": 6586.2,
        "RadionuclideTotalDose": 3.7e8, "Radionuclide": "^18^Fluorine"}
    assert "091500" not in json.dumps(sidecar)


def test_enhanced_mr_shared_functional_groups():
    ds = Dataset()
    ds.Modality = "MR"
    ds.MagneticFieldStrength = "3"
    timing = _item(RepetitionTime="6.77", FlipAngle="9")
    ds.SharedFunctionalGroupsSequence = [
        _item(MRTimingAndRelatedParametersSequence=[timing],
              MREchoSequence=[_item(EffectiveEchoTime=2.3)])]
    sidecar = acquisition_sidecar(ds)
    assert (sidecar["RepetitionTime"], sidecar["FlipAngle"]) == (6.77, 9.0)
    assert sidecar["EffectiveEchoTime"] == 2.3
    assert sidecar["MagneticFieldStrength"] == 3.0


def test_malformed_values_are_left_out():
    ds = Dataset()
    ds.Modality = "CT"
    with pydicom.config.disable_value_validation():
        ds.KVP = "1e400"                                    # not a finite number
    ds.ExposureTime = ""
    sidecar = acquisition_sidecar(ds)
    assert sidecar == {"Modality": "CT"}


@pytest.mark.testdata
def test_sts_pet_sidecar(testdata):
    folder = testdata / "sts_002_ct_mr_pet_rtstruct" / "PET" / "dicom" / "image"
    ds = pydicom.dcmread(sorted(folder.iterdir())[0], stop_before_pixels=True)
    sidecar = acquisition_sidecar(ds)
    assert (sidecar["Modality"], sidecar["Units"], sidecar["DecayCorrection"]) == \
        ("PT", "GML", "ADMIN")
    assert sidecar["Radiopharmaceutical"]["RadionuclideHalfLife"] == 6588.0
    assert sidecar["Radiopharmaceutical"]["Radionuclide"] == "18F"
    dump = json.dumps(sidecar)
    assert str(ds.AccessionNumber) not in dump and "STS_002\"" not in dump
