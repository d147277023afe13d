"""Snapshots of cache and lock counters.

The live counters are plain integers on the objects that count them (an L1 hit
must stay a dict lookup and a few integer adds); these frozen dataclasses are what
``stats()`` hands out, and what the telemetry layer publishes through observable
instruments.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["CacheStats", "EvictionReason", "LockWaitStats"]


class EvictionReason(enum.IntEnum):
    """Why an entry left L1 (or, for ``REJECTED``, never entered it)."""

    SIZE = 0
    """Evicted as least recently used to respect the entry or byte bound."""
    EXPIRED = 1
    """Its TTL ran out."""
    DELETED = 2
    """Removed by ``delete``/``clear`` (or replaced by a rejected put)."""
    REJECTED = 3
    """A put whose value alone is larger than the byte bound; nothing was evicted for it."""

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters of one L1 cache since it was created (``clear`` does not reset them).

    Invariants: ``hits + misses`` is the number of lookups; ``inserts + updates +
    evictions['rejected'] == puts``; ``inserts - (size + expired + deleted
    evictions) == entries``.
    """

    hits: int
    misses: int
    puts: int
    inserts: int
    updates: int
    evictions: dict[str, int]
    entries: int
    bytes: int
    max_entries: int | None
    max_bytes: int | None

    @property
    def lookups(self) -> int:
        return self.hits + self.misses

    @property
    def hit_ratio(self) -> float:
        """Hits over lookups; 0.0 before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


@dataclass(frozen=True, slots=True)
class LockWaitStats:
    """Waits on one lock. Only contended acquisitions wait; they are all timed.

    ``buckets`` counts waits by upper bound in seconds (``bounds``; the last bucket
    is everything above the last bound).
    """

    kind: str
    contended: int
    total_wait_s: float
    max_wait_s: float
    bounds: tuple[float, ...] = field(default=())
    buckets: tuple[int, ...] = field(default=())
