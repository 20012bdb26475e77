"""The bad-input corpus (tests/bad_inputs_corpus.py): one test per difficult case, exact statuses.

Each case is written by pydicom from the small clean series, crawled (headers), and every record
the crawl accepts is converted; the statuses must be exactly the ones the case states, every status
must belong to the closed vocabulary, messages must not carry patient data, and accepted volumes
must equal the numpy oracle of the case.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from bad_inputs_base import ORIGIN, SPACING, STORED, Case, clean, uid
from bad_inputs_corpus import (
    CASES,
    HOSTILE,
    KOREAN_ID,
    KOREAN_NAME,
    patient_for,
    record_name,
)
from pydicom.dataset import Dataset

from radflow.crawl import crawl, write_crawl
from radflow.demo.synthetic import Patient
from radflow.dicom.colour import is_colour
from radflow.dicom.headers import read_header
from radflow.dicom.index import find_candidate_files, index_files
from radflow.dicom.pixels import decode_pixels
from radflow.dicom.reasons import QC_WARNINGS, REASONS, is_known_status, reason_kind
from radflow.dicom.volume import read_series
from radflow.errors import RadflowError
from radflow.keys import case_id
from radflow.settings import CrawlSettings, GeometrySettings, from_mapping

REPO = Path(__file__).resolve().parents[1]
# pydicom warns while *writing* the fixtures with unknown character sets and over-long (hostile)
# values; radflow's reading of them is silent (the index captures and counts pydicom's warnings)
pytestmark = [pytest.mark.filterwarnings("ignore:Unknown encoding:UserWarning"),
              pytest.mark.filterwarnings("ignore:The value length:UserWarning")]
KEY = b"k" * 32


def settings_for(case: Case) -> CrawlSettings:
    return from_mapping(CrawlSettings, case.settings, section="crawl")


def _convert(record, settings: GeometrySettings):
    """The convert stage's status and volume (as radflow.convert gives them)."""
    try:
        volume = read_series(record.files, settings, frames=record.frames)
    except RadflowError as exc:
        return f"{reason_kind(exc.reason) or 'failed'}:{exc.reason}", None
    return ("excluded:colour-image" if is_colour(volume.image) else "ok"), volume


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, tmp_path: Path) -> None:
    patient = patient_for(case)
    case.build(tmp_path / "in", patient)
    settings = settings_for(case)
    records = index_files(find_candidate_files(tmp_path / "in"), settings)
    by_name = {record_name(r): r for r in records}
    assert len(by_name) == len(records), "record names must be unique"
    assert {n: r.status for n, r in by_name.items()} == case.crawl
    for name, record in by_name.items():
        assert is_known_status(record.status), record.status
        assert (record.status == "ok") != bool(record.message), (name, record.message)
        assert patient.name not in record.message and patient.patient_id not in record.message
        assert record.qc == case.qc.get(name, ()), (name, record.qc)
    converted = {}
    for name, record in by_name.items():
        if record.status != "ok":
            continue
        status, volume = _convert(record, settings.geometry)
        assert status == case.convert.get(name, "ok"), name
        assert is_known_status(status)
        converted[name] = volume
    for name, expected in case.expect.items():
        volume = converted[name]
        if callable(expected):
            expected(volume.image, volume.info)
            continue
        np.testing.assert_array_equal(sitk.GetArrayFromImage(volume.image),
                                      np.asarray(expected).astype(np.float32))
        assert volume.image.GetSpacing() == pytest.approx(SPACING)
        assert volume.image.GetOrigin() == pytest.approx(ORIGIN)


