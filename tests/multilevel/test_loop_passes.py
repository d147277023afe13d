"""An L2 call costs the calling task one pass through the event loop per Redis round trip.

The coroutine is stepped by hand: each ``send`` runs it until it suspends on a future,
which the test then awaits (so the loop really runs the I/O) before stepping again.
The number of suspensions is deterministic: a small reply on loopback arrives in one
read. At saturation every extra suspension waits behind every other ready task, so
this count is what the async tail latency is made of (issue 9; docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest

from otel_cache import CacheConfig, MultiLevelCache

pytestmark = pytest.mark.redis


async def suspensions(coro: Coroutine[Any, Any, Any]) -> tuple[int, Any]:
    """Run ``coro`` to the end; how many times it suspended, and its result."""
    count = 0
    while True:
        try:
            future = coro.send(None)  # a future's own __await__ reads its outcome on resumption
        except StopIteration as stop:
            return count, stop.value
        count += 1
        if future is None:  # a bare yield (asyncio.sleep(0)): one pass of the loop
            await asyncio.sleep(0)
        else:
            await asyncio.wait([future])  # the loop runs the I/O this step waits for


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[MultiLevelCache[str, Any]]:
    cache: MultiLevelCache[str, Any] = MultiLevelCache(
        CacheConfig(redis_url=redis_url, namespace="passes"), async_mode=True
    )
    await cache.aput_many({f"k{i}": {"i": i} for i in range(100)})  # also subscribes and connects
    cache.l1.clear()
    yield cache
    await cache.aclose()


async def test_an_l2_hit_suspends_once(cache: MultiLevelCache[str, Any]) -> None:
    assert await suspensions(cache.aget("k1")) == (1, {"i": 1})
    assert await suspensions(cache.aget("k1")) == (0, {"i": 1}), "an L1 hit never suspends"


async def test_a_batch_read_suspends_once(cache: MultiLevelCache[str, Any]) -> None:
    count, found = await suspensions(cache.aget_many([f"k{i}" for i in range(100)]))
    assert (count, len(found)) == (1, 100)


async def test_a_cold_get_or_set_suspends_once_per_round_trip(cache: MultiLevelCache[str, Any]) -> None:
    # GET (a miss), then SET: two round trips; the loader is a plain function.
    assert await suspensions(cache.aget_or_set("cold", lambda: 7)) == (2, 7)
    assert await suspensions(cache.aget_or_set("cold", lambda: 0)) == (0, 7)
