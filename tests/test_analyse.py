"""The analysis stage (radflow.analyse): redundancy, associations, export, baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from radflow.analyse import AnalyseOutputs, analyse, run_analyse
from radflow.analyse.associations import continuous_rows, survival_rows
from radflow.analyse.export import split_subjects, subject_strata
from radflow.analyse.rows import feature_columns, select_rows
from radflow.analyse.settings import (
    AnalyseSettings,
    Outcome,
    outcome_frame,
    outcomes_from_dictionary,
    settings_from,
)
from radflow.analyse.survival import harrell_c, penalised_cox
from radflow.errors import AnalysisError, ConfigError
from radflow.merge import KEY_COLUMNS, PROVENANCE_COLUMNS
from radflow.records.agreement import write_reliable_features
from radflow.records.protocol import DATASET_COLUMNS

VOLUME = "original_shape_VoxelVolume"
COPY = "original_shape_MeshVolume"
AXIS = "original_shape_MajorAxisLength"
SIZE = {VOLUME, COPY, AXIS}
RANDOM = [f"original_firstorder_Random{i:02d}" for i in range(20)]
CONSTANT = "original_firstorder_Constant"
WITH_NAN = "original_firstorder_WithNaN"
FEATURES = [VOLUME, COPY, AXIS, *RANDOM, CONSTANT, WITH_NAN]
OUTCOMES = ({"name": "response", "type": "binary", "column": "response"},
            {"name": "os", "type": "time-to-event", "time": "os_months", "event": "os_event"},
            {"name": "marker", "type": "continuous", "column": "marker"})


def synthetic_dataset(n: int = 80, seed: int = 7, lesions: int = 1) -> pd.DataFrame:
    """A merged dataset: a volume feature, a near-copy, a length (cube root of the volume with
    noise), 20 random features, a constant and a feature with a missing value; a binary
    outcome (volume above its median, with noise), a survival outcome whose hazard grows with
    volume, a continuous marker following volume.
    With ``lesions`` > 1 every third subject has that many lesions (the first the largest)."""
    rng = np.random.default_rng(seed)
    log_volume = rng.normal(8.0, 1.0, n)
    noisy = log_volume + rng.normal(0.0, 0.3, n)
    response = (noisy > np.median(noisy)).astype(int)
    hazard = np.exp(1.0 * (log_volume - 8.0))
    event_time = rng.exponential(24.0 / hazard)
    censor = rng.uniform(6.0, 60.0, n)
    rows = []
    for s in range(n):
        count = lesions if lesions > 1 and s % 3 == 0 else 1
        for k in range(count):
            volume = float(np.exp(log_volume[s])) / (1 + k)
            row = {"case_id": f"c{s:03d}", "image_key": f"i{s:03d}", "mask_key": f"m{s:03d}",
                   "pair_id": f"p{s:03d}-{k}", "roi": "GTV", "label": k + 1}
            row |= dict.fromkeys(PROVENANCE_COLUMNS, "x")
            row |= {"protocol": "", "protocol_status": "off", "protocol_failed": ""}
            row |= {"age": 60 + s % 20, "response": response[s],
                    "os_months": round(min(event_time[s], censor[s]), 2),
                    "os_event": int(event_time[s] <= censor[s]),
                    "marker": log_volume[s] + rng.normal(0.0, 0.5)}
            row |= {VOLUME: volume, COPY: volume * rng.uniform(0.97, 1.03),
                    AXIS: volume ** (1 / 3) * rng.uniform(0.97, 1.03),
                    **{f: rng.normal() for f in RANDOM}, CONSTANT: 5.0,
                    WITH_NAN: np.nan if s == 3 else rng.normal()}
            rows.append(row)
    return pd.DataFrame(rows)


def settings(**changes: object) -> AnalyseSettings:
    return settings_from({"outcomes": [dict(o) for o in OUTCOMES],
                          "bootstrap_resamples": 500} | changes)


@pytest.fixture(scope="module")
def result():
    return analyse(synthetic_dataset(), FEATURES, None, settings())


def test_volume_features_rank_top_and_random_features_do_not_pass_fdr(result):
    assoc = result.associations
    auc = assoc[assoc["statistic"] == "auc"].set_index("feature")
    assert set(auc.index[auc["rank"] <= 3]) == SIZE
    for feature in SIZE:
        assert auc.at[feature, "estimate"] > 0.9
        assert auc.at[feature, "q"] < 0.05
        assert auc.at[feature, "ci_low"] < auc.at[feature, "estimate"] < auc.at[feature,
                                                                                   "ci_high"]
    assert (auc.loc[RANDOM, "q"] >= 0.05).all()
    # Over 60 seeds of this cohort the size features ranked first with q < 0.05 (and AUC > 0.9)
    # every time. BH bounds the expected share of false discoveries, not the chance of one:
    # some random feature reached q < 0.05 in 8 of 60 seeds for the AUC (about 16 % expected
    # with three true discoveries and 20 null features), 4 for the Cox HR, 4 for the
    # median-split log-rank, 12 for Spearman. Hence at most one per statistic below.
    for statistic in ("cox_hr", "logrank", "spearman"):
        rows = assoc[assoc["statistic"] == statistic].set_index("feature")
        assert set(rows.index[rows["rank"] <= 3]) == SIZE, statistic
        assert (rows.loc[list(SIZE), "q"] < 0.05).all(), statistic
        assert (rows.loc[RANDOM, "q"] >= 0.05).sum() >= len(RANDOM) - 1, statistic
    hr = assoc[assoc["statistic"] == "cox_hr"].set_index("feature")
    assert hr.at[VOLUME, "estimate"] > 1.5


def test_auc_is_scikit_learns_and_q_is_benjamini_hochberg(result):
    from statsmodels.stats.multitest import multipletests

    data = synthetic_dataset()
    assoc = result.associations
    auc = assoc[assoc["statistic"] == "auc"].set_index("feature")
    for feature in (VOLUME, RANDOM[0]):
        assert auc.at[feature, "estimate"] == roc_auc_score(data["response"], data[feature])
    expected = multipletests(auc["p"].to_numpy(), method="fdr_bh")[1]
    np.testing.assert_allclose(auc["q"].to_numpy(), expected, rtol=0, atol=0)
    assert list(auc["rank"]) == list(range(1, len(auc) + 1))
    assert (auc["n"] == 80).all() and (auc["n_events"] == data["response"].sum()).all()


def test_spearman_row_is_scipys():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=30), rng.normal(size=30)
    row, = continuous_rows(x, y)
    expected = spearmanr(x, y)
    assert row["estimate"] == expected.statistic and row["p"] == expected.pvalue
    assert row["ci_low"] < row["estimate"] < row["ci_high"]


def test_redundancy_clusters_volume_with_its_copy(result):
    clusters = result.clusters.set_index("feature")
    assert clusters.at[VOLUME, "cluster"] == clusters.at[COPY, "cluster"]
    members = clusters[clusters["cluster"] == clusters.at[VOLUME, "cluster"]]
    assert set(members.index) == SIZE
    assert members["representative"].sum() == 1
    assert members["mean_abs_rho"].min() > 0.95
    random = clusters.loc[RANDOM]
    assert random["cluster"].is_unique and random["representative"].all()
    assert random["mean_abs_rho"].isna().all()


def test_constant_and_missing_features_are_excluded_with_a_note(result):
    clusters = result.clusters.set_index("feature")
    assert clusters.at[CONSTANT, "note"].startswith("constant")
    assert clusters.at[WITH_NAN, "note"] == "missing or infinite in 1 of 80 rows"
    assert pd.isna(clusters.at[CONSTANT, "cluster"])
    assert not clusters.loc[[CONSTANT, WITH_NAN], "representative"].any()
    assert not {CONSTANT, WITH_NAN} & set(result.associations["feature"])
    assert not {CONSTANT, WITH_NAN} & set(result.model_ready.columns)


def test_unreliable_features_leave_the_analysis():
    reliable = pd.DataFrame({"feature": FEATURES, "reliable": [f != RANDOM[0] for f in FEATURES],
                             "reason": ["" if f != RANDOM[0] else "perturbation:ntcv ICC(1,1) "
                                        "ci_low 0.5 < 0.75" for f in FEATURES]})
    out = analyse(synthetic_dataset(), FEATURES, reliable, settings(baseline=False))
    note = out.clusters.set_index("feature").at[RANDOM[0], "note"]
    assert note == "not reliable: perturbation:ntcv ICC(1,1) ci_low 0.5 < 0.75"
    assert RANDOM[0] not in set(out.associations["feature"]) | set(out.model_ready.columns)


# Freireich et al. (1963) 6-MP trial as in Gehan (1965): 21 patients on 6-MP, 21 on placebo.
GEHAN_TIME = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35,
              1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]
GEHAN_EVENT = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0] + [1] * 21
GEHAN_PLACEBO = [0] * 21 + [1] * 21
# A fixed continuous feature for the same 42 patients.
GEHAN_FEATURE = [2.21, 1.27, 2.53, 2.66, 0.63, 1.09, 2.09, 1.78, 1.99, 1.4, 2.62, 2.54, 2.05,
                 2.79, 2.33, 1.4, 2.26, 1.33, 2.61, 1.97, 1.87, 2.32, 3.66, 2.69, 2.5, 2.55,
                 3.17, 3.06, 3.09, 3.1, 4.3, 2.52, 2.44, 2.23, 3.23, 3.59, 2.72, 2.21, 2.22,
                 3.26, 3.32, 3.18]
# lifelines 0.30.3 on this table: CoxPHFitter().fit on the feature standardised with ddof 1
# (exp(coef), its 95 % bounds, p), concordance_index(time, -feature, event) and
# logrank_test at the median split (statistic, p).
LIFELINES = {
    "placebo": (2.2157497114237774, 1.4718948993870435, 3.3355280908433653,
                0.00013775402177753523, 0.6900420757363254, 16.792940989216543,
                4.168809109334522e-05),
    "feature": (1.4692211700923834, 1.0026013414837072, 2.15301013207622,
                0.04846265507078326, 0.6100981767180925, 2.1283184027185422,
                0.1445993135080085),
}


def _survival(x: list[float]) -> dict[str, dict[str, object]]:
    rows = survival_rows(np.array(x, float), np.array(GEHAN_TIME, float),
                         np.array(GEHAN_EVENT))
    return {r["statistic"]: r for r in rows}


@pytest.mark.parametrize("name,column", [("placebo", GEHAN_PLACEBO),
                                         ("feature", GEHAN_FEATURE)])
def test_survival_statistics_equal_lifelines_on_a_fixed_table(name, column):
    hr, low, high, p, c, chi2, p_logrank = LIFELINES[name]
    rows = _survival(column)
    # lifelines stops its Newton steps with a score of ~3e-6 left (radflow's optimum: 2e-16),
    # so the hazard ratios agree to ~1.4e-7, and p, which turns a relative error of z into
    # one z² (15 here) times larger, to ~2e-6
    np.testing.assert_allclose([rows["cox_hr"][k] for k in ("estimate", "ci_low", "ci_high")],
                               [hr, low, high], rtol=1e-6)
    assert rows["cox_hr"]["p"] == pytest.approx(p, rel=1e-5)
    assert rows["c_index"]["estimate"] == pytest.approx(c, abs=1e-15)
    np.testing.assert_allclose([rows["logrank"]["estimate"], rows["logrank"]["p"]],
                               [chi2, p_logrank], rtol=1e-9)
    assert rows["cox_hr"]["n_events"] == 30


def test_survival_statistics_match_the_textbook():
    # Gehan data, Efron ties (R coxph): coef 1.572, se 0.412; log-rank chi2 16.8, p 4.2e-5
    rows = _survival(GEHAN_PLACEBO)
    sd = np.std(GEHAN_PLACEBO, ddof=1)
    assert np.log(rows["cox_hr"]["estimate"]) / sd == pytest.approx(1.572, abs=5e-4)
    assert rows["logrank"]["estimate"] == pytest.approx(16.79, abs=5e-3)


# lifelines 0.30 (not a radflow dependency: it requires pandas < 3) warns on pandas 3
@pytest.mark.filterwarnings("ignore:Starting with pandas version 4.0")
def test_survival_statistics_equal_lifelines_live():
    lifelines = pytest.importorskip("lifelines")
    from lifelines.statistics import logrank_test
    from lifelines.utils import concordance_index

    t, e = np.array(GEHAN_TIME, float), np.array(GEHAN_EVENT)
    x = np.array(GEHAN_FEATURE)
    z = (x - x.mean()) / x.std(ddof=1)
    fit = lifelines.CoxPHFitter().fit(pd.DataFrame({"z": z, "T": t, "E": e}), "T", "E")
    summary = fit.summary.loc["z"]
    rows = _survival(GEHAN_FEATURE)
    np.testing.assert_allclose(
        [rows["cox_hr"]["estimate"], rows["cox_hr"]["ci_low"], rows["cox_hr"]["ci_high"]],
        summary[["exp(coef)", "exp(coef) lower 95%", "exp(coef) upper 95%"]].to_numpy(
            dtype=float), rtol=1e-6)
    assert rows["cox_hr"]["p"] == pytest.approx(summary["p"], rel=1e-5)
    assert rows["c_index"]["estimate"] == pytest.approx(concordance_index(t, -x, e), abs=1e-15)
    high = x > np.median(x)
    reference = logrank_test(t[high], t[~high], e[high], e[~high])
    assert rows["logrank"]["p"] == pytest.approx(reference.p_value, rel=1e-9)


def test_a_cox_fit_without_finite_optimum_is_a_note_not_a_number():
    time = np.arange(1.0, 11.0)
    rows = {r["statistic"]: r for r in survival_rows(-time, time, np.ones(10, dtype=int))}
    assert np.isnan(rows["cox_hr"]["estimate"]) and np.isnan(rows["cox_hr"]["p"])
    assert rows["cox_hr"]["note"].startswith("Cox fit did not converge")
    assert rows["c_index"]["estimate"] == 1.0


def test_harrell_c_counts_pairs_as_harrell():
    # subjects (time, event, risk); comparable pairs: (a,b) (a,c) (a,d) (b,d) and (c,d): c's
    # event at d's censoring time; b and c tie in time with two events: not comparable
    time = np.array([1.0, 2.0, 2.0, 2.0, 3.0])
    event = np.array([1, 1, 1, 0, 0])
    risk = np.array([5.0, 1.0, 3.0, 3.0, 0.0])
    # a: > b, c, d, e (4 concordant); b: < d, e -> d discordant, e concordant;
    # c: = d (tie, 0.5), > e (concordant)
    assert harrell_c(time, event, risk) == pytest.approx((4 + 1 + 0.5 + 1) / 8)
    assert np.isnan(harrell_c(time, np.zeros(5), risk))


def test_penalised_cox_l2_reaches_statsmodels_optimum():
    from statsmodels.duration.hazard_regression import PHReg

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4))
    t = rng.exponential(np.exp(-x[:, 0]))
    e = (rng.random(40) < 0.7).astype(int)
    ours = penalised_cox(t, e, x, 0.1, "l2")
    reference = PHReg(t, x, status=e, ties="efron").fit_regularized(alpha=0.1, L1_wt=0.0)
    np.testing.assert_allclose(ours, reference.params, atol=1e-4)


def _lesion_export():
    data = synthetic_dataset(n=60, lesions=3)
    return data, analyse(data, FEATURES, None, settings(lesions="per-lesion"))


def test_split_is_stratified_and_never_splits_a_subject():
    data, out = _lesion_export()
    export = out.model_ready
    assert len(export) == len(data)
    assert (export.groupby("case_id")["split"].nunique() == 1).all()
    subjects = export.drop_duplicates("case_id")
    test = subjects[subjects["split"] == "test"]
    assert len(test) == 18  # ceil(0.3 * 60)
    # the classes of the stratifying outcome are shared in proportion (+- one subject)
    expected = subjects["response"].mean() * len(test)
    assert abs(test["response"].sum() - expected) <= 1


def test_split_is_seeded():
    strata = pd.Series(["a", "b"] * 20, index=[f"c{i:02d}" for i in range(40)])
    one = split_subjects(strata, 0.25, seed=1)
    assert one.equals(split_subjects(strata, 0.25, seed=1))
    assert not one.equals(split_subjects(strata, 0.25, seed=2))


def test_single_subject_strata_are_pooled():
    rows = pd.DataFrame({"case_id": ["a", "b", "c", "d", "e"]})
    outcomes = pd.DataFrame({"response": pd.array([1, 1, 0, 0, pd.NA], dtype="Int64")})
    labels = subject_strata(rows, outcomes, Outcome("response", "binary", column="response"))
    assert labels.value_counts().min() >= 2


def test_largest_lesion_per_subject():
    data = synthetic_dataset(n=30, lesions=3)
    rows = select_rows(data.iloc[::-1], settings(), one_per_subject=True)
    assert rows["case_id"].is_unique and len(rows) == 30
    largest = data.sort_values(VOLUME).drop_duplicates("case_id", keep="last")
    assert sorted(rows["pair_id"]) == sorted(largest["pair_id"])


def test_standardisation_is_fitted_on_training_rows_only(result):
    export, scaling = result.model_ready, result.standardisation.set_index("feature")
    train = export[export["split"] == "train"]
    features = list(scaling.index)
    assert features == [c for c in export.columns if c in FEATURES]
    standardised = (train[features] - scaling["mean"]) / scaling["sd"]
    np.testing.assert_allclose(standardised.mean(), 0, atol=1e-12)
    np.testing.assert_allclose(standardised.std(ddof=0), 1, rtol=1e-12)
    assert (scaling["n_train"] == len(train)).all()
    assert not np.allclose(scaling["mean"], export[features].mean(), rtol=1e-3)
    # the export holds raw values
    data = synthetic_dataset().set_index("pair_id")
    np.testing.assert_array_equal(export[VOLUME], data.loc[export["pair_id"], VOLUME])


def test_export_columns(result):
    export = result.model_ready
    assert list(export.columns[:8]) == ["case_id", "pair_id", "image_key", "roi", "label",
                                        "split", "response", "os_time"]
    assert list(export.columns[8:10]) == ["os_event", "marker"]
    assert export["response"].dtype == "Int64" and set(export["response"]) == {0, 1}
    assert export["case_id"].is_monotonic_increasing


def test_representatives_only_export():
    out = analyse(synthetic_dataset(), FEATURES, None,
                  settings(export_features="representatives", baseline=False))
    assert len(SIZE & set(out.model_ready.columns)) == 1


def test_baseline_table(result):
    baseline = result.baseline.set_index("outcome")
    assert list(baseline.index) == ["response", "os"]
    assert list(baseline["metric"]) == ["cv_auc", "cv_c_index"]
    assert list(baseline["model"]) == ["logistic-l2", "cox-l2"]
    assert (baseline["folds"] == 5).all()
    assert (baseline["n"] == (result.model_ready["split"] == "train").sum()).all()
    # every representative (one of the size cluster); the Cox model its 10 strongest
    assert list(baseline["n_features"]) == [len(RANDOM) + 1, 10]
    assert baseline["mean"].between(0, 1).all() and baseline["sd"].notna().all()


@pytest.mark.parametrize("penalty", ["l2", "l1"])
def test_baseline_finds_signal_and_no_signal_without_one(penalty):
    data = synthetic_dataset(n=80)
    # a length: linear models do well with it, less with a raw (skewed) volume
    few = [AXIS, *RANDOM[:4]]
    rng = np.random.default_rng(5)
    null = data.assign(response=rng.permutation(data["response"].to_numpy()),
                       os_months=rng.permutation(data["os_months"].to_numpy()))
    fast = settings(baseline_penalty=penalty, baseline_folds=3)
    found = analyse(data, few, None, fast).baseline
    none = analyse(null, few, None, fast).baseline
    assert list(found["model"]) == [f"logistic-{penalty}", f"cox-{penalty}"]
    assert found["mean"].iloc[0] > 0.85 and found["mean"].iloc[1] > 0.65
    # cross-validated scores of a null outcome scatter around (and tend to fall below) 0.5
    assert none["mean"].max() < 0.65


def test_run_analyse_writes_byte_identical_outputs(tmp_path):
    data = synthetic_dataset(n=40)
    merge = tmp_path / "merge"
    merge.mkdir()
    data.to_parquet(merge / "dataset.parquet", index=False)
    wide = [*KEY_COLUMNS, *PROVENANCE_COLUMNS, *DATASET_COLUMNS, *FEATURES]
    pd.DataFrame(columns=wide).to_csv(merge / "features_wide.csv", index=False)
    reliable = tmp_path / "reliable_features.tsv"
    write_reliable_features(reliable, pd.DataFrame({"feature": FEATURES, "reliable": True,
                                                    "reason": ""}))
    names = ["redundancy_clusters.tsv", "associations.tsv", "model_ready.parquet",
             "model_ready.csv", "standardisation.tsv", "baseline.tsv"]
    outputs = []
    for run in ("a", "b"):
        out = AnalyseOutputs(*[str(tmp_path / run / name) for name in names])
        run_analyse(dataset=str(merge / "dataset.parquet"),
                    features_wide=str(merge / "features_wide.csv"),
                    reliable_features=str(reliable), settings=settings(baseline_folds=3),
                    out=out)
        outputs.append([(tmp_path / run / name).read_bytes() for name in names])
    assert outputs[0] == outputs[1]
    back = pd.read_parquet(tmp_path / "a" / "model_ready.parquet")
    assert back.equals(pd.read_csv(tmp_path / "a" / "model_ready.csv",
                                   dtype={"case_id": "str", "pair_id": "str", "image_key": "str",
                                          "roi": "str", "split": "str"})
                       .astype({"response": "Int64", "os_event": "Int64"}))


def test_feature_columns_come_from_the_wide_header():
    dataset = [*KEY_COLUMNS, *PROVENANCE_COLUMNS, *DATASET_COLUMNS, "age", "tumour_size_cm",
               VOLUME, COPY]
    wide = [*KEY_COLUMNS, *PROVENANCE_COLUMNS, *DATASET_COLUMNS, VOLUME, COPY]
    assert feature_columns(dataset, wide) == [VOLUME, COPY]


def test_settings_and_outcome_errors():
    with pytest.raises(ConfigError, match="unknown setting"):
        settings_from({"outcomes": [{"name": "x", "type": "binary", "column": "x",
                                     "colum": "y"}]})
    with pytest.raises(ConfigError, match="time-to-event"):
        settings_from({"outcomes": [{"name": "os", "type": "time-to-event", "time": "t"}]})
    with pytest.raises(ConfigError, match="lesions"):
        settings_from({"lesions": "smallest"})
    data = synthetic_dataset(n=10).assign(response=[0, 1, 2] * 3 + [0])
    with pytest.raises(AnalysisError, match="at most two values"):
        outcome_frame(data, settings().outcomes)
    text = pd.DataFrame({"y": ["yes", "no", None]})
    with pytest.raises(AnalysisError, match="set 'positive'"):
        outcome_frame(text, (Outcome("y", "binary", column="y"),))
    coded = outcome_frame(text, (Outcome("y", "binary", column="y", positive="yes"),))
    assert list(coded["y"]) == [1, 0, pd.NA]
    with pytest.raises(ConfigError, match="no column"):
        outcome_frame(text, (Outcome("z", "continuous", column="z"),))
    with pytest.raises(ConfigError, match="clash"):
        analyse(synthetic_dataset(n=10), FEATURES, None,
                settings_from({"outcomes": [{"name": "split", "type": "binary",
                                             "column": "response"}]}))


def test_outcomes_from_the_clinical_dictionary():
    columns = pd.DataFrame({
        "column": ["age", "response", "os_months", "os_event", "grade", "ki67"],
        "type": ["numeric", "binary-outcome", "time-to-event", "event-indicator", "ordinal",
                 "numeric"],
        "role": ["covariate", "outcome", "outcome", "outcome", "outcome", "outcome"],
        "event": ["", "", "os_event", "", "", ""]})
    assert outcomes_from_dictionary(columns) == (
        Outcome("response", "binary", column="response", positive="1"),
        Outcome("os_months", "time-to-event", time="os_months", event="os_event"),
        Outcome("ki67", "continuous", column="ki67"))
