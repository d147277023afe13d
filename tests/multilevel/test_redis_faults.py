"""Redis faults: down, killed mid-run, hung, connections reset; both failure policies.

Every test has a redis-server of its own (``fresh_redis_server``) and runs through
both APIs. Timeouts are 0.2 s and the breaker opens after 3 failures; the breaker's
reset period is crossed with a ``ManualClock`` instead of waiting.

These tests pin down the L2 failure policy, so the invalidation channel is off here
(``invalidation=False``): with it on, L1 takes no copies while the channel is down,
which is what ``tests/multilevel/test_many_processes.py`` tests, with real processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from otel_cache import (
    BackendTimeoutError,
    BackendUnavailableError,
    CacheConfig,
    CacheError,
    CircuitOpenError,
)
from tests.multilevel.adapters import CacheAdapter
from tests.support import ManualClock, RedisServer
from tests.support.stored import payload

MISS: Any = object()
TIMEOUT = 0.2
RESET = 5.0
THRESHOLD = 3
SLOW = 2.0  # a call against a hung server must return well within this
Make = Callable[..., CacheAdapter]


@pytest.fixture
def server(fresh_redis_server: RedisServer) -> RedisServer:
    return fresh_redis_server


@pytest.fixture
def raw(server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url, socket_timeout=5)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def make(make_cache: Make, server: RedisServer, manual_clock: ManualClock) -> Make:
    """``make(**config)``: a cache on the test's own server, on the manual clock."""

    def factory(**overrides: Any) -> CacheAdapter:
        config: dict[str, Any] = {
            "redis_url": server.url,
            "namespace": "f",
            "redis_timeout": TIMEOUT,
            "redis_connect_timeout": TIMEOUT,
            "breaker_threshold": THRESHOLD,
            "breaker_reset": RESET,
            "invalidation": False,
        }
        config.update(overrides)
        clock = config.pop("clock", manual_clock)
        return make_cache(CacheConfig(**config), clock=clock)

    return factory


async def l2(cache: CacheAdapter) -> Any:
    return (await cache.stats()).l2


# -- degrade (the default policy) ---------------------------------------------------


async def test_redis_down_at_start_degrades_to_l1(make: Make, server: RedisServer) -> None:
    server.stop()
    cache = make(breaker_threshold=100)
    assert await cache.get("a", MISS) is MISS
    assert await cache.get_or_set("b", lambda: "loaded") == "loaded"
    assert await cache.put("c", 1) is True
    assert cache.l1.get("b") == "loaded"
    assert cache.l1.get("c") == 1
    assert await cache.get("c") == 1  # an L1 hit: Redis is not asked
    assert await cache.get_many(["b", "c", "d"]) == {"b": "loaded", "c": 1}
    assert await cache.delete("c") is True
    stats = await l2(cache)
    # get, get_or_set (get + put), put, get_many (MGET for "d"), delete
    assert stats.errors == {"ConnectionError": 6}
    assert stats.breaker_state == "closed"
    assert (stats.hits, stats.writes) == (0, 0)


async def test_breaker_opens_skips_redis_and_probes_after_reset(
    make: Make, server: RedisServer, raw: redis.Redis, manual_clock: ManualClock
) -> None:
    server.stop()
    cache = make()
    for _ in range(THRESHOLD):
        assert await cache.get("a", MISS) is MISS
    stats = await l2(cache)
    assert stats.errors == {"ConnectionError": THRESHOLD}
    assert (stats.breaker_state, stats.breaker_opens, stats.skipped) == ("open", 1, 0)

    started = time.monotonic()
    for _ in range(5):
        assert await cache.get("a", MISS) is MISS
    assert await cache.put("b", 2) is True
    assert await cache.get_or_set("c", lambda: 3) == 3
    assert time.monotonic() - started < 1.0  # no connection attempts (loosely)
    stats = await l2(cache)
    assert stats.errors == {"ConnectionError": THRESHOLD}  # Redis was not touched
    assert stats.skipped == 5 + 1 + 2  # get_or_set: its get and its put

    manual_clock.advance(RESET)
    assert await cache.get("a", MISS) is MISS  # the probe, which fails
    stats = await l2(cache)
    assert stats.errors == {"ConnectionError": THRESHOLD + 1}
    assert (stats.breaker_state, stats.breaker_opens) == ("open", 2)
    assert await cache.get("a", MISS) is MISS
    assert (await l2(cache)).skipped == 9

    server.start()
    assert await cache.put("x", 1) is True  # still open: L1 only
    assert raw.exists("f:x") == 0
    manual_clock.advance(RESET)
    assert await cache.put("x", 2) is True  # the probe, which succeeds
    assert payload(raw.get("f:x")) == b"j2"
    assert (await l2(cache)).breaker_state == "closed"
    cache.l1.clear()
    assert await cache.get("x") == 2


