"""Refresh ahead of expiry: when each key's value is due for a background refresh.

``get_or_set(..., refresh_ahead=0.8)`` stores a value with a TTL and schedules its
refresh at 80 % of it (a copy read from Redis, at 80 % of the TTL it was written
with, from the time Redis says it has left). The first ``get_or_set`` hit at or
after that time takes the schedule (:meth:`RefreshSchedule.take_due`: one caller
wins) and starts one background refresh; every hit still returns the cached value.
A refresh that fails keeps the old value, which then expires as usual.

The schedule is bounded (``max_keys``, oldest forgotten first: a forgotten key just
expires and is loaded on the next miss). A hit checks it without the lock, and takes
the lock only when the key is due.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Hashable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from otel_cache.errors import CacheConfigError

__all__ = ["RefreshSchedule", "RefreshStats", "validate_refresh_ahead"]


@dataclass(frozen=True, slots=True)
class RefreshStats:
    """Background refreshes started, and how those that ended went."""

    started: int = 0
    succeeded: int = 0
    failed: int = 0


def validate_refresh_ahead(share: object) -> float | None:
    """``share`` as a float in (0, 1), or None; CacheConfigError otherwise."""
    if share is None:
        return None
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
        raise CacheConfigError(f"refresh_ahead must be a share of the TTL between 0 and 1, got {share!r}")
    return float(share)


class RefreshSchedule:
    """Refresh deadlines by key (on the cache's monotonic clock), and the refresh counters."""

    def __init__(self, *, lock: AbstractContextManager[Any] | None = None, max_keys: int = 100_000) -> None:
        self._lock: AbstractContextManager[Any] = lock or contextlib.nullcontext()
        self._due: OrderedDict[Hashable, float] = OrderedDict()
        self._max_keys = max_keys
        self.started = self.succeeded = self.failed = 0

    def schedule(
        self, key: Hashable, now: float, ttl: float | None, share: float, *, left: float | None = None
    ) -> None:
        """Refresh ``key`` once ``share`` of ``ttl`` has passed; ``left``: seconds of the TTL left
        now, when the value was written earlier (a copy read from Redis)."""
        if ttl is None:
            return  # never expires: nothing to refresh ahead of
        elapsed = 0.0 if left is None else max(0.0, ttl - left)
        due = now + share * ttl - elapsed
        with self._lock:
            self._due[key] = due
            self._due.move_to_end(key)
            while len(self._due) > self._max_keys:
                self._due.popitem(last=False)

    def take_due(self, key: Hashable, now: float) -> bool:
        """Whether ``key`` is due, for one caller: that caller starts the refresh (and calls
        :meth:`started_one` if it does run one: a load of the key may be running already)."""
        due = self._due.get(key)  # no lock: a hit that is not due pays one dict lookup
        if due is None or now < due:
            return False
        with self._lock:
            if self._due.get(key) != due:
                return False  # another caller took it, or it was rescheduled
            del self._due[key]
        return True

    def started_one(self) -> None:
        with self._lock:
            self.started += 1

    def finished(self, *, ok: bool) -> None:
        with self._lock:
            if ok:
                self.succeeded += 1
            else:
                self.failed += 1

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._due.pop(key, None)

    def stats(self) -> RefreshStats:
        with self._lock:
            return RefreshStats(self.started, self.succeeded, self.failed)
