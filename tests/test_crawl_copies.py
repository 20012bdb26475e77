"""Re-exported copies (radflow.crawl.copies): the same series exported twice under new Study,
Series and SOP Instance UIDs is one series of the analysis, not two."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from mask_fixtures import convert_and_pair
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, RLELossless

import radflow.crawl.copies
from radflow.crawl import crawl, write_crawl
from radflow.crawl.copies import CopyCheckCost, copy_groups
from radflow.demo.synthetic import Patient, Study, derived_uid, write_series
from radflow.demo.synthetic_masks import write_seg
from radflow.dicom.index import find_candidate_files, index_files
from radflow.dicom.reasons import is_known_status
from radflow.errors import ConfigError, DicomError
from radflow.io.nifti import write_nifti
from radflow.keys import case_id, series_key
from radflow.plan.jobs import read_plan
from radflow.settings import CrawlSettings, from_mapping

KEY = b"0123456789abcdef0123456789abcdef"
PATIENT = Patient("PID-COPY-1", "Copy^Planted", accession="ACC-COPY-77")
OTHER = Patient("PID-COPY-2", "Other^Planted", accession="ACC-COPY-78")
SHAPE = (5, 8, 7)  # slices, rows, columns
STORED = (np.arange(np.prod(SHAPE)).reshape(SHAPE) * 37 % 900 - 200).astype(np.int16)
GEOMETRY = {"spacing": (0.8, 0.7, 2.5), "origin": (-10.0, 4.0, 30.0)}


def _study(patient: Patient, name: str) -> Study:
    return Study(derived_uid(patient.patient_id, name, "study"),
                 derived_uid(patient.patient_id, name, "for"))


def _write(folder: Path, patient: Patient, name: str, stored: np.ndarray = STORED, *,
           study: Study | None = None, transfer_syntax: UID = ExplicitVRLittleEndian,
           compress: bool = False, reverse_names: bool = False, number: int = 2) -> str:
    """One CT series; returns its SeriesInstanceUID. ``compress``: RLE Lossless."""
    uid = str(derived_uid(patient.patient_id, name, "series"))

    def encode(k: int, ds: Dataset) -> None:
        if compress:
            ds.compress(RLELossless, generate_instance_uid=False)

    names = [f"{name}_{(SHAPE[0] - k if reverse_names else k):03d}.dcm" for k in range(SHAPE[0])]
    write_series(folder, stored, patient=patient, study=study or _study(patient, name),
                 series_uid=uid, series_number=number, series_description=f"AXIAL {name}",
                 file_names=names, transfer_syntax=transfer_syntax, per_slice=encode,
                 **GEOMETRY)
    return uid


def _cohort(root: Path, copy_encoding: str = "same") -> dict[str, str]:
    """Patient 1: a series, its re-export (new Study / Series / SOP UIDs, other folder, file
    names, series number and, by ``copy_encoding``, transfer syntax) and a series that differs
    in one voxel; patient 2: the same pixels and geometry as patient 1's series."""
    one_voxel = STORED.copy()
    one_voxel[3, 4, 5] += 1
    return {
        "original": _write(root / "direct" / "ct", PATIENT, "original"),
        "copy": _write(root / "pacs" / "export" / "x", PATIENT, "reexport", number=902,
                       reverse_names=True, compress=copy_encoding == "rle",
                       transfer_syntax=(ExplicitVRBigEndian if copy_encoding == "big-endian"
                                        else ExplicitVRLittleEndian)),
        "one-voxel": _write(root / "direct" / "ct2", PATIENT, "one-voxel", one_voxel,
                            study=_study(PATIENT, "original"), number=3),
        "other-patient": _write(root / "other" / "ct", OTHER, "original"),
    }


def _rows(series: pd.DataFrame, uids: dict[str, str]) -> dict[str, dict]:
    by_key = series.set_index("series_key")
    return {name: by_key.loc[series_key(KEY, uid)].to_dict() for name, uid in uids.items()}


