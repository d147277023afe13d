"""State shared by the sync and async shells of :class:`~otel_cache.MultiLevelCache`."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from otel_cache.config import CacheConfig
from otel_cache.core.refresh import RefreshStats
from otel_cache.core.stats import CacheStats
from otel_cache.core.tiers import L2Stats, TierCore
from otel_cache.l1.cache import AsyncLRUCache
from otel_cache.multilevel.flows import Flows

if TYPE_CHECKING:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from otel_cache.backends.redis_connect import RedisConnector
    from otel_cache.multilevel.channel_task import ChannelTasks
    from otel_cache.multilevel.channel_thread import ChannelThreads
    from otel_cache.multilevel.flight_async import AsyncFlights
    from otel_cache.multilevel.flight_sync import SyncFlights

__all__ = ["FlightStats", "MultiLevelStats", "SharedState", "mark_hit"]

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class FlightStats:
    """Single-flight counters: flights led, callers that waited on another's flight, loader errors.

    A leader first looks at L1 again (a flight that just ended may have stored the
    value), so ``loads`` can exceed the number of loader calls.
    """

    loads: int
    coalesced: int
    failures: int


@dataclass(frozen=True, slots=True)
class MultiLevelStats:
    """A snapshot of every level's counters."""

    name: str
    mode: str
    l1: CacheStats
    l2: L2Stats
    sync_flights: FlightStats
    async_flights: FlightStats
    refresh: RefreshStats = field(default_factory=RefreshStats)


class SharedState(Generic[K, V]):
    """Attributes both shells use; :class:`~otel_cache.MultiLevelCache` sets them."""

    config: CacheConfig
    redis: RedisConnector | None  # how it reaches Redis; None: L1 only
    async_mode: bool
    l1: AsyncLRUCache[Any, Any]
    tiers: TierCore
    flows: Flows
    sync_flights: SyncFlights
    async_flights: AsyncFlights
    _closed: bool
    _channel: ChannelThreads | ChannelTasks | None
    _channel_lock: AbstractContextManager[Any]  # guards _channel; held for no I/O
    _refresh_pool: ThreadPoolExecutor | None  # the sync API's refreshes ahead of expiry, made on first use
    _refresh_tasks: set[asyncio.Task[Any]]  # the async API's refreshes and late stores, on their loops
    _load_pool: ThreadPoolExecutor | None  # the sync API's loads with a timeout, made on first use

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def mode(self) -> str:
        """``"async"`` or ``"sync"``: the mode this cache was made for (a telemetry attribute)."""
        return "async" if self.async_mode else "sync"

    @property
    def closed(self) -> bool:
        return self._closed

    def _redis(self) -> RedisConnector:
        redis = self.redis
        assert redis is not None, "L2 is off"
        return redis


def mark_hit(span: Any, operation: str, result: Any) -> None:
    """Put ``cache.hit`` on the span of an L2 read (the level that answered is L2 when it hit)."""
    if span is None or operation != "get" or not span.is_recording():
        return
    span.set_attribute("cache.hit", result is not None)