async def test_recovery_is_automatic_in_real_time(make: Make, server: RedisServer, raw: redis.Redis) -> None:
    cache = make(breaker_reset=0.1, clock=time.monotonic)
    server.stop()
    for _ in range(THRESHOLD):
        await cache.get("a")
    assert (await l2(cache)).breaker_state == "open"
    server.start()
    await asyncio.sleep(0.15)
    assert await cache.put("a", 1) is True
    assert payload(raw.get("f:a")) == b"j1"
    assert (await l2(cache)).breaker_state == "closed"


async def test_breaker_counts_only_consecutive_failures(make: Make, server: RedisServer) -> None:
    cache = make()
    assert await cache.put("a", 1) is True
    server.stop()
    for _ in range(THRESHOLD - 1):
        await cache.get("absent")
    server.start()
    cache.l1.clear()
    assert await cache.get("absent", MISS) is MISS  # a success
    assert (await l2(cache)).errors == {"ConnectionError": THRESHOLD - 1}
    server.stop()
    await cache.get("absent")  # one failure after a success
    assert (await l2(cache)).breaker_state == "closed"


async def test_server_killed_mid_run_never_raises(
    make: Make, server: RedisServer, raw: redis.Redis, manual_clock: ManualClock
) -> None:
    cache = make()
    for i in range(60):
        if i == 15:
            server.stop()
        if i == 35:
            server.start()
        manual_clock.advance(1.0)  # the breaker probes every RESET iterations
        await cache.put(f"k{i}", i)
        await cache.get(f"k{i - 1}")
        cache.l1.delete(f"k{i - 2}")
        await cache.get(f"k{i - 2}")
        await cache.get_many([f"k{i}", f"k{i - 3}"])
        await cache.put_many({f"m{i}": i})
        assert await cache.get_or_set(f"g{i}", lambda i=i: i) == i
        await cache.delete(f"k{i - 4}")
    manual_clock.advance(RESET)
    assert await cache.put("final", 1) is True
    assert payload(raw.get("f:final")) == b"j1"
    stats = await l2(cache)
    assert stats.breaker_state == "closed"
    assert stats.errors["ConnectionError"] >= THRESHOLD
    assert stats.skipped > 0


async def test_hung_server_calls_time_out_fast_then_recover(
    make: Make, server: RedisServer, raw: redis.Redis
) -> None:
    cache = make()
    await cache.put("a", 1)
    cache.l1.clear()
    server.pause()
    try:
        started = time.monotonic()
        assert await cache.get("a", MISS) is MISS
        assert time.monotonic() - started < SLOW
        started = time.monotonic()
        assert await cache.put("b", 2) is True
        assert time.monotonic() - started < SLOW
        assert cache.l1.get("b") == 2
        assert (await l2(cache)).errors == {"TimeoutError": 2}
    finally:
        server.resume()
    cache.l1.clear()
    assert await cache.get("a") == 1
    assert await cache.put("c", 3) is True
    assert payload(raw.get("f:c")) == b"j3"
    assert (await l2(cache)).breaker_state == "closed"