@pytest.mark.parametrize("encoding", ["same", "big-endian", "rle"])
def test_keep_first_excludes_the_copy_whose_key_sorts_last(tmp_path, caplog, encoding) -> None:
    uids = _cohort(tmp_path, encoding)
    with caplog.at_level(logging.INFO):
        result = crawl(tmp_path, None, KEY, CrawlSettings())
    rows = _rows(result.series, uids)
    first, second = sorted([series_key(KEY, uids["original"]), series_key(KEY, uids["copy"])])
    by_key = {series_key(KEY, uids[n]): rows[n] for n in ("original", "copy")}
    assert by_key[first]["status"] == "ok"
    assert by_key[second]["status"] == f"excluded:duplicate-of-{first}"
    assert by_key[first]["qc"] == f"duplicate-copy-of-{second}"
    assert by_key[second]["qc"] == f"duplicate-copy-of-{first}"
    # a series differing in one voxel, and the same pixels under another patient: no copies
    for name in ("one-voxel", "other-patient"):
        assert (rows[name]["status"], rows[name]["qc"]) == ("ok", ""), name
    assert rows["other-patient"]["case_id"] == case_id(KEY, OTHER.patient_id)
    assert all(is_known_status(s) for s in result.series["status"])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                and r.name == "radflow.crawl.copies"]
    assert len(warnings) == 1 and first in warnings[0] and second in warnings[0]
    log = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (*uids.values(), PATIENT.patient_id, PATIENT.name, "direct", "pacs"):
        assert secret not in log


@pytest.mark.parametrize("encoding, copies", [("same", True), ("rle", False)])
def test_without_a_decoder_the_encoded_bytes_are_compared(tmp_path, monkeypatch, encoding,
                                                          copies) -> None:
    def no_decoder(ds: Dataset, path: Path) -> np.ndarray:
        raise DicomError("no decoder installed", reason="missing-decoder")

    monkeypatch.setattr(radflow.crawl.copies, "decode_pixels", no_decoder)
    uids = _cohort(tmp_path, encoding)
    rows = _rows(crawl(tmp_path, None, KEY, CrawlSettings()).series, uids)
    flagged = {name for name, row in rows.items() if row["qc"]}
    assert flagged == ({"original", "copy"} if copies else set())


def test_keep_both_flags_both_and_excludes_none(tmp_path) -> None:
    uids = _cohort(tmp_path)
    settings = from_mapping(CrawlSettings, {"duplicate_copies": "keep-both"}, section="crawl")
    rows = _rows(crawl(tmp_path, None, KEY, settings).series, uids)
    original, copy = series_key(KEY, uids["original"]), series_key(KEY, uids["copy"])
    assert {n: r["status"] for n, r in rows.items()} == dict.fromkeys(uids, "ok")
    assert rows["original"]["qc"] == f"duplicate-copy-of-{copy}"
    assert rows["copy"]["qc"] == f"duplicate-copy-of-{original}"


def test_three_copies_keep_the_first_and_name_it(tmp_path) -> None:
    uids = [_write(tmp_path / name, PATIENT, name) for name in ("a", "b", "c")]
    keys = sorted(series_key(KEY, uid) for uid in uids)
    series = crawl(tmp_path, None, KEY, CrawlSettings()).series.set_index("series_key")
    assert list(series.loc[keys, "status"]) == ["ok"] + [f"excluded:duplicate-of-{keys[0]}"] * 2
    assert series.loc[keys[1], "qc"] == f"duplicate-copy-of-{keys[0]},duplicate-copy-of-{keys[2]}"


def test_only_the_probe_slice_is_read_for_series_that_differ(tmp_path) -> None:
    """Two reconstructions on one grid (other pixels from the first slice on) cost one probe
    each; true copies are read in full."""
    _write(tmp_path / "soft", PATIENT, "soft")
    _write(tmp_path / "lung", PATIENT, "lung", (STORED * 2).astype(np.int16),
           study=_study(PATIENT, "soft"), number=3)
    records = index_files(find_candidate_files(tmp_path), CrawlSettings())
    cost = CopyCheckCost()
    assert copy_groups(records, cost) == []
    assert (cost.candidates, cost.pixels_read) == (2, 2)
    _write(tmp_path / "copy", PATIENT, "copy", reverse_names=True)
    records = index_files(find_candidate_files(tmp_path), CrawlSettings())
    cost = CopyCheckCost()
    assert len(copy_groups(records, cost)) == 1
    assert cost.pixels_read <= 2 + 2 + 2 * SHAPE[0]


