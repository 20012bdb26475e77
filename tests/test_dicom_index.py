"""Header-only index (crawl building block) on synthetic DICOM and on real reference data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from radflow.demo.synthetic import Patient, Study, derived_uid, write_series, write_text_report
from radflow.dicom.headers import read_header
from radflow.dicom.index import SeriesRecord, find_candidate_files, index_files
from radflow.dicom.sopclass import is_image_sop_class, non_image_reason
from radflow.errors import InputFileError
from radflow.settings import CrawlSettings, GeometrySettings

PATIENT = Patient(patient_id="PID-0001", name="Doe^Jane")
STUDY = Study(study_uid=derived_uid("study"), frame_of_reference_uid=derived_uid("for"))
SETTINGS = CrawlSettings()


def _stored(n: int = 5, rows: int = 4, cols: int = 6) -> np.ndarray:
    return (np.arange(n * rows * cols) % 97).astype(np.int16).reshape(n, rows, cols)


def _series(folder: Path, name: str, n: int = 5, **kwargs) -> list[Path]:
    kwargs.setdefault("patient", PATIENT)
    kwargs.setdefault("study", STUDY)
    return write_series(folder, _stored(n), series_uid=derived_uid(name), **kwargs)


def _index(root: Path, settings: CrawlSettings = SETTINGS) -> list[SeriesRecord]:
    return index_files(find_candidate_files(root), settings)


def _by_uid(records: list[SeriesRecord], name: str) -> SeriesRecord:
    (record,) = [r for r in records if r.series_uid == derived_uid(name)]
    return record


def _status(tmp_path: Path, **kwargs) -> SeriesRecord:
    _series(tmp_path / "s", "s", **kwargs)
    return _by_uid(_index(tmp_path), "s")


# --- find_candidate_files ---------------------------------------------------------------------

def test_find_candidate_files_lists_all_regular_files_skips_hidden(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    for rel in ("a/IM1", "a/b/x.dcm", "a/b/readme.txt", "a/.DS_Store", ".git/HEAD", "top"):
        (tmp_path / rel).write_bytes(b"x")
    outside = tmp_path.parent / f"{tmp_path.name}_outside"
    outside.mkdir()
    (outside / "o.dcm").write_bytes(b"x")
    os.symlink(outside / "o.dcm", tmp_path / "a" / "linked.dcm")      # file link: followed
    os.symlink(outside, tmp_path / "a" / "linked_dir")                 # folder link: not
    os.symlink(tmp_path / "missing", tmp_path / "a" / "broken")        # broken: listed
    found = [p.relative_to(tmp_path).as_posix() for p in find_candidate_files(tmp_path)]
    assert found == ["a/IM1", "a/b/readme.txt", "a/b/x.dcm", "a/broken", "a/linked.dcm", "top"]


def test_find_candidate_files_missing_root(tmp_path):
    with pytest.raises(InputFileError) as info:
        find_candidate_files(tmp_path / "nope")
    assert info.value.reason == "missing-root"


# --- grouping and statuses ---------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:The value length:UserWarning")  # long description written
def test_two_series_in_one_folder_grouped_with_explicit_files(tmp_path):
    a = _series(tmp_path, "a", n=4, file_names=[f"A{k}.dcm" for k in range(4)],
                series_number=2, series_description="T1\x00 AXIAL\n" + "x" * 80)
    b = _series(tmp_path, "b", n=3, file_names=[f"B{k}" for k in range(3)], series_number=3,
                spacing=(0.7, 0.9, 2.0), origin=(5.0, -3.0, 40.0))
    records = _index(tmp_path)
    assert len(records) == 2
    ra, rb = _by_uid(records, "a"), _by_uid(records, "b")
    assert ra.files == tuple(sorted(a)) and rb.files == tuple(sorted(b))
    assert (ra.status, ra.n_instances, ra.n_slices, ra.rows, ra.cols) == ("ok", 4, 4, 4, 6)
    assert ra.series_description.startswith("T1 AXIAL x") and len(ra.series_description) == 64
    assert (rb.status, rb.n_slices, rb.series_number) == ("ok", 3, 3)
    assert rb.spacing == pytest.approx((0.7, 0.9, 2.0))
    assert rb.origin == pytest.approx((5.0, -3.0, 40.0))
    assert rb.orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert (rb.patient_id, rb.study_uid, rb.modality) == ("PID-0001", STUDY.study_uid, "CT")
    assert rb.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    assert rb.frame_of_reference_uid == STUDY.frame_of_reference_uid
    assert rb.image_type == ("ORIGINAL", "PRIMARY", "AXIAL")


def test_shuffled_instance_numbers_sorted_by_normal(tmp_path):
    record = _status(tmp_path, instance_numbers=[3, 1, 5, 2, 4], spacing=(1.0, 1.0, 2.5),
                     origin=(0.0, 0.0, -10.0))
    assert record.status == "ok"
    assert record.origin == pytest.approx((0.0, 0.0, -10.0))
    assert record.spacing == pytest.approx((1.0, 1.0, 2.5))


def test_missing_slice_fails(tmp_path):
    record = _status(tmp_path, slice_positions=[0.0, 3.0, 6.0, 12.0, 15.0])
    assert record.status == "failed:missing-slice"
    assert "slice gap 6 mm" in record.message and "expected 3 mm" in record.message
    assert record.spacing is None


@pytest.mark.parametrize(("per_slice", "status"), [
    (lambda k, ds: setattr(ds, "ImageOrientationPatient", [0, 1, 0, 0, 0, -1]) if k == 2
     else None, "failed:mixed-orientation"),
    (lambda k, ds: delattr(ds, "ImagePositionPatient") if k == 1 else None,
     "failed:missing-geometry"),
    (lambda k, ds: setattr(ds, "ImagePositionPatient", [0.0, 0.0, 1.0]) if k == 2 else None,
     "failed:conflicting-duplicates"),   # same position, other pixels, nothing to split by
    (lambda k, ds: (setattr(ds, "Columns", 3), setattr(ds, "PixelData", bytes(24)))
     if k == 0 else None, "failed:inconsistent-dimensions"),
    (lambda k, ds: delattr(ds, "PixelData") if k == 3 else None, "failed:missing-pixel-data"),
    (lambda k, ds: setattr(ds, "PatientID", "OTHER") if k == 4 else None,
     "failed:inconsistent-series"),
    (lambda k, ds: setattr(ds, "ImageType", ["ORIGINAL", "PRIMARY", "LOCALIZER"]),
     "excluded:localizer"),
])
def test_broken_series_statuses(tmp_path, per_slice, status):
    record = _status(tmp_path, per_slice=per_slice)
    assert record.status == status
    assert record.message
    assert "Doe" not in record.message and "PID-0001" not in record.message


def test_malformed_rescale_slope_fails(tmp_path):
    files = _series(tmp_path / "s", "s", slope=0.123456)
    data = files[1].read_bytes()
    assert data.count(b"0.123456") == 1
    files[1].write_bytes(data.replace(b"0.123456", b"abcdefgh"))  # not a decimal string
    record = _by_uid(_index(tmp_path), "s")
    assert record.status == "failed:invalid-rescale"
    assert record.message.startswith("file 2 of 5: ") and ".dcm" not in record.message


def test_modality_and_slice_count_exclusions(tmp_path):
    _series(tmp_path / "mr", "mr", modality="MR")
    _series(tmp_path / "ct", "ct", n=2)
    records = _index(tmp_path, CrawlSettings(image_modalities=("CT",)))
    assert _by_uid(records, "mr").status == "excluded:modality-mr"
    assert _by_uid(records, "ct").status == "failed:too-few-slices"


def test_identical_duplicate_file_is_read_once(tmp_path):
    files = _series(tmp_path / "s", "s")
    (tmp_path / "copy").mkdir()
    shutil.copy(files[0], tmp_path / "copy" / files[0].name)
    record = _by_uid(_index(tmp_path), "s")
    assert (record.status, record.n_instances, record.n_slices) == ("ok", 5, 5)
    # the first copy by path is read ("copy/" sorts before "s/"), the other one is listed
    assert record.ignored == (tmp_path / "s" / "IM0000.dcm",)
    assert tmp_path / "copy" / "IM0000.dcm" in record.files
    assert record.qc == ("duplicate-files-ignored",)


def test_conflicting_duplicate_file_fails_naming_positions_not_files(tmp_path):
    files = _series(tmp_path / "Doe_Jane" / "s", "s")
    ds = pydicom.dcmread(files[0])
    ds.PixelData = bytes(len(ds.PixelData))            # same SOPInstanceUID, other pixels
    (tmp_path / "copy").mkdir()
    ds.save_as(tmp_path / "copy" / "IM0000.dcm")
    record = _by_uid(_index(tmp_path), "s")
    assert record.status == "failed:conflicting-duplicates"
    assert "file 1 of 6" in record.message and "file 6 of 6" in record.message
    assert "Doe" not in record.message and "copy" not in record.message
    assert "IM0000" not in record.message


def test_oblique_series_ok(tmp_path):
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    record = _status(tmp_path, row_direction=(c, s, 0.0), column_direction=(0.0, 0.0, -1.0),
                     spacing=(0.8, 0.6, 1.5), instance_numbers=[5, 4, 3, 2, 1])
    assert record.status == "ok"
    assert record.spacing == pytest.approx((0.8, 0.6, 1.5))


def test_unexpected_error_is_confined_to_its_series(tmp_path, monkeypatch, caplog):
    import radflow.dicom.index as index_module

    _series(tmp_path / "a", "a")
    _series(tmp_path / "b", "b", series_number=2)
    real = index_module.build_records

    def broken_for_a(uid, *args):
        if uid == derived_uid("a"):
            raise KeyError(PATIENT.name)   # a message that quotes a header value
        return real(uid, *args)

    monkeypatch.setattr(index_module, "build_records", broken_for_a)
    records = _index(tmp_path)
    assert _by_uid(records, "a").status == "failed:internal-error"
    assert _by_uid(records, "b").status == "ok"
    assert "KeyError" in caplog.text and "Doe" not in caplog.text


# --- non-image and unreadable files ------------------------------------------------------------

def test_sr_excluded_and_unreadable_files_recorded(tmp_path):
    files = _series(tmp_path, "img")
    write_text_report(tmp_path, patient=PATIENT, study=STUDY, series_uid=derived_uid("sr"))
    rng = np.random.default_rng(0)
    (tmp_path / "random.bin").write_bytes(rng.bytes(4096))
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hello\n")
    data = files[0].read_bytes()
    (tmp_path / "header_cut.dcm").write_bytes(data[:200])
    records = _index(tmp_path)
    assert _by_uid(records, "img").status == "ok"
    sr = _by_uid(records, "sr")
    assert (sr.status, sr.rows, sr.n_slices) == ("excluded:non-image-sr", None, None)
    singles = {r.files[0].name: r for r in records if r.series_uid == ""}
    assert {name: r.status for name, r in singles.items()} == {
        "random.bin": "failed:not-dicom",
        "empty.dcm": "failed:empty-file",
        "notes.txt": "excluded:non-dicom-file",
        "header_cut.dcm": "failed:truncated",
    }
    assert all(r.n_instances == 1 and r.message for r in singles.values())


@pytest.mark.parametrize("keep", [-10, -1])
def test_truncated_slice_fails_its_series(tmp_path, keep):
    files = _series(tmp_path, "s")
    data = files[-1].read_bytes()
    files[-1].write_bytes(data[:keep])     # cut inside the pixel data of the last slice
    record = _by_uid(_index(tmp_path), "s")
    assert record.status == "failed:truncated"
    assert files[-1] in record.files and record.n_instances == 5
    assert "file 5 of 5" in record.message and "IM0004" not in record.message


def test_truncated_inside_header_element(tmp_path):
    (f,) = _series(tmp_path, "s", n=1)
    ds, _ = read_header(f)
    cut = ds.get_item(0x0008103E).value_tell + 3  # inside SeriesDescription's value
    f.write_bytes(f.read_bytes()[:cut])
    with pytest.raises(InputFileError) as info:
        read_header(f)
    assert info.value.reason == "truncated"


def test_meta_less_dicom_read_with_force(tmp_path):
    files = _series(tmp_path / "s", "s")
    for f in files:  # rewrite without preamble and file meta (raw implicit VR data set)
        ds = pydicom.dcmread(f)
        ds.preamble = None
        del ds.file_meta
        ds.save_as(f, implicit_vr=True, little_endian=True)
        assert f.read_bytes()[:4] == b"\x08\x00\x05\x00"  # starts with (0008,0005)
    assert _by_uid(_index(tmp_path), "s").status == "ok"


def _plant_bad_id(k: int, ds: Dataset) -> None:
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.add_new(0x00100020, "LO", b"M\xfcller-01")  # Latin-1 byte in a UTF-8 data set


@pytest.mark.filterwarnings("ignore:Unknown encoding:UserWarning")  # raised while writing
@pytest.mark.parametrize(("patient", "per_slice", "patient_id"), [
    (Patient(patient_id="KR1", name="Hong^Gildong=洪^吉洞=홍^길동",
             charset=["", "ISO 2022 IR 149"]), None, "KR1"),
    (Patient(patient_id="ID-Ä", name="Unknown^Charset", charset="ISO_IR 999"), None, None),
    (PATIENT, _plant_bad_id, "M\ufffdller-01"),
])
def test_character_sets_never_crash(tmp_path, patient, per_slice, patient_id):
    record = _status(tmp_path, patient=patient, per_slice=per_slice)
    assert record.status == "ok"
    assert record.patient_id
    if patient_id is not None:
        assert record.patient_id == patient_id


# --- real data ---------------------------------------------------------------------------------

@pytest.mark.testdata
def test_sts_002_whole_patient_folder(testdata):
    root = testdata / "sts_002_ct_mr_pet_rtstruct"
    default = {r.modality: r.status for r in _index(root) if r.modality in ("CT", "MR", "PT")}
    # the MR is DERIVED\PRIMARY, the PET DERIVED\SECONDARY: excluded unless include_derived
    assert default == {"CT": "ok", "MR": "excluded:derived", "PT": "excluded:derived"}
    records = _index(root, CrawlSettings(include_derived=True))
    images = {r.modality: r for r in records if r.status == "ok"}
    assert sorted(images) == ["CT", "MR", "PT"]
    expected = {"CT": (48, 143, 161, "CT"), "MR": (35, 90, 115, "MR_T1"), "PT": (48, 27, 30, "PET")}
    for modality, (n, rows, cols, folder) in expected.items():
        r = images[modality]
        assert (r.n_slices, r.rows, r.cols) == (n, rows, cols)
        assert r.files == tuple(sorted((root / folder / "dicom" / "image").iterdir()))
    assert images["PT"].spacing == pytest.approx((5.46875, 5.46875, 3.27))
    rtstructs = [r for r in records if r.status == "excluded:non-image-rtstruct"]
    assert sorted(r.files[0].relative_to(root).as_posix() for r in rtstructs) == [
        f"{m}/dicom/mask/RS.dcm" for m in ("CT", "MR_T1", "PET")]
    others = [r for r in records if r not in rtstructs and r.status != "ok"]
    assert {r.status for r in others} == {"excluded:non-dicom-file"}   # NIfTI, markdown, SHA256SUMS
    assert all(len(r.files) == 1 and r.series_uid == "" for r in others)


DICOM2NIFTI_STATUSES = {
    "failing/slicecount/001": ("failed:too-few-slices", 2),
    "failing/sliceincrement/001": ("failed:missing-slice", 4),
    "failing/sliceincrement/002": ("failed:gantry-tilt", 4),   # tilted and a slice missing
    "failing/gantrytilting/001": ("failed:gantry-tilt", 4),
    "failing/sliceorientation/001": ("failed:mixed-orientation", 4),
    "failing/notavolume/001": ("failed:too-few-slices", 1),  # 4 acquisitions, 1 position
    "generic/rgb/001": ("excluded:secondary-capture", 4),
    "ge/anatomical/001_single_slice": ("failed:too-few-slices", 1),
    "siemens_multiframe/anatomical/001": ("ok", 8),
    "philips_enhanced/anatomical/001": ("ok", 8),
    "philips_enhanced/anatomical/001_implicit": ("ok", 8),
    "hyperfine/anatomical/001": ("ok", 8),
    "generic/anatomical/002_non_isotropic": ("ok", 4),
}


def _dicom2nifti_folders() -> list[str]:
    root = Path(os.environ.get("RADFLOW_TESTDATA", Path(__file__).resolve().parents[2]
                               / "shared" / "data")) / "dicom2nifti_series"
    return sorted(p.relative_to(root).as_posix() for p in root.glob("*/*/*") if p.is_dir())


@pytest.mark.testdata
@pytest.mark.parametrize("case", _dicom2nifti_folders() or ["(no reference data)"])
def test_dicom2nifti_series_statuses(testdata, case):
    """Every series folder, crawled on its own: one record with the expected status."""
    records = _index(testdata / "dicom2nifti_series" / case)
    status, n_slices = DICOM2NIFTI_STATUSES.get(case, ("ok", 4))
    assert [(r.status, r.n_slices) for r in records] == [(status, n_slices)]


@pytest.mark.testdata
def test_dicom2nifti_whole_tree_deduplicates_copies(testdata):
    """Crawled as one tree, the folders that hold the same instances (implicit / explicit,
    five transfer syntaxes of one MR series, slicecount) become one series each, with the
    copies listed as ignored; every file is accounted for."""
    root = testdata / "dicom2nifti_series"
    records = _index(root)
    assert sum(len(r.files) + len(r.ignored) for r in records) == len(find_candidate_files(root))
    generic = [r for r in records if r.series_uid
               and any("compressed_rle" in str(f) for f in r.files + r.ignored)]
    assert len(generic) == 1 and generic[0].status == "ok"
    assert generic[0].qc == ("duplicate-files-ignored",) and len(generic[0].ignored) >= 16


@pytest.mark.testdata
def test_dicom2nifti_tilt_resampled_on_request(testdata):
    settings = CrawlSettings(geometry=GeometrySettings(gantry_tilt="resample"))
    (tilted,) = _index(testdata / "dicom2nifti_series/failing/gantrytilting/001", settings)
    assert (tilted.status, tilted.resampled, tilted.n_slices) == ("ok", "gantry-tilt", 4)
    (broken,) = _index(testdata / "dicom2nifti_series/failing/sliceincrement/002", settings)
    assert broken.status == "failed:missing-slice"   # tilt repaired, the gap never


@pytest.mark.testdata
def test_pydicom_test_files_never_crash(testdata):
    root = testdata / "pydicom_test_files"
    records = _index(root)
    # every file is accounted for: in a record, or ignored as an identical duplicate
    assert sum(len(r.files) + len(r.ignored) for r in records) == len(find_candidate_files(root))
    by_name = {f.name: r for r in records for f in r.files}
    assert by_name["MR_truncated.dcm"].status == "failed:truncated"
    assert by_name["rtplan_truncated.dcm"].status == "failed:truncated"
    assert by_name["rtstruct.dcm"].status == "excluded:non-image-rtstruct"  # no DICM prefix
    assert by_name["emri_small.dcm"].status == "failed:unsupported-multiframe"
    # the four re-encodings of emri_small (RLE, big endian, JPEG 2000, JPEG-LS) decode to the
    # same pixels, so they are identical duplicates of one instance
    assert len(by_name["emri_small.dcm"].ignored) == 4
    assert by_name["DICOMDIR"].status == "excluded:dicomdir"
    assert by_name["README.txt"].status == "excluded:non-dicom-file"
    assert by_name["2062"].status == "ok"    # dicomdirtests/98892001/CT5N: 5 CT slices


@pytest.mark.parametrize(("modality", "sop_class", "image", "reason"), [
    ("RTSTRUCT", "1.2.840.10008.5.1.4.1.1.481.3", False, "non-image-rtstruct"),
    ("SEG", "1.2.840.10008.5.1.4.1.1.66.4", False, "non-image-seg"),
    ("KO", "1.2.840.10008.5.1.4.1.1.88.59", False, "non-image-ko"),
    ("CT", "1.2.840.10008.5.1.4.1.1.66", False, "non-image-raw-data"),
    ("MR", "1.2.840.10008.5.1.4.1.1.30", False, "non-image-parametric-map"),
    ("", "1.3.12.2.1107.5.9.1", False, "non-image-unknown-sop-class"),
    ("PT", "1.2.840.10008.5.1.4.1.1.128", True, None),          # PET
    ("CT", "1.2.840.10008.5.1.4.1.1.2.1", True, None),          # Enhanced CT
    ("MR", "1.2.840.10008.5.1.4.1.1.4.4", True, None),          # Legacy Converted Enhanced MR
])
def test_sop_class_classification(modality, sop_class, image, reason):
    assert is_image_sop_class(sop_class) is image
    if reason is not None:
        assert non_image_reason(modality, sop_class) == reason
