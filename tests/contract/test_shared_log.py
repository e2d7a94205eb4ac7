"""The shared decision-log writer: workers' decisions go through one writer process's socket.

Here the writer runs in a thread of the test process (the same code `charter serve` runs in its
writer process); the workers' side is ``RemoteDecisionLog``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Table, func, select

from charter.errors import StoreUnavailable
from charter.ids import uuid7
from charter.serving.decision_log import DecisionLog, DecisionRecord
from charter.serving.shared_log import RemoteDecisionLog, _frame, _frames, serve
from charter.storage.db import Database
from charter.storage.schema import decisions, scoring_errors, shadow_scores


class Writer:
    def __init__(self, db: Database, path: str) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=serve, args=(DecisionLog(db), path, self.stop))
        self.thread.start()
        for _ in range(200):
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(path)
                    return
                except OSError:
                    self.stop.wait(0.02)
        raise AssertionError("the writer did not listen")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[str]:
    # Unix socket paths are limited to ~100 bytes: pytest's tmp_path can be longer.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="clog-") as d:
        yield str(Path(d) / "log.sock")


def record(request_id: str, score: float = 0.25) -> DecisionRecord:
    return DecisionRecord(
        id=uuid7(), request_id=request_id, entity_key="e", model_name="m", version=1,
        variant="champion", inputs={"x": 1.5, "c": "a"}, score=score, threshold=0.5,
        decision="approve", reason_codes=[{"feature": "x", "contribution": 0.1, "text": "x"}],
        latency_ms=0.1, created_at="2026-11-23T00:00:00.000000Z",
    )  # fmt: skip


AT = "2026-11-23T00:00:00.000000Z"
SHADOW = {"decision_id": "d", "model_name": "m", "version": 2, "score": 0.3,
          "decision": "approve", "latency_ms": 0.1, "created_at": AT}  # fmt: skip
ERROR = {"model_name": "m", "version": 1, "variant": "champion", "message": "boom",
         "created_at": AT}  # fmt: skip


def count(db: Database, table: Table = decisions) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar())


def test_decisions_shadows_and_errors_are_written_once_and_repeats_get_the_original(
    database: Database, sock_path: str
) -> None:
    writer = Writer(database, sock_path)
    a, b = RemoteDecisionLog(sock_path), RemoteDecisionLog(sock_path)  # two workers
    a.start()
    b.start()
    try:
        first = [a.submit(record(f"r{i}")) for i in range(300)]
        # The same request ids from the other worker, concurrently, with other decisions.
        repeats = [b.submit(record(f"r{i}", score=0.9)) for i in range(0, 300, 3)]
        b.submit_shadow(SHADOW)
        b.submit_error(ERROR)
        got = [f.result(timeout=30) for f in first + repeats]
        # Shadow and error rows are best-effort and unacknowledged: one more decision makes
        # sure b's earlier frame has been written.
        b.submit(record("last")).result(timeout=30)
    finally:
        a.stop()
        b.stop()
        writer.close()
    assert count(database) == 301
    assert count(database, shadow_scores) == 1 and count(database, scoring_errors) == 1
    by_rid: dict[str, DecisionRecord] = {}
    for lg in got:
        if lg.record.request_id in by_rid:
            assert lg.record == by_rid[lg.record.request_id]  # every repeat sees the one row
        by_rid[lg.record.request_id] = lg.record
    assert sum(not lg.duplicate for lg in got) == 300  # each request id written exactly once
    assert a.rows + b.rows == 301  # and "last"


def test_async_waiters_are_woken_on_their_loop(database: Database, sock_path: str) -> None:
    writer = Writer(database, sock_path)
    remote = RemoteDecisionLog(sock_path)
    remote.start()

    async def main() -> list[bool]:
        futs = [remote.submit_async(record(f"a{i}")) for i in range(50)]
        return [lg.duplicate for lg in await asyncio.gather(*futs)]

    try:
        assert asyncio.run(main()) == [False] * 50
    finally:
        remote.stop()
        writer.close()
    assert count(database) == 50


async def connected(remote: RemoteDecisionLog) -> None:
    """Wait until the loop's own connection to the writer is open."""
    for _ in range(500):
        if remote._channel is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the loop's connection to the writer did not open")


def test_on_its_own_loop_the_worker_needs_no_thread(database: Database, sock_path: str) -> None:
    writer = Writer(database, sock_path)
    remote = RemoteDecisionLog(sock_path)

    async def main() -> None:
        remote.start()  # on the loop, as the server's lifespan starts it
        try:
            # The first decision goes through the sender thread and opens the connection.
            assert not (await remote.submit_async(record("a0"))).duplicate
            await connected(remote)
            futs = [remote.submit_async(record(f"a{i}")) for i in range(1, 50)]
            remote.submit_shadow(SHADOW)
            remote.submit_error(ERROR)
            got = await asyncio.gather(*futs)
            assert [lg.duplicate for lg in got] == [False] * 49
            again = await remote.submit_async(record("a1", score=0.9))
            assert again.duplicate and again.record == got[0].record
        finally:
            remote.stop()

    try:
        asyncio.run(main())
    finally:
        writer.close()
    assert remote._seq == 1  # only the first decision was forwarded by the sender thread
    assert remote.rows == 50 and count(database) == 50
    assert count(database, shadow_scores) == 1 and count(database, scoring_errors) == 1


