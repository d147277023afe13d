"""The watch that moves a Sentinel client's pooled connections to the primary the sentinels
name, on a real Sentinel set (1 primary, 1 replica, 3 sentinels)."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from otel_cache import CacheConfig
from otel_cache.backends.redis_connect import RedisConnector
from otel_cache.backends.sentinel_follow import AsyncPrimaryWatch, PrimaryWatch
from tests.support.redis_sentinel import RedisSentinelSet

pytestmark = [pytest.mark.sentinel, pytest.mark.timeout(120)]


def served_by(info: dict[str, object]) -> int:
    return int(str(info["tcp_port"]))


async def test_idle_pooled_connections_move_to_the_new_primary(
    fresh_redis_sentinel: RedisSentinelSet,
) -> None:
    sentinels = fresh_redis_sentinel
    connector = RedisConnector(CacheConfig(redis_url=sentinels.url))
    sync, async_ = connector.sync("data"), connector.async_("data")
    try:
        old = sentinels.current_primary()
        assert served_by(sync.client.info("server")) == old.port  # a pooled connection to it now
        assert served_by(await async_.client.info("server")) == old.port
        new = await asyncio.to_thread(sentinels.failover, wait_old_primary=False)
        assert sentinels.role(old) == "master"  # still writable: the pools must leave it by themselves
        deadline = time.monotonic() + 10
        while (
            sync.client.connection_pool.master_address,
            async_.client.connection_pool.master_address,
        ) != ((new.host, new.port),) * 2:
            assert time.monotonic() < deadline, "the watches never saw the new primary"
            await asyncio.sleep(0.05)
        assert served_by(sync.client.info("server")) == new.port
        assert served_by(await async_.client.info("server")) == new.port
    finally:
        sync.close()
        await async_.aclose()


async def test_closing_a_connection_stops_its_watch() -> None:
    connector = RedisConnector(CacheConfig(redis_url="redis+sentinel://127.0.0.1:1/mymaster"))
    sync, async_ = connector.sync("data"), connector.async_("data")
    assert isinstance(sync.watch, PrimaryWatch)
    assert isinstance(async_.watch, AsyncPrimaryWatch)
    assert sync.watch.running  # no sentinel answers: they keep asking
    assert async_.watch.running
    sync.close()
    await async_.aclose()
    assert not async_.watch.running
    deadline = time.monotonic() + 10
    while sync.watch.running:
        assert time.monotonic() < deadline, "the watch thread did not end"
        await asyncio.sleep(0.05)


async def test_a_watch_ends_with_the_client_it_watches() -> None:
    connector = RedisConnector(CacheConfig(redis_url="redis+sentinel://127.0.0.1:1/mymaster"))
    sync, async_ = connector.sync("data"), connector.async_("data")
    watches = (sync.watch, async_.watch)
    assert all(watch is not None and watch.running for watch in watches)
    del sync, async_
    gc.collect()
    deadline = time.monotonic() + 10
    while any(watch is not None and watch.running for watch in watches):
        assert time.monotonic() < deadline, "a watch outlived its client"
        await asyncio.sleep(0.05)
