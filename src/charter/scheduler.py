"""``charter scheduler run``: monitoring, alert delivery, retraining triggers and continuous
training, in-process, for one machine.

One *tick* does, for every configured model:

1. monitor every window that has ended since the last stored one, and recompute any stored
   window whose labels have matured since it was computed (its performance is judged then, and
   only its performance metrics go to the alert policy: the rest was judged the first time);
2. deliver the alert notifications waiting in the outbox to the webhook, if one is configured;
3. start a continuous-training run for each retraining trigger that has none yet (when the model
   has a pipeline spec), and resume the model's unfinished runs.

Every step is idempotent, so a tick that dies half-way is repaired by the next one. A bank's own
scheduler runs the same jobs (``docs/monitoring.md`` shows them as an Airflow DAG).

```toml
[scheduler]
interval = "1h"                                  # time between ticks
webhook = "http://alertmanager.example/hook"     # optional: Alertmanager-format receiver

[[models]]
name = "retail-pd"
policy = "retail_pd_policy.toml"                 # [monitoring], [alerts], [retraining]
pipeline = "retail_pd_pipeline.toml"             # optional: the continuous-training spec
start = "2026-01-01"                             # optional: the first window's start
```
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from charter.clock import parse_iso
from charter.errors import InvalidArgument
from charter.monitoring import store
from charter.monitoring.catalogue import METRICS
from charter.monitoring.policy import load_policy, parse_duration
from charter.monitoring.runner import monitor, window_bounds
from charter.registry.service import Registry
from charter.storage.schema import decisions

PERFORMANCE_METRICS = frozenset(n for n, m in METRICS.items() if m.dimension == "performance")


@dataclass(frozen=True)
class ScheduledModel:
    name: str
    policy: Path | None = None
    pipeline: Path | None = None
    start: datetime | None = None


@dataclass(frozen=True)
class SchedulerConfig:
    models: tuple[ScheduledModel, ...]
    interval: timedelta = timedelta(hours=1)
    webhook: str | None = None

    @classmethod
    def from_toml(cls, text: str, base: Path = Path(".")) -> SchedulerConfig:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise InvalidArgument(
                f"the scheduler configuration is not valid TOML: {e}",
                field="config",
                remedy="fix the TOML syntax",
            ) from None
        _keys(raw, ("scheduler", "models"), "config")
        sched = raw.get("scheduler", {})
        _keys(sched, ("interval", "webhook"), "scheduler")
        models_raw = raw.get("models", [])
        if not isinstance(models_raw, list) or not models_raw:
            raise InvalidArgument(
                "the configuration names no model",
                field="models",
                remedy='add a [[models]] table with name = "..."',
            )
        models = []
        for i, m in enumerate(models_raw):
            where = f"models[{i}]"
            _keys(m, ("name", "policy", "pipeline", "start"), where)
            if not isinstance(m.get("name"), str) or not m["name"]:
                raise InvalidArgument(
                    "a scheduled model needs a name", field=f"{where}.name", remedy='name = "..."'
                )
            models.append(
                ScheduledModel(
                    name=m["name"],
                    policy=_path(m, "policy", base, where),
                    pipeline=_path(m, "pipeline", base, where),
                    start=_date(m.get("start"), f"{where}.start"),
                )
            )
        webhook = sched.get("webhook")
        if webhook is not None and not (
            isinstance(webhook, str) and webhook.startswith(("http://", "https://"))
        ):
            raise InvalidArgument(
                f"webhook {webhook!r} is not an http(s) URL",
                field="scheduler.webhook",
                remedy="e.g. http://127.0.0.1:9093/hook",
            )
        return cls(
            models=tuple(models),
            interval=parse_duration(sched.get("interval", "1h"), "scheduler.interval"),
            webhook=webhook,
        )

    @classmethod
    def load(cls, path: Path | str) -> SchedulerConfig:
        p = Path(path)
        if not p.is_file():
            raise InvalidArgument(
                f"no scheduler configuration at {str(p)!r}", field="config", remedy="check the path"
            )
        return cls.from_toml(p.read_text(encoding="utf-8"), p.parent)


def _keys(d: object, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(d, Mapping):
        raise InvalidArgument(f"{where} must be a table", field=where, remedy=f"write [{where}]")
    for k in d:
        if k not in keys:
            raise InvalidArgument(
                f"unknown key {k!r} in {where}",
                field=f"{where}.{k}",
                remedy=f"use one of: {', '.join(keys)}",
            )


def _path(m: Mapping[str, Any], key: str, base: Path, where: str) -> Path | None:
    if key not in m:
        return None
    p = base / str(m[key])
    if not p.is_file():
        raise InvalidArgument(
            f"no file at {str(p)!r}", field=f"{where}.{key}", remedy="check the path"
        )
    return p


def _date(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidArgument(
            f"{value!r} is not a date", field=where, remedy='e.g. start = "2026-01-01"'
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass
class TickReport:
    at: datetime
    windows: dict[str, int] = field(default_factory=dict)
    recomputed: dict[str, int] = field(default_factory=dict)
    alerts: int = 0
    triggers: list[int] = field(default_factory=list)
    delivered: Any = None
    pipelines: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "windows": self.windows,
            "recomputed": self.recomputed,
            "alert_transitions": self.alerts,
            "triggers": self.triggers,
            "delivered": self.delivered.to_dict()
            if hasattr(self.delivered, "to_dict")
            else self.delivered,
            "pipelines": [p.to_dict() if hasattr(p, "to_dict") else p for p in self.pipelines],
        }


def first_decision_day(reg: Registry, name: str) -> datetime | None:
    with reg.db.read() as conn:
        v = conn.execute(
            select(func.min(decisions.c.created_at)).where(decisions.c.model_name == name)
        ).scalar()
    if v is None:
        return None
    return parse_iso(v).replace(hour=0, minute=0, second=0, microsecond=0)


class Scheduler:
    def __init__(
        self,
        reg: Registry,
        config: SchedulerConfig,
        *,
        pipeline_runner: Callable[[Registry, ScheduledModel, Any], Any] | None = None,
    ) -> None:
        self.reg = reg
        self.config = config
        self.pipeline_runner = pipeline_runner

    def tick(self, now: datetime | None = None) -> TickReport:
        now = now or self.reg.clock()
        report = TickReport(at=now)
        for m in self.config.models:
            self._monitor(m, now, report)
        if self.config.webhook:
            from charter.monitoring.notify import deliver_pending

            report.delivered = deliver_pending(
                self.reg.db, self.config.webhook, clock=self.reg.clock
            )
        for m in self.config.models:
            if m.pipeline is not None:
                report.pipelines.extend(self._pipelines(m, report))
        return report

    def _monitor(self, m: ScheduledModel, now: datetime, report: TickReport) -> None:
        policy = load_policy(m.policy)
        anchor = m.start or first_decision_day(self.reg, m.name)
        if anchor is None:
            return
        s = policy.monitoring
        stored = {
            (w.window_start, w.window_end): w.labels_status
            for w in store.list_windows(self.reg.db, m.name)
        }
        new = recompute = 0
        for ws, we in window_bounds(anchor, now, s.window, s.step) if anchor < now else []:
            status = stored.get((ws, we))
            if status is None:
                # a window without decisions stores nothing, and is looked at again next tick
                run = monitor(self.reg, m.name, start=ws, end=we, policy=policy, as_of=now)
                new += bool(run.results)
            elif status != "matured" and we + s.label_maturity <= now:
                run = monitor(
                    self.reg,
                    m.name,
                    start=ws,
                    end=we,
                    policy=policy,
                    as_of=now,
                    alert_metrics=PERFORMANCE_METRICS,
                )
                recompute += 1
            else:
                continue
            report.alerts += len(run.alerts)
            report.triggers.extend(t.id for t in run.fired)
        report.windows[m.name] = new
        report.recomputed[m.name] = recompute

    def _pipelines(self, m: ScheduledModel, report: TickReport) -> list[Any]:
        if self.pipeline_runner is None:
            from charter.pipelines.ct import scheduled_runner

            self.pipeline_runner = scheduled_runner
        out = []
        for t in store.list_triggers(self.reg.db, m.name):
            out.append(self.pipeline_runner(self.reg, m, t))
        return [x for x in out if x is not None]

    def run(
        self,
        *,
        ticks: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_tick: Callable[[TickReport], None] | None = None,
    ) -> None:
        """Tick every ``interval`` (forever, or ``ticks`` times)."""
        done = 0
        while ticks is None or done < ticks:
            report = self.tick()
            done += 1
            if on_tick is not None:
                on_tick(report)
            if ticks is None or done < ticks:
                sleep(self.config.interval.total_seconds())
