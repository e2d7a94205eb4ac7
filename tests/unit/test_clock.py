from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from charter.clock import iso, now_iso, parse_iso


def test_now_iso_is_the_canonical_form_of_now() -> None:
    before = datetime.now(UTC)
    stamps = [now_iso() for _ in range(5000)]
    after = datetime.now(UTC)
    parsed = [parse_iso(s) for s in stamps]
    assert stamps == [iso(p) for p in parsed]  # same text as iso() gives
    assert parsed == sorted(parsed)
    assert before - timedelta(milliseconds=1) <= parsed[0]
    assert parsed[-1] <= after + timedelta(milliseconds=1)


def test_iso_refuses_a_naive_timestamp() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        iso(datetime(2026, 1, 1))
