"""Webhook delivery from the outbox to a real HTTP receiver on loopback: the Alertmanager payload,
a retry after a server error, an unreachable receiver, and what the audit trail says."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from charter import audit
from charter.clock import ManualClock
from charter.errors import InvalidArgument
from charter.monitoring.alert_store import AlertStore
from charter.monitoring.alerts import AlertPolicy, Observation
from charter.monitoring.notify import ZERO_TIME, deliver_pending, list_notifications
from charter.storage.db import Database

START = datetime(2026, 1, 1, tzinfo=UTC)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (then 200), and keeps what it got."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)
    hold: bool = False


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = state.statuses.pop(0) if state.statuses else 200
            state.arrived.set()
            if state.hold:  # a receiver that does not answer in time
                state.release.wait(10)
            state.received.append(json.loads(body))
            state.headers.append(dict(self.headers))
            payload = b"boom" if status >= 500 else b"ok"
            try:
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up waiting
                pass

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token"
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def obs(i: int, value: float, feature: str = "income") -> Observation:
    return Observation(
        metric="feature_psi",
        value=value,
        feature=feature,
        model="pd-model",
        version=3,
        window_start=START + timedelta(days=30 * i),
        window_end=START + timedelta(days=30 * (i + 1)),
    )


@pytest.fixture
def store(database: Database, clock: ManualClock) -> AlertStore:
    return AlertStore(database, clock, receiver="risk-team", external_url="https://charter.bank")


def test_the_payload_is_alertmanagers_webhook_format(
    store: AlertStore, database: Database, clock: ManualClock, receiver: Receiver, people: Any
) -> None:
    store.apply_window([obs(0, 0.31)], AlertPolicy.default())
    report = deliver_pending(database, receiver.url, clock=clock)
    assert (report.attempted, report.sent, report.retrying, report.failed) == (1, 1, 0, 0)
    assert report.ok
    (body,) = receiver.received
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert set(body) == {
        "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
        "commonLabels", "commonAnnotations", "externalURL", "alerts",
    }  # fmt: skip
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["receiver"] == "risk-team" and body["externalURL"] == "https://charter.bank"
    assert body["truncatedAlerts"] == 0
    assert body["groupLabels"] == {
        "alertname": "CharterFeaturePsi",
        "model": "pd-model",
        "feature": "income",
    }
    assert body["groupKey"] == (
        '{}:{alertname="CharterFeaturePsi", feature="income", model="pd-model"}'
    )
    (alert,) = body["alerts"]
    assert set(alert) == {
        "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint",
    }  # fmt: skip
    assert alert["status"] == "firing"
    assert alert["labels"] == {
        "alertname": "CharterFeaturePsi",
        "severity": "critical",
        "model": "pd-model",
        "version": "3",
        "metric": "feature_psi",
        "feature": "income",
    }
    assert body["commonLabels"] == alert["labels"]
    assert body["commonAnnotations"] == alert["annotations"]
    assert {"summary", "description"} <= set(alert["annotations"])
    assert "income" in alert["annotations"]["summary"]
    assert "0.31" in alert["annotations"]["summary"]
    assert alert["startsAt"] == "2026-01-31T00:00:00Z" and RFC3339.match(alert["startsAt"])
    assert alert["endsAt"] == ZERO_TIME == "0001-01-01T00:00:00Z"
    assert re.fullmatch(r"[0-9a-f]{16}", alert["fingerprint"])
    assert alert["generatorURL"].startswith("https://charter.bank/ui/alerts/")

    (n,) = list_notifications(database)
    assert (n.delivery, n.attempts, n.last_error) == ("sent", 1, None)
    with database.read() as conn:
        (ev,) = audit.query(conn, action="alert.notified")
    assert ev.actor == "charter-automation"
    assert ev.payload["receiver"] == f"http://127.0.0.1:{urlsplit(receiver.url).port}"
    assert "secret-token" not in json.dumps(ev.payload)  # the webhook path can be a secret

    # resolution by a person: a "resolved" notification with a real endsAt
    store.resolve(people.dev, int(alert["annotations"]["alert_id"]), "feed repaired, INC-9")
    deliver_pending(database, receiver.url, clock=clock)
    resolved = receiver.received[-1]
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] != ZERO_TIME
    assert RFC3339.match(resolved["alerts"][0]["endsAt"])
    assert resolved["alerts"][0]["fingerprint"] == alert["fingerprint"]
    # nothing pending: another pass posts nothing
    assert deliver_pending(database, receiver.url, clock=clock).attempted == 0
    assert len(receiver.received) == 2


def test_a_server_error_is_retried_on_the_next_pass(
    store: AlertStore, database: Database, clock: ManualClock, receiver: Receiver
) -> None:
    store.apply_window([obs(0, 0.2)], AlertPolicy.default())
    receiver.statuses = [500]
    first = deliver_pending(database, receiver.url, clock=clock, max_attempts=3)
    assert (first.sent, first.retrying, first.failed) == (0, 1, 0)
    (err,) = first.errors
    assert err.attempt == 1 and not err.gave_up and err.error.startswith("HTTP 500")
    (n,) = list_notifications(database)
    assert (n.delivery, n.attempts) == ("pending", 1) and "500" in (n.last_error or "")
    second = deliver_pending(database, receiver.url, clock=clock, max_attempts=3)
    assert (second.sent, second.retrying, second.failed) == (1, 0, 0)
    (n,) = list_notifications(database)
    assert (n.delivery, n.attempts, n.last_error) == ("sent", 2, None)
    assert n.sent_at is not None
    assert len(receiver.received) == 2  # the same payload, twice
    assert receiver.received[0] == receiver.received[1]


def test_an_unreachable_receiver_is_reported_then_given_up(
    store: AlertStore, database: Database, clock: ManualClock
) -> None:
    store.apply_window([obs(0, 0.2), obs(0, 0.3, "age")], AlertPolicy.default())
    url = f"http://127.0.0.1:{free_port()}/alerts"
    passes = []
    for _ in range(4):  # the pass stops at the first unanswered post: one notification a pass
        passes.append(deliver_pending(database, url, clock=clock, max_attempts=2, timeout=2))
    assert [(p.attempted, p.deferred, p.retrying, p.failed) for p in passes] == [
        (1, 1, 1, 0),
        (1, 1, 0, 1),
        (1, 0, 1, 0),
        (1, 0, 0, 1),
    ]
    assert all("cannot reach" in p.errors[0].error for p in passes)
    assert "1 left for the next pass" in str(passes[0])
    assert passes[0].to_dict()["errors"][0]["attempt"] == 1
    assert {n.delivery for n in list_notifications(database)} == {"failed"}
    assert deliver_pending(database, url, clock=clock).attempted == 0  # failed is final
    with database.read() as conn:
        failed = audit.query(conn, action="alert.notification_failed")
    assert len(failed) == 2 and failed[0].payload["attempts"] == 2
    assert "cannot reach" in failed[0].payload["error"]


def test_a_slow_receiver_times_out_and_a_redirect_is_not_followed(
    store: AlertStore, database: Database, clock: ManualClock, receiver: Receiver
) -> None:
    store.apply_window([obs(0, 0.2)], AlertPolicy.default())
    receiver.hold = True
    slow = deliver_pending(database, receiver.url, clock=clock, timeout=0.2)
    assert slow.retrying == 1 and "0.2" in slow.errors[0].error
    assert receiver.arrived.wait(10)  # it had taken its status before we change the script
    receiver.release.set()
    receiver.hold = False
    receiver.statuses = [302]
    moved = deliver_pending(database, receiver.url, clock=clock)
    assert moved.retrying == 1 and moved.errors[0].error.startswith("HTTP 302")


def test_bad_arguments_are_refused_before_anything_is_sent(database: Database) -> None:
    for url in ("file:///etc/passwd", "ftp://example.com/x", "http://", "alerts"):
        with pytest.raises(InvalidArgument) as e:
            deliver_pending(database, url)
        assert e.value.field == "url"
    with pytest.raises(InvalidArgument) as e:
        deliver_pending(database, "http://127.0.0.1:9/x", timeout=0)
    assert e.value.field == "timeout"
    with pytest.raises(InvalidArgument) as e:
        deliver_pending(database, "http://127.0.0.1:9/x", max_attempts=0)
    assert e.value.field == "max_attempts"
