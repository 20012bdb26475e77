"""The ``sr`` stage (README, "DICOM SR (TID 1500)"): the coded concepts, the mask on the source
images, and the demo cohort through the workflow, without and with de-identification.

Every SR and SEG the workflow writes here must pass ``dciodvfy`` (dicom3tools) without an
``Error`` line (warnings are printed), read back with highdicom into the values of the extract
stage's rows (value, unit, concept code, method), reference the SEG and the source series by
UID, and, de-identified, hold no planted identifying value and no source UID. ``dciodvfy``
missing: those checks skip, unless ``RADFLOW_REQUIRE_DCIODVFY=1`` (CI), where they fail.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
import yaml
from pydicom.dataset import Dataset
from workflow_helpers import find_planted, job_counts, snakemake

from radflow.demo import make_demo_cohort
from radflow.errors import DicomError
from radflow.records import Status, read_pair_record
from radflow.sr.codes import (
    HU,
    IBSI_SCHEME,
    LONG_AXIS,
    MM,
    MM3,
    ONE,
    PRIVATE_SCHEME,
    RECIST_11,
    SHORT_AXIS,
    SUV_UNITS,
    feature_concept,
    intensity_unit,
    private_code,
)
from radflow.sr.report import IMAGE_TYPE, PARAMS_HASH, PYRADIOMICS_CLASSES
from radflow.sr.seg import mask_on_source_frames
from radflow.sr.stage import STATUS_COLUMNS

# --- coded concepts ------------------------------------------------------------------------------


def test_ibsi_texture_code_is_the_concept_and_its_aggregation_the_method() -> None:
    concept = feature_concept("glcm", "Contrast", "ACUI/ITBB", intensity=(HU, HU))
    assert (concept.name.value, concept.name.scheme_designator) == ("ACUI", IBSI_SCHEME)
    assert concept.method is not None and concept.method.value == "ITBB"
    assert concept.unit == ONE


def test_units_of_shape_and_intensity_features() -> None:
    ct = intensity_unit("CT", "original", "none", "suv-bw")
    assert feature_concept("shape", "VoxelVolume", "YEKZ", intensity=ct).unit == MM3
    assert feature_concept("shape", "Maximum3DDiameter", "L0JK", intensity=ct).unit == MM
    assert feature_concept("firstorder", "Mean", "Q4LE", intensity=ct).unit == HU
    assert feature_concept("firstorder", "Skewness", "KE2A", intensity=ct).unit == ONE
    pet = intensity_unit("PT", "original", "none", "suv-bw")
    assert feature_concept("firstorder", "Mean", "Q4LE", intensity=pet).unit == \
        SUV_UNITS["suv-bw"]
    # a filtered or normalised image has no physical intensity unit
    for modality, image_type, norm in (("CT", "wavelet-LLH", "none"), ("MR", "original", "none"),
                                       ("CT", "original", "zscore-image")):
        unit = intensity_unit(modality, image_type, norm, "suv-bw")[0]
        assert unit.value == "[arb'U]"


def test_recist_sizes_use_snomed_axes_and_recist_method_uncoded_rows_the_private_scheme() -> None:
    ct = intensity_unit("CT", "original", "none", "suv-bw")
    long_axis = feature_concept("recist", "LongestDiameter", "", intensity=ct)
    assert (long_axis.name, long_axis.unit, long_axis.method) == (LONG_AXIS, MM, RECIST_11)
    assert feature_concept("recist", "ShortAxisDiameter", "", intensity=ct).name == SHORT_AXIS
    energy = feature_concept("firstorder", "Energy", "", intensity=ct)  # shifted: not IBSI N8CA
    assert energy.name.scheme_designator == PRIVATE_SCHEME
    assert energy.name == private_code("firstorder", "Energy")
    assert energy.name.meaning == "firstorder_Energy" and len(energy.name.value) <= 16


# --- the mask on the source images ---------------------------------------------------------------


def _slices(n: int, origin: tuple[float, float, float], spacing: tuple[float, float, float],
            shape: tuple[int, int]) -> list[Dataset]:
    out = []
    for k in range(n):
        ds = Dataset()
        ds.Rows, ds.Columns = shape
        ds.ImagePositionPatient = [origin[0], origin[1], origin[2] + k * spacing[2]]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [spacing[1], spacing[0]]
        out.append(ds)
    return out


def _mask(origin: tuple[float, float, float], spacing: tuple[float, float, float]) -> sitk.Image:
    arr = np.zeros((5, 8, 10), dtype=np.uint8)  # (z, y, x)
    arr[1:4, 2:5, 3:7] = 2
    image = sitk.GetImageFromArray(arr)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    return image


def test_mask_lands_on_the_source_pixels_in_any_slice_order() -> None:
    origin, spacing = (-10.0, 20.0, 5.0), (0.8, 0.6, 2.5)
    sources = _slices(5, origin, spacing, (8, 10))[::-1]  # reversed file order
    frames = mask_on_source_frames(_mask(origin, spacing), 2, sources, "p1")
    assert frames.shape == (5, 8, 10) and int(frames.sum()) == 3 * 3 * 4
    assert frames[::-1][1:4, 2:5, 3:7].all()  # slice k of the mask on the file at k


def test_mask_off_the_source_grid_is_source_grid_mismatch() -> None:
    origin, spacing = (-10.0, 20.0, 5.0), (0.8, 0.6, 2.5)
    shifted = _slices(5, (origin[0] + 0.3, origin[1], origin[2]), spacing, (8, 10))
    with pytest.raises(DicomError) as info:
        mask_on_source_frames(_mask(origin, spacing), 2, shifted, "p1")
    assert info.value.reason == "source-grid-mismatch"
    missing = _slices(3, origin, spacing, (8, 10))  # the region's top slice has no image
    with pytest.raises(DicomError, match="lie on no source image"):
        mask_on_source_frames(_mask(origin, spacing), 2, missing, "p1")


# --- the workflow on the demo cohort -------------------------------------------------------------

PARAMS = {"imageType": {"Original": {}},
          "featureClass": {"shape": [], "firstorder": [], "glcm": []},
          "setting": {"binWidth": 25}}


def dciodvfy(path: Path) -> list[str]:
    """``dciodvfy``'s warnings about ``path``; fails the test on an ``Error`` line."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        if os.environ.get("RADFLOW_REQUIRE_DCIODVFY") == "1":
            pytest.fail("dciodvfy (Debian dicom3tools) is not installed")
        pytest.skip("dciodvfy (Debian dicom3tools) is not installed")
    proc = subprocess.run([exe, str(path)], capture_output=True, text=True, check=False)
    lines = (proc.stdout + proc.stderr).splitlines()
    errors = [line for line in lines if line.startswith("Error")]
    assert errors == [], f"{path.name}: {errors[:10]}"
    return sorted({line for line in lines if line.startswith("Warning")})


