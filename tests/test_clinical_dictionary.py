"""The clinical data dictionary: schema and consistency errors, what reaches the results, value
checks named by column and row, strict mode, dates as day offsets (also under the
de-identification's date shift), CSV and XLSX, and the demo's planted identifiers."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from radflow.deidentify.dates import date_shift_days
from radflow.demo import make_demo_cohort
from radflow.errors import ConfigError, MergeError
from radflow.io.atomic import write_json, write_parquet, write_tsv
from radflow.io.tables import read_clinical
from radflow.keys import case_id
from radflow.merge import ClinicalInput, MergeOutputs, QcOutputs, run_merge, run_qc
from radflow.merge.clinical import COLUMN_KINDS, VIOLATION_COLUMNS, prepare_clinical, shift_dates
from radflow.merge.dictionary import checked_dictionary, load_dictionary
from radflow.records.clinical import CLINICAL_COLUMNS, read_clinical_columns
from radflow.settings import MergeSettings

KEY = b"clinical dictionary test key 32b"

DICTIONARY = """\
columns:
  pid: {type: id, role: identifier}
  name: {type: categorical, role: identifier}
  age: {type: numeric, role: covariate, unit: years, min: 0, max: 120}
  sex: {type: categorical, role: covariate, levels: [F, M]}
  stage: {type: ordinal, role: covariate, levels: [1, 2, 3, 4]}
  ct_date: {type: date, role: drop}
  diagnosis_date: {type: date, role: covariate, reference_date: ct_date}
  os_months: {type: time-to-event, role: outcome, unit: months, event: dead}
  dead: {type: event-indicator, role: outcome}
  response: {type: binary-outcome, role: outcome, levels: [PD, CR], positive: CR}
  ward: {type: categorical, role: drop}
