"""Users, roles, API tokens and the segregation-of-duties rules.

Tokens are ``chr_`` followed by 43 URL-safe characters (256 random bits from ``secrets``). Only
their SHA-256 is stored: a fast hash is enough for secrets of that entropy (nothing to brute-force)
and lets a token be looked up by its hash through a unique index. The plaintext is returned once,
when the token is issued, and never stored or logged.

Segregation of duties (pure functions, used by the registry service):

* the developer (author) of a version can never validate or approve it, whatever roles they hold;
* a validator of a version cannot approve it;
* the author cannot put their own version into service (champion or challenger).

An admin may override a denial ("break glass") only with a written justification; the override is
an audit event of its own.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Row, select

from charter import audit
from charter.clock import Clock, iso, parse_iso, system_clock
from charter.entities import Actor, Role, User
from charter.errors import (
    AlreadyExists,
    AuthenticationFailed,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from charter.storage import jsonutil
from charter.storage.db import Database, inserted_id
from charter.storage.schema import api_tokens, users

TOKEN_PREFIX = "chr_"
_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
MIN_JUSTIFICATION = 20

# The identity that automated jobs (canary steps, scheduled monitoring, pipelines) act as.
AUTOMATION_USER = "charter-automation"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def parse_roles(roles: Iterable[str | Role]) -> frozenset[Role]:
    out = set()
    for r in roles:
        try:
            out.add(Role(str(r).strip().lower()))
        except ValueError:
            valid = ", ".join(x.value for x in Role)
            raise InvalidArgument(
                f"unknown role {r!r}", field="roles", remedy=f"use one or more of: {valid}"
            ) from None
    if not out:
        raise InvalidArgument(
            "a user needs at least one role", field="roles", remedy="pass --role developer"
        )
    return frozenset(out)


def validate_username(username: str) -> str:
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise InvalidArgument(
            f"invalid username {username!r}",
            field="username",
            remedy="use 2-64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter",
        )
    return username


def require_role(actor: Actor, *roles: Role, action: str) -> None:
    """Raise ``PermissionDenied`` unless the actor holds one of ``roles``."""
    if not any(actor.has(r) for r in roles):
        need = " or ".join(r.value for r in roles)
        raise PermissionDenied(
            f"{actor.username} may not {action}: it needs the role {need}",
            remedy=f"ask an admin to grant {need}, or have someone who holds it do this",
            details={"actor": actor.username, "action": action, "needs": [r.value for r in roles]},
        )


def sod_check(
    actor: Actor, *, action: str, author: str, validators: Iterable[str] = ()
) -> str | None:
    """The segregation-of-duties reason that forbids ``actor`` doing ``action``, or None."""
    if action in ("validate", "approve", "deploy") and actor.username == author:
        return (
            f"{actor.username} developed this version and so may not {action} it "
            "(segregation of duties)"
        )
    if action == "approve" and actor.username in set(validators):
        return (
            f"{actor.username} validated this version and so may not approve it "
            "(segregation of duties)"
        )
    return None


def check_justification(actor: Actor, justification: str | None) -> str:
    """Validate a break-glass override: admins only, with a real written reason."""
    if not actor.has(Role.ADMIN):
        raise PermissionDenied(
            f"{actor.username} may not override a denial: only an admin can break glass",
            remedy="ask an admin, who must write a justification",
        )
    text = (justification or "").strip()
    if len(text) < MIN_JUSTIFICATION:
        raise InvalidArgument(
            f"a break-glass override needs a written justification of at least "
            f"{MIN_JUSTIFICATION} characters",
            field="justification",
            remedy="explain why the control must be bypassed and who agreed to it",
        )
    return text


def _to_user(r: Row[Any]) -> User:
    m = r._mapping
    return User(
        id=m["id"],
        username=m["username"],
        display_name=m["display_name"],
        roles=frozenset(Role(x) for x in jsonutil.loads(m["roles"])),
        is_automation=bool(m["is_automation"]),
        active=bool(m["active"]),
        created_at=parse_iso(m["created_at"]),
    )


def actor_of(user: User) -> Actor:
    return Actor(username=user.username, roles=user.roles, is_automation=user.is_automation)


class IdentityService:
    """Users and tokens. Every change is one transaction with its audit event."""

    def __init__(self, db: Database, clock: Clock = system_clock) -> None:
        self.db = db
        self.clock = clock

    # -- users ----------------------------------------------------------------------------------
    def _insert_user(
        self,
        conn: Connection,
        username: str,
        roles: frozenset[Role],
        display_name: str,
        is_automation: bool,
    ) -> User:
        if conn.execute(select(users.c.id).where(users.c.username == username)).first():
            raise AlreadyExists(
                f"user {username!r} exists already",
                field="username",
                remedy="choose another username, or change that user's roles",
            )
        now = iso(self.clock())
        uid = inserted_id(
            conn.execute(
                users.insert().values(
                    username=username,
                    display_name=display_name or username,
                    roles=jsonutil.dumps(sorted(r.value for r in roles)),
                    is_automation=is_automation,
                    active=True,
                    created_at=now,
                )
            )
        )
        row = conn.execute(select(users).where(users.c.id == uid)).one()
        return _to_user(row)

    def bootstrap_admin(self, username: str, display_name: str = "") -> tuple[User, str]:
        """Create the first admin (only when there are no users) and its first token."""
        validate_username(username)
        with self.db.write() as conn:
            if conn.execute(select(users.c.id).limit(1)).first() is not None:
                raise AlreadyExists(
                    "the store already has users; the first admin is created only once",
                    field="admin",
                    remedy="sign in with an existing admin token and run `charter users add`",
                )
            user = self._insert_user(
                conn, username, frozenset({Role.ADMIN}), display_name, is_automation=False
            )
            auto = self._insert_user(
                conn,
                AUTOMATION_USER,
                frozenset({Role.SERVICE}),
                "Charter automation",
                is_automation=True,
            )
            actor = actor_of(user)
            for u in (user, auto):
                audit.append(
                    conn,
                    actor=actor,
                    role=Role.ADMIN.value,
                    action="user.created",
                    subject=audit.Subject("user", u.username),
                    payload={"roles": sorted(r.value for r in u.roles), "bootstrap": True},
                    clock=self.clock,
                )
            token = self._issue(conn, actor, user, "bootstrap", None)
        return user, token

    def create_user(
        self,
        actor: Actor,
        username: str,
        roles: Iterable[str | Role],
        *,
        display_name: str = "",
        is_automation: bool = False,
    ) -> User:
        validate_username(username)
        parsed = parse_roles(roles)
        with self.db.write() as conn:
            require_role(actor, Role.ADMIN, action="create users")
            user = self._insert_user(conn, username, parsed, display_name, is_automation)
            audit.append(
                conn,
                actor=actor,
                role=Role.ADMIN.value,
                action="user.created",
                subject=audit.Subject("user", username),
                payload={"roles": sorted(r.value for r in parsed), "automation": is_automation},
                clock=self.clock,
            )
        return user

    def set_roles(self, actor: Actor, username: str, roles: Iterable[str | Role]) -> User:
        parsed = parse_roles(roles)
        with self.db.write() as conn:
            require_role(actor, Role.ADMIN, action="change roles")
            before = self._get(conn, username)
            conn.execute(
                users.update()
                .where(users.c.username == username)
                .values(roles=jsonutil.dumps(sorted(r.value for r in parsed)))
            )
            audit.append(
                conn,
                actor=actor,
                role=Role.ADMIN.value,
                action="user.roles_changed",
                subject=audit.Subject("user", username),
                payload={
                    "before": sorted(r.value for r in before.roles),
                    "after": sorted(r.value for r in parsed),
                },
                clock=self.clock,
            )
            return self._get(conn, username)

    def _get(self, conn: Connection, username: str) -> User:
        row = conn.execute(select(users).where(users.c.username == username)).first()
        if row is None:
            raise NotFound(
                f"no user {username!r}", field="username", remedy="list users: charter users list"
            )
        return _to_user(row)

    def get_user(self, username: str) -> User:
        with self.db.read() as conn:
            return self._get(conn, username)

    def list_users(self) -> list[User]:
        with self.db.read() as conn:
            return [_to_user(r) for r in conn.execute(select(users).order_by(users.c.username))]

    def actor(self, username: str) -> Actor:
        """The actor for a username (for trusted in-process callers such as the demo)."""
        user = self.get_user(username)
        if not user.active:
            raise AuthenticationFailed(f"user {username!r} is deactivated")
        return actor_of(user)

    # -- tokens ---------------------------------------------------------------------------------
    def _issue(
        self,
        conn: Connection,
        actor: Actor,
        user: User,
        label: str,
        expires_in: timedelta | None,
    ) -> str:
        token = new_token()
        now = self.clock()
        conn.execute(
            api_tokens.insert().values(
                user_id=user.id,
                token_prefix=token[:8],
                token_hash=hash_token(token),
                label=label,
                created_at=iso(now),
                expires_at=iso(now + expires_in) if expires_in else None,
                revoked_at=None,
            )
        )
        audit.append(
            conn,
            actor=actor,
            role=Role.ADMIN.value if actor.username != user.username else "self",
            action="token.issued",
            subject=audit.Subject("user", user.username),
            payload={"label": label, "prefix": token[:8], "expires_in_s": _secs(expires_in)},
            clock=self.clock,
        )
        return token

    def issue_token(
        self, actor: Actor, username: str, *, label: str = "", expires_in: timedelta | None = None
    ) -> str:
        """Issue a token for ``username`` (an admin, or the user for themself); shown once."""
        with self.db.write() as conn:
            user = self._get(conn, username)
            if actor.username != username:
                require_role(actor, Role.ADMIN, action="issue tokens for other users")
            return self._issue(conn, actor, user, label or "cli", expires_in)

    def revoke_tokens(self, actor: Actor, username: str) -> int:
        with self.db.write() as conn:
            user = self._get(conn, username)
            if actor.username != username:
                require_role(actor, Role.ADMIN, action="revoke tokens of other users")
            n = conn.execute(
                api_tokens.update()
                .where(api_tokens.c.user_id == user.id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=iso(self.clock()))
            ).rowcount
            audit.append(
                conn,
                actor=actor,
                role=Role.ADMIN.value if actor.username != username else "self",
                action="token.revoked",
                subject=audit.Subject("user", username),
                payload={"count": n},
                clock=self.clock,
            )
            return n

    def authenticate(self, token: str | None) -> Actor:
        if not token:
            raise AuthenticationFailed(
                "no API token given",
                field="token",
                remedy="set CHARTER_TOKEN or pass --token (an admin issues tokens with "
                "`charter users token NAME`)",
            )
        h = hash_token(token.strip())
        with self.db.read() as conn:
            row = conn.execute(
                select(api_tokens, users.c.username)
                .join(users, users.c.id == api_tokens.c.user_id)
                .where(api_tokens.c.token_hash == h)
            ).first()
            if row is None or not secrets.compare_digest(row.token_hash, h):
                raise AuthenticationFailed(
                    "the API token is not valid",
                    field="token",
                    remedy="check CHARTER_TOKEN; ask an admin for a new token",
                )
            if row.revoked_at is not None:
                raise AuthenticationFailed(
                    "the API token was revoked", field="token", remedy="ask for a new token"
                )
            if row.expires_at is not None and parse_iso(row.expires_at) <= self.clock():
                raise AuthenticationFailed(
                    "the API token has expired", field="token", remedy="ask for a new token"
                )
            user = self._get(conn, row.username)
        if not user.active:
            raise AuthenticationFailed(f"user {user.username!r} is deactivated")
        return actor_of(user)


def _secs(d: timedelta | None) -> float | None:
    return None if d is None else d.total_seconds()
