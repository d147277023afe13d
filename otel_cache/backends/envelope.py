"""How a value sits in Redis: its expiry beside its bytes, so that a read needs no PTTL.

::

    b"e" + expiry (8 bytes, big-endian: Unix time in ms; 0 for none) + the serializer's bytes

The writer sets the expiry to its clock plus the TTL it gives Redis with ``PX``, so a
reader learns the time left from one ``GET`` (or one ``MGET`` for a batch) instead of a
``GET`` and a ``PTTL`` per key. L1 keeps the copy until that expiry at the latest
(``l1_ttl`` may end it sooner). Clocks of different hosts may disagree: an L1 copy
then lives up to the skew longer or shorter than the Redis copy (NTP keeps it to
milliseconds; the invalidation channel drops copies of overwritten keys anyway).

Values written before this format (the serializer's bytes alone, tagged ``j``, ``m``
or ``p``) are still read: they are served from Redis but never copied into L1, since
their expiry is unknown, until a write replaces them. The marker ``e`` is none of the
serializer's tags, so the two formats cannot be confused.
"""

from __future__ import annotations

import struct
import time

from otel_cache.backends.protocol import Stored

__all__ = ["HEADER_SIZE", "now_ms", "unwrap", "unwrap_many", "wrap"]

_HEADER = struct.Struct(">cQ")
_MARK = b"e"
HEADER_SIZE = _HEADER.size  # 9 bytes a value


def now_ms() -> int:
    """The wall clock in Unix milliseconds, as the expiry is written."""
    return time.time_ns() // 1_000_000


def wrap(data: bytes, ttl_ms: int | None, now: int) -> bytes:
    """``data`` as stored: the expiry ``now + ttl_ms`` (none if ``ttl_ms`` is None) first."""
    return _HEADER.pack(_MARK, 0 if ttl_ms is None else now + ttl_ms) + data


def unwrap_many(replies: list[bytes | str | None], now: int) -> list[Stored | None]:
    """:func:`unwrap` of each reply of an MGET, in one frame."""
    found: list[Stored | None] = []
    size, mark, unpack = HEADER_SIZE, _MARK, _HEADER.unpack_from
    for raw in replies:
        if not isinstance(raw, bytes):
            found.append(None)
        elif len(raw) < size or raw[:1] != mark:
            found.append((raw, 0))
        else:
            expiry = unpack(raw)[1]
            found.append((raw[size:], None if expiry == 0 else max(0, expiry - now)))
    return found


def unwrap(raw: bytes | str | None, now: int) -> Stored | None:
    """A GET reply as the serializer's bytes and the ms left (``None``: no expiry; 0: do not
    copy to L1), or None for a miss (replies are bytes: the clients do not decode them)."""
    if not isinstance(raw, bytes):
        return None
    if len(raw) < HEADER_SIZE or raw[:1] != _MARK:
        return raw, 0  # the format before the expiry was stored: serve, never copy to L1
    _, expiry = _HEADER.unpack_from(raw)
    if expiry == 0:
        return raw[HEADER_SIZE:], None
    return raw[HEADER_SIZE:], max(0, expiry - now)
