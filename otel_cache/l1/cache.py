"""``AsyncLRUCache``: the in-process L1 cache, with a sync API and an async twin.

Both APIs are thin shells over one :class:`~otel_cache.core.lru.LRUCore` and one
:class:`~otel_cache.l1.lock.TimedLock` (see that module for why one thread lock
is the correct lock for threads and coroutines together). A hit is answered
without the lock (``LRUCore.hit_path``) under the GIL; on a free-threaded CPython
running without it, hits take the lock too (:data:`LOCK_FREE_HITS`). Any other call
takes the lock, makes one core call and releases it. The async methods never await while holding it, and
only await at all when the lock is contended.

    >>> cache: AsyncLRUCache[str, int] = AsyncLRUCache(max_entries=2, default_ttl=60)
    >>> cache.put("a", 1)
    True
    >>> cache.get("a")
    1

Bulk calls (``get_many``, ``put_many``) take the lock once per chunk of
``_CHUNK`` keys, so another thread or the event loop never waits behind a large batch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Generic, NoReturn, TypeVar

from otel_cache.core.lru import Clock, LRUCore
from otel_cache.core.sizing import Sizer, deep_sizeof
from otel_cache.core.stats import CacheStats, LockWaitStats
from otel_cache.errors import CacheClosedError
from otel_cache.l1.lock import RawLock, TimedLock
from otel_cache.telemetry import hooks

__all__ = ["AsyncLRUCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")
R = TypeVar("R")

_CHUNK = 64
_perf_counter = time.perf_counter


def gil_enabled() -> bool:
    """False on a free-threaded CPython (3.13t and later) running without the GIL."""
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)  # 3.13+; the GIL is always on before
    return True if is_gil_enabled is None else bool(is_gil_enabled())


LOCK_FREE_HITS = gil_enabled()
"""Whether hits skip the lock (``LRUCore.hit_path``): only while the GIL makes each of its
C calls atomic. Without the GIL every lookup takes the lock. Read when a cache is made."""


class AsyncLRUCache(Generic[K, V]):
    """A bounded LRU cache with TTL, safe under any mix of threads and coroutines.

    Args:
        max_entries: most entries kept (``None``: no entry bound).
        max_bytes: most bytes kept, as measured by ``sizer`` (``None``: no byte bound).
        default_ttl: seconds an entry lives unless its put says otherwise (``None``: forever).
        sizer: bytes of a key or value; :func:`~otel_cache.core.sizing.deep_sizeof` by default.
        clock: monotonic clock in seconds; inject one in tests instead of sleeping.
        expiry_resolution: width in seconds of the buckets that batch expiry uses.
        expiry_batch: most expired entries one put removes.
        name: the cache's name in telemetry.
        register: make the cache visible to instrumentation (a multi-level cache
            registers itself instead of its L1).
        lock: the lock that guards the entries, owned by the cache from now on
            (default: a new ``threading.Lock``; a comparison may pass a ``threading.RLock``,
            which is slower and buys nothing here: nothing re-enters).
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_core",
        "_core_get",
        "_core_put",
        "_count_hit",
        "_lock",
        "_lookup",
        "_now",
        "_release",
        "_size_of",
        "_touch",
        "_try_acquire",
        "name",
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
        name: str = "default",
        register: bool = True,
        lock: RawLock | None = None,
    ) -> None:
        self._core: LRUCore[K, V] = LRUCore(
            max_entries=max_entries,
            max_bytes=max_bytes,
            default_ttl=default_ttl,
            sizer=sizer,
            clock=clock,
            expiry_resolution=expiry_resolution,
            expiry_batch=expiry_batch,
        )
        self._lock = TimedLock(lock)
        self._core_get = self._core.get
        # The hit path, inlined in get/aget (one frame a hit). Without the GIL a
        # lock-free lookup could race a put: every lookup then finds nothing and takes the lock.
        hit = self._core.hit_path()
        self._lookup = hit.lookup if LOCK_FREE_HITS else _find_nothing
        self._touch, self._now, self._count_hit = hit.touch, hit.clock, hit.count_hit
        self._core_put = self._core.put
        self._size_of = self._core.entry_sizer()
        self._try_acquire = self._lock.try_acquire
        self._release = self._lock.release
        self._closed = False
        self.name = name
        if register:  # visible to instrumentation (observable counters, lock-wait listener)
            hooks.register(self)

    # -- sync API --------------------------------------------------------------

    def get(self, key: K, default: D | None = None) -> V | D | None:
        """The value of ``key``, or ``default`` on a miss or after expiry."""
        # LRUCore.hit_path's four calls, inlined; its docstring says why this is safe without the lock.
        try:
            entry = self._lookup(key)
        except TypeError:
            entry = None  # unhashable: the locked path raises CacheKeyError
        if entry is not None and (not entry[1] or entry[1] > self._now()):
            try:  # noqa: SIM105 - a context manager costs more than the lookup here
                self._touch(key)
            except KeyError:  # removed since the lookup: still a hit on the value read
                pass
            self._count_hit()
            return entry[0]
        if self._try_acquire(False):
            try:
                return self._core_get(key, default)
            finally:
                self._release()
        return self._call_contended(self._core.get, key, default)

    def peek(self, key: K, default: D | None = None) -> V | D | None:
        """The value of ``key`` if it is there and live, counting nothing (lock-free under the GIL)."""
        if LOCK_FREE_HITS:
            return self._core.peek(key, default)
        return self._call(self._core.peek, key, default)

    def put(self, key: K, value: V, ttl: float | None = None) -> bool:
        """Store ``value`` for ``ttl`` seconds (``None``: the default TTL).

        Returns False, evicting nothing, when the value alone exceeds ``max_bytes``.
        """
        size = self._size_of(key, value)  # before the lock: sizing may walk a large value
        if self._try_acquire(False):
            try:
                return self._core_put(key, value, ttl, size)
            finally:
                self._release()
        return self._call_contended(self._core.put, key, value, ttl, size)

    def delete(self, key: K) -> bool:
        """Remove ``key``; True if it was there."""
        return self._call(self._core.delete, key)

    def clear(self) -> None:
        """Remove every entry (counters are kept)."""
        self._call(self._core.clear)

    def stats(self) -> CacheStats:
        """A consistent snapshot of the counters."""
        return self._call(self._core.stats)

    def lock_stats(self) -> LockWaitStats:
        """Contended waits on the cache's lock so far."""
        return self._call(self._lock.stats)

    def purge_expired(self) -> int:
        """Remove up to one batch of expired entries now; return how many."""
        return self._call(self._core.purge_expired)

    def get_many(self, keys: Iterable[K]) -> dict[K, V]:
        """The keys that hit, with their values (misses are left out)."""
        self._check_open()
        found: dict[K, V] = {}
        for chunk in _chunks(keys):
            self._call(_collect_hits, self._core, chunk, found)
        return found

    def put_many(self, items: Mapping[K, V] | Iterable[tuple[K, V]], ttl: float | None = None) -> int:
        """Store every pair with the same TTL; return how many were stored (not rejected)."""
        self._check_open()
        pairs = items.items() if isinstance(items, Mapping) else items
        stored = 0
        for chunk in _chunks(pairs):
            sized = [(key, value, self._size_of(key, value)) for key, value in chunk]  # before the lock
            stored += self._call(_put_all, self._core, sized, ttl)
        return stored

    def put_entries(self, entries: Iterable[tuple[K, V, float | None]]) -> int:
        """Store each (key, value, ttl); return how many were stored. One lock round a chunk."""
        self._check_open()
        size_of, stored = self._size_of, 0
        for chunk in _chunks(entries):
            sized = [(key, value, ttl, size_of(key, value)) for key, value, ttl in chunk]  # before the lock
            stored += self._call(_put_each, self._core, sized)
        return stored

    def __contains__(self, key: K) -> bool:
        return self._call(self._core.contains, key)

    def __len__(self) -> int:
        return len(self._core)

    def close(self) -> None:
        """Drop every entry and refuse further use; closing twice is harmless."""
        self._call(self._close_locked)

    def _close_locked(self) -> None:
        if self._closed:
            return
        self._core.clear()
        self._closed = True
        self._core = closed = _ClosedCore()  # type: ignore[assignment]
        self._core_get = closed.get  # type: ignore[assignment]
        self._lookup = closed.get
        self._core_put = closed.put  # type: ignore[assignment]

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def lock(self) -> TimedLock:
        """The cache's lock, for wait listeners (telemetry)."""
        return self._lock

    # -- async API -------------------------------------------------------------

    async def aget(self, key: K, default: D | None = None) -> V | D | None:
        """Async :meth:`get`; awaits only when another thread holds the lock."""
        try:  # the hit path of get(), inlined
            entry = self._lookup(key)
        except TypeError:
            entry = None
        if entry is not None and (not entry[1] or entry[1] > self._now()):
            try:  # noqa: SIM105
                self._touch(key)
            except KeyError:
                pass
            self._count_hit()
            return entry[0]
        if self._try_acquire(False):
            try:
                return self._core_get(key, default)
            finally:
                self._release()
        return await self._acall_contended(self._core.get, key, default)

    async def aput(self, key: K, value: V, ttl: float | None = None) -> bool:
        """Async :meth:`put`."""
        size = self._size_of(key, value)  # before the lock: sizing may walk a large value
        if self._try_acquire(False):
            try:
                return self._core_put(key, value, ttl, size)
            finally:
                self._release()
        return await self._acall_contended(self._core.put, key, value, ttl, size)

    async def adelete(self, key: K) -> bool:
        """Async :meth:`delete`."""
        return await self._acall(self._core.delete, key)

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        await self._acall(self._core.clear)

    async def astats(self) -> CacheStats:
        """Async :meth:`stats`."""
        return await self._acall(self._core.stats)

    async def acontains(self, key: K) -> bool:
        """Async ``key in cache``."""
        return await self._acall(self._core.contains, key)

    async def aget_many(self, keys: Iterable[K]) -> dict[K, V]:
        """Async :meth:`get_many`."""
        self._check_open()
        found: dict[K, V] = {}
        for chunk in _chunks(keys):
            await self._acall(_collect_hits, self._core, chunk, found)
        return found

    async def aput_many(self, items: Mapping[K, V] | Iterable[tuple[K, V]], ttl: float | None = None) -> int:
        """Async :meth:`put_many`."""
        self._check_open()
        pairs = items.items() if isinstance(items, Mapping) else items
        stored = 0
        for chunk in _chunks(pairs):
            sized = [(key, value, self._size_of(key, value)) for key, value in chunk]  # before the lock
            stored += await self._acall(_put_all, self._core, sized, ttl)
        return stored

    async def aput_entries(self, entries: Iterable[tuple[K, V, float | None]]) -> int:
        """Async :meth:`put_entries`."""
        self._check_open()
        size_of, stored = self._size_of, 0
        for chunk in _chunks(entries):
            sized = [(key, value, ttl, size_of(key, value)) for key, value, ttl in chunk]  # before the lock
            stored += await self._acall(_put_each, self._core, sized)
        return stored

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        self.close()

    # -- locking ---------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise CacheClosedError("the cache is closed")

    def _call(self, fn: Callable[..., R], *args: Any) -> R:
        if self._try_acquire(False):
            if self._lock.timing_holds:
                return self._held(fn, args)
            try:
                return fn(*args)
            finally:
                self._release()
        return self._call_contended(fn, *args)

    def _held(self, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
        """Run ``fn`` under the already-held lock, timing the hold."""
        lock = self._lock
        start = _perf_counter()
        try:
            return fn(*args)
        finally:
            hold = _perf_counter() - start
            lock.release()
            lock.notify_hold(hold)

    def _call_contended(self, fn: Callable[..., R], *args: Any) -> R:
        wait = self._lock.acquire_contended()
        try:
            return self._held(fn, args)
        finally:
            self._lock.notify(wait)

    async def _acall(self, fn: Callable[..., R], *args: Any) -> R:
        if self._try_acquire(False):
            if self._lock.timing_holds:
                return self._held(fn, args)
            try:
                return fn(*args)
            finally:
                self._release()
        return await self._acall_contended(fn, *args)

    async def _acall_contended(self, fn: Callable[..., R], *args: Any) -> R:
        wait = await self._lock.aacquire_contended()
        try:
            return self._held(fn, args)
        finally:
            self._lock.notify(wait)


def _chunks(items: Iterable[R]) -> Iterable[list[R]]:
    chunk: list[R] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_MISSING: Any = object()


def _find_nothing(key: object) -> None:
    """The lock-free lookup where hits may not skip the lock: always the locked path."""
    return None


def _collect_hits(core: LRUCore[K, V], keys: list[K], found: dict[K, V]) -> None:
    for key in keys:
        value = core.get(key, _MISSING)
        if value is not _MISSING:
            found[key] = value


def _put_all(core: LRUCore[K, V], entries: list[tuple[K, V, int]], ttl: float | None) -> int:
    return sum(core.put(key, value, ttl, size) for key, value, size in entries)


def _put_each(core: LRUCore[K, V], entries: list[tuple[K, V, float | None, int]]) -> int:
    return sum(core.put(key, value, ttl, size) for key, value, ttl, size in entries)


class _ClosedCore:
    """Stands in for the core after close, so the hot path needs no closed check."""

    def __getattr__(self, name: str) -> NoReturn:
        raise CacheClosedError("the cache is closed")

    def get(self, *args: object) -> NoReturn:
        raise CacheClosedError("the cache is closed")

    put = get

    def __len__(self) -> int:
        return 0
