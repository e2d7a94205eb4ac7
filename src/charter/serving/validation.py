"""Validation of scoring requests against a version's feature schema.

Every problem is reported with the field it concerns (``features.age``, ``instances[3].income``)
and how to fix it; a request with any problem is refused whole (422) and nothing is logged.

Rules, per feature of the schema:

* a field the schema does not know is refused (a typo must not be scored as "missing");
* a missing or null value is refused unless the feature is nullable (then it is scored as missing);
* numeric and integer features take JSON numbers only (not strings, not booleans); integers must be
  whole; NaN and infinities are refused (the JSON parser refuses the NaN/Infinity tokens, and
  overflowing literals such as 1e400 become infinity and are refused here);
* a number far outside the training range is implausible and refused: more than one training
  range width below the minimum or above the maximum. Values slightly outside are scored, and
  show up in data-quality monitoring;
* categorical features take strings from the training categories only; booleans take true/false;
* strings must be valid Unicode (a lone surrogate cannot be stored) and at most 1,000 characters.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from charter.entities import FeatureSpec, FeatureType
from charter.errors import InvalidArgument

MAX_STRING = 1000
_NUMBER, _WHOLE, _BOOL, _TEXT = "number", "whole", "bool", "text"
_KIND = {
    FeatureType.NUMERIC: _NUMBER,
    FeatureType.INTEGER: _WHOLE,
    FeatureType.BOOLEAN: _BOOL,
}
_BIG_INT = 2**1023  # an int this large or larger may not convert to a float


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str
    remedy: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "remedy": self.remedy}


class RequestInvalid(InvalidArgument):
    """A request with one or more field errors (HTTP 422)."""

    code = "invalid_request"

    def __init__(self, errors: Sequence[FieldError], status: int = 422) -> None:
        first = errors[0]
        super().__init__(
            f"{len(errors)} problem(s) in the request; first: {first.field}: {first.message}",
            field=first.field,
            remedy=first.remedy,
            details={"errors": [e.to_dict() for e in errors]},
        )
        self.errors = list(errors)
        self.http_status = status


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity tokens, bounded nesting.

    orjson parses a good body about three times faster than the standard library. A body it
    refuses is parsed again by the standard library, which gives the refusals their field-level
    meaning: a literal such as 1e400 becomes infinity and is refused by the feature check as
    "must be finite" with the feature named, and a lone surrogate escape is refused by the text
    check, instead of one opaque "not valid JSON"."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestInvalid(
            [FieldError("body", f"the body is not UTF-8 ({e.reason})", "send UTF-8 JSON")], 400
        ) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise RequestInvalid(
            [FieldError("body", "the JSON is nested too deeply", "send a flat object")], 400
        ) from None
    except ValueError as e:
        raise RequestInvalid(
            [FieldError("body", f"the body is not valid JSON: {e}", "send a JSON object")], 400
        ) from None


def check_text(value: str, field: str, errors: list[FieldError]) -> bool:
    if len(value) > MAX_STRING:
        errors.append(
            FieldError(field, f"text longer than {MAX_STRING} characters", "shorten the value")
        )
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        errors.append(
            FieldError(field, "text contains an unpaired surrogate", "send valid Unicode text")
        )
        return False
    if "\x00" in value:  # PostgreSQL cannot store it in text (nor in jsonb)
        errors.append(FieldError(field, "text contains a NUL character", "remove it"))
        return False
    return True


class InputValidator:
    """Compiled once per model version; ``validate`` runs on every request."""

    def __init__(self, schema: Sequence[FeatureSpec]) -> None:
        self.schema = tuple(schema)
        # Two validators with equal keys check the same things (compared per request by shadow
        # scoring, so a string, not the FeatureSpecs).
        self.key = repr(self.schema)
        self.names = tuple(f.name for f in self.schema)
        self._known = frozenset(self.names)
        self._bounds: dict[str, tuple[float, float]] = {}
        self._cats: dict[str, frozenset[str]] = {}
        for f in self.schema:
            if f.minimum is not None and f.maximum is not None:
                span = max(f.maximum - f.minimum, abs(f.maximum), abs(f.minimum), 1.0)
                self._bounds[f.name] = (f.minimum - span, f.maximum + span)
            if f.categories is not None:
                self._cats[f.name] = frozenset(f.categories)
        # The categories that are valid text: a value found here needs no text check.
        self._valid_cats = {
            name: frozenset(c for c in cats if check_text(c, name, []))
            for name, cats in self._cats.items()
        }
        # The plan of the fast path: (name, kind, low, high, categories, nullable) per feature.
        # Without bounds a number need only be finite: +-max float keeps NaN and infinities out
        # with the same comparison.
        self._plan = tuple(
            (
                f.name,
                _KIND.get(f.type, _TEXT),
                self._bounds.get(f.name, (-sys.float_info.max, sys.float_info.max))[0],
                self._bounds.get(f.name, (-sys.float_info.max, sys.float_info.max))[1],
                self._valid_cats.get(f.name),
                f.nullable,
            )
            for f in self.schema
        )

    def validate(
        self, features: Any, path: str = "features", also: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """The model's features from ``features``, checked. Names in ``also`` (the features of
        the other versions serving the same model, e.g. a challenger without one input) are
        accepted and ignored, so a caller can send one request whichever version it reaches."""
        if type(features) is dict:
            fast = self._fast(features, also)
            if fast is not None:
                return fast
        errors: list[FieldError] = []
        out = self._check(features, path, errors, also)
        if errors:
            raise RequestInvalid(errors)
        return out

    def _fast(self, features: dict[str, Any], also: frozenset[str]) -> dict[str, Any] | None:
        """The checked features of a request with nothing wrong, or None at the first doubt;
        the full check then runs and names every problem. For a valid request both return the
        same dict (a property test holds them to it); this one skips building messages."""
        known = self._known
        for key in features:
            if key not in known and key not in also:
                return None
        out: dict[str, Any] = {}
        for name, kind, low, high, cats, nullable in self._plan:
            v = features.get(name)
            if v is None:
                if not nullable:
                    return None
                out[name] = None
            elif kind is _NUMBER or kind is _WHOLE:
                t = type(v)
                if t is float:
                    x = v
                elif t is int:
                    if not -_BIG_INT < v < _BIG_INT:  # float() could overflow: let the check say so
                        return None
                    x = float(v)
                else:
                    return None
                if not low <= x <= high or (kind is _WHOLE and not x.is_integer()):
                    return None
                out[name] = x
            elif kind is _BOOL:
                if v is not True and v is not False:
                    return None
                out[name] = v
            elif cats is not None and type(v) is str and v in cats:
                out[name] = v
            else:  # text outside the training categories, or not text: the full check decides
                return None
        return out

    def _check(
        self, features: Any, path: str, errors: list[FieldError], also: frozenset[str]
    ) -> dict[str, Any]:
        if not isinstance(features, dict):
            errors.append(
                FieldError(
                    path, "must be an object of feature values", f"send {{{self.names[0]!r}: ...}}"
                )
            )
            return {}
        for key in features:
            if key not in self._known and key not in also:
                name = key if isinstance(key, str) and check_text(key, path, []) else repr(key)
                errors.append(
                    FieldError(
                        f"{path}.{name}",
                        "is not a feature of this model",
                        "remove it; the model's features are listed at /v1/models/{name}",
                    )
                )
        out: dict[str, Any] = {}
        for f in self.schema:
            v = features.get(f.name)
            if v is None:
                if not f.nullable:
                    errors.append(FieldError(f"{path}.{f.name}", "is required", "send a value"))
                out[f.name] = None
                continue
            if f.type in (FeatureType.NUMERIC, FeatureType.INTEGER):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    errors.append(
                        FieldError(
                            f"{path}.{f.name}",
                            f"must be a number, not {type(v).__name__}",
                            "send a JSON number",
                        )
                    )
                    continue
                try:
                    x = float(v)
                except OverflowError:  # an integer literal too large for a float
                    x = math.inf
                if not math.isfinite(x):
                    errors.append(
                        FieldError(f"{path}.{f.name}", "must be finite", "send a finite number")
                    )
                    continue
                if f.type is FeatureType.INTEGER and not x.is_integer():
                    errors.append(
                        FieldError(f"{path}.{f.name}", "must be a whole number", "round it")
                    )
                    continue
                lo_hi = self._bounds.get(f.name)
                if lo_hi is not None and not lo_hi[0] <= x <= lo_hi[1]:
                    errors.append(
                        FieldError(
                            f"{path}.{f.name}",
                            f"{v} is implausible: the training data ranged from {f.minimum:g} "
                            f"to {f.maximum:g}",
                            "check the value and its unit",
                        )
                    )
                    continue
                out[f.name] = x
            elif f.type is FeatureType.BOOLEAN:
                if not isinstance(v, bool):
                    errors.append(
                        FieldError(
                            f"{path}.{f.name}", "must be true or false", "send a JSON boolean"
                        )
                    )
                    continue
                out[f.name] = v
            else:  # categorical (and datetime, sent as text)
                if not isinstance(v, str):
                    errors.append(
                        FieldError(
                            f"{path}.{f.name}",
                            f"must be text, not {type(v).__name__}",
                            "send a JSON string",
                        )
                    )
                    continue
                if v in self._valid_cats.get(f.name, ()):  # a training category: valid text
                    out[f.name] = v
                    continue
                if not check_text(v, f"{path}.{f.name}", errors):
                    continue
                cats = self._cats.get(f.name)
                if cats is not None and v not in cats:
                    shown = ", ".join(sorted(cats)[:10])
                    errors.append(
                        FieldError(
                            f"{path}.{f.name}",
                            f"unknown category {v!r}",
                            f"use one of the training categories: {shown}"
                            + (" ..." if len(cats) > 10 else ""),
                        )
                    )
                    continue
                out[f.name] = v
        return out
