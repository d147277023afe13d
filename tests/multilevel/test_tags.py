"""Tags: ``invalidate_tags`` removes every entry carrying a tag, from L1, Redis and other processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from otel_cache import CacheConfig, CacheKeyError, MultiLevelCache
from tests.multilevel.adapters import CacheAdapter
from tests.support import RedisServer
from tests.support.cache_process import CacheProcess
from tests.support.config import patient_config

MISS: Any = object()
Make = Callable[..., CacheAdapter]


@pytest.fixture(params=["l1", pytest.param("redis", marks=pytest.mark.redis)])
def config(request: pytest.FixtureRequest) -> CacheConfig:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return patient_config(redis_url=url, namespace="tags")


async def test_invalidating_a_tag_removes_every_entry_that_carries_it(
    make_cache: Make, config: CacheConfig
) -> None:
    cache = make_cache(config)
    await cache.put("user:1", {"n": 1}, tags=["user:1", "users"])
    await cache.put_many({"post:1": "a", "post:2": "b"}, tags=["user:1"])
    await cache.put("user:2", {"n": 2}, tags=["users"])
    await cache.put("other", 0)

    removed = await cache.invalidate_tags(["user:1"])
    assert removed == 3
    for key in ("user:1", "post:1", "post:2"):
        assert await cache.get(key, MISS) is MISS, key
    assert await cache.get("user:2") == {"n": 2}
    assert await cache.get("other") == 0
    assert await cache.invalidate_tags("users") == 1  # one str is one tag
    assert await cache.get("user:2", MISS) is MISS


async def test_get_or_set_tags_what_it_loads(make_cache: Make, config: CacheConfig) -> None:
    cache = make_cache(config)
    assert await cache.get_or_set("k", lambda: "v", tags=["t"]) == "v"
    assert await cache.invalidate_tags(["t"]) == 1
    assert await cache.get("k", MISS) is MISS


async def test_tags_must_be_non_empty_strings(make_cache: Make, config: CacheConfig) -> None:
    cache = make_cache(config)
    with pytest.raises(CacheKeyError):
        await cache.put("k", 1, tags=[""])
    with pytest.raises(CacheKeyError):
        await cache.put("k", 1, tags=[3])
    assert await cache.get("k", MISS) is MISS  # refused before anything was written


@pytest.mark.redis
async def test_tag_sets_live_in_redis_as_long_as_their_entries(make_cache: Make, redis_url: str) -> None:
    cache = make_cache(patient_config(redis_url=redis_url, namespace="tags"))
    raw = redis.Redis.from_url(redis_url)
    try:
        await cache.put("short", 1, ttl=10, tags=["t"])
        await cache.put("long", 2, ttl=100, tags=["t"])
        await cache.put("shorter", 3, ttl=5, tags=["t"])
        (tag_key,) = raw.keys("tags:\x1f#tag:*")
        assert raw.smembers(tag_key) == {b"tags:short", b"tags:long", b"tags:shorter"}
        assert 90_000 < raw.pttl(tag_key) <= 100_000  # extended, never shortened
        cache.l1.clear()  # as another process sees it: only Redis knows the tag
        assert await cache.invalidate_tags(["t"]) == 3
        assert raw.exists("tags:short", "tags:long", "tags:shorter") == 0
        assert raw.smembers(tag_key) == set()
        await cache.clear()
        assert raw.keys("tags:*") == []
    finally:
        raw.close()


def test_invalidating_a_tag_reaches_the_other_process(fresh_redis_server: RedisServer) -> None:
    with (
        CacheProcess(fresh_redis_server.url, namespace="co", api="sync") as writer,
        CacheProcess(fresh_redis_server.url, namespace="co", api="async") as reader,
    ):
        for process in (writer, reader):
            process.call("get", "warm-up")  # subscribes
        writer.call("put", "a", 1, ["group"])
        writer.call("put", "b", 2, ["group"])
        deadline = time.monotonic() + 10
        while reader.call("coherence")["received_keys"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert reader.call("get", "a") == {"found": True, "value": 1}
        assert reader.call("get", "b") == {"found": True, "value": 2}
        assert reader.call("invalidate_tags", ["group"]) == 2  # from the other side: Redis knows
        while writer.call("l1", "a")["found"] or writer.call("l1", "b")["found"]:
            assert time.monotonic() < deadline + 10, "the tag invalidation did not reach the writer"
            time.sleep(0.01)
        assert writer.call("get", "a") == {"found": False}
        assert reader.call("get", "b") == {"found": False}


@pytest.mark.redis
def test_a_tag_invalidation_that_redis_refused_is_retried(fresh_redis_server: RedisServer) -> None:
    config = CacheConfig(redis_url=fresh_redis_server.url, namespace="tags", redis_timeout=0.2)
    with MultiLevelCache(config) as cache:
        cache.put("k", 1, tags=["t"])
        fresh_redis_server.pause()
        try:
            assert cache.invalidate_tags(["t"]) == 1  # this process's L1, from its own index
        finally:
            fresh_redis_server.resume()
        raw = redis.Redis.from_url(fresh_redis_server.url)
        try:
            deadline = time.monotonic() + 10
            while raw.exists("tags:k"):  # the repair retried it once Redis answered
                assert time.monotonic() < deadline, "the tag invalidation was not retried"
                time.sleep(0.01)
        finally:
            raw.close()
        assert cache.get("k", MISS) is MISS
