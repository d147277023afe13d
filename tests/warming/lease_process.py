"""A warmer in a process of its own, for the leader-election tests.

    python -m tests.warming.lease_process URL NAMESPACE NAME MODE LEASE_TTL

Runs a ``CacheWarmer`` (``MODE`` ``sync``: a thread, ``async``: tasks) over a
``MultiLevelCache`` on ``URL``; its loader counts each call in Redis, under
``{NAMESPACE}:loads:{pid}``, so the test sees which process warms. Prints ``ready``
once started; stops the warmer (releasing the lease) when stdin closes.
"""

from __future__ import annotations

import asyncio
import os
import sys

import redis

from otel_cache import CacheConfig, MultiLevelCache
from otel_cache.warming import CacheWarmer

INTERVAL = 0.05


def loads_key(namespace: str, pid: int) -> str:
    return f"{namespace}:loads:{pid}"


def main(url: str, namespace: str, name: str, mode: str, lease_ttl: str) -> None:
    counter = redis.Redis.from_url(url)
    key = loads_key(namespace, os.getpid())

    def load(cache_key: str) -> int:
        return int(counter.incr(key))

    config = CacheConfig(redis_url=url, namespace=namespace, invalidation=False)
    if mode == "sync":
        cache: MultiLevelCache[str, int] = MultiLevelCache(config)
        warmer = CacheWarmer(cache, load, ["k"], interval=INTERVAL, name=name, lease_ttl=float(lease_ttl))
        with warmer:
            print("ready", flush=True)
            sys.stdin.read()
        cache.close()
    else:

        async def serve() -> None:
            cache: MultiLevelCache[str, int] = MultiLevelCache(config, async_mode=True)
            warmer = CacheWarmer(
                cache, load, ["k"], interval=INTERVAL, name=name, lease_ttl=float(lease_ttl), async_mode=True
            )
            async with warmer:
                print("ready", flush=True)
                await asyncio.to_thread(sys.stdin.read)
            await cache.aclose()
            cache.close()

        asyncio.run(serve())
    counter.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
