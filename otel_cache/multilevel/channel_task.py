"""The invalidation channel of a cache used from coroutines: a listener and a publisher task.

The same loops as :mod:`otel_cache.multilevel.channel_thread` (see its diagram), as
two tasks on the event loop of the cache's first async use of Redis, cancelled by
``aclose()``. A write from a thread wakes the publisher with
``call_soon_threadsafe``, once per batch. Imports no threading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation

from otel_cache.backends.redis_channel_async import AsyncRedisChannel
from otel_cache.backends.redis_connect import RedisConnector
from otel_cache.config import CacheConfig
from otel_cache.core.tiers import TierCore
from otel_cache.errors import BackendError, CacheError
from otel_cache.l1.cache import AsyncLRUCache
from otel_cache.multilevel.channel_apply import apply_message, lose_channel
from otel_cache.multilevel.channel_thread import HEARTBEAT_S, REPAIR_S, STALL_S
from otel_cache.multilevel.flows import Flow, Flows

__all__ = ["ChannelTasks"]

log = logging.getLogger("otel_cache")

_BACKOFF_S = (0.05, 1.0)


class ChannelTasks:
    """Listener and publisher tasks for one cache, on one event loop."""

    def __init__(
        self,
        owner: object,
        config: CacheConfig,
        connector: RedisConnector,
        tiers: TierCore,
        l1: AsyncLRUCache[Any, Any],
        flows: Flows,
        drive: Callable[[Flow[int]], Awaitable[int]],
    ) -> None:
        self._owner, self._config, self._tiers, self._l1 = owner, config, tiers, l1
        self._flows, self._drive = flows, drive
        self._connector = connector
        self._up = asyncio.Event()
        self._kick = asyncio.Event()
        self._kicked = False
        self._stopping = False  # also checked in the loops: redis-py may turn a cancel into an error
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def start(self) -> None:
        """Start both tasks on the running loop."""
        assert self._tiers.coherence is not None
        self._loop = loop = asyncio.get_running_loop()
        self._tiers.coherence.wake = self._wake
        name = self._config.name
        self._tasks = [
            loop.create_task(self._listen(), name=f"otel-cache-listener:{name}"),
            loop.create_task(self._publish(), name=f"otel-cache-publisher:{name}"),
        ]

    async def wait_up(self, seconds: float) -> bool:
        if not self._up.is_set():
            waiter = asyncio.ensure_future(self._up.wait())
            try:
                await asyncio.wait([waiter], timeout=seconds)
            finally:
                waiter.cancel()
        return self._up.is_set()

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self._tasks)

    async def stop(self) -> None:
        """Cancel both tasks and wait for them (on their loop)."""
        self._stopping = True
        self._kick.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._detach()

    def cancel(self) -> None:
        """Cancel both tasks without waiting (from any thread, or after the loop stopped)."""
        self._stopping = True
        loop = self._loop
        for task in self._tasks:
            if loop is None or loop.is_closed():
                break
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        self._detach()

    def _detach(self) -> None:
        coherence = self._tiers.coherence
        if coherence is not None and coherence.wake == self._wake:
            coherence.wake = None

    def _wake(self) -> None:
        if self._kicked:
            return
        self._kicked = True
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody publishes
                loop.call_soon_threadsafe(self._kick.set)

    async def _listen(self) -> None:
        backoff = _BACKOFF_S[0]
        while not self._stopping:
            channel = AsyncRedisChannel(self._connector, self._config.namespace)
            try:
                await channel.subscribe()
                assert self._tiers.coherence is not None
                self._tiers.coherence.channel_up()
                self._up.set()
                self._kick.set()  # repairs and unsent messages may wait for Redis
                backoff = _BACKOFF_S[0]
                while not self._stopping:
                    data = await channel.receive(HEARTBEAT_S)
                    if data is not None:
                        apply_message(self._owner, self._tiers, self._l1, data)
                        continue
                    silent = time.monotonic() - channel.heard_at
                    if silent > STALL_S:
                        break
                    if silent > HEARTBEAT_S:
                        await channel.ping()
            except Exception as exc:  # a listener never dies: lost, resubscribe
                if not isinstance(exc, BackendError):
                    log.warning("invalidation listener of %s: %r; resubscribing", self._config.name, exc)
            finally:
                self._up.clear()
                with contextlib.suppress(CacheError):  # closed meanwhile: nothing left to flush
                    lose_channel(self._tiers, self._l1)
                await asyncio.shield(channel.aclose())
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_S[1])

    async def _publish(self) -> None:
        coherence = self._tiers.coherence
        assert coherence is not None
        channel = AsyncRedisChannel(self._connector, self._config.namespace)
        try:
            while not self._stopping:
                if not self._kick.is_set():
                    # No asyncio.timeout here: on 3.11 it can swallow a cancel that lands as it expires.
                    if coherence.has_pending() or self._tiers.has_unsynced():
                        await asyncio.sleep(REPAIR_S)  # retry what Redis refused
                    else:
                        await self._kick.wait()
                self._kicked = False
                self._kick.clear()
                if self._tiers.has_unsynced() and not self._stopping:
                    with contextlib.suppress(CacheError), suppress_instrumentation():  # plumbing: no spans
                        while await self._drive(self._flows.repair()):
                            pass
                while coherence.has_pending() and not self._stopping:
                    delay = coherence.send_delay(time.monotonic())
                    if delay:
                        await asyncio.sleep(delay)  # writes meanwhile join this message
                    if (message := coherence.take_batch(time.time())) is None:
                        break
                    try:
                        await channel.publish(message.encode())
                    except BackendError:
                        coherence.unsent(message)
                        break
                    coherence.sent(message, time.monotonic())
        finally:
            await asyncio.shield(channel.aclose())
