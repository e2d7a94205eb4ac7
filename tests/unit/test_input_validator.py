"""The request validator's fast path agrees with the full check on every input."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.entities import FeatureSpec, FeatureType
from charter.serving.validation import InputValidator, RequestInvalid

SCHEMA = (
    FeatureSpec("income", FeatureType.NUMERIC, minimum=0.0, maximum=10_000.0),
    FeatureSpec("ratio", FeatureType.NUMERIC),  # no bounds: only finite
    FeatureSpec("months", FeatureType.INTEGER, minimum=1.0, maximum=72.0),
    FeatureSpec("owner", FeatureType.BOOLEAN),
    FeatureSpec("purpose", FeatureType.CATEGORICAL, categories=("car", "home", "\udcff")),
    FeatureSpec("region", FeatureType.CATEGORICAL, nullable=True, categories=("n", "s")),
    FeatureSpec("opened", FeatureType.DATETIME, nullable=True),
)
VALIDATOR = InputValidator(SCHEMA)

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.integers(min_value=-5, max_value=100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-20_000, max_value=20_000),
    st.sampled_from(["car", "home", "n", "s", "bus", "\udcff", "x\x00", "a" * 1001, ""]),
    st.lists(st.integers(), max_size=2),
)
names = st.sampled_from([f.name for f in SCHEMA] + ["extra", "other"])


def full_check(features: Any, also: frozenset[str]) -> dict[str, Any] | None:
    errors: list[Any] = []
    out = VALIDATOR._check(features, "features", errors, also)
    return None if errors else out


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if type(x) is not type(y) or not (x == y or (isinstance(x, float) and math.isnan(x))):
            return False
    return True


@settings(max_examples=3000, deadline=None)
@given(
    features=st.dictionaries(names, values, max_size=9),
    base=st.booleans(),
    also=st.sampled_from([frozenset(), frozenset({"extra"})]),
)
def test_the_fast_path_returns_what_the_full_check_returns(
    features: dict[str, Any], base: bool, also: frozenset[str]
) -> None:
    if base:  # start from a valid request, so that most examples exercise the fast path fully
        features = {
            "income": 1200.5, "ratio": 0.25, "months": 12, "owner": True, "purpose": "car",
            **features,
        }  # fmt: skip
    fast = VALIDATOR._fast(features, also)
    full = full_check(features, also)
    if fast is not None:
        assert full is not None and same(fast, full)
    # validate() gives the full check's answer either way
    if full is None:
        with pytest.raises(RequestInvalid):
            VALIDATOR.validate(features, "features", also)
    else:
        assert same(VALIDATOR.validate(features, "features", also), full)


def test_a_valid_request_takes_the_fast_path() -> None:
    features = {"income": 10, "ratio": -3.5, "months": 6.0, "owner": False, "purpose": "home",
                "region": None}  # fmt: skip
    out = VALIDATOR._fast(features, frozenset())
    assert out == {"income": 10.0, "ratio": -3.5, "months": 6.0, "owner": False,
                   "purpose": "home", "region": None, "opened": None}  # fmt: skip
    assert type(out["income"]) is float


@pytest.mark.parametrize(
    "change",
    [
        {"income": 10**400},  # too large for a float: the check says it is not finite
        {"ratio": math.inf},
        {"months": 6.5},
        {"owner": 1},
        {"purpose": "bus"},
        {"purpose": "\udcff"},  # a category that is not valid text is never taken as valid
        {"opened": "2026-01-01"},  # datetimes go through the full check
        {"unknown": 1},
    ],
)
def test_anything_unusual_leaves_the_fast_path(change: dict[str, Any]) -> None:
    features = {"income": 10, "ratio": 1.0, "months": 6, "owner": False, "purpose": "home",
                **change}  # fmt: skip
    assert VALIDATOR._fast(features, frozenset()) is None
