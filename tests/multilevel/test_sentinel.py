"""The multi-level cache on a real Sentinel set (1 primary, 1 replica, 3 sentinels), both APIs.

It follows a failover by itself: after the primary is killed, writes reach the promoted
replica soon after its promotion, no call fails in the degrade policy, and nothing is
written to the demoted node (no READONLY).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis

from otel_cache import CacheConfig, MultiLevelCache
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


async def test_the_async_api_follows_a_graceful_failover(fresh_redis_sentinel: RedisSentinelSet) -> None:
    sentinels = fresh_redis_sentinel
    config = CacheConfig(redis_url=sentinels.url, namespace="graceful", l1_max_entries=10)
    cache: MultiLevelCache[str, Any] = MultiLevelCache(config, async_mode=True)
    try:
        await cache.aput_many([(key, key) for key in KEYS], None)
        old = sentinels.current_primary()
        await asyncio.to_thread(sentinels.failover)
        new = sentinels.current_primary()
        assert new.port != old.port
        deadline = time.monotonic() + 10
        with server_client(new) as primary:
            while True:
                await cache.aput("probe", "after")
                if payload(primary.get(cache.tiers.l2_key("probe"))) == cache.tiers.encode("after"):
                    break
                assert time.monotonic() < deadline, "writes never reached the new primary"
                await asyncio.sleep(0.05)
        for _ in range(50):  # no write goes to the demoted node afterwards
            await cache.aput("after", 1)
        assert "ReadOnlyError" not in cache.stats().l2.errors
        cache.l1.clear()
        assert len(await cache.aget_many(KEYS)) == len(KEYS)  # nothing lost: replicated before the switch
    finally:
        await cache.aclose()
