"""Persistence of monitoring windows, their time series and retraining triggers.

Each window is written in one transaction with its audit event (``monitor.window``, by the
automation identity): the report row (canonical JSON and its SHA-256) and one series row per
catalogue metric. Recomputing a window replaces its rows; the audit event then says
``"replaced": true`` and carries both hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select

from charter import audit
from charter.clock import Clock, iso, parse_iso, system_clock
from charter.entities import Actor
from charter.identity import Role
from charter.monitoring.catalogue import METRICS
from charter.monitoring.triggers import TriggerDecision
from charter.monitoring.window import WindowResult
from charter.storage import jsonutil
from charter.storage.db import Database
from charter.storage.schema import monitor_series, monitor_windows, retrain_triggers


@dataclass(frozen=True)
class StoredWindow:
    id: int
    model_name: str
    version: int
    window_start: datetime
    window_end: datetime
    n_decisions: int
    labels_status: str
    report: dict[str, Any]
    report_sha256: str
    computed_at: datetime


def _stored(r: Any) -> StoredWindow:
    return StoredWindow(
        id=int(r.id),
        model_name=r.model_name,
        version=int(r.version),
        window_start=parse_iso(r.window_start),
        window_end=parse_iso(r.window_end),
        n_decisions=int(r.n_decisions),
        labels_status=r.labels_status,
        report=jsonutil.loads(r.report),
        report_sha256=r.report_sha256,
        computed_at=parse_iso(r.computed_at),
    )


def save_window(
    db: Database, actor: Actor, result: WindowResult, *, clock: Clock = system_clock
) -> StoredWindow:
    """Store (or replace) one window's report and series, with its audit event."""
    text = jsonutil.dumps(result.to_dict())
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    key = and_(
        monitor_windows.c.model_name == result.model_name,
        monitor_windows.c.version == result.version,
        monitor_windows.c.window_start == iso(result.window_start),
        monitor_windows.c.window_end == iso(result.window_end),
    )
    series_key = and_(
        monitor_series.c.model_name == result.model_name,
        monitor_series.c.version == result.version,
        monitor_series.c.window_start == iso(result.window_start),
        monitor_series.c.window_end == iso(result.window_end),
    )
    now = iso(clock())
    with db.write() as conn:
        old = conn.execute(select(monitor_windows.c.report_sha256).where(key)).first()
        if old is not None:
            conn.execute(delete(monitor_windows).where(key))
            conn.execute(delete(monitor_series).where(series_key))
        row = {
            "model_name": result.model_name,
            "version": result.version,
            "window_start": iso(result.window_start),
            "window_end": iso(result.window_end),
            "n_decisions": result.n,
            "labels_status": result.labels_status,
            "report": text,
            "report_sha256": sha,
            "computed_at": now,
        }
        conn.execute(monitor_windows.insert().values(**row))
        points = [
            {
                "model_name": result.model_name,
                "version": result.version,
                "window_start": iso(result.window_start),
                "window_end": iso(result.window_end),
                "metric": p.metric,
                "feature": p.feature,
                "dimension": METRICS[p.metric].dimension,
                "value": p.value,
            }
            for p in result.series()
        ]
        if points:
            conn.execute(monitor_series.insert(), points)
        audit.append(
            conn,
            actor=actor,
            role=Role.SERVICE.value,
            action="monitor.window",
            subject=audit.Subject(
                "version", f"{result.model_name}/{result.version}", result.model_name
            ),
            payload={
                "version": result.version,
                "window_start": iso(result.window_start),
                "window_end": iso(result.window_end),
                "decisions": result.n,
                "labels_status": result.labels_status,
                "report_sha256": sha,
                "replaced": old is not None,
                "previous_sha256": None if old is None else old.report_sha256,
            },
            clock=clock,
        )
        stored = conn.execute(select(monitor_windows).where(key)).one()
    return _stored(stored)


