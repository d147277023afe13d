"""Failovers under load, measured: ``python -m benchmarks.failover [--json PATH]``.

Starts its own Redis Cluster (3 primaries, 3 replicas, ``cluster-require-full-coverage
no``) and Sentinel set (1 primary, 1 replica, 3 sentinels) on free loopback ports
(``tests/support``). For each scenario three threads put and get keys through one
sync ``MultiLevelCache`` (``l1_max_entries=10``: nearly every get goes to Redis) while
the scenario runs; a fourth reader reads, again and again, keys that no writer touches
and that live on the shards that stay up (cluster), from Redis (L1 emptied of them
first). Reported per scenario:

    calls             puts and gets of the load threads
    failed calls      exceptions that reached a caller (degrade policy: should be 0)
    L2 errors         failed Redis calls the cache counted (misses and L1-only writes)
    slowest call      the longest put+get pair of a load thread
    promotion         from the kill (or the failover command) to the replica answering as primary
    writes land       from the promotion to the first put of a key of the failed shard that
                      the new primary holds
    healthy shards    share of the reader's keys that Redis served between kill and promotion
    writes lost       of the puts of new keys by a fifth thread (one key per put, through a
                      cache of its own with ``on_backend_error="raise"``, so that a put that
                      returns is one that Redis acknowledged), those missing from Redis
                      afterwards; the last of them, in seconds after the promotion
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

from otel_cache import CacheConfig, MultiLevelCache
from tests.support.redis_cluster import RedisClusterServers
from tests.support.redis_sentinel import RedisSentinelSet

KEYS = [f"user:{i}" for i in range(300)]


class Load:
    """Three threads of put+get over ``keys``; what reached the callers."""

    def __init__(self, cache: MultiLevelCache[str, Any], keys: list[str]) -> None:
        self.cache, self.keys = cache, keys
        self.calls = self.failures = 0
        self.slowest = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(3)]

    def _run(self, n: int) -> None:
        i = n
        while not self._stop.is_set():
            key = self.keys[i % len(self.keys)]
            i += 3
            started = time.monotonic()
            failed = 0
            try:
                self.cache.put(key, i)
                self.cache.get(key)
            except Exception:
                failed = 1
            took = time.monotonic() - started
            with self._lock:
                self.calls += 2
                self.failures += failed
                self.slowest = max(self.slowest, took)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


class UniqueWriter:
    """A thread that puts keys never written before and remembers when Redis acknowledged each."""

    def __init__(self, config: CacheConfig) -> None:
        self.cache: MultiLevelCache[str, Any] = MultiLevelCache(
            dataclasses.replace(config, on_backend_error="raise")
        )
        self.acknowledged: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            key = f"new:{i}"
            i += 1
            try:
                self.cache.put(key, i)
            except Exception:
                continue
            self.acknowledged.append((time.monotonic(), key))
            time.sleep(0.001)

    def __enter__(self) -> UniqueWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.cache.close()

    def lost(self, mget: Callable[[list[str]], list[Any]], promoted_at: float) -> dict[str, Any]:
        """How many acknowledged puts Redis does not hold, and the last of them."""
        keys = [self.cache.tiers.l2_key(key) for _, key in self.acknowledged]
        present: list[Any] = []
        for start in range(0, len(keys), 500):
            present += mget(keys[start : start + 500])
        lost = [at for (at, _), value in zip(self.acknowledged, present, strict=True) if value is None]
        return {
            "writes acknowledged": len(keys),
            "writes lost": len(lost),
            "last lost write s": round(max(lost) - promoted_at, 2) if lost else None,
        }


def served_from_redis(cache: MultiLevelCache[str, Any], keys: list[str]) -> int:
    for key in keys:
        cache.l1.delete(key)
    return len(cache.get_many(keys))


def until_landed(cache: MultiLevelCache[str, Any], key: str, holds: Callable[[str], bool]) -> float:
    started = time.monotonic()
    while True:
        cache.put(key, "after")
        if holds(cache.tiers.l2_key(key)):
            return time.monotonic() - started
        if time.monotonic() - started > 30:
            return float("inf")
        time.sleep(0.01)


def cluster_kill(graceful: bool) -> dict[str, Any]:
    with RedisClusterServers() as cluster:
        cache: MultiLevelCache[str, Any] = MultiLevelCache(
            CacheConfig(redis_url=cluster.url, namespace="failover", l1_max_entries=10, invalidation=False)
        )
        try:
            cache.put_many([(key, key) for key in KEYS], None)
            victim = cluster.primary_for_key(cache.tiers.l2_key(KEYS[0]))
            on_victim = [k for k in KEYS if cluster.primary_for_key(cache.tiers.l2_key(k)) is victim]
            elsewhere = [k for k in KEYS if k not in on_victim]
            quiet, busy = elsewhere[::2], elsewhere[1::2]
            probe = on_victim[0]
            asked = served = 0
            with (
                Load(cache, on_victim[1:] + busy) as load,
                UniqueWriter(cache.config) as writer,
                ThreadPoolExecutor(1) as pool,
            ):
                started = time.monotonic()
                if graceful:
                    promoted_future = pool.submit(cluster.failover, cluster.replica_of(victim))
                else:
                    cluster.kill(victim)
                    promoted_future = pool.submit(cluster.wait_promoted, victim)
                while not promoted_future.done():
                    asked += len(quiet)
                    served += served_from_redis(cache, quiet)
                promoted_future.result()
                promoted_at = time.monotonic()
                promotion = promoted_at - started
                seeds = [ClusterNode(host, port) for host, port in cluster.seed_nodes]
                after = cache.tiers.encode("after")  # the stored bytes end with it (after the envelope)
                with RedisCluster(startup_nodes=seeds) as raw:
                    landed = until_landed(
                        cache, probe, lambda l2_key: (raw.get(l2_key) or b"").endswith(after)
                    )
                time.sleep(2.0)
            with RedisCluster(startup_nodes=seeds) as raw:
                lost = writer.lost(raw.mget_nonatomic, promoted_at)
            errors = cache.stats().l2.errors
        finally:
            cache.close()
    return {
        "calls": load.calls,
        "failed calls": load.failures,
        "L2 errors": sum(errors.values()),
        "errors by type": errors,
        "slowest call s": round(load.slowest, 3),
        "promotion s": round(promotion, 2),
        "writes land s": round(landed, 2),
        "healthy shards served": round(served / asked, 4) if asked else None,
    } | lost


def sentinel_kill(graceful: bool) -> dict[str, Any]:
    with RedisSentinelSet() as sentinels:
        cache: MultiLevelCache[str, Any] = MultiLevelCache(
            CacheConfig(redis_url=sentinels.url, namespace="failover", l1_max_entries=10, invalidation=False)
        )
        try:
            cache.put_many([(key, key) for key in KEYS], None)
            old = sentinels.current_primary()
            with Load(cache, KEYS[1:]) as load, UniqueWriter(cache.config) as writer:
                started = time.monotonic()
                if graceful:
                    new = sentinels.failover(wait_old_primary=False)
                else:
                    sentinels.kill_primary()
                    new = sentinels.wait_failover(old)
                promoted_at = time.monotonic()
                promotion = promoted_at - started
                after = cache.tiers.encode("after")
                with redis.Redis(host=new.host, port=new.port) as raw:
                    landed = until_landed(
                        cache, KEYS[0], lambda l2_key: (raw.get(l2_key) or b"").endswith(after)
                    )
                time.sleep(2.0)
            with redis.Redis(host=new.host, port=new.port) as raw:
                lost = writer.lost(raw.mget, promoted_at)
            errors = cache.stats().l2.errors
        finally:
            cache.close()
    return {
        "calls": load.calls,
        "failed calls": load.failures,
        "L2 errors": sum(errors.values()),
        "errors by type": errors,
        "slowest call s": round(load.slowest, 3),
        "promotion s": round(promotion, 2),
        "writes land s": round(landed, 2),
        "READONLY errors": errors.get("ReadOnlyError", 0),
    } | lost


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "cluster: kill -9 a primary": lambda: cluster_kill(graceful=False),
    "cluster: CLUSTER FAILOVER": lambda: cluster_kill(graceful=True),
    "sentinel: kill -9 the primary": lambda: sentinel_kill(graceful=False),
    "sentinel: SENTINEL FAILOVER": lambda: sentinel_kill(graceful=True),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, Any]] = {}
    for name, scenario in SCENARIOS.items():
        print(f"running {name} ...", file=sys.stderr)
        results[name] = scenario()
    for name, figures in results.items():
        print(f"\n{name}")
        for label, value in figures.items():
            print(f"  {label:<24} {value}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"date": time.strftime("%Y-%m-%d"), "results": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
