"""Alerts in the database: one window's observations applied through the pure engine
(:func:`charter.monitoring.alerts.evaluate`), and the people's side of the life cycle.

Every change is one transaction with its audit events:

* :meth:`AlertStore.apply_window` loads the alerts that may change (pending, open, acknowledged,
  and resolved ones still inside their rule's cooldown), evaluates the window, writes the alert
  rows, one audit event per transition (``alert.opened``, ``alert.reopened``, ``alert.escalated``,
  ``alert.deescalated``, ``alert.updated``, ``alert.resolved``; actor ``charter-automation``,
  role ``service``) and a webhook outbox row (``alert_notifications``) per transition that
  notifies. Re-applying a window that was applied already changes nothing.
* :meth:`AlertStore.acknowledge` (open -> acknowledged) and :meth:`AlertStore.resolve` (open or
  acknowledged -> resolved, with a note saying why; it notifies ``resolved``) are for people who
  hold one of the roles developer, validator, approver or admin: the model's developers and its
  risk managers work the alert. An auditor only reads (independence); a service token is for
  scoring systems and automation, and automation resolves alerts only through the engine.

Status moves open -> acknowledged -> resolved, or open -> resolved; an escalation puts an
acknowledged alert back to open (a worse problem needs a fresh look) and a breach within the
cooldown re-opens a resolved one. ``pending`` rows are the engine's bookkeeping for ``min_windows``
above 1 (a breach streak not yet long enough): they are neither listed by default, counted,
audited nor notified, and are deleted when the streak breaks.

Times: what the engine decides is stamped on the *data* clock, the end of the window that caused
it (``started_at``, ``last_notified_at``, an automatic ``resolved_at``), so replaying history gives
the same alerts as running live. ``updated_at``, ``acknowledged_at`` and a person's
``resolved_at`` are wall-clock times from the store's clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, case, func, select

from charter import audit
from charter.clock import Clock, iso, parse_iso, system_clock
from charter.entities import Actor, Role
from charter.errors import InvalidArgument, NotFound, TransitionNotAllowed
from charter.identity import AUTOMATION_USER, require_role
from charter.monitoring.alerts import (
    ACKNOWLEDGED,
    ACTIVE,
    OPEN,
    PENDING,
    RESOLVED,
    SEVERITIES,
    STATUSES,
    Alert,
    AlertPolicy,
    AlertState,
    Evaluation,
    Observation,
    Transition,
    evaluate,
    labels_of,
)
from charter.monitoring.notify import AUTOMATION, build_payload, payload_text
from charter.storage import jsonutil
from charter.storage.db import Database, inserted_id
from charter.storage.schema import alert_notifications, alerts

# Who may acknowledge or resolve an alert (any one of them).
ALERT_ROLES = (Role.DEVELOPER, Role.VALIDATOR, Role.APPROVER, Role.ADMIN)
MAX_NOTE = 2000
MIN_RESOLVE_NOTE = 5


@dataclass(frozen=True)
class AppliedWindow:
    """What :meth:`AlertStore.apply_window` did. Each transition's ``after.alert_id`` is set."""

    window_end: datetime | None
    transitions: tuple[Transition, ...]
    notification_ids: tuple[int, ...]
    skipped: tuple[str, ...] = ()

    def alert_ids(self) -> tuple[int, ...]:
        return tuple(sorted({t.after.alert_id for t in self.transitions if t.after.alert_id}))


def _t(text: str | None) -> datetime | None:
    return None if text is None else parse_iso(text)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else iso(ts)


