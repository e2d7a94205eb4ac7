"""Registry read speed at bank scale: 1,000 models x 20 versions on SQLite.

Prints the time of ``inventory export`` (goal: under 1 s) and of a version lookup (goal: under
5 ms), each beside a baseline measured in the same run on the same database: a bare SQL read of
the same rows, so the ratio shows what Charter's service layer costs on top of the database.

The store is filled through SQL in bulk (registering 20,000 versions one audited transaction at a
time would measure fsync, not reads); the reads go through the public service API.

    python benchmarks/registry_bench.py [--models 1000] [--versions 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text

from charter.clock import iso
from charter.registry import inventory
from charter.registry.service import Registry
from charter.storage import jsonutil
from charter.storage.artifacts import ArtifactStore
from charter.storage.db import Database
from charter.storage.schema import model_aliases, model_versions, models

TIERS = ("high", "medium", "low")


def fill(db: Database, n_models: int, n_versions: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    schema = jsonutil.dumps(
        [{"name": f"f{i}", "type": "numeric", "nullable": False} for i in range(20)]
    )
    env = jsonutil.dumps({"python": "3.11", "packages": {"scikit-learn": "1.9.1"}})
    with db.write() as conn:
        conn.execute(
            models.insert(),
            [
                {
                    "name": f"model-{i:05d}",
                    "purpose": "Probability of default",
                    "business_use": "Approve or decline",
                    "decision_type": "credit approval",
                    "owner": f"owner-{i % 37}",
                    "team": f"team-{i % 11}",
                    "risk_tier": TIERS[i % 3],
                    "upstream": '["bureau","core"]',
                    "downstream": '["los"]',
                    "review_cadence_months": 12,
                    "last_review": (start + timedelta(days=rng.randrange(900))).date().isoformat(),
                    "tags": '{"portfolio":"retail"}',
                    "created_at": iso(start),
                    "created_by": "bench",
                    "retired_at": None,
                }
                for i in range(n_models)
            ],
        )
        ids = [r.id for r in conn.execute(select(models.c.id).order_by(models.c.id))]
        rows = []
        for mid in ids:
            for v in range(1, n_versions + 1):
                rows.append(
                    {
                        "model_id": mid,
                        "version": v,
                        "stage": "deployed" if v == n_versions else "retired",
                        "artifact_sha256": f"{rng.getrandbits(256):064x}",
                        "artifact_format": "skops",
                        "artifact_size": 12345,
                        "feature_schema": schema,
                        "training_data": None,
                        "hyperparameters": '{"C":1.0}',
                        "seeds": '{"random_state":0}',
                        "metrics": '{"auc":0.78}',
                        "code_commit": None,
                        "environment": env,
                        "author": "bench",
                        "training_seconds": 1.0,
                        "description": "",
                        "source": "{}",
                        "created_at": iso(start + timedelta(days=v)),
                    }
                )
        conn.execute(model_versions.insert(), rows)
        vids = {
            r.model_id: r.id
            for r in conn.execute(
                select(model_versions.c.model_id, model_versions.c.id).where(
                    model_versions.c.version == n_versions
                )
            )
        }
        conn.execute(
            model_aliases.insert(),
            [
                {
                    "model_id": mid,
                    "alias": "champion",
                    "version_id": vids[mid],
                    "revision": 1,
                    "set_by": "bench",
                    "set_at": iso(start),
                }
                for mid in ids
                if mid % 5 != 0  # four in five models are in production
            ],
        )


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--versions", type=int, default=20)
    ap.add_argument("--lookups", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'charter.db'}")
        db.upgrade()
        t = time.perf_counter()
        fill(db, args.models, args.versions)
        print(
            f"filled {args.models} models x {args.versions} versions "
            f"in {time.perf_counter() - t:.2f} s"
        )
        reg = Registry(db, ArtifactStore(Path(tmp) / "artifacts"))

        print("\ninventory export (all models, production by tier, overdue reviews)")
        for fmt in inventory.FORMATS:
            took = best_of(lambda fmt=fmt: inventory.render(inventory.build(reg), fmt), 5)
            print(f"  charter inventory export --format {fmt:4s} {took * 1000:8.1f} ms")
        export = best_of(lambda: inventory.render(inventory.build(reg), "csv"), 5)

        def bare_inventory() -> None:
            with db.engine.connect() as conn:
                conn.execute(
                    text(
                        "SELECT m.*, v.version FROM models m LEFT JOIN model_aliases a "
                        "ON a.model_id = m.id AND a.alias = 'champion' "
                        "LEFT JOIN model_versions v ON v.id = a.version_id"
                    )
                ).all()

        bare = best_of(bare_inventory, 5)
        print(f"  baseline: bare SQL join of the same rows   {bare * 1000:8.1f} ms")
        print(
            f"  export {export * 1000:.1f} ms = {export / bare:.1f} x the bare query; "
            f"goal < 1000 ms: {'met' if export < 1.0 else 'NOT met'}"
        )

        rng = random.Random(11)
        keys = [
            (f"model-{rng.randrange(args.models):05d}", rng.randrange(1, args.versions + 1))
            for _ in range(args.lookups)
        ]
        lat = []
        for name, v in keys:
            t = time.perf_counter()
            reg.get_version(name, v)
            lat.append(time.perf_counter() - t)
        bare_lat = []
        with db.engine.connect() as conn:
            for name, v in keys[:500]:
                t = time.perf_counter()
                conn.execute(
                    text(
                        "SELECT v.* FROM model_versions v JOIN models m ON m.id = v.model_id "
                        "WHERE m.name = :n AND v.version = :v"
                    ),
                    {"n": name, "v": v},
                ).one()
                bare_lat.append(time.perf_counter() - t)
        p50 = statistics.median(lat)
        p99 = statistics.quantiles(lat, n=100)[98]
        base = statistics.median(bare_lat)
        print(f"\nversion lookup (registry.get_version, {len(lat)} random lookups)")
        print(f"  p50 {p50 * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms")
        print(f"  baseline: bare SQL on an open connection, p50 {base * 1000:.3f} ms")
        print(
            f"  lookup p50 = {p50 / base:.1f} x the bare query; goal < 5 ms: "
            f"{'met' if p99 < 0.005 else 'NOT met'} (p99)"
        )
        db.dispose()


if __name__ == "__main__":
    main()
