"""``charter monitor run``: monitor a model's logged decisions window by window.

For every window ``[start + k step, start + k step + window)`` that has ended by ``end`` and every
version that answered in it, the decisions and the outcomes recorded by ``as_of`` are streamed
from the decision log (or a Parquet export, or Spark) through a :class:`WindowAccumulator`; the
result is stored as a time series with its audit event, the alert policy judges it, and, for the
champion, the retraining triggers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from charter.clock import iso, parse_iso
from charter.errors import InvalidArgument, NotFound
from charter.identity import AUTOMATION_USER
from charter.monitoring import source, store
from charter.monitoring.policy import MonitoringPolicy
from charter.monitoring.triggers import TriggerDecision, evaluate_triggers
from charter.monitoring.window import (
    Baseline,
    WindowAccumulator,
    WindowResult,
    WindowSpec,
    baseline_from_gate_report,
)
from charter.registry.service import Registry
from charter.storage.schema import decisions

Progress = Callable[[int, int, str], None]  # (done, total, what)
MIN_VOLUME_HISTORY = timedelta(days=7)


def window_bounds(
    start: datetime, end: datetime, window: timedelta, step: timedelta
) -> list[tuple[datetime, datetime]]:
    """Windows ``[start + k step, start + k step + window)`` that end by ``end``."""
    if end <= start:
        raise InvalidArgument("the end must be after the start", field="end", remedy="check dates")
    out = []
    ws = start
    while ws + window <= end:
        out.append((ws, ws + window))
        ws += step
    return out


def baseline_for(reg: Registry, name: str, version: int) -> Baseline:
    """The holdout of the version's newest passed gate run, or an empty baseline."""
    runs = [r for r in reg.list_gate_runs(name, version) if r.passed]
    if not runs:
        return Baseline(source="none: the version has no passed gate run")
    run = runs[-1]
    return baseline_from_gate_report(run.report, run.id)


def versions_in(reg: Registry, name: str, start: datetime, end: datetime) -> list[int]:
    with reg.db.read() as conn:
        rows = conn.execute(
            select(decisions.c.version)
            .where(
                decisions.c.model_name == name,
                decisions.c.created_at >= iso(start),
                decisions.c.created_at < iso(end),
            )
            .distinct()
        ).all()
    return sorted(int(r[0]) for r in rows)


def normal_daily_volume(
    reg: Registry, name: str, version: int, before: datetime, lookback: timedelta
) -> float | None:
    """Decisions per day of ``version`` over ``lookback`` before ``before`` (``None`` when the
    version has less than a week of history there)."""
    lo = before - lookback
    with reg.db.read() as conn:
        first, count = conn.execute(
            select(func.min(decisions.c.created_at), func.count()).where(
                decisions.c.model_name == name,
                decisions.c.version == version,
                decisions.c.created_at >= iso(lo),
                decisions.c.created_at < iso(before),
            )
        ).one()
    if not count:
        return None
    span = before - max(lo, parse_iso(first).replace(hour=0, minute=0, second=0, microsecond=0))
    if span < MIN_VOLUME_HISTORY:
        return None
    return float(count) / (span.total_seconds() / 86_400.0)


@dataclass(frozen=True)
class MonitorRun:
    model_name: str
    results: tuple[WindowResult, ...]
    alerts: tuple[Any, ...] = ()
    triggers: tuple[TriggerDecision, ...] = ()
    fired: tuple[store.StoredTrigger, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "windows": [r.to_dict() for r in self.results],
            "alerts": [_plain(a) for a in self.alerts],
            "triggers": [t.to_dict() for t in self.triggers if t.reasons],
            "notes": list(self.notes),
        }


def _plain(x: Any) -> Any:
    return x.to_dict() if hasattr(x, "to_dict") else x


class SpecFactory:
    """Builds the WindowSpec of (version, window), reading each version's profile once."""

    def __init__(self, reg: Registry, name: str, policy: MonitoringPolicy, as_of: datetime) -> None:
        self.reg, self.name, self.policy, self.as_of = reg, name, policy, as_of
        self._versions: dict[int, tuple[Any, Any, Baseline]] = {}

    def _version(self, version: int) -> tuple[Any, Any, Baseline]:
        if version not in self._versions:
            v = self.reg.get_version(self.name, version)
            if v.reference_profile_sha256 is None:
                raise InvalidArgument(
                    f"{self.name} v{version} has no reference profile to monitor drift against",
                    field="version",
                    remedy="register the version from Python with its training data X",
                )
            profile = self.reg.reference_profile(self.name, version)
            self._versions[version] = (v, profile, baseline_for(self.reg, self.name, version))
        return self._versions[version]

    def spec(self, version: int, ws: datetime, we: datetime) -> WindowSpec:
        from charter.serving.runtime import DEFAULT_THRESHOLD

        v, profile, baseline = self._version(version)
        m = self.policy.monitoring
        return WindowSpec(
            model_name=self.name,
            version=version,
            threshold=v.decision_threshold or DEFAULT_THRESHOLD,
            window_start=ws,
            window_end=we,
            as_of=self.as_of,
            label_maturity=m.label_maturity,
            profile=profile,
            baseline=baseline,
            cost=m.cost,
            normal_daily_volume=normal_daily_volume(
                self.reg, self.name, version, ws, m.volume_lookback
            ),
            drift_policy=m.drift,
            min_decisions=m.min_decisions,
        )


