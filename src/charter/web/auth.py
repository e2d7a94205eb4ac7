"""Sign-in, sessions, CSRF and roles for the dashboard.

* **Sign-in** is a form that posts a Charter API token (the same tokens the CLI and the HTTP API
  use; an admin issues them with ``charter users token NAME``). The token is checked with
  :meth:`charter.identity.IdentityService.authenticate` and, when valid, kept in a cookie
  (``charter_session``: ``HttpOnly``, ``SameSite=Strict``, ``Path=/ui``, ``Secure`` over HTTPS,
  eight hours). Nothing is kept on the server, so every worker process of ``charter serve``
  accepts it, and a revoked or expired token stops working on the next page (every request
  authenticates again; nothing is cached).
* **CSRF.** Every form that changes something carries a token derived from the session's secret
  (HMAC-SHA256 keyed by the API token), checked in constant time; the sign-in form uses a
  double-submit cookie (``charter_login_csrf``). A request whose ``Origin`` header names another
  host is refused as well. ``SameSite=Strict`` keeps the session cookie off cross-site requests in
  the first place.
* **Roles.** Dashboard pages are for people: developers, validators, approvers, auditors and
  admins read them; a ``service`` token (a scoring system, the automation) is refused. Decision
  lookup shows an applicant's inputs and so, like ``GET /v1/decisions/{id}``, needs validator,
  approver, auditor or admin. Actions are not checked here but by the services they call
  (:class:`~charter.monitoring.alert_store.AlertStore`, :meth:`Registry.decide
  <charter.registry.service.Registry.decide>`), which also audit a refusal.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request

from charter.entities import Actor, Role
from charter.errors import AuthenticationFailed, PermissionDenied
from charter.registry.service import Registry

SESSION_COOKIE = "charter_session"
LOGIN_CSRF_COOKIE = "charter_login_csrf"
COOKIE_PATH = "/ui"
SESSION_SECONDS = 8 * 3600
MAX_TOKEN_CHARS = 512

VIEW_ROLES: tuple[Role, ...] = (
    Role.DEVELOPER,
    Role.VALIDATOR,
    Role.APPROVER,
    Role.AUDITOR,
    Role.ADMIN,
)
# Decisions carry an applicant's inputs: the same roles as GET /v1/decisions/{id}, less service.
DECISION_ROLES: tuple[Role, ...] = (Role.VALIDATOR, Role.APPROVER, Role.AUDITOR, Role.ADMIN)
# Who is offered the alert and approval forms (the services decide; these only hide buttons
# from people who could never use them).
ALERT_ACTION_ROLES: tuple[Role, ...] = (Role.DEVELOPER, Role.VALIDATOR, Role.APPROVER, Role.ADMIN)
DECIDE_FORM_ROLES: tuple[Role, ...] = (Role.DEVELOPER, Role.VALIDATOR, Role.APPROVER, Role.ADMIN)


class SignInRequired(AuthenticationFailed):
    """No session cookie, or one whose token no longer authenticates."""


@dataclass(frozen=True)
class Session:
    actor: Actor
    csrf: str

    @property
    def username(self) -> str:
        return self.actor.username

    @property
    def roles(self) -> list[str]:
        return sorted(r.value for r in self.actor.roles)

    def has_any(self, roles: tuple[Role, ...]) -> bool:
        return any(self.actor.has(r) for r in roles)


def csrf_token(token: str) -> str:
    """The CSRF token of a session: HMAC-SHA256 of a fixed label keyed by the API token."""
    return hmac.new(token.encode("utf-8"), b"charter-dashboard-csrf-v1", hashlib.sha256).hexdigest()


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def authenticate(registry: Registry, token: str | None) -> Actor:
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise SignInRequired(
            "sign in with your Charter token",
            field="token",
            remedy="an admin issues tokens with `charter users token NAME`",
        )
    return registry.identity.authenticate(token)


def session(registry: Registry, request: Request) -> Session:
    """The signed-in session of ``request``, or ``SignInRequired``."""
    token = request.cookies.get(SESSION_COOKIE) or ""
    try:
        actor = authenticate(registry, token)
    except AuthenticationFailed as e:
        raise SignInRequired(e.message, field="token", remedy=e.remedy) from None
    return Session(actor=actor, csrf=csrf_token(token))


def require(s: Session, roles: tuple[Role, ...], what: str) -> None:
    if not s.has_any(roles):
        need = ", ".join(r.value for r in roles)
        raise PermissionDenied(
            f"{s.username} may not {what}: it needs one of the roles {need}",
            remedy="sign in as someone who holds one of those roles, or ask an admin",
        )


def check_csrf(request: Request, s: Session, form: dict[str, str]) -> None:
    """Refuse a state-changing request without this session's CSRF token, or from elsewhere."""
    check_origin(request)
    if not same(form.get("csrf"), s.csrf):
        raise PermissionDenied(
            "the form's security token is missing or out of date",
            field="csrf",
            remedy="reload the page and submit the form again",
        )


def check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is None:  # not sent by every client; the CSRF token is the check that counts
        return
    if origin == "null" or urlsplit(origin).netloc != request.headers.get("host", ""):
        raise PermissionDenied(
            "the request comes from another site",
            field="origin",
            remedy="use the dashboard's own forms",
        )


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a path under /ui on this site, else the inventory."""
    if (
        not target
        or not target.startswith("/ui")
        or target.startswith("//")
        or "\\" in target
        or len(target) > 2000
        or any(ord(ch) < 0x20 for ch in target)
    ):
        return "/ui/"
    return target