def test_the_loops_connection_fails_its_waiters_when_the_writer_goes_and_reopens(
    database: Database, sock_path: str
) -> None:
    remote = RemoteDecisionLog(sock_path)

    async def main() -> None:
        writer = Writer(database, sock_path)
        remote.start()
        try:
            await remote.submit_async(record("b0"))
            await connected(remote)
            waiting = remote.submit_async(record("b1"))
            writer.close()  # acknowledges what it read, then hangs up
            # read before the hang-up: written; or not read: refused, never left waiting
            with contextlib.suppress(StoreUnavailable):
                assert not (await waiting).duplicate
            with pytest.raises(StoreUnavailable):
                await remote.submit_async(record("b2"))
            writer = Writer(database, sock_path)  # the writer is back
            for attempt in range(100):  # the thread path reconnects first, then the loop's
                with contextlib.suppress(StoreUnavailable):
                    await remote.submit_async(record(f"c{attempt}"))
                if remote._channel is not None:
                    break
            await connected(remote)
            assert not (await remote.submit_async(record("b3"))).duplicate
        finally:
            remote.stop()
            writer.close()

    asyncio.run(main())
    with database.read() as conn:
        ids = set(conn.execute(select(decisions.c.request_id)).scalars())
    assert {"b0", "b3"} <= ids and "b2" not in ids


def test_no_writer_gives_store_unavailable_and_the_worker_reconnects(
    database: Database, sock_path: str
) -> None:
    remote = RemoteDecisionLog(sock_path)
    remote.start()
    try:
        with pytest.raises(StoreUnavailable, match="cannot be reached"):
            remote.submit(record("x")).result(timeout=30)
        writer = Writer(database, sock_path)  # the writer (re)starts
        try:
            assert not remote.submit(record("x")).result(timeout=30).duplicate
        finally:
            writer.close()
        # The writer went away again: what waits on it fails instead of hanging.
        with pytest.raises(StoreUnavailable):
            remote.submit(record("y")).result(timeout=30)
    finally:
        remote.stop()
    assert count(database) == 1


def test_an_unwritable_database_is_reported_per_decision(
    database: Database, sock_path: str, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the database's folder should be")
    broken = Database(f"sqlite:///{blocked}/charter.db")
    writer = Writer(broken, sock_path)
    remote = RemoteDecisionLog(sock_path)
    remote.start()
    try:
        with pytest.raises(StoreUnavailable, match="cannot be"):
            remote.submit(record("x")).result(timeout=30)
    finally:
        remote.stop()
        writer.close()
        broken.dispose()


def test_a_worker_that_sends_garbage_is_hung_up_on_and_the_others_go_on(
    database: Database, sock_path: str
) -> None:
    writer = Writer(database, sock_path)
    good = RemoteDecisionLog(sock_path)
    good.start()
    try:
        with socket.socket(socket.AF_UNIX) as bad:
            bad.connect(sock_path)
            bad.sendall(_frame([[1, "x", []]]))  # an unknown kind of message
            bad.settimeout(10)
            assert bad.recv(1) == b""  # the writer hangs up on it
        with socket.socket(socket.AF_UNIX) as torn:
            torn.connect(sock_path)
            torn.sendall(b"\xff\xff\xff\xff")  # a frame longer than allowed
            torn.settimeout(10)
            assert torn.recv(1) == b""
        assert not good.submit(record("g")).result(timeout=30).duplicate
    finally:
        good.stop()
        writer.close()
    assert count(database) == 1


def test_what_a_worker_sent_before_it_hung_up_is_written(
    database: Database, sock_path: str
) -> None:
    writer = Writer(database, sock_path)
    rows = [[i + 1, "d", list(record(f"h{i}").values())] for i in range(20)]
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(sock_path)
            s.sendall(_frame(rows[:10]) + _frame(rows[10:]))
        # Nobody is left to acknowledge to; a decision from another worker after them shows
        # when they have been written.
        other = RemoteDecisionLog(sock_path)
        other.start()
        try:
            other.submit(record("after")).result(timeout=30)
        finally:
            other.stop()
    finally:
        writer.close()
    assert count(database) == 21


def test_frames_round_trip_and_a_torn_stream_ends_cleanly() -> None:
    left, right = socket.socketpair()
    with left, right:
        messages = [[1, "d", ["a", 1.5, None]], [0, "s", ["x"]]]
        data = _frame(messages) + _frame([[2, "ok"]])
        left.sendall(data + data[:7])  # and a frame cut short
        left.shutdown(socket.SHUT_WR)
        assert list(_frames(right)) == [messages, [[2, "ok"]]]
