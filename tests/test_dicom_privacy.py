"""Messages never name a file or folder: a real archive's names can hold a patient's name.

Failing inputs are written into folders and files whose names carry a planted patient name
(``Doe_Jane/DOE^JANE_IM0002.dcm``); the crawl, the convert stage and the file readers run on
them, and the planted text must appear in no record message, exception, sidecar or log record
(captured at DEBUG level from every logger).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless

from radflow.convert import convert_source
from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.demo.synthetic_classic import write_classic_multiframe
from radflow.dicom.headers import read_header
from radflow.dicom.index import find_candidate_files, index_files
from radflow.dicom.volume import read_series
from radflow.errors import RadflowError
from radflow.settings import CrawlSettings, GeometrySettings

PATIENT = Patient("PID-PLANTED-7", "Doe^Jane")
STUDY = Study(derived_uid("pstudy"), derived_uid("pfor"))
#: Lower-case fragments of the planted name (file names, folder names, PatientName).
PLANTED = ("doe^jane", "doe_jane", "jane", "pid-planted")


def _names(n: int) -> list[str]:
    return [f"DOE^JANE_IM{k:04d}.dcm" for k in range(n)]


def _series(folder: Path, name: str, n: int = 5, **kwargs) -> list[Path]:
    stored = (np.arange(n * 4 * 6) % 97).astype(np.int16).reshape(n, 4, 6)
    return write_series(folder, stored, patient=PATIENT, study=STUDY,
                        series_uid=derived_uid(name), file_names=_names(n), **kwargs)


def _corrupt_rle(k: int, ds: pydicom.Dataset) -> None:
    ds.compress(RLELossless)
    if k == 2:  # a codestream that cannot be decoded
        ds.PixelData = encapsulate([b"\x01\x00\x00\x00" + b"\x40" + b"\xff" * 59])


def _columns(k: int, ds: pydicom.Dataset) -> None:
    if k == 1:
        ds.Columns = 3
        ds.PixelData = bytes(4 * 3 * 2)


def _build(root: Path) -> None:
    """One folder per failure kind, all below a folder named after the patient."""
    base = root / "Doe_Jane"
    files = _series(base / "Doe_Jane_truncated", "truncated")
    files[-1].write_bytes(files[-1].read_bytes()[:-10])             # cut inside the pixel data
    (base / "Doe_Jane_single").mkdir(parents=True)
    (base / "Doe_Jane_single" / "DOE^JANE_IM0002.dcm").write_bytes(b"")        # zero-byte
    (base / "Doe_Jane_single" / "DOE^JANE_IM0003.dcm").write_bytes(b"\x07" * 600)  # not DICOM
    cut = _series(base / "Doe_Jane_cut", "cut", n=1)[0]
    cut.write_bytes(cut.read_bytes()[:200])                         # truncated in the header
    _series(base / "Doe_Jane_nopixels", "nopixels",
            per_slice=lambda k, ds: delattr(ds, "PixelData") if k == 3 else None)
    dup = _series(base / "Doe_Jane_dup", "dup")
    ds = pydicom.dcmread(dup[0])
    ds.PixelData = bytes(len(ds.PixelData))        # same SOPInstanceUID, other pixels
    (base / "Doe_Jane_dup_copy").mkdir()
    ds.save_as(base / "Doe_Jane_dup_copy" / dup[0].name)
    _series(base / "Doe_Jane_columns", "columns", per_slice=_columns)
    _series(base / "Doe_Jane_decode", "decode", per_slice=_corrupt_rle)
    _series(base / "Doe_Jane_gap", "gap", slice_positions=[0.0, 1.0, 2.0, 4.0, 5.0])
    _series(base / "Doe_Jane_rescale", "rescale", slope=[1.0, 1e305, 1.0, 1.0, 1.0],
            intercept=0.0)
    write_classic_multiframe(base / "Doe_Jane_mf" / "DOE^JANE_MF.dcm",
                             np.zeros((4, 4, 6), np.int16), patient=PATIENT, study=STUDY,
                             series_uid=derived_uid("mf"))
    ok = _series(base / "Doe_Jane_ok", "ok")
    shutil.copy(ok[0], base / "Doe_Jane_ok_copy.dcm")              # an identical duplicate


def _assert_clean(texts: list[str]) -> None:
    leaks = [t for t in texts if any(p in t.lower() for p in PLANTED)]
    assert leaks == []


def test_no_message_names_a_file_or_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    root = tmp_path / "archive"
    _build(root)
    texts: list[str] = []
    records = index_files(find_candidate_files(root), CrawlSettings())
    statuses = {r.status for r in records}
    assert {"failed:truncated", "failed:empty-file", "failed:not-dicom",
            "failed:missing-pixel-data", "failed:conflicting-duplicates",
            "failed:inconsistent-dimensions", "failed:missing-slice",
            "failed:unsupported-multiframe", "ok"} <= statuses, statuses
    texts += [r.message for r in records]
    assert all(r.message for r in records if r.status != "ok")
    # every series through the convert stage's reader, whatever the crawl said
    convert_statuses = set()
    for k, record in enumerate(r for r in records if r.series_uid):
        try:
            read_series(record.files, GeometrySettings())
        except RadflowError as exc:
            texts.append(str(exc))
        sidecar = convert_source(
            {"series_key": f"s{k:016x}", "case_id": "c000000000001", "kind": "dicom",
             "role": "image", "files": [str(f) for f in record.files]},
            tmp_path / "out" / f"s{k:016x}.nii.gz", GeometrySettings())
        convert_statuses.add(sidecar["status"])
        texts.append(json.dumps(sidecar))
    assert {"failed:invalid-pixel-data", "failed:non-finite-values", "failed:truncated",
            "ok"} <= convert_statuses, convert_statuses
    # the file readers on their own
    for path in find_candidate_files(root):
        try:
            read_header(path)
        except RadflowError as exc:
            texts.append(str(exc))
    texts += [r.getMessage() for r in caplog.records]
    texts.append(caplog.text)
    _assert_clean(texts)
    # and the messages still say which file: by its position in the series
    by_status = {r.status: r.message for r in records if r.series_uid}
    assert by_status["failed:missing-pixel-data"].startswith("file 4 of 5: ")
    assert "file 1 of 6" in by_status["failed:conflicting-duplicates"]
    assert "file 5 of 5" in by_status["failed:truncated"]
