"""Merge stage: long/wide tables, keyed clinical join, join report, bounds, strict mode."""

from __future__ import annotations

import pandas as pd
import pytest

from radflow.errors import MergeError, StrictModeError
from radflow.io.atomic import write_json, write_parquet, write_tsv
from radflow.keys import case_id
from radflow.merge import (
    KEY_COLUMNS,
    PROVENANCE_COLUMNS,
    ClinicalInput,
    MergeOutputs,
    QcOutputs,
    join_clinical,
    run_merge,
    run_qc,
    wide_features,
)
from radflow.settings import MergeSettings

KEY = b"k" * 32


def _features(pid: str, cid: str, scale: float = 1.0) -> pd.DataFrame:
    rows = []
    for i, (itype, cls, feat) in enumerate([("original", "shape", "VoxelVolume"),
                                            ("original", "firstorder", "Mean"),
                                            ("wavelet-LLH", "glcm", "Contrast")]):
        row = dict.fromkeys(PROVENANCE_COLUMNS, "x")
        row.update(case_id=cid, image_key="s1", mask_key="s2", pair_id=pid, roi="lesion",
                   label=1, image_type=itype, feature_class=cls, feature=feat,
                   value=float(i) * scale)
        rows.append(row)
    return pd.DataFrame(rows)


def test_wide_has_one_row_per_pair_in_extraction_order() -> None:
    long = pd.concat([_features("p2", "c2"), _features("p1", "c1", 2.0)])
    wide = wide_features(long)
    assert list(wide["pair_id"]) == ["p1", "p2"]
    assert list(wide.columns[len(KEY_COLUMNS) + len(PROVENANCE_COLUMNS):]) == [
        "original_shape_VoxelVolume", "original_firstorder_Mean", "wavelet-LLH_glcm_Contrast"]
    assert wide.loc[0, "wavelet-LLH_glcm_Contrast"] == 4.0


def test_join_maps_ids_with_the_key_and_drops_them() -> None:
    wide = wide_features(pd.concat([_features("p1", case_id(KEY, "PID-1")),
                                    _features("p2", case_id(KEY, "PID-2"))]))
    clinical = pd.DataFrame({"patient_id": ["PID-1", "PID-2", "PID-3"], "age": [50, 60, 70]})
    dataset, report, problems = join_clinical(wide, clinical, "patient_id", KEY, 0.5)
    assert "patient_id" not in dataset.columns
    assert dict(zip(dataset["pair_id"], dataset["age"], strict=True)) == {"p1": 50, "p2": 60}
    assert not dataset.astype(str).apply(lambda c: c.str.contains("PID-")).any().any()
    assert list(report["kind"]) == ["unmatched-clinical"]
    assert report.loc[0, "case_id"] == case_id(KEY, "PID-3")
    assert problems == []


def test_join_rejects_duplicates() -> None:
    wide = wide_features(_features("p1", case_id(KEY, "PID-1")))
    clinical = pd.DataFrame({"patient_id": ["PID-1", "PID-1", "PID-9"], "age": [1, 2, 3]})
    _, report, problems = join_clinical(wide, clinical, "patient_id", KEY, 0.2)
    assert "duplicate-clinical" in set(report["kind"])
    assert problems == ["1 duplicate clinical ID(s)"]


@pytest.mark.parametrize(("n_imaged", "n_matched", "n_clinical_only", "bound", "rejected"), [
    (5, 4, 0, 0.2, False),    # 1 of 5 imaged cases without clinical data: 20 %, at the bound
    (5, 3, 0, 0.2, True),     # 2 of 5: 40 %
    (5, 5, 95, 0.2, False),   # a registry 20x larger than the imaging cohort is fine
    (4, 0, 10, 0.9, True),    # no imaged case has clinical data
    (4, 3, 0, 0.0, True),     # bound 0: every imaged case needs a clinical row
])
def test_the_bound_is_on_imaged_cases_without_clinical_data(
        n_imaged: int, n_matched: int, n_clinical_only: int, bound: float,
        rejected: bool) -> None:
    wide = wide_features(pd.concat([_features(f"p{i}", case_id(KEY, f"PID-{i}"))
                                    for i in range(n_imaged)]))
    ids = [f"PID-{i}" for i in range(n_matched)] + [f"REG-{i}" for i in range(n_clinical_only)]
    clinical = pd.DataFrame({"patient_id": ids, "age": range(len(ids))})
    _, report, problems = join_clinical(wide, clinical, "patient_id", KEY, bound)
    expected = (f"{n_imaged - n_matched} of {n_imaged} imaged cases have no clinical row")
    assert [p for p in problems if p.startswith(expected)] == ([problems[0]] if rejected else [])
    assert len(problems) == int(rejected)
    counts = report["kind"].value_counts()
    assert counts.get("unmatched-imaging", 0) == n_imaged - n_matched
    assert counts.get("unmatched-clinical", 0) == n_clinical_only   # reported, not bounded


