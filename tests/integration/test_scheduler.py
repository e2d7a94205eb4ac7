"""`charter scheduler`: its configuration is checked key by key, a tick monitors each window that
has closed, recomputes a window once its labels mature (judging only its performance then),
delivers the alert outbox, and a second tick at the same time does nothing."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from charter.clock import ManualClock
from charter.datasets import retail_pd
from charter.demo_production import register_champion, replay_live
from charter.errors import InvalidArgument
from charter.monitoring import store
from charter.registry.service import Registry
from charter.scheduler import Scheduler, SchedulerConfig

START = retail_pd.LIVE_START


def test_the_configuration_is_checked(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text("[monitoring]\nwindow = '30d'\n")
    ok = SchedulerConfig.from_toml(
        '[scheduler]\ninterval = "1d"\n[[models]]\nname = "m"\npolicy = "p.toml"\n', tmp_path
    )
    assert ok.interval == timedelta(days=1) and ok.models[0].policy == tmp_path / "p.toml"
    for text, field in (
        ('[scheduler]\nintervall = "1d"\n[[models]]\nname = "m"\n', "scheduler.intervall"),
        ('[[models]]\nname = "m"\npolicy = "missing.toml"\n', "models[0].policy"),
        ('[[models]]\nnom = "m"\n', "models[0].nom"),
        ("[scheduler]\n", "models"),
        ('[scheduler]\nwebhook = "ftp://x"\n[[models]]\nname = "m"\n', "scheduler.webhook"),
        ('[[models]]\nname = "m"\nstart = "soon"\n', "models[0].start"),
    ):
        with pytest.raises(InvalidArgument) as e:
            SchedulerConfig.from_toml(text, tmp_path)
        assert e.value.field == field, text


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


def test_ticks_monitor_recompute_and_deliver(
    registry: Registry,
    clock: ManualClock,
    people: Any,
    tmp_path: Path,
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, got = receiver
    clock.now = START - timedelta(days=10)
    clock.step = timedelta(0)
    register_champion(
        registry,
        developer=people.dev,
        validator=people.val,
        approver=people.app,
        history=retail_pd.history(n=8000),
    )
    live = retail_pd.live(n=8000)
    live = live[live["decision_time"] < START + timedelta(days=120)]
    (tmp_path / "policy.toml").write_text(retail_pd.policy_text())
    (tmp_path / "scheduler.toml").write_text(
        f'[scheduler]\ninterval = "1d"\nwebhook = "{url}"\n'
        '[[models]]\nname = "retail-pd"\npolicy = "policy.toml"\nstart = "2026-01-01"\n'
    )
    sched = Scheduler(registry, SchedulerConfig.load(tmp_path / "scheduler.toml"))
    clock.now = START
    replay_live(registry, clock, live, canary_every=None, latency_ms=2.0, reasons=False)

    first = sched.tick(START + timedelta(days=121))
    assert first.windows == {"retail-pd": 4} and first.recomputed == {"retail-pd": 0}
    windows = store.list_windows(registry.db, "retail-pd")
    # label maturity is 30 days: the first three windows are judged, the fourth is pending
    assert [w.labels_status for w in windows] == ["matured", "matured", "matured", "pending"]
    assert got and all(p["version"] == "4" for p in got)  # the drift's alerts, delivered
    assert first.delivered.sent == len(got)

    again = sched.tick(START + timedelta(days=121))
    assert again.windows == {"retail-pd": 0} and again.recomputed == {"retail-pd": 0}
    assert again.alerts == 0 and again.delivered.attempted == 0

    later = sched.tick(START + timedelta(days=150, hours=1))
    assert later.windows == {"retail-pd": 0}  # no window closed: the live data ended on day 120
    assert later.recomputed == {"retail-pd": 1}  # day 90-120's labels matured on day 150
    recomputed = store.list_windows(registry.db, "retail-pd")[-1]
    assert recomputed.labels_status == "matured"
    assert recomputed.report["dimensions"]["performance"]["judged"] is True
    events = [e for e in registry.audit_log(model_name="retail-pd") if e.action == "monitor.window"]
    assert len(events) == 5 and events[-1].payload["replaced"] is True