def test_policy_is_checked_once() -> None:
    with pytest.raises(ConfigError, match=r"crawl\.duplicate_copies must be one of keep-first"):
        from_mapping(CrawlSettings, {"duplicate_copies": "keep-last"}, section="crawl")
    assert CrawlSettings().duplicate_copies == "keep-first"


def test_the_excluded_copy_is_not_converted_or_paired(tmp_path) -> None:
    uids = _cohort(tmp_path / "dicom")
    mask = np.zeros(SHAPE, np.uint8)
    mask[1:4, 2:6, 2:5] = 1
    image = sitk.GetImageFromArray(mask)
    image.SetSpacing(GEOMETRY["spacing"])
    image.SetOrigin(GEOMETRY["origin"])
    write_nifti(tmp_path / "mask.nii.gz", image)
    sheet = tmp_path / "sheet.tsv"
    pd.DataFrame([{"subject": PATIENT.patient_id, "image": f"series:{uids[name]}",
                   "mask": "mask.nii.gz", "label": 1, "roi": name}
                  for name in ("original", "copy")]).to_csv(sheet, sep="\t", index=False)
    result = crawl(tmp_path / "dicom", sheet, KEY, CrawlSettings())
    kept, dropped = sorted([series_key(KEY, uids["original"]), series_key(KEY, uids["copy"])])
    out = tmp_path / "results"
    write_crawl(result, out / "series.tsv", out / "pair_plan.tsv", out / "pairs", out / "sources")
    for scope in ("paired", "all"):
        plan = read_plan(str(out / "series.tsv"), str(out / "pair_plan.tsv"), scope)
        assert kept in plan.converted and dropped not in plan.converted, scope
    planned = result.pairs.set_index("image_key")
    assert planned.loc[kept, "status"] == "ok"
    assert planned.loc[dropped, "status"] == f"failed:image-duplicate-of-{kept}"
    assert planned.loc[dropped, "image_status"] == f"excluded:duplicate-of-{kept}"
    (out / "convert").mkdir()
    pairs = {rec["image_key"]: rec for rec in convert_and_pair(result, out / "convert").values()}
    assert pairs[kept]["status"] == "ok" and pairs[kept]["n_voxels"] == int(mask.sum())
    assert pairs[dropped]["status"] == f"failed:image-duplicate-of-{kept}"
    assert not (out / "convert" / f"{dropped}.nii.gz").exists()


def test_keep_first_keeps_the_copy_a_segmentation_was_drawn_on(tmp_path) -> None:
    """Nothing lost: when the SEG references the copy whose key sorts last, that copy is kept
    (and the SEG pairs) and the other is excluded."""
    uids = _cohort(tmp_path / "dicom")
    first, last = sorted(["original", "copy"], key=lambda n: series_key(KEY, uids[n]))
    sources = sorted((pydicom.dcmread(p) for p in find_candidate_files(tmp_path / "dicom")
                      if pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID
                      == uids[last]),
                     key=lambda ds: float(ds.ImagePositionPatient[2]))
    drawn = np.zeros(SHAPE, bool)
    drawn[1:4, 2:6, 2:5] = True
    write_seg(tmp_path / "dicom" / "seg" / "seg.dcm", sources, [(1, "lesion", drawn)],
              series_uid=str(derived_uid("copy-seg")))
    result = crawl(tmp_path / "dicom", None, KEY, CrawlSettings())
    rows = _rows(result.series, uids)
    kept, dropped = series_key(KEY, uids[last]), series_key(KEY, uids[first])
    assert rows[last]["status"] == "ok"
    assert rows[first]["status"] == f"excluded:duplicate-of-{kept}"
    assert rows[first]["qc"] == f"duplicate-copy-of-{kept}"
    pairs = result.pairs.set_index("image_key")
    assert pairs.loc[kept, "status"] == "ok" and dropped not in pairs.index
