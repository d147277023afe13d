"""The async API waits for the L1 lock without blocking the event loop.

A thread holds the L1 lock (as a thread of the same cache would, mid-call); the
async multi-level calls that need the lock wait for it through the L1's async path,
and the loop keeps running other tasks meanwhile. Deterministic: the lock is held
until the test has seen the other task run, then released.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from otel_cache import MultiLevelCache
from tests.support.config import patient_config

pytestmark = pytest.mark.redis

WAIT = 10.0


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[MultiLevelCache[str, Any]]:
    cache: MultiLevelCache[str, Any] = MultiLevelCache(
        patient_config(redis_url=redis_url, namespace="steps"), async_mode=True
    )
    await cache.aput("warm", 0)  # the channel is up, the client connected
    yield cache
    await cache.aclose()


CALLS: dict[str, Callable[[MultiLevelCache[str, Any]], Awaitable[Any]]] = {
    "aput": lambda c: c.aput("k", 1),
    "adelete": lambda c: c.adelete("warm"),
    "aget_many": lambda c: c.aget_many(["x", "y"]),
    "aput_many": lambda c: c.aput_many({"a": 1, "b": 2}),
    "aget_or_set": lambda c: c.aget_or_set("cold", lambda: 3),
}


@pytest.mark.parametrize("name", list(CALLS))
async def test_a_call_that_needs_the_held_l1_lock_lets_the_loop_run(
    cache: MultiLevelCache[str, Any], name: str
) -> None:
    lock = cache.l1.lock
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        assert lock.try_acquire(True)
        held.set()
        release.wait(WAIT)
        lock.release()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(WAIT)
    call = asyncio.ensure_future(CALLS[name](cache))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while not call.done():
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.ensure_future(tick())
    try:
        deadline = asyncio.get_running_loop().time() + WAIT
        while ticks < 50:  # the loop runs other tasks while the call waits for the lock
            assert asyncio.get_running_loop().time() < deadline, "the loop was blocked"
            await asyncio.sleep(0)
        assert not call.done(), "it needs the lock, which is held"
    finally:
        release.set()
    await asyncio.wait_for(call, WAIT)
    await ticker
    holder.join(WAIT)
