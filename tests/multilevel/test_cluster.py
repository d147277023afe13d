"""The multi-level cache on a real Redis Cluster (3 primaries, 3 replicas), both APIs.

The behaviour suite (``test_behaviour.py``) runs on the cluster too; here is what is
the cluster's own: keys spread over every shard, batches across slots, clear on every
primary, other processes' invalidations, a client handed in, and failures: a primary
killed (its keys are misses, the other shards keep serving, writes reach the promoted
replica soon after) and a graceful failover (no failed call).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis.asyncio.cluster
from redis.cluster import ClusterNode, RedisCluster

from otel_cache import BackendError, CacheConfig, CircuitOpenError, MultiLevelCache
from tests.multilevel.adapters import CacheAdapter
from tests.support.redis_cluster import RedisClusterServers
from tests.support.stored import payload

pytestmark = [pytest.mark.cluster]

KEYS = [f"user:{i}" for i in range(120)]


def raw_client(cluster: RedisClusterServers) -> RedisCluster:
    return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in cluster.seed_nodes])


@pytest.fixture
def cluster_config(redis_cluster_url: str) -> CacheConfig:
    return CacheConfig(redis_url=redis_cluster_url, namespace="cluster", l1_max_entries=1_000)


async def test_keys_spread_over_every_shard_and_come_back(
    make_cache: Callable[..., CacheAdapter], cluster_config: CacheConfig, redis_cluster: RedisClusterServers
) -> None:
    cache = make_cache(cluster_config)
    for i, key in enumerate(KEYS):
        await cache.put(key, {"n": i})
    primaries = redis_cluster.primaries()
    assert len(primaries) == 3
    with raw_client(redis_cluster) as raw:
        sizes = [raw.dbsize(target_nodes=raw.get_node(p.host, p.port)) for p in primaries]
    assert all(size > 0 for size in sizes), sizes  # no hash tag pins the namespace to one slot
    assert sum(sizes) == len(KEYS)
    cache.l1.clear()
    assert await cache.get(KEYS[7]) == {"n": 7}
    cache.l1.clear()
    assert await cache.get_many(KEYS) == {key: {"n": i} for i, key in enumerate(KEYS)}
    assert cache.ml.stats().l2.errors == {}


async def test_put_many_delete_and_clear_reach_every_primary(
    make_cache: Callable[..., CacheAdapter], cluster_config: CacheConfig, redis_cluster: RedisClusterServers
) -> None:
    cache = make_cache(cluster_config)
    await cache.put_many([(key, key) for key in KEYS], 60)
    with raw_client(redis_cluster) as raw:
        assert raw.exists(*[cache.l2_key(key) for key in KEYS]) == len(KEYS)
        assert 0 < raw.pttl(cache.l2_key(KEYS[0])) <= 60_000
        assert await cache.delete(KEYS[0]) is True
        assert raw.exists(cache.l2_key(KEYS[0])) == 0
        assert await cache.clear() == len(KEYS) - 1
        assert raw.exists(*[cache.l2_key(key) for key in KEYS]) == 0
    assert cache.ml.stats().l2.errors == {}


async def test_tags_invalidate_keys_on_every_shard(
    make_cache: Callable[..., CacheAdapter], cluster_config: CacheConfig
) -> None:
    cache = make_cache(cluster_config)
    await cache.put_many([(key, key) for key in KEYS[:30]], None, tags=["users"])
    await cache.put("other", 1)
    assert await cache.invalidate_tags(["users"]) == 30
    cache.l1.clear()
    assert await cache.get_many(KEYS[:30]) == {}
    assert await cache.get("other") == 1


async def test_concurrent_cold_callers_make_one_redis_read_and_one_load(cluster_config: CacheConfig) -> None:
    cache: MultiLevelCache[str, Any] = MultiLevelCache(cluster_config, async_mode=True)
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.05)
        return "value"

    try:
        results = await asyncio.gather(*(cache.aget_or_set("cold", load) for _ in range(20)))
        assert results == ["value"] * 20
        assert loads == 1
        stats = cache.stats()
        assert stats.async_flights.coalesced == 19
        assert stats.l2.hits + stats.l2.misses == 1  # one Redis read for the 20 callers
    finally:
        await cache.aclose()


def test_a_write_in_one_cache_drops_the_copies_of_the_others(cluster_config: CacheConfig) -> None:
    # Two caches of their own (channels, clients): as two processes on the same cluster.
    reader: MultiLevelCache[str, Any] = MultiLevelCache(cluster_config)
    writer: MultiLevelCache[str, Any] = MultiLevelCache(cluster_config)
    try:
        for key in KEYS[:20]:
            writer.put(key, "old")
            assert reader.get(key) == "old"  # now a copy in the reader's L1
        for key in KEYS[:20]:
            writer.put(key, "new")
        deadline = time.monotonic() + 10
        while any(reader.l1.peek(key, None) == "old" for key in KEYS[:20]):
            assert time.monotonic() < deadline, "the reader kept old copies"
            time.sleep(0.02)
        assert [reader.get(key) for key in KEYS[:20]] == ["new"] * 20
        assert reader.stats().l2.errors == {}
    finally:
        writer.close()
        reader.close()


async def test_a_client_handed_in_is_used_and_not_closed(
    redis_cluster: RedisClusterServers, redis_cluster_url: str
) -> None:
    seeds = [ClusterNode(host, port) for host, port in redis_cluster.seed_nodes]
    sync_client = RedisCluster(startup_nodes=seeds)
    made: list[Any] = []

    def async_client() -> Any:
        client = redis.asyncio.cluster.RedisCluster(
            startup_nodes=[
                redis.asyncio.cluster.ClusterNode(host, port) for host, port in redis_cluster.seed_nodes
            ]
        )
        made.append(client)
        return client

    cache: MultiLevelCache[str, Any] = MultiLevelCache(
        CacheConfig(namespace="byo"), redis_client=sync_client, async_redis_client=async_client
    )
    try:
        cache.put_many([(key, key) for key in KEYS], None)
        cache.l1.clear()
        assert await cache.aget_many(KEYS) == {key: key for key in KEYS}
        assert "l2=client" in repr(cache)
        assert cache.stats().l2.errors == {}
    finally:
        await cache.aclose()
        cache.close()
    assert made  # the factory served the async API
    assert sync_client.get(cache.tiers.l2_key(KEYS[0])) is not None  # still open: not ours to close
    sync_client.close()


def test_a_one_server_url_at_a_cluster_node_says_what_to_use(redis_cluster: RedisClusterServers) -> None:
    host, port = redis_cluster.seed_nodes[0]
    config = CacheConfig(redis_url=f"redis://{host}:{port}/0", namespace="moved", on_backend_error="raise")
    cache: MultiLevelCache[str, Any] = MultiLevelCache(config)
    try:
        errors = []
        for key in KEYS[:30]:
            try:
                cache.put(key, 1)
            except CircuitOpenError:
                break  # enough MOVED replies opened the breaker: Redis is skipped from here
            except BackendError as exc:
                errors.append(str(exc))
        assert errors, "no key of 30 was MOVED: the namespace hashes to one node?"
        assert all("redis+cluster://" in message for message in errors), sorted(set(errors))[:3]
    finally:
        cache.close()


# -- failures --------------------------------------------------------------------------------


class Load:
    """Threads putting and getting keys through one cache until stopped; what reached the callers."""

    def __init__(self, cache: MultiLevelCache[str, Any], keys: list[str], threads: int = 3) -> None:
        self.cache, self.keys = cache, keys
        self.failures: list[BaseException] = []
        self.calls = 0
        self.slowest = 0.0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def _run(self, n: int) -> None:
        i = n
        while not self._stop.is_set():
            key = self.keys[i % len(self.keys)]
            i += 3
            started = time.monotonic()
            try:
                self.cache.put(key, i)
                self.cache.get(key)
            except BaseException as exc:
                self.failures.append(exc)
            self.calls += 2
            self.slowest = max(self.slowest, time.monotonic() - started)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


@pytest.fixture
def failing_cluster(fresh_redis_cluster: RedisClusterServers) -> RedisClusterServers:
    """A cluster of the test's own; its nodes run with ``cluster-require-full-coverage no``
    (without it every node refuses every key while one shard is down)."""
    return fresh_redis_cluster


def read_from_redis(cache: MultiLevelCache[str, Any], keys: list[str]) -> dict[str, Any]:
    """``get_many`` of ``keys`` after dropping them from L1: what Redis answered (no other
    caller touches these keys, so nothing puts them back in L1 meanwhile)."""
    for key in keys:
        cache.l1.delete(key)
    return cache.get_many(keys)


@pytest.mark.timeout(120)
def test_a_killed_primary_costs_only_its_own_keys_and_writes_reach_its_replica(
    failing_cluster: RedisClusterServers,
) -> None:
    cluster = failing_cluster
    config = CacheConfig(redis_url=cluster.url, namespace="failover", l1_max_entries=10, redis_timeout=0.5)
    cache: MultiLevelCache[str, Any] = MultiLevelCache(config)
    try:
        cache.put_many([(key, key) for key in KEYS], None)
        victim = cluster.primary_for_key(cache.tiers.l2_key(KEYS[0]))
        on_victim = [key for key in KEYS if cluster.primary_for_key(cache.tiers.l2_key(key)) is victim]
        elsewhere = [key for key in KEYS if key not in on_victim]
        quiet, busy = elsewhere[::2], elsewhere[1::2]  # the load never touches the quiet keys
        assert on_victim
        assert quiet
        probe = on_victim[0]
        with Load(cache, on_victim[1:] + busy) as load:
            cluster.kill(victim)
            # During the whole outage (until the replica is promoted) the other shards answer.
            with ThreadPoolExecutor(1) as pool:
                outage = pool.submit(cluster.wait_promoted, victim)
                reads = 0
                while not outage.done() or not reads:
                    # A batch with a key of the dead shard too: the other nodes still answer.
                    found = read_from_redis(cache, [*quiet, probe])
                    assert {key: found.get(key) for key in quiet} == {key: key for key in quiet}
                    reads += 1
                promoted = outage.result()
            promoted_at = time.monotonic()
            # Writes of the dead shard's keys land on the promoted replica within 2 s.
            with raw_client(cluster) as raw:
                while True:
                    cache.put(probe, "after")
                    if payload(raw.get(cache.tiers.l2_key(probe))) == cache.tiers.encode("after"):
                        landed = time.monotonic() - promoted_at
                        break
                    assert time.monotonic() - promoted_at < 10, "writes never reached the promoted replica"
                    time.sleep(0.05)
            assert promoted.port != victim.port
        assert landed < 2.0, f"writes reached the new primary {landed:.2f} s after its promotion"
        assert load.failures == []  # degrade: nothing reached a caller
        assert load.slowest < 1.5 * 0.5 + 0.5  # no call far beyond the timeout (ClusterDown waits 0.25 s)
        # Afterwards every shard serves again.
        assert read_from_redis(cache, [probe]) == {probe: "after"}
        assert read_from_redis(cache, quiet) == {key: key for key in quiet}
    finally:
        cache.close()


@pytest.mark.timeout(120)
async def test_a_graceful_failover_fails_no_call(failing_cluster: RedisClusterServers) -> None:
    cluster = failing_cluster
    config = CacheConfig(redis_url=cluster.url, namespace="graceful", l1_max_entries=10)
    cache: MultiLevelCache[str, Any] = MultiLevelCache(config)
    try:
        cache.put_many([(key, key) for key in KEYS], None)
        victim = cluster.primary_for_key(cache.tiers.l2_key(KEYS[0]))
        with Load(cache, KEYS) as load:
            await asyncio.to_thread(cluster.failover, cluster.replica_of(victim))
            await asyncio.sleep(0.5)
        assert load.failures == []
        assert load.calls > 0
        assert cache.stats().l2.errors == {}
        cache.l1.clear()
        assert len(cache.get_many(KEYS)) == len(KEYS)  # every key still in Redis
    finally:
        cache.close()
