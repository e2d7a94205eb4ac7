"""The Spark and local monitoring results agree (binned statistics exactly, sketched ones within
their bound): a few thousand synthetic decisions are logged, exported to Parquet, and monitored
by Spark in local mode over the export and locally from the decision log."""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sqlalchemy import create_engine, text

from charter.clock import iso
from charter.datasets.synthetic import (
    CREDIT_CATEGORICAL_FEATURES,
    CREDIT_NUMERIC_FEATURES,
    LabelDelay,
    credit_applications,
)
from charter.errors import InvalidArgument, OptionalDependencyMissing
from charter.monitoring import source
from charter.monitoring.export import export_parquet
from charter.monitoring.spark import (
    local_session,
    local_window_accumulators,
    spark_engine,
    spark_window_accumulators,
)
from charter.monitoring.window import Baseline, WindowAccumulator, WindowSpec
from charter.serving.decision_log import DecisionRecord
from charter.stats.sketches import build_profile
from charter.storage.db import Database
from charter.storage.schema import decisions, outcomes, scoring_errors

pytestmark = pytest.mark.slow

PG_URL = os.environ.get("CHARTER_TEST_DATABASE_URL")
MODEL = "credit-pd"
START = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 14
N = 4_000
THRESHOLD = 0.2
EXPORTED_AT = START + timedelta(days=120)  # the export's label cut-off
AS_OF = START + timedelta(days=75)  # the windows' (earlier): labels recorded after it are not
FEATURES = {
    **dict.fromkeys(CREDIT_NUMERIC_FEATURES, "numeric"),
    **dict.fromkeys(CREDIT_CATEGORICAL_FEATURES, "categorical"),
}


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


@dataclass(frozen=True)
class Logged:
    db: Database
    export: Path
    specs: list[WindowSpec]
    frame: pd.DataFrame  # what was logged, for the exact oracles


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    session = local_session(
        "charter-test",
        cores=2,
        driver_memory="1g",
        batch_rows=500,  # several batches per partition
        config={
            # several partitions out of a small export, without a shuffle
            "spark.sql.files.maxPartitionBytes": "65536",
            "spark.sql.files.openCostInBytes": "65536",
        },
    )
    yield session
    session.stop()


