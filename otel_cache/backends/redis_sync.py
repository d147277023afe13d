"""``RedisBackend``: L2 through redis-py's sync client (sync mode)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from otel_cache.backends.protocol import Stored
from otel_cache.backends.redis_errors import map_redis_errors
from otel_cache.backends.redis_options import SCAN_BATCH, glob_escape, pool_options, stored
from otel_cache.config import CacheConfig

__all__ = ["RedisBackend"]


class RedisBackend:
    """The :class:`~otel_cache.backends.SyncBackend` over ``redis.Redis``; thread-safe (a pool)."""

    def __init__(self, config: CacheConfig) -> None:
        assert config.redis_url is not None
        pool = redis.BlockingConnectionPool.from_url(
            config.redis_url, **pool_options(config, Retry(NoBackoff(), 0))
        )
        self.client: redis.Redis = redis.Redis.from_pool(pool)

    def get(self, key: str) -> Stored | None:
        with map_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.get(key)
            pipe.pttl(key)
            value, pttl = pipe.execute()
        return stored(value, pttl)

    def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        with map_redis_errors():
            self.client.set(key, value, px=ttl_ms)

    def delete(self, key: str) -> bool:
        with map_redis_errors():
            return bool(self.client.delete(key))

    def get_many(self, keys: Sequence[str]) -> list[Stored | None]:
        if not keys:
            return []
        with map_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.mget(keys)
            for key in keys:
                pipe.pttl(key)
            values, *pttls = pipe.execute()
        return [stored(value, pttl) for value, pttl in zip(values, pttls, strict=True)]

    def delete_many(self, keys: Sequence[str]) -> int:
        """Delete ``keys`` (one UNLINK); how many existed."""
        if not keys:
            return 0
        with map_redis_errors():
            return int(self.client.unlink(*keys))

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        if not items:
            return
        with map_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for key, value in items:
                pipe.set(key, value, px=ttl_ms)
            pipe.execute()

    def clear(self, prefix: str) -> int:
        """Delete every key under ``prefix`` (SCAN + UNLINK; never FLUSHDB)."""
        removed = 0
        with map_redis_errors():
            batch: list[Any] = []
            for key in self.client.scan_iter(match=glob_escape(prefix) + "*", count=SCAN_BATCH):
                batch.append(key)
                if len(batch) >= SCAN_BATCH:
                    removed += int(self.client.unlink(*batch))
                    batch.clear()
            if batch:
                removed += int(self.client.unlink(*batch))
        return removed

    def close(self) -> None:
        with map_redis_errors():
            self.client.close()
