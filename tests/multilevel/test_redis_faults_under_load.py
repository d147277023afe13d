"""Redis faults under concurrent load, both APIs: what a hostile Redis does to many callers.

Six threads (sync API) or sixty coroutines (async API) put and get keys whose values
name the key, on a real redis-server of the test's own, while the test makes the
fault happen: a key of another type, a full Redis, every pooled connection closed by
the server, a pause past the timeout, a kill and restart. Each test asserts counts: no
exception reached a caller (policy "degrade"), no wrong value came back, the breakers
said what they should, and Redis served again afterwards.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from otel_cache import CacheConfig, MultiLevelCache
from tests.support import RedisServer

pytestmark = pytest.mark.timeout(120)

KEYS = [f"k{i}" for i in range(50)]
Make = Callable[..., MultiLevelCache[str, Any]]


@dataclass
class Outcome:
    calls: int = 0
    exceptions: list[BaseException] = field(default_factory=list)
    wrong: list[tuple[str, Any]] = field(default_factory=list)
    slowest: float = 0.0


def value_for(key: str, n: int) -> dict[str, Any]:
    return {"key": key, "n": n}


def report(what: str, api: str, outcome: Outcome, cache: MultiLevelCache[str, Any]) -> None:
    """One line of counts (shown with ``-s``, and on failure)."""
    l2 = cache.stats().l2
    print(
        f"{what} [{api}]: {outcome.calls} calls, {len(outcome.exceptions)} exceptions, "
        f"{len(outcome.wrong)} wrong values, slowest {outcome.slowest:.3f} s; L2 errors {l2.errors}, "
        f"unreadable {l2.decode_errors}, breaker opens read {l2.breaker_opens} write {l2.write_breaker_opens}"
    )


def check(outcome: Outcome, key: str, got: Any, took: float) -> None:
    outcome.calls += 1
    outcome.slowest = max(outcome.slowest, took)
    if got is not None and not (isinstance(got, dict) and got.get("key") == key):
        outcome.wrong.append((key, got))


def load_sync(cache: MultiLevelCache[str, Any], keys: list[str], rounds: int, workers: int = 6) -> Outcome:
    outcome, lock = Outcome(), threading.Lock()

    def work(worker: int) -> None:
        for n in range(rounds):
            key = keys[(worker * 7 + n) % len(keys)]
            started = time.monotonic()
            try:
                if n % 3 == 0:
                    cache.put(key, value_for(key, n))
                    got = None
                else:
                    got = cache.get(key)
            except BaseException as exc:
                with lock:
                    outcome.exceptions.append(exc)
                continue
            with lock:
                check(outcome, key, got, time.monotonic() - started)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcome


async def load_async(
    cache: MultiLevelCache[str, Any], keys: list[str], rounds: int, workers: int = 60
) -> Outcome:
    outcome = Outcome()

    async def work(worker: int) -> None:
        for n in range(rounds):
            key = keys[(worker * 7 + n) % len(keys)]
            started = time.monotonic()
            try:
                if n % 3 == 0:
                    await cache.aput(key, value_for(key, n))
                    got = None
                else:
                    got = await cache.aget(key)
            except BaseException as exc:
                outcome.exceptions.append(exc)
                continue
            check(outcome, key, got, time.monotonic() - started)

    await asyncio.gather(*(work(w) for w in range(workers)))
    return outcome


async def load(api: str, cache: MultiLevelCache[str, Any], keys: list[str], rounds: int) -> Outcome:
    if api == "async":
        return await load_async(cache, keys, rounds)
    return await asyncio.to_thread(load_sync, cache, keys, rounds)


async def reads_from_redis(api: str, cache: MultiLevelCache[str, Any], keys: list[str]) -> int:
    """How many of ``keys`` Redis served (L1 emptied first)."""
    cache.l1.clear()
    before = cache.stats().l2.hits
    for key in keys:
        got = await cache.aget(key) if api == "async" else cache.get(key)
        assert got == value_for(key, 0) or got is None or got.get("key") == key
    return cache.stats().l2.hits - before


@pytest.fixture
def server(fresh_redis_server: RedisServer) -> RedisServer:
    return fresh_redis_server


@pytest.fixture
def raw(server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url, socket_timeout=10)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
async def make(server: RedisServer, api: str) -> Any:
    made: list[MultiLevelCache[str, Any]] = []

    def factory(**overrides: Any) -> MultiLevelCache[str, Any]:
        config: dict[str, Any] = {
            "redis_url": server.url,
            "namespace": "load",
            # Long enough that a starved event loop (60 coroutines on a busy machine) is no
            # timeout: these tests are about the fault they make, not about CPU.
            "redis_timeout": 2.0,
            "redis_connect_timeout": 2.0,
            "breaker_threshold": 5,
            "breaker_reset": 0.2,
            "invalidation": False,
        }
        cache: MultiLevelCache[str, Any] = MultiLevelCache(
            CacheConfig(**(config | overrides)), async_mode=api == "async"
        )
        made.append(cache)
        return cache

    yield factory
    for cache in made:
        if api == "async":
            await cache.aclose()
        cache.close()


async def seed(api: str, cache: MultiLevelCache[str, Any]) -> None:
    items = [(key, value_for(key, 0)) for key in KEYS]
    if api == "async":
        await cache.aput_many(items, None)
    else:
        cache.put_many(items, None)


async def test_a_key_of_another_type_is_a_miss_and_redis_stays_on(
    make: Make, api: str, raw: redis.Redis
) -> None:
    cache = make()
    await seed(api, cache)
    bad, garbage = cache.tiers.l2_key("k0"), cache.tiers.l2_key("k1")
    raw.delete(bad)
    raw.rpush(bad, "a list, written by someone else")
    raw.set(garbage, b"\xff not an envelope")
    cache.l1.clear()

    async def read_bad_keys() -> list[Any]:
        if api == "async":
            return [await cache.aget(key) for key in ["k0", "k1"] * 10]
        return await asyncio.to_thread(lambda: [cache.get(key) for key in ["k0", "k1"] * 10])

    outcome, *served = await asyncio.gather(
        load(api, cache, KEYS[2:], rounds=30), *(read_bad_keys() for _ in range(3))
    )
    report("key of another type", api, outcome, cache)
    assert served == [[None] * 20] * 3
    assert outcome.exceptions == []
    assert outcome.wrong == []
    stats = cache.stats().l2
    assert stats.breaker_state == "closed"
    assert stats.errors == {}  # not Redis failures
    assert stats.type_errors == 30
    assert stats.decode_errors == 60  # the garbage's 30, and the type errors
    assert await reads_from_redis(api, cache, KEYS[2:22]) == 20
    # A put over the foreign key replaces it; policy "raise" reads it as a miss too.
    raw.delete(bad)
    raw.rpush(bad, "again")
    strict = make(on_backend_error="raise")
    assert (await strict.aget("k0") if api == "async" else strict.get("k0")) is None
    if api == "async":
        await strict.aput("k0", value_for("k0", 1))
    else:
        strict.put("k0", value_for("k0", 1))
    assert raw.type(bad) == b"string"
    strict.l1.clear()
    assert (await strict.aget("k0") if api == "async" else strict.get("k0")) == value_for("k0", 1)


async def test_a_full_redis_refuses_writes_and_still_serves_reads(
    make: Make, api: str, raw: redis.Redis
) -> None:
    cache = make()
    await seed(api, cache)
    used = int(raw.info("memory")["used_memory"])
    raw.config_set("maxmemory-policy", "noeviction")
    raw.config_set("maxmemory", str(used))  # the next write that needs memory is refused (OOM)
    try:
        outcome = await load(api, cache, KEYS[:25], rounds=30)
        report("full Redis", api, outcome, cache)
        assert outcome.exceptions == []
        assert outcome.wrong == []
        stats = cache.stats().l2
        assert stats.errors.get("OutOfMemoryError", 0) >= 5
        assert stats.write_breaker_opens >= 1
        # Reads were never stopped by the refusals. (On a starved machine a call can still
        # pass the 2 s timeout, a real failure that opens the read breaker for its 0.2 s:
        # the sequence below is what decides.)
        if "TimeoutError" not in stats.errors:
            assert stats.breaker_opens == 0
        # One caller, one call at a time: refused writes open the write breaker alone, and
        # the keys not written meanwhile are served by Redis.
        alone = make()
        for key in KEYS[:10]:
            stored = (
                await alone.aput(key, value_for(key, 2))
                if api == "async"
                else alone.put(key, value_for(key, 2))
            )
            assert stored  # in L1: a refused L2 write is not the caller's failure
        alone_stats = alone.stats().l2
        assert alone_stats.errors == {"OutOfMemoryError": 5}  # then the write breaker skips them
        assert (alone_stats.write_breaker_state, alone_stats.breaker_state) == ("open", "closed")
        assert await reads_from_redis(api, alone, KEYS[25:]) == 25
    finally:
        raw.config_set("maxmemory", "0")
    await asyncio.sleep(0.3)  # past breaker_reset: the next write is the probe
    for key in KEYS[:5]:
        if api == "async":
            await cache.aput(key, value_for(key, 9))
        else:
            cache.put(key, value_for(key, 9))
    assert cache.stats().l2.write_breaker_state == "closed"
    assert await reads_from_redis(api, cache, KEYS[:5]) == 5


async def test_connections_closed_by_the_server_while_idle_are_replaced(
    make: Make, api: str, raw: redis.Redis
) -> None:
    cache = make()
    await seed(api, cache)
    for _ in range(3):
        # Many pooled connections, then the server closes every one of them (as an idle
        # timeout, a proxy or a NAT does), then a burst: each stale connection is retried.
        outcome = await load(api, cache, KEYS, rounds=10)
        assert outcome.exceptions == []
        raw.client_kill_filter(_type="normal", skipme=True)
        assert await reads_from_redis(api, cache, KEYS[:20]) == 20
        burst = await load(api, cache, KEYS, rounds=5)
        report("connections closed by the server", api, burst, cache)
        assert burst.exceptions == []
        assert burst.wrong == []
    stats = cache.stats().l2
    assert stats.errors == {}
    assert stats.breaker_opens == 0


async def test_a_paused_redis_costs_each_call_at_most_its_budget(
    make: Make, api: str, raw: redis.Redis
) -> None:
    # A small pool, so that callers also wait for a connection while Redis is paused.
    cache = make(
        redis_timeout=1.0, redis_connect_timeout=1.0, redis_max_connections=4, breaker_threshold=1000
    )
    await seed(api, cache)
    cache.l1.clear()
    raw.execute_command("CLIENT", "PAUSE", "3000", "ALL")
    outcome = await load(api, cache, KEYS, rounds=3)
    report("paused Redis", api, outcome, cache)
    assert outcome.exceptions == []
    assert outcome.wrong == []
    budget = 1.5 * cache.config.redis_timeout  # half of it waiting for a connection, then the command
    assert cache.stats().l2.errors  # the pause was felt
    # Pool wait + command, never wait + command + another wait: the budget, plus scheduling.
    assert outcome.slowest < budget + 0.4, f"slowest call {outcome.slowest:.3f} s, budget {budget} s"
    raw.execute_command("CLIENT", "UNPAUSE")
    await asyncio.sleep(0.1)
    assert await reads_from_redis(api, cache, KEYS[:10]) >= 0  # answers again (hits or misses)
    assert (await load(api, cache, KEYS, rounds=3)).exceptions == []


async def test_a_killed_and_restarted_redis_serves_again(make: Make, api: str, server: RedisServer) -> None:
    cache = make()
    await seed(api, cache)
    server.kill()
    outcome = await load(api, cache, KEYS, rounds=20)
    report("killed Redis", api, outcome, cache)
    assert outcome.exceptions == []
    assert outcome.wrong == []
    assert cache.stats().l2.breaker_opens >= 1
    server.start()
    await asyncio.sleep(0.3)  # past breaker_reset
    await seed(api, cache)
    assert await reads_from_redis(api, cache, KEYS[:20]) == 20
