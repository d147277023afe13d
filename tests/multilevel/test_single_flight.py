"""Single-flight: concurrent misses of one key run the loader once.

The loader is held on an event until every caller has joined the flight (watched
through the flight counters), so each test is deterministic. Every test runs with
L1 alone and with Redis behind it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from otel_cache import CacheConfig, MultiLevelCache
from tests.support import RedisServer
from tests.support.config import patient_config

WAIT = 10.0


class LoadError(Exception):
    pass


@pytest.fixture(params=["l1", pytest.param("redis", marks=pytest.mark.redis)])
def config(request: pytest.FixtureRequest) -> CacheConfig:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return patient_config(redis_url=url, namespace="sf")


@pytest.fixture
async def acache(config: CacheConfig) -> AsyncIterator[MultiLevelCache[Any, Any]]:
    cache: MultiLevelCache[Any, Any] = MultiLevelCache(config, async_mode=True)
    yield cache
    await cache.aclose()


@pytest.fixture
def scache(config: CacheConfig) -> Iterator[MultiLevelCache[Any, Any]]:
    cache: MultiLevelCache[Any, Any] = MultiLevelCache(config)
    yield cache
    cache.close()


async def until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


def until_sync(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.001)


# -- asyncio -----------------------------------------------------------------------


async def test_concurrent_misses_load_once(acache: MultiLevelCache[Any, Any]) -> None:
    release = asyncio.Event()
    calls = 0

    async def loader() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await release.wait()
        return {"v": 1}

    tasks = [asyncio.create_task(acache.aget_or_set("k", loader)) for _ in range(50)]
    # The leader reads Redis first, then loads: wait until it is in the loader.
    await until(lambda: acache.async_flights.coalesced == 49 and calls == 1)
    release.set()
    results = await asyncio.gather(*tasks)
    assert results == [{"v": 1}] * 50
    assert calls == 1
    flights = acache.stats().async_flights
    assert (flights.loads, flights.coalesced, flights.failures) == (1, 49, 0)
    assert acache.async_flights.in_flight() == 0
    assert acache.l1.get("k") == {"v": 1}


async def test_loader_error_reaches_every_waiter_and_a_later_call_retries(
    acache: MultiLevelCache[Any, Any],
) -> None:
    release = asyncio.Event()
    calls = 0

    async def failing() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        raise LoadError("boom")

    tasks = [asyncio.create_task(acache.aget_or_set("k", failing)) for _ in range(50)]
    await until(lambda: acache.async_flights.coalesced == 49)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(result, LoadError) for result in results)
    assert calls == 1
    assert acache.stats().async_flights.failures == 1
    assert acache.l1.get("k", "MISS") == "MISS"

    async def loader() -> str:
        nonlocal calls
        calls += 1
        return "v"

    assert await acache.aget_or_set("k", loader) == "v"
    assert calls == 2


async def test_cancelled_leader_hands_the_load_to_a_waiter(acache: MultiLevelCache[Any, Any]) -> None:
    release = asyncio.Event()
    leaders: list[asyncio.Task[Any] | None] = []

    async def loader() -> str:
        leaders.append(asyncio.current_task())
        await release.wait()
        return "v"

    tasks = [asyncio.create_task(acache.aget_or_set("k", loader)) for _ in range(5)]
    await until(lambda: acache.async_flights.coalesced == 4 and len(leaders) == 1)
    leader = leaders[0]
    assert leader in tasks
    assert leader is not None
    leader.cancel()
    await until(lambda: len(leaders) == 2)  # a waiter leads now
    assert leaders[1] is not leader
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT)
    for task, result in zip(tasks, results, strict=True):
        if task is leader:
            assert isinstance(result, asyncio.CancelledError)
        else:
            assert result == "v"
    assert len(leaders) == 2
    assert acache.stats().async_flights.loads == 2
    assert acache.l1.get("k") == "v"


async def test_cancelled_waiter_leaves_the_others_alone(acache: MultiLevelCache[Any, Any]) -> None:
    release = asyncio.Event()
    leaders: list[asyncio.Task[Any] | None] = []

    async def loader() -> str:
        leaders.append(asyncio.current_task())
        await release.wait()
        return "v"

    tasks = [asyncio.create_task(acache.aget_or_set("k", loader)) for _ in range(5)]
    await until(lambda: acache.async_flights.coalesced == 4 and len(leaders) == 1)
    victim = next(task for task in tasks if task is not leaders[0])
    victim.cancel()
    await asyncio.sleep(0.01)
    assert victim.cancelled()
    assert not any(task.done() for task in tasks if task is not victim)
    release.set()
    results = await asyncio.gather(*(task for task in tasks if task is not victim))
    assert results == ["v"] * 4
    assert len(leaders) == 1


async def test_plain_function_loader(acache: MultiLevelCache[Any, Any]) -> None:
    assert await acache.aget_or_set("k", lambda: [1]) == [1]
    assert await acache.aget_or_set("k", lambda: [2]) == [1]


async def test_different_keys_do_not_wait_for_each_other(acache: MultiLevelCache[Any, Any]) -> None:
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "slow"

    blocked = asyncio.create_task(acache.aget_or_set("slow", slow))
    await until(lambda: acache.async_flights.in_flight() == 1)
    assert await asyncio.wait_for(acache.aget_or_set("fast", lambda: "fast"), WAIT) == "fast"
    release.set()
    assert await blocked == "slow"


# -- threads -----------------------------------------------------------------------


def test_threads_load_once(scache: MultiLevelCache[Any, Any]) -> None:
    release = threading.Event()
    calls: list[int] = []

    def loader() -> dict[str, int]:
        calls.append(1)
        assert release.wait(WAIT)
        return {"v": 1}

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(scache.get_or_set, "k", loader) for _ in range(8)]
        until_sync(lambda: scache.sync_flights.coalesced == 7)
        release.set()
        results = [future.result(WAIT) for future in futures]
    assert results == [{"v": 1}] * 8
    assert calls == [1]
    flights = scache.stats().sync_flights
    assert (flights.loads, flights.coalesced, flights.failures) == (1, 7, 0)
    assert scache.sync_flights.in_flight() == 0


def test_threads_all_get_the_loader_error(scache: MultiLevelCache[Any, Any]) -> None:
    release = threading.Event()
    calls: list[int] = []

    def failing() -> str:
        calls.append(1)
        assert release.wait(WAIT)
        raise LoadError("boom")

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(scache.get_or_set, "k", failing) for _ in range(8)]
        until_sync(lambda: scache.sync_flights.coalesced == 7)
        release.set()
        errors = [future.exception(WAIT) for future in futures]
    assert all(isinstance(error, LoadError) for error in errors)
    assert calls == [1]
    assert scache.stats().sync_flights.failures == 1
    assert scache.get_or_set("k", lambda: "v") == "v"  # a later call loads again


class Abort(BaseException):
    """Not an Exception: like KeyboardInterrupt, the leader dies of it."""


def test_threads_retry_when_the_leader_dies_of_a_base_exception(scache: MultiLevelCache[Any, Any]) -> None:
    release = threading.Event()
    calls: list[int] = []

    def loader() -> str:
        calls.append(1)
        if len(calls) == 1:
            assert release.wait(WAIT)
            raise Abort
        return "v"

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(scache.get_or_set, "k", loader) for _ in range(8)]
        until_sync(lambda: scache.sync_flights.coalesced == 7)
        release.set()
        outcomes = [future.exception(WAIT) or future.result() for future in futures]
    assert sum(isinstance(outcome, Abort) for outcome in outcomes) == 1
    assert outcomes.count("v") == 7
    assert len(calls) == 2  # one waiter led the second load; the others got its value
    assert scache.sync_flights.in_flight() == 0


# -- one flight table for both APIs ---------------------------------------------------------


async def test_a_coroutine_waits_on_a_thread_that_leads(acache: MultiLevelCache[Any, Any]) -> None:
    release = threading.Event()
    calls: list[str] = []

    def slow() -> str:
        calls.append("sync")
        assert release.wait(WAIT)
        return "from-thread"

    async def never() -> str:
        calls.append("async")
        return "from-coroutine"

    leader = asyncio.ensure_future(asyncio.to_thread(acache.get_or_set, "k", slow))
    await until(lambda: acache.sync_flights.in_flight() == 1)
    waiter = asyncio.ensure_future(acache.aget_or_set("k", never))
    await until(lambda: acache.async_flights.coalesced == 1)
    release.set()
    assert await asyncio.gather(leader, waiter) == ["from-thread", "from-thread"]
    assert calls == ["sync"]
    assert (acache.sync_flights.loads, acache.async_flights.loads) == (1, 0)


async def test_a_thread_waits_on_a_coroutine_that_leads(acache: MultiLevelCache[Any, Any]) -> None:
    release = asyncio.Event()
    calls: list[str] = []

    async def slow() -> str:
        calls.append("async")
        await release.wait()
        return "from-coroutine"

    def never() -> str:
        calls.append("sync")
        return "from-thread"

    leader = asyncio.ensure_future(acache.aget_or_set("k", slow))
    await until(lambda: acache.async_flights.in_flight() == 1)
    waiter = asyncio.ensure_future(asyncio.to_thread(acache.get_or_set, "k", never))
    await until(lambda: acache.sync_flights.coalesced == 1)
    release.set()
    assert await asyncio.gather(leader, waiter) == ["from-coroutine", "from-coroutine"]
    assert calls == ["async"]


async def test_a_sync_call_on_the_loop_of_the_leader_loads_rather_than_deadlock(
    acache: MultiLevelCache[Any, Any],
) -> None:
    release = asyncio.Event()
    loading: list[bool] = []

    async def slow() -> str:
        loading.append(True)
        await release.wait()
        return "from-coroutine"

    leader = asyncio.ensure_future(acache.aget_or_set("k", slow))
    await until(lambda: bool(loading))  # the leader is in its loader (past its Redis read)
    # Legacy code calling the sync API from a coroutine blocks this loop: waiting on the
    # coroutine that leads would never end, so it loads on its own.
    assert acache.get_or_set("k", lambda: "own") == "own"
    release.set()
    assert await leader == "from-coroutine"


async def test_a_cancelled_coroutine_leader_hands_over_to_a_waiting_thread(
    acache: MultiLevelCache[Any, Any],
) -> None:
    async def forever() -> str:
        await asyncio.Event().wait()
        return "never"

    leader = asyncio.ensure_future(acache.aget_or_set("k", forever))
    await until(lambda: acache.async_flights.in_flight() == 1)
    waiter = asyncio.ensure_future(asyncio.to_thread(acache.get_or_set, "k", lambda: "thread"))
    await until(lambda: acache.sync_flights.coalesced == 1)
    leader.cancel()
    assert await waiter == "thread"
    with pytest.raises(asyncio.CancelledError):
        await leader


# -- the flight covers the Redis read ----------------------------------------------------


def _redis_gets(server: RedisServer) -> int:
    client = redis.Redis(host=server.host, port=server.port, socket_timeout=5)
    try:
        stat = client.info("commandstats").get("cmdstat_get")
        return int(stat["calls"]) if stat else 0
    finally:
        client.close()


@pytest.mark.redis
@pytest.mark.parametrize("api", ["sync", "async"])
async def test_cold_callers_of_a_key_in_redis_make_one_get_and_no_load(
    fresh_redis_server: RedisServer, api: str
) -> None:
    """The leader's GET is held (Redis paused) until every other caller waits on its flight."""
    config = CacheConfig(redis_url=fresh_redis_server.url, namespace="sf", redis_timeout=30)
    cache: MultiLevelCache[str, Any] = MultiLevelCache(config, async_mode=api == "async")
    calls: list[str] = []

    def loader() -> str:
        calls.append("load")
        return "loaded"

    try:
        if api == "async":
            await cache.aput("k", "stored")
        else:
            cache.put("k", "stored")
        cache.l1.clear()  # in Redis only (as if another process had written it)
        flights = cache.async_flights if api == "async" else cache.sync_flights
        before = _redis_gets(fresh_redis_server)
        fresh_redis_server.pause()
        try:
            if api == "async":
                callers: list[Any] = [
                    asyncio.ensure_future(cache.aget_or_set("k", loader)) for _ in range(20)
                ]
            else:
                pool = ThreadPoolExecutor(20)
                callers = [asyncio.wrap_future(pool.submit(cache.get_or_set, "k", loader)) for _ in range(20)]
            await until(lambda: flights.coalesced == 19)
        finally:
            fresh_redis_server.resume()
        assert await asyncio.gather(*callers) == ["stored"] * 20
        if api == "sync":
            pool.shutdown()
        assert calls == [], "found in Redis: the loader never ran"
        assert _redis_gets(fresh_redis_server) - before == 1
        stats = cache.stats()
        assert (flights.loads, flights.coalesced) == (0, 19)
        assert (stats.l1.misses, stats.l1.hits) == (20, 0), "each call counted once in L1"
        assert (stats.l2.hits, stats.l2.misses) == (1, 0)
    finally:
        await cache.aclose()


async def test_a_cold_get_or_set_counts_one_l1_miss(acache: MultiLevelCache[Any, Any]) -> None:
    assert await acache.aget_or_set("a", lambda: 1) == 1
    assert acache.get_or_set("b", lambda: 2) == 2
    stats = acache.stats().l1
    assert (stats.misses, stats.hits) == (2, 0)
    assert await acache.aget_or_set("a", lambda: 0) == 1
    assert (acache.stats().l1.misses, acache.stats().l1.hits) == (2, 1)
