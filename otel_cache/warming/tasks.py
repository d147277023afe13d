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
        run_immediately: run at start rather than one interval later.
        concurrency: most keys loaded at once.
        clock: seconds, for run durations and the schedule.

    Raises:
        CacheConfigError: an invalid argument.
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
    ) -> None:
        validate_loader(loader)
        self._core: WarmerCore[K] = WarmerCore(
            keys, interval=interval, ttl=ttl, name=name, clock=clock, mode="async"
        )
        self._concurrency = validate_positive_int(concurrency, "concurrency")
        self._cache = cache
        self._loader = loader
        self._run_immediately = run_immediately
        self._task: asyncio.Task[None] | None = None
        self._run_lock: asyncio.Lock | None = None

    @property
    def name(self) -> str:
        return self._core.name

    @property
    def task_name(self) -> str:
        """The name of the warmer's scheduler task (workers add ``-<n>``)."""
        return self._core.label

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
        self._task = loop.create_task(self._serve(), name=self.task_name)

    async def stop(self) -> None:
        """Cancel the scheduler task (and its workers) and wait until they are gone."""
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        if _serving.get() is self:
            # Called by a loader in our own run: awaiting the scheduler from its own task (or from
            # a worker it awaits) would never end. The cancellation ends the run instead.
            return
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # stop() itself was cancelled: pass it on

    async def run_once(self) -> WarmerStats:
        """Warm every key now, in the calling task; waits for a run in progress first."""
        async with self._lock():
            return await self._warm()

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

    async def _serve(self) -> None:
        _serving.set(self)  # copied into the workers' contexts: see stop()
        core, lock = self._core, self._lock()
        delay = 0.0 if self._run_immediately else core.interval
        while True:
            await asyncio.sleep(delay)
            delay = core.interval
            # A scheduled run that finds a run_once() in progress is skipped: its keys are being warmed.
            if lock.locked():
                continue
            try:
                async with lock:
                    delay = core.next_delay((await self._warm()).last_run_duration_s)
            except Exception:  # not expected (the core catches per key); the task must not die
                logger.exception("cache warmer %r: run failed", core.name)

    async def _warm(self) -> WarmerStats:
        core = self._core
        run = core.begin()
        keys = core.keys_to_warm(run)
        workers = min(self._concurrency, len(keys))
        pending = iter(keys)  # shared: each key is taken by exactly one worker
        try:
            if workers == 1:
                await self._work(run, pending)
            elif workers > 1:
                async with asyncio.TaskGroup() as group:
                    for n in range(workers):
                        group.create_task(self._work(run, pending), name=f"{self.task_name}-{n}")
        finally:
            # A run cut short by stop() still counts what it warmed.
            stats = core.finish(run)
        return stats

    async def _work(self, run: WarmRun, pending: Iterator[K]) -> None:
        core, cache, loader, ttl = self._core, self._cache, self._loader, self._core.ttl
        for key in pending:
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