def alert_from_row(r: Row[Any]) -> Alert:
    m = r._mapping
    return Alert(
        id=m["id"],
        fingerprint=m["fingerprint"],
        model=m["model_name"],
        version=m["version"],
        metric=m["rule"],
        feature=m["feature"],
        severity=m["severity"],
        status=m["status"],
        value=m["value"],
        threshold=m["threshold"],
        summary=m["summary"],
        labels=jsonutil.loads(m["labels"]),
        first_window_end=parse_iso(m["first_window_end"]),
        last_window_end=parse_iso(m["last_window_end"]),
        windows_breached=m["windows_breached"],
        clean_windows=m["clean_windows"],
        started_at=parse_iso(m["started_at"]),
        updated_at=parse_iso(m["updated_at"]),
        last_notified_at=_t(m["last_notified_at"]),
        acknowledged_by=m["acknowledged_by"],
        acknowledged_at=_t(m["acknowledged_at"]),
        resolved_by=m["resolved_by"],
        resolved_at=_t(m["resolved_at"]),
    )


def count_active(conn: Connection) -> dict[tuple[str, str, str], int]:
    """Open and acknowledged alerts by (model, severity, status)."""
    rows = conn.execute(
        select(alerts.c.model_name, alerts.c.severity, alerts.c.status, func.count())
        .where(alerts.c.status.in_(ACTIVE))
        .group_by(alerts.c.model_name, alerts.c.severity, alerts.c.status)
    )
    return {(m, s, st): int(n) for m, s, st, n in rows}


def _positive_id(alert_id: Any) -> int:
    if isinstance(alert_id, bool) or not isinstance(alert_id, int) or alert_id < 1:
        raise InvalidArgument(
            f"an alert id is a positive whole number, not {alert_id!r}",
            field="alert_id",
            remedy="take the id from `charter alerts list`",
        )
    return alert_id


def _note(note: Any, *, required: bool) -> str:
    if note is None:
        note = ""
    if not isinstance(note, str):
        raise InvalidArgument("the note must be text", field="note", remedy="pass --note TEXT")
    text = note.strip()
    if len(text) > MAX_NOTE:
        raise InvalidArgument(
            f"the note is longer than {MAX_NOTE} characters",
            field="note",
            remedy="shorten it and link to the full write-up",
        )
    if required and len(text) < MIN_RESOLVE_NOTE:
        raise InvalidArgument(
            "resolving an alert needs a note saying why it is resolved",
            field="note",
            remedy='pass --note "retrained on recent data, see ticket 123"',
        )
    return text


def _acting_role(actor: Actor) -> str:
    for r in ALERT_ROLES:
        if actor.has(r):
            return r.value
    return ",".join(sorted(r.value for r in actor.roles))  # pragma: no cover - checked before