def _nifti_only_pair(root: Path) -> None:
    """A sheet row whose image and mask are NIfTI files (no DICOM source)."""
    arr = np.random.default_rng(3).normal(40, 10, (12, 24, 24)).astype(np.int16)
    mask = np.zeros_like(arr, dtype=np.uint8)
    mask[4:8, 8:16, 8:16] = 1
    for name, data in (("nifti_only_image.nii.gz", arr), ("nifti_only_mask.nii.gz", mask)):
        image = sitk.GetImageFromArray(data)
        image.SetSpacing((1.0, 1.0, 2.0))
        sitk.WriteImage(image, str(root / "masks" / name))
    with (root / "sheet.tsv").open("a", encoding="utf-8") as fh:
        fh.write("NIFTI-ONLY-01\tmasks/nifti_only_image.nii.gz\tmasks/nifti_only_mask.nii.gz"
                 "\t1\tlesion\tCT\n")


def _run(tmp: Path, *, deidentify: bool) -> tuple[Path, Path, object]:
    demo = make_demo_cohort(tmp / "demo", n_patients=4)
    _nifti_only_pair(demo.root)
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS), encoding="utf-8")
    work = tmp / "work"
    work.mkdir()
    cfg = tmp / "cohort.yaml"
    cfg.write_text(yaml.safe_dump({
        "cohort": "demo", "dicom_root": str(demo.dicom_root), "sheet": str(demo.sheet),
        "extract": {"params": str(params), "image_types": []},
        "deidentify": deidentify, "sr": {"enabled": True}}), encoding="utf-8")
    # sr.enabled puts the stage in the default target
    planned = job_counts(snakemake(work, ["-n", "--cores", "2", "--configfile", str(cfg)]).stdout)
    assert planned["sr"] == 1, planned
    snakemake(work, ["--cores", "2", "sr", "--configfile", str(cfg)])
    return work, work / "results" / "demo", demo


