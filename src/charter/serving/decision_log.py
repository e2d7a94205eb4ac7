"""The durable decision log, written by group commit.

Every scored request becomes one row in ``decisions``. A response is acknowledged only after its
row is committed, but rows are committed in groups: a writer thread takes whatever requests are
waiting (up to ``max_batch``), inserts them in one transaction and commits once, then releases
all their waiters. Under load, one commit (one fsync) serves many requests; with a single request
in flight it is committed at once (no added delay).

Idempotency: ``request_id`` is unique. A request whose id is already logged gets the original
decision back (``duplicate=True``) and nothing new is written.

Failure: if the batch cannot be committed, every waiter in it gets ``StoreUnavailable`` (the
service answers 503) and nothing of the batch is acknowledged; the next batch tries again, so
the service recovers by itself when the database does.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

import orjson
from sqlalchemy import and_, exc, or_, select

from charter.clock import iso
from charter.errors import InvalidArgument, StoreUnavailable
from charter.storage import jsonutil
from charter.storage.db import Database
from charter.storage.schema import decisions, outcomes

T = TypeVar("T")


@dataclass(frozen=True)
class DecisionRecord:
    id: str
    request_id: str
    entity_key: str
    model_name: str
    version: int
    variant: str
    inputs: dict[str, Any]
    score: float
    threshold: float
    decision: str
    reason_codes: list[dict[str, Any]]
    latency_ms: float
    created_at: str

    def values(self) -> tuple[Any, ...]:
        """The row as a tuple in ``COLUMNS`` order, for the driver. The JSON columns are
        compact with sorted keys, as ``jsonutil.dumps`` writes them (orjson writes some floats
        in another notation, 0.00001 for 1e-05, which reads back as the same number)."""
        return (
            self.id,
            self.request_id,
            self.entity_key,
            self.model_name,
            self.version,
            self.variant,
            orjson.dumps(self.inputs, option=orjson.OPT_SORT_KEYS).decode(),
            self.score,
            self.threshold,
            self.decision,
            orjson.dumps(self.reason_codes, option=orjson.OPT_SORT_KEYS).decode(),
            self.latency_ms,
            self.created_at,
        )

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "request_id": self.request_id,
            "entity_key": self.entity_key,
            "model_name": self.model_name,
            "version": self.version,
            "variant": self.variant,
            "inputs": jsonutil.dumps(self.inputs),
            "score": self.score,
            "threshold": self.threshold,
            "decision": self.decision,
            "reason_codes": jsonutil.dumps(self.reason_codes),
            "latency_ms": self.latency_ms,
            "created_at": self.created_at,
        }

    @classmethod
    def from_values(cls, v: tuple[Any, ...] | list[Any]) -> DecisionRecord:
        """The inverse of :meth:`values` (a row read in ``COLUMNS`` order)."""
        return cls(
            id=v[0],
            request_id=v[1],
            entity_key=v[2],
            model_name=v[3],
            version=int(v[4]),
            variant=v[5],
            inputs=jsonutil.loads(v[6]),
            score=float(v[7]),
            threshold=float(v[8]),
            decision=v[9],
            reason_codes=jsonutil.loads(v[10]),
            latency_ms=float(v[11]),
            created_at=v[12],
        )

    @classmethod
    def from_row(cls, r: Any) -> DecisionRecord:
        m = r._mapping
        return cls(
            id=m["id"],
            request_id=m["request_id"],
            entity_key=m["entity_key"],
            model_name=m["model_name"],
            version=int(m["version"]),
            variant=m["variant"],
            inputs=jsonutil.loads(m["inputs"]),
            score=float(m["score"]),
            threshold=float(m["threshold"]),
            decision=m["decision"],
            reason_codes=jsonutil.loads(m["reason_codes"]),
            latency_ms=float(m["latency_ms"]),
            created_at=m["created_at"],
        )


@dataclass(frozen=True)
class Logged:
    record: DecisionRecord
    duplicate: bool


# Rows per INSERT: at 13 columns, 6,500 parameters, well inside SQLite's and PostgreSQL's limits.
ROWS_PER_STATEMENT = 500

COLUMNS = (
    "id", "request_id", "entity_key", "model_name", "version", "variant", "inputs", "score",
    "threshold", "decision", "reason_codes", "latency_ms", "created_at",
)  # fmt: skip

SHADOW_COLUMNS = (
    "decision_id", "model_name", "version", "score", "decision", "latency_ms", "created_at",
)  # fmt: skip

ERROR_COLUMNS = ("model_name", "version", "variant", "message", "created_at")
# (INSERT head, columns per row, tail) for _values_sql
DECISIONS_SQL = (
    f"INSERT INTO decisions ({', '.join(COLUMNS)})",
    len(COLUMNS),
    " ON CONFLICT (request_id) DO NOTHING",
)
SHADOWS_SQL = (f"INSERT INTO shadow_scores ({', '.join(SHADOW_COLUMNS)})", len(SHADOW_COLUMNS), "")
ERRORS_SQL = (f"INSERT INTO scoring_errors ({', '.join(ERROR_COLUMNS)})", len(ERROR_COLUMNS), "")

_STOP = object()
CHECKPOINT_SECONDS = 5.0
log = logging.getLogger("charter.serving")


class LogRow(Protocol):
    """What the writer needs of a decision: its ids and its row in ``COLUMNS`` order."""

    @property
    def id(self) -> str: ...

    @property
    def request_id(self) -> str: ...

    def values(self) -> tuple[Any, ...]: ...


class EncodedRow:
    """A decision that arrives already encoded (from a worker, at the shared writer)."""

    __slots__ = ("row",)

    def __init__(self, row: tuple[Any, ...]) -> None:
        self.row = row

    @property
    def id(self) -> str:
        return str(self.row[0])

    @property
    def request_id(self) -> str:
        return str(self.row[1])

    def values(self) -> tuple[Any, ...]:
        return self.row


class Acknowledger(Protocol):
    """Takes the results of a group commit for decisions that other processes wait for."""

    def acknowledge(self, results: list[tuple[int, Result]]) -> None: ...


@dataclass(frozen=True, slots=True)
class Remote:
    """A decision another process waits for: who to tell, and its number there."""

    to: Acknowledger
    seq: int


# Who waits for a decision's commit: a thread (a concurrent Future), a coroutine (an event loop
# and a future of that loop), or another process (Remote).
Waiter: TypeAlias = (
    "Future[Logged] | tuple[asyncio.AbstractEventLoop, asyncio.Future[Logged]] | Remote"
)
# What became of a decision: None (written now), the decision logged before under its request id,
# or why nothing was written.
Result: TypeAlias = "DecisionRecord | BaseException | None"
Outcome: TypeAlias = "Logged | BaseException"


def _outcome(row: LogRow, result: Result) -> Outcome:
    if isinstance(result, BaseException):
        return result
    if result is not None:
        return Logged(result, True)
    if isinstance(row, DecisionRecord):
        return Logged(row, False)
    return TypeError(f"decision {row.request_id!r} was submitted without its record")


def settle(settled: Sequence[tuple[Waiter, LogRow, Result]]) -> None:
    """Tell each waiter what became of its decision. Futures of an event loop are resolved on
    that loop, all of one group commit in one call: one wake-up of the loop per commit, not one
    per request; another process gets one message per group commit."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Logged], Outcome]]] = {}
    by_peer: dict[Acknowledger, list[tuple[int, Result]]] = {}
    for waiter, row, result in settled:
        if isinstance(waiter, Remote):
            by_peer.setdefault(waiter.to, []).append((waiter.seq, result))
        elif isinstance(waiter, tuple):
            by_loop.setdefault(waiter[0], []).append((waiter[1], _outcome(row, result)))
        elif not waiter.done():
            outcome = _outcome(row, result)
            if isinstance(outcome, BaseException):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(outcome)
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(_resolve_on_loop, pairs)
    for peer, results in by_peer.items():
        peer.acknowledge(results)


