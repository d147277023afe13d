"""One lock for threads and coroutines alike, with every contended wait timed.

Why one ``threading.Lock`` and not the ADR's ``threading.RLock`` + ``asyncio.Lock``:
two locks that do not exclude each other protect nothing, since a warmer thread
holding the RLock and a coroutine holding the asyncio.Lock would mutate the same
dict at once. An ``asyncio.Lock`` cannot be taken by a thread at all, so the one
lock has to be a thread lock. That is safe for the event loop because of what
the lock guards, under rules every change must keep:

1. Only :class:`otel_cache.core.lru.LRUCore` calls run under it, each O(1)
   amortised: a lookup, a put of an entry already sized, a delete, at most
   ``expiry_batch`` expiries, and the evictions an insert needs (one each). The one
   O(n) call is ``clear()``, which a user asks for.
2. No user code: values are sized before the lock is taken (``LRUCore.size_of``, and
   the sizer is a user callback), listeners run after it is released, loaders never
   come near it. What remains is a key's ``__hash__`` and ``__eq__`` (dict lookups):
   keep keys plain (the multi-level cache accepts only str, int, float, bool, None,
   bytes and tuples of these).
3. No I/O and no await inside.
4. Coroutines take it only through ``AsyncLRUCache``'s async methods (the
   multi-level flows yield their L1 calls as steps for that); the exceptions, each
   one short critical section, are clean-ups in a flow's ``finally`` (a closing
   generator cannot yield) and the invalidation listener task's deletes.

So a coroutine that finds the lock taken waits for at most one short critical
section of another thread. Hits do not take it at all
(:meth:`LRUCore.hit_path <otel_cache.core.lru.LRUCore.hit_path>`): under the GIL a
hit is three C calls that each leave the OrderedDict consistent, and readers never
remove anything, so only misses, expiries and writes are serialised. Without the
GIL (a free-threaded CPython, ``sys._is_gil_enabled()`` false) that argument fails,
and hits take the lock too (``otel_cache.l1.cache.LOCK_FREE_HITS``).

Acquisition, fast path first::

    acquire(blocking=False) ──ok──> critical section            (uncontended: no timing)
          │ taken
          v
    t0; up to 3 x { time.sleep(0) (hands the GIL to the holder); acquire(blocking=False) }
          │ still taken
          v
    threads:    acquire(); record(now - t0)
    coroutines: loop { acquire(timeout=slice) or await sleep(0) }; record(now - t0)

The GIL yields come first because a held lock almost always means its holder was
switched out mid-section: blocking on the lock would make the waiter its next owner
without the GIL, and threads would then pass lock and GIL back and forth on every
call (a convoy: measured 19x fewer event-loop ops/s, see docs/benchmarks.md).

A coroutine never blocks the loop for more than ``slice`` (0.5 ms) at a time: if a
thread held the lock longer (it cannot, by construction, but a GIL switch can
delay its release) the coroutine yields to the loop between attempts. Coroutines
that wait together queue on a per-loop ``asyncio.Lock`` first, so that only one
of them blocks the loop at a time (N waiters do not stall it N slices a turn).
The blocking attempt matters: it releases the GIL, which lets the holding thread
finish its critical section at once instead of after a GIL switch interval.

Contended waits are recorded as plain numbers under the lock (count, total,
max, log-scale buckets) and handed to listeners (the telemetry layer) after the
lock is released, so no listener ever runs inside a critical section.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from otel_cache.core.stats import LockWaitStats
from otel_cache.errors import CacheConfigError

__all__ = ["WAIT_BUCKETS", "RawLock", "TimedLock", "WaitListener"]


@runtime_checkable
class RawLock(Protocol):
    """What :class:`TimedLock` wraps: ``threading.Lock()`` or ``threading.RLock()``."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...


WaitListener = Callable[[str, float], None]
"""Called with (lock kind, wait in seconds) after each contended wait, outside the lock."""

WAIT_BUCKETS: tuple[float, ...] = (
    1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4,
    1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5, 1.0,
)  # fmt: skip
"""Upper bounds (seconds) of the wait buckets, 1 µs to 1 s."""

_ASYNC_SLICE_S = 0.0005
_GIL_YIELDS = 3
_sleep = time.sleep
_perf_counter = time.perf_counter


