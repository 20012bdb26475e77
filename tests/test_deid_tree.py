"""De-identifying whole series into a folder tree: statuses, layout, references, real data.

On the real patient STS_002 (CT, MR, PET + RTSTRUCTs) and on highdicom's SEG with its CT: the
de-identified tree indexes, pairs and converts like the source.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from test_deid_dataset import PATIENTS, phi_hits, planted_terms, write_planted_series

from radflow.crawl import crawl
from radflow.deidentify.dates import date_shift_days, shift_dt
from radflow.deidentify.log import (
    actions_table,
    collect_pseudonyms,
    merge_counts,
    series_table,
    write_actions_log,
    write_pseudonym_table,
)
from radflow.deidentify.profile import DeidSettings
from radflow.deidentify.tree import SeriesResult, deid_units, deidentify_series, series_output_dir
from radflow.deidentify.uids import replace_uid
from radflow.dicom.index import find_candidate_files, index_files
from radflow.dicom.volume import read_series_volume
from radflow.keys import case_id
from radflow.settings import CrawlSettings, GeometrySettings, RoiSettings

KEY = b"0123456789abcdef0123456789abcdef"


def _all_bytes_and_paths(root: Path) -> tuple[bytes, list[Path]]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return b"".join(p.read_bytes() for p in files), files


DEFAULT = DeidSettings()


def _deid_tree(source_root: Path, out_root: Path, settings: DeidSettings = DEFAULT) \
        -> list[SeriesResult]:
    """De-identify every series below ``source_root`` as the workflow would (crawl lists)."""
    records = index_files(find_candidate_files(source_root), CrawlSettings())
    results = []
    for rec in records:
        if not rec.series_uid:
            continue
        cid = case_id(KEY, rec.patient_id)
        skey = "s" + rec.series_uid.replace(".", "")[-16:]  # any key will do here
        out = series_output_dir(out_root, KEY, cid, skey, rec.files, source_root)
        results.append(deidentify_series(rec.files, out, settings, KEY, cid, skey))
    return results


# ------------------------------------------------------------------------ planted PHI, layout

def test_planted_series_tree_has_no_phi_in_bytes_paths_or_logs(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    source = tmp_path / "archive"
    for p in PATIENTS:
        write_planted_series(source, p, n=2, series=1)
        write_planted_series(source, p, n=2, series=2)
    out = tmp_path / "deid"
    results = _deid_tree(source, out)
    assert len(results) == 2 * len(PATIENTS) and {r.status for r in results} == {"ok"}
    data, files = _all_bytes_and_paths(out)
    assert len(files) == 4 * len(PATIENTS)
    assert all(f.name in ("00000.dcm", "00001.dcm") for f in files)
    paths = "\n".join(str(f.relative_to(tmp_path)) for f in files).encode("utf-8")
    for p in PATIENTS:
        terms = planted_terms(p)
        assert phi_hits(data, terms) == [], p.patient_id
        assert phi_hits(paths, terms) == [], p.patient_id
    log_text = "\n".join(r.getMessage() for r in caplog.records).encode("utf-8")
    assert "de-identified" in log_text.decode()  # the log was captured
    for p in PATIENTS:
        assert phi_hits(log_text, planted_terms(p)) == [], p.patient_id
    table = actions_table(merge_counts(results))
    assert list(table.columns) == ["tag", "keyword", "action", "count"]
    log_bytes = table.to_csv(sep="\t").encode("utf-8")
    for p in PATIENTS:
        assert phi_hits(log_bytes, planted_terms(p)) == []
    row = table[(table.tag == "(0010,0010)")]
    assert row[["keyword", "action", "count"]].values.tolist() == [
        ["PatientName", "D", 4 * len(PATIENTS)]]


def test_mirror_layout_keeps_folder_relations_without_names(tmp_path):
    files_a = [tmp_path / "Müller" / "CT" / "image" / "1.dcm"]
    files_b = [tmp_path / "Müller" / "CT" / "mask" / "1.dcm"]
    files_c = [tmp_path / "Müller" / "MR" / "image" / "1.dcm"]
    a, b, c = (series_output_dir("out", KEY, "c1", k, f, tmp_path)
               for k, f in (("sa", files_a), ("sb", files_b), ("sc", files_c)))
    assert a.parts[:2] == ("out", "c1") and a.name == "sa" and len(a.parts) == 6
    assert a.parts[:4] == b.parts[:4] and a.parts[4] != b.parts[4]  # both below Müller/CT
    assert a.parts[:3] == c.parts[:3] and a.parts[3] != c.parts[3]  # MR: only Müller shared
    assert "Müller" not in str(a) and "CT" not in str(a).split("out")[1]
    assert series_output_dir("out", KEY, "c1", "sa", files_a) == Path("out", "c1", "sa")
    assert series_output_dir("out", KEY, "c1", "sa", files_a, tmp_path / "elsewhere") == \
        Path("out", "c1", "sa")


def test_rerun_is_byte_identical_and_replaces_the_folder(tmp_path):
    files, _ = write_planted_series(tmp_path / "src", PATIENTS[0], n=3)
    cid = case_id(KEY, PATIENTS[0].patient_id)
    out = tmp_path / "deid" / cid / "s1"
    first = deidentify_series(files, out, DeidSettings(), KEY, cid, "s1")
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "stale.dcm").write_bytes(b"old")
    second = deidentify_series(files, out, DeidSettings(), KEY, cid, "s1")
    assert first == second and first.n_files == 3
    assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot
    assert not [p for p in out.parent.iterdir() if p.name.startswith((".tmp-", ".old-"))]
    assert SeriesResult.from_record(first.record()) == first


def test_burned_in_series_are_excluded_unless_allowed(tmp_path):
    cid = case_id(KEY, PATIENTS[0].patient_id)
    flagged, _ = write_planted_series(tmp_path / "a", PATIENTS[0], n=2)
    for f in flagged:
        ds = pydicom.dcmread(f)
        ds.BurnedInAnnotation = "YES"
        ds.save_as(f)
    out = tmp_path / "out" / "flagged"
    result = deidentify_series(flagged, out, DeidSettings(), KEY, cid, "s1")
    assert result.status == "excluded:burned-in-annotation" and result.n_files == 0
    assert out.is_dir() and not any(out.iterdir())
    allowed = deidentify_series(flagged, out, DeidSettings(allow_burned_in=True), KEY, cid, "s1")
    assert allowed.status == "ok" and len(list(out.iterdir())) == 2
    capture, _ = write_planted_series(tmp_path / "b", PATIENTS[0], n=1)
    ds = pydicom.dcmread(capture[0])
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.save_as(capture[0])
    result = deidentify_series(capture, tmp_path / "out" / "sc", DeidSettings(), KEY, cid, "s2")
    assert result.status == "excluded:burned-in-sop-class"
    ds.BurnedInAnnotation = "NO"
    ds.save_as(capture[0])
    result = deidentify_series(capture, tmp_path / "out" / "sc", DeidSettings(), KEY, cid, "s2")
    assert result.status == "ok"


def test_failures_write_nothing(tmp_path):
    files, _ = write_planted_series(tmp_path / "src", PATIENTS[0], n=2)
    cid = case_id(KEY, PATIENTS[0].patient_id)
    out = tmp_path / "out"
    wrong = deidentify_series(files, out, DeidSettings(), KEY, case_id(KEY, "other"), "s1")
    assert wrong.status == "failed:patient-mismatch" and not any(out.iterdir())
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(files[0].read_bytes()[:400])
    result = deidentify_series([files[0], broken], out, DeidSettings(), KEY, cid, "s1")
    assert result.status.startswith("failed:") and not any(out.iterdir())
    assert deidentify_series([], out, DeidSettings(), KEY, cid, "s1").status == \
        "failed:no-files"


def test_logs_and_private_pseudonym_table(tmp_path):
    files, _ = write_planted_series(tmp_path / "src", PATIENTS[1], n=2)
    cid = case_id(KEY, PATIENTS[1].patient_id)
    result = deidentify_series(files, tmp_path / "out", DeidSettings(), KEY, cid, "s1")
    write_actions_log(tmp_path / "results" / "actions.tsv", merge_counts([result]))
    table = pd.read_csv(tmp_path / "results" / "actions.tsv", sep="\t")
    assert {"U", "X", "Z", "D", "K", "C", "K-unlisted"} <= set(table.action)
    assert (table["count"] > 0).all()
    summary = series_table([result])
    assert summary.values.tolist() == [[cid, "s1", "ok", 2]]
    private = tmp_path / "private" / "pseudonyms.tsv"
    write_pseudonym_table(private, collect_pseudonyms([files], KEY))
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    rows = pd.read_csv(private, sep="\t", dtype=str).values.tolist()
    assert rows == [[PATIENTS[1].patient_id, cid]]


# ------------------------------------------------------------------------- real reference data

@pytest.mark.testdata
def test_highdicom_seg_references_resolve_after_deidentification(testdata, tmp_path):
    source = tmp_path / "src"
    (source / "ct").mkdir(parents=True)
    (source / "seg").mkdir()
    hd = testdata / "highdicom_seg"
    for f in (hd / "source_ct_series_pydicom_CT2").iterdir():
        (source / "ct" / f.name).write_bytes(f.read_bytes())
    for name in ("seg_image_ct_binary.dcm", "seg_image_ct_binary_overlap.dcm"):
        (source / "seg" / name).write_bytes((hd / "seg" / name).read_bytes())
    out = tmp_path / "deid"
    results = _deid_tree(source, out)
    assert {r.status for r in results} == {"ok"} and len(results) == 3
    files = [p for p in out.rglob("*.dcm")]
    datasets = [pydicom.dcmread(p) for p in files]
    cts = [d for d in datasets if d.Modality == "CT"]
    segs = [d for d in datasets if d.Modality == "SEG"]
    ct_uids = {d.SOPInstanceUID for d in cts}
    assert len(cts) == 4 and len(segs) == 2
    for seg in segs:
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == cts[0].SeriesInstanceUID
        refs = {i.ReferencedSOPInstanceUID
                for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
        for frame in seg.PerFrameFunctionalGroupsSequence:
            for derivation in frame.DerivationImageSequence:
                refs |= {s.ReferencedSOPInstanceUID for s in derivation.SourceImageSequence}
        assert refs and refs <= ct_uids
        assert seg.FrameOfReferenceUID == cts[0].FrameOfReferenceUID
        assert np.array_equal(seg.pixel_array, pydicom.dcmread(
            source / "seg" / seg_source_name(seg, source)).pixel_array)
    # radflow pairs the SEGs with the CT on the de-identified tree exactly as on the source
    before = crawl(source, None, KEY, CrawlSettings(), RoiSettings()).pairs
    after = crawl(out, None, KEY, CrawlSettings(), RoiSettings()).pairs
    cols = ["roi", "label", "status", "pairing_reason"]
    assert after[cols].sort_values(cols).values.tolist() == \
        before[cols].sort_values(cols).values.tolist()
    assert set(after.pairing_reason) == {"referenced-series"}


def seg_source_name(seg: pydicom.Dataset, source: Path) -> str:
    """The source SEG file whose SOPInstanceUID maps to ``seg``'s."""
    for f in (source / "seg").iterdir():
        if replace_uid(KEY, pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) == \
                seg.SOPInstanceUID:
            return f.name
    raise LookupError("no source SEG")


