"""Alert notifications: the Alertmanager webhook payload, and delivery from the outbox.

The alert store writes one row to ``alert_notifications`` in the same transaction as the alert
change that calls for it (the *outbox*); :func:`deliver_pending` posts the pending rows later, so
a crash between the two loses nothing. Delivery is at least once: a receiver may see the same
notification twice (when a post succeeded but its bookkeeping did not), and should de-duplicate
on the alert's ``fingerprint`` and ``status``, as it would for Alertmanager.

The payload is Alertmanager's webhook format (``version`` "4"), one alert per notification::

    {"version": "4", "groupKey": "{}:{alertname=\\"CharterFeaturePsi\\", ...}",
     "truncatedAlerts": 0, "status": "firing", "receiver": "charter",
     "groupLabels": {...}, "commonLabels": {...}, "commonAnnotations": {...},
     "externalURL": "https://charter.example.com",
     "alerts": [{"status": "firing", "labels": {"alertname", "severity", "model", "version",
                 "metric", "feature"}, "annotations": {"summary", "description", ...},
                 "startsAt": "2026-07-31T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "...", "fingerprint": "<16 hex>"}]}

The group labels are ``alertname``, ``model`` and ``feature``, so every alert has a group (and a
``groupKey``) of its own: a receiver that opens one incident per group (PagerDuty, Opsgenie) never
lets the resolution of one feature's drift close another's. ``endsAt`` is Alertmanager's zero
time while an alert fires; times are RFC 3339 in UTC. Labels with empty values are left out.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from charter import audit
from charter.clock import Clock, iso, parse_iso, system_clock
from charter.entities import Actor, Role
from charter.errors import InvalidArgument
from charter.identity import AUTOMATION_USER
from charter.monitoring.alerts import RESOLVED, Alert
from charter.monitoring.catalogue import METRICS
from charter.storage import jsonutil
from charter.storage.db import Database
from charter.storage.schema import alert_notifications, alerts

ZERO_TIME = "0001-01-01T00:00:00Z"
PAYLOAD_VERSION = "4"
GROUP_BY = ("alertname", "model", "feature")
DELIVERIES = ("pending", "sent", "failed")
USER_AGENT = "charter-alerts/1"

AUTOMATION = Actor(username=AUTOMATION_USER, roles=frozenset({Role.SERVICE}), is_automation=True)


def rfc3339(ts: datetime) -> str:
    """``2026-07-31T00:00:00Z``, with a fraction only when there is one (as Go writes it)."""
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    t = ts.astimezone(UTC)
    frac = f".{t.microsecond:06d}".rstrip("0") if t.microsecond else ""
    return t.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def group_key(group_labels: Mapping[str, str]) -> str:
    """Alertmanager's ``groupKey`` for the root route: ``{}:{a="x", b="y"}``."""
    inner = ", ".join(f"{k}={_quote(v)}" for k, v in sorted(group_labels.items()))
    return "{}:{" + inner + "}"


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def annotations_of(alert: Alert) -> dict[str, str]:
    """``summary`` (one line) and ``description`` (the evidence), plus the raw numbers."""
    metric = METRICS.get(alert.metric)
    what = f"{alert.metric} ({metric.help})" if metric is not None else alert.metric
    where = f"model {alert.model}" + ("" if alert.version is None else f" version {alert.version}")
    if alert.feature:
        where += f", feature {alert.feature}"
    if alert.status == RESOLVED:
        state = f"resolved after {alert.windows_breached} breaching window(s)"
        if alert.resolved_by and alert.resolved_by != AUTOMATION_USER:
            state += f", by {alert.resolved_by}"
    else:
        state = (
            f"{alert.severity}: value {_num(alert.value)} against the threshold "
            f"{_num(alert.threshold)}, {alert.windows_breached} breaching window(s) since the "
            f"window ending {iso(alert.first_window_end)}"
        )
    description = (
        f"{what} for {where} is {_num(alert.value)} in the window ending "
        f"{iso(alert.last_window_end)}; {state}. Charter alert {alert.id}."
    )
    out = {
        "summary": alert.summary,
        "description": description,
        "alert_id": str(alert.id),
        "window_end": rfc3339(alert.last_window_end),
    }
    if alert.value is not None:
        out["value"] = _num(alert.value)
    if alert.threshold is not None:
        out["threshold"] = _num(alert.threshold)
    return out


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def alert_entry(alert: Alert, *, external_url: str = "") -> dict[str, Any]:
    """One element of the payload's ``alerts`` list."""
    resolved = alert.status == RESOLVED
    ends = alert.resolved_at if resolved and alert.resolved_at is not None else None
    base = external_url.rstrip("/")
    return {
        "status": "resolved" if resolved else "firing",
        "labels": dict(alert.labels),
        "annotations": annotations_of(alert),
        "startsAt": rfc3339(alert.started_at),
        "endsAt": ZERO_TIME if ends is None else rfc3339(ends),
        "generatorURL": f"{base}/ui/alerts/{alert.id}" if base else "",
        "fingerprint": alert.fingerprint[:16],
    }


