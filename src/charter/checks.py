"""Argument checks shared at the boundaries: each raises ``InvalidArgument`` naming the field."""

from __future__ import annotations

import math
import numbers


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