def _merge_inputs(tmp_path, statuses=("ok",)):
    feats, stats = [], []
    for i, status in enumerate(statuses):
        pid = f"p{i}"
        f = tmp_path / f"{pid}.parquet"
        write_parquet(f, _features(pid, case_id(KEY, f"PID-{i}")) if status == "ok"
                      else _features(pid, "x").iloc[0:0])
        s = tmp_path / f"{pid}.json"
        write_json(s, {"unit": pid, "n_pairs": 1, "pairs": [{"pair_id": pid, "status": status}]})
        feats.append(str(f))
        stats.append(str(s))
    write_tsv(tmp_path / "series.tsv", pd.DataFrame({"status": ["ok", "excluded:non-image-sr"]}))
    write_tsv(tmp_path / "pairs.tsv", pd.DataFrame({"status": ["ok"] * len(statuses)}))
    (tmp_path / "key").write_bytes(KEY)
    clinical = tmp_path / "clinical.csv"
    pd.DataFrame({"pid": [f"PID-{i}" for i in range(len(statuses))],
                  "age": range(len(statuses))}).to_csv(clinical, index=False)
    out = MergeOutputs(*(str(tmp_path / "out" / n) for n in (
        "features.parquet", "features_wide.csv", "dataset.parquet", "dataset.csv")))
    return dict(feature_files=feats, status_files=stats, pairs_tsv=str(tmp_path / "pairs.tsv"),
                series_tsv=str(tmp_path / "series.tsv"), sidecars=[],
                clinical=ClinicalInput(str(clinical), "pid"), key_file=str(tmp_path / "key"),
                settings=MergeSettings(max_unmatched_fraction=0.6), out=out)


def _qc(kw: dict) -> QcOutputs:
    """Run the qc rule's entry point on the merge inputs (as the workflow does, before merge)."""
    out = QcOutputs(*(str(kw["out"].dataset_csv).replace("dataset.csv", n)
                      for n in ("clinical_join_report.tsv", "run_summary.tsv")))
    run_qc(**{**kw, "out": out})
    return out


def test_run_merge_writes_everything(tmp_path) -> None:
    kw = _merge_inputs(tmp_path, ("ok", "ok"))
    qc = _qc(kw)
    run_merge(strict=False, **kw)
    dataset = pd.read_csv(kw["out"].dataset_csv)
    # no data dictionary: no clinical column but the join key (tests/test_clinical_dictionary.py)
    assert len(dataset) == 2 and "age" not in dataset.columns and "pid" not in dataset.columns
    summary = pd.read_csv(qc.run_summary, sep="\t")
    assert set(summary["stage"]) == {"crawl", "pair", "extract"}  # no convert sidecars given


def test_strict_mode_fails_on_any_failure_but_keeps_the_summary(tmp_path) -> None:
    kw = _merge_inputs(tmp_path, ("ok", "failed:label-absent"))
    qc = _qc(kw)
    run_merge(strict=False, **kw)  # not strict: fine, failure recorded
    with pytest.raises(StrictModeError, match=r"extract failed:label-absent x1"):
        run_merge(strict=True, **kw)
    summary = pd.read_csv(qc.run_summary, sep="\t")
    assert "failed:label-absent" in set(summary["status"])


def test_unmatched_bound_fails_the_merge(tmp_path) -> None:
    kw = _merge_inputs(tmp_path, ("ok", "ok", "ok"))
    pd.DataFrame({"pid": ["PID-0", "X", "Y"], "age": [1, 2, 3]}).to_csv(
        kw["clinical"].path, index=False)
    qc = _qc(kw)  # the qc rule never fails on the data: the report is there to read
    with pytest.raises(MergeError, match="2 of 3 imaged cases have no clinical row"):
        run_merge(strict=False, **kw)
    report = pd.read_csv(qc.join_report, sep="\t")
    assert (report["kind"] == "unmatched-imaging").sum() == 2
    assert (report["kind"] == "unmatched-clinical").sum() == 2


def test_clinical_rows_without_imaging_do_not_fail_the_merge(tmp_path) -> None:
    kw = _merge_inputs(tmp_path, ("ok",))
    pd.DataFrame({"pid": ["PID-0", "X", "Y"], "age": [1, 2, 3]}).to_csv(
        kw["clinical"].path, index=False)
    qc = _qc(kw)
    run_merge(strict=False, **kw)   # 2 of 3 clinical rows without imaging: a registry
    assert len(pd.read_csv(kw["out"].dataset_csv)) == 1
    report = pd.read_csv(qc.join_report, sep="\t")
    assert (report["kind"] == "unmatched-clinical").sum() == 2
