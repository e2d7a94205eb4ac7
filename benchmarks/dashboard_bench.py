"""Dashboard page times with 1,000 models and a year of daily monitoring windows (issue: "pages
must stay fast with 1,000 models and a year of daily windows").

Builds a SQLite store in a temporary directory: 1,000 models, and 365 daily windows of one model
with 15 features. Prints each page's time through the app (best of ``--repeat``), and for the
monitoring page the series reads against their baseline in the same run: one query per series
(``monitor_store.series``, 28 reads, what the page did before) against one read of all of them
(``monitor_store.series_many``).

    python benchmarks/dashboard_bench.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from charter.clock import ManualClock
from charter.monitoring import store as monitor_store
from charter.monitoring.window import WindowResult
from charter.registry.service import Registry
from charter.serving.app import create_app
from charter.storage.artifacts import ArtifactStore
from charter.storage.db import Database
from charter.web import auth
from charter.web.views import PAGE_METRICS

FEATURES = tuple(f"feature_{j:02d}" for j in range(15))
MODEL = "model-0000"


def window(day: int) -> WindowResult:
    s = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day)
    e = s + timedelta(days=1)
    dims: dict[str, dict[str, Any]] = {
        "performance": {"judged": True, "labelled": 100, "auc": 0.75 - 0.0001 * day},
        "estimated": {"auc": 0.74, "auc_low": 0.72, "auc_high": 0.76},
        "data_drift": {
            "features": [
                {"feature": f, "psi": 0.02 + 0.001 * ((day + j) % 50), "p_value": 0.5}
                for j, f in enumerate(FEATURES)
            ],
            "features_drifted": 0,
        },
        "prediction": {
            "score_mean": 0.3,
            "score_p50": 0.25,
            "score_p90": 0.6,
            "approval_rate": 0.7,
            "score_psi": 0.0001 * day,
        },
        "data_quality": {"features": []},
        "operations": {
            "volume": 100 + day,
            "latency_p50_ms": 1.0,
            "latency_p95_ms": 2.0,
            "latency_p99_ms": 3.0,
        },
        "business": {},
    }
    return WindowResult(MODEL, 1, s, e, e, 100 + day, "matured", {}, dims)


def best(fn: Callable[[], object], repeat: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'scale.db'}")
        db.upgrade()
        clock = ManualClock(datetime(2027, 1, 3, tzinfo=UTC), step=timedelta(milliseconds=1))
        reg = Registry(db, ArtifactStore(Path(tmp) / "artifacts"), clock=clock)
        _, token = reg.identity.bootstrap_admin("ada")
        ada = reg.identity.actor("ada")
        t = time.perf_counter()
        for i in range(1000):
            reg.create_model(
                ada,
                name=f"model-{i:04d}",
                purpose="PD",
                business_use="approve or decline",
                decision_type="credit",
                owner=f"owner {i % 7}",
                team="risk",
                risk_tier=("high", "medium", "low")[i % 3],
            )
        bot = reg.identity.actor("charter-automation")
        for day in range(365):
            monitor_store.save_window(db, bot, window(day), clock=clock)
        print(f"store built in {time.perf_counter() - t:.1f} s: 1,000 models, 365 windows x 15")

        keys = [(m, "") for m in PAGE_METRICS if m != "feature_psi"]
        keys += [("feature_psi", f) for f in FEATURES]

        def one_by_one() -> None:
            for metric, feature in keys:
                monitor_store.series(db, MODEL, metric, feature=feature)

        def at_once() -> None:
            monitor_store.series_many(db, MODEL, PAGE_METRICS)

        old, new = best(one_by_one, args.repeat), best(at_once, args.repeat)
        print(f"monitoring series, {len(keys)} series x 365 windows:")
        print(f"  one query per series (baseline)  {old * 1e3:8.1f} ms")
        print(f"  series_many, one query           {new * 1e3:8.1f} ms   {old / new:5.1f}x faster")

        app = create_app(reg, refresh_seconds=3600, canary_seconds=0)
        with TestClient(app) as c:
            c.cookies.set(auth.SESSION_COOKIE, token)
            print(f"pages (best of {args.repeat}):")
            for path in (
                "/ui/",
                "/ui/?q=owner+3&tier=high",
                "/ui/?page=10",
                f"/ui/models/{MODEL}",
                f"/ui/models/{MODEL}/monitoring?range=all",
                f"/ui/models/{MODEL}/monitoring",
                "/ui/audit",
                "/ui/alerts",
                "/ui/decisions",
            ):
                r = c.get(path)
                if r.status_code != 200:
                    sys.exit(f"{path}: {r.status_code}")
                print(f"  {path:<45} {best(lambda p=path: c.get(p), args.repeat) * 1e3:8.1f} ms")
        db.dispose()


if __name__ == "__main__":
    main()
