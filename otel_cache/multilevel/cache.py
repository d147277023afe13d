"""``MultiLevelCache``: L1 (in-process LRU) in front of L2 (Redis).

::

    cache = MultiLevelCache(CacheConfig.from_env(), async_mode=True)
    user = await cache.aget_or_set(("user", 42), load_user, ttl=60)

Both APIs are always there, each a thin driver over the same flows
(:mod:`otel_cache.multilevel.flows`): the sync methods use redis-py's sync client,
the async methods ``redis.asyncio``, each created on first use, so that during a
migration legacy code and new coroutines can share one cache (one L1, one
namespace). ``async_mode`` says which of the two this cache is *for*: it is the
``mode`` the cache reports in telemetry, and what the managers and the warmer
follow. With no ``redis_url`` the cache is L1 only and needs no Redis package.

Failure policy (``CacheConfig.on_backend_error``): by default a Redis failure is a
miss for reads and an L1-only write for writes, counted per error type; after
``breaker_threshold`` consecutive failures the breaker skips Redis for
``breaker_reset`` seconds, then lets one probe through. ``"raise"`` raises the
mapped :class:`~otel_cache.errors.BackendError` instead.

Values come back equal and of the same type from either level for the types of
:mod:`otel_cache.core.value_tree` (plain data, tuples, sets, dates, UUIDs, Decimals,
declared ``value_types``); others are refused at ``put`` with
:class:`~otel_cache.errors.SerializationError`, also when L2 is off (the signed
pickle serializer stores anything picklable).

Keys must be hashable and encodable for Redis (str, int, float, bool, None,
bytes, tuples of these), or :class:`~otel_cache.errors.CacheKeyError` is raised,
also when L2 is off, so that code behaves the same with and without Redis.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, TypeVar

from otel_cache.config import CacheConfig
from otel_cache.core.coherence import Coherence
from otel_cache.core.compression import make_compression
from otel_cache.core.refresh import RefreshSchedule
from otel_cache.core.serialization import make_serializer
from otel_cache.core.sizing import Sizer, deep_sizeof
from otel_cache.core.tiers import TierCore
from otel_cache.l1.cache import AsyncLRUCache
from otel_cache.l1.lock import RawLock
from otel_cache.multilevel.async_api import AsyncAPI
from otel_cache.multilevel.flight_async import AsyncFlights
from otel_cache.multilevel.flight_sync import SyncFlights
from otel_cache.multilevel.flight_table import FlightTable
from otel_cache.multilevel.flows import Flows
from otel_cache.multilevel.sync_api import SyncAPI
from otel_cache.telemetry import hooks

if TYPE_CHECKING:
    from otel_cache.backends.redis_connect import ClientSource, RedisConnector

__all__ = ["MultiLevelCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class MultiLevelCache(SyncAPI[K, V], AsyncAPI[K, V]):
    """L1 + optional Redis L2, with read-through, write-through and single-flight loads.

    Args:
        config: settings; ``CacheConfig.from_env()`` when omitted.
        async_mode: whether the cache is used from coroutines (``aget`` ...) or threads (``get`` ...).
        clock: monotonic clock for TTLs and the breaker; inject one in tests.
        sizer: bytes of an L1 key or value.
        redis_client: a redis-py client of your own for the sync API (``redis.Redis``,
            ``redis.cluster.RedisCluster``, ``Sentinel.master_for(...)``), or a function
            that makes one; instead of ``config.redis_url``.
        async_redis_client: the same for the async API (``redis.asyncio``); a function is
            called once per event loop, a client serves only the loop it was made on.
        value_types: the Enum, dataclass and pydantic classes whose instances may be
            stored (others are refused at ``put``; see :mod:`otel_cache.core.value_tree`).
        l1_lock: the lock that guards L1 (default: a new ``threading.Lock``; see
            :class:`~otel_cache.l1.cache.AsyncLRUCache`'s ``lock``).

    A client handed in is never closed by the cache; one that a function made is.
    """

    def __init__(
        self,
        config: CacheConfig | None = None,
        *,
        async_mode: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sizer: Sizer | None = deep_sizeof,
        redis_client: ClientSource | None = None,
        async_redis_client: ClientSource | None = None,
        value_types: Iterable[type] = (),
        l1_lock: RawLock | None = None,
    ) -> None:
        self.config = config = config if config is not None else CacheConfig.from_env()
        self.redis: RedisConnector | None = None
        if config.l2_enabled or redis_client is not None or async_redis_client is not None:
            from otel_cache.backends.redis_connect import RedisConnector

            self.redis = RedisConnector(
                config, redis_client=redis_client, async_redis_client=async_redis_client
            )
        l2_enabled = self.redis is not None
        self.async_mode = async_mode
        self._closed = False
        l1_ttl = config.l1_ttl if config.l1_ttl is not None else config.default_ttl
        self.l1 = AsyncLRUCache(
            max_entries=config.l1_max_entries,
            max_bytes=config.l1_max_bytes,
            default_ttl=l1_ttl,
            sizer=sizer,
            clock=clock,
            name=config.name,
            register=False,
            lock=l1_lock,
        )
        coherence = None
        if l2_enabled and config.invalidation:
            coherence = Coherence(lock=threading.Lock())
        self.tiers = TierCore(
            namespace=config.namespace,
            max_key_length=config.max_key_length,
            default_ttl=config.default_ttl,
            l1_ttl=config.l1_ttl,
            serializer=make_serializer(
                config.serializer, pickle_hmac_key=config.pickle_hmac_key, value_types=value_types
            ),
            compression=(
                None
                if config.compression is None or not l2_enabled
                else make_compression(config.compression, config.compression_min_bytes)
            ),
            raise_errors=config.on_backend_error == "raise",
            breaker_threshold=config.breaker_threshold,
            breaker_reset=config.breaker_reset,
            clock=clock,
            lock=threading.Lock(),
            l2_enabled=l2_enabled,
            coherence=coherence,
        )
        self.flows = Flows(
            self.l1,
            self.tiers,
            RefreshSchedule(lock=threading.Lock(), max_keys=config.l1_max_entries or 100_000),
        )
        self.flows.on_fail_safe = self._fail_safe_served
        self.flows.on_timeout = self._load_timed_out
        self._refresh_pool = None
        self._load_pool = None
        self._refresh_tasks = set()
        flights = FlightTable()  # one table: a thread and a coroutine missing one key load once
        self.sync_flights = SyncFlights(flights)
        self.async_flights = AsyncFlights(flights)
        self._sync_backend = None
        self._backend_lock = threading.Lock()
        self._async_backend = None
        self._async_backend_loop = None
        self._channel = None
        self._channel_lock = threading.Lock()  # one channel, whichever API opens it (no I/O held)
        hooks.register(self)

    def _fail_safe_served(self, key: Hashable, error: BaseException) -> None:
        handler = hooks.current()
        if handler is not None:
            handler.fail_safe_served(self, error)

    def _load_timed_out(self, kind: str) -> None:
        handler = hooks.current()
        if handler is not None:
            handler.load_timed_out(self, kind)

    def __repr__(self) -> str:
        l2 = self.config.redacted_redis_url or ("client" if self.redis is not None else "off")
        return f"<MultiLevelCache name={self.name!r} mode={self.mode} l2={l2}>"