class TimedLock:
    """A ``threading.Lock`` whose contended acquisitions are timed.

    The shells call :attr:`try_acquire` (the raw non-blocking acquire) on the hot
    path and fall back to :meth:`acquire_contended` or
    :meth:`aacquire_contended`, which return the wait in seconds.
    """

    __slots__ = (
        "_buckets",
        "_gates",
        "_hold_listeners",
        "_listeners",
        "_lock",
        "contended",
        "kind",
        "max_wait_s",
        "release",
        "total_wait_s",
        "try_acquire",
    )

    def __init__(self, lock: RawLock | None = None) -> None:
        if lock is None:
            lock = threading.Lock()
        elif not isinstance(lock, RawLock):
            raise CacheConfigError(f"lock must be a threading.Lock or RLock, got {type(lock).__name__}")
        self._lock = lock
        self.kind = _kind_of(lock)
        self.try_acquire: Callable[[bool], bool] = self._lock.acquire
        self.release: Callable[[], None] = self._lock.release
        self.contended = 0
        self.total_wait_s = 0.0
        self.max_wait_s = 0.0
        self._buckets = [0] * (len(WAIT_BUCKETS) + 1)
        self._listeners: tuple[WaitListener, ...] = ()
        self._hold_listeners: tuple[WaitListener, ...] = ()
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def acquire_contended(self) -> float:
        """Take the lock for a thread that found it held; return the wait."""
        start = _perf_counter()
        if not self._yield_then_try():
            self._lock.acquire()
        wait = _perf_counter() - start
        self._record(wait)
        return wait

    async def aacquire_contended(self) -> float:
        """Take the lock from a coroutine, yielding to the loop between short attempts.

        Coroutines of one loop queue on an ``asyncio.Lock`` (the *gate*) first, so
        that only one of them at a time blocks the loop, for at most one slice.
        """
        start = _perf_counter()
        acquire = self._lock.acquire
        if not self._yield_then_try():
            async with self._gate():
                while not acquire(True, _ASYNC_SLICE_S):  # noqa: ASYNC110 - a thread lock has no awaitable
                    await asyncio.sleep(0)
        wait = _perf_counter() - start
        self._record(wait)
        return wait

    def _gate(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Lock()
        return gate

    def _yield_then_try(self) -> bool:
        """Hand the GIL to the holder a few times, trying the lock after each; True once held.

        Under the GIL a held lock almost always means its holder was switched out in
        the middle of its short critical section and waits for the GIL. Blocking on
        the lock instead would make this thread its next owner *without* the GIL, and
        the two threads would then hand lock and GIL back and forth on every call (a
        convoy). ``time.sleep(0)`` releases the GIL, the holder finishes, and the
        lock is taken without a handoff. Bounded: after a few tries, block as usual.
        """
        acquire = self._lock.acquire
        for _ in range(_GIL_YIELDS):
            _sleep(0)
            if acquire(False):
                return True
        return False

    def notify(self, wait: float) -> None:
        """Hand a contended wait to the listeners; call after releasing the lock."""
        for listener in self._listeners:
            with contextlib.suppress(Exception):  # a listener must never break a cache call
                listener(self.kind, wait)

    @property
    def timing_holds(self) -> bool:
        """Whether someone listens for hold times (the shells time holds only then)."""
        return bool(self._hold_listeners)

    def notify_hold(self, hold: float) -> None:
        """Hand a hold time to the hold listeners; call after releasing the lock."""
        for listener in self._hold_listeners:
            with contextlib.suppress(Exception):
                listener(self.kind, hold)

    def add_hold_listener(self, listener: WaitListener) -> None:
        """Listen for hold times. Sampled: the get/put fast path is never timed (it would
        double the cost of an L1 hit); bulk calls, maintenance and contended calls are."""
        self._hold_listeners = (*self._hold_listeners, listener)

    def remove_hold_listener(self, listener: WaitListener) -> None:
        self._hold_listeners = tuple(item for item in self._hold_listeners if item is not listener)

    def add_listener(self, listener: WaitListener) -> None:
        self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: WaitListener) -> None:
        self._listeners = tuple(item for item in self._listeners if item is not listener)

    def stats(self) -> LockWaitStats:
        return LockWaitStats(
            kind=self.kind,
            contended=self.contended,
            total_wait_s=self.total_wait_s,
            max_wait_s=self.max_wait_s,
            bounds=WAIT_BUCKETS,
            buckets=tuple(self._buckets),
        )

    def _record(self, wait: float) -> None:
        # Runs while holding the lock, so plain adds are safe.
        self.contended += 1
        self.total_wait_s += wait
        if wait > self.max_wait_s:
            self.max_wait_s = wait
        self._buckets[bisect_left(WAIT_BUCKETS, wait)] += 1


_LOCK_TYPE = type(threading.Lock())
_RLOCK_TYPE = type(threading.RLock())


def _kind_of(lock: RawLock) -> str:
    # The lock-type attribute of the lock-wait metric.
    if isinstance(lock, _LOCK_TYPE):
        return "threading.Lock"
    if isinstance(lock, _RLOCK_TYPE):
        return "threading.RLock"
    return f"{type(lock).__module__}.{type(lock).__qualname__}"
