"""The monitoring job on Apache Spark, over a Parquet export of the decision log.

No new statistics live here. Each Spark partition runs :func:`accumulate_frames`, the same
function the local run uses, over its Arrow batches (``mapInPandas``): the batches are made flat
decision frames again by :func:`charter.monitoring.export.restore_frame` and fed to one
:class:`~charter.monitoring.window.WindowAccumulator` per :class:`WindowSpec`. Each partition
returns its accumulators as JSON (``to_state``); the driver rebuilds them with ``from_state`` on
its own specs and merges them. Counts merge exactly, so the binned statistics (PSI, data quality,
score and latency histograms, binned AUC, the confusion matrix) equal the local run's exactly;
float sums (means, Brier) agree up to rounding.

pyspark is the optional extra ``charter[spark]``, imported only when a function here needs it.
:func:`local_session` starts Spark in local mode for one machine (tests, benchmarks, a small
bank); on a cluster, pass your own session: the executors need ``charter`` installed.

Labels: an export pins the outcomes recorded by its ``label_as_of``. A window may ask for an
earlier cut-off (``spec.as_of``; the export keeps each label's ``label_recorded_at`` and the
partitions apply it), but not a later one: the export cannot know outcomes recorded after it was
made, so that raises (monitor with ``as_of`` = the export's ``label_as_of``, or export again).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from charter.clock import iso
from charter.errors import InvalidArgument, NotFound, OptionalDependencyMissing
from charter.monitoring.export import (
    ERRORS_DIR,
    RAW_PREFIX,
    apply_label_cutoff,
    count_export_errors,
    iter_parquet_frames,
    read_export_summary,
    restore_frame,
)
from charter.monitoring.frame import feature_column
from charter.monitoring.source import LABEL_RECORDED_AT
from charter.monitoring.window import WindowAccumulator, WindowSpec

__all__ = [
    "accumulate_frames",
    "local_session",
    "local_window_accumulators",
    "spark_accumulate",
    "spark_engine",
    "spark_window_accumulators",
]

SPARK_EXTRA = "spark"
ACCUMULATOR_COLUMNS = (
    "created_at",
    "version",
    "score",
    "decision",
    "latency_ms",
    "label",
    "label_observed_at",
)
"""The frame columns a WindowAccumulator reads besides the features; only these (and the specs'
features) are read from the export and handed to Python (ids and variants are not needed)."""
_STATE_SCHEMA = "spec long, state string"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(t: datetime) -> int:
    return (t.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)


def _require_pyspark() -> Any:
    """``pyspark.sql`` (with ``functions`` loaded), or the error naming the extra."""
    try:
        import pyspark.sql
        import pyspark.sql.functions
    except ImportError as e:
        raise OptionalDependencyMissing(
            "monitoring on Spark needs pyspark, which is not installed",
            field="engine",
            remedy="pip install 'charter[spark]' (pyspark 4 needs Java 17 or 21), "
            "or monitor with the local engine",
        ) from e
    return pyspark.sql


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """pyspark warns, on every pandas conversion, that it does not fully support pandas 3; the
    conversions Charter uses (Arrow batches of plain columns) are tested here."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        yield


