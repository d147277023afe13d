"""Load timeouts: a caller stops waiting for a slow load (a fail-safe copy, or LoadTimeoutError),
the load goes on and stores its value. The loaders here block until the test releases them,
so every timeout is certain to pass; the short timeouts only keep the tests quick."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from otel_cache import CacheConfig, CacheConfigError, FailSafe, LoadTimeoutError, MultiLevelCache, cached
from tests.support import ManualClock
from tests.support.waiting import await_until, wait_until

SHORT = 0.05  # seconds; the loaders below take as long as the test decides


def test_past_the_hard_timeout_a_sync_caller_gets_an_error_and_the_value_is_stored_later() -> None:
    with MultiLevelCache(CacheConfig()) as cache:
        release = threading.Event()
        calls = []

        def slow() -> str:
            calls.append(1)
            release.wait(30)
            return "late"

        with pytest.raises(LoadTimeoutError) as raised:
            cache.get_or_set("k", slow, 60, hard_timeout=SHORT)
        assert raised.value.kind == "hard"
        assert cache.stats().l2.load_timeouts == {"hard": 1}
        assert cache.get("k") is None
        release.set()
        wait_until(lambda: cache.get("k") == "late")  # the load went on and stored its value
        assert cache.get_or_set("k", slow, 60, hard_timeout=SHORT) == "late"
        assert len(calls) == 1


async def test_past_the_hard_timeout_an_async_caller_gets_an_error_and_the_value_is_stored_later() -> None:
    async with MultiLevelCache(CacheConfig(), async_mode=True) as cache:
        release = asyncio.Event()

        async def slow() -> str:
            await release.wait()
            return "late"

        with pytest.raises(LoadTimeoutError):
            await cache.aget_or_set("k", slow, 60, hard_timeout=SHORT)
        assert cache.stats().l2.load_timeouts == {"hard": 1}
        release.set()
        await await_until(lambda: cache.l1.peek("k", None) == "late")
        assert await cache.aget_or_set("k", slow, 60) == "late"


@pytest.mark.parametrize("api", ["sync", "async"])
async def test_past_the_soft_timeout_the_fail_safe_copy_answers(api: str, manual_clock: ManualClock) -> None:
    safe = FailSafe(max_age=100)
    async with MultiLevelCache(CacheConfig(), async_mode=api == "async", clock=manual_clock) as cache:
        assert cache.get_or_set("k", lambda: "v1", 10, fail_safe=safe) == "v1"
        manual_clock.advance(11)  # expired: the copy remains
        release_sync, release_async = threading.Event(), asyncio.Event()

        def slow() -> str:
            release_sync.wait(30)
            return "v2"

        async def aslow() -> str:
            await release_async.wait()
            return "v2"

        options: dict[str, Any] = {"fail_safe": safe, "soft_timeout": SHORT, "hard_timeout": 30}
        if api == "sync":
            started = time.monotonic()
            assert await asyncio.to_thread(cache.get_or_set, "k", slow, 10, **options) == "v1"
        else:
            started = time.monotonic()
            assert await cache.aget_or_set("k", aslow, 10, **options) == "v1"
        assert time.monotonic() - started < 30  # the soft timeout, not the hard one
        stats = cache.stats().l2
        assert (stats.load_timeouts, stats.fail_safe_served) == ({"soft": 1}, 1)
        release_sync.set()
        release_async.set()
        await await_until(lambda: cache.l1.peek("k", None) == "v2")  # the slow load refreshed the entry


def test_without_a_copy_the_soft_timeout_does_not_count(manual_clock: ManualClock) -> None:
    with MultiLevelCache(CacheConfig(), clock=manual_clock) as cache:

        def slow() -> str:
            time.sleep(SHORT * 4)  # longer than the soft timeout, for sure
            return "v1"

        assert cache.get_or_set("k", slow, 10, soft_timeout=SHORT) == "v1"
        assert cache.stats().l2.load_timeouts == {}


def test_a_waiter_stops_waiting_at_its_hard_timeout_and_the_leader_goes_on() -> None:
    with MultiLevelCache(CacheConfig()) as cache:
        release = threading.Event()

        def slow() -> str:
            release.wait(30)
            return "led"

        led: list[str] = []
        leader = threading.Thread(target=lambda: led.append(cache.get_or_set("k", slow, 60)))
        leader.start()
        wait_until(lambda: cache.sync_flights.in_flight() == 1)
        with pytest.raises(LoadTimeoutError) as raised:
            cache.get_or_set("k", slow, 60, hard_timeout=SHORT)
        assert raised.value.kind == "waiter"
        assert cache.stats().l2.load_timeouts == {"waiter": 1}
        release.set()
        leader.join(30)
        assert led == ["led"]


async def test_an_async_waiter_stops_waiting_at_its_hard_timeout() -> None:
    async with MultiLevelCache(CacheConfig(), async_mode=True) as cache:
        release = asyncio.Event()

        async def slow() -> str:
            await release.wait()
            return "led"

        leader = asyncio.ensure_future(cache.aget_or_set("k", slow, 60))
        await await_until(lambda: cache.async_flights.in_flight() == 1)
        with pytest.raises(LoadTimeoutError):
            await cache.aget_or_set("k", slow, 60, hard_timeout=SHORT)
        release.set()
        assert await leader == "led"


async def test_a_cancelled_caller_leaves_its_load_running_and_the_value_is_stored() -> None:
    async with MultiLevelCache(CacheConfig(), async_mode=True) as cache:
        release, started = asyncio.Event(), asyncio.Event()

        async def slow() -> str:
            started.set()
            await release.wait()
            return "kept"

        caller = asyncio.ensure_future(cache.aget_or_set("k", slow, 60, hard_timeout=30))
        await started.wait()
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        release.set()
        await await_until(lambda: cache.l1.peek("k", None) == "kept")


def test_cached_functions_take_timeouts() -> None:
    with MultiLevelCache(CacheConfig()) as cache:
        release = threading.Event()

        @cached(cache=cache, ttl=60, hard_timeout=SHORT)
        def slow(n: int) -> int:
            release.wait(30)
            return n

        with pytest.raises(LoadTimeoutError):
            slow(1)
        release.set()
        wait_until(lambda: cache.get(slow.key(1)) == 1)
        assert slow(1) == 1


@pytest.mark.parametrize(
    "settings", [{"soft_timeout": 0}, {"hard_timeout": -1}, {"hard_timeout": float("nan")}]
)
def test_bad_timeouts_are_refused(settings: dict[str, Any]) -> None:
    with MultiLevelCache(CacheConfig()) as cache, pytest.raises(CacheConfigError, match="timeout"):
        cache.get_or_set("k", lambda: 1, 10, **settings)
    with pytest.raises(CacheConfigError, match="timeout"):
        cached(**settings)(lambda: 1)
