"""Process-wide query-result caches: ``get_cache_manager()`` and ``get_async_cache_manager()``.

The ADR's API, for code that caches the results of queries::

    cache = get_cache_manager()                       # legacy, sync
    result = cache.get_query_result(query)
    cache.cache_query_result(query, result, ttl=60)

    cache = get_async_cache_manager()                 # new, async
    result = await cache.aget_query_result(query)
    await cache.acache_query_result(query, result)

A query is any plain data, dataclass or pydantic model; its cache key is
:func:`otel_cache.core.keys.query_key`: ``query:{type}:{blake2b digest}`` of a
canonical form, the same for equal queries whatever their field order. Results
come back from either level as they were cached (plain data, tuples, dates,
UUIDs...: :mod:`otel_cache.core.value_tree`); a result of an Enum, dataclass or
pydantic type needs its class declared, through a cache of your own:
``configure_cache_managers(cache=MultiLevelCache(config, value_types=[Result]))``.

Both managers serve one :class:`~otel_cache.MultiLevelCache`: one L1, one tier
state and one flight table per process, so a write or an invalidation through
either API is seen by the other at once, and a thread and a coroutine missing the
same query run its computation once. Each API has its own Redis client. The cache
is created on first use from ``CacheConfig.from_env()`` (or from the config
:func:`configure_cache_managers` was given, or is the cache it was given), named ``query-results`` unless
``OTEL_CACHE_NAME`` names it; its ``mode``
(a telemetry attribute) is that of the manager asked for first. Nothing is
created at import time. Tests call :func:`reset_cache_managers` (or the async
:func:`areset_cache_managers`) to start again.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from otel_cache.config import CacheConfig
from otel_cache.core.keys import query_key
from otel_cache.core.tiers import MISSING
from otel_cache.errors import CacheConfigError
from otel_cache.multilevel import MultiLevelCache

__all__ = [
    "AsyncCacheManager",
    "CacheManager",
    "areset_cache_managers",
    "configure_cache_managers",
    "get_async_cache_manager",
    "get_cache_manager",
    "reset_cache_managers",
]


class _QueryKeys:
    """What both managers share: the cache and how a query becomes a key."""

    def __init__(self, cache: MultiLevelCache[str, Any]) -> None:
        self.cache = cache

    @staticmethod
    def key_for(query: object) -> str:
        """The cache key of ``query`` (stable across processes)."""
        return query_key(query)


class CacheManager(_QueryKeys):
    """Query-result caching for sync code."""

    def get_query_result(self, query: object, default: Any = None) -> Any:
        """The cached result of ``query``, or ``default``."""
        return self.cache.get(self.key_for(query), default)

    def cache_query_result(
        self, query: object, result: Any, ttl: float | None = None, *, tags: Iterable[str] = ()
    ) -> bool:
        """Cache ``result`` for ``query`` for ``ttl`` seconds (``None``: the default TTL)."""
        return self.cache.put(self.key_for(query), result, ttl, tags=tags)

    def get_or_compute(
        self, query: object, compute: Callable[[], Any], ttl: float | None = None, *, tags: Iterable[str] = ()
    ) -> Any:
        """The cached result, or ``compute()``'s (run once for concurrent callers), cached."""
        return self.cache.get_or_set(self.key_for(query), compute, ttl, tags=tags)

    def invalidate_query(self, query: object) -> bool:
        """Forget the result of ``query`` in L1 and L2."""
        return self.cache.delete(self.key_for(query))

    def invalidate_tags(self, tags: Iterable[str]) -> int:
        """Forget every result cached with one of ``tags``, in every process."""
        return self.cache.invalidate_tags(tags)

    def clear(self) -> int:
        """Forget every query result (this cache's namespace only)."""
        return self.cache.clear()

    def has_query_result(self, query: object) -> bool:
        return self.cache.get(self.key_for(query), MISSING) is not MISSING

    def close(self) -> None:
        self.cache.close()