# ------------------------------------------------------------------------------ the session
def local_session(
    app_name: str = "charter-monitor",
    cores: int = 2,
    *,
    driver_memory: str = "2g",
    batch_rows: int = 100_000,
    config: dict[str, str] | None = None,
) -> Any:
    """A SparkSession in local mode, set for a small machine: ``cores`` worker threads, as many
    shuffle partitions, no web UI, Arrow for pandas, UTC session time, quiet logs, and Python
    workers started with this interpreter (so they import the same ``charter``).

    ``batch_rows`` is the Arrow batch size handed to each partition's accumulator; ``config``
    adds or overrides Spark settings. Stop it with ``session.stop()``.
    """
    if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
        raise InvalidArgument(
            f"cores must be a whole number of at least 1, got {cores!r}",
            field="cores",
            remedy="pass the number of CPU cores Spark may use, e.g. 2",
        )
    sql = _require_pyspark()
    # Workers are forked by the JVM from this environment: same interpreter, same packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings = {
        "spark.master": f"local[{cores}]",
        "spark.app.name": app_name,
        "spark.driver.memory": driver_memory,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(cores),
        "spark.default.parallelism": str(cores),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(batch_rows),
        "spark.pyspark.python": os.environ["PYSPARK_PYTHON"],
        "spark.pyspark.driver.python": os.environ["PYSPARK_DRIVER_PYTHON"],
        "spark.python.worker.reuse": "true",
    }
    settings.update(config or {})
    builder = sql.SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    with _quiet():
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# ------------------------------------------------------------------------------ accumulation
def accumulate_frames(
    frames: Iterable[pd.DataFrame], specs: Sequence[WindowSpec]
) -> list[WindowAccumulator]:
    """One accumulator per spec over the frames (each keeps its own version and window).

    This is the whole of the work in a Spark partition and of the local run over an export.
    Frames that carry ``label_recorded_at`` (from an export) get each spec's label cut-off.
    """
    accs = [WindowAccumulator(s) for s in specs]
    cutoffs = sorted({s.as_of for s in specs})
    for frame in frames:
        if LABEL_RECORDED_AT in frame.columns:
            by_cutoff = {t: apply_label_cutoff(frame, t) for t in cutoffs}
            for acc, spec in zip(accs, specs, strict=True):
                acc.update(by_cutoff[spec.as_of])
        else:
            for acc in accs:
                acc.update(frame)
    return accs


def _check_specs(specs: Sequence[WindowSpec]) -> list[WindowSpec]:
    out = list(specs)
    if not out or not all(isinstance(s, WindowSpec) for s in out):
        raise InvalidArgument(
            "specs must be a non-empty list of WindowSpec",
            field="specs",
            remedy="build one WindowSpec per (version, window) to monitor",
        )
    if len({s.model_name for s in out}) != 1:
        raise InvalidArgument(
            "the specs are of several models; an export holds one",
            field="specs",
            remedy="monitor each model over its own export",
        )
    return out


def _check_export(path: str | os.PathLike[str], specs: Sequence[WindowSpec]) -> None:
    """The export must cover the specs' model, windows and label cut-off (when it says)."""
    try:
        summary = read_export_summary(path)
    except NotFound:
        if not Path(path).is_dir():
            raise
        return  # a Parquet dataset made by other tools: nothing to check against
    for s in specs:
        if s.model_name != summary.model_name:
            raise InvalidArgument(
                f"the export at {path} is of {summary.model_name!r}, not {s.model_name!r}",
                field="parquet_path",
                remedy="pass the export of the model being monitored",
            )
        if s.window_start < summary.start or s.window_end > summary.end:
            raise InvalidArgument(
                f"the window {iso(s.window_start)}..{iso(s.window_end)} is not inside the "
                f"export's {iso(summary.start)}..{iso(summary.end)}",
                field="parquet_path",
                remedy="export a period that covers every window to monitor",
            )
        if summary.versions is not None and s.version not in summary.versions:
            raise InvalidArgument(
                f"the export holds versions {list(summary.versions)}, not {s.version}",
                field="parquet_path",
                remedy="export every version to monitor",
            )
        if s.as_of > summary.label_as_of:
            raise InvalidArgument(
                f"the export holds the outcomes recorded by {iso(summary.label_as_of)}; the "
                f"window asks for those recorded by {iso(s.as_of)}",
                field="as_of",
                remedy="monitor with as_of at or before the export's label_as_of, or export "
                "the period again",
            )


def needed_columns(
    specs: Sequence[WindowSpec],
    available: Sequence[str],
    extra: Sequence[str] = (),
    clean: frozenset[str] = frozenset(),
) -> list[str]:
    """The export's columns that the specs' accumulators read (with the companions of numeric
    features and the label record times), in the export's order. ``clean`` names numeric
    features known to hold only numbers, whose (all-null) companions are not read: shipping
    twenty null text columns through Spark's Arrow conversion costs as much as the rest."""
    want = {*ACCUMULATOR_COLUMNS, *extra, LABEL_RECORDED_AT}
    for s in specs:
        for name in s.features:
            want.add(feature_column(name))
            if name not in clean:
                want.add(RAW_PREFIX + name)
    return [c for c in available if c in want]


