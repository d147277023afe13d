"""The sync API of :class:`~otel_cache.MultiLevelCache`: drives the flows with the sync Redis client."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any, TypeVar, cast

from otel_cache.backends.protocol import SyncBackend
from otel_cache.core.fail_safe import FailSafe
from otel_cache.core.load_options import LoadOptions
from otel_cache.core.tags import tag_names
from otel_cache.core.tiers import MISSING
from otel_cache.core.ttl import validate_ttl
from otel_cache.errors import BackendError, CacheClosedError, LoadTimeoutError
from otel_cache.multilevel.channel_thread import ChannelThreads
from otel_cache.multilevel.refresh_run import RefreshRun
from otel_cache.multilevel.shared import FlightStats, MultiLevelStats, SharedState, mark_hit
from otel_cache.multilevel.steps import Flow, L1Step, L2Step, Load, Step
from otel_cache.telemetry import hooks

__all__ = ["SyncAPI"]

log = logging.getLogger("otel_cache")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")
T = TypeVar("T")


class SyncAPI(SharedState[K, V]):
    """``get``, ``put``, ``delete``, ``get_many``, ``put_many``, ``get_or_set``, ``clear``, ``close``."""

    _sync_backend: SyncBackend | None
    _backend_lock: threading.Lock

    def get(self, key: K, default: D | None = None) -> V | D | None:
        """L1, then L2 (an L2 hit fills L1); ``default`` on a miss or when Redis fails."""
        value = self.l1.get(key, MISSING)
        if value is not MISSING:
            return value
        return cast("V | D | None", self._drive(self.flows.get_l2(key, default)))

    def put(self, key: K, value: V, ttl: float | None = None, *, tags: Iterable[str] = ()) -> bool:
        """Write-through to L1 and L2; ``ttl`` seconds (``None``: the default TTL); ``tags``: see
        :meth:`invalidate_tags`."""
        return self._drive(self.flows.put(key, value, ttl, tags=tag_names(tags)))

    def delete(self, key: K) -> bool:
        """Remove ``key`` from both levels; True if either held it."""
        return self._drive(self.flows.delete(key))

    def get_many(self, keys: Iterable[K]) -> dict[K, V]:
        """The keys found (L1, then one MGET for the rest); misses are left out."""
        return cast("dict[K, V]", self._drive(self.flows.get_many(keys)))

    def put_many(
        self,
        items: Mapping[K, V] | Iterable[tuple[K, V]],
        ttl: float | None = None,
        *,
        tags: Iterable[str] = (),
    ) -> int:
        """Write-through of many pairs (one pipeline); returns how many L1 took."""
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        return self._drive(self.flows.put_many(pairs, ttl, tags=tag_names(tags)))

    def get_or_set(
        self,
        key: K,
        loader: Callable[[], V],
        ttl: float | None = None,
        *,
        tags: Iterable[str] = (),
        condition: Callable[[V], bool] | None = None,
        refresh_ahead: float | None = None,
        fail_safe: FailSafe | None = None,
        soft_timeout: float | None = None,
        hard_timeout: float | None = None,
    ) -> V:
        """The cached value, or ``loader()``'s, stored (only if ``condition(value)``, when given);
        concurrent misses call ``loader`` once and all get its value.

        ``refresh_ahead`` (a share of the TTL, 0.8 for instance): the first call after that
        share of the value's TTL has passed still returns it, and starts one background
        refresh (a thread of the cache's); see :mod:`otel_cache.core.refresh`.

        ``fail_safe`` (:class:`~otel_cache.FailSafe`): the value is kept for ``max_age`` past
        its TTL, and served (for ``throttle`` seconds) when a later load raises; see
        :mod:`otel_cache.core.fail_safe`.

        ``soft_timeout``: with a fail-safe copy at hand, serve it once the load has taken this
        long. ``hard_timeout``: after this long (a wait for another caller's load too), serve
        the copy if there is one, else raise :class:`~otel_cache.errors.LoadTimeoutError`.
        A load that outlives its caller's wait goes on (in a thread of the cache's) and
        stores its value when it ends.
        """
        validate_ttl(ttl)  # before the loader runs: its value would be lost
        options = LoadOptions.of(
            condition=condition,
            refresh_ahead=refresh_ahead,
            fail_safe=fail_safe,
            soft_timeout=soft_timeout,
            hard_timeout=hard_timeout,
        )
        names = tag_names(tags)
        value = self.l1.get(key, MISSING)
        if value is MISSING:
            handler = hooks.current()
            waiting = None if handler is None else lambda: handler.load_wait(self, key)

            # The flight covers the Redis read too: N cold callers make one GET and one load.
            def lead() -> Any:
                return self._drive(self.flows.get_or_load(key, loader, ttl, names, options))

            try:
                value = self.sync_flights.run(key, lead, waiting, options.hard_timeout)
            except LoadTimeoutError as exc:
                if exc.kind == "waiter":
                    self.flows.timed_out("waiter")
                raise
        if options.refresh_ahead is not None and self.flows.refresh.take_due(key, self.tiers.now()):
            self._start_refresh(key, loader, ttl, names, options)
        return cast(V, value)

    def _start_refresh(
        self,
        key: K,
        loader: Callable[[], Any],
        ttl: float | None,
        names: tuple[str, ...],
        options: LoadOptions,
    ) -> None:
        with self._backend_lock:
            if self._closed:
                return
            pool = self._refresh_pool
            if pool is None:
                pool = self._refresh_pool = ThreadPoolExecutor(
                    max_workers=2, thread_name_prefix=f"otel-cache-refresh-{self.name}"
                )
        pool.submit(self._refresh, key, loader, ttl, names, options)

    def _refresh(
        self,
        key: K,
        loader: Callable[[], Any],
        ttl: float | None,
        names: tuple[str, ...],
        options: LoadOptions,
    ) -> None:
        """One refresh ahead of expiry (:class:`~otel_cache.multilevel.refresh_run.RefreshRun`)."""
        run = RefreshRun(self.sync_flights.table, self.flows.refresh, self.name, key)
        if not run.begin():
            return
        try:
            value = self._drive(self.flows.load(key, loader, ttl, names, options))
        except Exception as exc:
            run.failed(exc)
            return
        except BaseException:
            run.gone()
            raise
        run.succeeded(value)

    def invalidate_tags(self, tags: Iterable[str]) -> int:
        """Remove every entry put with one of ``tags`` from L1, from Redis and from the L1 of
        every other process on the same Redis and namespace; returns how many keys it found."""
        return self._drive(self.flows.invalidate_tags(tag_names(tags)))

    def clear(self) -> int:
        """Empty L1 and this cache's namespace in L2; returns the L2 keys removed."""
        return self._drive(self.flows.clear())

    def stats(self) -> MultiLevelStats:
        """A snapshot of L1, L2 and single-flight counters."""
        return MultiLevelStats(
            name=self.name,
            mode=self.mode,
            l1=self.l1.stats(),
            l2=self.tiers.stats(),
            sync_flights=_flight_stats(self.sync_flights),
            async_flights=_flight_stats(self.async_flights),
            refresh=self.flows.refresh.stats(),
        )

    def close(self) -> None:
        """Close the sync Redis client and L1; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        with self._channel_lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            if isinstance(channel, ChannelThreads):
                channel.stop()
            else:
                channel.cancel()  # tasks on a loop: cancelled, not awaited
        with self._backend_lock:
            pools = [self._refresh_pool, self._load_pool]
            self._refresh_pool = self._load_pool = None
        for pool in pools:
            if pool is not None:  # a refresh or late load running now fails on the closed cache
                pool.shutdown(wait=False, cancel_futures=True)
        backend, self._sync_backend = self._sync_backend, None
        if backend is not None:
            with contextlib.suppress(BackendError):
                backend.close()
        self.l1.close()

    def __enter__(self) -> SyncAPI[K, V]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _drive(self, flow: Flow[T]) -> T:
        channel = self._channel
        if (channel is None or not channel.running) and self.tiers.coherence is not None and not self._closed:
            self._open_channel()
        return self._run(flow)

    def _run(self, flow: Flow[T]) -> T:
        try:
            step = next(flow)
            while True:
                try:
                    result = self._step(step)
                except Exception as exc:  # Redis's errors and the loader's go back into the flow
                    if not isinstance(exc, BackendError) and not isinstance(step, Load):
                        raise
                    step = flow.throw(exc)
                else:
                    step = flow.send(result)
        except StopIteration as stop:
            value: T = stop.value
            return value
        finally:
            flow.close()

    def _step(self, step: Step[Any]) -> Any:
        if isinstance(step, L1Step):
            return step.run(self.l1)
        if isinstance(step, L2Step):
            backend = self._backend()
            handler = hooks.current()
            if handler is None:
                return step.run(backend)
            key = step.routed_key()
            with handler.l2_call(self, step.op, None if key is None else self.tiers.route(key)) as span:
                result = step.run(backend)
                mark_hit(span, step.op, result)
                return result
        if isinstance(step, Load):
            return self._load(step)
        raise TypeError(f"not a step of a flow: {step!r}")

    def _load(self, step: Load) -> Any:
        flights, handler = self.sync_flights, hooks.current()
        flights.loads += 1
        if step.timeout is not None:
            return self._load_bounded(step, handler)
        try:
            if handler is None:
                return step.loader()
            with handler.load(self, step.key):
                return step.loader()
        except Exception:
            flights.failures += 1
            raise

    def _load_bounded(self, step: Load, handler: Any) -> Any:
        """The loader in a thread of the cache's (with the caller's context), waited for at most
        ``step.timeout``; past it, :class:`LoadTimeoutError`, and the value is stored when it comes."""
        flights = self.sync_flights

        def run() -> Any:
            with handler.load(self, step.key) if handler is not None else contextlib.nullcontext():
                return step.loader()

        with self._backend_lock:
            if self._closed:
                raise CacheClosedError("the cache is closed")
            pool = self._load_pool
            if pool is None:
                pool = self._load_pool = ThreadPoolExecutor(
                    max_workers=8, thread_name_prefix=f"otel-cache-load-{self.name}"
                )
        future = pool.submit(contextvars.copy_context().run, run)
        try:
            return future.result(timeout=step.timeout)
        except FutureTimeoutError:
            future.add_done_callback(lambda done: self._late(step, done))
            raise LoadTimeoutError(
                f"the load of a key of {self.name} took more than {step.timeout} s"
            ) from None
        except Exception:
            flights.failures += 1
            raise

    def _late(self, step: Load, done: Future[Any]) -> None:
        """A load whose caller stopped waiting ended: store its value (in the load's thread)."""
        if done.cancelled():
            return
        if done.exception() is not None:
            self.sync_flights.failures += 1
            return
        if step.late is None:
            return
        try:
            self._drive(step.late(done.result()))
        except Exception as exc:  # a closed cache, a refused value: nothing to give anyone
            log.warning("storing a late load of a key of %s failed: %r", self.name, exc)

    def _open_channel(self) -> None:
        """Start listening for other processes' writes (threads), and wait for the subscription:
        until it is up, L1 takes no copies. Waits at most the connect timeout, once."""
        with self._channel_lock:  # a coroutine may be opening one too: one channel per cache
            channel = self._channel
            if self._closed or (channel is not None and channel.running):
                return
            channel = self._channel = ChannelThreads(
                self, self.config, self._redis(), self.tiers, self.l1, self.flows, self._run
            )
            channel.start()
        channel.wait_up(self.config.redis_connect_timeout)

    def _backend(self) -> SyncBackend:
        backend = self._sync_backend
        if backend is None:
            with self._backend_lock:
                if self._sync_backend is None:
                    from otel_cache.backends.redis_sync import RedisBackend

                    self._sync_backend = RedisBackend(self._redis())
                    self.tiers.route = self._sync_backend.node_of  # each cluster node: a breaker
                backend = self._sync_backend
        return backend


def _flight_stats(flights: Any) -> FlightStats:
    return FlightStats(loads=flights.loads, coalesced=flights.coalesced, failures=flights.failures)
