"""Attribute-level checks of :func:`deidentify_dataset` against Table E.1-1, and planted PHI.

The planted-PHI helpers here (:data:`PATIENTS`, :func:`planted_terms`, :func:`phi_hits`,
:func:`write_planted_series`) are also used by ``test_deid_tree.py``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radflow.deidentify.dataset import DUMMY_TEXT, deidentify_dataset
from radflow.deidentify.dates import date_shift_days, shift_da
from radflow.deidentify.profile import DeidSettings, action_table, resolve
from radflow.deidentify.uids import replace_uid
from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.keys import case_id

KEY = b"0123456789abcdef0123456789abcdef"

# ---------------------------------------------------------------- planted PHI (shared fixture)

#: Patients with names in Latin (UTF-8 and ISO 8859-1) and Korean (ISO 2022 IR 149 and UTF-8).
PATIENTS = [
    Patient("PID-884213", "Müller^Hans-Jürgen", birth_date="19580317", sex="M", age="065Y",
            weight_kg=81.5, accession="ACC-55120X", institution="Sangdo Riverside Hospital",
            charset="ISO_IR 192"),
    Patient("MRN7719024", "Kim^Minjun=김^민준", birth_date="19610704", sex="M", age="062Y",
            weight_kg=70.0, accession="ACC-66231Y", institution="Sangdo Riverside Hospital",
            charset=["", "ISO 2022 IR 149"]),
    Patient("KR-5093377", "Park^Seoyeon=박^서연", birth_date="19700211", sex="F", age="053Y",
            weight_kg=55.0, accession="ACC-77342Z", institution="Sangdo Riverside Hospital",
            charset="ISO_IR 192"),
    Patient("IE-3390051", "O'Brien^Siobhan", birth_date="19821130", sex="F", age="041Y",
            weight_kg=62.0, accession="ACC-88453W", institution="Sangdo Riverside Hospital",
            charset="ISO_IR 100"),
]
#: Identifying values planted besides the patients' own (same for every patient).
EXTRA = {
    "InstitutionAddress": "77 Riverside-ro Sangdo-dong",
    "ReferringPhysicianName": "Whitfield^Grace",
    "PerformingPhysicianName": "Hartmann^Ulrike",
    "OperatorsName": "Kowalczyk^Tomasz",
    "DeviceSerialNumber": "SN99A7731",
    "StationName": "ZETASTATION7",
    "InstitutionalDepartmentName": "Quarrington Radiology",
    "ImageComments": "anxious patient Quennell",
    "StudyComments": "call 010-5555-1234",
    "RequestingPhysician": "Abernathy^Lionel",
    "OtherPatientIDs": "ALTID-4471902",
}
PRIVATE_CREATOR = "ACME PLANTED 1"
PRIVATE_VALUE = "PRIVATEPHI Vasquez"
STUDY_DATE = "20230915"


def planted_terms(patient: Patient) -> dict[str, str]:
    """label -> value of everything identifying planted for ``patient`` (searchable parts)."""
    terms = {"patient-id": patient.patient_id, "birth-date": patient.birth_date,
             "accession": patient.accession, "institution": "Sangdo",
             "institution-2": "Riverside", "study-date": STUDY_DATE,
             "private": "Vasquez", "other-id": "ALTID-4471902", "serial": "SN99A7731",
             "station": "ZETASTATION7", "department": "Quarrington", "comment": "Quennell",
             "phone": "5555-1234"}
    for kw in ("ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
               "RequestingPhysician"):
        for part in EXTRA[kw].split("^"):
            terms[f"{kw}-{part}"] = part
    for group in patient.name.split("="):
        parts = group.split("^")
        terms[f"name-{group}"] = group
        for part in parts:
            # one Hangul syllable is 2 bytes in EUC-KR: too short to search without false hits
            if len(part) >= 2:
                terms[f"name-part-{part}"] = part
    return terms


def encodings_of(value: str) -> set[bytes]:
    """``value`` in every encoding a planted value may have been written in, several cases."""
    out = set()
    for variant in {value, value.lower(), value.upper(), value.title()}:
        for enc in ("utf-8", "latin-1", "euc_kr", "utf-16-le"):
            try:
                out.add(variant.encode(enc).lower())
            except UnicodeEncodeError:
                continue
    return out


def phi_hits(data: bytes, terms: dict[str, str]) -> list[str]:
    """Labels of the planted terms found in ``data`` (case-insensitive, all encodings)."""
    low = data.lower()
    return sorted(label for label, value in terms.items()
                  if any(enc in low for enc in encodings_of(value)))


def _planted_attributes(k: int, ds: Dataset, patient: Patient, study_uid: str) -> None:
    for keyword, value in EXTRA.items():
        setattr(ds, keyword, value)
    groups = patient.name.split("=")
    native = groups[1].split("^")[1] if len(groups) > 1 else ""  # e.g. the Hangul given name
    ds.SeriesDescription = f"CT {groups[0].split('^')[0]} thorax {patient.birth_date} {native}"
    ds.ProtocolName = f"Hartmann chest protocol {patient.patient_id}"
    ds.StudyDescription = "Sangdo Riverside Hospital CT CHEST"
    ds.PatientComments = f"{patient.name} lives at 77 Riverside-ro"
    ds.AcquisitionDate = STUDY_DATE
    ds.ContentDate = STUDY_DATE
    ds.InstanceCreationDate = STUDY_DATE
    ds.DateOfGainCalibration = STUDY_DATE  # a date the table does not list
    ds.PatientSize = "1.81"
    ds.KVP = "120"
    ds.ConvolutionKernel = "STANDARD"
    other = Dataset()
    other.PatientID = patient.patient_id
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    request = Dataset()
    request.AccessionNumber = patient.accession
    request.RequestedProcedureID = "RP-" + patient.patient_id
    ds.RequestAttributesSequence = Sequence([request])
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ref.ReferencedSOPInstanceUID = derived_uid(study_uid, "other-image", k)
    ds.ReferencedImageSequence = Sequence([ref])
    block = ds.private_block(0x0029, PRIVATE_CREATOR, create=True)
    block.add_new(0x10, "LO", PRIVATE_VALUE)
    block.add_new(0x11, "PN", patient.name.split("=")[0])
    safe = ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
    safe.add_new(0x0E, "FL", 2.5)  # Scale Slope: on the standard's safe list


def write_planted_series(root: Path, patient: Patient, n: int = 3, series: int = 1) \
        -> tuple[list[Path], str]:
    """A small CT series of ``patient`` with every planted value, in folders and files named
    after the patient (archives are often organised so); returns (files, study UID)."""
    study_uid = derived_uid(patient.patient_id, "study")
    folder = root / patient.name.split("=")[0].replace("^", "_") / patient.patient_id / \
        f"{patient.accession}_series{series}"
    # series 2, 3 ... other pixels: identical ones would be re-exported copies of series 1
    stored = (np.arange(n * 8 * 8, dtype=np.int16).reshape(n, 8, 8) % 50) + 50 * (series - 1)
    files = write_series(
        folder, stored, patient=patient,
        study=Study(study_uid, derived_uid(patient.patient_id, "for"), date=STUDY_DATE),
        series_uid=derived_uid(patient.patient_id, "series", series),
        series_number=series, file_names=[f"IM_{patient.name[:6]}_{k:04d}.dcm"
                                          for k in range(n)],
        per_slice=lambda k, ds: _planted_attributes(k, ds, patient, study_uid))
    return files, study_uid


def roundtrip(ds: Dataset) -> tuple[bytes, Dataset]:
    """``ds`` written as a DICOM file and read back."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    return data, pydicom.dcmread(io.BytesIO(data))