def test_corpus_covers_the_vocabulary() -> None:
    """Every crawl reason a DICOM series can get has a case (convert-only and file-level reasons
    that need a broken decoder or a changed file are covered in test_dicom_volume.py)."""
    produced = {s.partition(":")[2] for c in CASES for s in [*c.crawl.values(),
                                                              *c.convert.values()]} - {""}
    produced = {("non-image" if r.startswith("non-image-") else r) for r in produced}
    elsewhere = {"non-dicom-file", "unreadable", "missing-sop-class-uid", "missing-series-uid",
                 "dicomdir", "modality", "inconsistent-series", "unsupported-photometric",
                 "unsupported-multiframe", "invalid-rescale", "no-slices", "missing-geometry",
                 "invalid-orientation", "inconsistent-pixel-spacing", "invalid-pixel-spacing",
                 "duplicate-position", "missing-decoder", "unsupported-transfer-syntax",
                 "invalid-pixel-data", "unsupported-modality-lut", "internal-error",
                 "invalid-rtstruct", "invalid-seg",  # these two: test_rtstruct.py, test_seg.py
                 "mosaic-unreadable",  # test_dicom_mosaic.py
                 "no-params-for-modality",  # test_modality_params.py (an extract status)
                 "bias-correction-failed",  # test_mr_bias.py (convert.mr_bias_correction)
                 "suv-units-unknown", "suv-not-attenuation-corrected", "suv-decay-unknown",
                 "suv-missing-weight", "suv-missing-dose", "suv-missing-half-life",
                 "suv-missing-start-time", "suv-missing-scan-time", "suv-implausible-times",
                 "suv-missing-height-or-sex", "suv-inconsistent-headers",  # test_suv.py
                 "duplicate-of",  # test_crawl_copies.py (decided by the crawl across series)
                 "protocol-failed",  # test_protocol.py (a pair status of the protocol gate)
                 "empty-region", "roi-too-large",  # test_reliability_*.py (a copy's status)
                 "no-dicom-source", "source-grid-mismatch", "sr-error"}  # test_sr.py
    assert set(REASONS) - produced - elsewhere == set()
    assert produced - set(REASONS) == set()


