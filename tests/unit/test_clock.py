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


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-23T00:00:00Z",  # no microseconds
        "2026-11-23 00:00:00.000000Z",
        "2026-11-23T00:00:00,000000Z",
        "2026-11-23T00:00:00.000000+00:00",
        "2026-11-23T24:00:00.000000Z",
        "2026-02-30T00:00:00.000000Z",
        "2026-11-23T00:00:00.00000aZ",
        "+026-11-23T00:00:00.000000Z",
    ],
)
def test_parse_iso_refuses_any_other_form(text: str) -> None:
    with pytest.raises(ValueError):
        parse_iso(text)


def test_parse_iso_reads_what_strptime_reads() -> None:
    for text in ("2026-11-23T07:08:09.123456Z", "1999-12-31T23:59:59.999999Z"):
        expected = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert parse_iso(text) == expected and parse_iso(text).tzinfo is UTC