class AlertStore:
    """The alerts of every model in one database. ``receiver`` and ``external_url`` go into the
    Alertmanager payloads written to the outbox."""

    def __init__(
        self,
        db: Database,
        clock: Clock = system_clock,
        *,
        receiver: str = "charter",
        external_url: str = "",
    ) -> None:
        self.db = db
        self.clock = clock
        self.receiver = receiver
        self.external_url = external_url

    # -- the engine's side ------------------------------------------------------------------
    def load_state(
        self, conn: Connection, models: Iterable[str], now: datetime, cooldown: timedelta
    ) -> dict[str, AlertState]:
        """Pending and active alerts of ``models``, and resolved ones whose last judged window
        ended within ``cooldown`` of ``now`` (they may re-open), newest row per fingerprint."""
        names = sorted(set(models))
        rows = conn.execute(
            select(alerts)
            .where(
                alerts.c.model_name.in_(names),
                (alerts.c.status != RESOLVED) | (alerts.c.last_window_end >= iso(now - cooldown)),
            )
            .order_by(alerts.c.id)
        ).all()
        out: dict[str, AlertState] = {}
        for r in rows:
            a = alert_from_row(r)
            have = out.get(a.fingerprint)
            if have is not None and have.status != RESOLVED and a.status == RESOLVED:
                continue
            out[a.fingerprint] = a.state()
        return out

    def apply(
        self, observations: Iterable[Observation], policy: AlertPolicy
    ) -> tuple[Transition, ...]:
        """Observations of any number of windows: grouped by ``window_end`` and applied in time
        order, one :meth:`apply_window` (one transaction) per window; every transition."""
        by_end: dict[datetime, list[Observation]] = {}
        for o in observations:
            if not isinstance(o, Observation):
                raise InvalidArgument(
                    f"{type(o).__name__} is not an Observation",
                    field="observations",
                    remedy="build charter.monitoring.alerts.Observation values",
                )
            by_end.setdefault(o.window_end, []).append(o)
        out: list[Transition] = []
        for end in sorted(by_end):
            out.extend(self.apply_window(by_end[end], policy).transitions)
        return tuple(out)

    def apply_window(
        self, observations: Iterable[Observation], policy: AlertPolicy
    ) -> AppliedWindow:
        """Judge one window's observations (all with the same ``window_end``) under ``policy``
        and record the outcome: alert rows, audit events and outbox rows, in one transaction."""
        obs = list(observations)
        for i, o in enumerate(obs):
            if not isinstance(o, Observation):
                raise InvalidArgument(
                    f"observations[{i}] is a {type(o).__name__}, not an Observation",
                    field=f"observations[{i}]",
                    remedy="build charter.monitoring.alerts.Observation values",
                )
        if not isinstance(policy, AlertPolicy):
            raise InvalidArgument(
                "policy must be an AlertPolicy",
                field="policy",
                remedy="use AlertPolicy.from_toml(text) or AlertPolicy.default()",
            )
        if not obs:
            return AppliedWindow(None, (), ())
        ends = {o.window_end for o in obs}
        if len(ends) > 1:
            raise InvalidArgument(
                f"the observations span {len(ends)} windows; apply one window at a time",
                field="observations",
                remedy="group observations by window_end and apply the windows in time order",
            )
        now = obs[0].window_end
        cooldown = max((r.cooldown for r in policy.rules.values()), default=timedelta(0))
        with self.db.write() as conn:
            before = self.load_state(conn, {o.model for o in obs}, now, cooldown)
            ev = evaluate(before, obs, policy, now)
            ids = self._write_states(conn, before, ev)
            transitions: list[Transition] = []
            notification_ids: list[int] = []
            for t in ev.transitions:
                alert_id = ids[t.after.fingerprint]
                t = replace(t, after=replace(t.after, alert_id=alert_id))
                transitions.append(t)
                nid = self._record(conn, t, alert_id)
                if nid is not None:
                    notification_ids.append(nid)
        return AppliedWindow(now, tuple(transitions), tuple(notification_ids), ev.skipped)

    def _write_states(
        self, conn: Connection, before: Mapping[str, AlertState], ev: Evaluation
    ) -> dict[str, int]:
        """Insert or update every state the evaluation changed; delete dropped pending rows."""
        wall = iso(self.clock())
        ids: dict[str, int] = {}
        for fp in ev.dropped:
            gone = before[fp].alert_id
            if gone is not None:
                conn.execute(alerts.delete().where(alerts.c.id == gone, alerts.c.status == PENDING))
        for fp, st in ev.states.items():
            if st.alert_id is not None:
                ids[fp] = st.alert_id
            if before.get(fp) is st:
                continue
            values: dict[str, Any] = {
                "fingerprint": st.fingerprint,
                "model_name": st.model,
                "version": st.version,
                "rule": st.metric,
                "feature": st.feature,
                "severity": st.severity,
                "status": st.status,
                "value": st.value,
                "threshold": st.threshold,
                "summary": st.summary,
                "labels": jsonutil.dumps(labels_of(st)),
                "first_window_end": iso(st.first_window_end),
                "last_window_end": iso(st.last_window_end),
                "windows_breached": st.windows_breached,
                "clean_windows": st.clean_windows,
                "started_at": iso(st.started_at),
                "updated_at": wall,
                "last_notified_at": _iso(st.last_notified_at),
                "resolved_at": _iso(st.resolved_at),
                "resolved_by": AUTOMATION_USER if st.status == RESOLVED else None,
            }
            prev = before.get(fp)
            if prev is not None and prev.status != OPEN and st.status == OPEN:
                values.update(acknowledged_by=None, acknowledged_at=None)
            if st.alert_id is None:
                ids[fp] = inserted_id(conn.execute(alerts.insert().values(**values)))
            else:
                conn.execute(alerts.update().where(alerts.c.id == st.alert_id).values(**values))
        return ids

    def _record(self, conn: Connection, t: Transition, alert_id: int) -> int | None:
        """The transition's audit event, and its outbox row when it notifies."""
        b, a, o = t.before, t.after, t.observation
        audit.append(
            conn,
            actor=AUTOMATION,
            role=Role.SERVICE.value,
            action=t.action,
            subject=audit.Subject("alert", str(alert_id), a.model),
            payload={
                "fingerprint": a.fingerprint,
                "metric": a.metric,
                "feature": a.feature,
                "version": a.version,
                "severity": a.severity,
                "previous_severity": None if b is None else b.severity,
                "status": a.status,
                "previous_status": None if b is None else b.status,
                "value": o.value,
                "threshold": a.threshold,
                "window_start": iso(o.window_start),
                "window_end": iso(o.window_end),
                "windows_breached": a.windows_breached,
                "clean_windows": a.clean_windows,
                "notify": t.notify,
                "reason": t.reason,
            },
            clock=self.clock,
        )
        if not t.notify:
            return None
        return self._outbox(conn, alert_id)

    def _outbox(self, conn: Connection, alert_id: int) -> int:
        row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).one()
        alert = alert_from_row(row)
        payload = build_payload([alert], receiver=self.receiver, external_url=self.external_url)
        return inserted_id(
            conn.execute(
                alert_notifications.insert().values(
                    alert_id=alert_id,
                    status=payload["status"],
                    payload=payload_text(payload),
                    delivery="pending",
                    attempts=0,
                    last_error=None,
                    created_at=iso(self.clock()),
                    sent_at=None,
                )
            )
        )

    # -- the people's side ------------------------------------------------------------------
    def _row(self, conn: Connection, alert_id: int) -> Alert:
        r = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        if r is None or r.status == PENDING:
            raise NotFound(
                f"no alert {alert_id}",
                field="alert_id",
                remedy="list the alerts with `charter alerts list` and use one of their ids",
            )
        return alert_from_row(r)

    def acknowledge(self, actor: Actor, alert_id: int, note: str = "") -> Alert:
        """Someone is on it: open -> acknowledged (no notification; Alertmanager has no ack)."""
        _positive_id(alert_id)
        text = _note(note, required=False)
        with self.db.write() as conn:
            require_role(actor, *ALERT_ROLES, action="acknowledge alerts")
            a = self._row(conn, alert_id)
            if a.status != OPEN:
                if a.status == ACKNOWLEDGED:
                    when = "" if a.acknowledged_at is None else f" at {iso(a.acknowledged_at)}"
                    msg = f"alert {alert_id} was acknowledged already by {a.acknowledged_by}{when}"
                else:
                    msg = f"alert {alert_id} is resolved; only an open alert can be acknowledged"
                raise TransitionNotAllowed(
                    msg,
                    field="alert_id",
                    remedy="acknowledge an open alert (`charter alerts list --status open`)",
                )
            now = iso(self.clock())
            conn.execute(
                alerts.update()
                .where(alerts.c.id == alert_id)
                .values(status=ACKNOWLEDGED, acknowledged_by=actor.username,
                        acknowledged_at=now, updated_at=now)
            )  # fmt: skip
            audit.append(
                conn,
                actor=actor,
                role=_acting_role(actor),
                action="alert.acknowledged",
                subject=audit.Subject("alert", str(alert_id), a.model),
                payload={
                    "fingerprint": a.fingerprint,
                    "metric": a.metric,
                    "feature": a.feature,
                    "severity": a.severity,
                    "note": text,
                },
                clock=self.clock,
            )
            return self._row(conn, alert_id)

    def resolve(self, actor: Actor, alert_id: int, note: str) -> Alert:
        """Close an open or acknowledged alert by hand, saying why; notifies ``resolved``. If
        the metric still breaches, the next window opens it again (re-opens, in the cooldown)."""
        _positive_id(alert_id)
        text = _note(note, required=True)
        with self.db.write() as conn:
            require_role(actor, *ALERT_ROLES, action="resolve alerts")
            a = self._row(conn, alert_id)
            if a.status == RESOLVED:
                when = "" if a.resolved_at is None else f" at {iso(a.resolved_at)}"
                raise TransitionNotAllowed(
                    f"alert {alert_id} was resolved already by {a.resolved_by}{when}",
                    field="alert_id",
                    remedy="nothing to do; a new breach opens or re-opens it by itself",
                )
            now = iso(self.clock())
            conn.execute(
                alerts.update()
                .where(alerts.c.id == alert_id)
                .values(status=RESOLVED, resolved_by=actor.username, resolved_at=now,
                        updated_at=now)
            )  # fmt: skip
            audit.append(
                conn,
                actor=actor,
                role=_acting_role(actor),
                action="alert.resolved",
                subject=audit.Subject("alert", str(alert_id), a.model),
                payload={
                    "fingerprint": a.fingerprint,
                    "metric": a.metric,
                    "feature": a.feature,
                    "severity": a.severity,
                    "previous_status": a.status,
                    "note": text,
                },
                clock=self.clock,
            )
            self._outbox(conn, alert_id)
            return self._row(conn, alert_id)

    # -- reading ----------------------------------------------------------------------------
    def get(self, alert_id: int) -> Alert:
        _positive_id(alert_id)
        with self.db.read() as conn:
            return self._row(conn, alert_id)

    def list_alerts(
        self,
        model: str | None = None,
        status: str | None = None,
        *,
        severity: str | None = None,
        limit: int | None = None,
    ) -> list[Alert]:
        """Alerts, most severe first, then newest first. ``status`` None (or ``"active"``) means
        open or acknowledged; ``"all"`` every alert but the engine's pending rows; or one of
        ``open``, ``acknowledged``, ``resolved``, ``pending``."""
        rank = case(
            {sev: i for i, sev in enumerate(SEVERITIES, start=1)}, value=alerts.c.severity, else_=0
        )
        stmt = select(alerts).order_by(rank.desc(), alerts.c.id.desc())
        if status is None or status == "active":
            stmt = stmt.where(alerts.c.status.in_(ACTIVE))
        elif status == "all":
            stmt = stmt.where(alerts.c.status != PENDING)
        elif status in STATUSES:
            stmt = stmt.where(alerts.c.status == status)
        else:
            raise InvalidArgument(
                f"unknown alert status {status!r}",
                field="status",
                remedy=f"use one of: active, all, {', '.join(STATUSES)}",
            )
        if severity is not None:
            if severity not in SEVERITIES:
                raise InvalidArgument(
                    f"unknown severity {severity!r}",
                    field="severity",
                    remedy=f"use one of: {', '.join(SEVERITIES)}",
                )
            stmt = stmt.where(alerts.c.severity == severity)
        if model is not None:
            stmt = stmt.where(alerts.c.model_name == model)
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise InvalidArgument(
                    f"limit must be a whole number of at least 1, not {limit!r}",
                    field="limit",
                    remedy="e.g. --limit 50",
                )
            stmt = stmt.limit(limit)
        with self.db.read() as conn:
            return [alert_from_row(r) for r in conn.execute(stmt)]

    def open_counts(self) -> dict[str, dict[str, int]]:
        """Open and acknowledged alerts per model and severity (every severity present)."""
        with self.db.read() as conn:
            counts = count_active(conn)
        out: dict[str, dict[str, int]] = {}
        for (model, severity, _status), n in counts.items():
            per = out.setdefault(model, dict.fromkeys(SEVERITIES, 0))
            per[severity] = per.get(severity, 0) + n
        return {m: out[m] for m in sorted(out)}
