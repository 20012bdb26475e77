"""radflow.records: the stage files' records keep the on-disk format byte for byte; Status owns
the ``kind:reason`` text and the closed vocabulary; read_table keeps every cell a string."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radflow import __version__
from radflow.convert import convert_source
from radflow.dicom.reasons import REASONS, is_known_status
from radflow.errors import InputFileError, RadflowError
from radflow.io.atomic import write_json, write_tsv
from radflow.io.nifti import write_nifti
from radflow.pair import pair_one
from radflow.records import (
    ConvertSidecar,
    ExtractStatus,
    PairPlan,
    PairStatus,
    Source,
    Status,
    StatusError,
    read_extract_status,
    read_pair_plan,
    read_pair_record,
    read_sidecar,
    read_source,
    read_table,
    write_extract_status,
    write_pair_plan,
    write_pair_record,
    write_sidecar,
    write_source,
)
from radflow.records.tables import (
    SERIES_COLUMNS,
    SeriesRow,
    read_series_table,
    series_frame,
    write_series_table,
)
from radflow.settings import GeometrySettings, PairSettings


def _same_bytes(tmp: Path, old: dict, read, write) -> None:
    """``old`` written as the stage wrote it before the records; read and written back through
    the record: the same bytes."""
    write_json(tmp / "old.json", old)
    write(tmp / "new.json", read(tmp / "old.json"))
    assert (tmp / "new.json").read_bytes() == (tmp / "old.json").read_bytes()


def _image(tmp: Path, name: str, mask: bool = False) -> Path:
    arr = np.zeros((4, 5, 6), np.uint8) if mask else np.arange(120, dtype=np.float32)
    arr = arr.reshape(4, 5, 6)
    if mask:
        arr[1:3, 1:4, 2:5] = 1
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((1.0, 1.0, 2.0))
    write_nifti(tmp / name, image)
    return tmp / name


@pytest.mark.parametrize("extra", [{}, {"frames": [[0, 2], None]},
                                   {"mask": {"image_key": "s1", "labels": [1, 3],
                                             "contours_outside_image": "fail"}}])
def test_source_round_trip_is_byte_identical(tmp_path, extra) -> None:
    old = {"series_key": "s0000000000000001", "case_id": "c000000000001", "kind": "dicom",
           "role": "image", "files": ["/data/a/1.dcm", "/data/a/2.dcm"], **extra}
    _same_bytes(tmp_path, old, read_source, write_source)
    source = read_source(tmp_path / "old.json")
    assert source.files == old["files"] and source.frames == extra.get("frames")


def test_source_writer_leaves_out_absent_frames_and_mask(tmp_path) -> None:
    write_source(tmp_path / "s.json", Source(series_key="s1", case_id="c1", kind="image-file",
                                             role="mask", files=["/m.nii.gz"]))
    assert '"frames"' not in (tmp_path / "s.json").read_text()
    assert read_source(tmp_path / "s.json").mask is None


def test_pair_plan_round_trip_keeps_nulls(tmp_path) -> None:
    old = {"pair_id": "p1", "case_id": "c1", "image_key": "s1", "mask_key": None, "label": None,
           "roi": "gtv", "sheet_row": 3, "image_status": "ok", "mask_status": None,
           "status": "failed:missing-file", "pairing_reason": "sheet", "candidates": None,
           "roi_source": "gtv"}
    _same_bytes(tmp_path, old, read_pair_plan, write_pair_plan)


def test_convert_sidecars_of_an_image_and_a_failure_are_byte_identical(tmp_path) -> None:
    source = {"series_key": "s0000000000000001", "case_id": "c000000000001",
              "kind": "image-file", "role": "image", "files": [str(_image(tmp_path, "a.nii.gz"))]}
    ok = convert_source(source, tmp_path / "s1.nii.gz", GeometrySettings())
    assert ok["status"] == "ok"
    _same_bytes(tmp_path, ok, read_sidecar, write_sidecar)
    gone = convert_source({**source, "files": [str(tmp_path / "gone.nii.gz")]},
                          tmp_path / "s2.nii.gz", GeometrySettings())
    assert gone["status"].startswith("failed:") and "error" in gone
    _same_bytes(tmp_path, gone, read_sidecar, write_sidecar)


def test_mask_object_sidecar_with_roi_entries_is_byte_identical(tmp_path) -> None:
    old = {"series_key": "s2", "case_id": "c1", "role": "mask", "kind": "rtstruct",
           "radflow_version": __version__, "image_key": "s1", "acquisition": {},
           "status": "ok", "grid": {"size": [6, 5, 4], "spacing": [1.0, 1.0, 2.0]},
           "rois": {"1": {"status": "ok", "nifti": "s2_1.nii.gz", "voxel_hash": "ab" * 32,
                          "n_voxels": 18, "qc": {"open-contours-skipped": 1}},
                    "2": {"status": "failed:roi-outside-image", "error": "ROI 2: outside"}}}
    _same_bytes(tmp_path, old, read_sidecar, write_sidecar)
    sidecar = read_sidecar(tmp_path / "old.json")
    assert sidecar.rois is not None and sidecar.rois["1"].n_voxels == 18
    assert Status.parse(sidecar.rois["2"].status).reason == "roi-outside-image"


def test_pair_records_ok_and_failed_are_byte_identical(tmp_path) -> None:
    image = tmp_path / "img.json"
    mask = tmp_path / "msk.json"
    for path, name, is_mask in ((image, "i.nii.gz", False), (mask, "m.nii.gz", True)):
        src = {"series_key": path.stem, "case_id": "c1", "kind": "image-file",
               "role": "mask" if is_mask else "image",
               "files": [str(_image(tmp_path, name, is_mask))]}
        write_json(path, convert_source(src, path.with_suffix(".nii.gz"), GeometrySettings()))
    plan = {"pair_id": "p1", "case_id": "c1", "image_key": "img", "mask_key": "msk",
            "roi": "gtv", "label": 1, "status": "ok"}
    ok = pair_one(plan, str(image), str(mask), PairSettings(), tmp_path / "r.nii.gz")
    failed = pair_one({**plan, "label": 7}, str(image), str(mask), PairSettings(),
                      tmp_path / "r.nii.gz")
    assert ok["status"] == "ok" and failed["status"] == "failed:label-absent"
    for record in (ok, failed):
        _same_bytes(tmp_path, record, read_pair_record, write_pair_record)
    assert read_pair_record(tmp_path / "old.json").error == failed["error"]


def test_extract_status_round_trip_is_byte_identical(tmp_path) -> None:
    old = {"unit": "u1", "n_pairs": 2, "seconds": 1.25, "pairs": [
        {"pair_id": "p1", "status": "ok", "reason": None, "message": None, "n_features": 107,
         "seconds": 1.0},
        {"pair_id": "p2", "status": "skipped:failed:label-absent", "reason": "label-absent",
         "message": "pair status is failed:label-absent", "n_features": 0, "seconds": 0.0}]}
    _same_bytes(tmp_path, old, read_extract_status, write_extract_status)
    status = read_extract_status(tmp_path / "old.json")
    assert status.pairs[1] == PairStatus("p2", "skipped:failed:label-absent", "label-absent",
                                         "pair status is failed:label-absent", 0, 0.0)
    write_extract_status(tmp_path / "e.json", ExtractStatus("u", 0, 0.5, []))
    assert read_extract_status(tmp_path / "e.json").pairs == []


def test_readers_refuse_unknown_keys_and_non_objects(tmp_path) -> None:
    write_json(tmp_path / "a.json", {"series_key": "s1", "status": "ok", "colour": "red"})
    with pytest.raises(InputFileError, match="colour") as info:
        read_sidecar(tmp_path / "a.json")
    assert info.value.reason == "bad-convert-sidecar"
    write_json(tmp_path / "b.json", [1, 2])
    with pytest.raises(InputFileError, match="not a JSON object"):
        read_source(tmp_path / "b.json")
    write_json(tmp_path / "c.json", {"pair_id": "p1"})
    with pytest.raises(InputFileError, match="status"):
        read_pair_plan(tmp_path / "c.json")
    write_json(tmp_path / "d.json", {"unit": "u", "pairs": {"p1": "ok"}})
    with pytest.raises(InputFileError, match="not a list"):
        read_extract_status(tmp_path / "d.json")
    assert PairPlan.from_json({"pair_id": "p1", "status": "ok"}).label is None
    assert ConvertSidecar.from_json({"series_key": "s", "status": "ok"}).to_json() == {
        "series_key": "s", "status": "ok"}


@pytest.mark.parametrize("text", [
    "ok", "failed:missing-slice", "excluded:colour-image", "excluded:non-image-rtstruct",
    "excluded:modality-ot", "failed:grid-mismatch", "failed:image-colour-image",
    "failed:mask-not-converted", "excluded:roi-excluded", "skipped:failed:label-absent",
    "skipped:excluded:roi-unmapped"])
def test_status_parse_and_format_round_trip(text) -> None:
    status = Status.parse(text)
    assert str(status) == text and f"{status}" == text and f"{status:>40}" == f"{text:>40}"
    assert status.is_ok == (text == "ok")
    assert Status.parse(str(status)) == status


def test_status_constructors_kind_and_reason() -> None:
    assert str(Status.ok()) == "ok" and Status.ok().reason == ""
    assert str(Status.failed("label-absent")) == "failed:label-absent"
    assert str(Status.excluded("localizer")) == "excluded:localizer"
    skipped = Status.skipped(Status.failed("label-absent"))
    assert (skipped.kind, skipped.reason, str(skipped)) == (
        "skipped", "label-absent", "skipped:failed:label-absent")
    assert str(Status.of_reason("colour-image")) == "excluded:colour-image"
    assert str(Status.of_reason("missing-slice")) == "failed:missing-slice"
    assert str(Status.of_reason("grid-mismatch")) == "failed:grid-mismatch"


@pytest.mark.parametrize("text", ["failed:colour-image", "excluded:missing-slice",
                                  "excluded:internal-error", "failed:localizer", "bogus",
                                  "failed:", "failed:Bad Reason", "failed:a:b", "ok:x",
                                  "maybe:x", "skipped:nonsense", ""])
def test_status_refuses_text_outside_the_vocabulary(text) -> None:
    with pytest.raises(StatusError) as info:
        Status.parse(text)
    assert isinstance(info.value, RadflowError) and isinstance(info.value, ValueError)


def test_status_names_non_image_series() -> None:
    assert Status.parse("excluded:non-image-rtstruct").is_non_image
    assert Status.parse("excluded:non-image-seg").is_non_image
    assert not Status.parse("excluded:localizer").is_non_image
    assert not Status.parse("ok").is_non_image
    assert not Status.parse("failed:image-colour-image").is_non_image


def test_no_module_composes_a_status_by_hand() -> None:
    """Only radflow.records.status writes the ``kind:reason`` text: a status literal
    (``"failed:..."``, ``f"excluded:{...}"``) anywhere else in the package is a regression."""
    pattern = re.compile(r"""f?["'](?:failed|excluded|skipped):[a-z{]""")
    src = Path(__file__).resolve().parents[1] / "src" / "radflow"
    offenders = [f"{path.relative_to(src)}:{number}: {line.strip()}"
                 for path in sorted(src.rglob("*.py"))
                 if path.relative_to(src).as_posix() != "records/status.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []


def test_status_agrees_with_the_vocabulary_table() -> None:
    for reason, (kind, _, _) in REASONS.items():
        status = Status.of_reason(reason)
        assert status.kind == kind and is_known_status(str(status))
        other = "failed" if kind == "excluded" else "excluded"
        with pytest.raises(StatusError):
            Status(other, reason)


def test_read_table_keeps_empty_strings_and_leading_zeros(tmp_path) -> None:
    import pandas as pd

    write_tsv(tmp_path / "t.tsv", pd.DataFrame({"case_id": ["c007", "c008"],
                                                "sheet_row": ["007", ""],
                                                "status": ["ok", "NA"]}))
    table = read_table(tmp_path / "t.tsv")
    assert list(table["sheet_row"]) == ["007", ""]
    assert list(table["status"]) == ["ok", "NA"]
    assert all(isinstance(v, str) for v in table.to_numpy().ravel())


def _series_row(**values) -> SeriesRow:
    row = dict.fromkeys(SERIES_COLUMNS, "")
    row.update(case_id="c1", series_key="s1", source="dicom", role="image", modality="CT",
               status="ok", n_instances=3, rows=4, cols=5, slices=3, spacing_x=0.5,
               spacing_y=0.5, spacing_z=2.0, series_number=None, qc="a,b")
    row.update(values)
    return SeriesRow.from_mapping(row)


def test_series_table_round_trip_keeps_types_and_empty_cells(tmp_path) -> None:
    rows = [_series_row(series_key="s2", case_id="c2"), _series_row(rows="", cols=None)]
    assert rows[1].rows is None and rows[1].cols is None and rows[0].series_number is None
    path = tmp_path / "series.tsv"
    write_series_table(path, series_frame(rows))
    table = read_series_table(path)
    assert list(table.columns) == list(SERIES_COLUMNS)
    assert list(table["series_key"]) == ["s1", "s2"]  # sorted by case_id, series_key
    assert table.loc[0, "rows"] == "" and table.loc[1, "rows"] == "4"
    assert table.loc[1, "n_instances"] == "3" and table.loc[1, "series_number"] == ""
    assert table.loc[1, "spacing_z"] == "2.0" and table.loc[1, "qc"] == "a,b"


def test_series_row_and_table_refuse_other_columns(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown columns \\['extra'\\]"):
        _series_row(extra="x")
    row = dict.fromkeys(SERIES_COLUMNS, "")
    del row["qc"]
    with pytest.raises(ValueError, match="missing columns \\['qc'\\]"):
        SeriesRow.from_mapping(row)
    (tmp_path / "other.tsv").write_text("case_id\tseries_key\tstatus\nc\ts\tok\n")
    with pytest.raises(InputFileError, match="missing columns study_key") as info:
        read_series_table(tmp_path / "other.tsv")
    assert info.value.reason == "bad-series-table"
