"""Canonical JSON: sorted keys, no whitespace, UTF-8; what is hashed is what is stored."""

from __future__ import annotations

import json
import math
from typing import Any


def _default(obj: Any) -> Any:
    # numpy scalars and arrays, sets, paths and enums come out of user code; store them plainly.
    if hasattr(obj, "item") and callable(obj.item):
        try:
            return obj.item()
        except (TypeError, ValueError):
            pass
    if hasattr(obj, "tolist") and callable(obj.tolist):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    if hasattr(obj, "value") and not callable(obj.value):
        return obj.value
    return str(obj)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    """Canonical JSON text. NaN becomes null and infinities become strings (JSON has neither)."""
    plain = json.loads(json.dumps(obj, default=_default, allow_nan=True))
    return json.dumps(
        _finite(plain), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