def build_payload(
    alerts_: Sequence[Alert], *, receiver: str = "charter", external_url: str = ""
) -> dict[str, Any]:
    """The Alertmanager webhook body for ``alerts_`` (normally one alert)."""
    if not alerts_:
        raise InvalidArgument(
            "a notification needs at least one alert", field="alerts", remedy="pass an alert"
        )
    entries = [alert_entry(a, external_url=external_url) for a in alerts_]
    common_labels = _common([e["labels"] for e in entries])
    group = {k: common_labels[k] for k in GROUP_BY if k in common_labels}
    return {
        "version": PAYLOAD_VERSION,
        "groupKey": group_key(group),
        "truncatedAlerts": 0,
        "status": "firing" if any(e["status"] == "firing" for e in entries) else "resolved",
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": common_labels,
        "commonAnnotations": _common([e["annotations"] for e in entries]),
        "externalURL": external_url,
        "alerts": entries,
    }


# ------------------------------------------------------------------------------------ delivery
@dataclass(frozen=True)
class Notification:
    """One outbox row."""

    id: int
    alert_id: int
    status: str  # firing | resolved
    payload: Mapping[str, Any]
    delivery: str  # pending | sent | failed
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class DeliveryError:
    notification_id: int
    alert_id: int
    attempt: int
    error: str
    gave_up: bool


@dataclass(frozen=True)
class DeliveryReport:
    """What one :func:`deliver_pending` pass did; network errors are reported, never raised."""

    attempted: int
    sent: int
    retrying: int
    failed: int
    errors: tuple[DeliveryError, ...]
    deferred: int = 0  # not tried: the receiver did not answer earlier in the pass

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempted": self.attempted,
            "sent": self.sent,
            "retrying": self.retrying,
            "failed": self.failed,
            "deferred": self.deferred,
            "errors": [
                {
                    "notification_id": e.notification_id,
                    "alert_id": e.alert_id,
                    "attempt": e.attempt,
                    "error": e.error,
                    "gave_up": e.gave_up,
                }
                for e in self.errors
            ],
        }

    def __str__(self) -> str:
        head = (
            f"{self.attempted} notification(s): {self.sent} sent, {self.retrying} to retry, "
            f"{self.failed} given up"
            + (f", {self.deferred} left for the next pass" if self.deferred else "")
        )
        lines = [
            f"  notification {e.notification_id} (alert {e.alert_id}), attempt {e.attempt}"
            f"{' (gave up)' if e.gave_up else ''}: {e.error}"
            for e in self.errors
        ]
        return "\n".join([head, *lines])


def _to_notification(r: Any) -> Notification:
    m = r._mapping
    return Notification(
        id=m["id"],
        alert_id=m["alert_id"],
        status=m["status"],
        payload=jsonutil.loads(m["payload"]),
        delivery=m["delivery"],
        attempts=m["attempts"],
        last_error=m["last_error"],
        created_at=parse_iso(m["created_at"]),
        sent_at=None if m["sent_at"] is None else parse_iso(m["sent_at"]),
    )


def list_notifications(
    db: Database, *, alert_id: int | None = None, delivery: str | None = None
) -> list[Notification]:
    """Outbox rows, oldest first, by alert and delivery state."""
    if delivery is not None and delivery not in DELIVERIES:
        raise InvalidArgument(
            f"unknown delivery state {delivery!r}",
            field="delivery",
            remedy=f"use one of: {', '.join(DELIVERIES)}",
        )
    stmt = select(alert_notifications).order_by(alert_notifications.c.id)
    if alert_id is not None:
        stmt = stmt.where(alert_notifications.c.alert_id == alert_id)
    if delivery is not None:
        stmt = stmt.where(alert_notifications.c.delivery == delivery)
    with db.read() as conn:
        return [_to_notification(r) for r in conn.execute(stmt)]


def check_url(url: str) -> str:
    """An ``http`` or ``https`` URL with a host (nothing else is posted to)."""
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(
            f"the webhook URL {url!r} is not an http(s) URL",
            field="url",
            remedy="pass the receiver's URL, e.g. http://alertmanager-webhook:9095/alerts",
        )
    return url


