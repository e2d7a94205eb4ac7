"""Monitoring end to end: a champion validated in simulated time, six months of applications
replayed through the decision log with a drift from month four, then `monitor` over monthly
windows. The issue's alert criterion on real windows: the first WARNING within two windows of the
onset, no CRITICAL on the stable months, and one alert per breaching metric and feature."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from charter.clock import ManualClock
from charter.datasets import retail_pd
from charter.demo_production import Champion, register_champion, replay_live
from charter.monitoring import store
from charter.monitoring.alert_store import AlertStore
from charter.monitoring.policy import MonitoringPolicy
from charter.monitoring.runner import MonitorRun, monitor
from charter.registry.service import Registry
from charter.storage.artifacts import ArtifactStore
from charter.storage.db import Database

START = retail_pd.LIVE_START
ONSET_WINDOW = 3  # [90, 120) days: the drift starts on day 90


@dataclass
class Story:
    reg: Registry
    clock: ManualClock
    champion: Champion
    run: MonitorRun
    live: pd.DataFrame


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    import os
    import uuid

    from sqlalchemy import create_engine, text

    tmp = tmp_path_factory.mktemp("story")
    pg = os.environ.get("CHARTER_TEST_DATABASE_URL")
    schema = None
    if pg:
        schema = f"t_{uuid.uuid4().hex[:16]}"
        admin = create_engine(pg)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        url = pg + ("&" if "?" in pg else "?") + f"options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tmp / 'charter.db'}"
    db = Database(url)
    db.upgrade()
    clock = ManualClock(START - timedelta(days=10))  # validated and deployed before going live
    reg = Registry(db, ArtifactStore(tmp / "artifacts"), clock=clock)
    ident = reg.identity
    ident.bootstrap_admin("ada")
    admin = ident.actor("ada")
    for user, role in (("dana", "developer"), ("victor", "validator"), ("petra", "approver")):
        ident.create_user(admin, user, [role])
    champion = register_champion(
        reg,
        developer=ident.actor("dana"),
        validator=ident.actor("victor"),
        approver=ident.actor("petra"),
        history=retail_pd.history(n=8000),
    )
    live = retail_pd.live(n=12_000)
    clock.now = START
    replay_live(reg, clock, live, canary_every=None, latency_ms=2.0, reasons=False)
    policy = MonitoringPolicy.from_toml(retail_pd.policy_text())
    run = monitor(reg, retail_pd.MODEL, start=START, end=START + timedelta(days=180), policy=policy)
    yield Story(reg, clock, champion, run, live)
    db.dispose()
    if schema is not None:
        admin = create_engine(pg or "")
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_six_monthly_windows_are_stored_with_their_audit_events(story: Story) -> None:
    assert [r.window_start for r in story.run.results] == [
        START + timedelta(days=30 * k) for k in range(6)
    ]
    stored = store.list_windows(story.reg.db, retail_pd.MODEL)
    assert len(stored) == 6
    assert all(w.n_decisions > 1500 for w in stored)
    events = [
        e for e in story.reg.audit_log(model_name=retail_pd.MODEL) if e.action == "monitor.window"
    ]
    assert len(events) == 6
    assert story.reg.verify_audit().ok


def test_alerts_warn_within_two_windows_and_never_critical_before_the_onset(story: Story) -> None:
    alerts = AlertStore(story.reg.db, clock=story.reg.clock).list_alerts(
        model=retail_pd.MODEL, status="all"
    )
    onset_end = START + timedelta(days=30 * (ONSET_WINDOW + 1))
    stable_end = START + timedelta(days=30 * ONSET_WINDOW)
    psi = [a for a in alerts if a.metric == "feature_psi"]
    assert psi, "the drift raised no feature PSI alert"
    first = min(a.first_window_end for a in psi)
    assert first <= onset_end + timedelta(days=30), "first WARNING later than two windows"
    assert {a.feature for a in psi} >= {"income", "debt_to_income", "utilisation"}
    # one alert per (metric, feature), however many windows breached
    keys = [(a.metric, a.feature) for a in alerts]
    assert len(keys) == len(set(keys))
    assert max(a.windows_breached for a in psi) >= 2
    # nothing critical while the population was stable, and the first feature-drift alert is a
    # warning (PSI about 0.2: between the 0.10 and 0.25 bands)
    transitions = story.run.alerts
    assert transitions
    for t in transitions:
        if t.after.severity == "critical":
            assert t.observation.window_end > stable_end, t
    first_psi = [t for t in transitions if t.after.metric == "feature_psi" and t.kind == "opened"]
    assert any(t.after.severity == "warning" for t in first_psi)


def test_the_drift_fires_one_retraining_trigger(story: Story) -> None:
    fired = store.list_triggers(story.reg.db, retail_pd.MODEL)
    t = fired[0]
    assert t.window_end == START + timedelta(days=120)
    assert t.kinds == ("feature_psi",)
    # the next window sees the same drift, inside the 60-day cooldown: judged, not fired
    nxt = [d for d in story.run.triggers if d.window_end == START + timedelta(days=150)]
    assert nxt[0].reasons and not nxt[0].fire and "cooldown" in (nxt[0].suppressed or "")
    # v1 went live ten days before the period: its 180-day schedule is due in the last window
    assert len(fired) == 2
    assert fired[1].window_end == START + timedelta(days=180)
    assert "schedule" in fired[1].kinds


def test_performance_is_judged_on_matured_labels_and_estimated_before(story: Story) -> None:
    results = story.run.results
    live = story.live
    for r in results:
        labels_due = r.window_end + timedelta(days=30) <= story.clock()  # the policy's maturity
        assert (r.labels_status == "matured") == labels_due
        assert (r.value("auc") is not None) == labels_due
    # stable months: the estimate's band holds the realised AUC
    for r in results[:ONSET_WINDOW]:
        t = live["decision_time"]
        part = live[(t >= r.window_start) & (t < r.window_end)]
        est = r.dimensions["estimated"]
        realised = r.value("auc")
        assert realised is not None
        assert est["auc_low"] - 0.01 <= realised <= est["auc_high"] + 0.01
        assert len(part) == r.n


def test_monitor_cli_prints_and_shows_series(
    story: Story, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter.cli import app

    monkeypatch.setenv(
        "CHARTER_DATABASE_URL", str(story.reg.db.engine.url.render_as_string(hide_password=False))
    )
    res = CliRunner().invoke(
        app,
        ["monitor", "show", retail_pd.MODEL, "--metric", "feature_psi", "--feature", "income"],
    )
    assert res.exit_code == 0, res.output
    assert "2026-05-31 .. 2026-06-30" in res.output
    res = CliRunner().invoke(
        app,
        ["monitor", "show", retail_pd.MODEL, "--metric", "feature_psi", "--feature", "income",
         "--json"],
    )  # fmt: skip
    points = json.loads(res.output)
    assert len(points) == 6
    assert points[0]["value"] < 0.1 < points[3]["value"]
    bad = CliRunner().invoke(app, ["monitor", "show", retail_pd.MODEL, "--metric", "nope"])
    assert bad.exit_code == 2
    assert "metric" in bad.output


def test_alert_and_monitor_commands(story: Story, monkeypatch: pytest.MonkeyPatch) -> None:
    from charter.cli import app

    url = story.reg.db.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("CHARTER_DATABASE_URL", url)
    monkeypatch.setenv("CHARTER_HOME", str(Path(story.reg.artifacts.root).parent))
    ident = story.reg.identity
    victor = ident.issue_token(ident.actor("ada"), "victor", label="cli")
    run = CliRunner()
    listed = json.loads(run.invoke(app, ["alerts", "list", "--json"]).output)
    assert listed and all(a["status"] in ("open", "acknowledged") for a in listed)
    first = listed[0]["id"]
    res = run.invoke(app, ["alerts", "ack", str(first), "--note", "looking", "--token", victor])
    assert res.exit_code == 0 and f"alert {first} acknowledged by victor" in res.output
    res = run.invoke(app, ["alerts", "resolve", str(first), "--note", "", "--token", victor])
    assert res.exit_code == 2 and "note" in res.output  # resolving needs a reason
    res = run.invoke(app, ["alerts", "resolve", str(first), "--note", "known", "--token", victor])
    assert res.exit_code == 0 and "resolved by victor" in res.output
    res = run.invoke(app, ["alerts", "ack", "999999", "--note", "x", "--token", victor])
    assert res.exit_code != 0 and "999999" in res.output
    # a recomputation from the CLI, as JSON: the same windows, judged as of the clock
    res = run.invoke(
        app,
        ["monitor", "run", retail_pd.MODEL, "--start", "2026-01-01", "--end", "2026-03-02",
         "--policy", str(_policy_file(story)), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    windows = json.loads(res.output)["windows"]
    assert [w["window_start"][:10] for w in windows] == ["2026-01-01", "2026-01-31"]
    res = run.invoke(app, ["monitor", "run", retail_pd.MODEL, "--window", "30x"])
    assert res.exit_code == 2 and "window" in res.output
    res = run.invoke(app, ["pipeline", "status", "--json"])
    assert res.exit_code == 0 and json.loads(res.output) == []


def _policy_file(story: Story) -> Path:
    path = Path(story.reg.artifacts.root).parent / "retail_pd_policy.toml"
    path.write_text(retail_pd.policy_text(), encoding="utf-8")
    return path
