"""``AsyncWarmer``: the warmer as asyncio tasks, for async code (no thread at all).

    warmer = AsyncWarmer(cache, fetch_user, ["alice", "bob"], interval=60, ttl=120)
    warmer.start()        # needs a running loop: one scheduler task
    ...
    await warmer.stop()   # cancels the task and awaits it; no task is left

Each run loads up to ``concurrency`` keys at once, with that many worker tasks in an
:class:`asyncio.TaskGroup` pulling from one list of keys (not one task per key). The
loader may be an ``async def`` (awaited) or a plain function (called on the loop, so
it must be quick). Stopping cancels the scheduler, which cancels and awaits the
workers. What is warmed, counted and logged is decided by
:class:`~otel_cache.warming.core.WarmerCore`.

With a leadership lease (a cache with Redis; see :mod:`otel_cache.warming.lease`) the
warmer's task holds the lease and starts the scheduler only while this process leads::

    otel-cache-warmer-<name>-lease     every lease_ttl/3: acquire or renew (redis.asyncio)
      |  creates, while this process leads:
      +-- otel-cache-warmer-<name>     the scheduler, as without a lease; one per term
    lost the lease -> the scheduler (and a run in progress) is cancelled
    stop()         -> the scheduler is cancelled, then the lease is released
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from types import TracebackType
from typing import Generic, TypeVar

from otel_cache.core.lru import Clock
from otel_cache.warming.core import (
    AsyncPutCache,
    KeySource,
    WarmerCore,
    WarmerStats,
    WarmRun,
    logger,
    validate_loader,
    validate_positive_int,
)
from otel_cache.warming.lease import DEFAULT_LEASE_TTL, lease_for
from otel_cache.warming.lease_async import AsyncLease
from otel_cache.warming.lease_sync import redis_connector

__all__ = ["AsyncWarmer"]

_serving: ContextVar[object] = ContextVar("otel_cache_warming_serving", default=None)
"""The warmer whose scheduler task (or one of its workers) is running; ``None`` elsewhere."""

K = TypeVar("K")
V = TypeVar("V")


class AsyncWarmer(Generic[K, V]):
    """Awaits ``loader(key)`` for every key and ``cache.aput(key, value, ttl)``, every ``interval`` s.

    Args:
        cache: the cache to fill (anything with ``aput(key, value, ttl)``).
        loader: an ``async def`` or plain function returning the value of a key; an
            exception fails that key only.
        keys: the keys to warm, or a (plain) callable returning them at every run.
        interval: seconds from the start of one run to the start of the next.
        ttl: TTL of the warmed entries (``None``: the cache's default).
        name: the warmer's name; the task is ``otel-cache-warmer-<name>``.
        run_immediately: run at start (with a lease: on becoming leader) rather than one
            interval later.
        concurrency: most keys loaded at once.
        clock: seconds, for run durations and the schedule.
        leader_election: warm in one process of those sharing the cache's Redis and
            namespace (a lease in Redis): ``None`` (default) when the cache has Redis
            configured, ``True`` always (an error without Redis), ``False`` never.
        lease_ttl: seconds the lease outlives its holder; renewed every third of it.

    Raises:
        CacheConfigError: an invalid argument, or ``leader_election=True`` for a cache
            without Redis.
    """

    def __init__(
        self,
        cache: AsyncPutCache[K, V],
        loader: Callable[[K], Awaitable[V] | V],
        keys: KeySource[K],
        *,
        interval: float,
        ttl: float | None = None,
        name: str = "warmer",
        run_immediately: bool = True,
        concurrency: int = 8,
        clock: Clock = time.perf_counter,
        leader_election: bool | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
    ) -> None:
        validate_loader(loader)
        lease = lease_for(cache, name, leader_election=leader_election, lease_ttl=lease_ttl)
        self._core: WarmerCore[K] = WarmerCore(
            keys, interval=interval, ttl=ttl, name=name, clock=clock, mode="async", lease=lease
        )
        self._concurrency = validate_positive_int(concurrency, "concurrency")
        self._cache = cache
        self._loader = loader
        self._run_immediately = run_immediately
        self._task: asyncio.Task[None] | None = None
        self._ending: asyncio.Task[None] | None = None  # the task a stop() ended
        self._stop_lease: asyncio.Event | None = None  # set by stop(): the lease task ends
        self._run_lock: asyncio.Lock | None = None

    @property
    def name(self) -> str:
        return self._core.name

    @property
    def task_name(self) -> str:
        """The name of the warmer's scheduler task (workers add ``-<n>``, the lease task ``-lease``)."""
        return self._core.label

    @property
    def leader_election(self) -> bool:
        """Whether this warmer holds a lease, so it warms in one process only."""
        return self._core.lease is not None

    @property
    def running(self) -> bool:
        """True from :meth:`start` until :meth:`stop`."""
        return self._task is not None and not self._task.done()

    def stats(self) -> WarmerStats:
        """The counters as of the last finished run."""
        return self._core.stats()

    def start(self) -> None:
        """Create the scheduler task on the running loop; a no-op if it is running.

        Raises:
            RuntimeError: no event loop is running in this thread.
        """
        if self.running:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "AsyncWarmer.start() needs a running event loop (call it from async code)"
            ) from None
        if self._core.lease is None:
            self._task = loop.create_task(self._serve(), name=self.task_name)
        else:
            self._stop_lease = stop = asyncio.Event()
            self._task = loop.create_task(self._lead(self._ending, stop), name=f"{self.task_name}-lease")
        self._core.scheduled = True

    async def stop(self) -> None:
        """Cancel the scheduler task (and its workers) and wait until they are gone.

        With a lease, the lease task is asked to end rather than cancelled: it cancels
        the scheduler, then releases the lease, and a cancellation must not cut that short.
        """
        task, self._task = self._task, None
        stop_lease, self._stop_lease = self._stop_lease, None
        self._core.scheduled = False
        if task is None or task.done():
            return
        self._ending = task
        if stop_lease is None:
            task.cancel()
        else:
            stop_lease.set()
        if _serving.get() is self:
            # Called by a loader in our own run: awaiting the scheduler from its own task (or from
            # a worker it awaits) would never end. The cancellation ends the run instead.
            return
        # If stop() itself is cancelled, that passes on (the task still ends on its own).
        if stop_lease is None:
            await _cancel_and_wait(task)
        else:
            await asyncio.wait([task])

    async def run_once(self) -> WarmerStats:
        """Warm every key now, in the calling task; waits for a run in progress first.

        It warms whether or not this process leads: the lease gates the schedule, not this call.
        """
        async with self._lock():
            return await self._warm(gated=False)

    async def __aenter__(self) -> AsyncWarmer[K, V]:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _lock(self) -> asyncio.Lock:
        # Created on first use, so that constructing a warmer needs no loop.
        if self._run_lock is None:
            self._run_lock = asyncio.Lock()
        return self._run_lock

    async def _lead(self, previous: asyncio.Task[None] | None, stop: asyncio.Event) -> None:
        _serving.set(self)  # copied into the scheduler's context: see stop()
        core, lease_core = self._core, self._core.lease
        assert lease_core is not None
        if previous is not None and not previous.done() and previous.get_loop() is asyncio.get_running_loop():
            await asyncio.wait([previous])  # a stop() from a loader: it releases the lease we share first
        lease = AsyncLease(lease_core, redis_connector(self._cache))
        runs: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                try:
                    await lease.tick()
                    if not lease_core.leading and runs is not None:
                        await _cancel_and_wait(runs)
                        runs = None
                    elif lease_core.leading and runs is None:
                        # A new term: a new scheduler, which runs at once (or one interval later).
                        runs = asyncio.get_running_loop().create_task(self._serve(), name=self.task_name)
                except Exception:  # not expected (the core counts Redis errors); the task must not die
                    logger.exception("cache warmer %r: lease tick failed", core.name)
                await _wait(stop, lease_core.renew_interval)
        finally:
            if runs is not None:
                await _cancel_and_wait(runs)  # released only once this process has stopped warming
            try:
                await lease.release()
            finally:
                await lease.aclose()

    async def _serve(self) -> None:
        _serving.set(self)  # copied into the workers' contexts: see stop()
        core, lock = self._core, self._lock()
        delay = 0.0 if self._run_immediately else core.interval
        while True:
            await asyncio.sleep(delay)
            delay = core.interval
            # A scheduled run that finds a run_once() in progress is skipped: its keys are being warmed.
            # So is one in a term that ran out (the lease task, held up, has not cancelled this one yet).
            if lock.locked() or not core.may_warm():
                continue
            try:
                async with lock:
                    delay = core.next_delay((await self._warm(gated=True)).last_run_duration_s)
            except Exception:  # not expected (the core catches per key); the task must not die
                logger.exception("cache warmer %r: run failed", core.name)

    async def _warm(self, *, gated: bool) -> WarmerStats:
        core = self._core
        run = core.begin()
        keys = core.keys_to_warm(run)
        workers = min(self._concurrency, len(keys))
        pending = iter(keys)  # shared: each key is taken by exactly one worker
        try:
            if workers == 1:
                await self._work(run, pending, gated)
            elif workers > 1:
                async with asyncio.TaskGroup() as group:
                    for n in range(workers):
                        group.create_task(self._work(run, pending, gated), name=f"{self.task_name}-{n}")
        finally:
            # A run cut short by stop() still counts what it warmed.
            stats = core.finish(run)
        return stats

    async def _work(self, run: WarmRun, pending: Iterator[K], gated: bool) -> None:
        core, cache, loader, ttl = self._core, self._cache, self._loader, self._core.ttl
        for key in pending:
            if gated and not core.may_warm():
                return  # the term ran out mid-run; the lease task cancels the scheduler next
            try:
                value = loader(key)
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                core.failed(run, key, exc, "load")
                continue
            try:
                accepted = await cache.aput(key, value, ttl)
            except Exception as exc:
                core.failed(run, key, exc, "store")
                continue
            core.stored(run, accepted)


async def _cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it is done, cancelling it again while it runs.

    One cancel is not always enough: a cancellation that arrives just as a timeout inside
    the task fires (``asyncio.timeout`` around a redis.asyncio read, in Python 3.11) can
    come out as a ``TimeoutError``, which the task then counts as a failed command and
    goes on. Not ``await task``: its ``CancelledError`` is not ours to raise.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait until ``event`` is set or ``seconds`` have passed, whichever is first."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait([waiter], timeout=seconds)
    finally:
        waiter.cancel()
