"""Refresh ahead of expiry: past a share of the TTL, reads return the value and one background
refresh replaces it. Clocks are injected: time passes only when a test says so."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from otel_cache import CacheConfig, CacheConfigError, MultiLevelCache, cached
from tests.multilevel.adapters import CacheAdapter
from tests.support import ManualClock
from tests.support.config import patient_config
from tests.support.waiting import wait_until

Make = Callable[..., CacheAdapter]


@pytest.fixture(params=["l1", pytest.param("redis", marks=pytest.mark.redis)])
def config(request: pytest.FixtureRequest) -> CacheConfig:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return patient_config(redis_url=url, namespace="refresh")


class Versions:
    """A loader that returns v1, v2, ... and counts its calls."""

    def __init__(self, fail_on: tuple[int, ...] = ()) -> None:
        self.calls = 0
        self.fail_on = fail_on

    def __call__(self) -> str:
        self.calls += 1
        if self.calls in self.fail_on:
            raise LookupError(f"load {self.calls} failed")
        return f"v{self.calls}"


async def _settled(cache: CacheAdapter, ended: int) -> Any:
    """The refresh stats once ``ended`` refreshes have ended (they run in the background)."""
    for _ in range(6000):  # the bound only ends a hang
        stats = (await cache.stats()).refresh
        if stats.succeeded + stats.failed >= ended:
            return stats
        await asyncio.sleep(0.005)
    raise AssertionError("the refresh did not end")


async def test_past_the_share_a_read_returns_the_value_and_one_refresh_replaces_it(
    make_cache: Make, config: CacheConfig, manual_clock: ManualClock
) -> None:
    cache = make_cache(config, clock=manual_clock)
    load = Versions()
    read = lambda: cache.get_or_set("k", load, 10, refresh_ahead=0.7)  # noqa: E731
    assert await read() == "v1"
    manual_clock.advance(6.9)
    assert await read() == "v1"  # not due yet
    assert (await cache.stats()).refresh.started == 0
    manual_clock.advance(0.1)
    assert await read() == "v1"  # due: still the cached value, and a refresh starts
    stats = await _settled(cache, 1)
    assert (stats.started, stats.succeeded, stats.failed) == (1, 1, 0)
    assert await read() == "v2"
    assert load.calls == 2
    manual_clock.advance(6.9)  # the refreshed value is due 7 s after its refresh
    assert await read() == "v2"
    assert (await cache.stats()).refresh.started == 1


async def test_without_refresh_ahead_nothing_is_scheduled(
    make_cache: Make, manual_clock: ManualClock
) -> None:
    cache = make_cache(CacheConfig(), clock=manual_clock)
    load = Versions()
    assert await cache.get_or_set("k", load, 10) == "v1"
    manual_clock.advance(9)
    assert await cache.get_or_set("k", load, 10) == "v1"
    assert (await cache.stats()).refresh.started == 0
    assert load.calls == 1


async def test_a_failed_refresh_keeps_the_old_value_until_it_expires(
    make_cache: Make, manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache(CacheConfig(), clock=manual_clock)  # L1 only: Redis's TTLs run on real time
    load = Versions(fail_on=(2,))
    read = lambda: cache.get_or_set("k", load, 10, refresh_ahead=0.5)  # noqa: E731
    assert await read() == "v1"
    manual_clock.advance(5)
    with caplog.at_level(logging.WARNING, logger="otel_cache"):
        assert await read() == "v1"
        stats = await _settled(cache, 1)
    assert (stats.started, stats.succeeded, stats.failed) == (1, 0, 1)
    assert "refresh ahead of expiry" in caplog.text
    assert await read() == "v1"  # kept, and not refreshed again: one attempt per value
    assert (await cache.stats()).refresh.started == 1
    manual_clock.advance(5)  # expired: the next read loads
    assert await read() == "v3"
    assert load.calls == 3


def test_concurrent_sync_readers_start_one_refresh(manual_clock: ManualClock) -> None:
    with MultiLevelCache(CacheConfig(), clock=manual_clock) as cache:
        release, refreshing = threading.Event(), threading.Event()
        calls = []

        def load() -> str:
            calls.append(1)
            if len(calls) == 2:
                refreshing.set()
                release.wait(30)
            return f"v{len(calls)}"

        assert cache.get_or_set("k", load, 10, refresh_ahead=0.5) == "v1"
        manual_clock.advance(5)
        results: list[str] = []

        def reader() -> None:
            results.extend(cache.get_or_set("k", load, 10, refresh_ahead=0.5) for _ in range(5))

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert refreshing.wait(30)
        assert results == ["v1"] * 20  # every read served the cached value while the refresh ran
        assert cache.stats().refresh.started == 1
        release.set()
        wait_until(lambda: cache.stats().refresh.succeeded == 1)
        assert cache.get_or_set("k", load, 10, refresh_ahead=0.5) == "v2"
        assert len(calls) == 2


async def test_concurrent_coroutines_and_a_thread_start_one_refresh(manual_clock: ManualClock) -> None:
    async with MultiLevelCache(CacheConfig(), async_mode=True, clock=manual_clock) as cache:
        release = asyncio.Event()
        calls = []

        async def load() -> str:
            calls.append(1)
            if len(calls) == 2:
                await release.wait()
            return f"v{len(calls)}"

        assert await cache.aget_or_set("k", load, 10, refresh_ahead=0.5) == "v1"
        manual_clock.advance(5)
        reads = await asyncio.gather(
            *(cache.aget_or_set("k", load, 10, refresh_ahead=0.5) for _ in range(20))
        )
        assert reads == ["v1"] * 20
        # A thread reading the same key through the sync API: the refresh is the same one.
        sync_read = await asyncio.to_thread(cache.get_or_set, "k", lambda: "sync", 10, refresh_ahead=0.5)
        assert sync_read == "v1"
        assert cache.stats().refresh.started == 1
        release.set()
        await _settled(CacheAdapter(cache, "async"), 1)
        assert await cache.aget_or_set("k", load, 10, refresh_ahead=0.5) == "v2"
        assert len(calls) == 2


@pytest.mark.redis
async def test_a_copy_read_from_redis_is_refreshed_by_its_own_age(redis_url: str) -> None:
    """B reads what A wrote with 60 s of a 100 s TTL left: B's refresh is due 40 s sooner."""
    # No invalidation channel: A's writes would drop B's L1 copy at a moment of their own choosing.
    config = patient_config(redis_url=redis_url, namespace="refresh-shared", invalidation=False)
    clock_b = ManualClock()
    async with MultiLevelCache(config) as a, MultiLevelCache(config, clock=clock_b) as b:
        a.put("k", "from a", ttl=60)  # as if written with a TTL of 100, 40 s ago
        b_load = Versions()
        read = lambda: b.get_or_set("k", b_load, 100, refresh_ahead=0.5)  # noqa: E731
        assert read() == "from a"  # an L2 hit: due at 50 - 40 = 10 s on B's clock
        assert b_load.calls == 0
        clock_b.advance(8)
        assert read() == "from a"
        assert b.stats().refresh.started == 0  # not due (it would be at 50 s for a fresh copy)
        clock_b.advance(3)
        assert read() == "from a"  # due: refreshes
        wait_until(lambda: b.stats().refresh.succeeded == 1)
        assert read() == "v1"
        assert b_load.calls == 1


