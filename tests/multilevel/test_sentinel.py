"""The multi-level cache on a real Sentinel set (1 primary, 1 replica, 3 sentinels), both APIs.

It follows a failover by itself: after the primary is killed, writes reach the promoted
replica soon after its promotion, no call fails in the degrade policy, and nothing is
written to the demoted node (no READONLY).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from otel_cache import CacheConfig, MultiLevelCache
from tests.support.cache_process import CacheProcess
from tests.support.redis_sentinel import RedisSentinelSet
from tests.support.stored import payload

pytestmark = [pytest.mark.sentinel, pytest.mark.timeout(120)]

KEYS = [f"item:{i}" for i in range(40)]


def server_client(server: Any) -> redis.Redis:
    return redis.Redis(host=server.host, port=server.port, socket_timeout=2)


async def test_both_apis_read_and_write_through_the_sentinels(fresh_redis_sentinel: RedisSentinelSet) -> None:
    config = CacheConfig(redis_url=fresh_redis_sentinel.url, namespace="sentinel")
    cache: MultiLevelCache[str, Any] = MultiLevelCache(config, async_mode=True)
    try:
        cache.put_many([(key, key) for key in KEYS], None)
        cache.l1.clear()
        assert await cache.aget_many(KEYS) == {key: key for key in KEYS}
        await cache.aput("async", 1)
        with server_client(fresh_redis_sentinel.current_primary()) as primary:
            assert primary.exists(cache.tiers.l2_key("async")) == 1
        assert cache.stats().l2.errors == {}
        assert "***" not in repr(cache)
    finally:
        await cache.aclose()
        cache.close()


def test_a_killed_primary_is_followed_to_the_promoted_replica(fresh_redis_sentinel: RedisSentinelSet) -> None:
    sentinels = fresh_redis_sentinel
    config = CacheConfig(redis_url=sentinels.url, namespace="failover", l1_max_entries=10)
    cache: MultiLevelCache[str, Any] = MultiLevelCache(config)
    failures: list[BaseException] = []
    stop = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                cache.put(KEYS[i % len(KEYS)], i)
                cache.get(KEYS[(i + 7) % len(KEYS)])
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=load, daemon=True) for _ in range(2)]
    try:
        cache.put_many([(key, key) for key in KEYS], None)
        old = sentinels.current_primary()
        for thread in threads:
            thread.start()
        sentinels.kill_primary()
        new = sentinels.wait_failover(old)
        promoted_at = time.monotonic()
        with server_client(new) as primary:
            while True:
                cache.put("probe", "after")
                if payload(primary.get(cache.tiers.l2_key("probe"))) == cache.tiers.encode("after"):
                    landed = time.monotonic() - promoted_at
                    break
                assert time.monotonic() - promoted_at < 10, "writes never reached the new primary"
                time.sleep(0.05)
        errors_then = dict(cache.stats().l2.errors)
        time.sleep(1.0)  # load goes on against the new primary
        stop.set()
        for thread in threads:
            thread.join(10)
        assert new.port != old.port
        assert landed < 2.0, f"writes reached the new primary {landed:.2f} s after its promotion"
        assert failures == []
        errors_after = cache.stats().l2.errors
        assert errors_after == errors_then, "calls failed after the client followed the failover"
        assert "ReadOnlyError" not in errors_after
    finally:
        stop.set()
        cache.close()


class UniqueWrites:
    """Puts of keys never written before, each remembered with when it was acknowledged."""

    def __init__(self, cache: MultiLevelCache[str, Any]) -> None:
        self.cache = cache
        self.acknowledged: list[tuple[float, str]] = []
        self.failures: list[BaseException] = []
        self.errors: dict[str, int] = {}  # the cache's L2 errors when the writes stopped
        self.stopped = False

    def run_sync(self, writer: int) -> None:
        for i in itertools.count():
            if self.stopped:
                return
            key = f"w:{writer}:{i}"
            try:
                self.cache.put(key, i)
            except BaseException as exc:
                self.failures.append(exc)
            self.acknowledged.append((time.monotonic(), key))

    async def run_async(self, writer: int) -> None:
        for i in itertools.count():
            if self.stopped:
                return
            key = f"w:{writer}:{i}"
            try:
                await self.cache.aput(key, i)
            except BaseException as exc:
                self.failures.append(exc)
            self.acknowledged.append((time.monotonic(), key))
            await asyncio.sleep(0)

    def missing_on(self, server: Any, since: float) -> list[str]:
        keys = [key for at, key in self.acknowledged if at >= since]
        with server_client(server) as primary:
            present = primary.mget([self.cache.tiers.l2_key(key) for key in keys]) if keys else []
        return [key for key, value in zip(keys, present, strict=True) if value is None]


def failover_under_writes(sentinels: RedisSentinelSet, writes: UniqueWrites) -> tuple[Any, float, int]:
    """Threads write while the sentinels fail over: the new primary, when they named it,
    and how many of the keys written before are still in Redis."""
    threads = [threading.Thread(target=writes.run_sync, args=(n,), daemon=True) for n in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    new = sentinels.failover(wait_old_primary=False)
    named_at = time.monotonic()
    time.sleep(3.0)
    writes.stopped = True
    for thread in threads:
        thread.join(10)
    writes.errors = dict(writes.cache.stats().l2.errors)
    writes.cache.l1.clear()
    return new, named_at, len(writes.cache.get_many(KEYS))


async def afailover_under_writes(sentinels: RedisSentinelSet, writes: UniqueWrites) -> tuple[Any, float, int]:
    """Coroutines write while the sentinels fail over: as :func:`failover_under_writes`."""
    tasks = [asyncio.create_task(writes.run_async(n)) for n in range(10)]
    await asyncio.sleep(0.2)
    new = await asyncio.to_thread(sentinels.failover, wait_old_primary=False)
    named_at = time.monotonic()
    await asyncio.sleep(3.0)
    writes.stopped = True
    await asyncio.gather(*tasks)
    writes.errors = dict(writes.cache.stats().l2.errors)
    writes.cache.l1.clear()
    kept = len(await writes.cache.aget_many(KEYS))
    await writes.cache.aclose()
    return new, named_at, kept


@pytest.mark.parametrize("async_mode", [False, True], ids=["sync", "async"])
def test_after_a_graceful_failover_writes_stop_going_to_the_old_primary(
    fresh_redis_sentinel: RedisSentinelSet, async_mode: bool
) -> None:
    # SENTINEL FAILOVER leaves the old primary writable for about 10 s, and what it takes
    # then is lost when it resyncs: the cache must leave it as soon as the sentinels name
    # the new primary, pooled connections included.
    sentinels = fresh_redis_sentinel
    config = CacheConfig(redis_url=sentinels.url, namespace="graceful", l1_max_entries=10)
    cache: MultiLevelCache[str, Any] = MultiLevelCache(config, async_mode=async_mode)
    writes = UniqueWrites(cache)
    try:
        cache.put_many([(key, key) for key in KEYS], None)
        old = sentinels.current_primary()
        if async_mode:
            new, named_at, kept = asyncio.run(afailover_under_writes(sentinels, writes))
        else:
            new, named_at, kept = failover_under_writes(sentinels, writes)
        assert new.port != old.port
        assert sentinels.role(old) == "master", "the old primary was demoted too soon to tell"
        late = [key for at, key in writes.acknowledged if at >= named_at + 2.0]
        assert late, "no write was acknowledged in the last second"
        assert writes.missing_on(new, since=named_at + 2.0) == [], "writes went to the old primary"
        assert writes.failures == []
        assert "ReadOnlyError" not in writes.errors
        assert kept == len(KEYS)  # replicated before the switch
    finally:
        writes.stopped = True
        cache.close()


@pytest.mark.parametrize(("writer_api", "reader_api"), [("sync", "async"), ("async", "sync")])
def test_after_a_graceful_failover_other_processes_hear_the_writes(
    fresh_redis_sentinel: RedisSentinelSet, writer_api: str, reader_api: str
) -> None:
    # A subscription left on the old primary would hear nothing of the new one's writes.
    sentinels = fresh_redis_sentinel
    writer = CacheProcess(sentinels.url, namespace="heard", api=writer_api)
    reader = CacheProcess(sentinels.url, namespace="heard", api=reader_api)
    try:
        for process in (writer, reader):
            process.call("get", "warm-up")
            eventually(lambda p=process: p.call("coherence")["up"], "subscribed")
        writer.call("put", "k", "old")
        eventually(lambda: reader.call("coherence")["received_messages"] >= 1, "the first write was heard")
        assert reader.call("get", "k") == {"found": True, "value": "old"}
        old = sentinels.current_primary()
        sentinels.failover(wait_old_primary=False)
        assert sentinels.role(old) == "master"  # still writable, and deaf to the new primary
        eventually(lambda: reader.call("coherence")["channel_losses"] >= 1, "the reader left the old primary")
        eventually(lambda: reader.call("coherence")["up"], "the reader subscribed again")
        writer.call("put", "k", "new")
        eventually(lambda: reader.call("l1", "k") == {"found": False}, "the write reached the reader")
        assert reader.call("get", "k") == {"found": True, "value": "new"}
    finally:
        writer.close()
        reader.close()


def eventually(check: Callable[[], object], what: str, bound: float = 10.0) -> None:
    deadline = time.monotonic() + bound
    while not check():
        assert time.monotonic() < deadline, f"not within {bound} s: {what}"
        time.sleep(0.02)