def _clean_features(path: str | os.PathLike[str]) -> frozenset[str]:
    """Numeric features the export's manifest says hold no mistyped value."""
    try:
        summary = read_export_summary(path)
    except NotFound:
        return frozenset()
    return frozenset(k for k, v in (summary.mistyped or {}).items() if v == 0)


def _portable(spec: WindowSpec) -> WindowSpec:
    """The spec without the profiles' cached bin lookup tables (up to megabytes per feature),
    which each worker rebuilds on first use."""
    profile = dataclasses.replace(spec.profile, binners={})
    base = spec.baseline
    if base.score_profile is not None:
        base = dataclasses.replace(
            base, score_profile=dataclasses.replace(base.score_profile, binners={})
        )
    return dataclasses.replace(spec, profile=profile, baseline=base)


def _partition_states(batches: Iterator[pd.DataFrame], specs_bc: Any) -> Iterator[pd.DataFrame]:
    """The ``mapInPandas`` function: a partition's batches -> one row per spec (its state)."""
    specs = specs_bc.value
    frames = (restore_frame(b, keep_recorded_at=True) for b in batches)
    accs = accumulate_frames(frames, specs)
    yield pd.DataFrame(
        {
            "spec": np.arange(len(specs), dtype=np.int64),
            "state": [json.dumps(a.to_state(), allow_nan=True) for a in accs],
        }
    )


def _merge_states(
    specs: Sequence[WindowSpec], rows: Iterable[tuple[int, str]]
) -> list[WindowAccumulator]:
    accs = [WindowAccumulator(s) for s in specs]
    for i, state in rows:
        part = WindowAccumulator.from_state(specs[i], json.loads(state))
        accs[i] = accs[i].merge(part)
    return accs


def spark_window_accumulators(
    spark: Any,
    parquet_path: str | os.PathLike[str],
    specs: Sequence[WindowSpec],
    *,
    partitions: int | None = None,
    add_errors: bool = True,
    extra_columns: Sequence[str] = (),
) -> list[WindowAccumulator]:
    """Accumulators of ``specs`` (in order) computed by Spark over the export at
    ``parquet_path``, in one pass over the rows of their versions and windows.

    ``partitions`` repartitions the rows first (a shuffle; by default Spark's file splits are
    the partitions). ``add_errors`` adds the failed scorings the export recorded. Only the
    columns the accumulators read are read (:data:`ACCUMULATOR_COLUMNS`, the features);
    ``extra_columns`` adds more.
    """
    sql = _require_pyspark()
    F = sql.functions
    todo = _check_specs(specs)
    remote = _is_uri(parquet_path)
    if not remote:  # a URI (s3a://, hdfs://, file://) is Spark's to read; its manifest is not
        _check_export(parquet_path, todo)
    if partitions is not None and (
        not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1
    ):
        raise InvalidArgument(
            f"partitions must be a whole number of at least 1, got {partitions!r}",
            field="partitions",
            remedy="pass e.g. 8, or None to keep Spark's file splits",
        )
    lo = min(s.window_start for s in todo)
    hi = max(s.window_end for s in todo)
    versions = sorted({s.version for s in todo})
    with _quiet():
        df = spark.read.parquet(str(parquet_path))
        clean = frozenset() if remote else _clean_features(parquet_path)
        df = df.select(*needed_columns(todo, df.columns, extra_columns, clean))
        created = F.col("created_at")
        df = df.where(
            (created >= F.timestamp_micros(F.lit(_us(lo))))
            & (created < F.timestamp_micros(F.lit(_us(hi))))
            & F.col("version").isin(versions)
        )
        # Timestamps cross into Python as microseconds since the epoch: exact, and independent
        # of the session's time zone.
        for name in ("created_at", "label_observed_at", LABEL_RECORDED_AT):
            if name in df.columns:
                df = df.withColumn(name, F.unix_micros(F.col(name)))
        if partitions is not None:
            df = df.repartition(partitions)
        bc = spark.sparkContext.broadcast([_portable(s) for s in todo])
        try:
            fn = functools.partial(_partition_states, specs_bc=bc)
            rows = df.mapInPandas(fn, schema=_STATE_SCHEMA).collect()
        finally:
            bc.unpersist()
    accs = _merge_states(todo, ((int(r["spec"]), str(r["state"])) for r in rows))
    if add_errors:
        for acc, s in zip(accs, todo, strict=True):
            if remote:
                n_errors = _spark_errors(spark, str(parquet_path), s)
            else:
                counts = count_export_errors(
                    parquet_path, s.window_start, s.window_end, versions=[s.version]
                )
                n_errors = counts.get(s.version, 0)
            acc.add_errors(n_errors)
    return accs


