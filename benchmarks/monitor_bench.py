"""Monitoring at scale: the time to monitor N logged decisions x 25 features for one window,
locally and on Spark in local mode, over the same Parquet export of the decision log.

The export is synthetic and written directly as Parquet (generating and inserting 10 million
decisions into a database would take longer than monitoring them): the 25 columns of
``drift_benchmark_frame`` (20 numeric, 5 categorical; the seven planted drifts) as features, a
score from a logistic model of some of them, decisions at a threshold, log-normal latencies, and
labels for 60% of the decisions. It is generated in chunks of a million rows, vectorised, and
cached under the temporary directory keyed by N and the seed, so a rerun reuses it.

Then, for one 30-day window of one model version:

* local: ``iter_parquet_frames`` -> ``WindowAccumulator.update`` per batch -> ``result``
  (:func:`charter.monitoring.spark.local_window_accumulators`);
* Spark local mode: the same accumulator in every partition (``mapInPandas``), merged on the
  driver (:func:`charter.monitoring.spark.spark_window_accumulators`), cold (first job: Python
  workers start and import Charter) and warm;

and checks that the two agree: every count exactly, float sums to 1e-9, the result the same.

``--db-rows N`` also times the database side on SQLite: N decisions read back as flat frames
(``iter_decision_frames``) and exported to Parquet (``export_parquet``).

    python benchmarks/monitor_bench.py                 # 10,000,000 rows
    python benchmarks/monitor_bench.py --rows 1000000  # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from charter.clock import iso
from charter.datasets import drift_benchmark_frame
from charter.datasets.synthetic import (
    DRIFT_BENCHMARK_CATEGORICAL_LEVELS,
    DRIFT_BENCHMARK_COLUMNS,
    DRIFT_BENCHMARK_NUMERIC,
)
from charter.monitoring.export import MANIFEST, ExportSummary, export_schema
from charter.monitoring.frame import feature_column
from charter.monitoring.window import Baseline, WindowAccumulator, WindowSpec
from charter.stats.sketches import build_profile
from charter.storage import jsonutil

MODEL = "bench-pd"
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 30
AS_OF = START + timedelta(days=DAYS + 120)
THRESHOLD = 0.2
CHUNK = 1_000_000
ROW_GROUP = 100_000
FILE_ROWS = 1_000_000
GENERATOR_VERSION = 2  # bump when the generated data changes, to miss the cache
FEATURES = {
    c: ("numeric" if c in DRIFT_BENCHMARK_NUMERIC else "categorical")
    for c in DRIFT_BENCHMARK_COLUMNS
}
_US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1)


# ------------------------------------------------------------------------------ the data
def _score(numeric: dict[str, np.ndarray]) -> np.ndarray:
    z = (
        -2.4
        + 0.6 * numeric["num_00"]
        + 0.4 * (numeric["num_01"] - 10.0) / 2.0
        - 0.5 * (numeric["num_05"] - 3.1) / 1.7
        + 0.8 * (numeric["num_12"] - 0.5)
    )
    return 1.0 / (1.0 + np.exp(-z))


def _ids(prefix: str, values: np.ndarray, width: int) -> pa.Array:
    text = pc.utf8_lpad(pc.cast(pa.array(values), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), text, "")


def _chunk_table(schema: pa.Schema, first: int, n: int, total: int, seed: int, k: int) -> pa.Table:
    rng = np.random.default_rng([seed, k])
    data = drift_benchmark_frame(n, seed=seed * 10_000 + k, drifted=True)
    span = DAYS * 86_400 * _US
    lo = _us(START) + span * first // total
    hi = _us(START) + span * (first + n) // total
    created = np.sort(rng.integers(lo, hi, n)).astype("datetime64[us]")
    numeric = {c: data[c].to_numpy(dtype=np.float64) for c in DRIFT_BENCHMARK_NUMERIC}
    score = _score(numeric)
    labelled = rng.random(n) < 0.6
    label = np.where(labelled, (rng.random(n) < score).astype(np.float64), np.nan)
    observed = np.where(labelled, created + np.timedelta64(90, "D"), np.datetime64("NaT"))
    decision = pa.DictionaryArray.from_arrays(
        pa.array((score >= THRESHOLD).astype(np.int8)), pa.array(["approve", "decline"])
    ).cast(pa.string())
    cols: dict[str, Any] = {
        "decision_id": _ids("d-", np.arange(first, first + n), 10),
        "created_at": pa.array(created, pa.timestamp("us", "UTC")),
        "entity_key": _ids("e-", rng.integers(0, 2_000_000, n), 7),
        "version": pa.array(np.ones(n, dtype=np.int64)),
        "variant": pa.array(np.full(n, "champion", dtype=object), pa.string()),
        "score": pa.array(score),
        "threshold": pa.array(np.full(n, THRESHOLD)),
        "decision": decision,
        "latency_ms": pa.array(rng.lognormal(1.2, 0.5, n)),
        "label": pa.array(label, from_pandas=True),
        "label_observed_at": pa.array(observed, pa.timestamp("us", "UTC")),
        "label_recorded_at": pa.array(observed, pa.timestamp("us", "UTC")),
    }
    for c in DRIFT_BENCHMARK_NUMERIC:
        cols[feature_column(c)] = pa.array(numeric[c])
    for c, levels in DRIFT_BENCHMARK_CATEGORICAL_LEVELS.items():
        codes = data[c].cat.codes.to_numpy()
        cols[feature_column(c)] = pa.DictionaryArray.from_arrays(
            pa.array(codes), pa.array(list(levels))
        ).cast(pa.string())
    for f in schema:
        if f.name not in cols:  # the x__ companions: no mistyped values here
            cols[f.name] = pa.nulls(n, f.type)
    return pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)


def synthetic_export(rows: int, seed: int, cache: Path) -> tuple[Path, float]:
    """The cached export of ``rows`` decisions (made when missing) and the seconds it took."""
    target = cache / f"export-n{rows}-s{seed}-g{GENERATOR_VERSION}"
    if (target / MANIFEST).is_file():
        return target, 0.0
    t0 = time.perf_counter()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{target.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    end = START + timedelta(days=DAYS)
    description = {"model_name": MODEL, "start": iso(START), "end": iso(end), "synthetic": True}
    schema = export_schema(FEATURES, description)
    files: list[str] = []
    file_rows: list[int] = []
    writer: pq.ParquetWriter | None = None
    done = 0
    for k, first in enumerate(range(0, rows, CHUNK)):
        n = min(CHUNK, rows - first)
        table = _chunk_table(schema, first, n, rows, seed, k)
        while table.num_rows:
            if writer is None:
                files.append(f"part-{len(files):05d}.parquet")
                file_rows.append(0)
                writer = pq.ParquetWriter(tmp / files[-1], schema, compression="snappy")
            part = table.slice(0, FILE_ROWS - file_rows[-1])
            writer.write_table(part, row_group_size=ROW_GROUP)
            file_rows[-1] += part.num_rows
            table = table.slice(part.num_rows)
            if file_rows[-1] >= FILE_ROWS:
                writer.close()
                writer = None
        done += n
        print(f"  generated {done:,} / {rows:,} rows", end="\r", flush=True)
    if writer is not None:
        writer.close()
    print()
    summary = ExportSummary(
        path=str(target),
        model_name=MODEL,
        start=START,
        end=end,
        label_as_of=AS_OF,
        versions=None,
        features=dict(FEATURES),
        rows=rows,
        files=tuple(files),
        file_rows=tuple(file_rows),
        sha256s=tuple("" for _ in files),  # synthetic: not hashed
        bytes=sum((tmp / f).stat().st_size for f in files),
        created_at=datetime.now(UTC),
        extra={"synthetic": True, "seed": seed},
        mistyped=dict.fromkeys(DRIFT_BENCHMARK_NUMERIC, 0),
    )
    (tmp / MANIFEST).write_text(jsonutil.dumps(summary.to_dict()))
    if target.exists():
        shutil.rmtree(target)
    os.rename(tmp, target)
    return target, time.perf_counter() - t0


def window_spec(seed: int) -> WindowSpec:
    ref = drift_benchmark_frame(200_000, seed=seed, drifted=False)
    profile = build_profile(
        ref,
        numeric=list(DRIFT_BENCHMARK_NUMERIC),
        categorical=list(DRIFT_BENCHMARK_CATEGORICAL_LEVELS),
    )
    ref_score = _score({c: ref[c].to_numpy(dtype=np.float64) for c in DRIFT_BENCHMARK_NUMERIC})
    baseline = Baseline(
        source="synthetic holdout",
        auc=0.7,
        approval_rate=float(np.mean(ref_score < THRESHOLD)),
        bad_rate=float(ref_score.mean()),
        score_profile=build_profile({"score": ref_score}, numeric=["score"]),
    )
    return WindowSpec(
        model_name=MODEL,
        version=1,
        threshold=THRESHOLD,
        window_start=START,
        window_end=START + timedelta(days=DAYS),
        as_of=AS_OF,
        label_maturity=timedelta(days=90),
        profile=profile,
        baseline=baseline,
        normal_daily_volume=None,
    )


# ------------------------------------------------------------------------------ agreement
def _diff(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            _diff(a.get(k), b.get(k), f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", out)
    elif isinstance(a, float) and isinstance(b, float):
        if not (a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-12)):
            out.append(f"{path}: {a!r} != {b!r}")
    elif a != b:
        out.append(f"{path}: {a!r} != {b!r}")


def agreement(a: WindowAccumulator, b: WindowAccumulator) -> list[str]:
    out: list[str] = []
    _diff(a.to_state(), b.to_state(), "state", out)
    _diff(a.result().to_dict(), b.result().to_dict(), "result", out)
    return out


# ------------------------------------------------------------------------------ database side
def database_side(rows: int, seed: int, tmp: Path, url: str | None) -> None:
    """Insert ``rows`` decisions (into SQLite, or the empty database at ``url``), then time
    reading them back as frames and exporting them."""
    from charter.monitoring.export import export_parquet
    from charter.monitoring.source import iter_decision_frames
    from charter.serving.decision_log import COLUMNS
    from charter.storage.db import Database

    db = Database(url or f"sqlite:///{tmp / 'bench.db'}")
    db.upgrade()
    mark = "?" if db.dialect == "sqlite" else "%s"
    sql = (
        f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES ({', '.join([mark] * len(COLUMNS))})"
    )
    t0 = time.perf_counter()
    end = START + timedelta(days=DAYS)
    for k, first in enumerate(range(0, rows, 100_000)):
        n = min(100_000, rows - first)
        data = drift_benchmark_frame(n, seed=seed * 10_000 + k, drifted=True)
        numeric = {c: data[c].to_numpy(dtype=np.float64) for c in DRIFT_BENCHMARK_NUMERIC}
        score = _score(numeric)
        span = DAYS * 86_400 * _US
        created = np.sort(
            np.random.default_rng([seed, k]).integers(
                _us(START) + span * first // rows, _us(START) + span * (first + n) // rows, n
            )
        )
        records = data.astype(object).to_dict("records")
        batch = [
            (
                f"d-{first + i:010d}", f"r-{first + i:010d}", f"e-{i}", MODEL, 1, "champion",
                json.dumps(records[i], sort_keys=True, separators=(",", ":")),
                float(score[i]), THRESHOLD, "decline" if score[i] >= THRESHOLD else "approve",
                "[]", 2.0, iso(_EPOCH + timedelta(microseconds=int(created[i]))),
            )
            for i in range(n)
        ]  # fmt: skip
        with db.write(registry_lock=False) as conn:
            conn.exec_driver_sql(sql, batch)
    print(f"  inserted {rows:,} decisions into {db.dialect} in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    n_read = 0
    for frame in iter_decision_frames(db, MODEL, START, end, features=FEATURES):
        n_read += len(frame)
    t_read = time.perf_counter() - t0
    print(f"  iter_decision_frames  {t_read:7.1f} s  {n_read / t_read:12,.0f} rows/s")
    t0 = time.perf_counter()
    summary = export_parquet(db, MODEL, START, end, tmp / "db-export", features=FEATURES)
    t_exp = time.perf_counter() - t0
    print(f"  export_parquet        {t_exp:7.1f} s  {summary.rows / t_exp:12,.0f} rows/s "
          f"({summary.bytes / 2**20:.0f} MiB in {len(summary.files)} files)")  # fmt: skip
    db.dispose()


# ------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description="Charter monitoring benchmark (local vs Spark)")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--batch-rows", type=int, default=131_072)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "charter-bench")
    ap.add_argument("--no-spark", action="store_true", help="time the local run only")
    ap.add_argument("--db-rows", type=int, default=0, help="also time the database side")
    ap.add_argument("--db-url", help="an empty database for --db-rows (default: SQLite)")
    args = ap.parse_args()
    rows = args.rows
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, pyarrow {pa.__version__}, "
          f"{os.cpu_count()} cores, {_load()}")  # fmt: skip

    print(f"\n== export: {rows:,} decisions x {len(FEATURES)} features, one {DAYS}-day window")
    path, t_gen = synthetic_export(rows, args.seed, args.cache)
    size = sum(p.stat().st_size for p in path.glob("*.parquet"))
    how = f"generated in {t_gen:.1f} s" if t_gen else "reused from the cache"
    print(f"  {path} ({size / 2**20:,.0f} MiB, {how})")
    spec = window_spec(args.seed)

    from charter.monitoring.export import iter_parquet_frames
    from charter.monitoring.spark import local_window_accumulators

    print("\n== local (one process)")
    t0 = time.perf_counter()
    n_read = sum(len(f) for f in iter_parquet_frames(path, batch_rows=args.batch_rows))
    t_read = time.perf_counter() - t0
    print(f"  read frames only      {t_read:7.1f} s  {n_read / t_read:12,.0f} rows/s")
    t0, c0 = time.perf_counter(), time.process_time()
    local = local_window_accumulators(path, [spec], batch_rows=args.batch_rows)[0]
    result = local.result()
    t_local, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"  read + accumulate + result {t_local:7.1f} s  {rows / t_local:12,.0f} rows/s "
          f"(CPU {cpu:.1f} s)")  # fmt: skip
    drifted = sorted(
        r["feature"]
        for r in result.dimensions["data_drift"]["features"]
        if r["tier"] in ("warning", "critical")
    )
    print(f"  n={result.n:,}  auc={result.dimensions['performance'].get('auc')}  "
          f"drifted={drifted}")  # fmt: skip

    if not args.no_spark:
        run_spark(args, path, spec, local, t_local)
    if args.db_rows:
        print(f"\n== database side: {args.db_rows:,} decisions")
        with tempfile.TemporaryDirectory() as tmp:
            database_side(args.db_rows, args.seed, Path(tmp), args.db_url)
    print(f"\n{_load()} at the end (timings on a busy machine are not the code's)")


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def run_spark(
    args: argparse.Namespace, path: Path, spec: WindowSpec, local: WindowAccumulator, t_local: float
) -> None:
    from charter.monitoring.spark import local_session, spark_window_accumulators

    rows = args.rows

    print(f"\n== Spark local mode ({args.cores} cores)")
    t0 = time.perf_counter()
    spark = local_session(
        "charter-monitor-bench", cores=args.cores, driver_memory=args.driver_memory
    )
    print(f"  session start         {time.perf_counter() - t0:7.1f} s")
    try:
        n_parts = spark.read.parquet(str(path)).rdd.getNumPartitions()
        timings = []
        for run in ("cold", "warm"):
            t0 = time.perf_counter()
            on_spark = spark_window_accumulators(spark, path, [spec])[0]
            on_spark.result()
            t = time.perf_counter() - t0
            timings.append(t)
            print(f"  {run:4s} run ({n_parts} partitions) {t:7.1f} s  {rows / t:12,.0f} rows/s")
    finally:
        spark.stop()
    problems = agreement(on_spark, local)
    t_spark = timings[-1]
    print(f"\n== Spark / local time: {t_spark / t_local:.2f} (warm), "
          f"{timings[0] / t_local:.2f} (cold)")  # fmt: skip
    if problems:
        print(f"  DISAGREE in {len(problems)} places, e.g.:")
        for p in problems[:10]:
            print(f"    {p}")
        sys.exit(1)
    print("  the two results agree: every count exactly, float sums to 1e-9")


if __name__ == "__main__":
    main()
