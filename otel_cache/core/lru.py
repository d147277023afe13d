"""The pure L1 core: LRU order, TTL, entry and byte bounds, batch expiry, counters.

No locks, no awaits, no I/O: :class:`otel_cache.l1.AsyncLRUCache` wraps it in a
lock and offers the sync and async APIs. Every method here is O(1) amortised, and
O(batch) at worst, so that the lock around it is held for a short, bounded time; the
exceptions are ``clear`` (O(n), on a user's request) and ``items`` (for tests and
tooling). Sizing a value (:meth:`LRUCore.size_of`) reads no state and runs before the lock.

Layout::

    _data  OrderedDict  key -> (value, expires_at, size)    LRU order, oldest first
    _wheel dict         bucket -> set of keys                expiry buckets
    _bucket_heap        min-heap of bucket numbers           which bucket expires next

``expires_at`` is a deadline on the injected monotonic clock, ``0.0`` for "never".
An entry is put in bucket ``floor(expires_at / resolution)``. A lookup checks the
exact deadline of the one entry it finds; expired entries nobody asks for are
removed in batches of at most ``expiry_batch`` by :meth:`LRUCore.purge_expired`,
which every put runs once the oldest bucket is past. Buckets, unlike a heap of
entries, never hold stale items: an update moves its key between two sets.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Generic, NamedTuple, TypeVar

from otel_cache.core.sizing import Sizer, deep_sizeof, entry_size, shallow_entry_size
from otel_cache.core.stats import CacheStats, EvictionReason
from otel_cache.core.ttl import MAX_TTL, resolve_ttl, validate_ttl
from otel_cache.errors import CacheConfigError, CacheKeyError

__all__ = ["Clock", "HitPath", "LRUCore"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")

Clock = Callable[[], float]

_SIZE = EvictionReason.SIZE
_EXPIRED = EvictionReason.EXPIRED
_DELETED = EvictionReason.DELETED
_REJECTED = EvictionReason.REJECTED
_SMALLEST_DEADLINE = math.nextafter(0.0, 1.0)

# (value, expires_at, size)
_Entry = tuple[V, float, int]


class HitPath(NamedTuple, Generic[K, V]):
    """The four C calls of a hit (:meth:`LRUCore.hit_path`), bound, for a shell to inline."""

    lookup: Callable[[K], _Entry[V] | None]
    touch: Callable[[K], None]
    clock: Clock
    count_hit: Callable[[], int]


class LRUCore(Generic[K, V]):
    """An LRU map with TTL and bounds. Not thread-safe: callers hold a lock."""

    __slots__ = (
        "_bucket_heap",
        "_clock",
        "_count_hit",
        "_data",
        "_hit_counter",
        "_resolution",
        "_sizer",
        "_wheel",
        "bytes",
        "default_ttl",
        "evictions",
        "expiry_batch",
        "inserts",
        "max_bytes",
        "max_entries",
        "misses",
        "puts",
        "updates",
    )

    def __init__(
        self,
        *,
        max_entries: int | None = 10_000,
        max_bytes: int | None = None,
        default_ttl: float | None = None,
        sizer: Sizer | None = deep_sizeof,
        clock: Clock = time.monotonic,
        expiry_resolution: float = 1.0,
        expiry_batch: int = 64,
    ) -> None:
        for name, bound in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if bound is not None and (not isinstance(bound, int) or isinstance(bound, bool) or bound < 1):
                raise CacheConfigError(f"{name} must be a positive int or None, got {bound!r}")
        if max_bytes is not None and sizer is None:
            raise CacheConfigError("a byte bound needs a sizer")
        if (
            not expiry_resolution > 0
            or not isinstance(expiry_batch, int)
            or isinstance(expiry_batch, bool)
            or expiry_batch < 1
        ):
            raise CacheConfigError("expiry_resolution and expiry_batch must be positive")
        ttl = validate_ttl(default_ttl, name="default_ttl")
        self.default_ttl = None if ttl == math.inf else ttl
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.expiry_batch = expiry_batch
        self._sizer = sizer
        self._clock = clock
        self._resolution = expiry_resolution
        self._data: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._wheel: dict[int, set[K]] = {}
        self._bucket_heap: list[int] = []
        # Hits are counted by next() on an itertools.count: one C call, so exact even
        # from the lock-free hit path (hit_path), where "+= 1" could lose a count.
        self._hit_counter = itertools.count()
        self._count_hit = self._hit_counter.__next__
        self.misses = 0
        self.puts = 0
        self.inserts = 0
        self.updates = 0
        self.bytes = 0
        self.evictions = [0, 0, 0, 0]  # indexed by EvictionReason

    # -- lookups ---------------------------------------------------------------

    def get(self, key: K, default: D) -> V | D:
        """The value of ``key`` (now most recently used), or ``default``."""
        data = self._data
        try:
            entry = data.get(key)
        except TypeError as exc:
            raise _unhashable(key) from exc
        if entry is None:
            self.misses += 1
            return default
        if entry[1] and entry[1] <= self._clock():
            self._remove(key, entry, _EXPIRED)
            self.misses += 1
            return default
        data.move_to_end(key)
        self._count_hit()
        return entry[0]

    def peek(self, key: K, default: D) -> V | D:
        """The value of a live ``key``, else ``default``: no counter, no LRU move, no removal.

        Lock-free like a hit (see :meth:`hit_path`); for re-checks that must not count a
        second lookup of the same call.
        """
        try:
            entry = self._data.get(key)
        except TypeError:
            return default
        if entry is None or (entry[1] and entry[1] <= self._clock()):
            return default
        return entry[0]

    def hit_path(self) -> HitPath[K, V]:
        """What a shell needs to answer a hit itself, in one frame, without the lock.

        A hit is a lookup, an expiry check, a ``move_to_end`` and a ``next()`` on the hit
        counter. Safe concurrently with locked calls because under the GIL each of those is
        one C call that leaves the OrderedDict consistent, and a lock-free reader never
        removes anything: a miss, an expired entry or an unhashable key goes to the locked
        path (:meth:`get`), which does the accounting and the removal; a key removed between
        the lookup and the move is still a hit on the value read. Without the GIL this does
        not hold (see ``otel_cache.l1.cache.LOCK_FREE_HITS``).
        """
        data = self._data
        return HitPath(data.get, data.move_to_end, self._clock, self._count_hit)

    @property
    def hits(self) -> int:
        return int(repr(self._hit_counter)[6:-1])  # "count(N)": reading does not advance it

    def contains(self, key: K) -> bool:
        """Whether ``key`` holds an unexpired value; touches neither LRU order nor counters."""
        try:
            entry = self._data.get(key)
        except TypeError as exc:
            raise _unhashable(key) from exc
        if entry is None:
            return False
        return not (entry[1] and entry[1] <= self._clock())

    # -- updates ---------------------------------------------------------------

    def entry_sizer(self) -> Callable[[K, V], int]:
        """:meth:`size_of` as one function of (key, value), for a shell's put path (a frame less)."""
        sizer = self._sizer
        if sizer is None:
            return _no_size
        if sizer is deep_sizeof:
            return entry_size if self.max_bytes is not None else shallow_entry_size
        return self.size_of

    def size_of(self, key: K, value: V) -> int:
        """The bytes an entry counts for: what :meth:`put` is given as ``size``.

        With a byte bound, the sizer's figure (by default :func:`~otel_cache.core.sizing.deep_sizeof`,
        a walk of the value's containers); without one, only the cheap
        :func:`~otel_cache.core.sizing.shallow_entry_size` for the bytes metric (or the
        sizer the caller chose). Reads nothing the lock guards: the shell calls it
        before taking the lock, so a large value is never walked inside it.
        """
        sizer = self._sizer
        if sizer is None:
            return 0
        if sizer is deep_sizeof:
            return entry_size(key, value) if self.max_bytes is not None else shallow_entry_size(key, value)
        return sizer(key) + sizer(value)

    def put(self, key: K, value: V, ttl: float | None = None, size: int | None = None) -> bool:
        """Store ``value``; ``ttl`` None means the default TTL. False if rejected as too large.

        ``size`` is :meth:`size_of` the entry, computed by the caller outside its lock
        (``None``: computed here).
        """
        if ttl is None:
            seconds = self.default_ttl
        elif type(ttl) is float and 0.0 < ttl <= MAX_TTL:  # a plain finite TTL: valid as it is
            seconds = ttl
        else:
            seconds = resolve_ttl(ttl, self.default_ttl)
        if size is None:
            size = self.size_of(key, value)
        data = self._data
        try:
            old = data.get(key)
        except TypeError as exc:
            raise _unhashable(key) from exc
        self.puts += 1
        max_bytes = self.max_bytes
        if max_bytes is not None and size > max_bytes:
            self.evictions[_REJECTED] += 1
            if old is not None:  # the old value is stale now: never serve it
                self._remove(key, old, _DELETED)
            return False
        if seconds is None:
            now = 0.0
            expires_at = 0.0
        else:
            now = self._clock()
            expires_at = now + seconds or _SMALLEST_DEADLINE  # 0.0 means "never"
        resolution = self._resolution
        if old is None:
            self.inserts += 1
            if expires_at:  # _schedule, inlined: every insert with a TTL comes here
                bucket = int(expires_at // resolution)
                keys = self._wheel.get(bucket)
                if keys is None:
                    self._wheel[bucket] = {key}
                    heapq.heappush(self._bucket_heap, bucket)
                else:
                    keys.add(key)
        else:
            self.updates += 1
            self.bytes -= old[2]
            old_expiry = old[1]
            # Most updates keep their expiry bucket: then the wheel needs no change.
            if old_expiry != expires_at and (
                not old_expiry or not expires_at or old_expiry // resolution != expires_at // resolution
            ):
                if old_expiry:
                    self._unschedule(key, old_expiry)
                if expires_at:
                    self._schedule(key, expires_at)
            data.move_to_end(key)
        data[key] = (value, expires_at, size)
        self.bytes += size
        heap = self._bucket_heap
        if heap:  # some entries expire: drop a batch of the expired ones, if any
            if not now:
                now = self._clock()
            if heap[0] < now // resolution:
                self.purge_expired(now)
        max_entries = self.max_entries
        if max_bytes is None:
            if max_entries is not None and len(data) > max_entries:  # one over: evict the oldest
                evicted, entry = data.popitem(last=False)
                self.bytes -= entry[2]
                if entry[1]:
                    self._unschedule(evicted, entry[1])
                self.evictions[_SIZE] += 1
        elif self.bytes > max_bytes or (max_entries is not None and len(data) > max_entries):
            self._enforce_bounds()
        return True

    def delete(self, key: K) -> bool:
        """Remove ``key``; True if it held a value (expired or not)."""
        try:
            entry = self._data.get(key)
        except TypeError as exc:
            raise _unhashable(key) from exc
        if entry is None:
            return False
        self._remove(key, entry, _DELETED)
        return True

    def clear(self) -> int:
        """Remove every entry (counted as deleted); return how many there were."""
        count = len(self._data)
        self.evictions[_DELETED] += count
        self._data.clear()
        self._wheel.clear()
        self._bucket_heap.clear()
        self.bytes = 0
        return count

    def purge_expired(self, now: float | None = None) -> int:
        """Remove up to ``expiry_batch`` entries whose bucket has passed; return how many."""
        if now is None:
            now = self._clock()
        current = now // self._resolution
        heap, wheel, data = self._bucket_heap, self._wheel, self._data
        removed = 0
        while heap and heap[0] < current and removed < self.expiry_batch:
            bucket = heap[0]
            keys = wheel.get(bucket)
            if not keys:
                heapq.heappop(heap)
                wheel.pop(bucket, None)
                continue
            key = keys.pop()
            entry = data.pop(key)
            self.bytes -= entry[2]
            self.evictions[_EXPIRED] += 1
            removed += 1
        return removed

    # -- bulk ------------------------------------------------------------------

    def get_many(self, keys: Iterable[K], default: D) -> list[V | D]:
        return [self.get(key, default) for key in keys]

    def items(self) -> Iterator[tuple[K, V]]:
        """Unexpired (key, value) pairs, oldest first; for tests and tooling, O(n)."""
        now = self._clock()
        for key, (value, expires_at, _) in list(self._data.items()):
            if not expires_at or expires_at > now:
                yield key, value

    # -- stats -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._data)

    def stats(self) -> CacheStats:
        return CacheStats(
            hits=self.hits,
            misses=self.misses,
            puts=self.puts,
            inserts=self.inserts,
            updates=self.updates,
            evictions={reason.label: self.evictions[reason] for reason in EvictionReason},
            entries=len(self._data),
            bytes=self.bytes,
            max_entries=self.max_entries,
            max_bytes=self.max_bytes,
        )

    # -- internals -------------------------------------------------------------

    def _enforce_bounds(self) -> None:
        data = self._data
        max_entries, max_bytes = self.max_entries, self.max_bytes
        while (max_entries is not None and len(data) > max_entries) or (
            max_bytes is not None and self.bytes > max_bytes
        ):
            key, entry = data.popitem(last=False)
            self.bytes -= entry[2]
            if entry[1]:
                self._unschedule(key, entry[1])
            self.evictions[_SIZE] += 1

    def _remove(self, key: K, entry: _Entry[V], reason: EvictionReason) -> None:
        del self._data[key]
        self.bytes -= entry[2]
        if entry[1]:
            self._unschedule(key, entry[1])
        self.evictions[reason] += 1

    def _schedule(self, key: K, expires_at: float) -> None:
        bucket = int(expires_at // self._resolution)
        keys = self._wheel.get(bucket)
        if keys is None:
            self._wheel[bucket] = {key}
            heapq.heappush(self._bucket_heap, bucket)
        else:
            keys.add(key)

    def _unschedule(self, key: K, expires_at: float) -> None:
        keys = self._wheel.get(int(expires_at // self._resolution))
        if keys is not None:
            keys.discard(key)


def _no_size(key: object, value: object) -> int:
    return 0


def _unhashable(key: object) -> CacheKeyError:
    return CacheKeyError(f"cache keys must be hashable, got {type(key).__name__}")