def accumulate_local(reg: Registry, spec: WindowSpec) -> WindowAccumulator:
    """One window of one version from the decision log, in chunks."""
    acc = WindowAccumulator(spec)
    for frame in source.iter_decision_frames(
        reg.db,
        spec.model_name,
        spec.window_start,
        spec.window_end,
        versions=[spec.version],
        features=source.feature_kinds(spec.profile),
        label_as_of=spec.as_of,
    ):
        acc.update(frame)
    errors = source.count_scoring_errors(
        reg.db, spec.model_name, spec.window_start, spec.window_end
    )
    return acc.add_errors(errors.get(spec.version, 0))


def monitor(
    reg: Registry,
    name: str,
    *,
    start: datetime,
    end: datetime,
    policy: MonitoringPolicy | None = None,
    as_of: datetime | None = None,
    versions: Sequence[int] | None = None,
    progress: Progress | None = None,
    persist: bool = True,
    accumulate: Callable[[WindowSpec], WindowAccumulator] | None = None,
    alert_metrics: frozenset[str] | None = None,
) -> MonitorRun:
    """Monitor ``name`` over the windows in ``[start, end)``; see the module docstring.

    ``accumulate`` replaces the local decision-log reader (e.g. with a Spark job over a Parquet
    export); it receives each window's spec and returns its accumulator. ``alert_metrics``
    limits the metrics the alert policy judges (the scheduler passes the performance metrics
    when it recomputes a window whose labels have matured).
    """
    pol = policy or MonitoringPolicy()
    reg.get_model(name)  # NotFound names the model
    now = reg.clock()
    as_of = as_of or now
    m = pol.monitoring
    bounds = window_bounds(start, end, m.window, m.step)
    if not bounds:
        raise InvalidArgument(
            f"no whole {m.window.days}-day window fits between {start.date()} and {end.date()}",
            field="start",
            remedy="widen the period or shorten [monitoring] window",
        )
    vs = list(versions) if versions is not None else versions_in(reg, name, start, end)
    factory = SpecFactory(reg, name, pol, as_of)
    run_one = accumulate or (lambda spec: accumulate_local(reg, spec))
    bot = reg.identity.actor(AUTOMATION_USER)
    results: list[WindowResult] = []
    alerts: list[Any] = []
    decisions_: list[TriggerDecision] = []
    fired: list[store.StoredTrigger] = []
    notes: list[str] = []
    if not vs:
        notes.append("no decisions were logged in the period")
    champion = _champion(reg, name)
    total = len(bounds) * max(len(vs), 1)
    done = 0
    for ws, we in bounds:
        window_results = []
        for version in vs:
            spec = factory.spec(version, ws, we)
            result = run_one(spec).result()
            done += 1
            if progress is not None:
                progress(done, total, f"v{version} {ws.date()}..{we.date()}")
            if result.n == 0:
                continue
            window_results.append(result)
            if persist:
                store.save_window(reg.db, bot, result, clock=reg.clock)
        results.extend(window_results)
        if persist and window_results:
            alerts.extend(_judge_alerts(reg, pol, window_results, alert_metrics))
        for result in window_results:
            if result.version != champion:
                continue
            trained_at = reg.get_version(name, result.version).created_at
            last = store.list_triggers(reg.db, name) if persist else []
            if any(t.window_end == result.window_end for t in last):
                continue  # judged when the window was first computed
            previous = [t.window_end for t in last if t.window_end < result.window_end]
            decision = evaluate_triggers(
                pol.retraining,
                result,
                trained_at=trained_at,
                last_trigger_at=max(previous) if previous else None,
            )
            decisions_.append(decision)
            if persist and decision.fire:
                fired.append(store.record_trigger(reg.db, bot, decision, clock=reg.clock))
    return MonitorRun(
        name, tuple(results), tuple(alerts), tuple(decisions_), tuple(fired), tuple(notes)
    )


def _champion(reg: Registry, name: str) -> int | None:
    try:
        return reg.resolve(name, "champion").version
    except NotFound:
        return None


def _judge_alerts(
    reg: Registry,
    policy: MonitoringPolicy,
    results: Iterable[WindowResult],
    only: frozenset[str] | None,
) -> list[Any]:
    from charter.monitoring.alert_store import AlertStore
    from charter.monitoring.alerts import Observation

    observations = [
        Observation(
            metric=p.metric,
            value=p.value,
            feature=p.feature,
            model=r.model_name,
            version=r.version,
            window_start=r.window_start,
            window_end=r.window_end,
        )
        for r in results
        for p in r.series()
        if p.metric in policy.alerts.rules and (only is None or p.metric in only)
    ]
    return list(AlertStore(reg.db, clock=reg.clock).apply(observations, policy.alerts))
