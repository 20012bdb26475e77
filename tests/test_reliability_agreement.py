"""Agreement statistics (ICC, CCC) and the reliable-feature list (radflow.reliability)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin
import pytest

from radflow.errors import AgreementError, ConfigError, InputFileError
from radflow.records.agreement import (
    AGREEMENT_COLUMNS,
    read_agreement,
    read_reliable_features,
    write_agreement,
    write_reliable_features,
)
from radflow.reliability import stats
from radflow.reliability.agreement import (
    AgreementDesign,
    agreement_table,
    label_retest,
    parse_source,
    rater_matrix,
)
from radflow.reliability.reliable import ReliableRule, reliable_features, reliable_list
from radflow.settings import from_mapping

# pingouin 0.7 (the reference) calls DataFrame.dropna(inplace=True), deprecated in pandas 3.1
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.dropna")

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
                          [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float)
# Their Table 4: ICC(1,1) = .17, ICC(2,1) = .29, ICC(3,1) = .71.
SHROUT_FLEISS_ICC = {"ICC(1,1)": 0.17, "ICC(2,1)": 0.29, "ICC(3,1)": 0.71}
# pingouin's names (McGraw & Wong 1996) of the Shrout & Fleiss forms.
PINGOUIN_TYPE = {"ICC(1,1)": "ICC(1,1)", "ICC(2,1)": "ICC(A,1)", "ICC(3,1)": "ICC(C,1)"}


def long_table(ratings: np.ndarray, source: str, names: list[str] | None = None) -> pd.DataFrame:
    """A long feature table of ``ratings`` (F, n, k): source ``<source>:<j>`` for rater j."""
    n_features, n_subjects, k = ratings.shape
    names = names or [f"F{i}" for i in range(n_features)]
    rows = [{"pair_id": f"p{s:02d}", "case_id": f"c{s:02d}", "roi": "GTV",
             "source": f"{source}:{r}", "image_type": "original", "feature_class": "firstorder",
             "feature": names[f], "value": ratings[f, s, r]}
            for s in range(n_subjects) for r in range(k) for f in range(n_features)]
    return pd.DataFrame(rows)


def pingouin_icc(matrix: np.ndarray, form: str) -> tuple[float, float, float]:
    """ICC and unrounded 95 % bounds from pingouin for one (n, k) matrix (NaN rows omitted)."""
    n, k = matrix.shape
    data = pd.DataFrame({"t": np.repeat(np.arange(n), k), "r": np.tile(np.arange(k), n),
                         "v": matrix.ravel()})
    old = pingouin.options.get("round.column.CI95")
    pingouin.options["round.column.CI95"] = None
    try:
        table = pingouin.intraclass_corr(data, "t", "r", "v", nan_policy="omit")
    finally:
        pingouin.options["round.column.CI95"] = old
    row = table.set_index("Type").loc[PINGOUIN_TYPE[form]]
    return float(row["ICC"]), float(row["CI95"][0]), float(row["CI95"][1])


# --- ICC -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", list(SHROUT_FLEISS_ICC))
def test_icc_shrout_fleiss_worked_example(form: str) -> None:
    est = stats.icc(SHROUT_FLEISS[None], form)
    assert round(float(est.value[0]), 2) == SHROUT_FLEISS_ICC[form]
    assert est.ci_low[0] < est.value[0] < est.ci_high[0]


def test_agreement_table_shrout_fleiss_per_design() -> None:
    # judges as perturbations -> ICC(1,1); judges as four sessions -> ICC(2,1), ICC(3,1), no CCC
    table = pd.concat([long_table(SHROUT_FLEISS[None], "perturbation:judges"),
                       long_table(SHROUT_FLEISS[None], "retest")], ignore_index=True)
    out = agreement_table(table)
    got = {(r.source, r.statistic): round(r.value, 2) for r in out.itertuples()}
    assert got == {("perturbation:judges", "ICC(1,1)"): 0.17, ("retest", "ICC(2,1)"): 0.29,
                   ("retest", "ICC(3,1)"): 0.71}
    assert set(out["n_subjects"]) == {6} and set(out["n_raters"]) == {4}


@pytest.mark.parametrize("k", [2, 5])
@pytest.mark.parametrize("form", list(PINGOUIN_TYPE))
def test_icc_equals_pingouin(form: str, k: int) -> None:
    rng = np.random.default_rng(7 + k)
    scale = rng.uniform(0.0, 3.0, size=(6, 1, 1))
    ratings = (rng.normal(size=(6, 15, 1)) * scale + rng.normal(size=(6, 1, k))
               + rng.normal(size=(6, 15, k)))
    ratings[2, 4, 1] = np.nan  # a missing rating: subject 4 left out of feature 2 only
    est = stats.icc(ratings, form)
    for f in range(ratings.shape[0]):
        ref = pingouin_icc(ratings[f], form)
        np.testing.assert_allclose([est.value[f], est.ci_low[f], est.ci_high[f]], ref,
                                   rtol=1e-10, atol=1e-12)
    assert est.n_subjects.tolist() == [15, 15, 14, 15, 15, 15]


def test_icc_intervals_cover_the_true_value() -> None:
    # 4,000 simulated features at once; the coverage of a 95 % interval has SE ~0.0035.
    rng = np.random.default_rng(2024)
    reps, n, k, sb, sr, sw = 4000, 40, 5, 1.0, 0.4, 0.5
    one_way = rng.normal(size=(reps, n, 1)) * sb + rng.normal(size=(reps, n, k)) * sw
    two_way = one_way + rng.normal(size=(reps, 1, k)) * sr
    truth = {"ICC(1,1)": (one_way, sb**2 / (sb**2 + sw**2)),
             "ICC(2,1)": (two_way, sb**2 / (sb**2 + sr**2 + sw**2)),
             "ICC(3,1)": (two_way, sb**2 / (sb**2 + sw**2))}
    for form, (ratings, true) in truth.items():
        est = stats.icc(ratings, form)
        coverage = np.mean((est.ci_low <= true) & (true <= est.ci_high))
        # ICC(2,1)'s interval is Satterthwaite's approximation (McGraw & Wong 1996): with five
        # random raters it is known to run a little below its nominal level (here ~0.934).
        low = 0.92 if form == "ICC(2,1)" else 0.935
        assert low <= coverage <= 0.965, (form, coverage)


def test_icc_constant_and_perfect_features() -> None:
    rng = np.random.default_rng(3)
    constant = np.full((10, 4), 2.5)
    perfect = np.repeat(rng.normal(size=(10, 1)), 4, axis=1)  # shape under intensity noise
    est = stats.icc(np.stack([constant, perfect]), "ICC(1,1)")
    assert np.isnan([est.value[0], est.ci_low[0], est.ci_high[0]]).all()
    assert est.flags[0] & stats.CONSTANT
    assert est.value[1] == 1.0 and est.ci_low[1] == 1.0 and est.ci_high[1] == 1.0
    assert est.flags[1] == 0


# --- CCC -----------------------------------------------------------------------------------------


def test_ccc_hand_computed_example() -> None:
    # x = 1,2,3,4; y = 2,3,3,5. Means 2.5, 3.25; variances (divisor n) 5/4, 19/16; covariance
    # 9/8; CCC = 2 (9/8) / (5/4 + 19/16 + (3/4)^2) = (9/4) / 3 = 0.75 (Pearson r = 0.923).
    est = stats.ccc(np.array([[1.0, 2, 3, 4]]), np.array([[2.0, 3, 3, 5]]))
    assert est.value[0] == pytest.approx(0.75, abs=1e-15)
    assert est.ci_low[0] < 0.75 < est.ci_high[0] <= 1.0
    # symmetric in its raters; never above |r|
    swapped = stats.ccc(np.array([[2.0, 3, 3, 5]]), np.array([[1.0, 2, 3, 4]]))
    np.testing.assert_allclose([swapped.value, swapped.ci_low, swapped.ci_high],
                               [est.value, est.ci_low, est.ci_high], rtol=1e-14)


def test_ccc_interval_covers_the_true_value() -> None:
    rng = np.random.default_rng(2024)
    reps, n, r, sx, sy, shift = 4000, 40, 0.8, 1.0, 1.2, 0.3
    cov = [[sx**2, r * sx * sy], [r * sx * sy, sy**2]]
    xy = rng.multivariate_normal([0.0, shift], cov, size=(reps, n))
    true = 2 * r * sx * sy / (sx**2 + sy**2 + shift**2)
    est = stats.ccc(xy[..., 0], xy[..., 1])
    coverage = np.mean((est.ci_low <= true) & (true <= est.ci_high))
    assert 0.935 <= coverage <= 0.965


def test_ccc_undefined_cases() -> None:
    est = stats.ccc(np.array([[1.0, 1, 1], [1.0, 2, 3], [1.0, 2, np.nan]]),
                    np.array([[1.0, 1, 1], [2.0, 2, 2], [1.0, 2, 3]]))
    assert np.isnan(est.value[0]) and est.flags[0] & stats.CONSTANT
    assert est.value[1] == 0.0 and np.isnan(est.ci_low[1])  # one rater constant: no interval
    assert est.value[2] == 1.0 and est.n_subjects[2] == 2 and np.isnan(est.ci_low[2])


# --- the agreement table and the reliable list ---------------------------------------------------


def synthetic_cohort(seed: int = 11) -> pd.DataFrame:
    """30 subjects × (original, 5 perturbations, a shuffled control, 2 repeat scans).

    ``Stable`` = subject effect + tiny noise; ``Noise`` = pure noise; ``Volume`` = constant.
    """
    rng = np.random.default_rng(seed)
    n = 30
    subject = rng.normal(size=n) * 10.0
    sources = ["original", *[f"perturbation:noise+rotation:{i}" for i in range(5)],
               "control:shuffled:roi"]
    rows = []
    for s in range(n):
        for source in sources:
            for name, value in (("Stable", subject[s] + rng.normal() * 0.1),
                                ("Noise", rng.normal()), ("Volume", 7.0)):
                rows.append({"pair_id": f"p{s:02d}", "case_id": f"c{s:02d}", "roi": "GTV",
                             "source": source, "image_type": "original",
                             "feature_class": "firstorder", "feature": name, "value": value})
    return pd.DataFrame(rows)


def test_synthetic_cohort_reliable_list() -> None:
    table = agreement_table(synthetic_cohort())
    assert tuple(table.columns) == AGREEMENT_COLUMNS
    ranked = table[table["source"] == "perturbation:noise+rotation"].set_index("feature")
    assert ranked.loc["original_firstorder_Stable", "ci_low"] >= 0.75
    assert ranked.loc["original_firstorder_Noise", "ci_high"] < 0.75
    assert "constant feature" in ranked.loc["original_firstorder_Volume", "note"]
    result = reliable_features(table)
    assert reliable_list(result) == ["original_firstorder_Stable"]
    reasons = result.set_index("feature")["reason"]
    assert reasons["original_firstorder_Noise"].startswith(
        "perturbation:noise+rotation ICC(1,1) ci_low ")
    assert "constant feature" in reasons["original_firstorder_Volume"]
    # the shuffled control agrees with the stable feature: reported, judged only on request
    strict = reliable_features(table, ReliableRule(control_max=0.9))
    assert reliable_list(strict) == []
    assert "control:shuffled:roi ICC(3,1)" in strict.set_index("feature").loc[
        "original_firstorder_Stable", "reason"]


def test_rule_over_perturbation_and_retest_sources() -> None:
    rng = np.random.default_rng(5)
    features = synthetic_cohort()
    originals = features[features["source"] == "original"]
    # repeat scans: Stable drifts a lot between sessions (unreliable test-retest), Noise is
    # pure noise at every session (identical sessions would be perfect agreement, ICC 1)
    scans = []
    for tp, drift in (("1", 0.0), ("2", 1.0)):
        scan = originals.assign(timepoint=tp, pair_id=originals["pair_id"] + f"-t{tp}")
        stable = scan["feature"] == "Stable"
        scan.loc[stable, "value"] += drift * rng.normal(size=stable.sum()) * 12.0
        noise = scan["feature"] == "Noise"
        scan.loc[noise, "value"] = rng.normal(size=noise.sum())
        scans.append(scan)
    retest = label_retest(pd.concat(scans, ignore_index=True))
    table = agreement_table(pd.concat([features, retest], ignore_index=True))
    stats_of = set(table.loc[table["source"] == "retest", "statistic"])
    assert stats_of == {"ICC(2,1)", "ICC(3,1)", "CCC"}
    assert reliable_list(reliable_features(table)) == []  # Stable fails test-retest
    anyone = reliable_features(table, ReliableRule(combine="any"))
    assert reliable_list(anyone) == ["original_firstorder_Stable"]
    only_perturbation = reliable_features(table, ReliableRule(sources=("perturbation",)))
    assert reliable_list(only_perturbation) == ["original_firstorder_Stable"]


def test_missing_repeat_is_dropped_and_counted() -> None:
    ratings = np.random.default_rng(1).normal(size=(2, 8, 2))
    features = long_table(ratings, "retest")
    gone = (features["case_id"] == "c03") & (features["source"] == "retest:1") & (
        features["feature"] == "F1")
    features = features[~gone]
    matrix = rater_matrix(label_retest(features.assign(timepoint=features["source"].str[7:])),
                          ("case_id", "roi"), "timepoint")
    assert matrix.features == ("original_firstorder_F0", "original_firstorder_F1")
    assert matrix.raters == ("0", "1") and matrix.dropped.tolist() == [0, 1]
    table = agreement_table(features).set_index(["feature", "statistic"])
    row = table.loc[("original_firstorder_F1", "ICC(2,1)")]
    assert row["n_subjects"] == 7 and row["note"] == "1 subject(s) without every rating left out"
    assert table.loc[("original_firstorder_F0", "ICC(2,1)"), "n_subjects"] == 8


def test_determinism_byte_identical_tables(tmp_path: Path) -> None:
    script = ("import sys\n"
              "from tests.test_reliability_agreement import synthetic_cohort\n"
              "from radflow.reliability.agreement import agreement_table\n"
              "from radflow.reliability.reliable import reliable_features\n"
              "from radflow.records.agreement import write_agreement, write_reliable_features\n"
              "t = agreement_table(synthetic_cohort())\n"
              "write_agreement(sys.argv[1] + '/agreement.tsv', t)\n"
              "write_reliable_features(sys.argv[1] + '/reliable.tsv', reliable_features(t))\n")
    repo = Path(__file__).resolve().parents[1]
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        out.mkdir()
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, cwd=repo,
                       env={**os.environ, "PYTHONHASHSEED": seed})
        outputs.append(((out / "agreement.tsv").read_bytes(), (out / "reliable.tsv").read_bytes()))
    assert outputs[0] == outputs[1]
    assert b"ICC(1,1)" in outputs[0][0]


def test_tables_round_trip(tmp_path: Path) -> None:
    table = agreement_table(synthetic_cohort())
    write_agreement(tmp_path / "agreement.tsv", table)
    back = read_agreement(tmp_path / "agreement.tsv")
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert back["value"].dtype == np.float64 and back["n_subjects"].dtype == np.int64
    result = reliable_features(table)
    write_reliable_features(tmp_path / "reliable.tsv", result)
    pd.testing.assert_frame_equal(read_reliable_features(tmp_path / "reliable.tsv"), result,
                                  check_dtype=False)
    (tmp_path / "other.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(InputFileError, match="not a radflow reliability table"):
        read_agreement(tmp_path / "other.tsv")


# --- inputs and rules that cannot work -----------------------------------------------------------


@pytest.mark.parametrize("text", ["perturbation:noise", "control:shuffled", "retest:", "raw",
                                  "original:1"])
def test_unknown_source_is_an_error(text: str) -> None:
    with pytest.raises(AgreementError, match="expected original"):
        parse_source(text)


def test_parse_source_groups() -> None:
    assert parse_source("perturbation:a:b:3").group == "perturbation:a:b"
    assert parse_source("perturbation:a:b:3").rater == "3"
    assert parse_source("retest:baseline").rater == "baseline"
    assert parse_source("control:shuffled:roi").group == "control:shuffled:roi"


def test_duplicate_rating_and_missing_original() -> None:
    features = synthetic_cohort()
    twice = pd.concat([features, features.iloc[[8]]], ignore_index=True)
    with pytest.raises(AgreementError, match="two values for subject p00") as err:
        agreement_table(twice)
    assert err.value.reason == "duplicate-rating"
    only_originals = agreement_table(features[features["source"] == "original"])
    assert only_originals.empty and tuple(only_originals.columns) == AGREEMENT_COLUMNS
    with pytest.raises(AgreementError, match="no 'original' rows"):
        agreement_table(features[features["source"] != "original"])
    with pytest.raises(AgreementError, match="lacks subject column"):
        agreement_table(features, AgreementDesign(subject_columns=("series_key",)))


def test_rule_settings() -> None:
    rule = from_mapping(ReliableRule, {"threshold": 0.9, "sources": ["retest"]},
                        section="reliability.rule")
    assert rule == ReliableRule(threshold=0.9, sources=("retest",))
    with pytest.raises(ConfigError, match=r"reliability\.rule\.bound"):
        ReliableRule(bound="upper")  # type: ignore[arg-type]
    with pytest.raises(AgreementError, match="sources must be"):
        ReliableRule(sources=("control",))
    table = agreement_table(synthetic_cohort())
    with pytest.raises(AgreementError, match="CCC is not computed"):
        reliable_features(table, ReliableRule(statistic="CCC"))
    with pytest.raises(AgreementError, match="has none"):
        reliable_features(table, ReliableRule(sources=("retest",)))