def test_vocabulary_is_documented() -> None:
    """The README's "What radflow does with difficult DICOM" names every reason, QC code, switch."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [f"{kind}:{r}" for r, (kind, _, _) in REASONS.items()
               if f"`{kind}:{r}`" not in text and f"`{kind}:{r}-<" not in text]
    missing += [code for code in QC_WARNINGS if f"`{code}`" not in text]
    assert missing == []
    for switch in ("include_derived", "gantry_tilt", "uneven_spacing", "min_slices"):
        assert switch in text


def test_status_vocabulary_rejects_unknown() -> None:
    assert is_known_status("excluded:non-image-rtstruct")
    assert is_known_status("excluded:modality-us")
    assert not is_known_status("failed:localizer")           # a known reason of the other kind
    assert not is_known_status("failed:no-such-reason")
    assert not is_known_status("failed:Missing Slice")


# --- decoders against an independent decoder -------------------------------------------------

def _gdcm_decode(path: Path) -> np.ndarray:
    import gdcm

    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    assert reader.Read()
    image = reader.GetImage()
    dtype = {"INT16": np.int16, "UINT16": np.uint16, "UINT8": np.uint8}[
        image.GetPixelFormat().GetScalarTypeAsString()]
    data = image.GetBuffer().encode("utf-8", "surrogateescape")
    return np.frombuffer(data, dtype).reshape(image.GetDimension(1), image.GetDimension(0))


@pytest.mark.parametrize("case_id_", ["ts-j2k-lossy", "ts-jpeg-baseline", "ts-jpeg-lossless-sv1"])
def test_lossy_and_gdcm_decodes_agree(case_id_: str, tmp_path: Path) -> None:
    """radflow's decoder (pydicom + OpenJPEG / Pillow / GDCM plugin) equals GDCM's own reader."""
    (case,) = [c for c in CASES if c.id == case_id_]
    case.build(tmp_path, patient_for(case))
    for path in sorted(tmp_path.iterdir()):
        ours = decode_pixels(pydicom.dcmread(path), path)
        np.testing.assert_array_equal(ours, _gdcm_decode(path), err_msg=path.name)


# --- character sets ----------------------------------------------------------------------------

_CODECS = {"ISO_IR 127": "iso8859_6", "ISO_IR 100": "latin_1", "ISO_IR 126": "iso8859_7",
           "ISO_IR 138": "iso8859_8", "ISO_IR 144": "iso8859_5", "ISO_IR 192": "utf_8",
           "GB18030": "gb18030", "['', 'ISO 2022 IR 87']": "iso2022_jp",
           "['', 'ISO 2022 IR 149']": "korean"}


def _expected_names(root: Path) -> dict[str, str]:
    """Patient names from the charset files' FileInfo.txt, decoded with Python's codecs only."""
    names = {}
    for line in (root / "FileInfo.txt").read_text(encoding="latin-1").splitlines():
        fields = re.split(r"\s{2,}", line.strip())
        if len(fields) != 3 or not fields[0].endswith(".dcm") or fields[1] not in _CODECS:
            continue
        name, charset, value = fields
        raw = ast.literal_eval(value).encode("latin-1")
        codec = _CODECS[charset]
        if codec == "korean":   # ISO 2022 IR 149: ESC $ ) C designates KS X 1001 in G1 (EUC-KR)
            names[name] = raw.replace(b"\x1b$)C", b"").decode("euc_kr")
        else:
            names[name] = raw.decode(codec)
    return names


@pytest.mark.testdata
def test_pydicom_charset_files_decode_names(testdata: Path) -> None:
    root = testdata / "pydicom_test_files" / "charset_files"
    expected = _expected_names(root)
    assert {"chrI2.dcm", "chrX1.dcm", "chrX2.dcm", "chrH31.dcm", "chrRuss.dcm"} <= set(expected)
    for name, value in expected.items():
        ds, _ = read_header(root / name)
        # pydicom drops trailing empty component groups ("...=" of chrX1/chrX2): same PN value
        assert str(ds.PatientName) == value.rstrip("="), name


def _korean_files(folder: Path, patient_id: str, how: str) -> None:
    # other pixels per series: identical ones would be re-exported copies (test_crawl_copies.py)
    stored = (STORED + ("iso2022", "utf8", "iso-ir-149").index(how)).astype(np.int16)
    if how == "iso2022":
        clean(folder, Patient(patient_id, KOREAN_NAME, charset=["", "ISO 2022 IR 149"]), name=how,
              stored=stored)
    elif how == "utf8":
        clean(folder, Patient(patient_id, KOREAN_NAME, charset="ISO_IR 192"), name=how,
              stored=stored)
    else:  # the non-conformant "ISO_IR 149" with raw EUC-KR bytes, as some Korean PACS write

        def plant(k: int, ds: Dataset) -> None:
            ds.SpecificCharacterSet = "ISO_IR 149"
            ds.add_new(0x00100010, "PN", KOREAN_NAME.encode("euc_kr"))
            ds.add_new(0x00100020, "LO", patient_id.encode("euc_kr"))
        clean(folder, Patient("placeholder", "X", charset=None), per_slice=plant, name=how,
              stored=stored)


def test_korean_ids_and_names_decode_alike_in_every_charset(tmp_path: Path) -> None:
    """One Korean patient ID written three ways is one pseudonymous case; names decode right."""
    for how in ("iso2022", "utf8", "iso-ir-149"):
        _korean_files(tmp_path / how, KOREAN_ID, how)
        ds, _ = read_header(next((tmp_path / how).iterdir()))
        assert str(ds.PatientName) == KOREAN_NAME, how
    result = crawl(tmp_path, None, KEY, CrawlSettings())
    series = result.series
    assert list(series["status"]) == ["ok"] * 3
    assert set(series["case_id"]) == {case_id(KEY, KOREAN_ID)}
    assert sorted(series["qc"]) == ["", "", "charset-corrected"]


# --- hostile values ------------------------------------------------------------------------------

def test_hostile_values_never_reach_paths_and_keep_tables_intact(tmp_path: Path) -> None:
    (case,) = [c for c in CASES if c.id == "hostile-values"]
    patient = patient_for(case)
    case.build(tmp_path / "in", patient)
    clean(tmp_path / "in" / "other", Patient("OTHER-1", "Roe^R"), name="other")
    result = crawl(tmp_path / "in", None, KEY, CrawlSettings())
    out = tmp_path / "out"
    write_crawl(result, out / "series.tsv", out / "pair_plan.tsv", out / "pairs", tmp_path / "src")
    table = pd.read_csv(out / "series.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert len(table) == 2 and list(table["status"]) == ["ok", "ok"]
    hostile_row = table[table["case_id"] == case_id(KEY, patient.patient_id)].iloc[0]
    description = hostile_row["series_description"]
    assert len(description) == 64 and description.startswith("../.. ;rm -rf /\"',")
    assert not re.search(r"[\x00-\x1f\x7f]", description)
    written = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
               if p.is_file() and p.relative_to(tmp_path).parts[0] != "in"]
    key_name = re.compile(r"^(out/(series|pair_plan)\.tsv|src/s[0-9a-f]{16}\.json)$")
    assert all(key_name.match(p) for p in written), written
    for value in ("passwd", "etc", "rm -rf"):
        assert not any(value in p for p in written)
    assert HOSTILE["PatientID"] not in (out / "series.tsv").read_text(encoding="utf-8")


def test_folder_name_outside_utf8_is_crawled_and_converted(tmp_path: Path) -> None:
    """A folder name that is not valid UTF-8 (an old archive's Latin-1 name, say) reaches
    Python as lone surrogates; the private source list must keep it exactly."""
    from radflow.convert import run_convert

    folder = tmp_path / "dicom" / os.fsdecode(b"M\xfcller_\xff")
    clean(folder, Patient("LATIN-1", "M\xfcller^Hans"))
    result = crawl(tmp_path / "dicom", None, KEY, CrawlSettings())
    out = tmp_path / "out"
    write_crawl(result, out / "series.tsv", out / "pair_plan.tsv", out / "pairs", tmp_path / "src")
    (source,) = (tmp_path / "src").iterdir()
    assert Path(json.loads(source.read_text(encoding="utf-8"))["files"][0]).parent == folder
    run_convert(source_json=str(source), sidecar_json=str(out / "c" / "s.json"),
                settings=GeometrySettings())
    assert json.loads((out / "c" / "s.json").read_text(encoding="utf-8"))["status"] == "ok"


# --- the whole corpus through the real workflow ------------------------------------------------

#: One case per kind of outcome (the full corpus runs above without Snakemake; each converted
#: series costs a job, so the workflow gets a sample).
WORKFLOW_CASES = ["ts-big-endian", "ts-jpeg-lossless-sv1", "4d-enhanced-dwi", "colour-rgb",
                  "identical-duplicate-files", "conflicting-duplicate-instance",
                  "infinite-after-rescale", "gantry-tilt", "localizer", "truncated-file",
                  "not-dicom", "unreadable-private-payload", "charset-iso-ir-149-nonconformant",
                  "hostile-values"]
HOSTILE_ROIS = ["../../evil/a\\b", "tab\there\nnewline NUL\x00inside",
                'quote"s,comma \x1b[31m☢ 세그먼트 \U0001F600']


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    from workflow_helpers import snakemake

    from radflow.io.nifti import write_nifti
    from radflow.text import clean_text

    base = tmp_path_factory.mktemp("corpus")
    cases = [c for c in CASES if c.id in WORKFLOW_CASES]
    assert len(cases) == len(WORKFLOW_CASES) and all(not c.settings for c in cases)
    for case in cases:   # folders named like many archives: after the patient
        name = f"Doe_Jane_{case.id}"
        if case.id == "ts-big-endian":   # and one folder name that is not valid UTF-8
            name = os.fsdecode(b"Doe_Jane_\xff\xfe_" + case.id.encode())
        case.build(base / "dicom" / name, patient_for(case))
    (image_case,) = [c for c in cases if c.id == "ts-big-endian"]
    labels = np.zeros((5, 32, 40), np.uint8)
    for k in range(len(HOSTILE_ROIS)):
        labels[1:4, 4 + 4 * k:7 + 4 * k, 5:20] = k + 1
    mask = sitk.GetImageFromArray(labels)
    mask.SetSpacing(SPACING)
    mask.SetOrigin(ORIGIN)
    write_nifti(base / "mask.nii.gz", mask)
    pd.DataFrame([{"subject": patient_for(image_case).patient_id,
                   "image": f"series:{uid(patient_for(image_case))}", "mask": "mask.nii.gz",
                   "label": k + 1, "roi": roi} for k, roi in enumerate(HOSTILE_ROIS)]) \
        .to_csv(base / "sheet.tsv", sep="\t", index=False)
    params = base / "params.yaml"
    params.write_text("imageType: {Original: {}}\nfeatureClass: {firstorder: []}\n"
                      "setting: {binWidth: 25}\n")
    config = ["--config", "cohort=bad", f"dicom_root={base / 'dicom'}",
              f"sheet={base / 'sheet.tsv'}", f"key_file={base / 'key'}",
              "convert={scope: all}", f"extract={{params: {params}}}"]
    work = base / "work"
    work.mkdir()
    snakemake(work, ["--cores", "2", *config])
    return work, base, cases, config, [clean_text(r) for r in HOSTILE_ROIS]


@pytest.mark.slow
def test_corpus_workflow_statuses_and_summary(corpus_run) -> None:
    from radflow.keys import load_key

    work, base, cases, _, _ = corpus_run
    res = work / "results" / "bad"
    key = load_key(base / "key")
    series = pd.read_csv(res / "crawl" / "series.tsv", sep="\t", dtype=str,
                         keep_default_na=False)
    dicom = series[series["source"] == "dicom"]
    assert all(is_known_status(s) for s in dicom["status"])
    sidecar_status = {}
    for case in cases:
        rows = dicom[dicom["case_id"] == case_id(key, patient_for(case).patient_id)]
        got = {f"#{r.series_number}{r.split}": r.status for r in rows.itertuples()}
        assert got == {n: s for n, s in case.crawl.items() if n.startswith("#")}, case.id
        for r in rows[rows["status"] == "ok"].itertuples():
            sidecar = res / "convert" / r.case_id / f"{r.series_key}.json"
            status = json.loads(sidecar.read_text(encoding="utf-8"))["status"]
            assert status == case.convert.get(f"#{r.series_number}{r.split}", "ok"), case.id
            sidecar_status[r.series_key] = status
            volume = sidecar.with_name(sidecar.name.removesuffix(".json") + ".nii.gz")
            # a failed series has no volume; a colour one is written for viewing
            assert volume.exists() == (status in ("ok", "excluded:colour-image"))
    unassigned = sorted(dicom.loc[dicom["case_id"] == "", "status"])
    assert unassigned == ["failed:not-dicom"]
    summary = pd.read_csv(res / "qc" / "run_summary.tsv", sep="\t")
    crawl_counts = summary[summary["stage"] == "crawl"].set_index("status")["count"]
    assert crawl_counts.to_dict() == series["status"].value_counts().to_dict()
    convert_counts = summary[summary["stage"] == "convert"].set_index("status")["count"]
    sidecars = [json.loads(p.read_text(encoding="utf-8"))["status"]
                for p in (res / "convert").rglob("*.json")]
    assert convert_counts.to_dict() == pd.Series(sidecars).value_counts().to_dict()
    assert convert_counts["failed:non-finite-values"] == 1


@pytest.mark.slow
def test_corpus_workflow_hostile_values_and_privacy(corpus_run) -> None:
    from workflow_helpers import find_planted

    work, _, _, _, rois = corpus_run
    res = work / "results" / "bad"
    pairs = pd.read_csv(res / "pair" / "pairs.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert sorted(pairs["roi"]) == sorted(rois) and set(pairs["status"]) == {"ok"}
    wide = pd.read_csv(res / "merge" / "features_wide.csv", dtype={"roi": str},
                       keep_default_na=False)
    assert len(wide) == len(rois) and sorted(wide["roi"]) == sorted(rois)
    assert wide["original_firstorder_Mean"].notna().all()
    # key-named files: outputs (also extract's <unit>.side.json), logs and Snakemake benchmark
    # tables (benchmarks/<rule>/<key>.tsv)
    allowed = re.compile(r"^(c[0-9a-f]{12}|s[0-9a-f]{16}|p[0-9a-f]{16}|t[0-9a-f]{16})"
                         r"(\.(json|side\.json|nii\.gz|mha|parquet|log|tsv))?$"
                         r"|^[a-z_]+(\.(tsv|csv|parquet|log))?$")
    names = {part for p in res.rglob("*") for part in p.relative_to(res).parts}
    assert sorted(n for n in names if not allowed.match(n)) == []
    planted = ["Doe^Jane", "Doe_Jane", "BAD-ts", "BAD-4d", "BAD-charset", "passwd", KOREAN_NAME,
               "홍^길동"]
    assert find_planted(res, planted) == []


@pytest.mark.slow
def test_corpus_workflow_strict_mode_fails_after_writing_the_summary(corpus_run) -> None:
    from workflow_helpers import snakemake

    work, _, _, config, _ = corpus_run
    res = work / "results" / "bad"
    proc = snakemake(work, ["--cores", "2", *config, "strict=True"], check=False)
    assert proc.returncode != 0
    assert "strict mode" in proc.stdout + proc.stderr + (res / "logs" / "merge.log").read_text()
    summary = pd.read_csv(res / "qc" / "run_summary.tsv", sep="\t")
    assert summary["status"].str.startswith("failed:").any()
    assert not (res / "merge" / "dataset.csv").exists()
