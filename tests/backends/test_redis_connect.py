"""``RedisConnector``: the clients made from each kind of URL, and clients handed in."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.asyncio
from redis.cluster import RedisCluster
from redis.sentinel import SentinelConnectionPool

from otel_cache import CacheConfig, CacheConfigError, MultiLevelCache
from otel_cache.backends.redis_connect import RedisConnector, db_of, kind_of


def test_a_sentinel_url_authenticates_to_sentinels_and_primary_apart() -> None:
    url = "rediss+sentinel://app:primary-pw@s1:26380,s2/mymaster/3?sentinel_password=sentinel-pw&ssl_cert_reqs=none"
    connection = RedisConnector(CacheConfig(redis_url=url)).sync("data")  # no I/O until a command
    client = connection.client
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert kind_of(client) == "sentinel"
    assert db_of(client) == 3
    assert (pool.connection_kwargs["username"], pool.connection_kwargs["password"]) == ("app", "primary-pw")
    assert "sentinel_password" not in pool.connection_kwargs
    sentinels = connection.sentinel.sentinels
    assert [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in sentinels
    ] == [
        ("s1", 26380),
        ("s2", 26379),
    ]
    assert all(s.connection_pool.connection_kwargs["password"] == "sentinel-pw" for s in sentinels)
    assert all(s.connection_pool.connection_kwargs.get("ssl_cert_reqs") == "none" for s in sentinels)
    connection.close()


def test_a_one_server_url_keeps_its_options_and_the_caches_timeouts() -> None:
    config = CacheConfig(redis_url="redis://u:pw@h:6390/2?socket_keepalive=true", redis_timeout=0.3)
    client = RedisConnector(config).sync("channel").client
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("h", 6390, 2, "pw")
    assert kwargs["socket_keepalive"] is True
    assert kwargs["socket_timeout"] == 0.3
    assert client.connection_pool.max_connections == 2  # the channel's own small pool
    assert kind_of(client) == "standalone"
    client.close()


def test_a_client_handed_in_is_used_as_it_is_and_never_closed(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    cache: MultiLevelCache[str, Any] = MultiLevelCache(CacheConfig(namespace="given"), redis_client=client)
    cache.put("k", {"v": 1})
    cache.l1.clear()
    assert cache.get("k") == {"v": 1}
    assert cache.stats().l2.hits == 1
    cache.close()
    assert client.ping()  # still open
    client.close()


@pytest.mark.parametrize("given", ["redis://h:6379", object()])
def test_something_else_than_a_client_is_refused_when_the_cache_is_made(given: Any) -> None:
    with pytest.raises(CacheConfigError, match="redis_client must be a redis-py client"):
        MultiLevelCache(CacheConfig(namespace="bad"), redis_client=given)


def test_a_function_that_makes_no_client_is_refused_at_first_use() -> None:
    cache: MultiLevelCache[str, Any] = MultiLevelCache(
        CacheConfig(namespace="bad", invalidation=False), redis_client=lambda: "not a client"
    )
    try:
        with pytest.raises(CacheConfigError, match=r"redis_client\(\) returned str"):
            cache.put("k", 1)
    finally:
        cache.close()


def test_the_api_without_a_client_says_which_to_pass() -> None:
    cache: MultiLevelCache[str, Any] = MultiLevelCache(
        CacheConfig(namespace="one", invalidation=False), async_redis_client=lambda: redis.asyncio.Redis()
    )
    try:
        with pytest.raises(CacheConfigError, match="redis_client="):
            cache.put("k", 1)
    finally:
        cache.close()


def test_kinds_of_clients() -> None:
    cluster = RedisCluster.__new__(RedisCluster)  # the type alone decides; nothing connects
    assert kind_of(cluster) == "cluster"
    assert db_of(cluster) == 0