async def test_connection_reset_between_calls(make: Make, server: RedisServer) -> None:
    cache = make()
    await cache.put("a", 1)
    cache.l1.clear()
    assert await cache.get("a") == 1  # the pool holds a live connection now
    cache.l1.clear()
    assert server.kill_clients() >= 1
    assert await cache.get("a", MISS) in (1, MISS)  # no exception
    cache.l1.clear()
    assert await cache.get("a") == 1
    assert await cache.put("b", 2) is True
    cache.l1.clear()
    assert await cache.get("b") == 2


# -- stale L2 copies: a write that missed Redis never lets an older value back ---------------


async def open_breaker(cache: CacheAdapter, server: RedisServer) -> None:
    """Hang Redis for THRESHOLD timed-out reads: the breaker opens; Redis answers again after."""
    server.pause()
    try:
        for _ in range(THRESHOLD):
            assert await cache.get("breaker-probe", MISS) is MISS
    finally:
        server.resume()
    assert (await l2(cache)).breaker_state == "open"


async def test_a_put_that_skipped_redis_never_serves_the_older_copy(
    make: Make, server: RedisServer, raw: redis.Redis, manual_clock: ManualClock
) -> None:
    cache = make()
    assert await cache.put("a", 1) is True
    assert payload(raw.get("f:a")) == b"j1"
    await open_breaker(cache, server)
    assert await cache.put("a", 2) is True  # L1 only: Redis still holds 1
    assert payload(raw.get("f:a")) == b"j1"
    assert (await l2(cache)).unsynced == 1
    manual_clock.advance(RESET)
    cache.l1.clear()  # L1 drops it (eviction, expiry): only the stale copy is left
    assert await cache.get("a", MISS) is MISS  # not 1: the copy is deleted instead (the probe)
    assert raw.exists("f:a") == 0
    stats = await l2(cache)
    assert (stats.unsynced, stats.repairs, stats.breaker_state) == (0, 1, "closed")
    assert await cache.put("a", 3) is True
    cache.l1.clear()
    assert await cache.get("a") == 3  # synced again: L2 is read as before


async def test_a_delete_that_skipped_redis_does_not_come_back(
    make: Make, server: RedisServer, raw: redis.Redis, manual_clock: ManualClock
) -> None:
    cache = make()
    await cache.put("a", 1)
    await open_breaker(cache, server)
    assert await cache.delete("a") is True  # gone from L1; Redis still holds it
    assert payload(raw.get("f:a")) == b"j1"
    manual_clock.advance(RESET)
    assert await cache.get("a", MISS) is MISS
    assert await cache.get_or_set("a", lambda: 5) == 5  # loaded, not the deleted 1
    assert payload(raw.get("f:a")) == b"j5"
    assert (await l2(cache)).repairs == 1


async def test_a_put_that_failed_on_a_hung_redis_is_repaired(make: Make, server: RedisServer) -> None:
    cache = make(breaker_threshold=100)
    await cache.put("a", 1)
    server.pause()
    try:
        assert await cache.put("a", 2) is True  # times out: Redis may apply it late, or not
    finally:
        server.resume()
    assert (await l2(cache)).errors == {"TimeoutError": 1}
    cache.l1.clear()
    assert await cache.get("a", MISS) is MISS  # neither the old 1 nor an unknown copy
    assert (await l2(cache)).repairs == 1
    await cache.put("a", 3)
    cache.l1.clear()
    assert await cache.get("a") == 3


async def test_get_many_skips_unsynced_keys_and_a_get_repairs_them(
    make: Make, server: RedisServer, raw: redis.Redis, manual_clock: ManualClock
) -> None:
    cache = make()
    await cache.put_many({"a": 1, "b": 2, "c": 3})
    await open_breaker(cache, server)
    await cache.put_many({"a": 10, "b": 20})  # skipped in L2
    manual_clock.advance(RESET)
    cache.l1.clear()
    assert await cache.get_many(["a", "b", "c"]) == {"c": 3}  # the probe reads c alone
    assert (await l2(cache)).unsynced == 2
    assert await cache.get("a", MISS) is MISS
    assert raw.exists("f:a") == 0
    assert payload(raw.get("f:b")) == b"j2"  # still there, still never read
    stats = await l2(cache)
    assert (stats.unsynced, stats.repairs) == (1, 1)


