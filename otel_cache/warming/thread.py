"""``ThreadWarmer``: the warmer as one daemon thread, for sync code.

    warmer = ThreadWarmer(cache, load_user, ["alice", "bob"], interval=60, ttl=120)
    warmer.start()        # thread "otel-cache-warmer-warmer"; first run at once
    ...
    warmer.stop()         # wakes the thread, joins it; no thread is left

The thread sleeps in ``threading.Event.wait`` so :meth:`ThreadWarmer.stop` wakes it at
once whatever the interval; a run in progress stops after the key it is loading.
What is warmed, counted and logged is decided by :class:`~otel_cache.warming.core.WarmerCore`.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

from otel_cache.core.lru import Clock
from otel_cache.errors import CacheConfigError
from otel_cache.warming.core import KeySource, PutCache, WarmerCore, WarmerStats, logger, validate_loader

__all__ = ["ThreadWarmer"]

K = TypeVar("K")
V = TypeVar("V")


class ThreadWarmer(Generic[K, V]):
    """Calls ``loader(key)`` for every key and ``cache.put(key, value, ttl)``, every ``interval`` s.

    Args:
        cache: the cache to fill (anything with ``put(key, value, ttl)``).
        loader: a plain function returning the value of a key; an exception fails that key only.
        keys: the keys to warm, or a callable returning them at every run.
        interval: seconds from the start of one run to the start of the next.
        ttl: TTL of the warmed entries (``None``: the cache's default).
        name: the warmer's name; the thread is ``otel-cache-warmer-<name>``.
        run_immediately: run at start rather than one interval later.
        clock: seconds, for run durations and the schedule.

    Raises:
        CacheConfigError: an invalid argument, or an ``async def`` loader (use ``AsyncWarmer``).
    """

    def __init__(
        self,
        cache: PutCache[K, V],
        loader: Callable[[K], V],
        keys: KeySource[K],
        *,
        interval: float,
        ttl: float | None = None,
        name: str = "warmer",
        run_immediately: bool = True,
        clock: Clock = time.perf_counter,
    ) -> None:
        validate_loader(loader)
        if inspect.iscoroutinefunction(loader):
            raise CacheConfigError("ThreadWarmer needs a plain function as loader; use AsyncWarmer")
        self._core: WarmerCore[K] = WarmerCore(
            keys, interval=interval, ttl=ttl, name=name, clock=clock, mode="sync"
        )
        self._cache = cache
        self._loader = loader
        self._run_immediately = run_immediately
        self._run_lock = threading.Lock()  # one run at a time: WarmerCore.finish is a read-modify-write
        self._state_lock = threading.Lock()  # start/stop from any thread
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()

    @property
    def name(self) -> str:
        return self._core.name

    @property
    def thread_name(self) -> str:
        """The name of the warmer's thread."""
        return self._core.label

    @property
    def running(self) -> bool:
        """True from :meth:`start` until :meth:`stop` (or while a timed-out stop's thread ends)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def stats(self) -> WarmerStats:
        """The counters as of the last finished run."""
        return self._core.stats()

    def start(self) -> None:
        """Start the thread; a no-op if it is running."""
        with self._state_lock:
            if self._thread is not None and self._thread.is_alive() and not self._stop_event.is_set():
                return
            # A fresh event per thread: a thread still finishing a timed-out stop keeps its own.
            self._stop_event = stop_event = threading.Event()
            self._thread = thread = threading.Thread(
                target=self._serve, args=(stop_event,), name=self.thread_name, daemon=True
            )
            thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the thread and join it; a no-op if it is not running.

        Returns False if the thread is still busy in a loader or a put after ``timeout``
        seconds; it ends after that call (it is a daemon, so it never holds up exit).
        """
        with self._state_lock:
            thread = self._thread
            self._stop_event.set()
        if thread is None:
            return True
        if thread is threading.current_thread():
            return False  # stop() from inside a loader: the thread ends when the loader returns
        # Joined outside the state lock, so a loader that calls start() or stop() cannot deadlock.
        thread.join(timeout)
        if thread.is_alive():
            return False
        with self._state_lock:
            if self._thread is thread:
                self._thread = None
        return True

    def run_once(self) -> WarmerStats:
        """Warm every key now, in the calling thread; waits for a run in progress first.

        The run ends with the last key even if :meth:`stop` is called meanwhile.
        """
        with self._run_lock:
            return self._warm(None)

    def __enter__(self) -> ThreadWarmer[K, V]:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _serve(self, stop: threading.Event) -> None:
        core, run_lock = self._core, self._run_lock
        delay = 0.0 if self._run_immediately else core.interval
        while not stop.wait(delay):
            delay = core.interval
            # A scheduled run that finds a run_once() in progress is skipped: its keys are being
            # warmed, and never blocking here keeps stop() prompt.
            if not run_lock.acquire(blocking=False):
                continue
            try:
                delay = core.next_delay(self._warm(stop).last_run_duration_s)
            except Exception:  # not expected (the core catches per key); the thread must not die
                logger.exception("cache warmer %r: run failed", core.name)
            finally:
                run_lock.release()

    def _warm(self, stop: threading.Event | None) -> WarmerStats:
        core, cache, loader, ttl = self._core, self._cache, self._loader, self._core.ttl
        run = core.begin()
        for key in core.keys_to_warm(run):
            if stop is not None and stop.is_set():
                break
            try:
                value = loader(key)
            except Exception as exc:
                core.failed(run, key, exc, "load")
                continue
            try:
                accepted = cache.put(key, value, ttl)
            except Exception as exc:
                core.failed(run, key, exc, "store")
                continue
            core.stored(run, accepted)
        return core.finish(run)