"""

#: A clean table (every value valid), as a hospital's spreadsheet has it.
ROWS = {
    "pid": ["P-1", "P-2", "P-3"],
    "name": ["Ada Lovelace", "Alan Turing", "Grace Hopper"],
    "age": [61, 70, 55],
    "sex": ["F", "M", "F"],
    "stage": [1, 3, 4],
    "ct_date": ["2023-04-12", "2023-05-19", "2023-07-03"],
    "diagnosis_date": ["2023-04-02", "2023-05-19", "2023-06-09"],
    "os_months": [14.2, 38.5, 9.8],
    "dead": [1, 0, 1],
    "response": ["CR", "PD", "PD"],
    "ward": ["A", "B", "C"],
    "comment": ["called Ada at home", "", "lives with her sister"],
}


def _dictionary(tmp_path, text: str = DICTIONARY, clinical_id: str = "pid"):
    path = tmp_path / "dictionary.yaml"
    path.write_text(text, encoding="utf-8")
    return load_dictionary(path, clinical_id)


def _csv(tmp_path, rows: dict | None = None):
    path = tmp_path / "clinical.csv"
    pd.DataFrame(rows or ROWS).to_csv(path, index=False)
    return read_clinical(path, "pid")


def _with(**changes) -> dict:
    return {**ROWS, **changes}


# --- the dictionary itself --------------------------------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    ("  sex: {type: categorical, role: covariate}", r"columns\.sex\.levels: required"),
    ("  sex: {type: categorical, role: covariate, levels: [F, M], unit: kg}",
     r"columns\.sex\.unit: not a key of a column of type categorical"),
    ("  sex: {type: categoricl, role: covariate, levels: [F, M]}",
     r"columns\.sex\.type: 'categoricl'.*did you mean 'categorical'"),
    ("  sex: {type: categorical, rle: covariate, levels: [F, M]}",
     r"columns\.sex: unknown key 'rle' \(did you mean 'role'\?\)"),
    ("  sex: {type: categorical, role: covariate, levels: [yes, no]}",
     r"columns\.sex\.levels\[0\]: True is a boolean.*quote"),
    ("  sex: {type: binary-outcome, role: covariate}", r"columns\.sex\.role: 'covariate'"),
    ("  sex: {type: id, role: covariate}", r"columns\.sex\.role: 'covariate'"),
    ("  sex: {type: date, role: covariate}", r"columns\.sex\.reference_date: required"),
    ("  sex: {type: time-to-event, role: outcome, unit: months}",
     r"columns\.sex\.event: required"),
    ("  sex: {type: time-to-event, role: outcome, unit: lightyears, event: dead}",
     r"columns\.sex\.unit: 'lightyears'"),
])
def test_schema_errors_name_the_key(tmp_path, change: str, message: str) -> None:
    text = "\n".join(change if line.startswith("  sex:") else line
                     for line in DICTIONARY.splitlines())
    with pytest.raises(ConfigError, match=rf"clinical dictionary dictionary\.yaml: {message}"):
        _dictionary(tmp_path, text)


@pytest.mark.parametrize(("change", "message"), [
    # the identifier refused anywhere it would reach the results
    ("  ct_date: {type: date, role: identifier}",
     r"diagnosis_date\.reference_date: 'ct_date' is role identifier"),
    ("  dead: {type: event-indicator, role: identifier}",
     r"os_months\.event: 'dead' is role identifier"),
    ("  ct_date: {type: numeric, role: drop}", r"'ct_date' is type numeric, not date"),
    ("  diagnosis_date: {type: date, role: covariate, reference_date: ct_dat}",
     r"'ct_dat' is not a declared column \(did you mean 'ct_date'\?\)"),
    ("  dead: {type: event-indicator, role: drop}", r"os_months\.event: .*is role drop"),
    ("  os_months: {type: time-to-event, role: drop, unit: months, event: dead}",
     r"dead\.type: a written event indicator must be the event"),
    ("  response: {type: binary-outcome, role: outcome, levels: [PD, CR], positive: cr}",
     r"response\.positive: 'cr' is not one of the levels"),
    ("  age: {type: numeric, role: covariate, min: 10, max: 5}", r"age\.min: min 10"),
    ("  name: {type: id, role: identifier}", r"name\.type: type id is the join key"),
    ("  pid: {type: categorical, role: identifier}", r"pid\.type: 'pid' is clinical_id"),
])
def test_inconsistent_dictionaries_are_refused(tmp_path, change: str, message: str) -> None:
    name = change.split(":")[0]
    text = "\n".join(change if line.startswith(name + ":") else line
                     for line in DICTIONARY.splitlines())
    with pytest.raises(ConfigError, match=message):
        _dictionary(tmp_path, text)


def test_case_id_is_reserved(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"columns\.case_id\.role: case_id is the pseudonym"):
        _dictionary(tmp_path, DICTIONARY + "  case_id: {type: numeric, role: covariate}\n")


def test_a_dictionary_needs_a_clinical_table(tmp_path) -> None:
    (tmp_path / "d.yaml").write_text(DICTIONARY)
    with pytest.raises(ConfigError, match="clinical_dictionary is set but clinical is not"):
        checked_dictionary(str(tmp_path / "d.yaml"), "", "pid")
    assert checked_dictionary("", "", "pid") == ""
    assert checked_dictionary(str(tmp_path / "d.yaml"), "t.csv", "pid") == str(tmp_path / "d.yaml")


def test_the_analysis_finds_outcomes_pairs_and_covariates(tmp_path) -> None:
    d = _dictionary(tmp_path)
    assert [(c.name, c.type) for c in d.outcomes()] == [
        ("os_months", "time-to-event"), ("dead", "event-indicator"), ("response", "binary-outcome")]
    assert [c.output_name for c in d.covariates()] == [
        "age", "sex", "stage", "diagnosis_date_days_from_ct_date"]
    assert d.survival_pairs() == (("os_months", "dead"),)


# --- what reaches the results -----------------------------------------------------------------

def test_without_a_dictionary_only_the_join_key_is_kept(tmp_path) -> None:
    prepared = prepare_clinical(_csv(tmp_path), "pid", None, KEY)
    assert list(prepared.table.columns) == ["pid"]
    assert set(prepared.report["kind"]) == {"undeclared-column"}
    assert [d.split(":")[0] for d in prepared.report["detail"]] == [
        c for c in ROWS if c != "pid"]


def test_only_declared_outcomes_and_covariates_are_written(tmp_path) -> None:
    prepared = prepare_clinical(_csv(tmp_path), "pid", _dictionary(tmp_path), KEY)
    assert list(prepared.table.columns) == [
        "pid", "age", "sex", "stage", "diagnosis_date_days_from_ct_date", "os_months", "dead",
        "response"]
    report = dict(zip(prepared.report["detail"].str.split(":").str[0], prepared.report["kind"],
                      strict=True))
    assert report == {"comment": "undeclared-column", "name": "identifier-column",
                      "ct_date": "dropped-column", "ward": "dropped-column"}
    assert set(prepared.report["kind"]) <= set(COLUMN_KINDS)
    text = prepared.table.to_csv()
    for value in ("Ada", "Turing", "Hopper", "sister", "2023-"):
        assert value not in text
    assert prepared.violations.empty and list(prepared.violations.columns) == list(
        VIOLATION_COLUMNS)
    assert list(prepared.table["diagnosis_date_days_from_ct_date"]) == [-10, 0, -24]
    assert list(prepared.table["response"]) == [1, 0, 0]       # positive: CR
    assert list(prepared.table["stage"]) == [1, 3, 4]


def test_unknown_columns_error_names_them(tmp_path) -> None:
    d = _dictionary(tmp_path, "unknown_columns: error\n" + DICTIONARY)
    with pytest.raises(ConfigError, match=r"does not declare: comment \(unknown_columns: error\)"):
        prepare_clinical(_csv(tmp_path), "pid", d, KEY)


def test_a_declared_column_missing_from_the_table_is_an_error(tmp_path) -> None:
    rows = {k: v for k, v in ROWS.items() if k != "ward"}
    with pytest.raises(ConfigError, match=r"declares column\(s\) the clinical table does not "
                                          r"have: ward"):
        prepare_clinical(_csv(tmp_path, rows), "pid", _dictionary(tmp_path), KEY)


# --- value checks ------------------------------------------------------------------------------

@pytest.mark.parametrize(("column", "values", "row", "problem", "rule"), [
    ("age", [61, "sixty", 55], 3, "non-numeric text", "numeric"),
    ("age", [61, 130, 55], 3, "130 > 120", "max"),
    ("age", [61, -1, 55], 3, "-1 < 0", "min"),
    ("age", [61, 70, "inf"], 4, "not a finite number", "numeric"),
    ("os_months", [14.2, -3, 9.8], 3, "-3 < 0", "time-to-event >= 0"),
    ("os_months", [14.2, "12,5", 9.8], 3, "non-numeric text", "time-to-event"),
    ("sex", ["F", "Alan Turing's wife", "F"], 3, "not one of the 2 levels", "levels"),
    ("stage", [1, 5, 4], 3, "not one of the 4 levels", "levels"),
    ("dead", [1, 2, 1], 3, "not one of the 2 levels", "levels"),
    ("response", ["CR", "SD", "PD"], 3, "not one of the 2 levels", "levels"),
    ("diagnosis_date", ["2023-04-02", "02/05/2023", "2023-06-09"], 3,
     "text that is not a date (YYYY-MM-DD)", "date"),
    ("diagnosis_date", ["2023-04-02", "2023-02-30", "2023-06-09"], 3,
     "text that is not a date (YYYY-MM-DD)", "date"),
    ("diagnosis_date", ["2023-04-02", "20230519", "2023-06-09"], 3,
     "text that is not a date (YYYY-MM-DD)", "date"),
    ("ct_date", ["2023-04-12", "last spring", "2023-07-03"], 3,
     "text that is not a date (YYYY-MM-DD)", "date"),
])
def test_violations_name_column_and_row(tmp_path, column, values, row, problem, rule) -> None:
    table = _csv(tmp_path, _with(**{column: values}))
    prepared = prepare_clinical(table, "pid", _dictionary(tmp_path), KEY)
    got = prepared.violations.to_dict("records")
    assert got[0] == {"column": column, "row": row, "case_id": case_id(KEY, f"P-{row - 1}"),
                      "problem": problem, "rule": rule}
    if column == "ct_date":   # the reference broken: its date has no offset, also listed
        assert got[1]["column"] == "diagnosis_date"
        assert got[1]["problem"] == "no valid reference date in ct_date"
    else:
        assert len(got) == 1
    written = ("diagnosis_date_days_from_ct_date" if column.endswith("_date") else column)
    assert pd.isna(prepared.table[written].iloc[row - 2])      # the broken value is left empty
    assert prepared.table[written].drop(index=row - 2).notna().all()
    assert "Turing" not in prepared.violations.to_csv()         # text never repeated


def test_a_number_in_a_date_column_is_a_violation(tmp_path) -> None:
    # a spreadsheet cell not formatted as a date: a serial number or 20230519, never guessed
    table = pd.DataFrame(_with(diagnosis_date=[dt.datetime(2023, 4, 2), 45065, "2023-06-09"]))
    prepared = prepare_clinical(table, "pid", _dictionary(tmp_path), KEY)
    assert prepared.violations[["column", "row", "problem"]].values.tolist() == [
        ["diagnosis_date", 3, "a number, not a date (a date cell or YYYY-MM-DD text)"]]
    assert prepared.table["diagnosis_date_days_from_ct_date"].tolist()[::2] == [-10, -24]


def test_empty_cells_are_missing_values_not_violations(tmp_path) -> None:
    rows = _with(age=[61, None, 55], sex=["F", "", "F"], diagnosis_date=["2023-04-02", "", ""])
    prepared = prepare_clinical(_csv(tmp_path, rows), "pid", _dictionary(tmp_path), KEY)
    assert prepared.violations.empty
    assert prepared.table["age"].isna().tolist() == [False, True, False]


def test_a_date_format_reads_day_first_dates(tmp_path) -> None:
    text = DICTIONARY.replace("reference_date: ct_date}", 'reference_date: ct_date, '
                                                          'format: "%d.%m.%Y"}')
    rows = _with(diagnosis_date=["02.04.2023", "19.05.2023", "2023-06-09"])
    prepared = prepare_clinical(_csv(tmp_path, rows), "pid", _dictionary(tmp_path, text), KEY)
    assert prepared.table["diagnosis_date_days_from_ct_date"].tolist()[:2] == [-10, 0]
    assert prepared.violations["problem"].tolist() == ["text that is not a date (format "
                                                       "%d.%m.%Y)"]


def _merge_inputs(tmp_path, rows: dict, dictionary: str = DICTIONARY):
    """Two imaged cases (P-1, P-2) with features, the clinical table and its dictionary."""
    feats, stats = [], []
    for i, pid in enumerate(("P-1", "P-2")):
        f, s = tmp_path / f"p{i}.parquet", tmp_path / f"p{i}.json"
        write_parquet(f, pd.DataFrame({
            "case_id": case_id(KEY, pid), "image_key": "s1", "mask_key": "s2",
            "pair_id": f"p{i}", "roi": "lesion", "label": 1, "image_type": "original",
            "feature_class": "firstorder", "feature": ["Mean"], "ibsi_code": "",
            "value": [1.0 + i], **{c: "x" for c in (
                "radflow_version", "pyradiomics_dist", "pyradiomics_version",
                "simpleitk_version", "numpy_version", "params_hash", "params_set",
                "normalisation", "qc", "image_hash", "mask_hash")}}))
        write_json(s, {"unit": f"p{i}", "n_pairs": 1, "pairs": [{"pair_id": f"p{i}",
                                                                 "status": "ok"}]})
        feats.append(str(f))
        stats.append(str(s))
    write_tsv(tmp_path / "series.tsv", pd.DataFrame({"status": ["ok"]}))
    write_tsv(tmp_path / "pairs.tsv", pd.DataFrame({"status": ["ok", "ok"]}))
    (tmp_path / "key").write_bytes(KEY)
    pd.DataFrame(rows).to_csv(tmp_path / "clinical.csv", index=False)
    (tmp_path / "dictionary.yaml").write_text(dictionary)
    out = tmp_path / "out"
    return dict(feature_files=feats, status_files=stats, pairs_tsv=str(tmp_path / "pairs.tsv"),
                series_tsv=str(tmp_path / "series.tsv"), sidecars=[],
                clinical=ClinicalInput(str(tmp_path / "clinical.csv"), "pid", "",
                                       str(tmp_path / "dictionary.yaml")),
                key_file=str(tmp_path / "key"), settings=MergeSettings(max_unmatched_fraction=0),
                out=MergeOutputs(*(str(out / n) for n in (
                    "features.parquet", "features_wide.csv", "dataset.parquet", "dataset.csv",
                    "landmarks.tsv", "curves.parquet", "clinical_columns.tsv"))))


def _qc(kw: dict) -> QcOutputs:
    out = QcOutputs(*(kw["out"].dataset_csv.replace("dataset.csv", n) for n in (
        "clinical_join_report.tsv", "run_summary.tsv", "clinical_violations.tsv")))
    run_qc(**{k: v for k, v in kw.items() if k != "out"}, out=out)
    return out


def test_merge_writes_the_dataset_the_record_and_the_reports(tmp_path) -> None:
    kw = _merge_inputs(tmp_path, ROWS)
    qc = _qc(kw)
    run_merge(strict=False, **kw)
    dataset = pd.read_csv(kw["out"].dataset_csv)
    clinical = ["age", "sex", "stage", "diagnosis_date_days_from_ct_date", "os_months", "dead",
                "response"]
    assert [c for c in dataset.columns if c in ROWS or c.startswith("diagnosis")] == clinical
    assert not {"pid", "name", "ct_date", "ward", "comment", "diagnosis_date"} & set(
        dataset.columns)
    record = read_clinical_columns(kw["out"].clinical_columns)
    assert tuple(record.columns) == CLINICAL_COLUMNS and list(record["column"]) == clinical
    tte = record.set_index("column").loc["os_months"]
    assert (tte["type"], tte["unit"], tte["event"]) == ("time-to-event", "months", "dead")
    date = record.set_index("column").loc["diagnosis_date_days_from_ct_date"]
    assert (date["source"], date["unit"], date["reference"]) == ("diagnosis_date", "days",
                                                                 "ct_date")
    assert json.loads(record.set_index("column").loc["stage", "levels"]) == [1, 2, 3, 4]
    assert record.set_index("column").loc["response", "positive"] == "CR"
    report = pd.read_csv(qc.join_report, sep="\t", keep_default_na=False)
    assert sorted(report.loc[report["kind"].isin(COLUMN_KINDS), "detail"].str.split(":").str[0]
                  ) == ["comment", "ct_date", "name", "ward"]
    assert pd.read_csv(qc.violations, sep="\t").empty


def test_strict_makes_a_violation_fatal_naming_column_and_row(tmp_path) -> None:
    kw = _merge_inputs(tmp_path, _with(age=[61, 70, "n/k"]))
    qc = _qc(kw)      # the qc rule never fails on the data: the table is there to read
    violations = pd.read_csv(qc.violations, sep="\t")
    assert violations[["column", "row", "problem"]].values.tolist() == [
        ["age", 4, "non-numeric text"]]
    run_merge(strict=False, **kw)   # not strict: the value is left empty
    assert pd.read_csv(kw["out"].dataset_csv)["age"].notna().all()  # P-3 has no images
    with pytest.raises(MergeError, match=r"1 clinical value\(s\) break the data dictionary: "
                                         r"age row 4: non-numeric text \(numeric\)"):
        run_merge(strict=True, **kw)
    kw = _merge_inputs(tmp_path, _with(age=[61, 70, "n/k"]), "strict: true\n" + DICTIONARY)
    with pytest.raises(MergeError, match=r"age row 4"):
        run_merge(strict=False, **kw)


# --- dates -------------------------------------------------------------------------------------

def test_dates_become_the_same_offsets_with_and_without_the_deid_shift(tmp_path) -> None:
    table, d = _csv(tmp_path), _dictionary(tmp_path)
    plain = prepare_clinical(table, "pid", d, KEY)
    shifted = prepare_clinical(table, "pid", d, KEY, date_shift_max_days=365)
    pd.testing.assert_frame_equal(plain.table, shifted.table)
    # and the shift is the DICOM's: each date moves by its patient's keyed shift
    dates = [dt.date(2023, 4, 12), None, dt.date(2023, 7, 3)]
    cids = [case_id(KEY, p) for p in ROWS["pid"]]
    moved = shift_dates(dates, cids, KEY, 365)
    assert moved[1] is None
    for before, after, cid in zip(dates, moved, cids, strict=True):
        if before is not None:
            assert after is not None
            assert (after - before).days == date_shift_days(KEY, cid, 365) < 0
    assert shift_dates(dates, cids, KEY, 0) == dates


def test_xlsx_with_date_cells_gives_the_csv_result(tmp_path) -> None:
    rows = _with(ct_date=[dt.datetime(2023, 4, 12), dt.datetime(2023, 5, 19),
                          dt.datetime(2023, 7, 3, 14, 30)],
                 diagnosis_date=[dt.datetime(2023, 4, 2), "2023-05-19", dt.date(2023, 6, 9)])
    xlsx = tmp_path / "clinical.xlsx"
    pd.DataFrame(rows).to_excel(xlsx, index=False, sheet_name="registry")
    from_xlsx = prepare_clinical(read_clinical(xlsx, "pid", "registry"), "pid",
                                 _dictionary(tmp_path), KEY)
    from_csv = prepare_clinical(_csv(tmp_path), "pid", _dictionary(tmp_path), KEY)
    assert from_xlsx.violations.empty
    pd.testing.assert_frame_equal(from_xlsx.table, from_csv.table)


# --- the demo ----------------------------------------------------------------------------------

def test_the_demo_dictionary_keeps_the_planted_identifiers_out(tmp_path) -> None:
    demo = make_demo_cohort(tmp_path / "demo", n_patients=4)
    table = read_clinical(demo.clinical, "patient_id")
    assert {"name", "birth_date", "notes"} <= set(table.columns)
    prepared = prepare_clinical(table, "patient_id",
                                load_dictionary(demo.clinical_dictionary, "patient_id"), KEY)
    assert list(prepared.table.columns) == [
        "patient_id", "age", "sex", "diagnosis_date_days_from_ct_date", "outcome",
        "followup_months", "event"]
    assert prepared.violations.empty
    written = prepared.table.drop(columns="patient_id").to_csv()
    planted = [v for v in demo.planted_phi if v not in table["patient_id"].tolist()]
    assert not [v for v in planted if v.lower() in written.lower()]
    assert "Harbour Lane" not in written and not any(f"{y}-" in written for y in range(1940, 2030))
    offsets = prepared.table["diagnosis_date_days_from_ct_date"].tolist()
    assert all(o < 0 for o in offsets) and len(set(offsets)) > 3