@pytest.fixture(scope="module")
def sts002(testdata, tmp_path_factory):
    source = testdata / "sts_002_ct_mr_pet_rtstruct"
    out = tmp_path_factory.mktemp("sts002") / "deid"
    return source, out, _deid_tree(source, out)


@pytest.mark.testdata
def test_sts002_deidentifies_and_indexes_like_the_source(sts002):
    source, out, results = sts002
    assert len(results) == 6 and {r.status for r in results} == {"ok"}
    src = {(r.modality, r.status, r.n_slices, r.n_instances)
           for r in index_files(find_candidate_files(source), CrawlSettings()) if r.series_uid}
    new = {(r.modality, r.status, r.n_slices, r.n_instances)
           for r in index_files(find_candidate_files(out), CrawlSettings())}
    assert new == src
    patient_ids = {pydicom.dcmread(p, stop_before_pixels=True).PatientID
                   for p in out.rglob("*.dcm")}
    assert len(patient_ids) == 1 and patient_ids == {out.iterdir().__next__().name}
    # the source was de-identified before (its codes include Retain Device Identity): the codes
    # now say what this pass did
    first = pydicom.dcmread(next(out.rglob("*.dcm")), stop_before_pixels=True)
    assert {i.CodeValue for i in first.DeidentificationMethodCodeSequence} == {
        "113100", "113105", "113107", "113108"}


