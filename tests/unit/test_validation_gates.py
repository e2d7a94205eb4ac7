"""Each gate pinned against an oracle on the same data, and shown failing when it should."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    selection_rate,
)
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from charter.entities import FeatureSpec, FeatureType
from charter.errors import InvalidArgument
from charter.validation import gates as g
from charter.validation.policy import GATE_DEFAULTS, ProtectedAttribute

N = 2_000


def settings(gate: str, **over: Any) -> dict[str, Any]:
    s = dict(GATE_DEFAULTS[gate])
    s.update(over)
    return s


def frame(n: int = N, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "income": rng.normal(50.0, 10.0, n),
            "age": rng.integers(18, 80, n).astype(float),
            "sex": rng.choice(["male", "female"], n),
        }
    )
    logit = -1.0 - (x["income"] - 50) / 10 - (x["age"] - 45) / 25
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return x, y


SCHEMA = (
    FeatureSpec("income", FeatureType.NUMERIC, False, 0.0, 120.0),
    FeatureSpec("age", FeatureType.NUMERIC, True, 18.0, 79.0),
)


def context(
    model: Any,
    data: Mapping[str, tuple[pd.DataFrame, np.ndarray]],
    *,
    threshold: float = 0.3,
    features: tuple[FeatureSpec, ...] = SCHEMA,
) -> g.Context:
    names = [f.name for f in features]

    def score(f: pd.DataFrame) -> np.ndarray:
        return np.asarray(model.predict_proba(f[names])[:, 1], dtype=float)

    datasets = {
        name: g.Dataset(name, x, y, score(x), f"sha-{name}") for name, (x, y) in data.items()
    }
    return g.Context(features, threshold, score, datasets, candidate_family="linear")


@pytest.fixture(scope="module")
def fitted() -> tuple[LogisticRegression, pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    x, y = frame(seed=0)
    xh, yh = frame(seed=1)
    model = LogisticRegression().fit(x[["income", "age"]], y)
    return model, x, y, xh, yh


def test_performance_matches_sklearn_and_scipy(fitted: Any) -> None:
    model, _, _, xh, yh = fitted
    ctx = context(model, {"holdout": (xh, yh)})
    r = g.performance(ctx, settings("performance", datasets=["holdout"]))
    s = model.predict_proba(xh[["income", "age"]])[:, 1]
    m = r.evidence["metrics"]["holdout"]
    assert m["auc"] == pytest.approx(roc_auc_score(yh, s), abs=1e-12)
    assert m["gini"] == pytest.approx(2 * roc_auc_score(yh, s) - 1, abs=1e-12)
    assert m["ks"] == pytest.approx(stats.ks_2samp(s[yh == 1], s[yh == 0]).statistic, abs=1e-12)
    assert m["precision"] == pytest.approx(precision_score(yh, s >= 0.3), abs=1e-12)
    assert m["recall"] == pytest.approx(recall_score(yh, s >= 0.3), abs=1e-12)
    assert r.passed, r.summary
    assert r.warnings == ("no champion to compare with (first version in service?)",)


def test_performance_fails_below_the_floor_and_names_it(fitted: Any) -> None:
    model, _, _, xh, yh = fitted
    ctx = context(model, {"holdout": (xh, yh)})
    r = g.performance(ctx, settings("performance", datasets=["holdout"], min_auc=0.99))
    assert not r.passed
    assert [c.name for c in r.failed] == ["AUC"]
    assert "AUC on holdout" in r.summary and ">= 0.99" in r.summary


def test_performance_against_the_champion_uses_delong(fitted: Any) -> None:
    model, x, y, xh, yh = fitted
    weak = LogisticRegression().fit(x[["age"]], y)
    ctx = context(model, {"holdout": (xh, yh)})
    ctx.champion = (1, lambda f: weak.predict_proba(f[["age"]])[:, 1])
    r = g.performance(ctx, settings("performance", datasets=["holdout"]))
    champ = r.evidence["champion"]["holdout"]
    assert champ["auc_a"] == pytest.approx(
        roc_auc_score(yh, weak.predict_proba(xh[["age"]])[:, 1]), abs=1e-12
    )
    assert champ["difference"] > 0.05 and champ["p_value"] < 1e-6
    assert r.passed
    # The other way round: the weak model as candidate trails the champion and fails.
    ctx2 = context(weak, {"holdout": (xh, yh)}, features=(SCHEMA[1],))
    ctx2.champion = (1, lambda f: model.predict_proba(f[["income", "age"]])[:, 1])
    r2 = g.performance(ctx2, settings("performance", datasets=["holdout"], min_auc=0.5, min_ks=0.0))
    assert [c.name for c in r2.failed] == ["AUC minus champion's"]


def test_calibration_matches_sklearn_and_flags_a_miscalibrated_model(fitted: Any) -> None:
    model, _, _, xh, yh = fitted
    ctx = context(model, {"holdout": (xh, yh)})
    r = g.calibration(ctx, settings("calibration"))
    s = model.predict_proba(xh[["income", "age"]])[:, 1]
    observed, predicted = calibration_curve(yh, s, n_bins=10, strategy="uniform")
    table = r.evidence["reliability"]
    got_obs = [v for v in table["observed_rate"] if v is not None]
    got_pred = [v for v in table["mean_predicted"] if v is not None]
    np.testing.assert_allclose(got_obs, observed, atol=1e-12)
    np.testing.assert_allclose(got_pred, predicted, atol=1e-12)
    assert r.passed, r.summary

    class Squashed:  # the same ranking, probabilities pushed towards 0: badly calibrated
        def predict_proba(self, f: pd.DataFrame) -> np.ndarray:
            p = model.predict_proba(f)[:, 1] ** 3
            return np.column_stack([1 - p, p])

    bad = g.calibration(context(Squashed(), {"holdout": (xh, yh)}), settings("calibration"))
    assert not bad.passed
    assert {c.name for c in bad.failed} == {
        "expected calibration error",
        "Hosmer-Lemeshow p-value",
    }


def test_fairness_equals_fairlearn_on_approvals(fitted: Any) -> None:
    model, _, _, xh, yh = fitted
    ctx = context(model, {"holdout": (xh, yh)})
    attr = ProtectedAttribute("sex", "sex")
    r = g.fairness(ctx, settings("fairness"), [attr])
    s = model.predict_proba(xh[["income", "age"]])[:, 1]
    approved = (s < 0.3).astype(int)
    good = 1 - yh
    e = r.evidence["attributes"]["sex"]
    assert e["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(good, approved, sensitive_features=xh["sex"]), abs=1e-12
    )
    assert e["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(good, approved, sensitive_features=xh["sex"]), abs=1e-12
    )
    rates = MetricFrame(
        metrics=selection_rate, y_true=good, y_pred=approved, sensitive_features=xh["sex"]
    ).by_group
    assert e["disparate_impact_ratio"] == pytest.approx(rates.min() / rates.max(), abs=1e-12)
    by_group = {row["group"]: row["approval_rate"] for row in e["groups"]}
    assert by_group == pytest.approx(rates.to_dict(), abs=1e-12)
    assert r.passed, r.summary  # sex plays no part in the data or the model


def test_four_fifths_rule_fails_a_model_that_uses_a_protected_attribute() -> None:
    rng = np.random.default_rng(7)
    n = 3_000
    x = pd.DataFrame(
        {"income": rng.normal(50, 10, n), "female": rng.integers(0, 2, n).astype(float)}
    )
    logit = -1.5 - (x["income"] - 50) / 10 + 1.6 * x["female"]  # a biased history
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    model = LogisticRegression().fit(x, y)
    schema = (
        FeatureSpec("income", FeatureType.NUMERIC),
        FeatureSpec("female", FeatureType.NUMERIC),
    )
    ctx = context(model, {"holdout": (x, y)}, features=schema, threshold=0.35)
    r = g.fairness(ctx, settings("fairness"), [ProtectedAttribute("sex", "female", mapping={
        "0.0": "male", "1.0": "female"})])  # fmt: skip
    e = r.evidence["attributes"]["sex"]
    assert e["disparate_impact_ratio"] < 0.8
    assert not r.passed
    assert "sex disparate impact ratio (four-fifths rule)" in {c.name for c in r.failed}


def test_protected_groups_split_map_and_bins() -> None:
    f = pd.DataFrame(
        {
            "ps": ["male : single", "female : divorced", None, "male : married"],
            "age": [19, 25, 61, None],
        }
    )
    split = g.protected_groups(f, ProtectedAttribute("sex", "ps", split=":"))
    assert split.tolist()[:2] == ["male", "female"] and pd.isna(split[2])
    bands = g.protected_groups(f, ProtectedAttribute("age", "age", bins=(25, 40, 60)))
    assert bands.tolist()[:3] == ["<25", "25-40", "60+"] and pd.isna(bands[3])
    with pytest.raises(InvalidArgument) as e:
        g.protected_groups(f, ProtectedAttribute("sex", "ps", mapping={"male : single": "m"}))
    assert e.value.field == "policy.gates.fairness.attributes.sex.map"
    with pytest.raises(InvalidArgument) as e:
        g.protected_groups(f, ProtectedAttribute("sex", "gender"))
    assert "gender" in e.value.message


def test_small_groups_are_reported_not_judged(fitted: Any) -> None:
    model, _, _, xh, yh = fitted
    x = xh.copy()
    x.loc[x.index[:5], "sex"] = "other"
    ctx = context(model, {"holdout": (x, yh)})
    r = g.fairness(ctx, settings("fairness", min_group_size=20), [ProtectedAttribute("s", "sex")])
    groups = {row["group"]: row for row in r.evidence["attributes"]["s"]["groups"]}
    assert groups["other"]["n"] == 5 and not groups["other"]["judged"]
    assert any("fewer than 20" in w for w in r.warnings)


def test_equalized_odds_needs_enough_outcomes_per_group(fitted: Any) -> None:
    model, _, _, xh, yh = fitted
    ctx = context(model, {"holdout": (xh, yh)})
    attr = [ProtectedAttribute("s", "sex")]
    judged = g.fairness(ctx, settings("fairness", min_group_outcomes=0), attr)
    names = {c.name for c in judged.criteria}
    assert "s equalized odds difference" in names
    groups = judged.evidence["attributes"]["s"]["groups"]
    assert sum(row["n_bad"] for row in groups) == int(np.sum(yh))
    fewest = min(min(r["n_bad"], r["n"] - r["n_bad"]) for r in groups)
    skipped = g.fairness(ctx, settings("fairness", min_group_outcomes=fewest + 1), attr)
    assert "s equalized odds difference" not in {c.name for c in skipped.criteria}
    assert skipped.evidence["attributes"]["s"]["equalized_odds_difference"] is None
    assert "s demographic parity difference" in {c.name for c in skipped.criteria}
    assert any("equalized odds reported by group, not judged" in w for w in skipped.warnings)


def test_sensitivity_equals_rescoring_by_hand_and_fails_on_missing(fitted: Any) -> None:
    model, _, _, xh, yh = fitted
    ctx = context(model, {"holdout": (xh, yh)})
    r = g.sensitivity(ctx, settings("sensitivity"))
    base = model.predict_proba(xh[["income", "age"]])[:, 1]
    moved = xh[["income", "age"]].copy()
    moved["income"] *= 1.10
    want = np.abs(model.predict_proba(moved)[:, 1] - base).mean()
    income = next(row for row in r.evidence["shifts"] if row["feature"] == "income")
    got = next(s for s in income["shifts"] if s["shift"] == pytest.approx(0.10))
    assert got["mean_abs_change"] == pytest.approx(want, rel=1e-12)
    # A 10% move in income changes this model's scores a lot: the gate says so.
    assert "income mean |score change| at +/-10%" in {c.name for c in r.failed}
    # age is nullable in the schema, and a plain logistic regression cannot score a NaN.
    age_missing = next(m for m in r.evidence["missing"] if m["feature"] == "age")
    assert not age_missing["scores"] and "ValueError" in age_missing["error"]
    assert "age scores when missing" in {c.name for c in r.failed}
    relaxed = g.sensitivity(
        ctx, settings("sensitivity", max_mean_abs_change=1.0, max_decision_flip_rate=1.0,
                      missing="report"))  # fmt: skip
    assert relaxed.passed and any("age" in w for w in relaxed.warnings)


def test_benchmark_fails_a_candidate_that_trails_a_simple_model(fitted: Any) -> None:
    model, x, y, xh, yh = fitted
    weak = LogisticRegression().fit(x[["age"]], y)
    strong = g.benchmark(
        context(model, {"train": (x, y), "holdout": (xh, yh)}),
        settings("benchmark", model="logistic_regression"),
    )
    assert strong.passed, strong.summary
    bench_auc = strong.evidence["benchmark_auc"]
    oracle = LogisticRegression(max_iter=2000).fit(x[["income", "age"]], y)
    assert bench_auc == pytest.approx(
        roc_auc_score(yh, oracle.predict_proba(xh[["income", "age"]])[:, 1]), abs=2e-3
    )

    # The weak model declares both features but ignores income; the benchmark uses both.
    class IgnoresIncome:
        def predict_proba(self, f: pd.DataFrame) -> np.ndarray:
            return weak.predict_proba(f[["age"]])

    r = g.benchmark(
        context(IgnoresIncome(), {"train": (x, y), "holdout": (xh, yh)}),
        settings("benchmark", model="gradient_boosting"),
    )
    assert not r.passed
    assert r.evidence["benchmark"] == "gradient_boosting"
    assert r.evidence["delong"]["difference"] < -0.05


def test_data_quality_counts_missing_out_of_range_and_unseen() -> None:
    x = pd.DataFrame(
        {"income": [10.0, 200.0, np.nan, 50.0], "region": ["north", "mars", "south", None]}
    )
    schema = (
        FeatureSpec("income", FeatureType.NUMERIC, True, 0.0, 120.0),
        FeatureSpec("region", FeatureType.CATEGORICAL, True, categories=("north", "south")),
    )
    ctx = g.Context(
        schema, 0.5, lambda f: np.zeros(len(f)), {"holdout": g.Dataset(
            "holdout", x, np.array([0, 1, 0, 1]), np.zeros(4), "h")})  # fmt: skip
    r = g.data_quality(ctx, settings("data_quality"))
    rows = {row["feature"]: row for row in r.evidence["features"]["holdout"]}
    assert rows["income"]["missing_rate"] == 0.25
    assert rows["income"]["out_of_range_rate"] == 0.25
    assert rows["region"]["unseen_category_rate"] == 0.25
    assert not r.passed and len(r.failed) == 3


def test_a_gate_without_its_data_set_says_which_option_to_pass(fitted: Any) -> None:
    model, _, _, xh, yh = fitted
    ctx = context(model, {"holdout": (xh, yh)})
    with pytest.raises(InvalidArgument) as e:
        g.benchmark(ctx, settings("benchmark"))
    assert e.value.field == "train" and "--train" in (e.value.remedy or "")


def test_stability_passes_stable_data_and_fails_drifted_out_of_time_data() -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from charter.datasets.synthetic import CovariateShift, credit_applications

    names = ["income", "debt_to_income", "age"]
    schema = tuple(FeatureSpec(n, FeatureType.NUMERIC) for n in names)
    train = credit_applications(3_000, seed=1)
    stable = credit_applications(2_000, seed=2)
    drifted = credit_applications(
        2_000, seed=2, shifts=[CovariateShift("income", mean_shift_sd=1.0)]
    )
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        train[names], train["default"]
    )

    def run(oot: pd.DataFrame) -> g.GateResult:
        data = {
            "train": (train, train["default"].to_numpy()),
            "holdout": (stable, stable["default"].to_numpy()),
            "out_of_time": (oot, oot["default"].to_numpy()),
        }
        return g.stability(context(model, data, features=schema), settings("stability"))

    ok = run(stable)
    assert ok.passed, ok.summary
    assert ok.evidence["feature_reference"] == "the train data set"
    bad = run(drifted)
    assert not bad.passed
    failed = {c.name for c in bad.failed}
    assert "PSI income" in failed
    psi = {row["feature"]: row["psi"] for row in bad.evidence["features"]}
    assert psi["income"] > 0.25 and psi["age"] < 0.10
    # the score moves with income: its PSI is measured train -> out-of-time
    assert bad.evidence["score_psi"] > ok.evidence["score_psi"]
