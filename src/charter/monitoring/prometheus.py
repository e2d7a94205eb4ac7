"""Monitoring results as Prometheus metrics: a custom collector over the database.

For every model and version, the newest stored window (``monitor_windows``; on a tie of ends, the
one that starts last) gives one gauge per metric of the catalogue, ``charter_monitor_<metric>``
with the labels ``model`` and ``version`` (and ``feature`` for per-feature metrics), plus

* ``charter_monitor_window_end_timestamp_seconds{model, version}``: when that window ended, for
  staleness alerts (``time() - ... > ...``);
* ``charter_alerts_open{model, severity, status}``: alerts not yet resolved, by severity and
  status (``open``, or ``acknowledged``); every combination is exported, zeros included, for each
  model that has monitoring windows or alerts.

A version whose newest window ended more than ``version_lag`` before its model's newest window is
no longer monitored (it was replaced) and is left out, so retired versions do not look stale
forever. Retired models are left out. Values that were not computed (NULL) are not exported.

Reading the database costs a few queries, so the result is cached for ``cache_seconds`` (by an
injectable clock); when the database cannot be read the last good result is served, the failure
logged, and the database tried again after ``cache_seconds``. Every serving replica exports the
same numbers: aggregate them with ``max by (...)``.

The collector reads the database in the thread that renders ``/metrics``; the service should
render it off the event loop (``asyncio.to_thread``) so a slow database never stalls scoring.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, and_, func, select

from charter.clock import Clock, parse_iso, system_clock
from charter.errors import CharterError
from charter.monitoring.alert_store import count_active
from charter.monitoring.alerts import ACTIVE, SEVERITIES
from charter.monitoring.catalogue import ALERTS_OPEN_METRIC, METRICS, WINDOW_END_METRIC
from charter.storage.db import Database
from charter.storage.schema import models, monitor_series, monitor_windows

log = logging.getLogger("charter.monitoring")


class MonitoringCollector(Collector):
    """Exports the newest monitoring window of every monitored model version."""

    def __init__(
        self,
        db: Database,
        *,
        cache_seconds: float = 30.0,
        clock: Clock = system_clock,
        version_lag: timedelta = timedelta(days=45),
    ) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self.clock = clock
        self.version_lag = version_lag
        self._lock = threading.Lock()
        self._cached: list[Metric] | None = None
        self._cached_at: datetime | None = None

    def describe(self) -> Iterable[Metric]:
        # Nothing up front: registering must not read the database.
        return []

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            now = self.clock()
            fresh = (
                self._cached is not None
                and self._cached_at is not None
                and (now - self._cached_at).total_seconds() < self.cache_seconds
            )
            if not fresh:
                try:
                    with self.db.read() as conn:
                        self._cached = self._read(conn)
                    self._cached_at = now
                except CharterError as e:
                    # Serve what we had, and try again only after cache_seconds: a scrape must
                    # not wait on a database that is away at every request.
                    log.warning("monitoring metrics could not be read: %s", e)
                    self._cached_at = now
                    if self._cached is None:
                        return []
            return list(self._cached or [])

    def invalidate(self) -> None:
        """Forget the cache (the next scrape reads the database)."""
        with self._lock:
            self._cached = None
            self._cached_at = None

    # -- reading ----------------------------------------------------------------------------
    def _latest_windows(
        self, conn: Connection, retired: set[str]
    ) -> list[tuple[str, int, str, str]]:
        """(model, version, window_start, window_end) of each monitored version's newest window."""
        newest = (
            select(
                monitor_windows.c.model_name,
                monitor_windows.c.version,
                func.max(monitor_windows.c.window_end).label("window_end"),
            )
            .group_by(monitor_windows.c.model_name, monitor_windows.c.version)
            .subquery()
        )
        rows = conn.execute(
            select(
                monitor_windows.c.model_name,
                monitor_windows.c.version,
                func.max(monitor_windows.c.window_start),
                monitor_windows.c.window_end,
            )
            .join(
                newest,
                and_(
                    newest.c.model_name == monitor_windows.c.model_name,
                    newest.c.version == monitor_windows.c.version,
                    newest.c.window_end == monitor_windows.c.window_end,
                ),
            )
            .group_by(
                monitor_windows.c.model_name,
                monitor_windows.c.version,
                monitor_windows.c.window_end,
            )
        ).all()
        newest_of_model: dict[str, datetime] = {}
        for model, _v, _s, end in rows:
            t = parse_iso(end)
            if model not in newest_of_model or t > newest_of_model[model]:
                newest_of_model[model] = t
        out = []
        for model, version, start, end in rows:
            if model in retired or newest_of_model[model] - parse_iso(end) > self.version_lag:
                continue
            out.append((model, int(version), start, end))
        return sorted(out)

    def _read(self, conn: Connection) -> list[Metric]:
        retired = set(
            conn.execute(select(models.c.name).where(models.c.retired_at.is_not(None))).scalars()
        )
        windows = self._latest_windows(conn, retired)
        gauges: dict[str, GaugeMetricFamily] = {}
        for name, metric in METRICS.items():
            labels = ["model", "version", *(["feature"] if metric.per_feature else [])]
            gauges[name] = GaugeMetricFamily(metric.prometheus_name, metric.help, labels=labels)
        window_end = GaugeMetricFamily(
            WINDOW_END_METRIC,
            "End of the newest monitoring window, in seconds since the epoch",
            labels=["model", "version"],
        )
        for model, version, start, end in windows:
            window_end.add_metric([model, str(version)], parse_iso(end).timestamp())
            rows = conn.execute(
                select(monitor_series.c.metric, monitor_series.c.feature, monitor_series.c.value)
                .where(
                    monitor_series.c.model_name == model,
                    monitor_series.c.version == version,
                    monitor_series.c.window_start == start,
                    monitor_series.c.window_end == end,
                    monitor_series.c.value.is_not(None),
                )
                .order_by(monitor_series.c.metric, monitor_series.c.feature)
            )
            for name, feature, value in rows:
                gauge = gauges.get(name)
                known = METRICS.get(name)
                if gauge is None or known is None or known.per_feature != bool(feature):
                    continue  # a number this Charter does not know: not exported
                label_values = [model, str(version), *([feature] if known.per_feature else [])]
                gauge.add_metric(label_values, float(value))
        counts = count_active(conn)
        monitored = {w[0] for w in windows} | {m for m, _, _ in counts}
        open_alerts = GaugeMetricFamily(
            ALERTS_OPEN_METRIC,
            "Alerts not yet resolved, by model, severity and status (open or acknowledged)",
            labels=["model", "severity", "status"],
        )
        for model in sorted(monitored - retired):
            for severity in SEVERITIES:
                for status in ACTIVE:
                    n = counts.get((model, severity, status), 0)
                    open_alerts.add_metric([model, severity, status], float(n))
        out: list[Metric] = [g for g in gauges.values() if g.samples]
        out.extend([window_end, open_alerts])
        return out


def exported_names() -> frozenset[str]:
    """Every metric family name this collector can export."""
    names: set[str] = {m.prometheus_name for m in METRICS.values()}
    names.update((WINDOW_END_METRIC, ALERTS_OPEN_METRIC))
    return frozenset(names)