def _admin(statement: str) -> None:
    assert PG_URL is not None
    engine = create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    tmp = tmp_path_factory.mktemp("monitor-spark")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    if PG_URL is None:
        db = Database(f"sqlite:///{tmp / 'charter.db'}")
    else:  # a schema of its own, as the function-scoped fixtures of tests/conftest.py make
        _admin(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in PG_URL else "?"
        db = Database(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
    db.upgrade()
    apps = credit_applications(N, seed=7, start=START, days=DAYS, label_delay=LabelDelay(30, 150))
    rng = np.random.default_rng(11)
    score = apps["default_probability"].to_numpy()
    version = np.where(rng.random(N) < 0.8, 1, 2)
    latency = rng.lognormal(1.0, 0.6, N)
    # data quality to carry through Parquet and Spark: missing values, text in a number
    inputs = apps[list(FEATURES)].astype(object).to_dict("records")
    for i in rng.choice(N, 40, replace=False):
        inputs[i]["income"] = None
    for i in rng.choice(N, 15, replace=False):
        inputs[i]["debt_to_income"] = "n/a"
    for i in rng.choice(N, 20, replace=False):
        del inputs[i]["region"]
    created = [iso(t.to_pydatetime()) for t in apps["decision_time"]]
    records = [
        DecisionRecord(
            id=f"d-{i:06d}",
            request_id=f"r-{i:06d}",
            entity_key=f"applicant-{i % 977}",
            model_name=MODEL,
            version=int(version[i]),
            variant="champion" if version[i] == 1 else "challenger",
            inputs={k: _plain(v) for k, v in inputs[i].items()},
            score=float(score[i]),
            threshold=THRESHOLD,
            decision="decline" if score[i] >= THRESHOLD else "approve",
            reason_codes=[],
            latency_ms=float(latency[i]),
            created_at=created[i],
        )
        for i in range(N)
    ]
    recorded = apps["label_available_at"].dt.to_pydatetime()
    labelled = [i for i in range(N) if recorded[i] <= EXPORTED_AT]
    with db.write(registry_lock=False) as conn:
        conn.execute(decisions.insert(), [r.row() for r in records])
        conn.execute(
            outcomes.insert(),
            [
                {"decision_id": f"d-{i:06d}", "label": int(apps["default"].iat[i]),
                 "observed_at": None, "recorded_at": iso(recorded[i])}
                for i in labelled
            ],
        )  # fmt: skip
        conn.execute(
            scoring_errors.insert(),
            [
                {"model_name": MODEL, "version": 1 + k % 2, "variant": "champion",
                 "message": "timeout", "created_at": iso(START + timedelta(hours=5 * k + 1))}
                for k in range(30)
            ],
        )  # fmt: skip
    export = tmp / "export"
    export_parquet(
        db, MODEL, START, START + timedelta(days=DAYS), export, features=FEATURES,
        label_as_of=EXPORTED_AT, file_rows=700, row_group_rows=350,
    )  # fmt: skip

    reference = credit_applications(5_000, seed=3, start=START - timedelta(days=200), days=90)
    profile = build_profile(
        reference,
        numeric=list(CREDIT_NUMERIC_FEATURES),
        categorical=list(CREDIT_CATEGORICAL_FEATURES),
    )
    ref_scores = reference["default_probability"].to_numpy()
    baseline = Baseline(
        source="test holdout",
        auc=0.75,
        approval_rate=float(np.mean(ref_scores < THRESHOLD)),
        bad_rate=0.1,
        score_profile=build_profile({"score": ref_scores}, numeric=["score"]),
    )
    specs = [
        WindowSpec(
            model_name=MODEL,
            version=v,
            threshold=THRESHOLD,
            window_start=START + timedelta(days=w * 7),
            window_end=START + timedelta(days=w * 7 + 7),
            as_of=AS_OF,
            label_maturity=timedelta(days=60),
            profile=profile,
            baseline=baseline,
            normal_daily_volume=200.0,
            min_decisions=50,
        )
        for w in (0, 1)
        for v in (1, 2)
    ]
    frame = pd.DataFrame(
        {
            "created_at": apps["decision_time"],
            "version": version,
            "score": score,
            "latency": latency,
            "label": np.where(recorded <= AS_OF, apps["default"].to_numpy(), -1),
        }
    )
    yield Logged(db, export, specs, frame)
    db.dispose()
    if PG_URL is not None:
        _admin(f'DROP SCHEMA "{schema}" CASCADE')


def _local_from_the_decision_log(db: Database, spec: WindowSpec) -> WindowAccumulator:
    """What `charter monitor run` computes without Spark (runner.accumulate_local)."""
    acc = WindowAccumulator(spec)
    for frame in source.iter_decision_frames(
        db, spec.model_name, spec.window_start, spec.window_end, versions=[spec.version],
        features=source.feature_kinds(spec.profile), label_as_of=spec.as_of, chunk_rows=700,
    ):  # fmt: skip
        acc.update(frame)
    errors = source.count_scoring_errors(db, spec.model_name, spec.window_start, spec.window_end)
    return acc.add_errors(errors.get(spec.version, 0))


def _same_state(a: Any, b: Any, path: str = "") -> None:
    """Integers (every count, histogram and bin) exactly; floats (sums) up to rounding."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _same_state(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_state(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9), path
    else:
        assert a == b and type(a) is type(b), path


def _same_result(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _same_result(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_result(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


def test_spark_agrees_with_the_local_run(spark: Any, logged: Logged) -> None:
    # six part files, each its own partition (maxPartitionBytes): partitions are merged
    assert len(spark.read.parquet(str(logged.export)).inputFiles()) == 6
    on_spark = spark_window_accumulators(spark, logged.export, logged.specs)
    from_export = local_window_accumulators(logged.export, logged.specs, batch_rows=300)
    for spec, acc_spark, acc_export in zip(logged.specs, on_spark, from_export, strict=True):
        acc_db = _local_from_the_decision_log(logged.db, spec)
        assert acc_spark.n == acc_db.n > 50
        _same_state(acc_spark.to_state(), acc_db.to_state())
        _same_state(acc_export.to_state(), acc_db.to_state())
        r_spark, r_db = acc_spark.result(), acc_db.result()
        d_spark, d_db = r_spark.to_dict(), r_db.to_dict()
        _same_result(d_spark, d_db)
        dims_spark, dims_db = d_spark["dimensions"], d_db["dimensions"]
        # the binned statistics are the same numbers, bit for bit
        for dim, key in [
            ("prediction", "score_p50"), ("prediction", "score_p90"),
            ("prediction", "approval_rate"), ("prediction", "score_psi"),
            ("operations", "volume"), ("operations", "errors"),
            ("operations", "latency_p50_ms"), ("operations", "latency_p99_ms"),
            ("performance", "labelled"), ("performance", "auc"), ("performance", "ks"),
            ("performance", "precision"), ("performance", "recall"),
        ]:  # fmt: skip
            assert dims_spark[dim].get(key) == dims_db[dim].get(key), (dim, key)
        for fs, fd in zip(
            dims_spark["data_drift"]["features"], dims_db["data_drift"]["features"], strict=True
        ):
            assert (fs["feature"], fs["psi"], fs["tier"]) == (fd["feature"], fd["psi"], fd["tier"])
        assert dims_spark["data_quality"] == dims_db["data_quality"]
        _check_sketches_against_exact(spec, dims_spark, logged.frame)

    # One test, one Spark session even when xdist spreads tests over workers: the same window
    # after a shuffle, through the runner's adapter, and read by Spark alone from a URI (the
    # scoring errors too), as on a cluster's object store.
    spec, base = logged.specs[0], from_export[0].to_state()
    shuffled = spark_window_accumulators(spark, logged.export, [spec], partitions=3)[0]
    _same_state(shuffled.to_state(), base)
    with spark_engine(logged.export, spark=spark) as accumulate:
        _same_state(accumulate(spec).to_state(), base)
    by_uri = spark_window_accumulators(spark, logged.export.as_uri(), [spec])[0]
    _same_state(by_uri.to_state(), base)


def _check_sketches_against_exact(spec: WindowSpec, dims: dict[str, Any], f: pd.DataFrame) -> None:
    """The sketched statistics lie within their documented bound of the exact ones."""
    t = f["created_at"]
    rows = f[
        (f["version"] == spec.version)
        & (t >= pd.Timestamp(spec.window_start))
        & (t < pd.Timestamp(spec.window_end))
    ]
    assert dims["operations"]["volume"] == len(rows)
    lab = rows[rows["label"] >= 0]
    perf = dims["performance"]
    assert perf["labelled"] == len(lab) > 0
    exact_auc = roc_auc_score(lab["label"], lab["score"])
    assert abs(perf["auc"] - exact_auc) <= perf["auc_bound"] + 1e-12
    score = np.sort(rows["score"].to_numpy())
    for q, key in ((0.5, "score_p50"), (0.9, "score_p90")):
        exact = score[math.ceil(q * score.size) - 1]
        assert 0 <= dims["prediction"][key] - exact <= 1e-3 + 1e-12
    lat = np.sort(rows["latency"].to_numpy())
    for q, key in ((0.5, "latency_p50_ms"), (0.95, "latency_p95_ms"), (0.99, "latency_p99_ms")):
        exact = lat[math.ceil(q * lat.size) - 1]
        assert exact <= dims["operations"][key] <= exact * 1.024
    # 30 failed scorings, 5 hours apart from the window's start, alternating between versions
    assert dims["operations"]["errors"] == (15 if spec.window_start == START else 0)


def test_the_export_must_cover_the_window_and_its_labels(logged: Logged) -> None:
    """Checked before any Spark job (the local engine over an export checks the same)."""
    import dataclasses

    later = dataclasses.replace(logged.specs[0], as_of=EXPORTED_AT + timedelta(days=1))
    with pytest.raises(InvalidArgument) as e:
        local_window_accumulators(logged.export, [later])
    assert e.value.field == "as_of" and "export" in (e.value.remedy or "")
    outside = dataclasses.replace(logged.specs[0], window_end=START + timedelta(days=DAYS + 1))
    with pytest.raises(InvalidArgument) as e:
        local_window_accumulators(logged.export, [outside])
    assert e.value.field == "parquet_path"
    other = dataclasses.replace(logged.specs[0], model_name="another-model")
    with pytest.raises(InvalidArgument) as e:
        local_window_accumulators(logged.export, [logged.specs[0], other])
    assert e.value.field == "specs"


def test_a_missing_pyspark_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(OptionalDependencyMissing) as e:
        local_session()
    assert "charter[spark]" in (e.value.remedy or "")
