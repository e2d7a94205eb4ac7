"""Listing the decision log: filters, newest first, keyset pages that stay put while decisions
arrive (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from charter.errors import InvalidArgument
from charter.ids import uuid7
from charter.serving.decision_log import DecisionLog, DecisionRecord, list_decisions
from charter.storage.db import Database


def _record(i: int, *, model: str, at: str, decision: str, variant: str) -> DecisionRecord:
    return DecisionRecord(
        id=uuid7(), request_id=f"r{i}", entity_key=f"applicant-{i % 7}", model_name=model,
        version=1 + i % 2, variant=variant, inputs={"x": float(i)}, score=i / 100,
        threshold=0.5, decision=decision, reason_codes=[], latency_ms=1.0, created_at=at,
    )  # fmt: skip


@pytest.fixture
def logged(database: Database) -> list[DecisionRecord]:
    """60 decisions of two models; 20 share one timestamp (ties are ordered by id)."""
    records = []
    for i in range(60):
        second = 0 if i < 20 else i  # the first 20 in the same microsecond
        records.append(
            _record(
                i,
                model="gc" if i % 3 else "fraud",
                at=f"2026-11-23T10:00:{second:02d}.000000Z",
                decision="decline" if i % 4 == 0 else "approve",
                variant="challenger" if i % 5 == 0 else "champion",
            )
        )
    log = DecisionLog(database)
    log.start()
    try:
        for r in records:
            log.submit(r)
    finally:
        log.stop()
    return records


def _newest_first(records: list[DecisionRecord]) -> list[str]:
    return [r.id for r in sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)]


def test_pages_walk_the_log_newest_first_without_gaps_or_repeats(
    database: Database, logged: list[DecisionRecord]
) -> None:
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        page = list_decisions(database, before=before, limit=7)
        seen += [r.id for r in page.records]
        pages += 1
        if page.next_before is None:
            break
        before = page.next_before
        # a decision arriving meanwhile does not move the pages already handed out
        if pages == 2:
            log = DecisionLog(database)
            log.start()
            try:
                log.submit(
                    _record(99, model="gc", at="2026-11-23T11:00:00.000000Z", decision="approve",
                            variant="champion")
                )  # fmt: skip
            finally:
                log.stop()
    assert seen == _newest_first(logged)
    assert pages == 9  # 60 rows, 7 a page
    assert list_decisions(database, limit=1).records[0].request_id == "r99"


def test_filters_combine(database: Database, logged: list[DecisionRecord]) -> None:
    def ids(**kw: Any) -> list[str]:
        return [r.id for r in list_decisions(database, limit=500, **kw).records]

    gc = [r for r in logged if r.model_name == "gc"]
    assert ids(model="gc") == _newest_first(gc)
    assert ids(model="gc", version=2) == _newest_first([r for r in gc if r.version == 2])
    assert ids(decision="decline", variant="challenger") == _newest_first(
        [r for r in logged if r.decision == "decline" and r.variant == "challenger"]
    )
    assert ids(entity_key="applicant-3") == _newest_first(
        [r for r in logged if r.entity_key == "applicant-3"]
    )
    window = ids(
        since=datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC),
        until=datetime(2026, 11, 23, 10, 0, 40, tzinfo=UTC),
    )
    assert window == _newest_first(
        [r for r in logged if "10:00:30" <= r.created_at[11:19] < "10:00:40"]
    )
    assert ids(model="nobody") == []


def test_bad_arguments_name_the_field(database: Database) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"before": "x"}, "before"),
        ({"before": "|"}, "before"),
        ({"decision": "maybe"}, "decision"),
        ({"variant": "shadow"}, "variant"),
    ]
    for kw, field in cases:
        with pytest.raises(InvalidArgument) as err:
            list_decisions(database, **kw)
        assert err.value.field == field
