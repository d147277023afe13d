"""``RedisBackend``: L2 through redis-py's sync client (sync mode)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from otel_cache.backends.envelope import now_ms, unwrap, unwrap_many, wrap
from otel_cache.backends.protocol import Stored
from otel_cache.backends.redis_errors import map_redis_errors
from otel_cache.backends.redis_options import SCAN_BATCH, add_to_tags, glob_escape, pool_options, text
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
            raw = self.client.get(key)
        return unwrap(raw, now_ms())

    def set(self, key: str, value: bytes, ttl_ms: int | None, tag_keys: Sequence[str] = ()) -> None:
        value = wrap(value, ttl_ms, now_ms())
        with map_redis_errors():
            if not tag_keys:
                self.client.set(key, value, px=ttl_ms)
                return
            pipe = self.client.pipeline(transaction=False)
            pipe.set(key, value, px=ttl_ms)
            add_to_tags(pipe, tag_keys, [key], ttl_ms)
            pipe.execute()

    def delete(self, key: str) -> bool:
        with map_redis_errors():
            return bool(self.client.delete(key))

    def get_many(self, keys: Sequence[str]) -> list[Stored | None]:
        if not keys:
            return []
        with map_redis_errors():
            values = self.client.mget(keys)
        return unwrap_many(values, now_ms())

    def delete_many(self, keys: Sequence[str]) -> int:
        """Delete ``keys`` (one UNLINK); how many existed."""
        if not keys:
            return 0
        with map_redis_errors():
            return int(self.client.unlink(*keys))

    def set_many(
        self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None, tag_keys: Sequence[str] = ()
    ) -> None:
        if not items:
            return
        with map_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            now = now_ms()
            for key, value in items:
                pipe.set(key, wrap(value, ttl_ms, now), px=ttl_ms)
            if tag_keys:
                add_to_tags(pipe, tag_keys, [key for key, _ in items], ttl_ms)
            pipe.execute()

    def invalidate_tags(self, tag_keys: Sequence[str]) -> list[str]:
        """Delete every key in the tag sets ``tag_keys`` and take them out of the sets; the keys
        that held an entry."""
        if not tag_keys:
            return []
        with map_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for tag_key in tag_keys:
                pipe.smembers(tag_key)
            members = pipe.execute()
            keys = sorted({text(member) for tag_members in members for member in tag_members})
            if not keys:
                return []
            pipe = self.client.pipeline(transaction=False)
            for key in keys:  # one UNLINK each: its reply says whether the key held an entry
                pipe.unlink(key)
            for tag_key, tag_members in zip(tag_keys, members, strict=True):
                if tag_members:  # only what was read: a key tagged since stays in the set
                    pipe.srem(tag_key, *tag_members)
            replies = pipe.execute()
        return [key for key, removed in zip(keys, replies, strict=False) if removed]

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