DEFAULT = DeidSettings()


def _deid(path: Path, settings: DeidSettings = DEFAULT) -> tuple[Dataset, Dataset]:
    source = pydicom.dcmread(path)
    new, _ = deidentify_dataset(source, settings, KEY, case_id(KEY, source.PatientID))
    return source, roundtrip(new)[1]


def _values(datasets: Iterable[Dataset], keyword: str) -> list[object]:
    return [ds.get(keyword) for ds in datasets]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("planted")
    return [write_planted_series(root, p)[0][0] for p in PATIENTS]


# ------------------------------------------------------------------------------ planted PHI

@pytest.mark.parametrize("dates", ["shift", "remove"])
@pytest.mark.parametrize("index", range(len(PATIENTS)))
def test_no_planted_value_survives_in_the_bytes(planted, index, dates):
    source = pydicom.dcmread(planted[index])
    terms = planted_terms(PATIENTS[index])
    source_bytes = planted[index].read_bytes()
    assert phi_hits(source_bytes, terms) == sorted(terms)  # the scan finds every planted value
    new, _ = deidentify_dataset(source, DeidSettings(dates=dates), KEY,
                                case_id(KEY, source.PatientID))
    data, _ = roundtrip(new)
    assert phi_hits(data, terms) == []
    for uid in (source.SOPInstanceUID, source.SeriesInstanceUID, source.StudyInstanceUID,
                source.FrameOfReferenceUID, source.ReferencedImageSequence[0]
                .ReferencedSOPInstanceUID):
        assert uid.encode() not in data


