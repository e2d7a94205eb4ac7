"""The audit trail: an append-only, hash-chained event log.

Every state change appends one event in the same transaction as the change itself (the caller
passes its open write connection). Each event carries the SHA-256 of the one before it, and its own
hash covers every stored field, so an edit, a deletion, an insertion or a swap breaks the chain at
a named event. A deletion of the newest events (truncation) or a wholesale rewrite leaves a valid
chain behind; a :class:`~charter.entities.Checkpoint` saved elsewhere catches both.

Conventions:

* ``seq`` starts at 1 and increases by exactly 1; the first event's ``prev_hash`` is 64 zeros.
* ``hash = sha256(canonical JSON of {seq, event_id, ts, actor, actor_type, role, action,
  subject_type, subject, model_name, payload, prev_hash})`` where ``payload`` is the stored
  canonical JSON text.
* ``ts`` never goes backwards along the chain: an event stamped earlier than its predecessor
  (a clock step back) takes the predecessor's time, so "as of time T" queries agree with ``seq``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select

from charter.clock import Clock, iso, system_clock
from charter.entities import Actor, AuditEvent, Checkpoint, VerifyResult
from charter.errors import InvalidArgument
from charter.storage import jsonutil
from charter.storage.schema import audit_events

GENESIS_HASH = "0" * 64

_HASHED_FIELDS = (
    "seq",
    "event_id",
    "ts",
    "actor",
    "actor_type",
    "role",
    "action",
    "subject_type",
    "subject",
    "model_name",
    "payload",
    "prev_hash",
)


def compute_hash(row: dict[str, Any]) -> str:
    """The hash of one event from its stored fields (``payload`` as stored text)."""
    body = {k: row[k] for k in _HASHED_FIELDS}
    return hashlib.sha256(jsonutil.dumps(body).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Subject:
    """What an event is about: a type ("model", "version", "user", ...) and an identifier."""

    type: str
    id: str
    model_name: str | None = None


def append(
    conn: Connection,
    *,
    actor: Actor,
    role: str,
    action: str,
    subject: Subject,
    payload: dict[str, Any] | None = None,
    clock: Clock = system_clock,
) -> AuditEvent:
    """Append one event inside the caller's write transaction (which serialises appends)."""
    head = conn.execute(
        select(audit_events.c.seq, audit_events.c.hash, audit_events.c.ts)
        .order_by(audit_events.c.seq.desc())
        .limit(1)
    ).first()
    prev_seq, prev_hash, prev_ts = (0, GENESIS_HASH, "") if head is None else tuple(head)
    ts = iso(clock())
    if ts < prev_ts:
        ts = prev_ts
    row: dict[str, Any] = {
        "seq": prev_seq + 1,
        "event_id": str(uuid.uuid4()),
        "ts": ts,
        "actor": actor.username,
        "actor_type": "automation" if actor.is_automation else "person",
        "role": role,
        "action": action,
        "subject_type": subject.type,
        "subject": subject.id,
        "model_name": subject.model_name,
        "payload": jsonutil.dumps(payload or {}),
        "prev_hash": prev_hash,
    }
    row["hash"] = compute_hash(row)
    conn.execute(audit_events.insert().values(**row))
    return _to_event(row)


def _to_event(row: Any) -> AuditEvent:
    m = row if isinstance(row, dict) else row._mapping
    return AuditEvent(
        seq=m["seq"],
        event_id=m["event_id"],
        ts=m["ts"],
        actor=m["actor"],
        actor_type=m["actor_type"],
        role=m["role"],
        action=m["action"],
        subject_type=m["subject_type"],
        subject=m["subject"],
        model_name=m["model_name"],
        payload=jsonutil.loads(m["payload"]),
        prev_hash=m["prev_hash"],
        hash=m["hash"],
    )


def head(conn: Connection) -> Checkpoint | None:
    """The newest event's (seq, hash, ts): save it elsewhere to catch truncation later."""
    r = conn.execute(
        select(audit_events.c.seq, audit_events.c.hash, audit_events.c.ts)
        .order_by(audit_events.c.seq.desc())
        .limit(1)
    ).first()
    return None if r is None else Checkpoint(seq=r.seq, hash=r.hash, ts=r.ts)


