"""The invalidation channel of a cache used from threads: a listener and a publisher thread.

::

    listener ── subscribe ─ up ─┬─ message ──> apply (drop L1 copies)
        ^                       ├─ silence ──> PING; no reply for STALL_S ──┐
        │                       └─ error ──────────────────────────────────┤
        └──── backoff (0.05 s doubling to 1 s) <── down: L1 emptied ───────┘

    publisher ── woken by a write (or every REPAIR_S while work is left), waits until
                 MESSAGE_GAP_S after its previous message (none after a quiet spell) ──>
                 outage repair (a flow: delete unsynced L2 copies) ─> PUBLISH batches

Both are daemon threads named after the cache, started on the cache's first use of
Redis and stopped (joined) by ``close()``. The rules are in
:mod:`otel_cache.core.coherence`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation

from otel_cache.backends.redis_channel import RedisChannel
from otel_cache.backends.redis_connect import RedisConnector
from otel_cache.config import CacheConfig
from otel_cache.core.tiers import TierCore
from otel_cache.errors import BackendError, CacheError
from otel_cache.l1.cache import AsyncLRUCache
from otel_cache.multilevel.channel_apply import apply_message, lose_channel
from otel_cache.multilevel.flows import Flow, Flows

__all__ = ["HEARTBEAT_S", "REPAIR_S", "STALL_S", "ChannelThreads"]

log = logging.getLogger("otel_cache")

HEARTBEAT_S = 1.0  # a silent subscription is pinged this often
STALL_S = 5.0  # and counted lost after this long without any reply
REPAIR_S = 0.25  # how often unfinished repairs and unsent messages are retried
_BACKOFF_S = (0.05, 1.0)


class ChannelThreads:
    """Listener and publisher threads for one cache."""

    def __init__(
        self,
        owner: object,
        config: CacheConfig,
        connector: RedisConnector,
        tiers: TierCore,
        l1: AsyncLRUCache[Any, Any],
        flows: Flows,
        drive: Callable[[Flow[int]], int],
    ) -> None:
        self._owner, self._config, self._tiers, self._l1 = owner, config, tiers, l1
        self._flows, self._drive = flows, drive
        self._connector = connector
        self._stop = threading.Event()
        self._up = threading.Event()
        self._kick = threading.Event()
        self._listening: RedisChannel | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        assert self._tiers.coherence is not None
        self._tiers.coherence.wake = self._wake
        for target, role in ((self._listen, "listener"), (self._publish, "publisher")):
            thread = threading.Thread(
                target=target, name=f"otel-cache-{role}:{self._config.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def wait_up(self, timeout: float) -> bool:
        """Wait until the channel is up (at most ``timeout`` seconds)."""
        return self._up.wait(timeout)

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads and wait for them; unsent messages are dropped."""
        self._stop.set()
        self._kick.set()
        listening = self._listening
        if listening is not None:
            listening.close()  # unblocks the listener's read
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        if self._tiers.coherence is not None:
            self._tiers.coherence.wake = None

    def _wake(self) -> None:
        if not self._kick.is_set():  # Event.set takes a lock: skip it while a wake is pending
            self._kick.set()

    def _listen(self) -> None:
        backoff = _BACKOFF_S[0]
        while not self._stop.is_set():
            channel = self._listening = RedisChannel(self._connector, self._config.namespace)
            try:
                channel.subscribe()
                assert self._tiers.coherence is not None
                self._tiers.coherence.channel_up()
                self._up.set()
                self._kick.set()  # repairs and unsent messages may wait for Redis
                backoff = _BACKOFF_S[0]
                while not self._stop.is_set():
                    data = channel.receive(HEARTBEAT_S)
                    if data is not None:
                        apply_message(self._owner, self._tiers, self._l1, data)
                        continue
                    silent = time.monotonic() - channel.heard_at
                    if silent > STALL_S:
                        break
                    if silent > HEARTBEAT_S:
                        channel.ping()
            except Exception as exc:  # a listener never dies: lost, or closed by stop()
                if not isinstance(exc, BackendError) and not self._stop.is_set():
                    log.warning("invalidation listener of %s: %r; resubscribing", self._config.name, exc)
            finally:
                self._up.clear()
                with contextlib.suppress(CacheError):  # closed meanwhile: nothing left to flush
                    lose_channel(self._tiers, self._l1)
                channel.close()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, _BACKOFF_S[1])

    def _publish(self) -> None:
        coherence = self._tiers.coherence
        assert coherence is not None
        channel = RedisChannel(self._connector, self._config.namespace)
        try:
            while not self._stop.is_set():
                busy = coherence.has_pending() or self._tiers.has_unsynced()
                self._kick.wait(REPAIR_S if busy else None)
                self._kick.clear()
                if self._tiers.has_unsynced() and not self._stop.is_set():
                    with contextlib.suppress(CacheError), suppress_instrumentation():  # plumbing: no spans
                        while self._drive(self._flows.repair()):
                            pass
                while coherence.has_pending() and not self._stop.is_set():
                    delay = coherence.send_delay(time.monotonic())
                    if delay:
                        self._stop.wait(delay)  # writes meanwhile join this message
                    if (message := coherence.take_batch(time.time())) is None:
                        break
                    try:
                        channel.publish(message.encode())
                    except BackendError:
                        coherence.unsent(message)
                        break
                    coherence.sent(message, time.monotonic())
        finally:
            channel.close()