def list_windows(
    db: Database,
    model_name: str,
    *,
    version: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[StoredWindow]:
    q = select(monitor_windows).where(monitor_windows.c.model_name == model_name)
    if version is not None:
        q = q.where(monitor_windows.c.version == version)
    if start is not None:
        q = q.where(monitor_windows.c.window_end > iso(start))
    if end is not None:
        q = q.where(monitor_windows.c.window_start < iso(end))
    with db.read() as conn:
        rows = conn.execute(
            q.order_by(monitor_windows.c.window_end, monitor_windows.c.version)
        ).all()
    return [_stored(r) for r in rows]


def series(
    db: Database, model_name: str, metric: str, *, feature: str = "", version: int | None = None
) -> list[tuple[int, datetime, datetime, float | None]]:
    """``(version, window_start, window_end, value)`` of one metric, in time order."""
    q = select(
        monitor_series.c.version,
        monitor_series.c.window_start,
        monitor_series.c.window_end,
        monitor_series.c.value,
    ).where(
        monitor_series.c.model_name == model_name,
        monitor_series.c.metric == metric,
        monitor_series.c.feature == feature,
    )
    if version is not None:
        q = q.where(monitor_series.c.version == version)
    with db.read() as conn:
        rows = conn.execute(q.order_by(monitor_series.c.window_end)).all()
    return [
        (int(r.version), parse_iso(r.window_start), parse_iso(r.window_end), r.value) for r in rows
    ]


SeriesPoint = tuple[int, datetime, datetime, float | None]


def series_many(
    db: Database,
    model_name: str,
    metrics: Sequence[str],
    *,
    after: datetime | None = None,
) -> dict[tuple[str, str], list[SeriesPoint]]:
    """Every series of ``metrics`` of one model (each feature's too), keyed by ``(metric,
    feature)``, each as :func:`series` gives it, in one read: the points of windows ending
    after ``after`` (all when None). The monitoring page reads some 30 series; one query reads
    the model's rows once instead of once per series."""
    q = select(
        monitor_series.c.version,
        monitor_series.c.window_start,
        monitor_series.c.window_end,
        monitor_series.c.metric,
        monitor_series.c.feature,
        monitor_series.c.value,
    ).where(monitor_series.c.model_name == model_name, monitor_series.c.metric.in_(metrics))
    if after is not None:
        q = q.where(monitor_series.c.window_end > iso(after))
    with db.read() as conn:
        rows = conn.execute(q.order_by(monitor_series.c.window_end)).all()
    out: dict[tuple[str, str], list[SeriesPoint]] = {}
    times: dict[str, datetime] = {}  # the same few hundred stamps recur in every series

    def stamp(text: str) -> datetime:
        t = times.get(text)
        if t is None:
            t = times[text] = parse_iso(text)
        return t

    for r in rows:
        point = (int(r.version), stamp(r.window_start), stamp(r.window_end), r.value)
        out.setdefault((r.metric, r.feature), []).append(point)
    return out


def last_window_end(db: Database, model_name: str) -> datetime | None:
    with db.read() as conn:
        v = conn.execute(
            select(func.max(monitor_windows.c.window_end)).where(
                monitor_windows.c.model_name == model_name
            )
        ).scalar()
    return None if v is None else parse_iso(v)


# ------------------------------------------------------------------------------------ triggers
@dataclass(frozen=True)
class StoredTrigger:
    id: int
    model_name: str
    kinds: tuple[str, ...]
    window_end: datetime
    detail: dict[str, Any]
    pipeline_run_id: str | None
    fired_at: datetime


def _trigger(r: Any) -> StoredTrigger:
    return StoredTrigger(
        id=int(r.id),
        model_name=r.model_name,
        kinds=tuple(jsonutil.loads(r.kinds)),
        window_end=parse_iso(r.window_end),
        detail=jsonutil.loads(r.detail),
        pipeline_run_id=r.pipeline_run_id,
        fired_at=parse_iso(r.fired_at),
    )


def record_trigger(
    db: Database, actor: Actor, decision: TriggerDecision, *, clock: Clock = system_clock
) -> StoredTrigger:
    """Store a trigger that fired, with its audit event; the same window twice is one trigger."""
    key = and_(
        retrain_triggers.c.model_name == decision.model_name,
        retrain_triggers.c.window_end == iso(decision.window_end),
    )
    with db.write() as conn:
        old = conn.execute(select(retrain_triggers).where(key)).first()
        if old is not None:
            return _trigger(old)
        conn.execute(
            retrain_triggers.insert().values(
                model_name=decision.model_name,
                kinds=jsonutil.dumps(list(decision.kinds)),
                window_end=iso(decision.window_end),
                detail=jsonutil.dumps(decision.to_dict()),
                pipeline_run_id=None,
                fired_at=iso(clock()),
            )
        )
        audit.append(
            conn,
            actor=actor,
            role=Role.SERVICE.value,
            action="retrain.triggered",
            subject=audit.Subject("model", decision.model_name, decision.model_name),
            payload=decision.to_dict(),
            clock=clock,
        )
        row = conn.execute(select(retrain_triggers).where(key)).one()
    return _trigger(row)


def list_triggers(db: Database, model_name: str) -> list[StoredTrigger]:
    with db.read() as conn:
        rows = conn.execute(
            select(retrain_triggers)
            .where(retrain_triggers.c.model_name == model_name)
            .order_by(retrain_triggers.c.window_end)
        ).all()
    return [_trigger(r) for r in rows]


def link_trigger(db: Database, trigger_id: int, pipeline_run_id: str) -> None:
    """Record which continuous-training run a trigger started."""
    with db.write() as conn:
        conn.execute(
            retrain_triggers.update()
            .where(retrain_triggers.c.id == trigger_id)
            .values(pipeline_run_id=pipeline_run_id)
        )
