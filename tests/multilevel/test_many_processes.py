"""Coherence between processes: what one instance writes, the others stop serving.

Two real processes (``tests.support.cache_process``) on a real redis-server of the
test's own, through both APIs in both directions. Each test makes the event it
asserts happen (a write, a killed subscription, a paused server) and then waits for
the outcome with a generous bound: the figures themselves belong to
``benchmarks/propagation.py``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from otel_cache import CacheConfig, MultiLevelCache
from otel_cache.core.coherence import channel_name
from tests.support import RedisServer
from tests.support.cache_process import CacheProcess
from tests.support.config import PATIENT_TIMEOUT, patient_config
from tests.support.stored import payload

BOUND = 10.0  # seconds; far above the figures in docs/benchmarks.md, for a busy machine
MISS: Any = object()
FOUND_NOTHING = {"found": False}


def found(value: Any) -> dict[str, Any]:
    return {"found": True, "value": value}


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not check():
        assert time.monotonic() < deadline, f"not within {BOUND} s: {what}"
        time.sleep(0.01)


@pytest.fixture
def server(fresh_redis_server: RedisServer) -> RedisServer:
    return fresh_redis_server


@pytest.fixture
def raw(server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture(params=[("sync", "async"), ("async", "sync")], ids=["sync-to-async", "async-to-sync"])
def pair(request: pytest.FixtureRequest, server: RedisServer) -> Iterator[tuple[CacheProcess, CacheProcess]]:
    """A writer and a reader process, both subscribed, with patient Redis timeouts."""
    yield from _subscribed_pair(server, request.param, redis_timeout=PATIENT_TIMEOUT)


@pytest.fixture(params=[("sync", "async"), ("async", "sync")], ids=["sync-to-async", "async-to-sync"])
def hasty_pair(
    request: pytest.FixtureRequest, server: RedisServer
) -> Iterator[tuple[CacheProcess, CacheProcess]]:
    """As :func:`pair`, with a 0.2 s Redis timeout: for tests that pause Redis past it."""
    yield from _subscribed_pair(server, request.param, redis_timeout=0.2)


def _subscribed_pair(
    server: RedisServer, apis: tuple[str, str], *, redis_timeout: float
) -> Iterator[tuple[CacheProcess, CacheProcess]]:
    writer_api, reader_api = apis
    writer = CacheProcess(server.url, namespace="co", api=writer_api, redis_timeout=redis_timeout)
    reader = CacheProcess(server.url, namespace="co", api=reader_api, redis_timeout=redis_timeout)
    try:
        for process in (writer, reader):  # a first Redis call subscribes to the channel
            assert process.call("get", "warm-up") == FOUND_NOTHING
            assert subscribed(process)
        yield writer, reader
    finally:
        writer.close()
        reader.close()


def subscribed(process: CacheProcess) -> bool:
    return bool(process.call("coherence")["up"])


def received(process: CacheProcess, messages: int) -> None:
    """Wait until ``process`` applied ``messages`` invalidations: a copy it makes after that
    is not dropped by a late message about an earlier write."""
    eventually(lambda: process.call("coherence")["received_messages"] >= messages, "the messages arrived")


# -- writes and deletes ---------------------------------------------------------------


def test_an_overwrite_and_a_delete_in_one_process_evict_the_others_copy(
    pair: tuple[CacheProcess, CacheProcess],
) -> None:
    writer, reader = pair
    writer.call("put", "user:1", {"v": 1})
    received(reader, 1)
    assert reader.call("get", "user:1") == found({"v": 1})
    assert reader.call("l1", "user:1") == found({"v": 1})  # the copy other instances used to keep

    writer.call("put", "user:1", {"v": 2})
    eventually(lambda: reader.call("l1", "user:1") == FOUND_NOTHING, "the overwrite reached the reader")
    assert reader.call("get", "user:1") == found({"v": 2})

    writer.call("delete", "user:1")
    eventually(lambda: reader.call("l1", "user:1") == FOUND_NOTHING, "the delete reached the reader")
    assert reader.call("get", "user:1") == FOUND_NOTHING
    assert reader.call("coherence")["received_messages"] >= 2


def test_a_process_keeps_its_own_fresh_write(pair: tuple[CacheProcess, CacheProcess]) -> None:
    writer, _ = pair
    writer.call("put", "k", "fresh")
    eventually(lambda: writer.call("coherence")["own_skipped"] >= 1, "its own message came back")
    assert writer.call("l1", "k") == found("fresh")
    assert writer.call("coherence")["received_messages"] == 0


# -- the channel lost -------------------------------------------------------------------


def test_a_killed_subscription_empties_l1_and_nothing_stale_is_served_after(
    pair: tuple[CacheProcess, CacheProcess], raw: redis.Redis
) -> None:
    writer, reader = pair
    writer.call("put", "k", "old")
    received(reader, 1)
    assert reader.call("get", "k") == found("old")
    assert reader.call("l1", "k") == found("old")

    raw.client_kill_filter(_type="pubsub")  # every listener's connection: both processes
    writer.call("put", "k", "new")  # its message may reach nobody: the listeners are down
    eventually(lambda: reader.call("coherence")["channel_losses"] >= 1, "the reader saw the loss")
    eventually(lambda: subscribed(reader), "the reader subscribed again")
    assert reader.call("coherence")["l1_flushes"] >= 1
    assert reader.call("get", "k") == found("new")


def test_a_restarted_redis_leaves_no_old_copy_in_any_process(
    pair: tuple[CacheProcess, CacheProcess], server: RedisServer
) -> None:
    writer, reader = pair
    writer.call("put", "k", "before")
    received(reader, 1)
    assert reader.call("get", "k") == found("before")
    assert reader.call("l1", "k") == found("before")
    server.stop()
    server.start()  # same port, empty: it keeps nothing on disk
    eventually(lambda: reader.call("coherence")["channel_losses"] >= 1, "the reader saw the restart")
    eventually(lambda: subscribed(reader) and subscribed(writer), "both subscribed again")
    assert reader.call("get", "k") == FOUND_NOTHING
    assert writer.call("get", "k") == FOUND_NOTHING


# -- outage repair --------------------------------------------------------------------------


def test_writes_that_failed_during_an_outage_are_repaired_for_every_process(
    hasty_pair: tuple[CacheProcess, CacheProcess], server: RedisServer, raw: redis.Redis
) -> None:
    writer, reader = hasty_pair
    writer.call("put", "user:1", "to be deleted")
    writer.call("put", "user:2", "old")
    eventually(lambda: reader.call("coherence")["received_keys"] >= 2, "both writes were announced")
    assert reader.call("get", "user:1") == found("to be deleted")
    assert reader.call("get", "user:2") == found("old")
    assert reader.call("l1", "user:2") == found("old")

    server.pause()  # past the 0.2 s timeout: the L2 halves below fail
    try:
        writer.call("delete", "user:1")
        writer.call("put", "user:2", "new")
    finally:
        server.resume()

    # No read of either key in the writer: the repair runs once Redis answers again.
    eventually(lambda: writer.call("l2")["unsynced"] == 0, "the writer repaired both keys")
    assert writer.call("l2")["repairs"] == 2
    assert raw.exists("co:user:1", "co:user:2") == 0  # both stale copies deleted
    eventually(
        lambda: reader.call("l1", "user:1") == FOUND_NOTHING and reader.call("l1", "user:2") == FOUND_NOTHING,
        "the repair's invalidation reached the reader",
    )
    assert reader.call("get", "user:1") == FOUND_NOTHING  # the delete is not undone
    assert reader.call("get", "user:2") != found("old")


# -- what the channel carries ---------------------------------------------------------------


async def test_garbage_and_newer_messages_are_counted_and_ignored(redis_url: str) -> None:
    config = patient_config(redis_url=redis_url, namespace="garbage")
    reader: MultiLevelCache[str, Any] = MultiLevelCache(config, async_mode=True)
    writer: MultiLevelCache[str, Any] = MultiLevelCache(config, async_mode=True)
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        await writer.aput("k", 1)
        assert await reader.aget("k") == 1
        channel = channel_name("garbage")
        await raw.publish(channel, b"\xff not json")
        await raw.publish(
            channel, b'{"v": 99, "src": "future", "ts": 0, "keys": ["garbage:k"], "flush": false}'
        )
        await raw.publish(channel, b'{"v": 1, "src": 3}')
        await writer.aput("k", 2)  # a real message after the garbage still works
        deadline = time.monotonic() + BOUND
        while reader.l1.get("k", MISS) is not MISS:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        stats = reader.tiers.coherence.stats()  # type: ignore[union-attr]
        assert stats.ignored == {"garbage": 2, "version": 1}
        assert stats.up
        assert await reader.aget("k") == 2
    finally:
        await raw.aclose()
        await reader.aclose()
        await writer.aclose()


def test_a_burst_of_writes_is_batched_into_few_messages(redis_url: str) -> None:
    with MultiLevelCache(patient_config(redis_url=redis_url, namespace="burst")) as cache:
        cache.put_many({f"k{i}": i for i in range(100)})
        coherence = cache.tiers.coherence
        assert coherence is not None
        eventually(lambda: coherence.stats().sent_keys == 100, "the keys were announced")
        assert coherence.stats().sent_messages == 1


@pytest.mark.parametrize("async_mode", [False, True], ids=["sync-mode", "async-mode"])
async def test_threads_and_coroutines_first_using_a_cache_at_once_open_one_channel(
    redis_url: str, async_mode: bool
) -> None:
    def channel_threads() -> set[str]:
        names = ("otel-cache-listener:race-open", "otel-cache-publisher:race-open")
        return {t.name for t in threading.enumerate() if t.is_alive() and t.name in names}

    before = channel_threads()
    for _ in range(5):
        config = patient_config(redis_url=redis_url, namespace="race-open", name="race-open")
        cache: MultiLevelCache[str, int] = MultiLevelCache(config, async_mode=async_mode)
        start = threading.Barrier(3)

        def first_use(
            n: int, start: threading.Barrier = start, cache: MultiLevelCache[str, int] = cache
        ) -> None:
            start.wait()
            cache.put(f"t{n}", n)

        await asyncio.gather(
            *(asyncio.to_thread(first_use, n) for n in range(3)), *(cache.aput(f"c{n}", n) for n in range(3))
        )
        opened = cache._channel
        assert opened is not None
        assert opened.running
        assert len(channel_threads() - before) in (0, 2), "one listener and one publisher at most"
        await cache.aclose()
        assert not opened.running
        assert channel_threads() == before, "no channel thread outlives the cache"


def test_without_redis_there_is_no_channel() -> None:
    with MultiLevelCache(CacheConfig()) as cache:
        assert cache.put("k", 1)
        assert cache.tiers.coherence is None
        assert cache.l1.get("k") == 1


# -- concurrent writers of one key --------------------------------------------------------------


@pytest.mark.parametrize("async_mode", [False, True], ids=["sync-mode", "async-mode"])
async def test_concurrent_writers_of_one_key_leave_l1_and_redis_agreeing(
    redis_url: str, async_mode: bool
) -> None:
    raw = redis.Redis.from_url(redis_url)
    cache: MultiLevelCache[str, Any] = MultiLevelCache(
        patient_config(redis_url=redis_url, namespace="race"), async_mode=async_mode
    )
    try:
        for trial in range(20):
            key = f"k{trial}"
            start = threading.Barrier(4)

            def put_from_thread(value: int, key: str = key, start: threading.Barrier = start) -> None:
                start.wait()
                for step in range(20):
                    cache.put(key, value * 100 + step) if step % 3 else cache.delete(key)

            async def put_from_coroutine(value: int, key: str = key) -> None:
                for step in range(20):
                    await (cache.aput(key, value * 100 + step) if step % 3 else cache.adelete(key))
                    await asyncio.sleep(0)

            await asyncio.gather(
                *(asyncio.to_thread(put_from_thread, n) for n in range(4)),
                *(put_from_coroutine(n) for n in range(4, 8)),
            )
            in_redis = raw.get(f"race:{key}")
            in_l1 = cache.l1.get(key, MISS)
            if in_l1 is not MISS:  # absent from L1 is coherent: the next read fills it from Redis
                assert in_redis is not None, f"trial {trial}: L1 holds {in_l1}, Redis nothing"
                assert cache.tiers.decode(payload(in_redis)) == in_l1, f"trial {trial}"
            expected = MISS if in_redis is None else cache.tiers.decode(payload(in_redis))
            assert await cache.aget(key, MISS) == expected
    finally:
        raw.close()
        await cache.aclose()