def _items(node: Dataset) -> list[Dataset]:
    out = []
    for item in node.get("ContentSequence", []):
        out.append(item)
        out += _items(item)
    return out


def _group_algorithm(group: Dataset) -> tuple[str, str, dict[str, str]]:
    """Name, version and parameters (``name=value``) of a measurement group's algorithm."""
    name = version = ""
    params: dict[str, str] = {}
    for item in _items(group[0]):
        code = item.ConceptNameCodeSequence[0].CodeValue
        if code == "111001":
            name = item.TextValue
        elif code == "111003":
            version = item.TextValue
        elif code == "111002":
            key, _, value = item.TextValue.partition("=")
            params[key] = value
    return name, version, params


def _check_outputs(results: Path, dicom_dir: Path) -> tuple[pd.DataFrame, list[Path]]:
    """Status table, dciodvfy and the highdicom round trip of every SR and SEG."""
    table = pd.read_csv(results / "sr" / "status.tsv", sep="\t", dtype=str,
                        keep_default_na=False)
    assert tuple(table.columns) == STATUS_COLUMNS
    for status in table["status"]:
        Status.parse(status)
    pairs = pd.read_csv(results / "crawl" / "pair_plan.tsv", sep="\t", dtype=str,
                        keep_default_na=False)
    series = pd.read_csv(results / "crawl" / "series.tsv", sep="\t", dtype=str,
                         keep_default_na=False)
    source_of = dict(zip(series["series_key"], series["source"], strict=False))
    assert sorted(table["pair_id"]) == sorted(pairs["pair_id"])
    file_pairs = set(pairs.loc[pairs["image_key"].map(source_of) == "file", "pair_id"])
    assert file_pairs, "the NIfTI-only sheet row made no pair"
    for row in table.itertuples(index=False):
        expected = "excluded:no-dicom-source" if row.pair_id in file_pairs else "ok"
        assert row.status == expected, (row.pair_id, row.status, row.message)
    ok = table[table["status"] == "ok"]
    assert set(ok["seg"]) == {"written", "referenced"}  # NIfTI/RTSTRUCT masks; the demo's SEG
    features = pd.concat(pd.read_parquet(p) for p in (results / "extract").rglob("*.parquet"))
    warnings: set[str] = set()
    written: list[Path] = []
    for row in ok.itertuples(index=False):
        unit_dir = dicom_dir / row.case_id / row.image_key
        sr_path = unit_dir / row.sr_file
        warnings.update(dciodvfy(sr_path))
        written.append(sr_path)
        sr = hd.sr.srread(sr_path)
        rows = features[features["pair_id"] == row.pair_id]
        groups = sr.content.get_volumetric_roi_measurement_groups()
        assert groups
        record = read_pair_record(results / "pair" / f"{row.pair_id}.json")
        image_uid = pydicom.dcmread(next(iter(_source_files(results, record.image_key))),
                                    stop_before_pixels=True).SeriesInstanceUID
        if row.seg == "written":
            seg_path = unit_dir / row.seg_file
            warnings.update(dciodvfy(seg_path))
            written.append(seg_path)
            seg = hd.seg.segread(seg_path)
            seg_uid, segment = seg.SOPInstanceUID, 1
            _check_seg(seg, record, results)
        else:
            mask = pydicom.dcmread(next(iter(_source_files(results, record.mask_key))),
                                   stop_before_pixels=True)
            seg_uid, segment = mask.SOPInstanceUID, int(record.label or 0)
        seen = 0
        for group in groups:
            assert group.tracking_uid == groups[0].tracking_uid
            ref = group.referenced_segment
            assert ref.referenced_sop_instance_uid == seg_uid
            assert list(ref.referenced_segment_numbers) == [segment]
            assert ref.source_series_for_segmentation.value == image_uid
            name, version, params = _group_algorithm(group)
            part = rows[rows["image_type"] == params[IMAGE_TYPE]]
            engine = part["feature_class"].isin(PYRADIOMICS_CLASSES)
            part = part[engine] if name == "PyRadiomics" else part[~engine]
            assert version == (str(part["pyradiomics_version"].iloc[0]) if name == "PyRadiomics"
                               else str(part["radflow_version"].iloc[0]))
            assert params[PARAMS_HASH] == part["params_hash"].iloc[0]
            measured = group.get_measurements()
            reported = [r for r in part.itertuples(index=False)
                        if math.isfinite(r.value) and r.feature != "LongestDiameterSlice"]
            assert len(measured) == len(reported)
            for m, r in zip(measured, reported, strict=True):
                concept = feature_concept(r.feature_class, r.feature, r.ibsi_code,
                                          intensity=_unit_of(r, sr))
                assert m.value == r.value  # FloatingPointValue: exact
                assert (m.name.value, m.name.scheme_designator) == (
                    concept.name.value, concept.name.scheme_designator)
                assert m.unit.value == concept.unit.value
                code, _, aggregation = r.ibsi_code.partition("/")
                if code:
                    assert m.name.value == code and m.name.scheme_designator == IBSI_SCHEME
                assert (m.method.value if m.method is not None else "") == aggregation or \
                    m.method == RECIST_11
            seen += len(measured)
        assert seen == int(row.n_measurements) > 0
    print("dciodvfy warnings:", *warnings, sep="\n  ")
    return table, written


