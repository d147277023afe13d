"""Dependencies that hand the process-wide query-result managers to an endpoint.

::

    @app.get("/traverse")
    async def traverse(query: Annotated[TraversalQuery, Query()], cache: AsyncCacheManagerDep):
        return await cache.aget_or_compute(query, lambda: run_traversal(query), ttl=60)

    @app.get("/legacy")
    def legacy(query: Annotated[TraversalQuery, Query()], cache: CacheManagerDep):  # runs in a thread
        return cache.get_or_compute(query, lambda: run_traversal(query), ttl=60)

Both are ``async def`` so that FastAPI calls them on the loop instead of sending a
two-line lookup to its threadpool; they return the same objects as
:func:`~otel_cache.get_cache_manager` and :func:`~otel_cache.get_async_cache_manager`.
Override them in tests with ``app.dependency_overrides[cache_manager] = ...``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from otel_cache.managers import (
    AsyncCacheManager,
    CacheManager,
    get_async_cache_manager,
    get_cache_manager,
)

__all__ = ["AsyncCacheManagerDep", "CacheManagerDep", "async_cache_manager", "cache_manager"]


async def cache_manager() -> CacheManager:
    """The process-wide sync manager (for ``def`` endpoints, which FastAPI runs in threads)."""
    return get_cache_manager()


async def async_cache_manager() -> AsyncCacheManager:
    """The process-wide async manager (for ``async def`` endpoints)."""
    return get_async_cache_manager()


CacheManagerDep = Annotated[CacheManager, Depends(cache_manager)]
"""``cache: CacheManagerDep`` in an endpoint's parameters gives it the sync manager."""

AsyncCacheManagerDep = Annotated[AsyncCacheManager, Depends(async_cache_manager)]
"""``cache: AsyncCacheManagerDep`` in an endpoint's parameters gives it the async manager."""
