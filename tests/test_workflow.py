"""The whole workflow on the demo cohort: lint, dry run, full run, outputs, privacy, reruns.

Runs the real Snakefile with the real tools (SimpleITK, PyRadiomics, Snakemake) in a temporary
directory: a freshly generated demo cohort, its own key, results and private folder.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import demo_config, find_planted, job_counts, snakemake

from radflow.demo import make_demo_cohort
from radflow.extract.families import FEATURE_CLASSES, IMAGE_TYPE
from radflow.keys import case_id, load_key

pytestmark = pytest.mark.slow

#: The demo run's pseudonymisation key (32 bytes): fixed, so that keys can be compared with the
#: stored reference of :func:`test_behaviour_equals_the_stored_reference`.
REFERENCE_KEY = b"radflow demo reference key 0001!"
#: The demo run's statuses and feature values as radflow 0.2.0 (before the stage redesign) gave
#: them; ``RADFLOW_WRITE_REFERENCE=1 pytest tests/test_workflow.py -k reference`` rewrites it.
REFERENCE = Path(__file__).parent / "reference" / "demo_behaviour.parquet"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """Generate the demo and run the workflow once; yield (workdir, demo, config args)."""
    base = tmp_path_factory.mktemp("demo_run")
    demo = make_demo_cohort(base / "demo")
    (base / "secret").mkdir()  # a fixed key: the keys (and so the behaviour reference) are stable
    (base / "secret" / "key").write_bytes(REFERENCE_KEY)
    config = demo_config(base, demo, key_file=str(base / "secret" / "key"),
                         analyse={"enabled": True}, report={"enabled": True})
    work = base / "work"
    params = base / "pyradiomics.yaml"  # the copy demo_config wrote
    # --quiet host: the per-job blocks (which the default profile hides) are kept for
    # test_benchmarks_stay_within_the_requests, which reads each job's resources from them.
    run = snakemake(work, ["--cores", "2", "--quiet", "host", *config])
    (base / "run.log").write_text(run.stdout + run.stderr, encoding="utf-8")
    return work, demo, config, params, base


def _results(work: Path) -> Path:
    return work / "results" / "demo"


def test_lint_is_clean(tmp_path) -> None:
    # With every input kind configured (sheet and clinical table too) and de-identification on.
    (tmp_path / "dicom").mkdir()
    (tmp_path / "sheet.tsv").write_text("subject\timage\tmask\n")
    (tmp_path / "clinical.csv").write_text("patient_id,age\n")
    proc = snakemake(tmp_path, ["--lint", "--config", f"dicom_root={tmp_path / 'dicom'}",
                                f"sheet={tmp_path / 'sheet.tsv'}",
                                f"clinical={tmp_path / 'clinical.csv'}", "deidentify=true"],
                     check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "your workflow is in a good condition" in proc.stdout + proc.stderr, proc.stderr


def test_missing_input_is_a_clear_error(tmp_path) -> None:
    proc = snakemake(tmp_path, ["-n"], check=False)
    assert proc.returncode != 0
    assert "no input: set dicom_root" in proc.stdout + proc.stderr


def test_outputs_rows_and_keys(demo_run) -> None:
    work, demo, *_ = demo_run
    res = _results(work)
    key = load_key(_key_file(demo_run))
    sheet = pd.read_csv(demo.sheet, sep="\t", dtype=str)
    truth = json.loads(Path(demo.truth).read_text())["subjects"]
    n_pairs = sum(len(t["rois"]) for t in truth.values())  # sheet rows + DICOM mask ROIs
    assert n_pairs > len(sheet)
    series = pd.read_csv(res / "crawl" / "series.tsv", sep="\t", dtype=str,
                         keep_default_na=False)
    assert "excluded:non-image-sr" in set(series["status"]), "the SR must be listed, not dropped"
    assert set(series.loc[series["source"] == "dicom", "case_id"]) - {""} == {
        case_id(key, s) for s in truth}
    pairs = pd.read_csv(res / "pair" / "pairs.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert len(pairs) == n_pairs
    assert (pairs["status"] == "ok").all(), pairs[["pair_id", "status"]]
    assert pairs["pair_id"].str.fullmatch(r"p[0-9a-f]{16}").all()
    dataset = pd.read_csv(res / "merge" / "dataset.csv")
    assert len(dataset) == n_pairs
    assert set(dataset["case_id"]) == {case_id(key, s) for s in truth}
    assert "patient_id" not in dataset.columns and "age" in dataset.columns
    long = pd.read_parquet(res / "merge" / "features.parquet")
    per_pair = long.groupby("pair_id").size()
    assert per_pair.nunique() == 1 and per_pair.iloc[0] > 1000, "LoG+wavelet: >1000 features"
    laws = long[long["image_type"] == "laws-L5E5E5-ri-max-e7"]
    assert set(laws["feature_class"]) >= {"firstorder", "glcm", "glszm"}, "default Laws config"
    for col in ("radflow_version", "pyradiomics_dist", "pyradiomics_version",
                "simpleitk_version", "numpy_version", "params_hash", "image_hash", "mask_hash"):
        assert long[col].notna().all() and (long[col] != "").all(), col
    assert set(long["pyradiomics_dist"]) == {"pyradiomics-bhklab"}
    wide = pd.read_csv(res / "merge" / "features_wide.csv")
    assert len(wide) == n_pairs
    # radflow's own families (issue 15): rows, landmarks and curves of every pair
    assert "original_recist_LongestDiameter" in wide.columns
    assert set(long.loc[long["feature_class"] == "size", "ibsi_code"]) >= {"YEKZ", "RNU0"}
    landmarks = pd.read_csv(res / "merge" / "landmarks.tsv", sep="\t")
    assert landmarks.groupby("pair_id").size().to_dict() == dict.fromkeys(wide["pair_id"], 3)
    curves = pd.read_parquet(res / "merge" / "minkowski_curves.parquet")
    assert curves.groupby("pair_id").size().to_dict() == dict.fromkeys(wide["pair_id"], 16)
    report = pd.read_csv(res / "merge" / "clinical_join_report.tsv", sep="\t")
    joined = report[~report["kind"].str.endswith("-column")]  # columns: test_clinical_columns
    assert list(joined["kind"]) == ["unmatched-clinical"], "demo has one clinical-only patient"
    summary = pd.read_csv(res / "qc" / "run_summary.tsv", sep="\t")
    assert not summary["status"].str.startswith("failed:").any()


def test_dicom_masks_are_found_and_paired_without_the_sheet(demo_run) -> None:
    """The RTSTRUCT and SEG patients: paired by reference, one pair per ROI, names counted."""
    work, demo, *_ = demo_run
    res = _results(work)
    key = load_key(_key_file(demo_run))
    truth = json.loads(Path(demo.truth).read_text())["subjects"]
    dicom_cases = {case_id(key, s): t for s, t in truth.items()
                   if t["mask"].startswith("dicom:")}
    assert len(dicom_cases) == 2
    pairs = pd.read_csv(res / "pair" / "pairs.tsv", sep="\t", dtype=str, keep_default_na=False)
    series = pd.read_csv(res / "crawl" / "series.tsv", sep="\t", dtype=str,
                         keep_default_na=False).set_index("series_key")
    for cid, entry in dicom_cases.items():
        mine = pairs[pairs["case_id"] == cid]
        assert sorted(mine["roi"]) == sorted(entry["rois"])
        assert set(mine["pairing_reason"]) == {"referenced-series"}
        assert set(mine["status"]) == {"ok"}
        assert {series.loc[k, "modality"] for k in mine["mask_key"]} == {
            entry["mask"].removeprefix("dicom:").upper()}
    assert set(pairs.loc[~pairs["case_id"].isin(dicom_cases), "pairing_reason"]) == {"sheet"}
    rois = pd.read_csv(res / "crawl" / "rois.tsv", sep="\t", keep_default_na=False)
    assert "excluded:point-roi" in set(rois["status"])
    names = pd.read_csv(res / "pair" / "roi_names.tsv", sep="\t", keep_default_na=False)
    assert set(names["roi_source"]) == {"lesion", "node", "reference point"}
    assert set(names["match"]) == {"unmapped"}  # the default config maps no names


def _key_file(demo_run) -> Path:
    return demo_run[4] / "secret" / "key"


def test_sidecars_carry_acquisition_parameters(demo_run) -> None:
    work, *_ = demo_run
    sidecars = [json.loads(p.read_text()) for p in (_results(work) / "convert").rglob("*.json")]
    dicom = [s for s in sidecars if s.get("acquisition")]
    assert dicom, "DICOM sidecars expected"
    for s in dicom:
        assert s["status"] == "ok"
        assert s["acquisition"]["Modality"] == "CT" and "KVP" in s["acquisition"]


def test_demo_geometry_oracle(demo_run) -> None:
    """Known lesion volume and maximum diameter within 2 % (the demo's test oracle)."""
    work, demo, *_ = demo_run
    key = load_key(_key_file(demo_run))
    truth = json.loads(Path(demo.truth).read_text())
    wide = pd.read_csv(_results(work) / "merge" / "features_wide.csv")
    checked = 0
    for item in _truth_items(truth):
        row = wide[(wide["case_id"] == case_id(key, item["subject"]))
                   & (wide["label"] == item["label"])]
        assert len(row) == 1, item
        row = row.iloc[0]
        assert row["original_shape_VoxelVolume"] == pytest.approx(item["volume_mm3"], rel=0.02)
        assert row["original_shape_MeshVolume"] == pytest.approx(item["volume_mm3"], rel=0.02)
        assert row["original_shape_Maximum3DDiameter"] == pytest.approx(
            item["max_diameter_mm"], rel=0.02)
        checked += 1
    assert checked >= 6


def _truth_items(truth):
    for subject, entry in truth["subjects"].items():
        for roi in entry["rois"].values():
            yield {"subject": subject, **roi}


def test_no_planted_identifier_anywhere(demo_run) -> None:
    work, demo, *_ = demo_run
    assert len(demo.planted_phi) >= 10
    hits = find_planted(work, demo.planted_phi, skip=[".radflow"])
    assert hits == []
    private = work / ".radflow" / "private" / "demo"
    assert any(private.rglob("*.json")), "source paths belong in the private folder"


def test_clinical_columns_through_the_data_dictionary(demo_run) -> None:
    """The planted name, birth date and notes columns never reach the results (the scan above
    covers them too); the diagnosis date arrives as days from the CT date, and no date does."""
    work, demo, *_ = demo_run
    res = _results(work)
    dataset = pd.read_csv(res / "merge" / "dataset.csv")
    clinical = ["age", "sex", "diagnosis_date_days_from_ct_date", "outcome", "followup_months",
                "event"]
    assert [c for c in dataset.columns if c in clinical] == clinical
    assert not {"name", "birth_date", "notes", "ct_date", "diagnosis_date"} & set(dataset.columns)
    key = load_key(_key_file(demo_run))
    source = pd.read_csv(demo.clinical, dtype={"patient_id": str})
    days = {case_id(key, r.patient_id): (pd.Timestamp(r.diagnosis_date)
                                         - pd.Timestamp(r.ct_date)).days
            for r in source.itertuples()}
    assert (dataset["diagnosis_date_days_from_ct_date"] == dataset["case_id"].map(days)).all()
    for name in ("dataset.csv", "clinical_columns.tsv", "clinical_join_report.tsv",
                 "clinical_violations.tsv"):
        assert not re.search(r"\b(19|20)\d\d-\d\d-\d\d\b", (res / "merge" / name).read_text()), name
    report = pd.read_csv(res / "merge" / "clinical_join_report.tsv", sep="\t")
    columns = report[report["kind"].str.endswith("-column")]
    assert sorted(zip(columns["kind"], columns["detail"].str.split(":").str[0],
                      strict=True)) == [
        ("dropped-column", "ct_date"), ("identifier-column", "birth_date"),
        ("undeclared-column", "name"), ("undeclared-column", "notes")]
    record = pd.read_csv(res / "merge" / "clinical_columns.tsv", sep="\t", dtype=str,
                         keep_default_na=False)
    assert list(record["column"]) == clinical
    assert pd.read_csv(res / "merge" / "clinical_violations.tsv", sep="\t").empty


def test_run_ends_with_the_summary(demo_run) -> None:
    work, *_, base = demo_run
    log = (base / "run.log").read_text(encoding="utf-8")
    summary = log[log.rindex("radflow: results in results/demo/"):]
    dataset = pd.read_parquet(_results(work) / "merge" / "dataset.parquet")
    assert f"merge/dataset.csv: {len(dataset)} rows, {dataset.shape[1]} columns" in summary
    counts = pd.read_csv(_results(work) / "qc" / "run_summary.tsv", sep="\t")
    for stage, rows in counts.groupby("stage"):
        ok = int(rows.loc[rows["status"] == "ok", "count"].sum())
        assert re.search(rf"^  {stage}\s+{ok}\s", summary, re.M), (stage, summary)
    assert "WARNING" not in summary


#: Folders of a working directory that hold input paths by design: radflow's private folder
#: (source paths, derived config files) and Snakemake's records of every job's input files
#: (metadata) and of the files a dry run looked at (iocache). README, "Keys and privacy".
PRIVATE = [".radflow", ".snakemake/metadata", ".snakemake/iocache"]


@pytest.mark.parametrize("way", ["snakemake", "radflow run"])
def test_an_input_root_named_after_a_patient_reaches_no_log(tmp_path, way) -> None:
    """The README's own usage with an archive folder named after a patient: given in a config
    file (plain Snakemake) or to ``radflow run`` (also as --config), the name reaches no file
    under results/ and .snakemake/log (Snakemake copies its command line into its log)."""
    base = tmp_path / "Kowalski_Anna"  # a planted name of the demo (one of its folder names)
    demo = make_demo_cohort(base / "archive", n_patients=4)
    assert base.name in demo.planted_phi
    cfg = tmp_path / "cohort.yaml"
    cfg.write_text(yaml.safe_dump({"cohort": "phi", "sheet": str(demo.sheet),
                                   "clinical": str(demo.clinical),
                                   "key_file": str(tmp_path / "key")}))
    work = tmp_path / "work"
    work.mkdir()
    root = f"dicom_root={demo.dicom_root}"
    if way == "snakemake":
        cfg.write_text(cfg.read_text() + f"dicom_root: {demo.dicom_root}\n")
        out = snakemake(work, ["--cores", "2", "--configfile", str(cfg)])
    else:
        out = subprocess.run([str(Path(sys.executable).parent / "radflow"), "run",
                              "--configfile", str(cfg), "--cores", "2", "--config", root],
                             cwd=work, capture_output=True, text=True, timeout=900,
                             check=False)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "radflow: results in results/phi/" in out.stdout
    assert (work / "results" / "phi" / "merge" / "dataset.csv").is_file()
    assert any((work / ".snakemake" / "log").iterdir())
    assert find_planted(work, demo.planted_phi, skip=PRIVATE) == []
    # control: the same value on Snakemake's command line does reach its log
    snakemake(work, ["merge", "--cores", "1", "--configfile", str(cfg), "--config", root])
    assert find_planted(work / ".snakemake" / "log", [base.name])


def _stable_names(work: Path, demo_root: Path) -> dict[str, str]:
    """Sheet-file keys hash the file's absolute path, which differs from run to run: name each
    sheet file by its path inside the demo cohort, and each pair by its image, mask, label and
    ROI (DICOM series keys hash UIDs and are stable already)."""
    names = {}
    root = demo_root.resolve()
    for record in (work / ".radflow" / "private" / "demo" / "sources").glob("*.json"):
        source = json.loads(record.read_text(encoding="utf-8"))
        if source["kind"] != "dicom" and len(source["files"]) == 1:
            names[record.stem] = f"file:{Path(source['files'][0]).relative_to(root).as_posix()}"
    pairs = pd.read_csv(_results(work) / "pair" / "pairs.tsv", sep="\t", dtype=str,
                        keep_default_na=False)
    for row in pairs.itertuples():
        names[row.pair_id] = "|".join([names.get(row.image_key, row.image_key),
                                       names.get(row.mask_key, row.mask_key), row.label, row.roi])
    return names


def _behaviour(work: Path, demo_root: Path) -> pd.DataFrame:
    """Every status of every stage and every feature value of a run, as one long table:
    ``stage, key, item, value`` (statuses as text, feature values as their ``repr``)."""
    res = _results(work)
    rows = []
    series = pd.read_csv(res / "crawl" / "series.tsv", sep="\t", dtype=str, keep_default_na=False)
    rows += [("crawl", k, "status", v) for k, v in zip(series["series_key"], series["status"],
                                                       strict=True)]
    for sidecar in sorted((res / "convert").glob("*/*.json")):
        rows.append(("convert", sidecar.stem, "status",
                     json.loads(sidecar.read_text(encoding="utf-8"))["status"]))
    pairs = pd.read_csv(res / "pair" / "pairs.tsv", sep="\t", dtype=str, keep_default_na=False)
    rows += [("pair", k, "status", v) for k, v in zip(pairs["pair_id"], pairs["status"],
                                                      strict=True)]
    for status in sorted((res / "extract").glob("*/*.json")):
        if status.name.endswith(".side.json"):  # the families' side records (0.6.0)
            continue
        for pair in json.loads(status.read_text(encoding="utf-8"))["pairs"]:
            rows.append(("extract", pair["pair_id"], "status", pair["status"]))
    features = pd.read_parquet(res / "merge" / "features.parquet")
    names = features["image_type"] + "_" + features["feature_class"] + "_" + features["feature"]
    rows += [("merge", k, n, repr(float(v))) for k, n, v in zip(
        features["pair_id"], names, features["value"], strict=True)]
    table = pd.DataFrame(rows, columns=["stage", "key", "item", "value"])
    table["key"] = table["key"].map(_stable_names(work, demo_root)).fillna(table["key"])
    return table.sort_values(["stage", "key", "item"], kind="stable").reset_index(drop=True)


def test_behaviour_equals_the_stored_reference(demo_run) -> None:
    """The demo run gives the statuses and feature values (bit for bit) stored before the
    stage redesign: every ok/excluded/failed status of crawl, convert, pair and extract, and
    every value of merge/features.parquet; the only rows the reference lacks are the values of
    radflow's own feature families (0.6.0)."""
    import os

    table = _behaviour(demo_run[0], demo_run[1].root)
    if os.environ.get("RADFLOW_WRITE_REFERENCE") == "1":
        REFERENCE.parent.mkdir(exist_ok=True)
        table.to_parquet(REFERENCE, index=False, compression="zstd")
    reference = pd.read_parquet(REFERENCE)
    assert len(table) > 10_000 and set(table["stage"]) == {"crawl", "convert", "pair",
                                                           "extract", "merge"}
    # radflow 0.6.0 adds its own feature families (issue 15): rows the reference predates, and
    # the only rows it does not have
    stored = table.merge(reference[["stage", "key", "item"]], how="left", indicator=True)
    new = stored["_merge"] == "left_only"
    added = table[new.to_numpy()]
    assert set(added["stage"]) == {"merge"} and len(added) > 0
    parts = added["item"].str.split("_", n=2, expand=True)
    assert set(parts[0]) == {IMAGE_TYPE} and set(parts[1]) == set(FEATURE_CLASSES) - {"suv"}
    pd.testing.assert_frame_equal(table[~new.to_numpy()].reset_index(drop=True), reference)


def test_params_change_reruns_only_extract_and_merge(demo_run) -> None:
    work, _, config, params, _ = demo_run
    res = _results(work)
    before = pd.read_parquet(res / "merge" / "features.parquet")
    before_csv = (res / "merge" / "dataset.csv").read_bytes()
    assert job_counts(snakemake(work, ["-n", "--cores", "2", *config]).stdout) == {}
    params.write_text(params.read_text() + "\n# touched by the test\n")
    counts = job_counts(snakemake(work, ["-n", "--cores", "2", *config]).stdout)
    n_images = len(before["image_key"].unique())  # one extract job per image, not per ROI
    assert n_images < len(before["pair_id"].unique())
    assert counts == {"extract_one": n_images, "qc": 1, "merge": 1, "analyse": 1, "report": 1,
                      "all": 1}
    run = snakemake(work, ["--cores", "2", *config])
    assert job_counts(run.stdout + run.stderr) == counts
    after = pd.read_parquet(res / "merge" / "features.parquet")
    pd.testing.assert_frame_equal(before, after)  # deterministic: identical feature tables
    assert (res / "merge" / "dataset.csv").read_bytes() == before_csv


_JOB = re.compile(r"benchmark: (?P<bench>\S+)\n(?:.*\n)*?\s+resources: (?P<res>.*)")


def test_benchmarks_stay_within_the_requests(demo_run) -> None:
    """Issue 7: every per-item job's ``benchmark:`` file (peak RSS, wall time) is within the
    memory and run time the job asked for (README, "Running on a cluster")."""
    work, *_, base = demo_run
    jobs = list(_JOB.finditer((base / "run.log").read_text(encoding="utf-8")))
    rules = {Path(m["bench"]).relative_to("results/demo/benchmarks").parts[0] for m in jobs}
    assert rules == {"convert", "pair", "extract", "qc.tsv", "merge.tsv", "analyse.tsv",
                     "report.tsv"}, rules
    for m in jobs:
        resources = dict(item.split("=", 1) for item in m["res"].split(", "))
        bench = pd.read_csv(work / m["bench"], sep="\t")
        assert len(bench) == 1, m["bench"]
        assert bench["max_rss"].item() < int(resources["mem_mb"]), (m["bench"], resources)
        assert bench["s"].item() < 60 * int(resources["runtime"]), (m["bench"], resources)


def test_logs_name_only_pseudonyms(demo_run) -> None:
    work, *_ = demo_run
    logs = list((_results(work) / "logs").rglob("*.log"))
    assert logs
    text = "\n".join(p.read_text(encoding="utf-8") for p in logs)
    assert re.search(r"c[0-9a-f]{12}|s[0-9a-f]{16}|p[0-9a-f]{16}", text)


def test_nifti_only_cohort_without_dicom(tmp_path) -> None:
    """A cohort sheet of NIfTI/NRRD files (no DICOM, no clinical table) runs end to end."""
    import numpy as np
    import SimpleITK as sitk

    rng = np.random.default_rng(1)
    rows = []
    for i, suffix in enumerate((".nii.gz", ".nrrd")):
        img = sitk.GetImageFromArray(rng.normal(40, 10, (12, 16, 16)).astype(np.float32))
        img.SetSpacing((1.0, 1.0, 2.0))
        mask_arr = np.zeros((12, 16, 16), np.uint8)
        mask_arr[3:9, 4:12, 4:12] = 1
        mask = sitk.GetImageFromArray(mask_arr)
        mask.CopyInformation(img)
        sitk.WriteImage(img, str(tmp_path / f"img{i}{suffix}"))
        sitk.WriteImage(mask, str(tmp_path / f"mask{i}{suffix}"))
        rows.append({"subject": f"S{i}", "image": f"img{i}{suffix}", "mask": f"mask{i}{suffix}"})
    pd.DataFrame(rows).to_csv(tmp_path / "sheet.tsv", sep="\t", index=False)
    params = tmp_path / "params.yaml"
    params.write_text("imageType: {Original: {}}\nfeatureClass: {shape: [], firstorder: []}\n"
                      "setting: {binWidth: 25}\n")
    config = ["--config", "cohort=niftionly", f"sheet={tmp_path / 'sheet.tsv'}",
              f"key_file={tmp_path / 'key'}", f"extract={{params: {params}}}"]
    dry = snakemake(tmp_path, ["-n", "--cores", "2", *config])
    assert job_counts(dry.stdout)["crawl"] == 1
    snakemake(tmp_path, ["--cores", "2", *config])
    res = tmp_path / "results" / "niftionly"
    dataset = pd.read_csv(res / "merge" / "dataset.csv")
    assert len(dataset) == 2
    assert dataset["original_shape_VoxelVolume"].tolist() == [768.0, 768.0]
    report = pd.read_csv(res / "merge" / "clinical_join_report.tsv", sep="\t")
    assert list(report["kind"]) == ["no-clinical-table"]


def test_dicom_masks_without_a_sheet(tmp_path) -> None:
    """RTSTRUCT + SEG in a DICOM tree, no cohort sheet: pairs by reference, fallbacks, ROI rules;
    an ambiguous mask fails its pair (listing the candidates) and the run still completes."""
    import numpy as np
    from mask_fixtures import PATIENT, STUDY, index_points, square, write_ct

    from radflow.demo.synthetic import Patient, Study, derived_uid
    from radflow.demo.synthetic_masks import ContourSpec, RoiSpec, write_rtstruct, write_seg

    root = tmp_path / "dicom"
    ct = write_ct(root / "a" / "ct", "wf-a", shape=(8, 24, 24), spacing=(1.0, 1.0, 2.0))
    box = index_points(ct.grid, square(4.5, 4.5, 15.5, 13.5), 3.0)
    box2 = index_points(ct.grid, square(4.5, 4.5, 15.5, 13.5), 4.0)
    write_rtstruct(root / "a" / "rs" / "rs.dcm", patient=PATIENT, study=STUDY,
                   series_uid=str(derived_uid("wf-rs")), image_series_uid=ct.uid,
                   image_uids=ct.sop_uids,
                   rois=[RoiSpec(1, "GTV primary", (ContourSpec(box), ContourSpec(box2))),
                         RoiSpec(2, "z_ring", (ContourSpec(box),))])
    seg = np.zeros(ct.grid.shape, bool)
    seg[2:6, 6:16, 5:15] = True
    write_seg(root / "a" / "seg" / "seg.dcm", ct.headers(), [(1, "Liver lesion", seg)],
              series_uid=str(derived_uid("wf-seg")))
    other, other_study = Patient("PID-WF-B", "Other^Person"), Study(derived_uid("b-st"),
                                                                     derived_uid("b-for"))
    b1 = write_ct(root / "b" / "s1" / "ct", "wf-b1", patient=other, study=other_study)
    write_ct(root / "b" / "s2" / "ct", "wf-b2", patient=other, study=other_study)
    write_rtstruct(root / "b" / "rs.dcm", patient=other, study=other_study,
                   series_uid=str(derived_uid("wf-rs-b")), image_series_uid="",
                   rois=[RoiSpec(1, "GTV", (ContourSpec(
                       index_points(b1.grid, square(1.5, 1.5, 4.5, 4.5), 2.0)),))])
    params = tmp_path / "params.yaml"
    params.write_text("imageType: {Original: {}}\nfeatureClass: {shape: [], firstorder: []}\n"
                      "setting: {binWidth: 25}\n")
    cfg = tmp_path / "cohort.yaml"
    cfg.write_text(yaml.safe_dump({
        "cohort": "masks", "dicom_root": str(root), "key_file": str(tmp_path / "key"),
        "extract": {"params": str(params), "image_types": []},
        "rois": {"exclude": ["z_.*"], "map": {"GTV": "gtv.*"}}}))
    snakemake(tmp_path, ["--cores", "2", "--configfile", str(cfg)])
    res = tmp_path / "results" / "masks"
    pairs = pd.read_csv(res / "pair" / "pairs.tsv", sep="\t", keep_default_na=False)
    got = sorted(zip(pairs["roi"], pairs["status"], pairs["pairing_reason"], strict=True))
    assert got == [("GTV", "failed:ambiguous-reference", "common-folder"),
                   ("GTV", "ok", "referenced-series"),
                   ("Liver lesion", "ok", "referenced-series")]
    dataset = pd.read_csv(res / "merge" / "dataset.csv")
    volumes = dict(zip(dataset["roi"], dataset["original_shape_VoxelVolume"], strict=True))
    assert volumes == {"GTV": 2 * 11 * 9 * 2.0, "Liver lesion": float(seg.sum()) * 2.0}
    names = pd.read_csv(res / "pair" / "roi_names.tsv", sep="\t", keep_default_na=False)
    assert set(zip(names["roi_source"], names["match"], strict=True)) == {
        ("GTV primary", "mapped"), ("z_ring", "excluded"), ("Liver lesion", "unmapped"),
        ("GTV", "mapped")}
    summary = pd.read_csv(res / "qc" / "run_summary.tsv", sep="\t")
    assert ("pair", "failed:ambiguous-reference", 1) in set(summary.itertuples(index=False,
                                                                                name=None))