def _is_uri(path: str | os.PathLike[str]) -> bool:
    return "://" in str(path)


def _spark_errors(spark: Any, uri: str, spec: WindowSpec) -> int:
    """Failed scorings of a spec's version and window, read by Spark from the export's
    ``_scoring_errors/`` (none when an export made by other tools lacks it)."""
    F = _require_pyspark().functions
    path = uri.rstrip("/") + "/" + ERRORS_DIR
    with _quiet():
        try:
            df = spark.read.parquet(path)
        except Exception as e:  # pyspark's AnalysisException: the file does not exist
            if "PATH_NOT_FOUND" in str(e) or "does not exist" in str(e):
                return 0
            raise
        created = F.col("created_at")
        return int(
            df.where(
                (created >= F.timestamp_micros(F.lit(_us(spec.window_start))))
                & (created < F.timestamp_micros(F.lit(_us(spec.window_end))))
                & (F.col("version") == spec.version)
            ).count()
        )


def spark_accumulate(
    spark: Any, parquet_path: str | os.PathLike[str], *, partitions: int | None = None
) -> Callable[[WindowSpec], WindowAccumulator]:
    """An ``accumulate`` for :func:`charter.monitoring.runner.monitor`: each window's spec is
    computed by Spark over the export (one Spark job per window and version)."""

    def run(spec: WindowSpec) -> WindowAccumulator:
        return spark_window_accumulators(spark, parquet_path, [spec], partitions=partitions)[0]

    return run


@contextlib.contextmanager
def spark_engine(
    parquet_path: str | os.PathLike[str],
    *,
    spark: Any = None,
    cores: int = 2,
    partitions: int | None = None,
) -> Iterator[Callable[[WindowSpec], WindowAccumulator]]:
    """``with spark_engine(export) as accumulate: monitor(..., accumulate=accumulate)``.

    Uses ``spark`` when given (a cluster's session); otherwise starts :func:`local_session`
    with ``cores`` and stops it on leaving. Monitor with ``as_of`` at or before the export's
    ``label_as_of`` (``read_export_summary(path).label_as_of``).
    """
    own = spark is None
    session = local_session(cores=cores) if own else spark
    try:
        yield spark_accumulate(session, parquet_path, partitions=partitions)
    finally:
        if own:
            session.stop()


def local_window_accumulators(
    parquet_path: str | os.PathLike[str],
    specs: Sequence[WindowSpec],
    *,
    batch_rows: int = 131_072,
    add_errors: bool = True,
    extra_columns: Sequence[str] = (),
) -> list[WindowAccumulator]:
    """The same accumulators in this process, over the same export (the reference run that the
    Spark run is checked against, and the engine for an export on one machine)."""
    todo = _check_specs(specs)
    _check_export(parquet_path, todo)
    lo = min(s.window_start for s in todo)
    hi = max(s.window_end for s in todo)
    available = pq.read_schema(_first_file(parquet_path)).names
    frames = iter_parquet_frames(
        parquet_path,
        lo,
        hi,
        versions=sorted({s.version for s in todo}),
        columns=needed_columns(todo, available, extra_columns, _clean_features(parquet_path)),
        batch_rows=batch_rows,
        keep_recorded_at=True,
    )
    accs = accumulate_frames(frames, todo)
    if add_errors:
        for acc, s in zip(accs, todo, strict=True):
            errors = count_export_errors(
                parquet_path, s.window_start, s.window_end, versions=[s.version]
            )
            acc.add_errors(errors.get(s.version, 0))
    return accs


def _first_file(path: str | os.PathLike[str]) -> Path:
    files = sorted(p for p in Path(path).glob("*.parquet") if not p.name.startswith(("_", ".")))
    if not files:
        raise NotFound(
            f"no Parquet files in {path}",
            field="parquet_path",
            remedy="export the period first (export_parquet / `charter monitor export`)",
        )
    return files[0]