async def test_closing_a_cache_while_a_refresh_runs_does_not_hang(manual_clock: ManualClock) -> None:
    cache: MultiLevelCache[str, str] = MultiLevelCache(CacheConfig(), async_mode=True, clock=manual_clock)
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(3600)
        return "never"

    assert await cache.aget_or_set("k", lambda: "v1", 10, refresh_ahead=0.5) == "v1"
    manual_clock.advance(5)
    assert await cache.aget_or_set("k", slow, 10, refresh_ahead=0.5) == "v1"
    await started.wait()
    schedule = cache.flows.refresh
    await cache.aclose()  # cancels the refresh (and waits for it)
    assert not cache._refresh_tasks
    assert (schedule.started, schedule.succeeded, schedule.failed) == (1, 0, 0)


def test_cached_functions_refresh_ahead(manual_clock: ManualClock) -> None:
    with MultiLevelCache(CacheConfig(), clock=manual_clock) as cache:
        load = Versions()

        @cached(cache=cache, ttl=10, refresh_ahead=0.5)
        def version() -> str:
            return load()

        assert version() == "v1"
        manual_clock.advance(5)
        assert version() == "v1"
        wait_until(lambda: cache.stats().refresh.succeeded == 1)
        assert version() == "v2"


@pytest.mark.parametrize("share", [0, 1, -0.5, 1.5, True, "0.5"])
async def test_a_share_outside_zero_to_one_is_refused(make_cache: Make, share: Any) -> None:
    cache = make_cache(CacheConfig())
    with pytest.raises(CacheConfigError, match="refresh_ahead"):
        await cache.get_or_set("k", lambda: 1, 10, refresh_ahead=share)
    with pytest.raises(CacheConfigError, match="refresh_ahead"):
        cached(refresh_ahead=share)(lambda: 1)
