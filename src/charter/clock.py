"""An injectable clock: services take one, tests pass a fixed or stepping one. No sleeps."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (``advance``) or by ``step`` on every read."""

    def __init__(self, start: datetime, step: timedelta = timedelta(0)) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        current = self.now
        self.now = self.now + self.step
        return current

    def advance(self, delta: timedelta) -> None:
        self.now = self.now + delta


def iso(ts: datetime) -> str:
    """Canonical text form of a timestamp: UTC, microseconds, ``Z``; sorts like time."""
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_second: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """``iso(system_clock())`` without building a datetime: the scoring path stamps every
    decision, and strftime per call cost more than the rest of the stamp. The text of the
    current second is kept and only the microseconds are formatted."""
    global _second
    us = time.time_ns() // 1000
    seconds, micros = divmod(us, 1_000_000)
    cached = _second
    if cached[0] != seconds:
        cached = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
        _second = cached  # one tuple, replaced whole: safe to share between threads
    return f"{cached[1]}.{micros:06d}Z"


def parse_iso(text: str) -> datetime:
    """The timestamp written by :func:`iso` (and only that form: anything else is refused).

    Text of exactly that shape goes through ``datetime.fromisoformat``, about ten times faster
    than ``strptime`` (the dashboard parses every window's timestamps); anything else goes
    through ``strptime``, which refuses it with its usual message."""
    if (
        len(text) == 27
        and text[26] == "Z"
        and text[10] == "T"
        and text[19] == "."
        and text[4] == text[7] == "-"
        and text[13] == text[16] == ":"
        and text[:4].isdigit()
        and text[20:26].isdigit()
    ):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(text[:26]).replace(tzinfo=UTC)
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