def _unit_of(row: object, sr: Dataset) -> tuple:
    modality = "CT"  # the demo cohort
    return intensity_unit(modality, row.image_type, row.normalisation, "suv-bw")


def _source_files(results: Path, key: str) -> list[str]:
    import json

    work = results.parent.parent
    private = work / ".radflow" / "private" / "demo" / "sources"
    files = json.loads((private / f"{key}.json").read_text(encoding="utf-8"))["files"]
    return [str(work / f) for f in files]  # relative: the de-identified tree in results/


def _check_seg(seg: hd.seg.Segmentation, record: object, results: Path) -> None:
    """The SEG's region: the pair's voxel count, slice by slice where the mask has it."""
    mask = sitk.ReadImage(str(results.parent.parent / record.mask))
    arr = sitk.GetArrayFromImage(mask) == int(record.label)
    assert seg.get_segment_numbers() == [1]
    total = 0
    for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence:
        uid = item.ReferencedSOPInstanceUID
        try:
            pixels = seg.get_pixels_by_source_instance([uid], segment_numbers=[1])[0, :, :, 0]
        except (ValueError, KeyError):
            continue  # an empty frame is omitted
        total += int(pixels.sum())
    assert total == int(arr.sum()) == int(record.n_voxels)


@pytest.mark.slow
def test_demo_sr_and_seg_pass_dciodvfy_and_read_back(tmp_path: Path) -> None:
    work, results, demo = _run(tmp_path, deidentify=False)
    # without de-identification the DICOM files carry the source's patient (so that they link
    # to the images in the archive): they are written to the private folder, not to results/
    dicom_dir = work / ".radflow" / "private" / "demo" / "sr"
    assert not any((results / "sr").rglob("*.dcm"))
    _check_outputs(results, dicom_dir)
    assert find_planted(dicom_dir, demo.planted_phi)  # the search below finds what is there
    assert find_planted(results / "sr", demo.planted_phi) == []


