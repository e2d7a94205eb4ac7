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

import contextlib
import fcntl
import json
import logging
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc, select

from charter.errors import StoreUnavailable
from charter.storage import jsonutil
from charter.storage.db import Database
from charter.storage.schema import decisions, outcomes, scoring_errors, shadow_scores


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
        """The row as a tuple in ``COLUMNS`` order, for the driver's executemany."""
        return (
            self.id,
            self.request_id,
            self.entity_key,
            self.model_name,
            self.version,
            self.variant,
            json.dumps(self.inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
            self.score,
            self.threshold,
            self.decision,
            json.dumps(
                self.reason_codes, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ),
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


COLUMNS = (
    "id", "request_id", "entity_key", "model_name", "version", "variant", "inputs", "score",
    "threshold", "decision", "reason_codes", "latency_ms", "created_at",
)  # fmt: skip

_STOP = object()
CHECKPOINT_SECONDS = 5.0
log = logging.getLogger("charter.serving")


class DecisionLog:
    """Group-commit writer of decisions (one background thread per process)."""

    def __init__(self, db: Database, *, max_batch: int = 512) -> None:
        self.db = db
        self.max_batch = max_batch
        # SQLite lets one writer in at a time and makes the others poll with growing sleeps
        # (tens of milliseconds). Worker processes queue on a file lock instead, which the
        # kernel hands over the moment it is released.
        mark = "?" if db.dialect == "sqlite" else "%s"
        self._insert_sql = (
            f"INSERT INTO decisions ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(COLUMNS))}) "
            "ON CONFLICT (request_id) DO NOTHING"
        )
        self._lock_path: str | None = None
        if db.dialect == "sqlite" and db.engine.url.database not in (None, "", ":memory:"):
            self._lock_path = f"{db.engine.url.database}.decision-log.lock"
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._stopping = threading.Event()
        self.batches = 0  # committed groups, for metrics and tests
        self.rows = 0

    def _checkpoints(self) -> None:
        while not self._stopping.wait(CHECKPOINT_SECONDS):
            try:
                self.db.checkpoint()
            except (StoreUnavailable, exc.SQLAlchemyError) as e:
                log.warning("WAL checkpoint failed (will retry): %s", e)

    def start(self) -> None:
        if self.db.dialect == "sqlite" and self._checkpointer is None:
            self._stopping.clear()
            self._checkpointer = threading.Thread(
                target=self._checkpoints, name="charter-wal-checkpoint", daemon=True
            )
            self._checkpointer.start()
        if self._thread is None:
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
            self._q.put(_STOP)
            self._thread.join(timeout=30)
            self._thread = None

    def submit(self, record: DecisionRecord) -> Future[Logged]:
        fut: Future[Logged] = Future()
        self._q.put(("decision", record, fut))
        return fut

    def submit_error(self, row: dict[str, Any]) -> None:
        """A request a model failed to score (for the canary's error guardrail), best-effort."""
        self._q.put(("error", row, None))

    def submit_shadow(self, row: dict[str, Any]) -> None:
        """Shadow scores are logged best-effort, off the response path."""
        self._q.put(("shadow", row, None))

    # -- the writer thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            try:
                self._write(batch)
            except Exception as e:  # a bug must not kill the writer and leave requests waiting
                log.exception("the decision-log writer failed on a batch")
                for _kind, _rec, fut in batch:
                    if fut is not None and not fut.done():
                        fut.set_exception(
                            StoreUnavailable(
                                f"the decision log failed: {e!r}",
                                remedy="retry; report the server log to the platform team",
                            )
                        )
            if stop:
                return

    def _write(self, batch: list[tuple[str, Any, Future[Logged] | None]]) -> None:
        main = [(rec, fut) for kind, rec, fut in batch if kind == "decision" and fut is not None]
        shadows = [rec for kind, rec, _ in batch if kind == "shadow"]
        failures = [rec for kind, rec, _ in batch if kind == "error"]
        # Repeated request ids within one batch: the first is written, the others follow it.
        first: dict[str, DecisionRecord] = {}
        followers: list[tuple[DecisionRecord, Future[Logged]]] = []
        unique: list[tuple[DecisionRecord, Future[Logged]]] = []
        for rec, fut in main:
            if rec.request_id in first:
                followers.append((rec, fut))
            else:
                first[rec.request_id] = rec
                unique.append((rec, fut))
        try:
            results = self._insert(unique, shadows, failures)
        except (StoreUnavailable, exc.SQLAlchemyError, OSError) as e:
            # The database failed: nothing in this batch is acknowledged.
            err = StoreUnavailable(
                f"the decision log cannot be written: {str(e).splitlines()[0] if str(e) else e!r}",
                remedy="retry later; the service recovers by itself when the database does",
            )
            for _, fut in main:
                if not fut.done():
                    fut.set_exception(err)
            return
        for (_rec, fut), logged in zip(unique, results, strict=True):
            fut.set_result(logged)
        by_id = {r.record.request_id: r.record for r in results}
        for rec, fut in followers:
            fut.set_result(Logged(by_id[rec.request_id], duplicate=True))

    @contextlib.contextmanager
    def _writer_turn(self) -> Iterator[None]:
        if self._lock_path is None:
            yield
            return
        with open(self._lock_path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _insert(
        self,
        items: list[tuple[DecisionRecord, Future[Logged]]],
        shadows: list[dict[str, Any]],
        failures: list[dict[str, Any]] | None = None,
    ) -> list[Logged]:
        with self._writer_turn():
            return self._insert_locked(items, shadows, failures or [])

    def _insert_locked(
        self,
        items: list[tuple[DecisionRecord, Future[Logged]]],
        shadows: list[dict[str, Any]],
        failures: list[dict[str, Any]] | None = None,
    ) -> list[Logged]:
        recs = [r for r, _ in items]
        try:
            with self.db.write(registry_lock=False) as conn:
                # Straight to the driver's executemany (the SQL layer's per-row processing cost
                # more than the insert itself). A request id logged before is skipped by the
                # database; only when the count says some were skipped do we read which.
                inserted = (
                    conn.exec_driver_sql(self._insert_sql, [r.values() for r in recs]).rowcount
                    if recs
                    else 0
                )
                existing: dict[str, DecisionRecord] = {}
                if inserted != len(recs):
                    stored = self._existing(conn, [r.request_id for r in recs])
                    for r in recs:
                        if r.request_id not in stored:
                            raise RuntimeError(
                                f"decision {r.request_id!r} was neither written nor found"
                            )
                        if stored[r.request_id].id != r.id:
                            existing[r.request_id] = stored[r.request_id]
                if shadows:
                    conn.execute(shadow_scores.insert(), shadows)
                if failures:
                    conn.execute(scoring_errors.insert(), failures)
        except exc.IntegrityError:
            # Another constraint than the request id failed: take the rows one at a time.
            return [self._insert_one(r) for r in recs]
        new = [r for r in recs if r.request_id not in existing]
        self.batches += 1
        self.rows += len(new)
        return [
            Logged(existing[r.request_id], True) if r.request_id in existing else Logged(r, False)
            for r in recs
        ]

    def _insert_one(self, rec: DecisionRecord) -> Logged:
        try:
            with self.db.write(registry_lock=False) as conn:
                conn.execute(decisions.insert().values(**rec.row()))
            self.rows += 1
            return Logged(rec, False)
        except exc.IntegrityError:
            with self.db.read() as conn:
                return Logged(self._existing(conn, [rec.request_id])[rec.request_id], True)

    @staticmethod
    def _existing(conn: Any, request_ids: list[str]) -> dict[str, DecisionRecord]:
        if not request_ids:
            return {}
        rows = conn.execute(select(decisions).where(decisions.c.request_id.in_(request_ids)))
        return {r.request_id: DecisionRecord.from_row(r) for r in rows}


def get_decision(db: Database, decision_id: str) -> DecisionRecord | None:
    with db.read() as conn:
        r = conn.execute(select(decisions).where(decisions.c.id == decision_id)).first()
    return None if r is None else DecisionRecord.from_row(r)


def get_outcome(db: Database, decision_id: str) -> dict[str, Any] | None:
    """The outcome recorded for a decision (``label``, ``observed_at``), if it has arrived."""
    with db.read() as conn:
        o = conn.execute(select(outcomes).where(outcomes.c.decision_id == decision_id)).first()
    return None if o is None else {"label": o.label, "observed_at": o.observed_at}