def _resolve_on_loop(pairs: list[tuple[asyncio.Future[Logged], Outcome]]) -> None:
    for fut, outcome in pairs:
        if fut.done():  # cancelled: the request went away
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


class PerTurn(Generic[T]):
    """Items submitted on an event loop during one turn of the loop, handed to ``deliver`` as
    one list at the end of the turn: one wake-up of a background thread per turn of the loop,
    not one per request. Used for the decision log's queue and the shadow thread's."""

    def __init__(self, deliver: Callable[[list[T]], None]) -> None:
        self._deliver = deliver
        self._gathered: dict[asyncio.AbstractEventLoop, list[T]] = {}

    def add(self, loop: asyncio.AbstractEventLoop, item: T) -> None:
        gathered = self._gathered.get(loop)
        if gathered is None:
            gathered = self._gathered[loop] = []
            loop.call_soon(self._hand_over, loop)
        gathered.append(item)

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        self._deliver(self._gathered.pop(loop))


class DecisionQueue(ABC):
    """What the service hands decisions to: a queue drained by one background thread, which
    writes them (``DecisionLog``) or forwards them to the shared writer (``RemoteDecisionLog``)."""

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # decisions submitted from an event loop reach the thread in one put per turn of it
        self._per_turn: PerTurn[tuple[str, Any, Waiter]] = PerTurn(
            lambda items: self._q.put(("many", items, None))
        )
        self.batches = 0  # groups committed (or acknowledged), for metrics and tests
        self.rows = 0

    @abstractmethod
    def start(self) -> None:
        """Start the background thread that drains the queue."""

    @abstractmethod
    def stop(self) -> None:
        """Drain what is queued, then end the thread."""

    def submit(self, record: DecisionRecord) -> Future[Logged]:
        fut: Future[Logged] = Future()
        self._q.put(("decision", record, fut))
        return fut

    def submit_async(self, record: DecisionRecord) -> asyncio.Future[Logged]:
        """``submit`` for a coroutine on the running event loop: the future is resolved on the
        loop together with the rest of its group commit."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Logged] = loop.create_future()
        self._per_turn.add(loop, ("decision", record, (loop, fut)))
        return fut

    def submit_error(self, row: dict[str, Any]) -> None:
        """A request a model failed to score (for the canary's error guardrail), best-effort."""
        self._q.put(("error", tuple(row[c] for c in ERROR_COLUMNS), None))

    def submit_shadow(self, row: dict[str, Any]) -> None:
        """Shadow scores are logged best-effort, off the response path."""
        self._q.put(("shadow", tuple(row[c] for c in SHADOW_COLUMNS), None))

    def _request_stop(self) -> None:
        self._q.put(_STOP)

    def _next_batch(self) -> tuple[list[tuple[str, Any, Waiter | None]], bool]:
        """Wait for work, then take everything waiting (up to ``max_batch``); and whether to
        stop after it."""
        item = self._q.get()
        if item is _STOP:
            return [], True
        batch: list[tuple[str, Any, Waiter | None]] = []
        while True:
            if item[0] == "many":
                batch.extend(item[1])
            else:
                batch.append(item)
            if len(batch) >= self.max_batch:
                return batch, False
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return batch, False
            if item is _STOP:
                return batch, True


class DecisionLog(DecisionQueue):
    """Group-commit writer of decisions (one background thread per process)."""

    def __init__(self, db: Database, *, max_batch: int = 512) -> None:
        super().__init__(max_batch)
        self.db = db
        # SQLite lets one writer in at a time and makes the others poll with growing sleeps
        # (tens of milliseconds). Worker processes queue on a file lock instead, which the
        # kernel hands over the moment it is released.
        self._mark = "?" if db.dialect == "sqlite" else "%s"
        self._sql: dict[tuple[str, int], str] = {}
        self._conn: Any = None  # the writer thread's driver connection, and its database
        self._conn_db: Database | None = None
        self._lock_path: str | None = None
        if db.dialect == "sqlite" and db.engine.url.database not in (None, "", ":memory:"):
            self._lock_path = f"{db.engine.url.database}.decision-log.lock"
        self._lock_fd: int | None = None
        self._thread: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._stopping = threading.Event()

    def _checkpoints(self) -> None:
        while not self._stopping.wait(CHECKPOINT_SECONDS):
            try:
                self.db.checkpoint()
            except (StoreUnavailable, exc.SQLAlchemyError) as e:
                log.warning("WAL checkpoint failed (will retry): %s", e)

    def start(self, *, thread: bool = True) -> None:
        """Start the writer thread, and the WAL checkpoints on SQLite. With ``thread=False``
        the caller writes on its own thread with :meth:`write_group` (the shared writer's
        process does, from its socket loop)."""
        if self.db.dialect == "sqlite" and self._checkpointer is None:
            self._stopping.clear()
            self._checkpointer = threading.Thread(
                target=self._checkpoints, name="charter-wal-checkpoint", daemon=True
            )
            self._checkpointer.start()
        if thread and self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="charter-decision-log", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=30)
            self._checkpointer = None
        if self._thread is not None:
            self._request_stop()
            self._thread.join(timeout=30)
            self._thread = None
        else:  # the caller wrote on its own thread; it has stopped writing
            self._release()

    # -- the writer thread ----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._release()

    def _release(self) -> None:
        self._close_connection()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _loop(self) -> None:
        while True:
            batch, stop = self._next_batch()
            if not batch:
                return
            self.write_group(batch)
            if stop:
                return

    def write_group(self, batch: list[tuple[str, Any, Waiter | None]]) -> None:
        """Write one group of ``(kind, row, waiter)`` and tell its waiters, on this thread."""
        try:
            settled = self._write(batch)
        except Exception as e:  # a bug must not kill the writer and leave requests waiting
            log.exception("the decision-log writer failed on a batch")
            err = StoreUnavailable(
                f"the decision log failed: {e!r}",
                remedy="retry; report the server log to the platform team",
            )
            settled = [(w, rec, err) for _kind, rec, w in batch if w is not None]
        settle(settled)

    def _write(
        self, batch: list[tuple[str, Any, Waiter | None]]
    ) -> list[tuple[Waiter, LogRow, Result]]:
        """Write one group; what became of every waited-for decision (nothing is settled here)."""
        main: list[tuple[LogRow, Waiter]] = [
            (rec, w) for kind, rec, w in batch if kind == "decision" and w is not None
        ]
        shadows = [rec for kind, rec, _ in batch if kind == "shadow"]
        failures = [rec for kind, rec, _ in batch if kind == "error"]
        # Repeated request ids within one batch: the first is written, the others follow it.
        first: dict[str, LogRow] = {}
        followers: list[tuple[LogRow, Waiter]] = []
        unique: list[tuple[LogRow, Waiter]] = []
        for rec, w in main:
            if rec.request_id in first:
                followers.append((rec, w))
            else:
                first[rec.request_id] = rec
                unique.append((rec, w))
        try:
            existing = self._insert([r for r, _ in unique], shadows, failures)
        except StoreUnavailable as e:  # the database failed: nothing in this batch is kept
            return [(w, rec, e) for rec, w in main]
        except (exc.SQLAlchemyError, OSError) as e:
            err = _unavailable(e)
            return [(w, rec, err) for rec, w in main]
        settled: list[tuple[Waiter, LogRow, Result]] = [
            (w, rec, ex) for (rec, w), ex in zip(unique, existing, strict=True)
        ]
        if followers:
            # A follower gets what the first of its request id got: the earlier decision, or
            # the first's own record when that one was written now.
            wanted = {rec.request_id for rec, _ in followers}
            kept: dict[str, Result] = {
                rec.request_id: (ex if ex is not None else _as_record(rec))
                for (rec, _), ex in zip(unique, existing, strict=True)
                if rec.request_id in wanted
            }
            settled.extend((w, rec, kept[rec.request_id]) for rec, w in followers)
        return settled

    @contextlib.contextmanager
    def _writer_turn(self) -> Iterator[None]:
        if self._lock_path is None:
            yield
            return
        if self._lock_fd is None:  # opened once: the writer takes its turn per group
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fd = self._lock_fd
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _insert(
        self,
        recs: list[LogRow],
        shadows: list[tuple[Any, ...]],
        failures: list[tuple[Any, ...]] | None = None,
    ) -> list[DecisionRecord | None]:
        """Write one group: for each decision, None when it was written now, or the decision
        logged before under its request id."""
        # The rows are encoded before this process takes its turn: the other workers wait for
        # the turn, not for this one's JSON encoding.
        rows = [r.values() for r in recs]
        with self._writer_turn():
            return self._insert_locked(recs, rows, shadows, failures or [])

    def _insert_locked(
        self,
        recs: list[LogRow],
        rows: list[tuple[Any, ...]],
        shadow_rows: list[tuple[Any, ...]],
        failures: list[tuple[Any, ...]],
    ) -> list[DecisionRecord | None]:
        dbapi = self.db.engine.dialect.dbapi
        assert dbapi is not None
        try:
            with self._transaction() as cur:
                # One multi-row INSERT per table: the driver binds the whole group in one call
                # and the database inserts it in one step. A request id logged before is
                # skipped by the database; only when the count says some were skipped do we
                # read which.
                inserted = 0
                for chunk in _chunks(rows, ROWS_PER_STATEMENT):
                    cur.execute(self._values_sql(DECISIONS_SQL, len(chunk)), _flat(chunk))
                    inserted += cur.rowcount
                existing: dict[str, DecisionRecord] = {}
                if inserted != len(recs):
                    stored = self._existing_in(cur, [r.request_id for r in recs])
                    for r in recs:
                        if r.request_id not in stored:
                            raise RuntimeError(
                                f"decision {r.request_id!r} was neither written nor found"
                            )
                        if stored[r.request_id].id != r.id:
                            existing[r.request_id] = stored[r.request_id]
                for chunk in _chunks(shadow_rows, ROWS_PER_STATEMENT):
                    cur.execute(self._values_sql(SHADOWS_SQL, len(chunk)), _flat(chunk))
                if failures:
                    cur.executemany(self._values_sql(ERRORS_SQL, 1), failures)
        except dbapi.IntegrityError:
            # Another constraint than the request id failed: take the rows one at a time.
            return [self._insert_one(r) for r in recs]
        except dbapi.Error as e:
            raise _unavailable(e) from e
        self.batches += 1
        self.rows += len(recs) - len(existing)
        return [existing.get(r.request_id) for r in recs]

    # -- the writer's own connection ------------------------------------------------------------
    def _values_sql(self, template: tuple[str, int, str], n: int) -> str:
        """``INSERT ... VALUES (...), (...) ...`` for ``n`` rows, built once per size."""
        key = (template[0], n)
        sql = self._sql.get(key)
        if sql is None:
            head, width, tail = template
            one = "(" + ", ".join([self._mark] * width) + ")"
            sql = f"{head} VALUES {', '.join([one] * n)}{tail}"
            self._sql[key] = sql
        return sql

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        """One transaction on the writer thread's own driver connection. The SQL layer's work
        per statement (pool checkout, events, result wrapping) cost more than the inserts, and
        it ran while the other workers waited for their turn."""
        if self._conn is None or self._conn_db is not self.db:
            self._close_connection()
            self._conn = self.db.engine.raw_connection()
            self._conn_db = self.db
        conn = self._conn
        try:
            cur = conn.cursor()
            if self.db.dialect == "sqlite":
                cur.execute("BEGIN IMMEDIATE")  # the connection is in autocommit mode
            yield cur
            conn.commit()
        except BaseException:
            # Whatever failed, the connection may be broken: roll back, drop it, and open a new
            # one for the next group (so the service recovers when the database does).
            self._close_connection(broken=True)
            raise

    def _close_connection(self, broken: bool = False) -> None:
        conn, self._conn, self._conn_db = self._conn, None, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            if broken:
                conn.rollback()
                conn.invalidate()  # its state is unknown: never hand it to anyone else
            else:
                conn.close()

    def _existing_in(self, cur: Any, request_ids: list[str]) -> dict[str, DecisionRecord]:
        found: dict[str, DecisionRecord] = {}
        for chunk in _chunks(request_ids, ROWS_PER_STATEMENT):
            cur.execute(
                f"SELECT {', '.join(COLUMNS)} FROM decisions WHERE request_id IN "
                f"({', '.join([self._mark] * len(chunk))})",
                chunk,
            )
            for values in cur.fetchall():
                rec = DecisionRecord.from_values(values)
                found[rec.request_id] = rec
        return found

    def _insert_one(self, rec: LogRow) -> DecisionRecord | None:
        try:
            with self.db.write(registry_lock=False) as conn:
                conn.execute(
                    decisions.insert().values(**dict(zip(COLUMNS, rec.values(), strict=True)))
                )
            self.rows += 1
            return None
        except exc.IntegrityError:
            with self.db.read() as conn:
                return self._existing(conn, [rec.request_id])[rec.request_id]

    @staticmethod
    def _existing(conn: Any, request_ids: list[str]) -> dict[str, DecisionRecord]:
        """The decisions logged under ``request_ids``, read through the SQL layer."""
        if not request_ids:
            return {}
        rows = conn.execute(select(decisions).where(decisions.c.request_id.in_(request_ids)))
        return {r.request_id: DecisionRecord.from_row(r) for r in rows}