async def test_a_failed_clear_is_retried_before_redis_is_read_again(
    make: Make, server: RedisServer, raw: redis.Redis, manual_clock: ManualClock
) -> None:
    cache = make()
    await cache.put_many({"a": 1, "b": 2})
    raw.set("other:a", b"kept")  # another namespace
    await open_breaker(cache, server)
    await cache.clear()  # L1 emptied; Redis skipped
    assert (await l2(cache)).clear_pending is True
    assert await cache.get("a", MISS) is MISS  # breaker open: L2 not read at all
    manual_clock.advance(RESET)
    assert await cache.get("b", MISS) is MISS  # the clear is retried first, then nothing to read
    assert raw.exists("f:a", "f:b") == 0
    assert raw.get("other:a") == b"kept"
    assert (await l2(cache)).clear_pending is False
    await cache.put("a", 7)
    cache.l1.clear()
    assert await cache.get("a") == 7


async def test_raise_policy_still_marks_the_skipped_write(
    make: Make, server: RedisServer, raw: redis.Redis, manual_clock: ManualClock
) -> None:
    cache = make(on_backend_error="raise")
    await cache.put("a", 1)
    server.pause()
    try:
        for _ in range(THRESHOLD):
            with pytest.raises(BackendTimeoutError):
                await cache.get("probe")
    finally:
        server.resume()
    with pytest.raises(CircuitOpenError):
        await cache.put("a", 2)
    assert cache.l1.get("a") == 2
    assert (await l2(cache)).unsynced == 1
    manual_clock.advance(RESET)
    cache.l1.clear()
    assert await cache.get("a", MISS) is MISS
    assert raw.exists("f:a") == 0


# -- policy "raise" ------------------------------------------------------------------


async def test_raise_policy_redis_down(make: Make, server: RedisServer) -> None:
    server.stop()
    cache = make(on_backend_error="raise")
    with pytest.raises(BackendUnavailableError) as info:
        await cache.get("a")
    assert isinstance(info.value, CacheError)
    assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)
    with pytest.raises(BackendUnavailableError) as info:
        await cache.put("a", 1)
    assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)
    with pytest.raises(BackendUnavailableError):
        await cache.get_many(["a", "b"])
    assert (await l2(cache)).breaker_state == "open"
    calls: list[int] = []
    with pytest.raises(CircuitOpenError) as open_info:
        await cache.get_or_set("c", lambda: calls.append(1))
    assert isinstance(open_info.value, BackendUnavailableError)
    assert isinstance(open_info.value, CacheError)
    assert calls == []
    with pytest.raises(CircuitOpenError):
        await cache.delete("a")
    stats = await l2(cache)
    assert stats.errors == {"ConnectionError": THRESHOLD}
    assert stats.skipped == 2


async def test_raise_policy_hung_server(make: Make, server: RedisServer) -> None:
    cache = make(on_backend_error="raise")
    await cache.put("a", 1)
    cache.l1.clear()
    server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(BackendTimeoutError) as info:
            await cache.get("a")
        assert time.monotonic() - started < SLOW
        assert isinstance(info.value, CacheError)
        assert isinstance(info.value.__cause__, redis.exceptions.TimeoutError)
    finally:
        server.resume()
    assert await cache.get("a") == 1


async def test_raise_policy_recovers_after_reset(
    make: Make, server: RedisServer, raw: redis.Redis, manual_clock: ManualClock
) -> None:
    cache = make(on_backend_error="raise")
    server.stop()
    for _ in range(THRESHOLD):
        with pytest.raises(BackendUnavailableError):
            await cache.get("a")
    with pytest.raises(CircuitOpenError):
        await cache.get("a")
    server.start()
    manual_clock.advance(RESET)
    assert await cache.put("a", 1) is True
    assert payload(raw.get("f:a")) == b"j1"
    assert (await l2(cache)).breaker_state == "closed"
