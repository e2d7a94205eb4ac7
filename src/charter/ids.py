"""Identifiers.

Decision ids are UUIDs of version 7 (RFC 9562): 48 bits of Unix time in milliseconds, then random
bits. They sort by creation time, so a database appends them at the end of its index instead of
scattering them (random version-4 ids made every group commit touch pages all over the index),
and they still carry 74 random bits.
"""

from __future__ import annotations

import os
import threading
import time

_RAND_A = (1 << 12) - 1
_RAND_B = (1 << 62) - 1


_POOL = 4096  # random bytes read from the OS at a time (409 ids)
_random = b""
_offset = _POOL
_lock = threading.Lock()


def _random_80() -> int:
    """80 bits from the operating system's CSPRNG, read in blocks: one system call per 409
    ids instead of one per id (on the scoring path each call also gave up the interpreter lock)."""
    global _random, _offset
    with _lock:
        if _offset + 10 > len(_random):
            _random, _offset = os.urandom(_POOL), 0
        start = _offset
        _offset += 10
        chunk = _random[start : start + 10]
    return int.from_bytes(chunk, "big")


def _forget() -> None:  # a forked child must not hand out its parent's next random bytes
    global _random, _offset
    _random, _offset = b"", _POOL


os.register_at_fork(after_in_child=_forget)


def uuid7() -> str:
    """A version-7 UUID in its canonical text form (built as an integer: ``uuid.UUID`` cost
    more than the rest on the scoring path)."""
    ms = time.time_ns() // 1_000_000
    rand = _random_80()  # 74 of the 80 bits are used
    value = (
        (ms & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76  # version 7
        | (rand >> 62 & _RAND_A) << 64
        | 0b10 << 62  # RFC 9562 variant
        | rand & _RAND_B
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
