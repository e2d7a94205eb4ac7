from __future__ import annotations

import time
import uuid

from charter.ids import uuid7


def test_uuid7_is_version_7_and_time_ordered() -> None:
    ids = [uuid7() for _ in range(2000)]
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert ids == [str(u) for u in parsed]  # the canonical text form
    assert len(set(ids)) == len(ids)
    ms = [int.from_bytes(u.bytes[:6], "big") for u in parsed]
    assert ms == sorted(ms)
    assert abs(ms[-1] - time.time_ns() // 1_000_000) < 5_000
