"""Protocol QC gates (radflow.protocol, README "Protocol QC gates"): profiles, operators, kernel
classes, study rules, unknown-never-pass, the body-width measurement, the crawl's acquisition
table, the merge columns, the shipped low-dose lung profile on real data, and the workflow."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
import yaml
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from workflow_helpers import job_counts, snakemake

from radflow.crawl import crawl, write_crawl
from radflow.demo import make_demo_cohort
from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.dicom.acquisition import ACQUISITION_KEYWORDS, acquisition_values, plane_of
from radflow.errors import ConfigError
from radflow.io.nifti import write_nifti
from radflow.keys import case_id, load_key
from radflow.merge.protocol import with_protocol
from radflow.protocol import judge_pairs, judge_series, run_protocol
from radflow.protocol.attributes import ABSENT, ATTRIBUTES, kernel_class, series_values
from radflow.protocol.body import PIXEL_MM, body_extent, body_extent_of_file
from radflow.protocol.profile import (
    Condition,
    checked_profile,
    load_profile,
    resolve_profile,
)
from radflow.protocol.rules import FAIL, PASS, UNKNOWN, check, evaluate_study, verdict
from radflow.records import ConvertSidecar, read_table, write_sidecar
from radflow.records.acquisition import ACQUISITION_COLUMNS, read_acquisition_table
from radflow.records.protocol import read_protocol_pairs
from radflow.records.tables import read_series_table
from radflow.settings import CrawlSettings, ProtocolSettings, from_mapping

REPO = Path(__file__).resolve().parents[1]
LDCT = REPO / "config" / "protocols" / "lung-screening-ldct.yaml"
KEY = b"k" * 32
RDSR = "1.2.840.10008.5.1.4.1.1.88.67"


@pytest.fixture(scope="module")
def ldct():
    return load_profile(LDCT)


# --- profiles ---------------------------------------------------------------------------------

def _minimal() -> dict[str, Any]:
    return {"name": "mini", "title": "t", "source": "s", "modality": ["CT"],
            "series_rules": [{"id": "kv", "attribute": "KVP", "op": "<=", "limit": 120,
                              "description": "d", "source": "s"}],
            "study_rules": [{"id": "thin", "description": "d", "source": "s",
                             "any_series": [{"attribute": "SliceThickness", "op": "<=",
                                             "limit": 1.5}]}]}


def _write_profile(tmp_path: Path, data: dict[str, Any], name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_the_shipped_profile_loads(ldct) -> None:
    assert ldct.name == "lung-screening-ldct" and ldct.modalities == ("CT",)
    ids = [r.id for r in (*ldct.series_rules, *ldct.study_rules)]
    assert {"tube-voltage", "ctdivol", "tube-current-time", "detector-channels",
            "patient-position", "body-width", "chest-wall-in-fov", "standard-series",
            "thin-sharp-series", "coronal-reconstruction", "dose-report", "coverage",
            "breath-hold", "arms-raised"} == set(ids)
    assert all(r.source and r.description for r in (*ldct.series_rules, *ldct.study_rules))
    assert {r.id for r in ldct.study_rules if r.undecidable} == {"coverage", "breath-hold",
                                                                  "arms-raised"}
    assert checked_profile("lung-screening-ldct") == str(LDCT)
    assert checked_profile("") == ""


def test_schema_attributes_are_the_registry() -> None:
    schema = yaml.safe_load((REPO / "config" / "schema" / "protocol.schema.yaml").read_text())
    assert set(schema["$defs"]["attribute"]["enum"]) == set(ATTRIBUTES)
    assert set(ACQUISITION_KEYWORDS) <= set(ACQUISITION_COLUMNS)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["series_rules"][0].update(op="=<"),
     r"mine\.yaml: series_rules\[0\]\.op: unknown value '=<'"),
    (lambda d: d["series_rules"][0].update(attribute="KVPP"),
     r"mine\.yaml: series_rules\[0\]\.attribute: unknown attribute 'KVPP' \(did you mean 'KVP'"),
    (lambda d: d["series_rules"][0].pop("limit"),
     r"mine\.yaml: series_rules\[0\]\.limit: required key missing"),
    (lambda d: d.pop("modality"), r"mine\.yaml: modality: required key missing"),
    (lambda d: d["study_rules"][0]["any_series"][0].update(op="between"),
     r"mine\.yaml: study_rules\[0\]\.any_series\[0\]\.limit: 'between' needs \[low, high\]"),
    (lambda d: d["series_rules"][0].update(op="in"),
     r"mine\.yaml: series_rules\[0\]\.limit: 'in' needs a list"),
    (lambda d: d["series_rules"][0].update(attribute="kernel_class", op="<="),
     r"series_rules\[0\]\.op: '<=' does not apply to kernel_class"),
    (lambda d: d["series_rules"][0].update(limit="high"),
     r"series_rules\[0\]\.limit: 'high' is not a number value"),
    (lambda d: d["study_rules"][0].update(id="kv"),
     r"study_rules\[0\]\.id: rule id 'kv' is used twice"),
    (lambda d: d["series_rules"][0].update(undecidable="why"),
     r"series_rules\[0\]: a rule is either"),
    (lambda d: d.update(colour="red"), r"Additional properties are not allowed"),
])
def test_profile_errors_name_the_file_and_the_key(tmp_path: Path, change, message: str) -> None:
    data = _minimal()
    load_profile(_write_profile(tmp_path, data))  # the unchanged profile is fine
    change(data)
    with pytest.raises(ConfigError, match=message):
        load_profile(_write_profile(tmp_path, data))


def test_a_profile_that_is_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"protocol profile broken\.yaml: cannot be read"):
        load_profile(path)


def test_profiles_are_found_by_name_or_path(tmp_path: Path) -> None:
    assert resolve_profile("lung-screening-ldct") == LDCT
    assert resolve_profile("") is None
    own = _write_profile(tmp_path, _minimal())
    assert resolve_profile(str(own)) == own
    with pytest.raises(ConfigError, match=r"protocol\.profile: no profile file 'lung-screening'"
                                          r".*lung-screening-ldct"):
        resolve_profile("lung-screening")


def test_protocol_settings() -> None:
    assert from_mapping(ProtocolSettings, {}) == ProtocolSettings("", "flag")
    with pytest.raises(ConfigError, match=r"protocol\.on_fail must be one of flag, exclude"):
        from_mapping(ProtocolSettings, {"on_fail": "drop"}, section="protocol")


# --- operators, kernels -----------------------------------------------------------------------

@pytest.mark.parametrize(("attribute", "op", "limit", "value", "expected"), [
    ("KVP", "<=", 120.0, 120.0, PASS),
    ("KVP", "<=", 120.0, 120.5, FAIL),
    ("KVP", "<", 120.0, 120.0, FAIL),
    ("KVP", "<", 120.0, 100.0, PASS),
    ("KVP", ">", 80.0, 80.0, FAIL),
    ("KVP", ">=", 80.0, 80.0, PASS),
    ("KVP", "==", 120.0, 120.0, PASS),
    ("KVP", "!=", 120.0, 120.0, FAIL),
    ("exposure_mas", "between", (40.0, 60.0), 40.0, PASS),
    ("exposure_mas", "between", (40.0, 60.0), 60.0, PASS),
    ("exposure_mas", "between", (40.0, 60.0), 60.5, FAIL),
    ("exposure_mas", "between", (40.0, 60.0), 39.9, FAIL),
    ("KVP", "in", (100.0, 120.0), 100.0, PASS),
    ("KVP", "not in", (100.0, 120.0), 100.0, FAIL),
    ("PatientPosition", "in", ("HFS", "FFS"), "ffs", PASS),  # text: case-insensitive
    ("PatientPosition", "in", ("HFS", "FFS"), "HFP", FAIL),
    ("PatientPosition", "not in", ("HFP",), "HFS", PASS),
    ("plane", "==", "coronal", "Coronal", PASS),
    ("plane", "!=", "coronal", "axial", PASS),
    ("body_in_fov", "==", True, True, PASS),
    ("body_in_fov", "==", True, False, FAIL),
    ("KVP", "<=", 120.0, None, UNKNOWN),     # unknown is never pass ...
    ("KVP", ">", 120.0, None, UNKNOWN),      # ... whatever the operator
    ("PatientPosition", "not in", ("HFP",), None, UNKNOWN),
    ("dose_ctdivol", ">", 0.0, ABSENT, FAIL),  # known to be missing: fails
    ("KVP", "<=", 120.0, "abc", UNKNOWN),    # not a number
])
def test_each_operator(attribute: str, op: str, limit: Any, value: Any, expected: str) -> None:
    assert check(Condition(attribute, op, limit), value) == expected


@pytest.mark.parametrize(("manufacturer", "kernel", "expected"), [
    ("GE MEDICAL SYSTEMS", "STANDARD", "standard"),
    ("GE MEDICAL SYSTEMS", "SOFT", "standard"),
    ("GE MEDICAL SYSTEMS", "LUNG", "sharp"),
    ("GE MEDICAL SYSTEMS", "BONEPLUS", "sharp"),
    ("GE MEDICAL SYSTEMS", "DETAIL", None),       # not in the map: no class
    ("SIEMENS", "B30f", "standard"),
    ("Siemens Healthineers", "Br36d", "standard"),
    ("SIEMENS", "B70f", "sharp"),
    ("SIEMENS", "Bl57d", "sharp"),
    ("Philips", "B", "standard"),
    ("Philips Medical Systems", "YA", "sharp"),
    ("CANON_MEC", "FC08", "standard"),
    ("TOSHIBA", "FC52", "sharp"),
    ("TOSHIBA", "FC08-H", "standard"),
    ("GE MEDICAL SYSTEMS", "B70f", None),         # another vendor's name
    ("Hitachi", "STANDARD", None),                # a vendor the map does not know
    ("", "STANDARD", None),
])
def test_kernel_classes_by_vendor(ldct, manufacturer: str, kernel: str,
                                  expected: str | None) -> None:
    assert kernel_class(manufacturer, kernel, ldct.kernels) == expected


def test_derived_values(ldct) -> None:
    acq = {"KVP": "120.0", "Exposure": "", "ExposureInuAs": "45000", "SliceThickness": "1.0",
           "SpacingBetweenSlices": "0.8", "SingleCollimationWidth": "0.625",
           "TotalCollimationWidth": "40.0", "ConvolutionKernel": "Br40d\\3",
           "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2", "plane": "axial"}
    row = {"modality": "CT", "manufacturer": "SIEMENS", "spacing_z": "",
           "series_description": "Thorax 1.0 Br40"}
    values = series_values(row, acq, ldct)
    assert values["exposure_mas"] == 45.0
    assert values["slice_gap"] == pytest.approx(-0.2)  # overlap: no gap
    assert values["detector_channels"] == 64.0
    assert values["kernel_class"] == "standard" and values["ConvolutionKernel"] == "Br40d"
    assert values["dose_report"] == "none" and values["CTDIvol"] is None
    assert values["body_width_fraction"] is None
    row["spacing_z"] = "1.5"  # positions win over the written SpacingBetweenSlices
    assert series_values(row, acq, ldct)["slice_gap"] == pytest.approx(0.5)
    screen = series_values({"modality": "CT", "series_description": "Dose Report"},
                           {"sop_class_uid": "1.2.840.10008.5.1.4.1.1.7"}, ldct)
    assert screen["dose_report"] == "screen" and screen["dose_ctdivol"] is None
    rdsr = series_values({"modality": "SR"}, {"sop_class_uid": RDSR, "dose_ctdivol": "none",
                                              "dose_dlp": "80.5"}, ldct)
    assert rdsr["dose_report"] == "rdsr" and rdsr["dose_ctdivol"] is ABSENT
    assert rdsr["dose_dlp"] == 80.5


@pytest.mark.parametrize(("orientation", "plane"), [
    ((1, 0, 0, 0, 1, 0), "axial"), ((1, 0, 0, 0, 0, -1), "coronal"),
    ((0, 1, 0, 0, 0, -1), "sagittal"), ((1, 0, 0, 0, 0.7071, -0.7071), "oblique"),
    (None, ""), ((0, 0, 0, 0, 0, 0), ""),
])
def test_planes(orientation, plane: str) -> None:
    assert plane_of(orientation) == plane


# --- study rules, unknown never passes ----------------------------------------------------------

def _values(ldct, **acq: str) -> dict[str, Any]:
    row = {"modality": acq.pop("modality", "CT"), "manufacturer": acq.pop("manufacturer", "GE"),
           "spacing_z": acq.pop("spacing_z", ""),
           "series_description": acq.pop("description", "")}
    return series_values(row, acq, ldct)


def _study(ldct, series: list[dict[str, Any]]) -> dict[str, str]:
    outcomes = evaluate_study(ldct, [(f"s{i}", v) for i, v in enumerate(series)])
    return {o.rule: o.result for o in outcomes}


def test_study_rules(ldct) -> None:
    standard = _values(ldct, SliceThickness="2.5", spacing_z="2.5", ConvolutionKernel="STANDARD",
                       plane="axial")
    thin_sharp = _values(ldct, SliceThickness="1.25", spacing_z="1.0", ConvolutionKernel="LUNG",
                         plane="axial")
    coronal = _values(ldct, SliceThickness="3.0", ConvolutionKernel="STANDARD", plane="coronal")
    rdsr = _values(ldct, modality="SR", sop_class_uid=RDSR, dose_ctdivol="2.1", dose_dlp="75")
    got = _study(ldct, [standard, thin_sharp, coronal, rdsr])
    assert got == {"standard-series": PASS, "thin-sharp-series": PASS,
                   "coronal-reconstruction": PASS, "dose-report": PASS,
                   "coverage": UNKNOWN, "breath-hold": UNKNOWN, "arms-raised": UNKNOWN}
    # a gap (spacing 3.0 > thickness 2.5), a thin series with an unmapped kernel, no coronal,
    # a dose screen only
    gap = _values(ldct, SliceThickness="2.5", spacing_z="3.0", ConvolutionKernel="STANDARD",
                  plane="axial")
    unmapped = _values(ldct, SliceThickness="1.0", ConvolutionKernel="DETAIL", plane="axial")
    screen = _values(ldct, modality="OT", description="Dose Report",
                     sop_class_uid="1.2.840.10008.5.1.4.1.1.7")
    got = _study(ldct, [gap, unmapped, screen])
    assert got["standard-series"] == UNKNOWN  # the unmapped kernel might be standard
    assert got["thin-sharp-series"] == UNKNOWN
    assert got["coronal-reconstruction"] == FAIL
    assert got["dose-report"] == UNKNOWN  # a screen's values are pixels
    got = _study(ldct, [gap, _values(ldct, modality="SR", sop_class_uid=RDSR,
                                     dose_ctdivol="none", dose_dlp="75")])
    assert got["standard-series"] == FAIL and got["dose-report"] == FAIL
    assert _study(ldct, [])["coronal-reconstruction"] == FAIL


def test_unknown_is_never_pass(ldct) -> None:
    """With nothing known every decidable condition is unknown, no rule passes, the verdict is
    unknown; undecidable rules are unknown even when everything else passes."""
    for rule in (*ldct.series_rules, *ldct.study_rules):
        for condition in rule.conditions:
            assert check(condition, None) == UNKNOWN, (rule.id, condition)
    nothing = series_values({}, None, ldct)
    got = _study(ldct, [nothing])
    assert PASS not in got.values()
    assert got["dose-report"] == FAIL  # known: this series is no dose report
    assert verdict([PASS, UNKNOWN]) == UNKNOWN and verdict([UNKNOWN, FAIL]) == FAIL
    assert verdict([PASS, PASS]) == PASS and verdict([]) == PASS


# --- body width -------------------------------------------------------------------------------

def _chest(shape=(20, 100, 120), semi_x=45.0, semi_y=30.0, table=True) -> np.ndarray:
    """HU volume (k, j, i), 1 mm pixels: an elliptic body in air, lungs inside, a thin table."""
    nz, ny, nx = shape
    y, x = np.ogrid[:ny, :nx]
    cx, cy = (nx - 1) / 2, (ny - 1) / 2 - 10
    body = ((x - cx) / semi_x) ** 2 + ((y - cy) / semi_y) ** 2 <= 1
    lungs = ((np.abs(x - cx) - semi_x / 2) / (semi_x / 3)) ** 2 + ((y - cy) / (semi_y / 1.6)) \
        ** 2 <= 1
    plane = np.full((ny, nx), -1000.0)
    plane[body] = 40.0
    plane[body & lungs] = -850.0
    if table:  # a 3 mm table top across the whole field of view, just below the body
        top = int(cy + semi_y) + 2
        plane[top:top + 3, :] = 300.0
    return np.repeat(plane[None], nz, axis=0)


def test_body_width_on_a_synthetic_chest() -> None:
    axial = np.eye(3)
    spacing = (1.0, 1.0, 2.0)
    extent = body_extent(_chest(), spacing, axial)
    truth = 91 / 120  # voxel columns -45..45 of 120
    assert extent.in_fov is True
    assert extent.width_fraction == pytest.approx(truth, abs=2 * PIXEL_MM / 120)
    assert extent.width_fraction < 0.8  # a field of view too large for this body
    without_table = body_extent(_chest(table=False), spacing, axial)
    assert without_table.width_fraction == extent.width_fraction  # the table is not the body
    wide = body_extent(_chest(semi_x=52.0), spacing, axial)
    assert wide.in_fov is True and wide.width_fraction >= 0.8
    cut = body_extent(_chest(semi_x=70.0), spacing, axial)  # wider than the 120 mm field
    assert cut.in_fov is False and cut.width_fraction == 1.0
    empty = body_extent(np.full((5, 20, 20), -1000.0), spacing, axial)
    assert empty.width_fraction is None and empty.in_fov is None and "no voxel" in empty.note


def test_body_width_of_a_coronal_volume_and_an_oblique_one() -> None:
    chest = _chest(shape=(1, 100, 120))[0]           # (y, x) cross-section
    coronal = np.repeat(chest[:, None, :], 30, axis=1)  # (k = y, j = z, i = x)
    # voxel axes: i along +x, j along -z (column (0, 0, -1)), k along +y (the normal)
    direction = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    extent = body_extent(coronal, (1.0, 2.0, 1.0), direction)
    assert extent.in_fov is True
    assert extent.width_fraction == pytest.approx(91 / 120, abs=2 * PIXEL_MM / 120)
    c = np.sqrt(0.5)  # rotated 45 degrees about z: no voxel axis along left-right
    oblique = np.array([[c, -c, 0], [c, c, 0], [0, 0, 1.0]])
    extent = body_extent(coronal, (1.0, 2.0, 1.0), oblique)
    assert extent.width_fraction is None and "left-right" in extent.note


def test_body_width_from_a_file(tmp_path: Path) -> None:
    image = sitk.GetImageFromArray(_chest().astype(np.int16))
    image.SetSpacing((1.0, 1.0, 2.0))
    path = tmp_path / "ct.nii.gz"
    write_nifti(path, image)
    assert body_extent_of_file(path) == body_extent(_chest(), (1.0, 1.0, 2.0), np.eye(3))


# --- the crawl's acquisition table, the gate end to end -----------------------------------------

PATIENT = Patient(patient_id="PROTO-PID-1", name="Gatekeeper^Greta", birth_date="19500505",
                  accession="ACC-PROTO-77")


def _write_rdsr(path: Path, study: Study, series_uid: str, ctdi: float | None,
                dlp: float | None) -> None:
    def code(value: str, meaning: str) -> Dataset:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        return item

    def num(value: str, meaning: str, number: float) -> Dataset:
        item = Dataset()
        item.RelationshipType, item.ValueType = "CONTAINS", "NUM"
        item.ConceptNameCodeSequence = [code(value, meaning)]
        measured = Dataset()
        measured.NumericValue = number
        measured.MeasurementUnitsCodeSequence = [code("mGy", "mGy")]
        item.MeasuredValueSequence = [measured]
        return item

    def container(value: str, meaning: str, items: list[Dataset]) -> Dataset:
        item = Dataset()
        item.RelationshipType, item.ValueType = "CONTAINS", "CONTAINER"
        item.ConceptNameCodeSequence = [code(value, meaning)]
        item.ContentSequence = items
        return item

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = RDSR
    ds.file_meta.MediaStorageSOPInstanceUID = derived_uid(series_uid, "rdsr")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = RDSR, ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientID, ds.PatientName = PATIENT.patient_id, PATIENT.name
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study.study_uid, series_uid
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "SR", 998, 1
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [code("113701", "X-Ray Radiation Dose Report")]
    event = [num("113830", "Mean CTDIvol", ctdi)] if ctdi is not None else []
    event += [num("113838", "DLP", dlp)] if dlp is not None else []
    ds.ContentSequence = [container("113819", "CT Acquisition",
                                    [container("113829", "CT Dose", event)])]
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _ct(folder: Path, study: Study, number: int, *, kvp: int = 100, kernel: str = "STANDARD",
        thickness: float = 2.0, spacing: float = 2.0, coronal: bool = False,
        derived: bool = False) -> str:
    uid = derived_uid("proto", study.study_uid, number)
    chest = _chest(shape=(6, 100, 120))
    stored = (chest + 1024).astype(np.int16)
    row, column = (1.0, 0.0, 0.0), ((0.0, 0.0, -1.0) if coronal else (0.0, 1.0, 0.0))
    write_series(
        folder / f"SE{number:03d}", stored, patient=PATIENT, study=study, series_uid=uid,
        spacing=(1.0, 1.0, spacing), row_direction=row, column_direction=column,
        series_number=number, series_description=f"CHEST {thickness} {kernel}",
        image_type=("DERIVED", "SECONDARY", "MPR") if derived else ("ORIGINAL", "PRIMARY",
                                                                     "AXIAL"),
        acquisition={"Manufacturer": "GE MEDICAL SYSTEMS", "KVP": kvp, "Exposure": 40,
                     "XRayTubeCurrent": 80, "ExposureTime": 500, "CTDIvol": 2.2,
                     "ConvolutionKernel": kernel, "SliceThickness": thickness,
                     "SingleCollimationWidth": 0.625, "TotalCollimationWidth": 40.0,
                     "PatientPosition": "HFS"},
    )
    return str(uid)


def _cohort(tmp_path: Path, kvp: int = 100) -> tuple[Path, Path, str]:
    """A study that meets every decidable rule of the shipped profile: a 2 mm standard series
    (the one paired), a 1 mm lung-kernel series, a coronal MPR (DERIVED: excluded, yet a
    reconstruction of the study) and a dose SR; returns (dicom root, sheet, image uid)."""
    root = tmp_path / "dicom"
    study = Study(study_uid=str(derived_uid("proto", "study", kvp)),
                  frame_of_reference_uid=str(derived_uid("proto", "for", kvp)))
    image = _ct(root, study, 2, kvp=kvp)
    _ct(root, study, 3, kvp=kvp, kernel="LUNG", thickness=1.0, spacing=1.0)
    _ct(root, study, 4, kvp=kvp, thickness=3.0, spacing=3.0, coronal=True, derived=True)
    _write_rdsr(root / "SE998" / "dose.dcm", study, str(derived_uid("proto", "rdsr", kvp)),
                ctdi=2.2, dlp=81.0)
    mask = sitk.GetImageFromArray(np.ones((6, 100, 120), np.uint8))
    mask.SetSpacing((1.0, 1.0, 2.0))
    write_nifti(tmp_path / "mask.nii.gz", mask)
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"subject\timage\tmask\n{PATIENT.patient_id}\tseries:{image}\tmask.nii.gz\n",
                     encoding="utf-8")
    return root, sheet, image


def _crawled(tmp_path: Path, kvp: int = 100) -> Path:
    root, sheet, _ = _cohort(tmp_path, kvp)
    result = crawl(root, sheet, KEY, CrawlSettings())
    out = tmp_path / "crawl"
    write_crawl(result, out / "series.tsv", out / "pair_plan.tsv", out / "pairs",
                tmp_path / "private", out / "rois.tsv", out / "acquisition.tsv")
    return out


def test_the_crawl_writes_the_acquisition_table_without_identifiers(tmp_path: Path) -> None:
    out = _crawled(tmp_path)
    series = read_series_table(out / "series.tsv")
    acq = read_acquisition_table(out / "acquisition.tsv")
    assert tuple(acq.columns) == ACQUISITION_COLUMNS
    dicom = series[series["source"] == "dicom"]
    assert set(acq["series_key"]) == set(dicom["series_key"])
    by_key = acq.set_index("series_key")
    statuses = dict(zip(dicom["series_key"], dicom["status"], strict=True))
    sr = [k for k, s in statuses.items() if s == "excluded:non-image-sr"]
    assert len(sr) == 1 and by_key.loc[sr[0], "sop_class_uid"] == RDSR
    assert (by_key.loc[sr[0], "dose_ctdivol"], by_key.loc[sr[0], "dose_dlp"]) == ("2.2", "81.0")
    derived = [k for k, s in statuses.items() if s == "excluded:derived"]
    assert by_key.loc[derived[0], "plane"] == "coronal"
    ok = by_key.loc[[k for k, s in statuses.items() if s == "ok"]]
    assert set(ok["plane"]) == {"axial"} and set(ok["KVP"]) == {"100.0"}
    assert set(ok["ConvolutionKernel"]) == {"STANDARD", "LUNG"}
    text = (out / "acquisition.tsv").read_text(encoding="utf-8")
    for planted in (PATIENT.patient_id, "Gatekeeper", "19500505", "ACC-PROTO-77",
                    "Radflow Demo Hospital", str(derived_uid("proto", "study", 100))):
        assert planted not in text
    assert "1.2.840.10008.5.1.4.1.1.2\t" in text  # SOP class UIDs only


def _sidecar(tmp_path: Path, out: Path, image_key: str, case_id: str) -> str:
    folder = tmp_path / "convert" / case_id
    folder.mkdir(parents=True, exist_ok=True)
    # a body 105 of 120 mm wide: the body-width rule passes
    image = sitk.GetImageFromArray(_chest(shape=(6, 100, 120), semi_x=52.0).astype(np.int16))
    image.SetSpacing((1.0, 1.0, 2.0))
    write_nifti(folder / f"{image_key}.nii.gz", image)
    path = folder / f"{image_key}.json"
    write_sidecar(path, ConvertSidecar(series_key=image_key, status="ok", case_id=case_id,
                                       role="image", nifti=f"{image_key}.nii.gz"))
    return str(path)


def _run(tmp_path: Path, out: Path, profile: Path, **settings: str) -> tuple[pd.DataFrame,
                                                                           pd.DataFrame]:
    plan = read_table(out / "pair_plan.tsv")
    (image_key,), (case,) = set(plan["image_key"]), set(plan["case_id"])
    sidecar = _sidecar(tmp_path, out, image_key, case)
    run_protocol(profile=str(profile), series_tsv=str(out / "series.tsv"),
                 acquisition_tsv=str(out / "acquisition.tsv"),
                 pair_plan_tsv=str(out / "pair_plan.tsv"), sidecars=[sidecar],
                 settings=from_mapping(ProtocolSettings, settings), strict=False,
                 table_tsv=str(tmp_path / "qc" / "protocol.tsv"),
                 pairs_tsv=str(tmp_path / "qc" / "protocol_pairs.tsv"))
    return (read_table(tmp_path / "qc" / "protocol.tsv"),
            read_protocol_pairs(tmp_path / "qc" / "protocol_pairs.tsv"))


def test_a_conforming_study_is_unknown_under_the_shipped_profile(tmp_path: Path) -> None:
    out = _crawled(tmp_path)
    table, pairs = _run(tmp_path, out, LDCT)
    results = table.groupby("rule")["result"].agg(set).to_dict()
    decidable = {r: v for r, v in results.items()
                 if r not in ("coverage", "breath-hold", "arms-raised")}
    # every decidable rule passes, on both ok series (the image and the thin lung series)
    assert {r for r, v in decidable.items() if v != {PASS}} == {"body-width",
                                                                 "chest-wall-in-fov"}
    assert decidable["body-width"] == decidable["chest-wall-in-fov"] == {PASS, UNKNOWN}
    not_converted = table[(table["rule"] == "body-width") & (table["result"] == UNKNOWN)]
    assert set(not_converted["note"]) == {"the series was not converted (convert.scope)"}
    (pair,) = pairs.to_dict("records")
    assert pair["protocol_status"] == UNKNOWN and pair["protocol_failed"] == ""
    assert pair["protocol_unknown"] == "coverage,breath-hold,arms-raised"
    assert pair["status"] == "ok"


def test_a_profile_file_of_ones_own_can_pass_and_a_failure_excludes(tmp_path: Path) -> None:
    data = yaml.safe_load(LDCT.read_text(encoding="utf-8"))
    data["name"] = "decidable-only"
    data["study_rules"] = [r for r in data["study_rules"] if "undecidable" not in r]
    data["series_rules"] = [r for r in data["series_rules"]
                            if r["attribute"] not in ("body_width_fraction", "body_in_fov")]
    own = _write_profile(tmp_path, data, "decidable-only.yaml")
    out = _crawled(tmp_path / "a")
    _, pairs = _run(tmp_path / "a", out, own)
    assert list(pairs["protocol_status"]) == [PASS]
    out = _crawled(tmp_path / "b", kvp=140)
    table, pairs = _run(tmp_path / "b", out, own, on_fail="exclude")
    failing = table[table["result"] == FAIL]
    assert set(failing["rule"]) == {"tube-voltage"} and set(failing["value"]) == {"140"}
    assert set(failing["limit"]) == {"<= 120"}
    (pair,) = pairs.to_dict("records")
    assert (pair["protocol_status"], pair["protocol_failed"], pair["status"]) == (
        FAIL, "tube-voltage", "excluded:protocol-failed")


def test_the_merge_adds_three_columns_and_drops_excluded_pairs() -> None:
    table = pd.DataFrame({"case_id": ["c1", "c1", "c2"], "pair_id": ["p1", "p2", "p3"],
                          "mask_hash": ["h", "h", "h"], "age": [60, 60, 70],
                          "f": [1.0, 2.0, 3.0]})
    off = with_protocol(table, None, 3)
    assert list(off.columns) == ["case_id", "pair_id", "mask_hash", "protocol",
                                 "protocol_status", "protocol_failed", "age", "f"]
    assert set(off["protocol_status"]) == {"off"} and set(off["protocol"]) == {""}
    flags = pd.DataFrame({
        "pair_id": ["p1", "p2", "p3"], "case_id": ["c1", "c1", "c2"],
        "image_key": ["s1", "s1", "s2"], "protocol": ["ldct"] * 3,
        "protocol_status": ["fail", "unknown", "fail"],
        "protocol_failed": ["ctdivol,tube-voltage", "", "ctdivol"],
        "protocol_unknown": ["", "coverage", ""],
        "status": ["ok", "ok", "excluded:protocol-failed"]}).set_index("pair_id")
    flagged = with_protocol(table, flags, 3)
    assert list(flagged["pair_id"]) == ["p1", "p2"]
    assert list(flagged["protocol_failed"]) == ["ctdivol,tube-voltage", ""]
    assert list(flagged["protocol_status"]) == ["fail", "unknown"]


# --- real data ----------------------------------------------------------------------------------

def test_sts002_ct_under_the_low_dose_profile(testdata: Path, tmp_path: Path, ldct) -> None:
    """The sarcoma patient's CT (GE Discovery ST, 140 kVp, STANDARD, 3.27 mm, no CTDIvol in the
    header, cropped 5 cm around the tumour): tube voltage and slice thickness fail, CTDIvol and
    the collimation are unknown, the cropped body is cut off at the image edges."""
    folder = testdata / "sts_002_ct_mr_pet_rtstruct"
    result = crawl(folder / "CT" / "dicom" / "image", None, KEY, CrawlSettings())
    out = tmp_path / "crawl"
    write_crawl(result, out / "series.tsv", out / "pair_plan.tsv", out / "pairs",
                tmp_path / "private", out / "rois.tsv", out / "acquisition.tsv")
    series = read_series_table(out / "series.tsv")
    (key,) = series["series_key"]
    nifti = folder / "CT" / "nifti" / "image" / "image.nii.gz"
    rows, failed, unknown = judge_series(ldct, series, read_acquisition_table(
        out / "acquisition.tsv"), {key: str(nifti)})
    got = {(r["level"], r["rule"]): (r["result"], r["value"]) for r in rows}
    assert got[("series", "tube-voltage")] == (FAIL, "140")
    assert got[("series", "ctdivol")] == (UNKNOWN, "")
    assert got[("series", "detector-channels")] == (UNKNOWN, "")
    assert got[("series", "patient-position")] == (PASS, "HFS")
    assert got[("series", "chest-wall-in-fov")] == (FAIL, "false")
    assert got[("series", "body-width")] == (PASS, "1")
    assert got[("study", "standard-series")][0] == FAIL  # 3.27 mm > 3.0 mm
    assert got[("study", "dose-report")][0] == FAIL
    assert set(failed[key]) == {"tube-voltage", "chest-wall-in-fov"}
    plan = pd.DataFrame({"pair_id": ["p1"], "case_id": ["c"], "image_key": [key]})
    (pair,) = judge_pairs(ldct, plan, series, failed, unknown, exclude=False).to_dict("records")
    assert pair["protocol_status"] == FAIL
    assert pair["protocol_failed"].split(",") == [
        "tube-voltage", "chest-wall-in-fov", "standard-series", "thin-sharp-series",
        "coronal-reconstruction", "dose-report"]


def test_anonymised_vendor_ct_headers_are_unknown_not_pass(testdata: Path, ldct) -> None:
    """The dicom2nifti vendor CT series lost their acquisition attributes to anonymisation:
    every header rule is unknown; nothing passes that the header does not say."""
    folder = testdata / "dicom2nifti_series" / "failing" / "sliceincrement" / "002"
    ds = pydicom.dcmread(sorted(folder.iterdir())[0], stop_before_pixels=True)
    acq = {"sop_class_uid": str(ds.SOPClassUID), **acquisition_values(ds)}
    values = series_values({"modality": "CT", "manufacturer": str(ds.Manufacturer)}, acq, ldct)
    for rule in ldct.series_rules:
        (condition,) = rule.conditions
        assert check(condition, values[condition.attribute]) == (
            PASS if rule.id == "patient-position" else UNKNOWN), rule.id


# --- the workflow -------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_demo_with_the_low_dose_profile(tmp_path: Path) -> None:
    """`protocol: {profile: lung-screening-ldct}` on the demo cohort: qc/protocol.tsv names the
    rules each series and study breaks, every dataset row has the three columns; on_fail:
    exclude then empties the dataset (every demo study lacks a thin sharp series) and reruns only
    the protocol and merge jobs."""
    demo = make_demo_cohort(tmp_path / "demo")
    params = tmp_path / "params.yaml"
    params.write_text("setting:\n  binWidth: 25\nimageType:\n  Original: {}\n"
                      "featureClass:\n  firstorder: []\n", encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    config = {"cohort": "demo", "dicom_root": str(demo.dicom_root), "sheet": str(demo.sheet),
              "clinical": str(demo.clinical), "clinical_id": "patient_id",
              "key_file": str(tmp_path / "key"),
              "extract": {"params": str(params), "image_types": []},
              "protocol": {"profile": "lung-screening-ldct"}}
    cfg = tmp_path / "cohort.yaml"
    cfg.write_text(yaml.safe_dump(config), encoding="utf-8")
    snakemake(work, ["--cores", "2", "--configfile", str(cfg)])
    res = work / "results" / "demo"
    table = read_table(res / "qc" / "protocol.tsv")
    series = table[table["level"] == "series"]
    ctdi = series[series["rule"] == "ctdivol"]
    low_dose = case_id(load_key(tmp_path / "key"), "DEMO-PID-0002")
    assert set(ctdi.loc[ctdi["case_id"] == low_dose, "result"]) == {PASS}
    assert set(ctdi.loc[ctdi["case_id"] != low_dose, "result"]) == {FAIL}
    assert set(ctdi["value"]) >= {"2.4", "9.4"} and set(ctdi["limit"]) == {"<= 3"}
    converted = series[(series["rule"] == "body-width") & (series["result"] != UNKNOWN)]
    assert len(converted) and set(converted["result"]) == {PASS}  # 60 of 64 columns
    studies = table[table["level"] == "study"]
    assert set(studies.loc[studies["rule"] == "thin-sharp-series", "result"]) == {FAIL}
    assert set(studies.loc[studies["rule"] == "standard-series", "result"]) == {PASS}
    dataset = pd.read_csv(res / "merge" / "dataset.csv", dtype=str, keep_default_na=False)
    assert {"protocol", "protocol_status", "protocol_failed"} <= set(dataset.columns)
    assert set(dataset["protocol"]) == {"lung-screening-ldct"}
    assert set(dataset["protocol_status"]) == {FAIL}
    failed = dataset.set_index("case_id")["protocol_failed"].str.split(",")
    assert all("thin-sharp-series" in f and "coronal-reconstruction" in f for f in failed)
    assert all(("ctdivol" in f) == (c != low_dose) for c, f in failed.items())
    rows = len(dataset)
    cfg.write_text(yaml.safe_dump({**config, "protocol": {"profile": "lung-screening-ldct",
                                                          "on_fail": "exclude"}}))
    dry = snakemake(work, ["-n", "--cores", "2", "--configfile", str(cfg)])
    assert job_counts(dry.stdout) == {"protocol": 1, "merge": 1, "all": 1}
    snakemake(work, ["--cores", "2", "--configfile", str(cfg)])
    pairs = read_protocol_pairs(res / "qc" / "protocol_pairs.tsv")
    assert len(pairs) == rows and set(pairs["status"]) == {"excluded:protocol-failed"}
    assert len(pd.read_csv(res / "merge" / "dataset.csv")) == 0
    shutil.rmtree(work / ".snakemake", ignore_errors=True)