def _as_record(row: LogRow) -> DecisionRecord:
    return row if isinstance(row, DecisionRecord) else DecisionRecord.from_values(row.values())


def _chunks(rows: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def _flat(rows: list[tuple[Any, ...]]) -> list[Any]:
    return [v for row in rows for v in row]


def _unavailable(e: Exception) -> StoreUnavailable:
    return StoreUnavailable(
        f"the decision log cannot be written: {str(e).splitlines()[0] if str(e) else e!r}",
        remedy="retry later; the service recovers by itself when the database does",
    )


def get_decision(db: Database, decision_id: str) -> DecisionRecord | None:
    with db.read() as conn:
        r = conn.execute(select(decisions).where(decisions.c.id == decision_id)).first()
    return None if r is None else DecisionRecord.from_row(r)


@dataclass(frozen=True)
class DecisionPage:
    """One page of :func:`list_decisions`, newest first. ``next_before`` is the cursor of the
    next (older) page, None on the last page."""

    records: list[DecisionRecord]
    next_before: str | None


def _cursor(rec: DecisionRecord) -> str:
    return f"{rec.created_at}|{rec.id}"


def _parse_cursor(before: str) -> tuple[str, str]:
    created_at, sep, did = before.partition("|")
    if not sep or not created_at or not did or len(before) > 100:
        raise InvalidArgument(
            "before must be a cursor from a previous page (created_at|decision id)",
            field="before",
            remedy="follow the 'older' link of the previous page, or leave it out",
        )
    return created_at, did


def list_decisions(
    db: Database,
    *,
    model: str | None = None,
    version: int | None = None,
    decision: str | None = None,
    variant: str | None = None,
    entity_key: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: str | None = None,
    limit: int = 50,
) -> DecisionPage:
    """Logged decisions, newest first, filtered by model (and version), decision, variant, the
    entity key (exact) and ``[since, until)`` (timezone-aware); at most ``limit`` (1-500) per
    page, the next page from ``before`` (keyset paging on ``(created_at, id)``, so a page is
    stable while new decisions arrive)."""
    from charter.serving.routing import VARIANTS
    from charter.serving.runtime import DECISION_LABELS

    if not 1 <= limit <= 500:
        raise InvalidArgument("limit must be between 1 and 500", field="limit", remedy="e.g. 50")
    for name, chosen, allowed in (
        ("decision", decision, DECISION_LABELS),
        ("variant", variant, VARIANTS),
    ):
        if chosen is not None and chosen not in allowed:
            raise InvalidArgument(
                f"unknown {name} {chosen!r}", field=name, remedy=f"use one of: {', '.join(allowed)}"
            )
    query = select(decisions)
    for column, value in (
        (decisions.c.model_name, model),
        (decisions.c.version, version),
        (decisions.c.decision, decision),
        (decisions.c.variant, variant),
        (decisions.c.entity_key, entity_key),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(decisions.c.created_at >= iso(since))
    if until is not None:
        query = query.where(decisions.c.created_at < iso(until))
    if before is not None:
        created_at, did = _parse_cursor(before)
        query = query.where(
            or_(
                decisions.c.created_at < created_at,
                and_(decisions.c.created_at == created_at, decisions.c.id < did),
            )
        )
    query = query.order_by(decisions.c.created_at.desc(), decisions.c.id.desc()).limit(limit + 1)
    with db.read() as conn:
        records = [DecisionRecord.from_row(r) for r in conn.execute(query)]
    more = len(records) > limit
    records = records[:limit]
    return DecisionPage(records, _cursor(records[-1]) if more else None)


def get_outcome(db: Database, decision_id: str) -> dict[str, Any] | None:
    """The outcome recorded for a decision (``label``, ``observed_at``), if it has arrived."""
    with db.read() as conn:
        o = conn.execute(select(outcomes).where(outcomes.c.decision_id == decision_id)).first()
    return None if o is None else {"label": o.label, "observed_at": o.observed_at}
