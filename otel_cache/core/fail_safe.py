"""Fail-safe copies (FusionCache's model): a value outlives its TTL, to be served when its load fails.

``get_or_set(key, load, ttl, fail_safe=FailSafe(max_age=3600))`` stores the value as
usual and keeps a copy for ``max_age`` seconds past its TTL:

- in Redis, in the same key: written with ``PX`` = TTL + ``max_age`` and, inside the
  L2 envelope, ``b"f"`` + the value's own expiry (Unix ms, 8 bytes) + the serializer's
  bytes. Before that expiry it is an ordinary hit for every reader; after it, a miss
  for everyone but a ``get_or_set`` whose load has just failed;
- in L1, as a second entry under :class:`FailSafeKey` ``(key)``, for TTL + ``max_age``.

When the load of an expired entry raises and a copy exists (Redis's first, else
L1's), the caller gets the copy instead of the exception; it is counted (``stats().l2
.fail_safe_served``, ``otel_cache.fail_safe.activations``), put on the span as an event,
and put back in L1 for ``throttle`` seconds, so that the failing loader is not called
again by every request meanwhile. Without a copy, the exception reaches the caller.
A load that is only slow is handled the same way through :class:`LoadTimeouts`.

Everything that removes an entry removes its copies: ``delete``, tags, ``clear``, and
other processes' writes and deletes (the L1 copy goes with the L1 entry). A ``put``
without ``fail_safe`` replaces the Redis copy and drops the L1 one.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Hashable
from dataclasses import dataclass

from otel_cache.errors import CacheConfigError

__all__ = ["MARK", "FailSafe", "FailSafeKey", "LoadTimeouts", "now_ms", "unwrap", "wrap"]

MARK = b"f"
_HEADER = struct.Struct(">cQ")


@dataclass(frozen=True, slots=True)
class FailSafe:
    """How long a copy outlives the value's TTL, and how long a served copy is reused."""

    max_age: float
    throttle: float = 30.0

    def __post_init__(self) -> None:
        for name in ("max_age", "throttle"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < math.inf):
                raise CacheConfigError(
                    f"fail_safe {name} must be a positive number of seconds, got {value!r}"
                )


@dataclass(frozen=True, slots=True)
class LoadTimeouts:
    """How long a ``get_or_set`` caller waits for its load (FusionCache's factory timeouts).

    ``soft``: with a fail-safe copy at hand, serve it after this long; ``hard``: after this
    long, serve the copy if there is one, else raise :class:`~otel_cache.errors.LoadTimeoutError`.
    Either way the load goes on in the background and stores its value when it ends.
    """

    soft: float | None = None
    hard: float | None = None

    def __post_init__(self) -> None:
        for name in ("soft", "hard"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < math.inf):
                raise CacheConfigError(f"{name}_timeout must be a positive number of seconds, got {value!r}")

    def kind(self, has_copy: bool) -> str:
        """Which timeout :meth:`wait` is: ``"soft"`` or ``"hard"``."""
        soft = self.soft if has_copy else None
        return "soft" if soft is not None and (self.hard is None or soft < self.hard) else "hard"

    def wait(self, has_copy: bool) -> float | None:
        """How long to wait for the loader: the soft timeout only counts with a copy at hand."""
        waits = [t for t in (self.soft if has_copy else None, self.hard) if t is not None]
        return min(waits) if waits else None


@dataclass(frozen=True, slots=True)
class FailSafeKey:
    """The L1 key of ``key``'s fail-safe copy (equal to no key of the user's)."""

    key: Hashable


def now_ms() -> int:
    """The wall clock in Unix milliseconds (the copy's expiry is read by other hosts too)."""
    return time.time_ns() // 1_000_000


def wrap(data: bytes, ttl_ms: int, now: int) -> bytes:
    """``data`` with the value's own expiry, ``now + ttl_ms``, in front."""
    return _HEADER.pack(MARK, now + ttl_ms) + data


def unwrap(data: bytes, now: int) -> tuple[bytes, int | None]:
    """The serializer's bytes and the ms left before the value's own expiry (negative: a stale
    copy); ``None`` if ``data`` is no fail-safe copy (then it is returned as it is)."""
    if data[:1] != MARK or len(data) < _HEADER.size:
        return data, None
    _, expiry = _HEADER.unpack_from(data)
    return data[_HEADER.size :], expiry - now
