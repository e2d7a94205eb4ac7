"""Historical replay on every backend: synthetic applications decided at their own times by the
versions in service then, exactly as the service decides (routing, thresholds, reason codes,
shadows), with outcomes arriving at their label times; idempotent; canaries stepped in
simulated time."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sqlalchemy import func, select

from charter.clock import ManualClock, iso, parse_iso
from charter.datasets.synthetic import (
    CREDIT_CATEGORICAL_FEATURES,
    CREDIT_NUMERIC_FEATURES,
    LabelDelay,
    credit_applications,
)
from charter.errors import InvalidArgument, NotFound
from charter.monitoring.replay import (
    REQUEST_ID_PREFIX,
    replay_applications,
    replay_decision_id,
    replay_outcomes,
)
from charter.registry.service import Registry
from charter.serving.compiled import reason_codes
from charter.serving.routing import TrafficPolicy, route
from charter.serving.runtime import compile_version
from charter.storage import jsonutil
from charter.storage.schema import decisions, outcomes, scoring_errors, shadow_scores

from helpers import create_model, record_passing_gates

NAME = "credit-pd"
# The registry fixture's clock starts on 2026-11-22; the history comes after the registrations.
START = datetime(2026, 12, 1, tzinfo=UTC)
FEATURES = (*CREDIT_NUMERIC_FEATURES, *CREDIT_CATEGORICAL_FEATURES)
LOOSE_PLAN = {
    "steps": [0.2, 0.5, 1.0],
    "min_decisions": 20,
    "max_error_rate": 1.0,
    "max_latency_p99_ms": 60_000.0,
    "max_score_psi": 100.0,
    "max_approval_rate_delta": 1.0,
    "min_judged_decisions": 20,
}


def _pipeline(c: float, numeric: list[str], categorical: list[str]) -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ]
    )
    return Pipeline([("prep", pre), ("lr", LogisticRegression(C=c, max_iter=1000))])


def _version(
    reg: Registry, people: Any, *, c: float, threshold: float, drop: tuple[str, ...] = ()
) -> int:
    """An approved scorecard on the synthetic credit features (minus ``drop``)."""
    train = credit_applications(3000, seed=11, start=datetime(2026, 6, 1, tzinfo=UTC), days=90)
    numeric = [f for f in CREDIT_NUMERIC_FEATURES if f not in drop]
    categorical = [f for f in CREDIT_CATEGORICAL_FEATURES if f not in drop]
    X, y = train[numeric + categorical], train["default"].to_numpy()
    v = reg.log_model(
        people.dev, NAME, _pipeline(c, numeric, categorical), X=X, y=y, dataset_id="synthetic",
        fit=True, threshold=threshold,
    )  # fmt: skip
    record_passing_gates(reg, people.dev, NAME, v.version, X=X, y=y)
    reg.transition(people.dev, NAME, v.version, "validation")
    reg.record_validation(people.val, NAME, v.version, outcome="pass", summary="independent")
    reg.transition(people.app, NAME, v.version, "approved")
    return v.version


def _frame(n: int, days: int, seed: int = 21, customers: int = 400) -> pd.DataFrame:
    frame = credit_applications(
        n, seed=seed, start=START, days=days, label_delay=LabelDelay(10, 90)
    )
    # Customers apply more than once, so routing must be sticky per customer.
    frame["customer_id"] = [f"cust-{i % customers:04d}" for i in range(n)]
    return frame


def _count(reg: Registry, table: Any) -> int:
    with reg.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def _decision_rows(reg: Registry) -> list[Any]:
    with reg.db.read() as conn:
        return conn.execute(
            select(decisions).where(decisions.c.model_name == NAME).order_by(decisions.c.created_at)
        ).all()


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def test_replay_decides_history_as_the_service_would(registry: Registry, people: Any) -> None:
    create_model(registry, people.dev, NAME)
    champion = _version(registry, people, c=1.0, threshold=0.15)
    challenger = _version(registry, people, c=0.1, threshold=0.2, drop=("region",))
    shadow = _version(registry, people, c=0.01, threshold=0.15)
    registry.set_alias(people.app, NAME, champion, "champion")
    registry.set_alias(people.app, NAME, challenger, "challenger")
    registry.set_alias(people.dev, NAME, shadow, "shadow")
    registry.set_traffic(people.app, NAME, challenger_share=0.3)
    clock_before = registry.clock()

    frame = _frame(2000, 60)
    days: list[date] = []
    summary = replay_applications(
        registry, NAME, frame, entity_column="customer_id", on_day=days.append, batch_rows=500
    )

    # one on_day per simulated day, in order, from the first row's day to the last row's
    first, last = frame["decision_time"].min(), frame["decision_time"].max()
    assert days == [first.date() + timedelta(days=d) for d in range(len(days))]
    assert days[-1] == last.date() and len(days) == 60 == summary.days
    assert summary.rows == summary.decisions == 2000
    assert (summary.skipped, summary.refused, summary.scoring_errors) == (0, 0, 0)
    assert summary.first_time == first.to_pydatetime() and summary.last_time == last.to_pydatetime()
    assert summary.latency == "measured"
    # the replay leaves the registry's clock alone (ManualClock steps 1 s per read)
    assert registry.clock() - clock_before == timedelta(seconds=1)

    rows = _decision_rows(registry)
    assert len(rows) == 2000
    by_id = {
        replay_decision_id(NAME, r.customer_id, r.decision_time.to_pydatetime()): r
        for r in frame.itertuples(index=False)
    }
    scorers = {v: compile_version(registry, registry.get_version(NAME, v)) for v in (1, 2, 3)}
    thresholds = {1: 0.15, 2: 0.2, 3: 0.15}
    policy = TrafficPolicy(
        NAME, champion, challenger=challenger, challenger_share=0.3, shadows=(shadow,)
    )
    variants: dict[str, set[str]] = {}
    for d in rows:
        src = by_id[d.id]  # the deterministic id names the frame's row
        assert d.request_id == REQUEST_ID_PREFIX + d.id
        assert d.entity_key == src.customer_id
        assert d.created_at == iso(src.decision_time.to_pydatetime())  # historical time
        routed = route(d.entity_key, policy)
        assert (d.version, d.variant) == (routed.version, routed.variant)
        variants.setdefault(d.entity_key, set()).add(d.variant)
        inputs = jsonutil.loads(d.inputs)
        scorer = scorers[d.version]
        assert set(inputs) == set(scorer.feature_names)
        assert inputs == {f: _plain(getattr(src, f)) for f in scorer.feature_names}
        assert d.score == scorer.score_one(inputs)  # linear scorer: bit-identical
        assert d.threshold == thresholds[d.version]
        assert d.decision == ("decline" if d.score >= d.threshold else "approve")
        contributions = scorer.contributions(inputs)
        assert contributions is not None
        expected = [
            {"feature": r.feature, "contribution": r.contribution, "text": r.text}
            for r in reason_codes(contributions)
        ]
        assert jsonutil.loads(d.reason_codes) == expected
        assert d.latency_ms >= 0.0
    assert {d.decision for d in rows} == {"approve", "decline"}

    # sticky routing: a customer always meets the same variant; shares within tolerance
    assert all(len(v) == 1 for v in variants.values())
    share = sum(d.variant == "challenger" for d in rows) / len(rows)
    assert abs(share - 0.3) < 0.05
    customer_share = sum(v == {"challenger"} for v in variants.values()) / len(variants)
    assert abs(customer_share - 0.3) < 0.1
    assert summary.by_variant == dict(sorted(Counter(d.variant for d in rows).items()))
    assert summary.by_version == {champion: summary.by_variant["champion"],
                                  challenger: summary.by_variant["challenger"]}  # fmt: skip

    # shadows: every decision scored by the shadow, logged beside it, never returned
    with registry.db.read() as conn:
        shadows = conn.execute(select(shadow_scores)).all()
    assert summary.shadow_scores == {shadow: 2000} and len(shadows) == 2000
    created = {d.id: d for d in rows}
    for s in shadows:
        d = created[s.decision_id]
        assert (s.model_name, s.version, s.created_at) == (NAME, shadow, d.created_at)
        inputs = {f: _plain(getattr(by_id[d.id], f)) for f in scorers[shadow].feature_names}
        assert s.score == scorers[shadow].score_one(inputs)
        assert s.decision == ("decline" if s.score >= 0.15 else "approve")

    # outcomes: only those whose label time is at or before label_until (the last row's time)
    until = last.to_pydatetime()
    arrived = frame[frame["label_available_at"] <= last]
    assert 0 < len(arrived) < 2000
    with registry.db.read() as conn:
        got = {o.decision_id: o for o in conn.execute(select(outcomes)).all()}
    assert summary.outcomes == len(got) == len(arrived)
    assert summary.outcomes_pending == 2000 - len(arrived)
    assert summary.label_until == until
    for r in arrived.itertuples(index=False):
        o = got[replay_decision_id(NAME, r.customer_id, r.decision_time.to_pydatetime())]
        assert o.label == r.default
        assert o.observed_at == o.recorded_at == iso(r.label_available_at.to_pydatetime())

    # a rerun writes nothing twice
    again = replay_applications(registry, NAME, frame, entity_column="customer_id")
    assert (again.decisions, again.skipped, again.outcomes, again.shadow_total) == (0, 2000, 0, 0)
    assert _count(registry, decisions) == 2000 and _count(registry, shadow_scores) == 2000
    assert _count(registry, outcomes) == len(arrived)

    # later, the rest of the labels arrive
    later = datetime(2027, 6, 1, tzinfo=UTC)
    rest = replay_outcomes(registry, NAME, frame, later, entity_column="customer_id")
    assert (rest.written, rest.already, rest.pending, rest.no_decision) == (
        2000 - len(arrived), len(arrived), 0, 0,
    )  # fmt: skip
    assert _count(registry, outcomes) == 2000
    same = replay_outcomes(registry, NAME, frame, later, entity_column="customer_id")
    assert (same.written, same.already) == (0, 2000)
    assert _count(registry, scoring_errors) == 0


def test_a_canary_is_stepped_in_simulated_time(
    registry: Registry, people: Any, clock: ManualClock
) -> None:
    create_model(registry, people.dev, NAME)
    old = _version(registry, people, c=1.0, threshold=0.15)
    new = _version(registry, people, c=0.5, threshold=0.15)
    registry.set_alias(people.app, NAME, old, "champion")
    canary_day = START.date() + timedelta(days=9)

    def on_day(day: date) -> None:
        # the caller keeps the registry's clock in simulated time, to the day
        clock.now = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
        if day == canary_day:
            registry.start_canary(people.app, NAME, new, LOOSE_PLAN)

    frame = _frame(1500, 30, seed=5, customers=1500)
    summary = replay_applications(
        registry, NAME, frame, on_day=on_day, canary_every=timedelta(hours=12), latency_ms=2.5
    )
    assert summary.decisions == 1500 and summary.latency == "fixed"
    started = datetime.combine(canary_day + timedelta(days=1), datetime.min.time(), UTC)
    ticks = summary.canary_ticks
    assert ticks and ticks[0].at == started  # the first tick after the start, on the 12 h grid
    assert all((t.at - START) % timedelta(hours=12) == timedelta(0) for t in ticks)
    moves = [t.action for t in ticks if t.action not in ("hold", "gather")]
    assert moves == ["advance", "advance", "promote"]
    promoted_at = next(t.at for t in ticks if t.action == "promote")

    rows = _decision_rows(registry)
    assert all(d.latency_ms == 2.5 for d in rows)
    before = [d for d in rows if d.created_at < iso(started)]
    during = [d for d in rows if iso(started) <= d.created_at < iso(promoted_at)]
    after = [d for d in rows if d.created_at >= iso(promoted_at)]
    assert before and during and after
    assert {(d.version, d.variant) for d in before} == {(old, "champion")}
    assert {(d.version, d.variant) for d in during} == {(old, "champion"), (new, "canary")}
    assert {(d.version, d.variant) for d in after} == {(new, "champion")}
    assert registry.get_model(NAME).champion_version == new

    # the audit trail carries simulated time (to the day, as the caller set the clock)
    events = registry.audit_log(model_name=NAME, action="canary.*")
    assert [e.action for e in events] == [
        "canary.started", "canary.advanced", "canary.advanced", "canary.promoted",
    ]  # fmt: skip
    assert parse_iso(events[0].ts).date() == canary_day + timedelta(days=1)
    promoted_ts = parse_iso(events[-1].ts)
    assert promoted_at - timedelta(days=1) < promoted_ts <= promoted_at + timedelta(minutes=1)
    assert registry.verify_audit().ok


def test_refusals_and_bad_arguments(registry: Registry, people: Any) -> None:
    create_model(registry, people.dev, NAME)
    frame = _frame(60, 3)
    with pytest.raises(NotFound) as no_champion:
        replay_applications(registry, NAME, frame)
    assert no_champion.value.field == "name"

    v = _version(registry, people, c=1.0, threshold=0.15)
    registry.set_alias(people.app, NAME, v, "champion")
    naive = frame.assign(decision_time=frame["decision_time"].dt.tz_localize(None))
    with pytest.raises(InvalidArgument) as tz:
        replay_applications(registry, NAME, naive)
    assert tz.value.field == "time_column"
    with pytest.raises(InvalidArgument) as unknown:
        replay_applications(registry, NAME, frame, features=[*FEATURES, "default_probability"])
    assert unknown.value.field == "features"
    with pytest.raises(InvalidArgument) as short:
        replay_applications(registry, NAME, frame, features=["age"])
    assert short.value.field == "features"
    with pytest.raises(InvalidArgument) as every:
        replay_applications(registry, NAME, frame, canary_every=timedelta(0))
    assert every.value.field == "canary_every"
    assert _count(registry, decisions) == 0

    # a row the service would refuse (422) is not logged, and says why
    frame.loc[7, "home_ownership"] = "castle"
    summary = replay_applications(registry, NAME, frame, label_column=None)
    assert (summary.decisions, summary.refused, summary.outcomes) == (59, 1, 0)
    assert "castle" in summary.refusals[0] and frame.loc[7, "application_id"] in summary.refusals[0]
    assert _count(registry, decisions) == 59


def test_a_failing_batch_is_scored_row_by_row_and_failures_are_logged(
    registry: Registry, people: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter.serving.compiled import LinearScorer

    create_model(registry, people.dev, NAME)
    v = _version(registry, people, c=1.0, threshold=0.15)
    registry.set_alias(people.app, NAME, v, "champion")
    frame = _frame(80, 4)
    score_one = LinearScorer.score_one

    def batch_fails(self: LinearScorer, rows: Any) -> Any:
        raise ValueError("the batch path is broken")

    def old_applicants_fail(self: LinearScorer, row: Any) -> float:
        if row["age"] > 60:
            raise ArithmeticError(f"cannot score age {row['age']}")
        return score_one(self, row)

    monkeypatch.setattr(LinearScorer, "score_many", batch_fails)
    monkeypatch.setattr(LinearScorer, "score_one", old_applicants_fail)
    summary = replay_applications(registry, NAME, frame, reasons=False)
    old = frame[frame["age"] > 60]
    assert 0 < len(old) < 80
    assert (summary.decisions, summary.scoring_errors) == (80 - len(old), len(old))
    with registry.db.read() as conn:
        errors = conn.execute(select(scoring_errors)).all()
    assert sorted(e.created_at for e in errors) == sorted(
        iso(t.to_pydatetime()) for t in old["decision_time"]
    )
    assert {(e.model_name, e.version, e.variant) for e in errors} == {(NAME, v, "champion")}
    assert all("cannot score age" in e.message for e in errors)
    rows = _decision_rows(registry)
    scorer = compile_version(registry, registry.get_version(NAME, v))
    for d in rows:
        assert d.score == score_one(scorer, jsonutil.loads(d.inputs))
        assert d.reason_codes == "[]"
