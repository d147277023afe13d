"""Fixtures of the multi-level cache tests (``CacheAdapter`` is in ``adapters.py``).

``api``            "sync" or "async": every test that uses ``make_cache`` runs twice.
``make_cache``     builds ``MultiLevelCache`` adapters for ``api``; all are closed afterwards.
``raw_redis``      a plain redis-py client on the session server (``redis_url``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import pytest
import redis

from otel_cache import CacheConfig, MultiLevelCache
from tests.multilevel.adapters import CacheAdapter


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> str:
    """Which API of ``MultiLevelCache`` the test drives."""
    return str(request.param)


@pytest.fixture
async def make_cache(api: str) -> AsyncIterator[Callable[..., CacheAdapter]]:
    """``make(config, clock=...)``: a ``MultiLevelCache`` driven through ``api``; closed after the test."""
    made: list[CacheAdapter] = []

    def make(
        config: CacheConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        value_types: Iterable[type] = (),
    ) -> CacheAdapter:
        cache: MultiLevelCache[Any, Any] = MultiLevelCache(
            config if config is not None else CacheConfig(),
            async_mode=api == "async",
            clock=clock,
            value_types=value_types,
        )
        adapter = CacheAdapter(cache, api)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.close()


@pytest.fixture
def raw_redis(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client on the (flushed) session server, to look behind the cache's back."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()
