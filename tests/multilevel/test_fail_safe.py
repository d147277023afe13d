"""Fail-safe copies: an expired value is served when its load fails, from L1 or from Redis.

L1 runs on an injected clock. Redis's TTLs and a copy's own expiry run on real time, so the
tests through Redis use TTLs of a few tens of milliseconds and sleep past them: after the
sleep the value has expired, whatever the machine's load."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from otel_cache import CacheConfig, CacheConfigError, FailSafe, MultiLevelCache, cached
from tests.multilevel.adapters import CacheAdapter
from tests.support import ManualClock
from tests.support.config import patient_config

Make = Callable[..., CacheAdapter]
SAFE = FailSafe(max_age=100, throttle=5)


class Source:
    """A loader that answers ``v1``, ``v2``... while up, and raises while down."""

    def __init__(self) -> None:
        self.up = True
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if not self.up:
            raise LookupError("the source is down")
        return f"v{self.calls}"


async def test_an_expired_value_is_served_when_its_load_fails_then_throttled_then_gone(
    make_cache: Make, manual_clock: ManualClock
) -> None:
    cache = make_cache(CacheConfig(), clock=manual_clock)
    source = Source()
    read = lambda: cache.get_or_set("k", source, 10, fail_safe=SAFE)  # noqa: E731
    assert await read() == "v1"
    manual_clock.advance(11)  # expired
    assert await cache.get("k") is None  # a copy is no value for an ordinary read
    source.up = False
    assert await read() == "v1"  # the load failed: the copy answers
    assert (source.calls, (await cache.stats()).l2.fail_safe_served) == (2, 1)
    manual_clock.advance(4)
    assert await read() == "v1"  # within the throttle: the failing loader is left alone
    assert source.calls == 2
    manual_clock.advance(2)  # the throttle is over: the loader is tried again, and fails again
    assert await read() == "v1"
    assert (source.calls, (await cache.stats()).l2.fail_safe_served) == (3, 2)
    manual_clock.advance(100)  # past the copy's max age
    with pytest.raises(LookupError):
        await read()
    source.up = True
    assert await read() == "v5"


async def test_without_fail_safe_the_loaders_error_reaches_the_caller(
    make_cache: Make, manual_clock: ManualClock
) -> None:
    cache = make_cache(CacheConfig(), clock=manual_clock)
    source = Source()
    assert await cache.get_or_set("k", source, 10) == "v1"
    manual_clock.advance(11)
    source.up = False
    with pytest.raises(LookupError):
        await cache.get_or_set("k", source, 10)


async def test_delete_tags_and_a_plain_put_remove_the_copies(
    make_cache: Make, manual_clock: ManualClock
) -> None:
    cache = make_cache(CacheConfig(), clock=manual_clock)
    source = Source()
    for key in ("deleted", "tagged", "overwritten"):
        await cache.get_or_set(key, source, 10, fail_safe=SAFE, tags=["t"] if key == "tagged" else [])
    assert await cache.delete("deleted")
    assert await cache.invalidate_tags(["t"]) == 1  # the entry, not its copy too
    await cache.put("overwritten", "newer", 10)  # no fail_safe: the older copy must not come back
    manual_clock.advance(11)
    source.up = False
    for key in ("deleted", "tagged", "overwritten"):
        with pytest.raises(LookupError):
            await cache.get_or_set(key, source, 10, fail_safe=SAFE)


async def test_waiters_of_the_failed_load_get_the_copy_too(manual_clock: ManualClock) -> None:
    async with MultiLevelCache(CacheConfig(), async_mode=True, clock=manual_clock) as cache:
        assert await cache.aget_or_set("k", lambda: "v1", 10, fail_safe=SAFE) == "v1"
        manual_clock.advance(11)
        release = asyncio.Event()
        calls = []

        async def down() -> str:
            calls.append(1)
            await release.wait()
            raise LookupError("the source is down")

        readers = [asyncio.ensure_future(cache.aget_or_set("k", down, 10, fail_safe=SAFE)) for _ in range(10)]
        for _ in range(6000):  # until all ten are in the flight (the bound only ends a hang)
            if cache.stats().async_flights.coalesced == 9:
                break
            await asyncio.sleep(0.005)
        release.set()
        assert await asyncio.gather(*readers) == ["v1"] * 10
        assert len(calls) == 1
        assert cache.stats().l2.fail_safe_served == 1


@pytest.mark.redis
async def test_another_instance_is_answered_by_the_copy_in_redis(redis_url: str) -> None:
    """B never loaded the key (no L1 copy): the copy comes from Redis, past the value's TTL."""
    config = patient_config(redis_url=redis_url, namespace="fail-safe")
    async with MultiLevelCache(config) as a, MultiLevelCache(config) as b:
        source = Source()
        assert a.get_or_set("k", source, 0.05, fail_safe=SAFE) == "v1"
        await asyncio.sleep(0.1)  # past the 50 ms TTL; the copy lives 100 s more
        assert b.get("k") is None  # stale: a miss for a plain read
        assert b.get_many(["k"]) == {}
        source.up = False
        assert b.get_or_set("k", source, 0.05, fail_safe=SAFE) == "v1"
        assert b.stats().l2.fail_safe_served == 1
        source.up = True
        assert a.get_or_set("k", source, 0.05, fail_safe=SAFE) == "v3"  # the source is back