def test_the_korean_planted_name_is_really_iso_2022(planted):
    data = planted[1].read_bytes()
    assert b"\x1b$)C" in data and "민준".encode("euc_kr") in data
    assert "민준".encode() not in data


# ---------------------------------------------------------------------- attribute-level checks

def test_actions_by_table(planted):
    source, out = _deid(planted[0])
    cid = case_id(KEY, source.PatientID)
    # pseudonym
    assert out.PatientID == cid and str(out.PatientName) == cid
    # X: removed
    for kw in ("InstitutionAddress", "PerformingPhysicianName", "OtherPatientIDs",
               "OtherPatientIDsSequence", "ImageComments", "PatientComments", "StudyComments",
               "RequestingPhysician", "InstitutionalDepartmentName"):
        assert kw not in out, kw
    # Z: present and empty
    for kw in ("AccessionNumber", "ReferringPhysicianName", "StudyID", "PatientBirthDate"):
        assert kw in out and out[kw].value in (None, "", b""), kw
    # D (X/Z/D resolved to D): a dummy
    for kw in ("InstitutionName", "OperatorsName", "DeviceSerialNumber", "StationName"):
        assert str(out[kw].value) == DUMMY_TEXT, kw
    # K: Retain Patient Characteristics (default), unlisted acquisition attributes
    for kw in ("PatientSex", "PatientAge", "PatientWeight", "PatientSize", "KVP",
               "ConvolutionKernel", "Rows", "PixelSpacing", "RescaleSlope"):
        assert out[kw].value == source[kw].value, kw
    assert out.pixel_array.tolist() == source.pixel_array.tolist()
    # marks
    assert out.PatientIdentityRemoved == "YES"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = {i.CodeValue for i in out.DeidentificationMethodCodeSequence}
    assert codes == {"113100", "113105", "113107", "113108"}
    assert all(len(v) <= 64 for v in out.DeidentificationMethod)
    # private: removed (not on the safe list, option off); creator too
    assert not any(e.tag.is_private for e in out)
    # file meta: rebuilt
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.preamble in (None, b"\0" * 128)


def test_uids_replaced_consistently(planted):
    source, out = _deid(planted[0])
    for kw in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID",
               "FrameOfReferenceUID"):
        assert out[kw].value == replace_uid(KEY, source[kw].value), kw
    ref_in, ref_out = source.ReferencedImageSequence[0], out.ReferencedImageSequence[0]
    assert ref_out.ReferencedSOPInstanceUID == replace_uid(KEY, ref_in.ReferencedSOPInstanceUID)
    assert ref_out.ReferencedSOPClassUID == ref_in.ReferencedSOPClassUID  # not a U attribute
    assert out.SOPClassUID == source.SOPClassUID
    _, kept = _deid(planted[0], DeidSettings(retain_uids=True))
    assert kept.SOPInstanceUID == source.SOPInstanceUID
    assert 0x00120064 in kept and "113110" in {i.CodeValue for i in
                                                kept.DeidentificationMethodCodeSequence}


def test_dates_follow_the_date_option(planted):
    source, shifted = _deid(planted[0])
    days = date_shift_days(KEY, case_id(KEY, source.PatientID))
    for kw in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate",
               "InstanceCreationDate", "DateOfGainCalibration"):
        assert shifted[kw].value == shift_da(source[kw].value, days), kw
    assert shifted.StudyTime == source.StudyTime  # whole-day shift keeps times
    _, full = _deid(planted[0], DeidSettings(dates="full"))
    assert full.StudyDate == source.StudyDate and full.DateOfGainCalibration == STUDY_DATE
    assert full.LongitudinalTemporalInformationModified == "UNMODIFIED"
    _, removed = _deid(planted[0], DeidSettings(dates="remove"))
    assert removed.StudyDate in (None, "")  # Z
    assert removed.AcquisitionDate in (None, "")  # X/Z -> Z
    assert removed.SeriesDate == "19000101"  # X/D -> D
    assert removed.DateOfGainCalibration == "19000101"  # unlisted date: dummy
    assert removed.LongitudinalTemporalInformationModified == "REMOVED"