@pytest.mark.testdata
@pytest.mark.parametrize("modality", ["CT", "MR", "PT"])
def test_sts002_volumes_are_unchanged(sts002, modality):
    source, out, _ = sts002
    src_rec = next(r for r in index_files(find_candidate_files(source), CrawlSettings())
               if r.modality == modality)
    new_rec = next(r for r in index_files(find_candidate_files(out), CrawlSettings())
               if r.modality == modality)
    a, _ = read_series_volume(src_rec.files, GeometrySettings())
    b, _ = read_series_volume(new_rec.files, GeometrySettings())
    assert np.array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))
    assert a.GetOrigin() == b.GetOrigin() and a.GetSpacing() == b.GetSpacing()
    assert a.GetDirection() == b.GetDirection()


@pytest.mark.testdata
def test_sts002_rtstructs_keep_rois_and_pair_like_the_source(sts002):
    source, out, _ = sts002
    structs = [pydicom.dcmread(p) for p in out.rglob("*.dcm")
               if pydicom.dcmread(p, stop_before_pixels=True).Modality == "RTSTRUCT"]
    images = {pydicom.dcmread(p, stop_before_pixels=True).FrameOfReferenceUID
              for p in out.rglob("*.dcm")}
    assert len(structs) == 3
    for rs in structs:
        assert rs.StructureSetROISequence[0].ReferencedFrameOfReferenceUID in images
        assert rs.StructureSetROISequence[0].ROIName.startswith("GTV_Mass_")
    before = crawl(source, None, KEY, CrawlSettings(), RoiSettings())
    after = crawl(out, None, KEY, CrawlSettings(), RoiSettings())

    def summary(result):
        modality = dict(zip(result.series.series_key, result.series.modality, strict=True))
        return sorted((r.roi, modality[r.image_key], r.status, r.pairing_reason)
                      for r in result.pairs.itertuples())

    assert summary(after) == summary(before)
    assert len(summary(after)) == 3