@pytest.mark.slow
def test_deidentified_sr_and_seg_hold_no_source_uid_or_phi(tmp_path: Path) -> None:
    _, results, demo = _run(tmp_path, deidentify=True)
    table, written = _check_outputs(results, results / "sr")
    assert written
    source_uids: set[str] = set()
    for path in Path(demo.dicom_root).rglob("*"):
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # text files of the demo tree
            continue
        for elem in ds.iterall():
            if elem.VR == "UI" and elem.value and not str(elem.value).startswith("1.2.840.10008"):
                source_uids.update(map(str, elem.value if elem.VM > 1 else [elem.value]))
    assert source_uids
    for path in written:
        data = path.read_bytes()
        leaked = [u for u in source_uids if u.encode("ascii") in data]
        assert leaked == [], f"{path.name}: source UIDs {leaked[:3]}"
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert str(ds.PatientID) in set(table["case_id"])  # the pseudonym, not the source ID
    hits = find_planted(results / "sr", demo.planted_phi)
    assert hits == []


# --- the per-unit job on a small synthetic series (fast) -----------------------------------------


def _unit_fixture(tmp: Path, *, mask_shift_mm: float = 0.0,
                  enhanced: bool = False) -> dict[str, object]:
    """One synthetic CT series (5 slices of 16 x 12; single-frame files or one enhanced CT
    object), a NIfTI mask of it, the extract rows."""
    from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
    from radflow.demo.synthetic_multiframe import write_enhanced
    from radflow.io.atomic import write_json, write_parquet
    from radflow.records import PairRecord, Source, write_pair_record, write_source

    spacing, origin = (0.8, 0.7, 2.0), (-5.0, 3.0, 10.0)
    stored = np.random.default_rng(1).integers(900, 1200, (5, 12, 16)).astype(np.int16)
    patient, study = Patient("PID-SR-1", "Doe^Jane"), Study(derived_uid("st"), derived_uid("for"))
    if enhanced:
        files = [write_enhanced(
            tmp / "dicom" / "enhanced.dcm", stored, patient=patient, study=study,
            series_uid=derived_uid("se"), modality="CT",
            positions=[(origin[0], origin[1], origin[2] + k * spacing[2]) for k in range(5)],
            pixel_spacing=(spacing[1], spacing[0]), slice_thickness=spacing[2],
            intercept=-1024.0, image_type=("ORIGINAL", "PRIMARY", "AXIAL", "NONE"))]
    else:
        files = write_series(tmp / "dicom", stored, patient=patient, study=study,
                             series_uid=derived_uid("se"), spacing=spacing, origin=origin)
    arr = np.zeros((5, 12, 16), dtype=np.uint8)
    arr[1:4, 3:8, 4:10] = 1
    mask = sitk.GetImageFromArray(arr)
    mask.SetSpacing(spacing)
    mask.SetOrigin((origin[0] + mask_shift_mm, origin[1], origin[2]))
    sitk.WriteImage(mask, str(tmp / "mask.nii.gz"))
    sources = []
    for key, kind, paths in (("simage", "dicom", [str(f) for f in files]),
                             ("sfile", "image-file", [str(tmp / "mask.nii.gz")])):
        write_source(tmp / f"{key}.json", Source(series_key=key, files=paths, case_id="c1",
                                                 kind=kind, role="image"))
        sources.append(str(tmp / f"{key}.json"))
    pairs = []
    for pair_id, image_key in (("p1", "simage"), ("p2", "sfile")):
        write_pair_record(tmp / f"{pair_id}.json", PairRecord(
            pair_id=pair_id, status="ok", case_id="c1", image_key=image_key, mask_key="smask",
            roi="lesion", label=1, image="", mask=str(tmp / "mask.nii.gz"), n_voxels=90))
        pairs.append(str(tmp / f"{pair_id}.json"))
    rows = pd.DataFrame([
        {"pair_id": pid, "image_type": "original", "feature_class": fc, "feature": f,
         "ibsi_code": code, "value": v, "pyradiomics_version": "3.1.4",
         "radflow_version": "0.0-test", "params_hash": "abc123", "params_set": "all:p.yaml",
         "normalisation": "none", "image_hash": "ih", "mask_hash": "mh"}
        for pid in ("p1", "p2")
        for fc, f, code, v in (("shape", "VoxelVolume", "YEKZ", 100.8),
                               ("firstorder", "Mean", "Q4LE", 31.25),
                               ("glcm", "Contrast", "ACUI/ITBB", 2.5),
                               ("recist", "LongestDiameter", "", 4.2),
                               ("fractal", "BoxCountingDimension", "", float("nan")))])
    write_parquet(tmp / "unit.parquet", rows)
    write_json(tmp / "unit.json", {"unit": "simage", "n_pairs": 2, "seconds": 0.1, "pairs": [
        {"pair_id": p, "status": "ok", "reason": None, "message": None, "n_features": 5,
         "seconds": 0.1} for p in ("p1", "p2")]})
    return {"pairs": pairs, "features": str(tmp / "unit.parquet"),
            "extract_status": str(tmp / "unit.json"), "sources": sources}


