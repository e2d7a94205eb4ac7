"""One exception hierarchy with stable codes.

Every error says what was wrong (``message``), which input it concerns (``field``) and what to do
about it (``remedy``). Errors that are about bad arguments also subclass the matching built-in
exception (``InvalidArgument`` is a ``ValueError``) so that ordinary ``except`` clauses still work.

``exit_code`` is what the CLI exits with and ``http_status`` what the HTTP service answers:

====  ===========================================================
exit  meaning
====  ===========================================================
1     integrity failure (a broken audit chain, a tampered artifact)
2     bad input: invalid argument, unknown name, refused transition
3     not authenticated or not permitted
4     conflict with a concurrent change: re-read and retry
====  ===========================================================
"""

from __future__ import annotations

from typing import Any


class CharterError(Exception):
    """Base of every error Charter raises on purpose."""

    code: str = "charter_error"
    exit_code: int = 1
    http_status: int = 500

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        remedy: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.remedy = remedy
        self.details = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.remedy is not None:
            out["remedy"] = self.remedy
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self) -> str:
        parts = [self.message]
        if self.field is not None:
            parts.append(f"(field: {self.field})")
        if self.remedy is not None:
            parts.append(f"Fix: {self.remedy}")
        return " ".join(parts)


class InvalidArgument(CharterError, ValueError):
    """An argument or field has a value Charter cannot accept."""

    code = "invalid_argument"
    exit_code = 2
    http_status = 422


class NotFound(CharterError, LookupError):
    """A named thing (model, version, user, event) does not exist."""

    code = "not_found"
    exit_code = 2
    http_status = 404


class AlreadyExists(CharterError):
    """A thing with this name exists already."""

    code = "already_exists"
    exit_code = 2
    http_status = 409


class TransitionNotAllowed(CharterError):
    """A lifecycle transition or alias change that the state machine or its guards refuse."""

    code = "transition_not_allowed"
    exit_code = 2
    http_status = 409


class Conflict(CharterError):
    """A concurrent change won the race; the caller should re-read and retry."""

    code = "conflict"
    exit_code = 4
    http_status = 409


class AuthenticationFailed(CharterError, PermissionError):
    """No valid identity: unknown, revoked or expired token."""

    code = "authentication_failed"
    exit_code = 3
    http_status = 401


class PermissionDenied(CharterError, PermissionError):
    """The actor lacks the role, or segregation of duties forbids the action."""

    code = "permission_denied"
    exit_code = 3
    http_status = 403


class UnsafeArtifact(CharterError):
    """An artifact would need an unsafe loader (pickle, untrusted types) that policy refuses."""

    code = "unsafe_artifact"
    exit_code = 2
    http_status = 422


class IntegrityError(CharterError):
    """Stored data does not match what the record vouches for."""

    code = "integrity_error"
    exit_code = 1
    http_status = 500


class ArtifactIntegrityError(IntegrityError):
    """An artifact's bytes do not hash to the sha256 the registry holds."""

    code = "artifact_integrity_error"


class AuditChainBroken(IntegrityError):
    """The audit chain does not verify."""

    code = "audit_chain_broken"


class StoreNotInitialized(CharterError):
    """The database has no Charter schema, or an older one."""

    code = "store_not_initialized"
    exit_code = 2
    http_status = 503


class StoreUnavailable(CharterError):
    """The database cannot be reached or written."""

    code = "store_unavailable"
    exit_code = 1
    http_status = 503


class ScoringFailed(CharterError):
    """A model raised while scoring a request that had passed validation (a server fault)."""

    code = "scoring_failed"
    exit_code = 1
    http_status = 500


class OptionalDependencyMissing(CharterError, ImportError):
    """A feature needs an optional extra that is not installed."""

    code = "optional_dependency_missing"
    exit_code = 2
    http_status = 501


def require_extra(module: str, extra: str) -> Any:
    """Import ``module`` or raise a clear ``OptionalDependencyMissing`` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise OptionalDependencyMissing(
            f"this feature needs the optional package {module!r}, which is not installed",
            remedy=f"pip install 'charter[{extra}]'",
        ) from exc
