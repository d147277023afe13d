"""``AsyncRedisBackend``: L2 through ``redis.asyncio`` (async mode)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from otel_cache.backends.envelope import now_ms, unwrap, unwrap_many, wrap
from otel_cache.backends.protocol import Stored
from otel_cache.backends.redis_errors import map_redis_errors
from otel_cache.backends.redis_options import SCAN_BATCH, add_to_tags, glob_escape, pool_options, text
from otel_cache.config import CacheConfig

__all__ = ["AsyncRedisBackend"]


class AsyncRedisBackend:
    """The :class:`~otel_cache.backends.AsyncBackend` over ``redis.asyncio.Redis``.

    Connections belong to the event loop that opened them: use one instance per loop.
    """

    def __init__(self, config: CacheConfig) -> None:
        assert config.redis_url is not None
        pool = aredis.BlockingConnectionPool.from_url(
            config.redis_url, **pool_options(config, Retry(NoBackoff(), 0))
        )
        self.client: aredis.Redis = aredis.Redis.from_pool(pool)

    async def get(self, key: str) -> Stored | None:
        with map_redis_errors():
            raw = await self.client.get(key)
        return unwrap(raw, now_ms())

    async def set(self, key: str, value: bytes, ttl_ms: int | None, tag_keys: Sequence[str] = ()) -> None:
        value = wrap(value, ttl_ms, now_ms())
        with map_redis_errors():
            if not tag_keys:
                await self.client.set(key, value, px=ttl_ms)
                return
            pipe = self.client.pipeline(transaction=False)
            pipe.set(key, value, px=ttl_ms)
            add_to_tags(pipe, tag_keys, [key], ttl_ms)
            await pipe.execute()

    async def delete(self, key: str) -> bool:
        with map_redis_errors():
            return bool(await self.client.delete(key))

    async def get_many(self, keys: Sequence[str]) -> list[Stored | None]:
        if not keys:
            return []
        with map_redis_errors():
            values = await self.client.mget(keys)
        return unwrap_many(values, now_ms())

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete ``keys`` (one UNLINK); how many existed."""
        if not keys:
            return 0
        with map_redis_errors():
            return int(await self.client.unlink(*keys))

    async def set_many(
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
            await pipe.execute()

    async def invalidate_tags(self, tag_keys: Sequence[str]) -> list[str]:
        """Delete every key in the tag sets ``tag_keys`` and take them out of the sets; the keys
        that held an entry."""
        if not tag_keys:
            return []
        with map_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for tag_key in tag_keys:
                pipe.smembers(tag_key)
            members = await pipe.execute()
            keys = sorted({text(member) for tag_members in members for member in tag_members})
            if not keys:
                return []
            pipe = self.client.pipeline(transaction=False)
            for key in keys:  # one UNLINK each: its reply says whether the key held an entry
                pipe.unlink(key)
            for tag_key, tag_members in zip(tag_keys, members, strict=True):
                if tag_members:  # only what was read: a key tagged since stays in the set
                    pipe.srem(tag_key, *tag_members)
            replies = await pipe.execute()
        return [key for key, removed in zip(keys, replies, strict=False) if removed]

    async def clear(self, prefix: str) -> int:
        """Delete every key under ``prefix`` (SCAN + UNLINK; never FLUSHDB)."""
        removed = 0
        with map_redis_errors():
            batch: list[Any] = []
            async for key in self.client.scan_iter(match=glob_escape(prefix) + "*", count=SCAN_BATCH):
                batch.append(key)
                if len(batch) >= SCAN_BATCH:
                    removed += int(await self.client.unlink(*batch))
                    batch.clear()
            if batch:
                removed += int(await self.client.unlink(*batch))
        return removed

    async def aclose(self) -> None:
        with map_redis_errors():
            await self.client.aclose()