@pytest.mark.redis
async def test_a_value_with_a_copy_is_an_ordinary_hit_before_its_ttl(redis_url: str) -> None:
    config = patient_config(redis_url=redis_url, namespace="fail-safe-fresh")
    async with MultiLevelCache(config) as a, MultiLevelCache(config) as b:
        a.get_or_set("k", lambda: {"n": (1, 2)}, 60, fail_safe=SAFE)
        assert b.get("k") == {"n": (1, 2)}
        assert b.get_many(["k", "other"]) == {"k": {"n": (1, 2)}}


@pytest.mark.redis
async def test_a_delete_in_one_instance_removes_the_copy_for_every_instance(redis_url: str) -> None:
    """After a delete, a failing load finds no copy anywhere: neither A's (L1 and Redis) nor
    B's. (The TTL is long: what must be gone is the copy, not only the value.)"""
    config = patient_config(redis_url=redis_url, namespace="fail-safe-delete")
    async with MultiLevelCache(config) as a, MultiLevelCache(config) as b:
        source = Source()
        assert a.get_or_set("k", source, 60, fail_safe=SAFE) == "v1"
        assert b.get("k") == "v1"  # B's L1 holds it too
        assert a.delete("k")
        for _ in range(6000):  # until the invalidation reached B (the bound only ends a hang)
            if b.l1.peek("k", None) is None:
                break
            await asyncio.sleep(0.005)
        source.up = False
        for cache in (a, b):
            with pytest.raises(LookupError):
                cache.get_or_set("k", source, 60, fail_safe=SAFE)


def test_cached_functions_take_fail_safe(manual_clock: ManualClock) -> None:
    with MultiLevelCache(CacheConfig(), clock=manual_clock) as cache:
        source = Source()

        @cached(cache=cache, ttl=10, fail_safe=SAFE)
        def value() -> str:
            return source()

        assert value() == "v1"
        manual_clock.advance(11)
        source.up = False
        assert value() == "v1"


@pytest.mark.parametrize(
    "settings", [{"max_age": 0}, {"max_age": -1}, {"max_age": float("inf")}, {"max_age": 1, "throttle": 0}]
)
def test_bad_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(CacheConfigError, match="fail_safe"):
        FailSafe(**settings)
    with pytest.raises(TypeError, match="FailSafe"):
        cached(fail_safe=60)(lambda: 1)  # type: ignore[arg-type]
