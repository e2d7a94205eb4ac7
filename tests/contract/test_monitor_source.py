"""Monitoring's source contract, on every backend: decisions logged (by the group-commit writer
or inserted directly) read back as flat decision frames (charter.monitoring.frame), in chunks,
with the label cut-off, and through a Parquet export unchanged."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from charter.clock import iso
from charter.errors import AlreadyExists, InvalidArgument, NotFound
from charter.monitoring.export import (
    MANIFEST,
    count_export_errors,
    export_parquet,
    iter_parquet_frames,
    read_export_summary,
)
from charter.monitoring.frame import DECISION_COLUMNS
from charter.monitoring.source import (
    STRING_DTYPE,
    count_scoring_errors,
    daily_volume,
    decisions_per_day,
    decode_features,
    empty_frame,
    iter_decision_frames,
)
from charter.serving.decision_log import DecisionLog, DecisionRecord
from charter.storage.db import Database
from charter.storage.schema import decisions, outcomes, scoring_errors

MODEL = "pd-model"
START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=7)
KINDS = {"income": "numeric", "age": "numeric", "region": "categorical"}
FEATURE_COLUMNS = ["f__income", "f__age", "f__region"]
MATURE = END + timedelta(days=10)  # when the first outcomes were recorded
LATE = END + timedelta(days=40)  # and the second


def _id(i: int) -> str:
    return f"0190d000-0000-7000-8000-{i:012d}"


def _record(
    i: int,
    at: datetime,
    *,
    version: int = 1,
    inputs: dict[str, Any] | None = None,
    model: str = MODEL,
    score: float = 0.25,
) -> DecisionRecord:
    return DecisionRecord(
        id=_id(i),
        request_id=f"req-{i}",
        entity_key=f"applicant-{i % 7}",
        model_name=model,
        version=version,
        variant="champion" if version == 1 else "challenger",
        inputs=(
            inputs
            if inputs is not None
            else {"income": 40_000.0 + i, "age": 20 + i % 50, "region": ["north", "south"][i % 2]}
        ),
        score=score,
        threshold=0.5,
        decision="decline" if score >= 0.5 else "approve",
        reason_codes=[{"feature": "income", "points": -3.5}],
        latency_ms=1.5 + i / 10,
        created_at=iso(at),
    )


def _insert(db: Database, records: list[DecisionRecord]) -> None:
    with db.write(registry_lock=False) as conn:
        conn.execute(decisions.insert(), [r.row() for r in records])


def _outcome(db: Database, i: int, label: int, recorded: datetime, observed: str | None) -> None:
    with db.write(registry_lock=False) as conn:
        conn.execute(
            outcomes.insert().values(
                decision_id=_id(i), label=label, observed_at=observed, recorded_at=iso(recorded)
            )
        )


@pytest.fixture
def log(database: Database) -> Database:
    """Twenty decisions in the window (three at the same instant), four around its edges, two
    of another model and outcomes recorded at two times."""
    recs = [
        _record(0, START - timedelta(microseconds=1)),  # before the window
        _record(1, START),  # the first instant in the window
        _record(2, END - timedelta(microseconds=1)),  # the last
        _record(3, END),  # the next window's
        _record(4, START + timedelta(hours=1), model="other-model"),
        _record(5, START + timedelta(hours=2), model="other-model"),
        # a missing feature, an explicit null and a decision with no inputs at all
        _record(6, START + timedelta(hours=3), inputs={"income": 1.0, "age": None}),
        _record(7, START + timedelta(hours=4), inputs={}),
    ]
    same = START + timedelta(days=2, microseconds=7)
    recs += [_record(i, same, version=2, score=0.75) for i in (12, 10, 11)]  # ties: by id
    recs += [_record(i, START + timedelta(days=3, hours=i), score=i / 40) for i in range(13, 28)]
    _insert(database, recs)
    _outcome(database, 1, 1, MATURE, "2026-12-01T00:00:00.000000Z")
    _outcome(database, 10, 0, MATURE, None)
    _outcome(database, 13, 1, LATE, "2027-01-02T00:00:00.000000Z")
    _outcome(database, 3, 1, MATURE, None)  # outside the window
    with database.write(registry_lock=False) as conn:
        conn.execute(
            scoring_errors.insert(),
            [
                {"model_name": MODEL, "version": v, "variant": "champion", "message": "boom",
                 "created_at": iso(at)}
                for v, at in [(1, START), (1, START + timedelta(days=1)), (2, END - timedelta(
                    microseconds=1)), (1, END), (1, START - timedelta(seconds=1))]
            ] + [{"model_name": "other-model", "version": 1, "variant": "champion",
                  "message": "boom", "created_at": iso(START)}],
        )  # fmt: skip
    return database


def _read(db: Database, **kw: Any) -> pd.DataFrame:
    kw.setdefault("features", KINDS)
    frames = list(iter_decision_frames(db, MODEL, START, END, **kw))
    return pd.concat(frames, ignore_index=True) if frames else empty_frame(kw["features"])


IN_WINDOW = [1, 6, 7, 10, 11, 12, *range(13, 28), 2]


# ---------------------------------------------------------------------------------- frames
def test_frames_have_the_columns_and_dtypes_of_the_frame_contract(log: Database) -> None:
    frame = _read(log)
    assert list(frame.columns) == [*DECISION_COLUMNS, *FEATURE_COLUMNS]
    expected = {
        "decision_id": STRING_DTYPE,
        "created_at": "datetime64[us, UTC]",
        "entity_key": STRING_DTYPE,
        "version": "int64",
        "variant": STRING_DTYPE,
        "score": "float64",
        "threshold": "float64",
        "decision": STRING_DTYPE,
        "latency_ms": "float64",
        "label": "float64",
        "label_observed_at": "datetime64[us, UTC]",
        "f__income": "float64",
        "f__age": "float64",
        "f__region": STRING_DTYPE,
    }
    assert {c: str(frame[c].dtype) for c in frame} == {c: str(t) for c, t in expected.items()}
    assert list(empty_frame(KINDS).dtypes) == list(frame.dtypes)
    row = frame.set_index("decision_id").loc[_id(14)]
    assert row["created_at"] == pd.Timestamp(START + timedelta(days=3, hours=14))
    assert (row["version"], row["variant"], row["decision"]) == (1, "champion", "approve")
    assert (row["score"], row["threshold"], row["latency_ms"]) == (14 / 40, 0.5, 1.5 + 14 / 10)
    assert row["entity_key"] == "applicant-0"


def test_the_window_is_half_open_and_ordered_by_time_then_id(log: Database) -> None:
    frame = _read(log)
    assert list(frame["decision_id"]) == [_id(i) for i in IN_WINDOW]
    assert frame["created_at"].is_monotonic_increasing


def test_chunks_of_three_rows_give_the_same_rows_as_one_chunk(log: Database) -> None:
    whole = list(iter_decision_frames(log, MODEL, START, END, features=KINDS))
    assert len(whole) == 1
    chunks = list(iter_decision_frames(log, MODEL, START, END, features=KINDS, chunk_rows=3))
    assert [len(c) for c in chunks] == [3] * 7 + [1]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole[0])
    # the ties at one instant are split over two pages and still come once each, in id order
    one = list(iter_decision_frames(log, MODEL, START, END, features=KINDS, chunk_rows=1))
    pd.testing.assert_frame_equal(pd.concat(one, ignore_index=True), whole[0])


def test_versions_filter_the_rows(log: Database) -> None:
    frame = _read(log, versions=[2])
    assert list(frame["decision_id"]) == [_id(10), _id(11), _id(12)]
    assert set(frame["variant"]) == {"challenger"}
    assert len(_read(log, versions=[1, 2])) == len(IN_WINDOW)
    assert _read(log, versions=[3]).empty


def test_an_outcome_is_a_label_only_once_recorded_by_the_cut_off(log: Database) -> None:
    def labels(frame: pd.DataFrame) -> dict[str, float]:
        lab = frame.set_index("decision_id")["label"]
        return {k: float(v) for k, v in lab.dropna().items()}

    assert labels(_read(log)) == {_id(1): 1.0, _id(10): 0.0, _id(13): 1.0}
    assert labels(_read(log, label_as_of=MATURE)) == {_id(1): 1.0, _id(10): 0.0}
    assert labels(_read(log, label_as_of=MATURE - timedelta(microseconds=1))) == {}
    frame = _read(log, label_as_of=LATE).set_index("decision_id")
    assert frame.loc[_id(1), "label_observed_at"] == pd.Timestamp("2026-12-01", tz="UTC")
    assert pd.isna(frame.loc[_id(10), "label_observed_at"])  # a label without an observed time
    assert pd.isna(frame.loc[_id(11), "label"]) and pd.isna(frame.loc[_id(11), "label_observed_at"])
    early = _read(log, label_as_of=MATURE).set_index("decision_id")
    assert pd.isna(early.loc[_id(13), "label_observed_at"])


def test_json_inputs_are_decoded_and_missing_values_are_nan_or_na(log: Database) -> None:
    frame = _read(log).set_index("decision_id")
    assert frame.loc[_id(20), "f__income"] == 40_020.0
    assert frame.loc[_id(20), "f__age"] == 40.0
    assert frame.loc[_id(20), "f__region"] == "north"
    assert frame.loc[_id(6), "f__income"] == 1.0
    assert np.isnan(frame.loc[_id(6), "f__age"])  # null
    assert pd.isna(frame.loc[_id(6), "f__region"])  # absent
    assert frame.loc[[_id(7)], FEATURE_COLUMNS].isna().all(axis=None)  # no inputs at all
    # a feature that no decision has is a column of missing values
    absent = _read(log, features={"income": "numeric", "nope": "numeric", "gone": "categorical"})
    assert absent["f__nope"].dtype == np.float64 and absent["f__nope"].isna().all()
    assert absent["f__gone"].dtype == STRING_DTYPE and absent["f__gone"].isna().all()


def test_a_mistyped_numeric_value_makes_its_chunk_object_so_it_can_be_counted(
    database: Database,
) -> None:
    recs = [
        _record(1, START, inputs={"income": 10, "age": 30, "region": "north"}),
        _record(2, START + timedelta(hours=1), inputs={"income": "n/a", "age": 31, "region": 7}),
        _record(3, START + timedelta(hours=2), inputs={"income": None, "age": True}),
        _record(4, START + timedelta(hours=3), inputs={"income": 12.5, "age": [1], "region": "x"}),
        _record(5, START + timedelta(hours=4), inputs={"income": 13.0, "age": 33.0}),
    ]
    _insert(database, recs)
    frames = list(iter_decision_frames(database, MODEL, START, END, features=KINDS, chunk_rows=4))
    first, second = frames
    assert first["f__income"].dtype == object
    assert first["f__income"].tolist()[:2] == [10.0, "n/a"]
    assert np.isnan(first["f__income"].iloc[2])  # missing stays missing, not a type error
    assert first["f__age"].tolist() == [30.0, 31.0, "True", "[1]"]
    assert first["f__region"].dtype == STRING_DTYPE
    assert first["f__region"].tolist()[:2] == ["north", "7"]  # str(value), as profiles name levels
    assert second["f__income"].dtype == np.float64 and second["f__age"].dtype == np.float64
    # with the kinds unknown, the clean numeric chunk is still float64 and text stays text
    inferred = list(
        iter_decision_frames(database, MODEL, START, END, features=list(KINDS), chunk_rows=4)
    )
    assert inferred[1]["f__income"].dtype == np.float64
    assert inferred[0]["f__income"].tolist()[:2] == [10.0, "n/a"]


def test_decoding_by_pyarrow_and_by_the_standard_library_agree() -> None:
    texts = ['{"a":1,"b":"x"}', '{"a":2.5}', '{"b":null,"a":null}', '{"a":NaN,"b":"y","c":[1]}']
    fast = decode_features(texts, {"a": "numeric", "b": "categorical"})  # pyarrow
    slow = decode_features([*texts, '{"a":"1e3"}'], {"a": "numeric", "b": "categorical"})
    np.testing.assert_array_equal(fast["a"], [1.0, 2.5, np.nan, np.nan])
    assert slow["a"].tolist()[:2] == [1.0, 2.5] and slow["a"].tolist()[4] == "1e3"
    assert all(np.isnan(slow["a"].iloc[i]) for i in (2, 3))
    pd.testing.assert_series_equal(fast["b"], slow["b"].iloc[:4])
    big = decode_features(['{"a":1' + "0" * 400 + "}"], {"a": "numeric"})
    assert big["a"].tolist() == [np.inf]


def test_decisions_written_by_the_group_commit_writer_read_back(database: Database) -> None:
    writer = DecisionLog(database)
    writer.start()
    try:
        recs = [_record(i, START + timedelta(minutes=i)) for i in range(1, 6)]
        for fut in [writer.submit(r) for r in recs]:
            assert not fut.result(timeout=30).duplicate
    finally:
        writer.stop()
    frame = _read(database)
    assert list(frame["decision_id"]) == [r.id for r in recs]
    assert frame["f__income"].tolist() == [r.inputs["income"] for r in recs]
    assert frame["f__region"].tolist() == [r.inputs["region"] for r in recs]


# ---------------------------------------------------------------------------------- counts
def test_scoring_errors_and_volume_are_counted_in_the_window(log: Database) -> None:
    assert count_scoring_errors(log, MODEL, START, END) == {1: 2, 2: 1}
    vol = daily_volume(log, MODEL, START, END)
    assert list(vol) == [date(2026, 11, d) for d in range(1, 8)]
    assert vol[date(2026, 11, 1)] == 3 and vol[date(2026, 11, 3)] == 3
    assert vol[date(2026, 11, 4)] == 15 - 4  # hours 13..23 of day 3
    assert sum(vol.values()) == len(IN_WINDOW)
    assert daily_volume(log, MODEL, START, END, versions=[2]) == {
        d: (3 if d == date(2026, 11, 3) else 0) for d in vol
    }
    assert decisions_per_day(log, MODEL, START, END) == pytest.approx(len(IN_WINDOW) / 7)


def test_arguments_are_checked_at_the_boundary(log: Database) -> None:
    naive = datetime(2026, 11, 1)
    with pytest.raises(InvalidArgument) as e:
        next(iter_decision_frames(log, MODEL, naive, END, features=KINDS))
    assert e.value.field == "start" and e.value.remedy
    with pytest.raises(InvalidArgument) as e:
        next(iter_decision_frames(log, MODEL, END, START, features=KINDS))
    assert e.value.field == "end"
    with pytest.raises(InvalidArgument) as e:
        next(iter_decision_frames(log, MODEL, START, END, features=KINDS, chunk_rows=0))
    assert e.value.field == "chunk_rows"
    with pytest.raises(InvalidArgument) as e:
        next(iter_decision_frames(log, MODEL, START, END, features={"income": "number"}))
    assert e.value.field == "features"
    with pytest.raises(InvalidArgument) as e:
        export_parquet(log, MODEL, START, END, "x", features=list(KINDS))
    assert e.value.field == "features"


# ---------------------------------------------------------------------------------- export
def test_an_export_reads_back_as_the_same_frames(log: Database, tmp_path: Path) -> None:
    out = tmp_path / "exports" / "pd-model-2026-11-01"
    summary = export_parquet(
        log, MODEL, START, END, out, features=KINDS, label_as_of=LATE,
        row_group_rows=2, file_rows=5, chunk_rows=3,
    )  # fmt: skip
    assert summary.rows == len(IN_WINDOW)
    assert summary.files == tuple(f"part-{i:05d}.parquet" for i in range(5))
    assert summary.file_rows == (5, 5, 5, 5, 2)
    assert pq.ParquetFile(out / "part-00000.parquet").metadata.num_row_groups == 3
    assert summary.scoring_errors == 3
    assert read_export_summary(out, verify=True) == summary
    assert sorted(p.name for p in tmp_path.joinpath("exports").iterdir()) == [out.name]  # no temp

    db_frame = _read(log, label_as_of=LATE)
    back = pd.concat(list(iter_parquet_frames(out)), ignore_index=True)
    pd.testing.assert_frame_equal(back, db_frame)
    # an earlier label cut-off, a sub-window and a version, applied when reading
    sub_start, sub_end = START + timedelta(days=2), START + timedelta(days=3, hours=20)
    back = pd.concat(
        list(iter_parquet_frames(out, sub_start, sub_end, versions=[1, 2], label_as_of=MATURE)),
        ignore_index=True,
    )
    want = pd.concat(
        list(iter_decision_frames(log, MODEL, sub_start, sub_end, features=KINDS,
                                  label_as_of=MATURE)),
        ignore_index=True,
    )  # fmt: skip
    pd.testing.assert_frame_equal(back, want)
    cols = list(iter_parquet_frames(out, columns=["score", "f__income"], batch_rows=4))
    assert all(list(c.columns) == ["score", "f__income"] and len(c) <= 4 for c in cols)
    assert count_export_errors(out) == {1: 2, 2: 1}
    assert count_export_errors(out, START + timedelta(hours=1), END) == {1: 1, 2: 1}


def test_an_export_keeps_mistyped_values_and_is_atomic(database: Database, tmp_path: Path) -> None:
    _insert(
        database,
        [
            _record(1, START, inputs={"income": "n/a", "age": 30, "region": 7}),
            _record(2, START + timedelta(hours=1)),
        ],
    )
    out = tmp_path / "exports" / "export"
    summary = export_parquet(database, MODEL, START, END, out, features=KINDS)
    assert summary.mistyped == {"income": 1, "age": 0}  # readers skip age's companion
    back = pd.concat(list(iter_parquet_frames(out)), ignore_index=True)
    pd.testing.assert_frame_equal(back, _read(database))
    assert back["f__income"].tolist()[0] == "n/a"

    with pytest.raises(AlreadyExists) as e:
        export_parquet(database, MODEL, START, END, out, features=KINDS)
    assert e.value.field == "path" and e.value.remedy
    empty = export_parquet(
        database, MODEL, END, END + timedelta(days=1), out, features=KINDS, overwrite=True
    )
    assert empty.rows == 0 and empty.files == ("part-00000.parquet",)
    assert list(iter_parquet_frames(out)) == []
    assert sorted(p.name for p in out.parent.iterdir()) == ["export"]  # no temporary left
    assert (out / MANIFEST).is_file()
    with pytest.raises(NotFound):
        read_export_summary(tmp_path)
