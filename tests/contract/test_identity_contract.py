"""Users, roles and tokens: tokens are random, stored hashed, shown once, and checked."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from charter.errors import AlreadyExists, AuthenticationFailed, InvalidArgument, PermissionDenied
from charter.identity import TOKEN_PREFIX, hash_token
from charter.registry.service import Registry
from charter.storage.schema import metadata


def test_tokens_authenticate_and_carry_roles(registry: Registry, people) -> None:
    ident = registry.identity
    actor = ident.authenticate(people.admin_token)
    assert actor.username == "ada" and {r.value for r in actor.roles} == {"admin"}
    token = ident.issue_token(people.admin, "dana", label="laptop")
    body = token.removeprefix(TOKEN_PREFIX)
    assert token.startswith(TOKEN_PREFIX)
    assert len(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) * 8 >= 128
    assert ident.authenticate(token).username == "dana"
    assert ident.issue_token(people.admin, "dana") != token
    with pytest.raises(AuthenticationFailed) as e:
        ident.authenticate(token[:-2] + "xx")
    assert e.value.field == "token"
    with pytest.raises(AuthenticationFailed):
        ident.authenticate(None)


def test_revoked_and_expired_tokens_fail(registry: Registry, people, clock) -> None:
    ident = registry.identity
    t1 = ident.issue_token(people.admin, "victor")
    t2 = ident.issue_token(people.admin, "victor", expires_in=timedelta(hours=1))
    assert ident.authenticate(t2).username == "victor"
    clock.advance(timedelta(hours=2))
    with pytest.raises(AuthenticationFailed, match="expired"):
        ident.authenticate(t2)
    assert ident.revoke_tokens(people.val, "victor") == 2
    with pytest.raises(AuthenticationFailed, match="revoked"):
        ident.authenticate(t1)


def test_only_admins_manage_users(registry: Registry, people) -> None:
    ident = registry.identity
    with pytest.raises(PermissionDenied):
        ident.create_user(people.dev, "eve", ["admin"])
    with pytest.raises(PermissionDenied):
        ident.issue_token(people.dev, "petra")
    with pytest.raises(InvalidArgument) as e:
        ident.create_user(people.admin, "eve", ["superuser"])
    assert e.value.field == "roles"
    with pytest.raises(InvalidArgument) as e:
        ident.create_user(people.admin, "Eve Smith", ["developer"])
    assert e.value.field == "username"
    with pytest.raises(AlreadyExists):
        ident.create_user(people.admin, "dana", ["developer"])
    with pytest.raises(AlreadyExists):
        ident.bootstrap_admin("another")
    assert [e.action for e in registry.audit_log(actor="ada")][:2] == ["user.created"] * 2


def test_no_plaintext_token_anywhere_in_the_database(registry: Registry, people) -> None:
    tokens = [people.admin_token] + [
        registry.identity.issue_token(people.admin, u) for u in ("dana", "victor", "petra")
    ]
    db = registry.db
    if db.dialect == "sqlite":
        path = Path(db.engine.url.database or "")
        blobs = [p.read_bytes() for p in path.parent.glob(path.name + "*")]
        assert blobs
        for t in tokens:
            assert all(t.encode() not in b for b in blobs)
            assert any(hash_token(t).encode() in b for b in blobs)
    else:
        with db.read() as conn:
            dump = "".join(
                str(r[0])
                for table in metadata.sorted_tables
                for r in conn.execute(text(f"SELECT t::text FROM {table.name} t"))
            )
        for t in tokens:
            assert t not in dump and hash_token(t) in dump
    with db.read() as conn:
        rows = conn.execute(select(metadata.tables["api_tokens"])).all()
    assert len(rows) == len(tokens)
