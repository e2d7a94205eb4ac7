"""The audit trail is append-only and every kind of tampering is detected and named."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import exc, select, text

from charter import audit
from charter.entities import Checkpoint
from charter.registry.service import Registry
from charter.storage import jsonutil
from charter.storage.db import Database
from charter.storage.schema import audit_events

from helpers import approved_version, create_model


@pytest.fixture
def chain(registry: Registry, people) -> Registry:
    create_model(registry, people.dev)
    v = approved_version(registry, people.dev, people.val, people.app)
    registry.set_alias(people.app, "pd-model", v.version, "champion")
    assert registry.verify_audit().events_checked >= 12
    return registry


def _raw(db: Database, *statements: tuple[str, dict[str, Any]]) -> None:
    """What an attacker with direct database access does: drop the guard, then edit rows."""
    with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
        for sql, params in statements:
            conn.execute(text(sql), params)


def _rows(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(audit_events).order_by("seq"))]


def _event_id(db: Database, seq: int) -> str:
    return next(r["event_id"] for r in _rows(db) if r["seq"] == seq)


def test_database_refuses_update_and_delete(chain: Registry) -> None:
    db = chain.db
    with pytest.raises(exc.DBAPIError) as e, db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"))
    assert "append-only" in str(e.value)
    with pytest.raises(exc.DBAPIError) as e, db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 3"))
    assert "append-only" in str(e.value)
    if db.dialect == "postgresql":
        with pytest.raises(exc.DBAPIError) as e, db.engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_events"))
        assert "append-only" in str(e.value)
    assert chain.verify_audit().ok


def test_edit_is_detected_at_the_edited_event(chain: Registry) -> None:
    target = _event_id(chain.db, 8)
    _raw(chain.db, ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 8", {}))
    r = chain.verify_audit()
    assert not r.ok and r.first_broken_seq == 8 and r.first_broken_event_id == target
    assert "altered" in (r.reason or "")


def test_payload_edit_is_detected(chain: Registry) -> None:
    row = next(r for r in _rows(chain.db) if r["action"] == "version.validated")
    payload = jsonutil.loads(row["payload"])
    payload["outcome"] = "fail"
    _raw(
        chain.db,
        (
            "UPDATE audit_events SET payload = :p WHERE seq = :s",
            {"p": jsonutil.dumps(payload), "s": row["seq"]},
        ),
    )
    r = chain.verify_audit()
    assert not r.ok and r.first_broken_seq == row["seq"]


def test_delete_is_detected_and_names_the_gap(chain: Registry) -> None:
    follower = _event_id(chain.db, 6)
    _raw(chain.db, ("DELETE FROM audit_events WHERE seq = 5", {}))
    r = chain.verify_audit()
    assert not r.ok and r.first_broken_seq == 5 and r.first_broken_event_id == follower
    assert "event 5 is missing" in (r.reason or "")


def test_insert_in_the_middle_is_detected(chain: Registry) -> None:
    rows = _rows(chain.db)
    prev = rows[5]  # seq 6
    displaced = rows[6]["event_id"]  # was seq 7, becomes 8
    forged = {
        "seq": 7,
        "event_id": "00000000-0000-0000-0000-000000000007",
        "ts": prev["ts"],
        "actor": "mallory",
        "actor_type": "person",
        "role": "approver",
        "action": "version.approve",
        "subject_type": "version",
        "subject": "pd-model/1",
        "model_name": "pd-model",
        "payload": "{}",
        "prev_hash": prev["hash"],
    }
    forged["hash"] = audit.compute_hash(forged)
    cols = ", ".join(forged)
    vals = ", ".join(f":{k}" for k in forged)
    _raw(
        chain.db,
        ("UPDATE audit_events SET seq = seq + 100000 WHERE seq >= 7", {}),
        ("UPDATE audit_events SET seq = seq - 99999 WHERE seq >= 100000", {}),
        (f"INSERT INTO audit_events ({cols}) VALUES ({vals})", forged),
    )
    r = chain.verify_audit()
    # The forged event links correctly to its predecessor; the chain breaks right after it.
    assert not r.ok and r.first_broken_seq == 8 and r.first_broken_event_id == displaced
    assert "does not link" in (r.reason or "")


def test_forged_append_with_a_bad_link_is_detected(chain: Registry) -> None:
    last = _rows(chain.db)[-1]
    forged = dict(last, seq=last["seq"] + 1, event_id="forged", prev_hash="f" * 64)
    forged["hash"] = audit.compute_hash(forged)
    cols = ", ".join(forged)
    vals = ", ".join(":" + k for k in forged)
    _raw(
        chain.db,
        (f"INSERT INTO audit_events ({cols}) VALUES ({vals})", forged),
    )
    r = chain.verify_audit()
    assert (
        not r.ok and r.first_broken_seq == last["seq"] + 1 and r.first_broken_event_id == "forged"
    )


def test_swapped_events_are_detected(chain: Registry) -> None:
    first = _event_id(chain.db, 6)
    _raw(
        chain.db,
        ("UPDATE audit_events SET seq = -1 WHERE seq = 5", {}),
        ("UPDATE audit_events SET seq = 5 WHERE seq = 6", {}),
        ("UPDATE audit_events SET seq = 6 WHERE seq = -1", {}),
    )
    r = chain.verify_audit()
    assert not r.ok and r.first_broken_seq == 5 and r.first_broken_event_id == first


def test_truncation_is_caught_against_a_checkpoint(chain: Registry) -> None:
    cp = chain.audit_checkpoint()
    assert cp is not None
    _raw(chain.db, ("DELETE FROM audit_events WHERE seq > :s", {"s": cp.seq - 3}))
    assert chain.verify_audit().ok  # what is left is a valid chain ...
    r = chain.verify_audit(cp)  # ... but not the one the checkpoint vouches for
    assert not r.ok and r.first_broken_seq == cp.seq - 2
    assert "truncation" in (r.reason or "")


def test_full_rewrite_is_caught_against_a_checkpoint(chain: Registry) -> None:
    cp = chain.audit_checkpoint()
    assert cp is not None
    rows = _rows(chain.db)
    statements = []
    prev = audit.GENESIS_HASH
    for row in rows:
        if row["seq"] == 4:
            row["actor"] = "mallory"
        row["prev_hash"] = prev
        row["hash"] = audit.compute_hash(row)
        prev = row["hash"]
        statements.append(
            (
                "UPDATE audit_events SET actor = :actor, prev_hash = :prev_hash, hash = :hash "
                "WHERE seq = :seq",
                row,
            )
        )
    _raw(chain.db, *statements)
    assert chain.verify_audit().ok  # consistent on its own ...
    r = chain.verify_audit(cp)
    assert not r.ok and r.first_broken_seq == cp.seq and "rewritten" in (r.reason or "")


def test_checkpoint_of_the_current_chain_verifies(chain: Registry) -> None:
    cp = chain.audit_checkpoint()
    assert cp is not None and chain.verify_audit(cp).ok
    bogus = Checkpoint(seq=cp.seq + 5, hash="0" * 64, ts=cp.ts)
    assert not chain.verify_audit(bogus).ok


def test_every_state_change_has_its_event_and_the_log_filters(chain: Registry, clock) -> None:
    everything = chain.audit_log()
    assert [e.seq for e in everything] == list(range(1, len(everything) + 1))
    assert {e.action for e in chain.audit_log(actor="petra")} == {
        "version.approve",
        "version.approval_decided",
        "alias.set",
    }
    assert [e.action for e in chain.audit_log(action="alias.*")] == ["alias.set"]
    assert all(e.model_name == "pd-model" for e in chain.audit_log(model_name="pd-model"))
    newest = chain.audit_log(limit=2, newest_first=True)
    assert [e.seq for e in newest] == [everything[-1].seq, everything[-2].seq]
    assert chain.audit_log(since=clock.now) == []


def test_failed_transaction_leaves_no_event(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    before = len(registry.audit_log())
    with pytest.raises(RuntimeError), registry.db.write() as conn:
        audit.append(
            conn,
            actor=people.dev,
            role="developer",
            action="test.half_written",
            subject=audit.Subject("model", "pd-model", "pd-model"),
        )
        raise RuntimeError("crash before commit")
    assert len(registry.audit_log()) == before and registry.verify_audit().ok