def test_synthetic_masks_and_enhanced_mr_keep_references_and_voxels(tmp_path):
    from mask_fixtures import PATIENT, STUDY, index_points, square, write_ct

    from radflow.demo.synthetic_masks import ContourSpec, RoiSpec, write_rtstruct, write_seg
    from radflow.demo.synthetic_multiframe import write_enhanced
    from radflow.dicom.rtstruct import read_structure_set
    from radflow.dicom.seg import seg_masks

    source = tmp_path / "src"
    series = write_ct(source / "a" / "ct", "deid")
    contour = ContourSpec(index_points(series.grid, square(1, 1, 4, 5), 2.0),
                          image_uid=series.sop_uids[2])
    write_rtstruct(source / "b" / "rs" / "rs.dcm", patient=PATIENT, study=STUDY,
                   series_uid="1.2.826.0.1.3680043.8.498.771", image_series_uid=series.uid,
                   image_uids=series.sop_uids, rois=[RoiSpec(3, "GTV primary", (contour,))])
    mask = np.zeros((5, 12, 10), bool)
    mask[1:3, 2:6, 3:7] = True
    write_seg(source / "c" / "seg" / "seg.dcm", series.headers(), [(1, "tumour", mask)],
              series_uid="1.2.826.0.1.3680043.8.498.772")
    stored = (np.arange(4 * 6 * 6) % 30).reshape(4, 6, 6).astype(np.int16)
    write_enhanced(source / "d" / "mr.dcm", stored, patient=PATIENT, study=STUDY,
                   series_uid="1.2.826.0.1.3680043.8.498.773",
                   positions=[(0.0, 0.0, 2.0 * k) for k in range(4)],
                   per_frame=lambda k, g: setattr(g.FrameContentSequence[0],
                                                  "FrameAcquisitionDateTime",
                                                  f"20240102101{k}00"))
    out = tmp_path / "deid"
    results = _deid_tree(source, out)
    assert len(results) == 4 and {r.status for r in results} == {"ok"}
    before = crawl(source, None, KEY, CrawlSettings(), RoiSettings()).pairs
    after = crawl(out, None, KEY, CrawlSettings(), RoiSettings()).pairs
    cols = ["roi", "label", "status", "pairing_reason"]
    assert sorted(map(tuple, after[cols].values.tolist())) == \
        sorted(map(tuple, before[cols].values.tolist()))
    assert set(after.pairing_reason) == {"referenced-series"} and len(after) == 2
    new_ct = next(r for r in index_files(find_candidate_files(out), CrawlSettings())
                  if r.modality == "CT")
    grid_ct, _ = read_series_volume(new_ct.files, GeometrySettings())
    old_ct, _ = read_series_volume(series.files, GeometrySettings())
    assert np.array_equal(sitk.GetArrayViewFromImage(grid_ct),
                          sitk.GetArrayViewFromImage(old_ct))
    seg_file = next(p for p in out.rglob("*.dcm") if pydicom.dcmread(p).Modality == "SEG")
    np.testing.assert_array_equal(seg_masks(seg_file, series.grid, [1])[1].mask, mask)
    rs_file = next(p for p in out.rglob("*.dcm")
                   if pydicom.dcmread(p).Modality == "RTSTRUCT")
    rs = pydicom.dcmread(rs_file)
    assert read_structure_set(rs, "s-test") is not None
    item = rs.ROIContourSequence[0].ContourSequence[0]
    assert item.ContourImageSequence[0].ReferencedSOPInstanceUID == \
        replace_uid(KEY, series.sop_uids[2])
    source_item = pydicom.dcmread(source / "b" / "rs" / "rs.dcm") \
        .ROIContourSequence[0].ContourSequence[0]
    assert item.ContourData == source_item.ContourData
    mr_file = next(p for p in out.rglob("*.dcm") if pydicom.dcmread(p).Modality == "MR")
    mr = pydicom.dcmread(mr_file)
    days = date_shift_days(KEY, case_id(KEY, PATIENT.patient_id))
    frame_dt = mr.PerFrameFunctionalGroupsSequence[1].FrameContentSequence[0]
    assert frame_dt.FrameAcquisitionDateTime == shift_dt("20240102101100", days)
    np.testing.assert_array_equal(mr.pixel_array, stored)


def test_deid_units_skip_non_dicom_unknown_patients_and_shared_files():
    sources = [
        {"kind": "dicom", "case_id": "c1", "series_key": "s1", "files": ["a", "b"]},
        {"kind": "dicom", "case_id": "c1", "series_key": "s2", "files": ["a", "b"]},  # split
        {"kind": "dicom", "case_id": "c1", "series_key": "s3", "files": ["c"]},
        {"kind": "rtstruct", "case_id": "c1", "series_key": "s4", "files": ["d"]},
        {"kind": "image-file", "case_id": "c1", "series_key": "s5", "files": ["e.nii.gz"]},
        {"kind": "dicom", "case_id": "", "series_key": "s6", "files": ["broken"]},
    ]
    assert [u["series_key"] for u in deid_units(sources)] == ["s1", "s3", "s4"]
