"""The cache's L2 reads on a Redis Cluster against raw redis-py: ``python -m benchmarks.cluster``.

Starts its own cluster (3 primaries, 3 replicas; ``tests/support``). Rows, for the sync API
(``MultiLevelCache(config)`` against ``redis.cluster.RedisCluster``) and the async one
(``async_mode=True`` against ``redis.asyncio.cluster.RedisCluster``)::

    get            a key in Redis, not in L1 (an L2 hit that fills L1)  vs  GET of its Redis key
    get_many 100   100 keys over the 3 shards, none in L1              vs  mget_nonatomic of them

Method: client CPU per call (``time.process_time()``), gc off, the median over ``--rounds``
rounds in which the two variants alternate (order rotated each round); L1 is emptied
before each cache round, outside the timed part, and the cache's L2 counters must show
one hit per key read and no error. Nothing is pinned (six servers share the cores).
``cache / raw`` is the ratio of the medians: the cost of the cache per call relative to
redis-py's own cluster call. No telemetry here (``benchmarks.l2`` measures its cost).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio.cluster
from redis.cluster import ClusterNode, RedisCluster

from otel_cache import CacheConfig, MultiLevelCache
from tests.support.redis_cluster import RedisClusterServers

VALUE = {"id": 1, "name": "x", "tags": ["a", "b"]}
ROWS = (("get", 1), ("get_many 100", 100))


def _timed(call: Callable[[], Any], prepare: Callable[[], None] = lambda: None) -> float:
    prepare()
    gc.disable()
    try:
        started = time.process_time()
        call()
        return time.process_time() - started
    finally:
        gc.enable()


def _config(url: str) -> CacheConfig:
    return CacheConfig(redis_url=url, namespace="bench", invalidation=False, l1_max_entries=100_000)


def run_sync(url: str, seeds: list[tuple[str, int]], rounds: int, calls: int) -> dict[str, Any]:
    cache: MultiLevelCache[str, Any] = MultiLevelCache(_config(url))
    raw = RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in seeds])
    out: dict[str, Any] = {}
    try:
        for name, size in ROWS:
            keys = [f"{name}:{i}" for i in range(calls * size)]
            cache.put_many([(key, VALUE) for key in keys], None)
            batches = [keys[i : i + size] for i in range(0, len(keys), size)]
            l2_batches = [[cache.tiers.l2_key(key) for key in batch] for batch in batches]

            def cache_round(batches: list[list[str]] = batches, size: int = size) -> None:
                for batch in batches:
                    if size > 1:
                        cache.get_many(batch)
                    else:
                        cache.get(batch[0])

            def raw_round(l2_batches: list[list[str]] = l2_batches, size: int = size) -> None:
                for batch in l2_batches:
                    if size > 1:
                        raw.mget_nonatomic(batch)
                    else:
                        raw.get(batch[0])

            out[name] = _rounds(rounds, calls, cache_round, raw_round, cache.l1.clear, cache, len(keys))
    finally:
        raw.close()
        cache.close()
    return out


def run_async(url: str, seeds: list[tuple[str, int]], rounds: int, calls: int) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        cache: MultiLevelCache[str, Any] = MultiLevelCache(_config(url), async_mode=True)
        raw = redis.asyncio.cluster.RedisCluster(
            startup_nodes=[redis.asyncio.cluster.ClusterNode(host, port) for host, port in seeds]
        )
        out: dict[str, Any] = {}
        try:
            for name, size in ROWS:
                keys = [f"a{name}:{i}" for i in range(calls * size)]
                await cache.aput_many([(key, VALUE) for key in keys], None)
                batches = [keys[i : i + size] for i in range(0, len(keys), size)]
                l2_batches = [[cache.tiers.l2_key(key) for key in batch] for batch in batches]
                samples: dict[str, list[float]] = {"cache": [], "raw": []}
                for round_ in range(rounds + 1):  # the first round warms up
                    for variant in ("cache", "raw")[:: 1 if round_ % 2 else -1]:
                        cache.l1.clear()
                        before = cache.stats().l2.hits
                        gc.disable()
                        started = time.process_time()
                        for batch, l2_batch in zip(batches, l2_batches, strict=True):
                            if variant == "cache" and size > 1:
                                await cache.aget_many(batch)
                            elif variant == "cache":
                                await cache.aget(batch[0])
                            elif size > 1:
                                await raw.mget_nonatomic(l2_batch)
                            else:
                                await raw.get(l2_batch[0])
                        took = time.process_time() - started
                        gc.enable()
                        if variant == "cache":
                            _check(cache, before, len(keys))
                        if round_:
                            samples[variant].append(took / calls)
                out[name] = _summary(samples)
        finally:
            await raw.aclose()
            await cache.aclose()
        return out

    return asyncio.run(main())


def _rounds(
    rounds: int,
    calls: int,
    cache_round: Callable[[], None],
    raw_round: Callable[[], None],
    clear: Callable[[], None],
    cache: MultiLevelCache[str, Any],
    reads: int,
) -> dict[str, Any]:
    samples: dict[str, list[float]] = {"cache": [], "raw": []}
    for round_ in range(rounds + 1):  # the first round warms up
        for variant in ("cache", "raw")[:: 1 if round_ % 2 else -1]:
            before = cache.stats().l2.hits
            took = _timed(cache_round if variant == "cache" else raw_round, clear)
            if variant == "cache":
                _check(cache, before, reads)
            if round_:
                samples[variant].append(took / calls)
    return _summary(samples)


def _check(cache: MultiLevelCache[str, Any], hits_before: int, reads: int) -> None:
    stats = cache.stats().l2
    assert stats.hits - hits_before == reads, "every read must be one L2 hit"
    assert stats.errors == {}, stats.errors


def _summary(samples: dict[str, list[float]]) -> dict[str, Any]:
    cache, raw = statistics.median(samples["cache"]), statistics.median(samples["raw"])
    ratios = [c / r for c, r in zip(samples["cache"], samples["raw"], strict=True)]
    return {
        "cache_us": round(cache * 1e6, 1),
        "raw_us": round(raw * 1e6, 1),
        "cache_over_raw": round(cache / raw, 2),
        "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)],
    }


def run(url: str, seeds: list[tuple[str, int]], rounds: int, calls: int) -> dict[str, Any]:
    return {"sync": run_sync(url, seeds, rounds, calls), "async": run_async(url, seeds, rounds, calls)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=200, help="calls per round and row")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    with RedisClusterServers() as cluster:
        print("cluster up; measuring ...", file=sys.stderr)
        result = run(cluster.url, cluster.seed_nodes, args.rounds, args.calls)
    print(f"{'api':<6} {'row':<13} {'cache µs':>9} {'raw µs':>8} {'cache/raw':>10}  (min..max)")
    for api, rows in result.items():
        for name, row in rows.items():
            low, high = row["ratio_range"]
            print(
                f"{api:<6} {name:<13} {row['cache_us']:>9} {row['raw_us']:>8} "
                f"{row['cache_over_raw']:>9}x  ({low}..{high})"
            )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"date": time.strftime("%Y-%m-%d %H:%M"), "results": result}, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
