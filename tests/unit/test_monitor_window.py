"""The monitoring window accumulator: hand-computed cases, merge equals one pass, state round
trip, and every series metric in the catalogue."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from charter.datasets.synthetic import (
    CREDIT_CATEGORICAL_FEATURES,
    CREDIT_NUMERIC_FEATURES,
    credit_applications,
)
from charter.errors import InvalidArgument
from charter.monitoring.catalogue import METRICS
from charter.monitoring.frame import DECISION_COLUMNS, feature_column
from charter.monitoring.window import (
    LATENCY_EDGES,
    Baseline,
    CostMatrix,
    WindowAccumulator,
    WindowSpec,
)
from charter.stats.sketches import build_profile

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FEATURES = list(CREDIT_NUMERIC_FEATURES) + list(CREDIT_CATEGORICAL_FEATURES)


def decision_frame(apps: pd.DataFrame, version: int = 1, threshold: float = 0.2) -> pd.DataFrame:
    """Flat decision frame of synthetic applications scored by the true model."""
    score = apps["default_probability"].to_numpy()
    out = pd.DataFrame(
        {
            "decision_id": apps["application_id"].astype(str),
            "created_at": apps["decision_time"],
            "entity_key": apps["application_id"].astype(str),
            "version": np.full(len(apps), version, dtype=np.int64),
            "variant": "champion",
            "score": score,
            "threshold": threshold,
            "decision": np.where(score >= threshold, "decline", "approve"),
            "latency_ms": np.linspace(1.0, 10.0, len(apps)),
            "label": apps["default"].astype(float),
            "label_observed_at": apps["label_available_at"],
        }
    )
    for f in FEATURES:
        out[feature_column(f)] = apps[f].to_numpy()
    return out


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return credit_applications(4000, seed=1, start=T0 - timedelta(days=200), days=180)


@pytest.fixture(scope="module")
def spec(reference: pd.DataFrame) -> WindowSpec:
    profile = build_profile(
        reference[FEATURES],
        numeric=list(CREDIT_NUMERIC_FEATURES),
        categorical=list(CREDIT_CATEGORICAL_FEATURES),
    )
    score_profile = build_profile(
        {"score": reference["default_probability"].to_numpy()},
        numeric=["score"],
        bins=10,
        fine_bins=100,
    )
    return WindowSpec(
        model_name="credit",
        version=1,
        threshold=0.2,
        window_start=T0,
        window_end=T0 + timedelta(days=30),
        as_of=T0 + timedelta(days=400),
        label_maturity=timedelta(days=90),
        profile=profile,
        baseline=Baseline(
            "test", auc=0.80, approval_rate=0.85, bad_rate=0.1, score_profile=score_profile
        ),
        cost=CostMatrix(false_positive=1.0, false_negative=5.0),
        normal_daily_volume=50.0,
        min_decisions=50,
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return decision_frame(credit_applications(3000, seed=2, start=T0, days=30))


def test_frame_has_the_contract_columns(frame: pd.DataFrame) -> None:
    assert set(DECISION_COLUMNS) <= set(frame.columns)


def test_hand_computed_window(spec: WindowSpec) -> None:
    scores = [0.05, 0.10, 0.15, 0.30, 0.40, 0.90]
    labels = [0.0, 1.0, np.nan, 0.0, 1.0, 1.0]
    t = [T0 + timedelta(days=i) for i in range(6)]
    f = pd.DataFrame(
        {
            "created_at": pd.to_datetime(t, utc=True),
            "version": 1,
            "score": scores,
            "decision": ["approve", "approve", "approve", "decline", "decline", "decline"],
            "latency_ms": [1.0, 2.0, 3.0, 4.0, 5.0, 100.0],
            "label": labels,
        }
    )
    r = WindowAccumulator(spec).update(f).result()
    d = r.dimensions
    assert r.n == 6
    assert d["prediction"]["approval_rate"] == pytest.approx(0.5)
    assert d["prediction"]["approval_rate_change"] == pytest.approx(0.5 - 0.85)
    assert d["prediction"]["score_mean"] == pytest.approx(np.mean(scores))
    assert d["prediction"]["score_p50"] == pytest.approx(0.151, abs=1e-9)  # 3rd of 6: bin of 0.15
    # labelled: tp = declines that were bad (0.40, 0.90); fp = 0.30; fn = 0.10; tn = 0.05
    perf = d["performance"]
    assert perf["labelled"] == 5
    assert perf["precision"] == pytest.approx(2 / 3)
    assert perf["recall"] == pytest.approx(2 / 3)
    assert perf["auc"] == pytest.approx(roc_auc_score([0, 1, 0, 1, 1], [0.05, 0.1, 0.3, 0.4, 0.9]))
    b = d["business"]
    assert b["default_rate"] == pytest.approx(1 / 2)  # approved with labels: 0.05 good, 0.10 bad
    assert b["false_positive_cost"] == pytest.approx(1.0)
    assert b["cost"] == pytest.approx(1.0 + 5.0)
    assert b["cost_per_decision"] == pytest.approx(6.0 / 5)
    ops = d["operations"]
    assert ops["per_day"] == pytest.approx(6 / 30)
    assert ops["volume_ratio"] == pytest.approx(6 / 30 / 50)
    # latency quantiles: the upper edge of the log bin holding the exact value
    for q, exact in (("latency_p50_ms", 3.0), ("latency_p99_ms", 100.0)):
        assert exact <= ops[q] <= exact * (LATENCY_EDGES[1] / LATENCY_EDGES[0]) * (1 + 1e-12)
    assert r.labels_status == "matured"
    assert perf["judged"] is True


def test_rows_of_other_versions_and_times_are_ignored(
    spec: WindowSpec, frame: pd.DataFrame
) -> None:
    other = frame.copy()
    other["version"] = 2
    late = frame.copy()
    late["created_at"] = late["created_at"] + pd.Timedelta(days=30)
    a = WindowAccumulator(spec).update(frame)
    b = WindowAccumulator(spec).update(pd.concat([other, frame, late], ignore_index=True))
    assert b.n == a.n == len(frame)
    assert json.dumps(a.to_state()) == json.dumps(b.to_state())


def test_merge_equals_one_pass(spec: WindowSpec, frame: pd.DataFrame) -> None:
    one = WindowAccumulator(spec).update(frame)
    shuffled = frame.sample(frac=1, random_state=3)
    parts = [WindowAccumulator(spec).update(shuffled.iloc[i::4]) for i in range(4)]
    merged = parts[0].merge(parts[1]).merge(parts[2].merge(parts[3]))
    s1, s2 = one.to_state(), merged.to_state()
    # counts are exact however the rows were split
    assert s1["score_hist"] == s2["score_hist"]
    assert s1["latency"] == s2["latency"]
    assert s1["confusion"] == s2["confusion"]
    assert s1["labelled"]["bad"] == s2["labelled"]["bad"]
    for name, col in s1["features"]["columns"].items():
        assert col["counts"] == s2["features"]["columns"][name]["counts"]
    r1, r2 = one.result().to_dict(), merged.result().to_dict()
    assert r1["dimensions"]["data_drift"] == r2["dimensions"]["data_drift"]
    assert r1["dimensions"]["performance"]["auc"] == r2["dimensions"]["performance"]["auc"]
    assert r1["dimensions"]["estimated"]["auc"] == pytest.approx(
        r2["dimensions"]["estimated"]["auc"], rel=1e-12
    )


def test_state_round_trips_through_json(spec: WindowSpec, frame: pd.DataFrame) -> None:
    acc = WindowAccumulator(spec).update(frame)
    state = json.loads(json.dumps(acc.to_state()))
    back = WindowAccumulator.from_state(spec, state)
    assert back.to_state() == acc.to_state()
    assert back.result().to_dict() == acc.result().to_dict()


def test_stable_window_is_stable_and_estimates_track_realised(
    spec: WindowSpec, frame: pd.DataFrame
) -> None:
    r = WindowAccumulator(spec).update(frame).result()
    drift = r.dimensions["data_drift"]
    assert drift["features_drifted"] == 0
    assert all(row["psi"] < 0.1 for row in drift["features"])
    assert r.dimensions["prediction"]["score_psi"] < 0.1
    realised = roc_auc_score(frame["label"], frame["score"])
    assert r.dimensions["performance"]["auc"] == pytest.approx(realised, abs=2e-3)
    assert abs(r.dimensions["estimated"]["auc"] - realised) < 0.03


def test_every_series_metric_is_in_the_catalogue(spec: WindowSpec, frame: pd.DataFrame) -> None:
    r = WindowAccumulator(spec).update(frame).result()
    points = list(r.series())
    assert {p.metric for p in points} <= set(METRICS)
    for p in points:
        assert METRICS[p.metric].dimension == p.dimension
        assert bool(p.feature) == METRICS[p.metric].per_feature or p.metric == "feature_p_value"


def test_pending_labels_are_shown_not_judged(spec: WindowSpec, frame: pd.DataFrame) -> None:
    from dataclasses import replace

    early = replace(spec, as_of=spec.window_end + timedelta(days=10))
    r = WindowAccumulator(early).update(frame).result()
    assert r.labels_status == "pending"
    assert r.dimensions["performance"]["judged"] is False
    assert r.value("auc") is None
    assert any("labels are due" in n for n in r.notes)


def test_bad_scores_are_refused(spec: WindowSpec, frame: pd.DataFrame) -> None:
    bad = frame.head(3).copy()
    bad.loc[bad.index[0], "score"] = 1.5
    with pytest.raises(InvalidArgument) as e:
        WindowAccumulator(spec).update(bad)
    assert e.value.field == "score"


def test_merging_other_windows_is_refused(spec: WindowSpec) -> None:
    from dataclasses import replace

    other = replace(spec, window_start=spec.window_end, window_end=spec.window_end + timedelta(1))
    with pytest.raises(InvalidArgument):
        WindowAccumulator(spec).merge(WindowAccumulator(other))
