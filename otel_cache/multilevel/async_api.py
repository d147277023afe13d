"""The async API of :class:`~otel_cache.MultiLevelCache`: drives the flows with ``redis.asyncio``.

Imports no threading (an import-linter contract): the L1 lock it shares with
threads lives in :mod:`otel_cache.l1`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from contextlib import nullcontext
from typing import Any, TypeVar, cast

from otel_cache.backends.protocol import AsyncBackend
from otel_cache.core.fail_safe import FailSafe
from otel_cache.core.load_options import LoadOptions
from otel_cache.core.tags import tag_names
from otel_cache.core.tiers import MISSING
from otel_cache.core.ttl import validate_ttl
from otel_cache.errors import BackendError, LoadTimeoutError
from otel_cache.multilevel.channel_task import ChannelTasks
from otel_cache.multilevel.refresh_run import RefreshRun
from otel_cache.multilevel.shared import MultiLevelStats, SharedState, mark_hit
from otel_cache.multilevel.steps import Flow, L1Step, L2Step, Load, Step
from otel_cache.telemetry import hooks

__all__ = ["AsyncAPI"]

log = logging.getLogger("otel_cache")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")
T = TypeVar("T")


class AsyncAPI(SharedState[K, V]):
    """The async twins: ``aget``, ``aput``, ``adelete``, ``aget_many``, ``aput_many``,
    ``aget_or_set``, ``aclear``, ``astats``, ``aclose``."""

    _async_backend: AsyncBackend | None
    _async_backend_loop: asyncio.AbstractEventLoop | None

    async def aget(self, key: K, default: D | None = None) -> V | D | None:
        """Async ``get``: L1, then L2 through ``redis.asyncio``."""
        value = await self.l1.aget(key, MISSING)
        if value is not MISSING:
            return value
        return cast("V | D | None", await self._adrive(self.flows.get_l2(key, default)))

    async def aput(self, key: K, value: V, ttl: float | None = None, *, tags: Iterable[str] = ()) -> bool:
        """Async ``put``."""
        return await self._adrive(self.flows.put(key, value, ttl, tags=tag_names(tags)))

    async def adelete(self, key: K) -> bool:
        """Async ``delete``."""
        return await self._adrive(self.flows.delete(key))

    async def aget_many(self, keys: Iterable[K]) -> dict[K, V]:
        """Async ``get_many``."""
        return cast("dict[K, V]", await self._adrive(self.flows.get_many(keys)))

    async def aput_many(
        self,
        items: Mapping[K, V] | Iterable[tuple[K, V]],
        ttl: float | None = None,
        *,
        tags: Iterable[str] = (),
    ) -> int:
        """Async ``put_many``."""
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        return await self._adrive(self.flows.put_many(pairs, ttl, tags=tag_names(tags)))

    async def aget_or_set(
        self,
        key: K,
        loader: Callable[[], Awaitable[V]] | Callable[[], V],
        ttl: float | None = None,
        *,
        tags: Iterable[str] = (),
        condition: Callable[[V], bool] | None = None,
        refresh_ahead: float | None = None,
        fail_safe: FailSafe | None = None,
        soft_timeout: float | None = None,
        hard_timeout: float | None = None,
    ) -> V:
        """Async ``get_or_set``; ``loader`` may be a coroutine function or a plain function.
        A refresh ahead of expiry is a task on the running loop."""
        validate_ttl(ttl)  # before the loader runs: its value would be lost
        options = LoadOptions.of(
            condition=condition,
            refresh_ahead=refresh_ahead,
            fail_safe=fail_safe,
            soft_timeout=soft_timeout,
            hard_timeout=hard_timeout,
        )
        names = tag_names(tags)
        value = await self.l1.aget(key, MISSING)
        if value is MISSING:
            handler = hooks.current()
            waiting = None if handler is None else lambda: handler.load_wait(self, key)

            # The flight covers the Redis read too: N cold callers make one GET and one load.
            async def lead() -> Any:
                return await self._adrive(self.flows.get_or_load(key, loader, ttl, names, options))

            try:
                value = await self.async_flights.run(key, lead, waiting, options.hard_timeout)
            except LoadTimeoutError as exc:
                if exc.kind == "waiter":
                    self.flows.timed_out("waiter")
                raise
        if (
            options.refresh_ahead is not None
            and self.flows.refresh.take_due(key, self.tiers.now())
            and not self._closed
        ):
            task = asyncio.get_running_loop().create_task(self._arefresh(key, loader, ttl, names, options))
            self._refresh_tasks.add(task)
            task.add_done_callback(self._refresh_tasks.discard)
        return cast(V, value)

    async def _arefresh(
        self,
        key: K,
        loader: Callable[[], Any],
        ttl: float | None,
        names: tuple[str, ...],
        options: LoadOptions,
    ) -> None:
        """One refresh ahead of expiry (:class:`~otel_cache.multilevel.refresh_run.RefreshRun`)."""
        run = RefreshRun(self.async_flights.table, self.flows.refresh, self.name, key)
        if not run.begin():
            return
        try:
            value = await self._adrive(self.flows.load(key, loader, ttl, names, options))
        except Exception as exc:
            run.failed(exc)
            return
        except BaseException:  # cancelled by aclose(): waiters lead instead
            run.gone()
            raise
        run.succeeded(value)

    async def ainvalidate_tags(self, tags: Iterable[str]) -> int:
        """Async ``invalidate_tags``."""
        return await self._adrive(self.flows.invalidate_tags(tag_names(tags)))

    async def aclear(self) -> int:
        """Async ``clear``."""
        return await self._adrive(self.flows.clear())

    async def astats(self) -> MultiLevelStats:
        """Async ``stats``."""
        return self.stats()  # type: ignore[attr-defined, no-any-return]

    async def aclose(self) -> None:
        """Stop the invalidation listener and the refreshes, close both Redis clients and L1;
        closing twice is harmless."""
        loop = asyncio.get_running_loop()
        refreshes = [task for task in self._refresh_tasks if task.get_loop() is loop]
        for task in refreshes:
            task.cancel()
        await asyncio.gather(*refreshes, return_exceptions=True)
        with self._channel_lock:
            channel, self._channel = self._channel, None
        if isinstance(channel, ChannelTasks) and channel.loop is asyncio.get_running_loop():
            await channel.stop()
        elif channel is not None:
            if isinstance(channel, ChannelTasks):
                channel.cancel()  # its loop is not this one
            else:
                await asyncio.to_thread(channel.stop)  # threads: joined off the loop
        backend, self._async_backend = self._async_backend, None
        if backend is not None and self._async_backend_loop is asyncio.get_running_loop():
            with contextlib.suppress(BackendError):
                await backend.aclose()
        self.close()  # type: ignore[attr-defined]

    async def __aenter__(self) -> AsyncAPI[K, V]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _adrive(self, flow: Flow[T]) -> T:
        channel = self._channel
        if (channel is None or not channel.running) and self.tiers.coherence is not None and not self._closed:
            await self._aopen_channel()
        return await self._arun(flow)

    async def _arun(self, flow: Flow[T]) -> T:
        try:
            step = next(flow)
            while True:
                try:
                    result = await self._astep(step)
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
            flow.close()  # on cancellation too: the flow's bookkeeping runs now

    async def _astep(self, step: Step[Any]) -> Any:
        if isinstance(step, L1Step):
            return await step.arun(self.l1)  # waits for the L1 lock without blocking the loop
        if isinstance(step, L2Step):
            backend = self._backend_for_loop()
            handler = hooks.current()
            if handler is None:
                return await step.arun(backend)
            key = step.routed_key()
            with handler.l2_call(self, step.op, None if key is None else self.tiers.route(key)) as span:
                result = await step.arun(backend)
                mark_hit(span, step.op, result)
                return result
        if isinstance(step, Load):
            return await self._aload(step)
        raise TypeError(f"not a step of a flow: {step!r}")

    async def _aload(self, step: Load) -> Any:
        flights, handler = self.async_flights, hooks.current()
        flights.loads += 1

        async def run() -> Any:
            with handler.load(self, step.key) if handler is not None else nullcontext():
                loaded = step.loader()
                return await loaded if inspect.isawaitable(loaded) else loaded

        if step.timeout is None:
            try:
                return await run()
            except Exception:
                flights.failures += 1
                raise
        # A task of its own, shielded: past the timeout (or if this caller is cancelled) it
        # goes on, and its value is stored when it ends. A plain function's loader runs on the
        # loop: the timeout bounds what it awaits, not what it blocks.
        task = asyncio.get_running_loop().create_task(run())
        try:
            return await asyncio.wait_for(asyncio.shield(task), step.timeout)
        except TimeoutError:
            task.add_done_callback(lambda done: self._alate(step, done))
            raise LoadTimeoutError(
                f"the load of a key of {self.name} took more than {step.timeout} s"
            ) from None
        except asyncio.CancelledError:
            if not task.done():
                task.add_done_callback(lambda done: self._alate(step, done))
            raise
        except Exception:
            flights.failures += 1
            raise

    def _alate(self, step: Load, done: asyncio.Task[Any]) -> None:
        """A load whose caller stopped waiting ended: store its value (a task of its loop)."""
        if done.cancelled():
            return
        if done.exception() is not None:
            self.async_flights.failures += 1
            return
        if step.late is None or self._closed:
            return
        store = done.get_loop().create_task(self._alate_store(step.late(done.result())))
        self._refresh_tasks.add(store)
        store.add_done_callback(self._refresh_tasks.discard)

    async def _alate_store(self, flow: Flow[Any]) -> None:
        try:
            await self._adrive(flow)
        except Exception as exc:  # a closed cache, a refused value: nothing to give anyone
            log.warning("storing a late load of a key of %s failed: %r", self.name, exc)

    async def _aopen_channel(self) -> None:
        """Start listening for other processes' writes (tasks on this loop), and wait for the
        subscription: until it is up, L1 takes no copies. Waits at most the connect timeout."""
        with self._channel_lock:  # a thread may be opening one too: one channel per cache
            channel = self._channel
            if self._closed:
                return
            if channel is None or not channel.running:
                channel = self._channel = ChannelTasks(
                    self, self.config, self._redis(), self.tiers, self.l1, self.flows, self._arun
                )
                channel.start()
        if isinstance(channel, ChannelTasks):
            await channel.wait_up(self.config.redis_connect_timeout)

    def _backend_for_loop(self) -> AsyncBackend:
        # redis.asyncio connections belong to one event loop.
        loop = asyncio.get_running_loop()
        backend = self._async_backend
        if backend is None or self._async_backend_loop is not loop:
            from otel_cache.backends.redis_async import AsyncRedisBackend

            backend = self._async_backend = AsyncRedisBackend(self._redis())
            self.tiers.route = backend.node_of  # each cluster node: a breaker
            self._async_backend_loop = loop
        return backend
