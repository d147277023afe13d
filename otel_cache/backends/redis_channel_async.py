"""``AsyncRedisChannel``: one pub/sub channel over ``redis.asyncio`` (the invalidation channel).

Its own connections, apart from the cache's pool: one subscribed connection for
listening, one small pool for publishing. Its commands are plumbing, not the
application's traffic: they run under ``suppress_instrumentation`` (no redis-py
spans; the cache's own metrics count the messages). Every call raises only
:class:`~otel_cache.errors.BackendError` subclasses.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aredis
from opentelemetry.instrumentation.utils import suppress_instrumentation
from redis import RedisError
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from otel_cache.backends.redis_errors import map_redis_errors
from otel_cache.backends.redis_options import pool_options
from otel_cache.config import CacheConfig
from otel_cache.errors import BackendUnavailableError

__all__ = ["AsyncRedisChannel"]


class AsyncRedisChannel:
    """Subscribe to, listen on and publish to one channel (asyncio; one event loop's connections)."""

    def __init__(self, config: CacheConfig, channel: str) -> None:
        assert config.redis_url is not None
        options = pool_options(config, Retry(NoBackoff(), 0)) | {"max_connections": 2}
        self.client: aredis.Redis = aredis.Redis.from_pool(
            aredis.BlockingConnectionPool.from_url(config.redis_url, **options)
        )
        self.channel = channel
        self._timeout = config.redis_connect_timeout + config.redis_timeout
        self._pubsub: Any = None
        self.heard_at = time.monotonic()

    async def subscribe(self) -> None:
        """Subscribe and wait for Redis to confirm."""
        with map_redis_errors(), suppress_instrumentation():
            self._pubsub = pubsub = self.client.pubsub()
            await pubsub.subscribe(self.channel)
            deadline = time.monotonic() + self._timeout
            while True:
                message = await pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
                if message is not None and message["type"] == "subscribe":
                    self.heard_at = time.monotonic()
                    return
                if time.monotonic() >= deadline:
                    raise BackendUnavailableError("Redis did not confirm the subscription in time")

    async def receive(self, wait_s: float) -> bytes | None:
        """The next message's data, or None after ``wait_s`` seconds or a reply that is not a message."""
        with map_redis_errors(), suppress_instrumentation():
            message = await self._pubsub.get_message(timeout=wait_s)
        if message is None:
            return None
        self.heard_at = time.monotonic()
        data = message["data"] if message["type"] == "message" else None
        return data if isinstance(data, bytes) else None

    async def ping(self) -> None:
        """Ask for a reply on the subscribed connection (a dead connection shows up as silence)."""
        with map_redis_errors(), suppress_instrumentation():
            await self._pubsub.ping()

    async def publish(self, data: bytes) -> int:
        with map_redis_errors(), suppress_instrumentation():
            return int(await self.client.publish(self.channel, data))

    async def aclose(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        try:
            if pubsub is not None:
                await pubsub.aclose()
            await self.client.aclose()
        except (RedisError, OSError):
            pass
