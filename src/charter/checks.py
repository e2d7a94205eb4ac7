"""Argument checks shared at the boundaries: each raises ``InvalidArgument`` naming the field."""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Mapping
from typing import TypeVar

E = TypeVar("E", bound=enum.Enum)


def check_int(value: object, field: str, *, minimum: int) -> int:
    """A whole number (Python or numpy integer, not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _invalid(
            f"{field} must be an integer, got {value!r}", field, f"pass a whole number >= {minimum}"
        )
    out = int(value)
    if out < minimum:
        raise _invalid(
            f"{field} must be >= {minimum}, got {out}", field, f"pass a whole number >= {minimum}"
        )
    return out


def check_number(
    value: object, field: str, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    """A finite real number (not a bool), optionally within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _invalid(f"{field} must be a number, got {value!r}", field, "pass a finite number")
    out = float(value)
    if not math.isfinite(out):
        raise _invalid(f"{field} must be finite, got {out}", field, "pass a finite number")
    if (minimum is not None and out < minimum) or (maximum is not None and out > maximum):
        lo = "-inf" if minimum is None else f"{minimum:g}"
        hi = "inf" if maximum is None else f"{maximum:g}"
        bounds = f"[{lo}, {hi}]"
        raise _invalid(
            f"{field} must be in {bounds}, got {out:g}", field, f"pass a value in {bounds}"
        )
    return out


def _invalid(message: str, field: str, remedy: str) -> Exception:
    from charter.errors import InvalidArgument

    return InvalidArgument(message, field=field, remedy=remedy)


def check_text(value: object, field: str, example: str, max_len: int = 2000) -> str:
    """Non-blank text of at most ``max_len`` characters, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"{field} is required", field, f"pass e.g. {example!r}")
    if len(value) > max_len:
        raise _invalid(f"{field} is longer than {max_len} characters", field, "shorten it")
    return value.strip()


def check_enum(
    kind: type[E],
    value: object,
    field: str,
    what: str | None = None,
    aliases: Mapping[str, str] | None = None,
) -> E:
    """A member of the string enum ``kind``, case-insensitive, ``-`` read as ``_``
    (approve-with-conditions); ``aliases`` maps other spellings to values."""
    raw = str(value).strip().lower().replace("-", "_")
    raw = (aliases or {}).get(raw, raw)
    try:
        return kind(raw)
    except ValueError:
        valid = ", ".join(str(m.value) for m in kind)
        raise _invalid(
            f"unknown {what or field} {value!r}", field, f"use one of: {valid}"
        ) from None