class AsyncCacheManager(_QueryKeys):
    """Query-result caching for coroutines; never blocks the event loop on Redis."""

    async def aget_query_result(self, query: object, default: Any = None) -> Any:
        """The cached result of ``query``, or ``default``."""
        return await self.cache.aget(self.key_for(query), default)

    async def acache_query_result(
        self, query: object, result: Any, ttl: float | None = None, *, tags: Iterable[str] = ()
    ) -> bool:
        """Cache ``result`` for ``query`` for ``ttl`` seconds (``None``: the default TTL)."""
        return await self.cache.aput(self.key_for(query), result, ttl, tags=tags)

    async def aget_or_compute(
        self,
        query: object,
        compute: Callable[[], Awaitable[Any]] | Callable[[], Any],
        ttl: float | None = None,
        *,
        tags: Iterable[str] = (),
    ) -> Any:
        """The cached result, or ``await compute()``'s (run once for concurrent callers), cached."""
        return await self.cache.aget_or_set(self.key_for(query), compute, ttl, tags=tags)

    async def ainvalidate_query(self, query: object) -> bool:
        """Forget the result of ``query`` in L1 and L2."""
        return await self.cache.adelete(self.key_for(query))

    async def ainvalidate_tags(self, tags: Iterable[str]) -> int:
        """Forget every result cached with one of ``tags``, in every process."""
        return await self.cache.ainvalidate_tags(tags)

    async def aclear(self) -> int:
        """Forget every query result (this cache's namespace only)."""
        return await self.cache.aclear()

    async def aclose(self) -> None:
        await self.cache.aclose()


#: What the managers' cache is created with unless ``OTEL_CACHE_*`` says otherwise.
DEFAULT_SETTINGS: Mapping[str, object] = MappingProxyType({"name": "query-results"})

_lock = threading.Lock()
_config: CacheConfig | None = None
_cache: MultiLevelCache[str, Any] | None = None
_sync_manager: CacheManager | None = None
_async_manager: AsyncCacheManager | None = None


def configure_cache_managers(
    config: CacheConfig | None = None, *, cache: MultiLevelCache[str, Any] | None = None
) -> None:
    """Set what the managers serve from: a ``config`` to create their cache from (``None``:
    from the environment again), or a ``cache`` of your own, which they then own (a reset
    closes it).

    Managers that exist already keep their config: call a reset first to replace them.
    A ``cache`` given while the managers' cache exists is refused
    (:class:`~otel_cache.errors.CacheConfigError`).
    """
    global _config, _cache
    if config is not None and cache is not None:
        raise CacheConfigError("give configure_cache_managers a config or a cache, not both")
    with _lock:
        if cache is not None:
            if _cache is not None and _cache is not cache:
                raise CacheConfigError("the managers' cache exists already: reset the managers first")
            _cache = cache
        _config = config if cache is None else cache.config


def _manager_config() -> CacheConfig:
    if _config is not None:
        return _config
    return CacheConfig.from_env(defaults=DEFAULT_SETTINGS)


def _shared_cache(async_mode: bool) -> MultiLevelCache[str, Any]:
    # Called under _lock.
    global _cache
    if _cache is None:
        _cache = MultiLevelCache(_manager_config(), async_mode=async_mode)
    return _cache


def get_cache_manager() -> CacheManager:
    """The process-wide sync query-result manager, created on first call."""
    global _sync_manager
    manager = _sync_manager
    if manager is None:
        with _lock:
            if _sync_manager is None:
                _sync_manager = CacheManager(_shared_cache(async_mode=False))
            manager = _sync_manager
    return manager


def get_async_cache_manager() -> AsyncCacheManager:
    """The process-wide async query-result manager, created on first call."""
    global _async_manager
    manager = _async_manager
    if manager is None:
        with _lock:
            if _async_manager is None:
                _async_manager = AsyncCacheManager(_shared_cache(async_mode=True))
            manager = _async_manager
    return manager


def _take_cache() -> MultiLevelCache[str, Any] | None:
    global _sync_manager, _async_manager, _config, _cache
    with _lock:
        taken = _cache
        _cache = _sync_manager = _async_manager = None
        _config = None
    return taken


def reset_cache_managers() -> None:
    """Close and forget both managers, their cache and the configured config (sync code and tests).

    The async Redis connections are dropped, not closed: from a coroutine, prefer
    :func:`areset_cache_managers`.
    """
    cache = _take_cache()
    if cache is not None:
        cache.close()


async def areset_cache_managers() -> None:
    """Close and forget both managers and their cache, closing the async Redis client properly."""
    cache = _take_cache()
    if cache is not None:
        await cache.aclose()
