"""Seeded synthetic generators: determinism, planted drifts, label delays and argument checks."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest

from charter.datasets import (
    CARD_CATEGORICAL_FEATURES,
    CARD_NUMERIC_FEATURES,
    CREDIT_CATEGORICAL_FEATURES,
    CREDIT_CATEGORICAL_LEVELS,
    CREDIT_DEFAULT_MODEL,
    CREDIT_NUMERIC_FEATURES,
    DRIFT_BENCHMARK_CATEGORICAL_LEVELS,
    DRIFT_BENCHMARK_COLUMNS,
    DRIFT_BENCHMARK_NUMERIC,
    PLANTED_DRIFTS,
    ConceptDrift,
    CovariateShift,
    LabelDelay,
    card_fraud_model,
    card_transactions,
    credit_applications,
    credit_default_model,
    drift_benchmark_frame,
)
from charter.errors import InvalidArgument

START = datetime(2026, 1, 1, tzinfo=UTC)
ONSET = START + timedelta(days=90)  # the middle of the default 180 days
BIG = 200_000
CREDIT_FEATURES = [*CREDIT_NUMERIC_FEATURES, *CREDIT_CATEGORICAL_FEATURES]


@pytest.fixture(scope="module")
def credit() -> pd.DataFrame:
    """An undrifted 200k-row frame; the drifted frames below use the same seed."""
    return credit_applications(BIG, seed=11)


def _after(frame: pd.DataFrame, column: str = "decision_time") -> pd.Series:
    return frame[column] >= pd.Timestamp(ONSET)


# --- determinism and shape --------------------------------------------------------------------


def test_same_seed_same_frame_and_different_seed_different_frame() -> None:
    kwargs: dict[str, Any] = {
        "shifts": [CovariateShift("income", mean_shift_sd=0.3, onset=ONSET)],
        "concept_drift": ConceptDrift(ONSET, {"age": 0.2}),
    }
    a = credit_applications(3_000, seed=5, **kwargs)
    pd.testing.assert_frame_equal(a, credit_applications(3_000, seed=5, **kwargs))
    b = credit_applications(3_000, seed=6, **kwargs)
    assert not a["income"].equals(b["income"])
    assert not a["decision_time"].equals(b["decision_time"])
    assert set(a["application_id"]).isdisjoint(b["application_id"])

    c = card_transactions(3_000, seed=5)
    pd.testing.assert_frame_equal(c, card_transactions(3_000, seed=5))
    assert not c["amount"].equals(card_transactions(3_000, seed=6)["amount"])

    d = drift_benchmark_frame(3_000, seed=5, drifted=True)
    pd.testing.assert_frame_equal(d, drift_benchmark_frame(3_000, seed=5, drifted=True))
    assert not d["num_10"].equals(drift_benchmark_frame(3_000, seed=6, drifted=True)["num_10"])


def test_credit_columns_and_dtypes() -> None:
    frame = credit_applications(5_000, seed=1)
    assert list(frame.columns) == [
        "application_id",
        "decision_time",
        *CREDIT_NUMERIC_FEATURES,
        *CREDIT_CATEGORICAL_FEATURES,
        "default_probability",
        "default",
        "label_available_at",
    ]
    assert 12 <= len(CREDIT_FEATURES) <= 16
    assert frame["application_id"].is_unique
    assert frame["application_id"].iloc[0] == "app-1-00000000"
    assert str(frame["decision_time"].dt.tz) == "UTC"
    assert frame["decision_time"].is_monotonic_increasing
    assert frame["decision_time"].min() >= pd.Timestamp(START)
    assert frame["decision_time"].max() < pd.Timestamp(START + timedelta(days=180))
    for name in CREDIT_NUMERIC_FEATURES:
        assert frame[name].dtype == np.float64, name
    for name in CREDIT_CATEGORICAL_FEATURES:
        assert pd.api.types.is_string_dtype(frame[name].dtype), name
        assert isinstance(frame[name].iloc[0], str)
        assert set(frame[name]) <= set(CREDIT_CATEGORICAL_LEVELS[name])
    assert frame["default"].dtype == np.int64
    assert set(frame["default"].unique()) <= {0, 1}
    assert frame["default_probability"].between(0.0, 1.0, inclusive="neither").all()
    assert not frame.isna().any().any()
    # Plausible ranges.
    assert frame["age"].between(18, 85).all()
    assert frame["utilisation"].between(0, 1).all()
    assert (frame["income"] > 0).all()
    assert set(frame["loan_term_months"].unique()) <= {12, 24, 36, 48, 60, 72, 84}
    assert (frame["credit_history_months"] <= 12 * (frame["age"] - 18)).all()
    assert frame["age"].corr(frame["credit_history_months"]) > 0.5
    assert frame["income"].corr(frame["loan_amount"]) > 0.3


def test_card_columns_and_times() -> None:
    start = datetime(2026, 3, 1, 13, 45, tzinfo=timezone(timedelta(hours=2)))
    frame = card_transactions(20_000, seed=2, start=start, days=10)
    assert list(frame.columns) == [
        "transaction_id",
        "event_time",
        "card_id",
        *CARD_NUMERIC_FEATURES,
        *CARD_CATEGORICAL_FEATURES,
        "fraud_probability",
        "is_fraud",
        "label_available_at",
    ]
    assert 9 <= len(CARD_NUMERIC_FEATURES) + len(CARD_CATEGORICAL_FEATURES) <= 12
    assert frame["transaction_id"].is_unique
    assert frame["event_time"].is_monotonic_increasing
    assert frame["event_time"].min() >= pd.Timestamp(start)
    assert frame["event_time"].max() < pd.Timestamp(start + timedelta(days=10))
    assert (frame["hour_of_day"] == frame["event_time"].dt.hour).all()
    night = frame["hour_of_day"].between(0, 5).mean()
    assert night < 0.1  # the daily profile is quiet at night
    assert frame["card_id"].nunique() <= 20_000 // 20
    assert (frame["card_age_days"] >= 0).all()
    assert set(frame["country_mismatch"].unique()) <= {0.0, 1.0}
    assert frame["is_fraud"].dtype == np.int64


# --- true models and base rates --------------------------------------------------------------


def test_credit_base_rate_and_true_model(credit: pd.DataFrame) -> None:
    assert abs(credit["default_probability"].mean() - 0.10) < 0.004
    assert abs(credit["default"].mean() - 0.10) < 0.005
    model = credit_default_model(0.10)
    assert model.terms == CREDIT_DEFAULT_MODEL.terms
    np.testing.assert_allclose(model.probability(credit), credit["default_probability"], rtol=1e-9)
    # The label is informative: defaulters had higher true probabilities.
    by_label = credit.groupby("default")["default_probability"].mean()
    assert by_label[1] > 2 * by_label[0]


def test_other_rates_are_honoured() -> None:
    frame = credit_applications(50_000, seed=3, base_default_rate=0.25)
    assert abs(frame["default"].mean() - 0.25) < 0.01
    cards = card_transactions(BIG, seed=3)
    assert abs(cards["is_fraud"].mean() - 0.01) < 0.0015
    np.testing.assert_allclose(
        card_fraud_model(0.01).probability(cards), cards["fraud_probability"], rtol=1e-9
    )


# --- covariate shift -------------------------------------------------------------------------


def test_mean_shift_after_onset_only(credit: pd.DataFrame) -> None:
    shifted = credit_applications(
        BIG, seed=11, shifts=[CovariateShift("age", mean_shift_sd=0.5, onset=ONSET)]
    )
    after = _after(shifted)
    assert 0.4 < after.mean() < 0.6
    pd.testing.assert_frame_equal(shifted[~after], credit[~after])
    pre, post = shifted.loc[~after, "age"], shifted.loc[after, "age"]
    moved = (post.mean() - pre.mean()) / pre.std()
    assert moved == pytest.approx(0.5, abs=0.05)
    # Only the shifted column (and what the true model derives from it) changes.
    untouched = [c for c in CREDIT_FEATURES if c != "age"]
    pd.testing.assert_frame_equal(shifted[untouched], credit[untouched])
    # P(y | x) is unchanged: the probabilities are the true model applied to the shifted ages.
    np.testing.assert_allclose(
        credit_default_model().probability(shifted), shifted["default_probability"], rtol=1e-9
    )


def test_scale_multiplies_the_spread(credit: pd.DataFrame) -> None:
    shifted = credit_applications(
        BIG, seed=11, shifts=[CovariateShift("utilisation", scale=1.5, onset=ONSET)]
    )
    after = _after(shifted)
    pre, post = shifted.loc[~after, "utilisation"], shifted.loc[after, "utilisation"]
    assert post.std() / pre.std() == pytest.approx(1.5, abs=0.05)
    assert abs(post.mean() - pre.mean()) < 0.02 * pre.std()
    pd.testing.assert_series_equal(
        shifted.loc[~after, "utilisation"], credit.loc[~after, "utilisation"]
    )


def test_shift_without_onset_applies_to_every_row(credit: pd.DataFrame) -> None:
    shifted = credit_applications(BIG, seed=11, shifts=[CovariateShift("income", 1.0)])
    reference_sd = credit["income"].std(ddof=0)  # the population sd, as documented
    moved = (shifted["income"].mean() - credit["income"].mean()) / reference_sd
    assert moved == pytest.approx(1.0, abs=1e-9)


def test_category_weights_replace_frequencies(credit: pd.DataFrame) -> None:
    weights = {"own": 3.0, "other": 1.0}
    shifted = credit_applications(
        BIG,
        seed=11,
        shifts=[CovariateShift("home_ownership", category_weights=weights, onset=ONSET)],
    )
    after = _after(shifted)
    post = shifted.loc[after, "home_ownership"].value_counts(normalize=True)
    assert set(post.index) == {"own", "other"}
    assert post["own"] == pytest.approx(0.75, abs=0.01)
    pd.testing.assert_frame_equal(shifted[~after], credit[~after])
    before = credit.loc[after, "home_ownership"].value_counts(normalize=True)
    assert before["own"] < 0.3  # the shift really changed something


def test_shift_weights_are_copied_and_shifts_are_hashable() -> None:
    weights = {"rent": 1.0}
    shift = CovariateShift("home_ownership", category_weights=weights)
    weights["own"] = 5.0
    assert dict(shift.category_weights or {}) == {"rent": 1.0}
    assert hash(shift) == hash(CovariateShift("home_ownership", category_weights={"rent": 1.0}))
    assert hash(ConceptDrift(ONSET, {"age": 1.0})) is not None


# --- concept drift ---------------------------------------------------------------------------


def test_concept_drift_changes_labels_not_features(credit: pd.DataFrame) -> None:
    drift = ConceptDrift(
        ONSET, {"debt_to_income": 0.3, "region=capital": 1.0}, intercept_change=0.2
    )
    drifted = credit_applications(BIG, seed=11, concept_drift=drift)
    after = _after(drifted)
    # The features are exactly those of the undrifted frame...
    pd.testing.assert_frame_equal(drifted[CREDIT_FEATURES], credit[CREDIT_FEATURES])
    pd.testing.assert_frame_equal(drifted[~after], credit[~after])
    # ...so their distribution before and after the onset is the same.
    for name in CREDIT_NUMERIC_FEATURES:
        pre, post = drifted.loc[~after, name], drifted.loc[after, name]
        assert abs(post.mean() - pre.mean()) < 0.03 * pre.std(), name

    # After the onset the probabilities are the changed model's, and the labels follow them.
    changed = credit_default_model().with_concept_drift(drift)
    post = drifted[after]
    np.testing.assert_allclose(changed.probability(post), post["default_probability"], rtol=1e-9)
    expected = post["default_probability"].mean()
    standard_error = np.sqrt(expected * (1 - expected) / len(post))
    assert abs(post["default"].mean() - expected) < 4 * standard_error
    assert expected > credit.loc[after, "default_probability"].mean() + 0.02

    # Conditional on x: capital applicants default far more often after the onset than before.
    capital = drifted["region"] == "capital"
    rate_before = drifted.loc[capital & ~after, "default"].mean()
    rate_after = drifted.loc[capital & after, "default"].mean()
    assert rate_after > 1.8 * rate_before
    other_before = drifted.loc[~capital & ~after, "default"].mean()
    assert rate_before == pytest.approx(other_before, abs=0.01)  # region had no effect


def test_concept_drift_on_card_night_term() -> None:
    drift = ConceptDrift(START + timedelta(days=45), {"hour_of_day:night": 2.0})
    frame = card_transactions(50_000, seed=4, concept_drift=drift)
    after = frame["event_time"] >= pd.Timestamp(drift.onset)
    changed = card_fraud_model().with_concept_drift(drift)
    np.testing.assert_allclose(
        changed.probability(frame[after]), frame.loc[after, "fraud_probability"], rtol=1e-9
    )


# --- label delay -----------------------------------------------------------------------------


def test_label_delay_within_bounds(credit: pd.DataFrame) -> None:
    delay = credit["label_available_at"] - credit["decision_time"]
    assert str(credit["label_available_at"].dt.tz) == "UTC"
    assert (delay % pd.Timedelta(days=1) == pd.Timedelta(0)).all()
    days = delay.dt.days
    assert days.min() == 180
    assert days.max() == 720
    assert days.mean() == pytest.approx(450, abs=3)

    fixed = card_transactions(1_000, seed=1, label_delay=LabelDelay(7, 7))
    assert ((fixed["label_available_at"] - fixed["event_time"]) == pd.Timedelta(days=7)).all()
    card_days = (lambda f: (f["label_available_at"] - f["event_time"]).dt.days)(
        card_transactions(5_000, seed=1)
    )
    assert card_days.between(30, 90).all()


# --- drift benchmark -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def benchmark_pair() -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        drift_benchmark_frame(BIG, seed=21, drifted=False),
        drift_benchmark_frame(BIG, seed=21, drifted=True),
    )


def test_benchmark_shape_and_dtypes(benchmark_pair: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    for frame in benchmark_pair:
        assert frame.shape == (BIG, 25)
        assert list(frame.columns) == list(DRIFT_BENCHMARK_COLUMNS)
        numeric = [c for c in frame.columns if c.startswith("num_")]
        assert numeric == [f"num_{i:02d}" for i in range(20)]
        assert all(frame[c].dtype == np.float64 for c in numeric)
        for name, levels in DRIFT_BENCHMARK_CATEGORICAL_LEVELS.items():
            assert isinstance(frame[name].dtype, pd.CategoricalDtype)
            assert list(frame[name].cat.categories) == list(levels)
            assert 10 <= len(levels) <= 30
    families = Counter(family for family, _params in DRIFT_BENCHMARK_NUMERIC.values())
    assert families == {
        name: 4 for name in ("normal", "lognormal", "exponential", "uniform", "gamma")
    }


def test_planted_drifts_are_listed() -> None:
    assert len(PLANTED_DRIFTS) == 7
    columns = [d.column for d in PLANTED_DRIFTS]
    assert len(set(columns)) == 7
    assert set(columns) <= set(DRIFT_BENCHMARK_COLUMNS)
    kinds = Counter(d.kind for d in PLANTED_DRIFTS)
    assert kinds == {"mean_shift": 4, "variance_change": 1, "frequency_change": 2}
    assert all(d.description for d in PLANTED_DRIFTS)


def test_non_planted_columns_keep_their_distribution(
    benchmark_pair: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    reference, current = benchmark_pair
    planted = {d.column for d in PLANTED_DRIFTS}
    n = len(reference)
    for name in DRIFT_BENCHMARK_NUMERIC:
        if name in planted:
            continue
        a, b = reference[name].to_numpy(), current[name].to_numpy()
        assert not np.array_equal(a, b), f"{name}: the two frames must be independent samples"
        sd = a.std()
        # Five standard errors of the difference of two means and of two standard deviations.
        assert abs(a.mean() - b.mean()) < 5 * sd * np.sqrt(2 / n), name
        kurtosis = np.mean((a - a.mean()) ** 4) / sd**4
        assert abs(b.std() / sd - 1) < 5 * np.sqrt(2 * (kurtosis - 1) / (4 * n)), name
    for name in DRIFT_BENCHMARK_CATEGORICAL_LEVELS:
        if name in planted:
            continue
        p = reference[name].value_counts(normalize=True, sort=False)
        q = current[name].value_counts(normalize=True, sort=False)
        assert (p - q).abs().max() < 5 * np.sqrt(2 * 0.25 / n), name


def test_planted_drifts_have_the_documented_size(
    benchmark_pair: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    reference, current = benchmark_pair

    def shift_in_sd(name: str, log: bool = False) -> float:
        a, b = reference[name].to_numpy(), current[name].to_numpy()
        if log:
            a, b = np.log(a), np.log(b)
        return float((b.mean() - a.mean()) / a.std())

    assert shift_in_sd("num_00") == pytest.approx(0.1, abs=0.02)
    assert shift_in_sd("num_01") == pytest.approx(0.5, abs=0.02)
    assert shift_in_sd("num_04", log=True) == pytest.approx(0.1, abs=0.02)
    assert shift_in_sd("num_05", log=True) == pytest.approx(0.5, abs=0.02)
    assert current["num_13"].std() / reference["num_13"].std() == pytest.approx(1.25, abs=0.02)
    assert current["num_13"].mean() == pytest.approx(reference["num_13"].mean(), abs=0.01)

    p1 = reference["cat_1"].value_counts(normalize=True, sort=False)
    q1 = current["cat_1"].value_counts(normalize=True, sort=False)
    assert q1["L00"] - p1["L00"] == pytest.approx(0.05, abs=0.01)
    p3 = reference["cat_3"].value_counts(normalize=True, sort=False)
    q3 = current["cat_3"].value_counts(normalize=True, sort=False)
    rare = ["L22", "L23", "L24"]
    assert q3[rare].sum() / p3[rare].sum() == pytest.approx(3 / 1.12, rel=0.1)


# --- argument checks -------------------------------------------------------------------------

NAIVE = datetime(2026, 1, 1)


def _bad(value: object) -> Any:
    """A deliberately ill-typed argument (typed Any so that the type checker lets it through)."""
    return value


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: credit_applications(0, seed=1), "n"),
        (lambda: credit_applications(True, seed=1), "n"),
        (lambda: credit_applications(10, seed=-1), "seed"),
        (lambda: credit_applications(10, seed=1, start=NAIVE), "start"),
        (lambda: credit_applications(10, seed=1, days=0), "days"),
        (lambda: credit_applications(10, seed=1, base_default_rate=1.5), "base_default_rate"),
        (lambda: credit_applications(10, seed=1, label_delay=_bad((1, 2))), "label_delay"),
        (lambda: credit_applications(10, seed=1, concept_drift=_bad({"age": 1})), "concept_drift"),
        (lambda: credit_applications(10, seed=1, shifts=_bad(CovariateShift("age"))), "shifts"),
        (lambda: credit_applications(10, seed=1, shifts=_bad(["age"])), "shifts[0]"),
        (
            lambda: credit_applications(
                10, seed=1, shifts=[CovariateShift("age"), CovariateShift("salary")]
            ),
            "shifts[1].feature",
        ),
        (
            lambda: credit_applications(
                10, seed=1, shifts=[CovariateShift("home_ownership", mean_shift_sd=0.5)]
            ),
            "shifts[0].category_weights",
        ),
        (
            lambda: credit_applications(
                10, seed=1, shifts=[CovariateShift("age", category_weights={"a": 1.0})]
            ),
            "shifts[0].category_weights",
        ),
        (
            lambda: credit_applications(
                10,
                seed=1,
                shifts=[CovariateShift("home_ownership", category_weights={"castle": 1.0})],
            ),
            "shifts[0].category_weights",
        ),
        (
            lambda: credit_applications(
                10, seed=1, concept_drift=ConceptDrift(ONSET, {"shoe_size": 1.0})
            ),
            "concept_drift.coefficient_changes",
        ),
        (lambda: card_transactions(10, seed=1, fraud_rate=0.0), "fraud_rate"),
        (lambda: card_transactions(10, seed=1, days=_bad(2.5)), "days"),
        (lambda: drift_benchmark_frame(0, seed=1, drifted=True), "n"),
        (lambda: drift_benchmark_frame(10, seed=1, drifted=_bad("yes")), "drifted"),
        (lambda: CovariateShift("age", scale=0.0), "scale"),
        (lambda: CovariateShift("age", mean_shift_sd=float("nan")), "mean_shift_sd"),
        (lambda: CovariateShift("age", onset=NAIVE), "onset"),
        (lambda: CovariateShift("", mean_shift_sd=1.0), "feature"),
        (lambda: CovariateShift("region", category_weights={"north": -1.0}), "category_weights"),
        (lambda: CovariateShift("region", category_weights={}), "category_weights"),
        (
            lambda: CovariateShift("region", scale=2.0, category_weights={"north": 1.0}),
            "category_weights",
        ),
        (lambda: ConceptDrift(NAIVE, {"age": 1.0}), "onset"),
        (lambda: ConceptDrift(ONSET, _bad({"age": "big"})), "coefficient_changes['age']"),
        (lambda: LabelDelay(-1, 5), "min_days"),
        (lambda: LabelDelay(10, 5), "min_days"),
        (lambda: LabelDelay(_bad(1.5), 3), "min_days"),
        (lambda: LabelDelay(1, -3), "max_days"),
    ],
)
def test_bad_arguments_name_the_field(call: Any, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        call()
    assert caught.value.field == field
    assert caught.value.remedy
    assert isinstance(caught.value, ValueError)


def test_unknown_feature_error_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidArgument) as caught:
        credit_applications(10, seed=1, shifts=[CovariateShift("salary", mean_shift_sd=1.0)])
    message = str(caught.value)
    assert "'salary'" in message
    assert "income" in message and "home_ownership" in message
    with pytest.raises(InvalidArgument) as caught:
        credit_applications(
            10, seed=1, shifts=[CovariateShift("region", category_weights={"mars": 1.0})]
        )
    assert "capital" in str(caught.value)


def test_aware_non_utc_start_is_converted() -> None:
    start = datetime(2026, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
    frame = credit_applications(100, seed=1, start=start, days=1)
    assert str(frame["decision_time"].dt.tz) == "UTC"
    assert frame["decision_time"].min() >= pd.Timestamp("2026-01-01 14:00", tz="UTC")
    assert frame["decision_time"].max() < pd.Timestamp("2026-01-02 14:00", tz="UTC")