def test_patient_characteristics_option_off(planted):
    _, out = _deid(planted[0], DeidSettings(retain_patient_characteristics=False))
    assert "PatientAge" not in out and "PatientWeight" not in out  # X
    assert out.PatientSex in (None, "")  # Z
    assert "113108" not in {i.CodeValue for i in out.DeidentificationMethodCodeSequence}


def test_device_and_institution_options(planted):
    source, out = _deid(planted[0], DeidSettings(retain_device_identity=True,
                                                 retain_institution_identity=True))
    for kw in ("DeviceSerialNumber", "StationName", "InstitutionName", "InstitutionAddress",
               "InstitutionalDepartmentName"):
        assert out[kw].value == source[kw].value, kw
    assert "PerformingPhysicianName" not in out  # no option keeps people


@pytest.mark.parametrize("index", range(len(PATIENTS)))
def test_descriptors_lose_every_planted_value(planted, index):
    _, out = _deid(planted[index])
    assert out.SeriesDescription == "CT thorax"


def test_clean_descriptors(planted):
    _source, out = _deid(planted[0])
    assert out.SeriesDescription == "CT thorax"
    assert out.ProtocolName == "chest protocol"
    assert out.StudyDescription == "CT CHEST"
    _, bare = _deid(planted[0], DeidSettings(clean_descriptors=False))
    assert "SeriesDescription" not in bare  # X
    assert bare.ProtocolName == DUMMY_TEXT  # X/D -> D
    row = action_table()["(0018,1030)"]
    assert resolve(row, DeidSettings(clean_descriptors=False)).code == "D"


def test_safe_private_option(planted):
    _, out = _deid(planted[0], DeidSettings(retain_safe_private=True))
    private = {e.tag: e.value for e in out if e.tag.is_private}
    assert private == {0x20050010: "Philips MR Imaging DD 001", 0x2005100E: 2.5}


def test_group_length_and_nested_sequences(planted):
    source = pydicom.dcmread(planted[0])
    source.add_new(0x00080000, "UL", 1234)  # a group length
    item = Dataset()
    item.PatientName = "Müller^Hans-Jürgen"
    item.ReferencedSOPInstanceUID = "1.2.3.4.5"
    source.ReferencedPatientSequence = Sequence([item])  # X: removed whole
    series_ref = Dataset()  # unlisted sequence: kept, its items processed
    series_ref.SeriesInstanceUID = source.SeriesInstanceUID
    series_ref.OperatorsName = "Kowalczyk^Tomasz"
    source.ReferencedSeriesSequence = Sequence([series_ref])
    new, counts = deidentify_dataset(source, DeidSettings(), KEY, "c000000000000")
    _, out = roundtrip(new)
    assert 0x00080000 not in out and ("(0008,0000)", "X") in counts
    assert "ReferencedPatientSequence" not in out
    nested = out.ReferencedSeriesSequence[0]
    assert nested.SeriesInstanceUID == replace_uid(KEY, source.SeriesInstanceUID)
    assert nested.SeriesInstanceUID == out.SeriesInstanceUID
    assert nested.OperatorsName == DUMMY_TEXT


def test_counts_name_tags_and_actions_only(planted):
    source = pydicom.dcmread(planted[1])
    _, counts = deidentify_dataset(source, DeidSettings(), KEY, case_id(KEY, source.PatientID))
    assert counts[("(0010,0010)", "D")] == 1 and counts[("(0008,0018)", "U")] == 1
    assert counts[("(0029,xx10)", "X")] == 1 and counts[("(0029,00xx)", "X")] == 1
    assert counts[("(0008,1155)", "U")] == 1  # inside ReferencedImageSequence
    text = repr(sorted(counts))
    assert phi_hits(text.encode(), planted_terms(PATIENTS[1])) == []


def test_input_dataset_is_not_modified(planted):
    source = pydicom.dcmread(planted[0])
    before = source.to_json()
    deidentify_dataset(source, DeidSettings(), KEY, case_id(KEY, source.PatientID))
    assert source.to_json() == before
