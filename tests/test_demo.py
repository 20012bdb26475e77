"""The demo cohort (radflow.demo): determinism, DICOM content, mask geometry, shape truth."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from radiomics import imageoperations, shape

from radflow.demo import MARKER, UNMATCHED_ID, DemoCohort, add_parser, make_demo_cohort
from radflow.demo.masks import DICOM_MASK_PATIENTS
from radflow.demo.phantom import PROFILES, analysed_grid, ellipsoid_mask, render
from radflow.demo.synthetic import BASIC_TEXT_SR_STORAGE, CT_IMAGE_STORAGE
from radflow.dicom.grid import Grid
from radflow.dicom.headers import read_header
from radflow.dicom.rtstruct import RTSTRUCT_SOP_CLASS, rasterise_roi, read_structure_set
from radflow.dicom.seg import SEG_SOP_CLASS, seg_masks
from radflow.errors import ConfigError
from radflow.io.nifti import read_image

logging.getLogger("radiomics").setLevel(logging.ERROR)

N_PATIENTS = 6
TOLERANCE = 0.02
#: Subjects whose regions are DICOM masks (RTSTRUCT, SEG) instead of sheet rows.
DICOM_MASK_SUBJECTS = {f"DEMO-PID-{i + 1:04d}": kind for i, kind in DICOM_MASK_PATIENTS.items()}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> DemoCohort:
    return make_demo_cohort(tmp_path_factory.mktemp("demo") / "demo", n_patients=N_PATIENTS)


@pytest.fixture(scope="module")
def headers(cohort: DemoCohort) -> list[tuple[Path, pydicom.Dataset]]:
    """Every DICOM file of the cohort with its header (no pixel data), sorted by path."""
    return [(p, pydicom.dcmread(p, stop_before_pixels=True))
            for p in sorted(cohort.dicom_root.rglob("*.dcm"))]


@pytest.fixture(scope="module")
def sheet(cohort: DemoCohort) -> pd.DataFrame:
    return pd.read_csv(cohort.sheet, sep="\t", dtype={"label": int})


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _series_files(headers: list[tuple[Path, pydicom.Dataset]],
                  uid: str) -> list[tuple[Path, pydicom.Dataset]]:
    return [(p, ds) for p, ds in headers if ds.SeriesInstanceUID == uid]


def _read_series(files: list[Path]) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in files])
    return reader.Execute()


def test_generation_is_deterministic(cohort: DemoCohort, tmp_path: Path) -> None:
    again = make_demo_cohort(tmp_path / "again", n_patients=N_PATIENTS)
    first, second = _hashes(cohort.root), _hashes(again.root)
    assert len(first) > 300
    assert first == second
    assert again.planted_phi == cohort.planted_phi


def _of_patients_5_6(rel: str) -> bool:
    return any(tag in rel for tag in ("EXPORT_005", "EXPORT_006", "DEMO-PID-0005",
                                      "DEMO-PID-0006"))


def test_regeneration_keeps_unchanged_files_and_removes_stale_ones(cohort: DemoCohort,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "demo"
    shutil.copytree(cohort.root, out, copy_function=shutil.copy2)
    before = {k: v for k, v in _hashes(cohort.root).items()
              if k.startswith(("dicom/", "masks/")) and not _of_patients_5_6(k)}
    mtimes = {k: (out / k).stat().st_mtime_ns for k in before}
    (out / "dicom" / "stray.dcm").write_bytes(b"not dicom")
    (out / "masks" / "old").mkdir()
    (out / "masks" / "old" / "x.nii.gz").write_bytes(b"stale")
    (out / "notes.txt").write_text("user file outside the owned folders")
    make_demo_cohort(out, n_patients=4)  # patients 1-4 are unchanged; 5 and 6 disappear
    after = _hashes(out)
    assert after.pop("notes.txt")
    assert {k: v for k, v in after.items() if k.startswith(("dicom/", "masks/"))} == before
    assert len(before) > 200
    assert all((out / k).stat().st_mtime_ns == t for k, t in mtimes.items())  # not rewritten
    assert not (out / "masks" / "old").exists()
    assert set(json.loads((out / "truth.json").read_text())["subjects"]) == {
        f"DEMO-PID-{i:04d}" for i in range(1, 5)} | set(DICOM_MASK_SUBJECTS)


def test_refuses_foreign_folder_and_bad_counts(tmp_path: Path) -> None:
    foreign = tmp_path / "data"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match=MARKER):
        make_demo_cohort(foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ["keep.txt"]
    with pytest.raises(ConfigError):
        make_demo_cohort(tmp_path / "few", n_patients=3)


def test_dicom_objects_and_series(cohort: DemoCohort, headers: list, sheet: pd.DataFrame) -> None:
    classes = [ds.SOPClassUID for _, ds in headers]
    assert classes.count(BASIC_TEXT_SR_STORAGE) == 1
    assert classes.count(RTSTRUCT_SOP_CLASS) == 1 and classes.count(SEG_SOP_CLASS) == 1
    assert classes.count(CT_IMAGE_STORAGE) == len(classes) - 3
    analysed = {row.subject: row.image.removeprefix("series:") for row in sheet.itertuples()}
    assert len(analysed) == N_PATIENTS
    for pid, uid in analysed.items():
        files = _series_files(headers, uid)
        assert len(files) == 36
        ds = files[0][1]
        assert ds.PatientID == pid
        assert ds.RescaleSlope == 1 and ds.RescaleType == "HU"
        for keyword in ("KVP", "XRayTubeCurrent", "ConvolutionKernel", "Manufacturer",
                        "SliceThickness", "CTDIvol", "RescaleIntercept", "InstitutionName",
                        "AccessionNumber", "PatientBirthDate"):
            assert keyword in ds, keyword
        image_series = {d.SeriesInstanceUID for _, d in headers
                        if d.PatientID == pid and d.SOPClassUID == CT_IMAGE_STORAGE}
        assert len(image_series) >= 2  # the analysed series and a second reconstruction
    folders = {p.relative_to(cohort.dicom_root).parts[0] for p, _ in headers}
    assert "Kowalski_Anna" in folders and "Kowalski_Anna" in cohort.planted_phi


def test_names_decode_with_their_character_sets(headers: list) -> None:
    by_id = {}
    for path, ds in headers:
        by_id.setdefault(ds.PatientID, (path, ds))
    for index, profile in enumerate(PROFILES[:N_PATIENTS]):
        path, ds = by_id[f"DEMO-PID-{index + 1:04d}"]
        assert str(ds.PatientName) == profile.name
        assert ds.InstitutionName == profile.institution
        assert ds.get("SpecificCharacterSet") == (
            list(profile.charset) if isinstance(profile.charset, tuple) else profile.charset)
    korean = by_id["DEMO-PID-0001"]
    assert list(korean[1].SpecificCharacterSet) == ["", "ISO 2022 IR 149"]
    assert korean[1].PatientName.ideographic == "白^瑞娟"
    assert korean[1].PatientName.phonetic == "백^서연"
    assert b"\x1b$)C" in korean[0].read_bytes()  # KS X 1001 via ISO 2022 escapes
    assert "백^서연".encode() not in korean[0].read_bytes()
    utf8 = by_id["DEMO-PID-0003"]
    assert utf8[1].SpecificCharacterSet == "ISO_IR 192"
    assert str(utf8[1].PatientName) == "정^민준"
    assert "SpecificCharacterSet" not in by_id["DEMO-PID-0006"][1]


def test_planted_values_are_in_the_inputs(cohort: DemoCohort, headers: list) -> None:
    texts = set()
    for path, ds in headers:
        texts.update(str(ds.get(k, "")) for k in ("PatientName", "PatientID", "PatientBirthDate",
                                                   "AccessionNumber", "InstitutionName"))
        texts.update(path.relative_to(cohort.dicom_root).parts)
    clinical = cohort.clinical.read_text(encoding="utf-8")
    blob = "\n".join(texts) + "\n" + clinical
    iso_dates = [v for v in cohort.planted_phi if len(v) == 10 and v[4] == "-"]
    for value in cohort.planted_phi:
        if value in iso_dates:   # a DICOM birth date, or the clinical-only patient's
            assert value.replace("-", "") in blob or value in clinical
        else:
            assert value in blob, value
    assert all(len(v) >= 2 for v in cohort.planted_phi)
    assert UNMATCHED_ID in cohort.planted_phi


def test_mask_grid_equals_dicom_geometry(cohort: DemoCohort, headers: list,
                                         sheet: pd.DataFrame) -> None:
    for row in sheet.drop_duplicates("mask").itertuples():
        files = _series_files(headers, row.image.removeprefix("series:"))
        iop = np.asarray(files[0][1].ImageOrientationPatient, float)
        normal = np.cross(iop[:3], iop[3:])
        ipps = sorted((np.asarray(ds.ImagePositionPatient, float) for _, ds in files),
                      key=lambda p: float(p @ normal))
        gaps = np.diff([float(p @ normal) for p in ipps])
        dy, dx = (float(v) for v in files[0][1].PixelSpacing)
        mask = read_image(cohort.root / row.mask)
        np.testing.assert_allclose(mask.GetOrigin(), ipps[0], atol=1e-5)
        np.testing.assert_allclose(mask.GetSpacing(), (dx, dy, gaps.mean()), atol=1e-5)
        np.testing.assert_allclose(gaps, gaps[0], atol=1e-5)
        np.testing.assert_allclose(np.asarray(mask.GetDirection()).reshape(3, 3),
                                   np.column_stack([iop[:3], iop[3:], normal]), atol=1e-6)
        assert mask.GetSize() == (files[0][1].Columns, files[0][1].Rows, len(files))


def _shape(image: sitk.Image, mask: sitk.Image, label: int) -> dict[str, float]:
    features = shape.RadiomicsShape(image, mask, label=label)
    return {"VoxelVolume": features.getVoxelVolumeFeatureValue(),
            "MeshVolume": features.getMeshVolumeFeatureValue(),
            "Maximum3DDiameter": features.getMaximum3DDiameterFeatureValue()}


def test_shape_features_match_truth(cohort: DemoCohort, headers: list,
                                    sheet: pd.DataFrame) -> None:
    """Within 2 % on the native grid and after resampling to 1 mm as config/pyradiomics.yaml."""
    truth = json.loads(cohort.truth.read_text())["subjects"]
    errors = {}
    for row in sheet.itertuples():
        files = _series_files(headers, row.image.removeprefix("series:"))
        image = _read_series([p for p, _ in files])
        mask = read_image(cohort.root / row.mask)
        roi = truth[row.subject]["rois"][row.roi]
        assert roi["label"] == row.label
        expected = {"VoxelVolume": roi["volume_mm3"], "MeshVolume": roi["volume_mm3"],
                    "Maximum3DDiameter": roi["max_diameter_mm"]}
        voxels = int((sitk.GetArrayViewFromImage(mask) == row.label).sum())
        errors[(row.subject, row.roi, "voxels")] = (
            voxels * np.prod(mask.GetSpacing()) / roi["volume_mm3"] - 1)
        resampled = imageoperations.resampleImage(image, mask, resampledPixelSpacing=[1, 1, 1],
                                                  label=row.label, padDistance=10)
        for grid, pair in (("native", (image, mask)), ("1mm", resampled)):
            for name, value in _shape(*pair, row.label).items():
                errors[(row.subject, row.roi, f"{grid} {name}")] = value / expected[name] - 1
        hu = sitk.GetArrayViewFromImage(image)[sitk.GetArrayViewFromImage(mask) == row.label]
        assert 40 < hu.mean() < 130
    worst = max(errors, key=lambda k: abs(errors[k]))
    assert abs(errors[worst]) < TOLERANCE, (worst, errors[worst])


def test_regions_lie_in_soft_tissue_and_do_not_overlap() -> None:
    for index, profile in enumerate(PROFILES):
        grid = analysed_grid(profile, index)
        nx, ny, _ = grid.size
        u = np.arange(nx)[None, None, :] - (nx - 1) / 2
        v = np.arange(ny)[None, :, None] - (ny - 1) / 2
        allowed = ((u / 26.5) ** 2 + ((v - 2) / 20.5) ** 2 <= 1) & (u**2 + (v - 16) ** 2 > 5.5**2)
        lesion = ellipsoid_mask(profile.lesion, grid)
        assert not (lesion & ~allowed).any(), index
        if profile.node is not None:
            node = ellipsoid_mask(profile.node, grid)
            assert not (node & (lesion | ~allowed)).any(), index


def test_sheet_clinical_and_truth_agree(cohort: DemoCohort, sheet: pd.DataFrame,
                                        headers: list) -> None:
    assert list(sheet.columns) == ["subject", "image", "mask", "label", "roi", "modality"]
    assert set(sheet.modality) == {"CT"}
    assert set(sheet.roi) == {"lesion", "node"}
    for row in sheet.itertuples():
        mask = sitk.GetArrayFromImage(read_image(cohort.sheet.parent / row.mask))
        assert (mask == row.label).any()
    clinical = pd.read_csv(cohort.clinical)
    assert list(clinical.columns) == ["patient_id", "name", "birth_date", "age", "sex", "ct_date",
                                      "diagnosis_date", "outcome", "followup_months", "event",
                                      "notes"]
    imaging = set(sheet.subject) | set(DICOM_MASK_SUBJECTS)
    unmatched = set(clinical.patient_id) - imaging
    assert unmatched == {UNMATCHED_ID}
    assert len(unmatched) / len(clinical) <= 0.2
    assert imaging <= set(clinical.patient_id)
    assert not set(DICOM_MASK_SUBJECTS) & set(sheet.subject), "found by the crawl, not the sheet"
    assert set(clinical.outcome) == {0, 1} and set(clinical.event) == {0, 1}
    sexes = {ds.PatientID: ds.PatientSex for _, ds in headers}
    for row in clinical.itertuples():
        if row.patient_id != UNMATCHED_ID:
            assert sexes[row.patient_id] == row.sex
    truth = json.loads(cohort.truth.read_text())
    assert set(truth["subjects"]) == imaging
    assert sorted(len(truth["subjects"][s]["rois"]) for s in sheet.subject.unique()) == [
        1, 1, 1, 1, 2, 2]
    volumes = [truth["subjects"][row.subject]["rois"][row.roi]["volume_mm3"]
               for row in sheet.itertuples()]
    assert len(set(np.round(volumes))) == len(sheet)  # every sheet region is told apart by size
    assert {s: truth["subjects"][s]["mask"] for s in DICOM_MASK_SUBJECTS} == {
        s: f"dicom:{kind}" for s, kind in DICOM_MASK_SUBJECTS.items()}
    assert (cohort.root / "README.txt").read_text().startswith("radflow demo cohort")


def test_cli_subcommand(cohort: DemoCohort, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="radflow")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo", str(tmp_path / "cli"), "--patients", "4", "--seed", "7"])
    assert (args.patients, args.seed) == (4, 7)
    assert args.func(args) == 0
    sheet = pd.read_csv(tmp_path / "cli" / "sheet.tsv", sep="\t")
    assert sheet.subject.nunique() == 4
    default = pd.read_csv(cohort.sheet, sep="\t")
    assert not set(sheet.image) & set(default.image)  # the seed changes UIDs (and noise)


def test_console_command_errors(tmp_path: Path) -> None:
    cli = pytest.importorskip("radflow.cli")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    assert cli.main(["demo", os.fspath(tmp_path / "x")]) == 2
    assert cli.main(["demo", os.fspath(tmp_path / "y"), "--patients", "2"]) == 2
    assert not (tmp_path / "y").exists()


def test_dicom_masks_give_back_the_label_maps(cohort: DemoCohort, headers: list) -> None:
    """The RTSTRUCT and SEG patients' masks, read by radflow's rules, equal their label maps."""
    truth = json.loads(cohort.truth.read_text())["subjects"]
    checked = 0
    for index, kind in DICOM_MASK_PATIENTS.items():
        subject = f"DEMO-PID-{index + 1:04d}"
        profile = PROFILES[index % len(PROFILES)]
        phantom = analysed_grid(profile, index)
        labels = render(profile, phantom, np.random.default_rng(
            np.random.SeedSequence([20240101, index]))).labels
        grid = Grid(phantom.size, phantom.spacing, phantom.origin, phantom.direction)
        path = next(p for p, ds in headers if ds.PatientID == subject
                    and ds.SOPClassUID == (RTSTRUCT_SOP_CLASS if kind == "rtstruct"
                                           else SEG_SOP_CLASS))
        rois = truth[subject]["rois"]
        if kind == "rtstruct":
            structure = read_structure_set(read_header(path)[0], "demo")
            masks = {r.number: rasterise_roi(r, grid).mask for r in structure.rois
                     if not r.exclusion}
            assert {r.name: r.exclusion for r in structure.rois if r.exclusion} == {
                "reference point": "point-roi"}
        else:
            masks = {k: r.mask for k, r in seg_masks(path, grid, [1]).items()}
        assert sorted(masks) == sorted(r["label"] for r in rois.values())
        for roi in rois.values():
            np.testing.assert_array_equal(masks[roi["label"]], labels == roi["label"])
            checked += 1
    assert checked == 3  # RTSTRUCT: lesion + node; SEG: lesion