def _safe_url(url: str) -> str:
    """Scheme, host and port only: webhook paths and queries often carry secrets."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    return f"{p.scheme}://{host}" + (f":{p.port}" if p.port else "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: a notification is posted only to the URL configured."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _post(
    url: str, body: bytes, timeout: float, headers: Mapping[str, str]
) -> tuple[str | None, bool]:
    """POST ``body``: (None on a 2xx answer, else the error in words; whether the receiver
    answered at all)."""
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("User-Agent", USER_AGENT)
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            status = int(resp.status)
            if 200 <= status < 300:
                return None, True
            return f"HTTP {status}", True
    except urllib.error.HTTPError as e:
        try:
            detail = e.read(200).decode("utf-8", "replace").strip()
        except OSError:
            detail = ""
        finally:
            e.close()
        return f"HTTP {e.code} {e.reason}" + (f": {detail}" if detail else ""), True
    except urllib.error.URLError as e:
        return f"cannot reach the receiver: {e.reason}", False
    except TimeoutError:
        return f"no answer within {timeout:g} s", False
    except (OSError, ValueError) as e:  # connection reset, bad status line, ...
        return f"{type(e).__name__}: {e}", False


def deliver_pending(
    db: Database,
    url: str,
    *,
    timeout: float = 10.0,
    max_attempts: int = 5,
    clock: Clock = system_clock,
    limit: int = 500,
    headers: Mapping[str, str] | None = None,
) -> DeliveryReport:
    """Post every pending notification (oldest first, at most ``limit``) to ``url``, once each.

    A 2xx answer marks it ``sent``; anything else counts an attempt and keeps the error, and the
    ``max_attempts``-th failure marks it ``failed`` (it is not tried again). When the receiver
    does not answer at all (refused, unreachable, timed out), the pass stops there and leaves the
    rest pending (``deferred``) rather than wait ``timeout`` for each. Run it again later
    (``charter alerts deliver``) to retry; it never sleeps. Sent and failed notifications are
    audit events (``alert.notified``, ``alert.notification_failed``) naming only the receiver's
    scheme, host and port.
    """
    check_url(url)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise InvalidArgument(
            f"timeout must be a positive number of seconds, not {timeout!r}",
            field="timeout",
            remedy="e.g. --timeout 10",
        )
    for name, n in (("max_attempts", max_attempts), ("limit", limit)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidArgument(
                f"{name} must be a whole number of at least 1, not {n!r}",
                field=name,
                remedy=f"e.g. --{name.replace('_', '-')} 5",
            )
    with db.read() as conn:
        rows = conn.execute(
            select(alert_notifications, alerts.c.model_name)
            .join(alerts, alerts.c.id == alert_notifications.c.alert_id)
            .where(alert_notifications.c.delivery == "pending")
            .order_by(alert_notifications.c.id)
            .limit(limit)
        ).all()
    sent = retrying = failed = attempted = 0
    errors: list[DeliveryError] = []
    receiver = _safe_url(url)
    answered = True
    for r in rows:
        if not answered:  # the receiver is away: leave the rest for the next pass
            break
        body = r.payload.encode("utf-8")
        error, answered = _post(url, body, float(timeout), headers or {})
        attempted += 1
        attempt = r.attempts + 1
        gave_up = error is not None and attempt >= max_attempts
        delivery = "sent" if error is None else ("failed" if gave_up else "pending")
        with db.write() as conn:
            done = conn.execute(
                alert_notifications.update()
                .where(
                    alert_notifications.c.id == r.id,
                    alert_notifications.c.delivery == "pending",
                    alert_notifications.c.attempts == r.attempts,
                )
                .values(
                    delivery=delivery,
                    attempts=attempt,
                    last_error=error,
                    sent_at=iso(clock()) if error is None else None,
                )
            ).rowcount
            if done and delivery != "pending":
                audit.append(
                    conn,
                    actor=AUTOMATION,
                    role=Role.SERVICE.value,
                    action="alert.notified" if error is None else "alert.notification_failed",
                    subject=audit.Subject("alert", str(r.alert_id), r.model_name),
                    payload={
                        "notification_id": r.id,
                        "status": r.status,
                        "receiver": receiver,
                        "attempts": attempt,
                        "error": error,
                    },
                    clock=clock,
                )
        if not done:  # another deliverer handled it meanwhile
            continue
        if error is None:
            sent += 1
        else:
            errors.append(DeliveryError(r.id, r.alert_id, attempt, error, gave_up))
            if gave_up:
                failed += 1
            else:
                retrying += 1
    return DeliveryReport(
        attempted=attempted,
        sent=sent,
        retrying=retrying,
        failed=failed,
        errors=tuple(errors),
        deferred=len(rows) - attempted,
    )


def payload_text(payload: Mapping[str, Any]) -> str:
    """The stored (and posted) text of a payload: canonical JSON."""
    return jsonutil.dumps(payload)
