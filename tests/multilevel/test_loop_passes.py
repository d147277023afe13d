"""An L2 call costs the calling task no loop pass of the cache's own: only redis.asyncio's.

The coroutine is stepped by hand: each ``send`` runs it until it suspends on a future,
which the test then awaits (so the loop really runs the I/O) before stepping again.
A redis.asyncio command suspends its caller at most twice: its send (on Python 3.11
it goes through ``asyncio.wait_for``, a task of its own) and its reply, when the reply
is not already there once the send is done (that depends on timing, so the tests bound
the count rather than fix it). At saturation every suspension waits behind every other
ready task, so this count is what the async tail latency is made of (issue 9;
docs/benchmarks.md). Before issue 9 an L2 hit suspended three times (a GET and a PTTL
in a pipeline, and more).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest

from otel_cache import MultiLevelCache
from tests.support.config import patient_config

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
        patient_config(redis_url=redis_url, namespace="passes"), async_mode=True
    )
    await cache.aput_many({f"k{i}": {"i": i} for i in range(100)})  # also subscribes and connects
    cache.l1.clear()
    yield cache
    await cache.aclose()


PER_ROUND_TRIP = 2  # redis.asyncio's send and its reply


async def test_an_l2_hit_suspends_only_for_its_one_round_trip(cache: MultiLevelCache[str, Any]) -> None:
    count, value = await suspensions(cache.aget("k1"))
    assert value == {"i": 1}
    assert 1 <= count <= PER_ROUND_TRIP
    assert await suspensions(cache.aget("k1")) == (0, {"i": 1}), "an L1 hit never suspends"


async def test_a_batch_read_suspends_only_for_its_one_round_trip(cache: MultiLevelCache[str, Any]) -> None:
    count, found = await suspensions(cache.aget_many([f"k{i}" for i in range(100)]))
    assert len(found) == 100
    assert 1 <= count <= PER_ROUND_TRIP


async def test_a_cold_get_or_set_suspends_only_for_its_two_round_trips(
    cache: MultiLevelCache[str, Any],
) -> None:
    # GET (a miss), then SET: two round trips; the loader is a plain function.
    count, value = await suspensions(cache.aget_or_set("cold", lambda: 7))
    assert value == 7
    assert 2 <= count <= 2 * PER_ROUND_TRIP
    assert await suspensions(cache.aget_or_set("cold", lambda: 0)) == (0, 7)