def _run_unit(tmp: Path, inputs: dict[str, object], **settings: object) -> list:
    from radflow.sr.stage import run_sr_unit

    return run_sr_unit(**inputs, settings=settings, pet_units="suv-bw", version="0.0-test",
                       out_dir=str(tmp / "out"), out_status=str(tmp / "out.json"))


@pytest.mark.parametrize("enhanced", [False, True], ids=["single-frame", "enhanced-ct"])
def test_unit_job_writes_seg_and_sr_that_read_back(tmp_path: Path, enhanced: bool) -> None:
    results = _run_unit(tmp_path, _unit_fixture(tmp_path, enhanced=enhanced))
    by_pair = {r.pair_id: r for r in results}
    assert by_pair["p2"].status == "excluded:no-dicom-source"
    ok = by_pair["p1"]
    assert (ok.status, ok.seg, ok.n_measurements, ok.n_left_out) == ("ok", "written", 4, 1)
    sr_path, seg_path = tmp_path / "out" / ok.sr_file, tmp_path / "out" / ok.seg_file
    dciodvfy(sr_path)
    dciodvfy(seg_path)
    seg = hd.seg.segread(seg_path)
    volume = seg.get_volume(segment_numbers=[1])
    assert int(np.asarray(volume.array).sum()) == 3 * 5 * 6
    group = hd.sr.srread(sr_path).content.get_volumetric_roi_measurement_groups()
    assert {g.referenced_segment.referenced_sop_instance_uid for g in group} == \
        {seg.SOPInstanceUID}
    got = {(m.name.scheme_designator, m.name.value): (m.value, m.unit.value,
                                                      m.method.value if m.method else "")
           for g in group for m in g.get_measurements()}
    assert got == {("IBSI", "YEKZ"): (100.8, "mm3", ""),
                   ("IBSI", "Q4LE"): (31.25, "[hnsf'U]", ""),
                   ("IBSI", "ACUI"): (2.5, "1", "ITBB"),
                   ("SCT", "103339001"): (4.2, "mm", "126081")}
    sr = pydicom.dcmread(sr_path)
    assert str(sr.PatientID) == "PID-SR-1"  # the source's patient (deidentify off)


def test_unit_job_mask_off_the_source_grid_and_nothing_to_report(tmp_path: Path) -> None:
    results = _run_unit(tmp_path, _unit_fixture(tmp_path, mask_shift_mm=0.3))
    assert results[0].status == "failed:source-grid-mismatch"
    assert not list((tmp_path / "out").glob("*.dcm"))
    results = _run_unit(tmp_path, _unit_fixture(tmp_path), image_types=["wavelet-LLH"])
    assert results[0].status == "failed:sr-error"
    assert "no feature row" in results[0].message
    assert not list((tmp_path / "out").glob("*.dcm"))  # no SEG without its SR
