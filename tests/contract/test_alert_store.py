"""The alert store on every backend: one transaction per window with its audit events and
outbox rows, de-duplication, the people's life cycle and its refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from charter import audit
from charter.clock import ManualClock
from charter.errors import InvalidArgument, NotFound, PermissionDenied, TransitionNotAllowed
from charter.monitoring import alert_store as store_module
from charter.monitoring.alert_store import AlertStore
from charter.monitoring.alerts import (
    ACKNOWLEDGED,
    CRITICAL,
    OPEN,
    RESOLVED,
    WARNING,
    AlertPolicy,
    Observation,
)
from charter.monitoring.notify import list_notifications
from charter.storage.db import Database
from charter.storage.schema import alert_notifications, alerts, audit_events

START = datetime(2026, 1, 1, tzinfo=UTC)
MODEL = "pd-model"


def window(i: int) -> tuple[datetime, datetime]:
    return START + timedelta(days=30 * i), START + timedelta(days=30 * (i + 1))


def obs(i: int, value: float | None, feature: str = "income", metric: str = "feature_psi",
        model: str = MODEL, v: int = 1) -> Observation:  # fmt: skip
    s, e = window(i)
    return Observation(
        metric=metric, value=value, feature=feature, model=model, version=v, window_start=s,
        window_end=e,
    )  # fmt: skip


def count(db: Database, table: Any, *where: Any) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def actions(db: Database) -> list[str]:
    with db.read() as conn:
        return [e.action for e in audit.query(conn, action="alert.*")]


@pytest.fixture
def store(database: Database, clock: ManualClock) -> AlertStore:
    return AlertStore(database, clock, external_url="https://charter.example.com")


def test_a_window_writes_alerts_audit_and_outbox_in_one_go(
    store: AlertStore, database: Database
) -> None:
    out = store.apply_window(
        [obs(0, 0.3), obs(0, 0.12, "age"), obs(0, 0.02, "region")], AlertPolicy.default()
    )
    assert {(t.kind, t.after.feature, t.after.severity) for t in out.transitions} == {
        ("opened", "income", CRITICAL),
        ("opened", "age", WARNING),
    }
    assert len(out.notification_ids) == 2 and all(t.after.alert_id for t in out.transitions)
    listed = store.list_alerts()
    assert {(a.feature, a.severity, a.status) for a in listed} == {
        ("income", CRITICAL, OPEN),
        ("age", WARNING, OPEN),
    }
    income = next(a for a in listed if a.feature == "income")
    assert income.labels["alertname"] == "CharterFeaturePsi"
    assert income.started_at == window(0)[1]  # the data clock: the window's end
    assert actions(database) == ["alert.opened", "alert.opened"]
    with database.read() as conn:
        ev = audit.query(conn, action="alert.opened")[0]
        assert audit.verify(conn).ok
    assert ev.actor == "charter-automation" and ev.actor_type == "automation"
    assert ev.subject_type == "alert" and ev.model_name == MODEL
    assert {"fingerprint", "severity", "value", "window_end", "reason"} <= set(ev.payload)
    pending = list_notifications(database, delivery="pending")
    assert len(pending) == 2 and {n.status for n in pending} == {"firing"}
    body = next(n.payload for n in pending if n.alert_id == income.id)
    assert body["alerts"][0]["labels"]["feature"] == "income"
    assert body["alerts"][0]["generatorURL"] == f"https://charter.example.com/ui/alerts/{income.id}"


def test_repeated_breaches_are_one_alert_and_reapplying_a_window_changes_nothing(
    store: AlertStore, database: Database
) -> None:
    policy = AlertPolicy.default()
    values = [0.02, 0.03, 0.15, 0.18, 0.22, 0.28, 0.33, 0.40]
    for i, v in enumerate(values):
        store.apply_window([obs(i, v), obs(i, 0.02, "age")], policy)
    assert count(database, alerts) == 1
    (a,) = store.list_alerts()
    assert (a.status, a.severity, a.windows_breached) == (OPEN, CRITICAL, 6)
    assert a.first_window_end == window(2)[1] and a.last_window_end == window(7)[1]
    assert actions(database) == [
        "alert.opened", "alert.updated", "alert.updated", "alert.escalated", "alert.updated",
        "alert.updated",
    ]  # fmt: skip
    assert [n.status for n in list_notifications(database)] == ["firing", "firing"]
    events = len(actions(database))
    again = store.apply_window([obs(7, 0.01)], policy)  # the same window once more
    assert not again.transitions and again.skipped
    assert len(actions(database)) == events and count(database, alerts) == 1


def test_apply_takes_many_windows_in_time_order(store: AlertStore, database: Database) -> None:
    transitions = store.apply([obs(2, 0.01), obs(0, 0.2), obs(1, 0.01)], AlertPolicy.default())
    assert [t.kind for t in transitions] == ["opened", "updated", "resolved"]
    assert store.list_alerts() == []  # by default only open and acknowledged alerts
    (done,) = store.list_alerts(status="all")
    assert done.status == RESOLVED and done.resolved_by == "charter-automation"
    with pytest.raises(InvalidArgument) as e:
        store.apply_window([obs(3, 0.2), obs(4, 0.2)], AlertPolicy.default())
    assert e.value.field == "observations"
    with pytest.raises(InvalidArgument) as e:
        store.apply_window([obs(3, 0.2)], {"feature_psi": 0.1})  # type: ignore[arg-type]
    assert e.value.field == "policy"


def test_people_acknowledge_and_resolve_with_audit_and_notification(
    store: AlertStore, database: Database, people: Any
) -> None:
    store.apply_window([obs(0, 0.3)], AlertPolicy.default())
    (a,) = store.list_alerts()
    acked = store.acknowledge(people.dev, a.id, "looking into the income feed")
    assert acked.status == ACKNOWLEDGED and acked.acknowledged_by == "dana"
    with pytest.raises(TransitionNotAllowed) as e:
        store.acknowledge(people.val, a.id)
    assert e.value.field == "alert_id" and "dana" in e.value.message
    with pytest.raises(InvalidArgument) as e:
        store.resolve(people.val, a.id, "")
    assert e.value.field == "note"
    done = store.resolve(people.val, a.id, "upstream feed fixed, see INC-42")
    assert done.status == RESOLVED and done.resolved_by == "victor"
    with pytest.raises(TransitionNotAllowed) as e:
        store.resolve(people.admin, a.id, "once more with feeling")
    assert e.value.field == "alert_id" and "victor" in e.value.message
    with pytest.raises(TransitionNotAllowed):
        store.acknowledge(people.admin, a.id)
    assert actions(database) == ["alert.opened", "alert.acknowledged", "alert.resolved"]
    with database.read() as conn:
        resolved = audit.query(conn, action="alert.resolved")[0]
    assert (resolved.actor, resolved.role) == ("victor", "validator")
    assert resolved.payload["note"] == "upstream feed fixed, see INC-42"
    assert [n.status for n in list_notifications(database, alert_id=a.id)] == [
        "firing",
        "resolved",
    ]


def test_who_may_work_an_alert_and_clear_refusals(store: AlertStore, people: Any) -> None:
    store.apply_window([obs(0, 0.3)], AlertPolicy.default())
    (a,) = store.list_alerts()
    for actor in (people.auditor, people.automation):
        with pytest.raises(PermissionDenied):
            store.acknowledge(actor, a.id)
        with pytest.raises(PermissionDenied):
            store.resolve(actor, a.id, "not mine to close")
    store.acknowledge(people.app, a.id)  # approvers (and admins) may
    with pytest.raises(NotFound) as e:
        store.acknowledge(people.dev, a.id + 100)
    assert e.value.field == "alert_id" and "charter alerts list" in (e.value.remedy or "")
    for bad in (0, -1, "1", True):
        with pytest.raises(InvalidArgument) as e2:
            store.resolve(people.dev, bad, "a reason")  # type: ignore[arg-type]
        assert e2.value.field == "alert_id"
    with pytest.raises(InvalidArgument):
        store.list_alerts(status="closed")
    with pytest.raises(InvalidArgument):
        store.list_alerts(severity="urgent")


def test_a_breach_after_resolution_reopens_within_the_cooldown_else_opens_anew(
    store: AlertStore, database: Database, people: Any
) -> None:
    policy = AlertPolicy.from_dict({"cooldown": "45d"})
    store.apply([obs(0, 0.2), obs(1, 0.01), obs(2, 0.01)], policy)  # opened, resolved at 2
    store.apply_window([obs(3, 0.2)], policy)
    assert count(database, alerts) == 1
    (a,) = store.list_alerts()
    assert a.status == OPEN and a.resolved_at is None and a.resolved_by is None
    assert actions(database)[-1] == "alert.reopened"
    # a person resolves it; a breach long after the cooldown is a new alert
    store.resolve(people.dev, a.id, "retrained, see MRM-7")
    store.apply_window([obs(9, 0.2)], policy)
    assert count(database, alerts) == 2
    assert [x.status for x in store.list_alerts(status="all")] == [OPEN, RESOLVED]  # newest first


def test_escalation_puts_an_acknowledged_alert_back_to_open(store: AlertStore, people: Any) -> None:
    store.apply_window([obs(0, 0.12)], AlertPolicy.default())
    (a,) = store.list_alerts()
    store.acknowledge(people.dev, a.id)
    store.apply_window([obs(1, 0.13)], AlertPolicy.default())
    assert store.get(a.id).status == ACKNOWLEDGED
    store.apply_window([obs(2, 0.30)], AlertPolicy.default())
    now = store.get(a.id)
    assert (now.status, now.severity, now.acknowledged_by) == (OPEN, CRITICAL, None)


def test_pending_rows_are_bookkeeping_only(store: AlertStore, database: Database) -> None:
    policy = AlertPolicy.from_dict({"min_windows": 2})
    store.apply_window([obs(0, 0.2)], policy)
    assert count(database, alerts) == 1 and store.list_alerts() == []
    assert store.list_alerts(status="pending")[0].feature == "income"
    assert store.open_counts() == {} and actions(database) == []
    store.apply_window([obs(1, 0.01)], policy)  # the streak breaks: the row goes
    assert count(database, alerts) == 0
    store.apply([obs(2, 0.2), obs(3, 0.2)], policy)
    assert [a.status for a in store.list_alerts()] == [OPEN]
    assert actions(database) == ["alert.opened"]


def test_open_counts_and_filters(store: AlertStore, people: Any) -> None:
    policy = AlertPolicy.default()
    store.apply_window(
        [obs(0, 0.3), obs(0, 0.12, "age"), obs(0, 0.3, model="fraud", feature="amount")], policy
    )
    store.apply_window([obs(0, 0.07, metric="ece", feature="")], policy)
    assert store.open_counts() == {
        "fraud": {"info": 0, "warning": 0, "critical": 1},
        MODEL: {"info": 1, "warning": 1, "critical": 1},
    }
    fraud = store.list_alerts(model="fraud")
    assert [a.feature for a in fraud] == ["amount"]
    store.resolve(people.dev, fraud[0].id, "false alarm: test traffic")
    assert "fraud" not in store.open_counts()
    assert len(store.list_alerts(status="active")) == 3 == len(store.list_alerts())
    assert [a.severity for a in store.list_alerts()] == [CRITICAL, WARNING, "info"]  # worst first
    assert [a.metric for a in store.list_alerts(severity="info")] == ["ece"]
    assert len(store.list_alerts(limit=2)) == 2


def test_a_failure_inside_the_window_leaves_nothing_behind(
    store: AlertStore, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = audit.append
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(store_module.audit, "append", flaky)
    with pytest.raises(RuntimeError):
        store.apply_window([obs(0, 0.3), obs(0, 0.3, "age")], AlertPolicy.default())
    assert count(database, alerts) == 0
    assert count(database, alert_notifications) == 0
    assert count(database, audit_events, audit_events.c.action.startswith("alert.")) == 0
