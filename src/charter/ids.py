"""Identifiers.

Decision ids are UUIDs of version 7 (RFC 9562): 48 bits of Unix time in milliseconds, then random
bits. They sort by creation time, so a database appends them at the end of its index instead of
scattering them (random version-4 ids made every group commit touch pages all over the index),
and they still carry 74 random bits.
"""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> str:
    ms = time.time_ns() // 1_000_000
    raw = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    raw[6] = (raw[6] & 0x0F) | 0x70  # version 7
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
    return str(uuid.UUID(bytes=bytes(raw)))