def _iter_rows(conn: Connection, batch: int = 5000) -> Iterator[dict[str, Any]]:
    last = 0
    while True:
        rows = conn.execute(
            select(audit_events)
            .where(audit_events.c.seq > last)
            .order_by(audit_events.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        for r in rows:
            yield dict(r._mapping)
        last = rows[-1].seq


def verify(conn: Connection, checkpoint: Checkpoint | None = None) -> VerifyResult:
    """Recompute the whole chain; report the first broken event, or that all is well.

    With a ``checkpoint`` (an earlier head), also prove the chain still contains that event
    unchanged: this catches deleted newest events and a chain rewritten from scratch.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    last: dict[str, Any] | None = None
    checkpoint_seen = False

    def broken(seq: int, event_id: str | None, reason: str) -> VerifyResult:
        return VerifyResult(
            ok=False,
            events_checked=count,
            head=None,
            first_broken_seq=seq,
            first_broken_event_id=event_id,
            reason=reason,
        )

    for row in _iter_rows(conn):
        seq = row["seq"]
        if seq != expected_seq:
            if seq > expected_seq:
                missing = (
                    f"event {expected_seq} is missing"
                    if seq == expected_seq + 1
                    else f"events {expected_seq}..{seq - 1} are missing"
                )
                return broken(
                    expected_seq,
                    row["event_id"],
                    f"{missing}: event {seq} ({row['event_id']}) follows event "
                    f"{expected_seq - 1} (events were deleted)",
                )
            return broken(seq, row["event_id"], f"event {seq} is out of order")
        if row["prev_hash"] != prev_hash:
            return broken(
                seq,
                row["event_id"],
                f"event {seq} ({row['event_id']}) does not link to event {seq - 1}: its "
                "prev_hash differs from that event's hash (an event was inserted, removed or "
                "swapped here)",
            )
        actual = compute_hash(row)
        if actual != row["hash"]:
            return broken(
                seq,
                row["event_id"],
                f"event {seq} ({row['event_id']}, action {row['action']}) was altered: its "
                "content no longer matches its hash",
            )
        if checkpoint is not None and seq == checkpoint.seq:
            checkpoint_seen = True
            if row["hash"] != checkpoint.hash:
                return broken(
                    seq,
                    row["event_id"],
                    f"event {seq} differs from the saved checkpoint (hash {row['hash'][:12]}… "
                    f"instead of {checkpoint.hash[:12]}…): the chain was rewritten",
                )
        prev_hash = row["hash"]
        expected_seq += 1
        count += 1
        last = row
    if checkpoint is not None and not checkpoint_seen:
        have = expected_seq - 1
        return broken(
            have + 1,
            None,
            f"the chain ends at event {have} but the checkpoint vouches for event "
            f"{checkpoint.seq}: events {have + 1}..{checkpoint.seq} were removed (truncation)",
        )
    return VerifyResult(
        ok=True,
        events_checked=count,
        head=None if last is None else Checkpoint(last["seq"], last["hash"], last["ts"]),
    )


def query(
    conn: Connection,
    *,
    model_name: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
    newest_first: bool = False,
    before_seq: int | None = None,
) -> list[AuditEvent]:
    """Events filtered by model, actor, action (exact, or a prefix ending in ``.*``) and time;
    ``before_seq`` keeps those older than that event (the next page, newest first)."""
    conds = []
    if before_seq is not None:
        conds.append(audit_events.c.seq < before_seq)
    if model_name is not None:
        conds.append(audit_events.c.model_name == model_name)
    if actor is not None:
        conds.append(audit_events.c.actor == actor)
    if action is not None:
        if action.endswith(".*"):
            conds.append(audit_events.c.action.startswith(action[:-1], autoescape=True))
        else:
            conds.append(audit_events.c.action == action)
    if since is not None:
        conds.append(audit_events.c.ts >= iso(since))
    if until is not None:
        conds.append(audit_events.c.ts <= iso(until))
    if limit is not None and limit <= 0:
        raise InvalidArgument("limit must be positive", field="limit", remedy="pass --limit 100")
    order = audit_events.c.seq.desc() if newest_first else audit_events.c.seq
    stmt = select(audit_events).where(and_(True, *conds)).order_by(order)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_to_event(r) for r in conn.execute(stmt)]


ALIAS_SET = "alias.set"
ALIAS_REMOVED = "alias.removed"


def alias_holder_at(conn: Connection, model_name: str, alias: str, at: datetime) -> int | None:
    """Which version held ``alias`` of ``model_name`` at time ``at`` (None: nobody).

    Answered from the audit trail alone: the newest alias event for that model and alias at or
    before ``at`` says who held it.
    """
    rows = conn.execute(
        select(audit_events.c.action, audit_events.c.payload)
        .where(
            audit_events.c.model_name == model_name,
            audit_events.c.action.in_((ALIAS_SET, ALIAS_REMOVED)),
            audit_events.c.ts <= iso(at),
        )
        .order_by(audit_events.c.seq.desc())
    )
    for action, payload_text in rows:
        payload = jsonutil.loads(payload_text)
        if payload.get("alias") != alias:
            continue
        return int(payload["version"]) if action == ALIAS_SET else None
    return None
