"""``ThreadWarmer``: the warmer as one daemon thread, for sync code.

    warmer = ThreadWarmer(cache, load_user, ["alice", "bob"], interval=60, ttl=120)
    warmer.start()        # thread "otel-cache-warmer-warmer"; first run at once
    ...
    warmer.stop()         # wakes the thread, joins it; no thread is left

The thread sleeps in ``threading.Event.wait`` so :meth:`ThreadWarmer.stop` wakes it at
once whatever the interval; a run in progress stops after the key it is loading.
What is warmed, counted and logged is decided by :class:`~otel_cache.warming.core.WarmerCore`.

With a leadership lease (a cache with Redis; see :mod:`otel_cache.warming.lease`) the
warmer is two daemon threads::

    otel-cache-warmer-<name>-lease     every lease_ttl/3: acquire or renew (redis-py, sync)
      |  starts, while this process leads:
      +-- otel-cache-warmer-<name>     the runs, as without a lease; one per term
    lost the lease -> the run thread ends after its current key
    stop()         -> the run thread ends, then the lease is released

The lease thread is separate so that a slow loader never delays a renewal.
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
from otel_cache.warming.lease import DEFAULT_LEASE_TTL, lease_for
from otel_cache.warming.lease_sync import SyncLease, redis_connector

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
        run_immediately: run at start (with a lease: on becoming leader) rather than one
            interval later.
        clock: seconds, for run durations and the schedule.
        leader_election: warm in one process of those sharing the cache's Redis and
            namespace (a lease in Redis): ``None`` (default) when the cache has Redis
            configured, ``True`` always (an error without Redis), ``False`` never.
        lease_ttl: seconds the lease outlives its holder; renewed every third of it.

    Raises:
        CacheConfigError: an invalid argument, an ``async def`` loader (use ``AsyncWarmer``),
            or ``leader_election=True`` for a cache without Redis.
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
        leader_election: bool | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
    ) -> None:
        validate_loader(loader)
        if inspect.iscoroutinefunction(loader):
            raise CacheConfigError("ThreadWarmer needs a plain function as loader; use AsyncWarmer")
        lease = lease_for(cache, name, leader_election=leader_election, lease_ttl=lease_ttl)
        self._core: WarmerCore[K] = WarmerCore(
            keys, interval=interval, ttl=ttl, name=name, clock=clock, mode="sync", lease=lease
        )
        self._cache = cache
        self._loader = loader
        self._run_immediately = run_immediately
        self._run_lock = threading.Lock()  # one run at a time: WarmerCore.finish is a read-modify-write
        self._state_lock = threading.Lock()  # start/stop from any thread
        self._thread: threading.Thread | None = None  # the lease thread, with a lease
        self._runner: threading.Thread | None = None  # the lease thread's current run thread
        self._stop_event = threading.Event()

    @property
    def name(self) -> str:
        return self._core.name

    @property
    def thread_name(self) -> str:
        """The name of the warmer's (run) thread; the lease thread adds ``-lease``."""
        return self._core.label

    @property
    def leader_election(self) -> bool:
        """Whether this warmer holds a lease, so it warms in one process only."""
        return self._core.lease is not None

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
            previous = self._thread
            if self._core.lease is None:
                thread = threading.Thread(
                    target=self._serve, args=(stop_event,), name=self.thread_name, daemon=True
                )
            else:
                thread = threading.Thread(
                    target=self._lead,
                    args=(stop_event, previous),
                    name=f"{self.thread_name}-lease",
                    daemon=True,
                )
            self._thread = thread
            self._core.scheduled = True
            thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the thread and join it; a no-op if it is not running.

        Returns False if the thread is still busy in a loader or a put after ``timeout``
        seconds; it ends after that call (it is a daemon, so it never holds up exit).
        """
        with self._state_lock:
            thread = self._thread
            self._stop_event.set()
            self._core.scheduled = False
        if thread is None:
            return True
        if threading.current_thread() in (thread, self._runner):
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

        The run ends with the last key even if :meth:`stop` is called meanwhile. It warms
        whether or not this process leads: the lease gates the schedule, not this call.
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

    def _lead(self, stop: threading.Event, previous: threading.Thread | None) -> None:
        core, lease_core = self._core, self._core.lease
        assert lease_core is not None
        if previous is not None:
            previous.join()  # a timed-out stop's thread: it releases the lease we share first
        lease = SyncLease(lease_core, redis_connector(self._cache))
        runner: threading.Thread | None = None
        run_stop = threading.Event()
        try:
            while True:
                try:
                    lease.tick()
                    if runner is not None and not runner.is_alive():
                        runner = None
                    if not lease_core.leading:
                        run_stop.set()  # a run in progress ends after its current key
                    elif runner is None:
                        # A new term: a new run thread, which runs at once (or one interval later).
                        run_stop = threading.Event()
                        runner = self._runner = threading.Thread(
                            target=self._serve, args=(run_stop,), name=self.thread_name, daemon=True
                        )
                        runner.start()
                except Exception:  # not expected (the core counts Redis errors); the thread must not die
                    logger.exception("cache warmer %r: lease tick failed", core.name)
                if stop.wait(lease_core.renew_interval):
                    break
        finally:
            run_stop.set()
            if runner is not None:
                runner.join()  # released only once this process has stopped warming
            lease.release()
            lease.close()

    def _serve(self, stop: threading.Event) -> None:
        core, run_lock = self._core, self._run_lock
        delay = 0.0 if self._run_immediately else core.interval
        while not stop.wait(delay):
            delay = core.interval
            # A scheduled run that finds a run_once() in progress is skipped: its keys are being
            # warmed, and never blocking here keeps stop() prompt. So is one in a term that ran
            # out (the lease thread, held up, has not stopped this thread yet).
            if not core.may_warm() or not run_lock.acquire(blocking=False):
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
            if stop is not None and (stop.is_set() or not core.may_warm()):
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
