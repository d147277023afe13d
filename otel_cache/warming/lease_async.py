"""The lease's Redis I/O through ``redis.asyncio``, for :class:`~otel_cache.warming.AsyncWarmer`.

Only the warmer's lease task calls it; no thread. Every decision is
:class:`~otel_cache.warming.lease.LeaseCore`'s; this sends the command it asks for.
"""

from __future__ import annotations

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from otel_cache.backends.redis_errors import map_redis_errors
from otel_cache.backends.redis_options import pool_options
from otel_cache.errors import BackendError
from otel_cache.warming.lease import RELEASE_SCRIPT, RENEW_SCRIPT, LeaseCore

__all__ = ["AsyncLease"]


class AsyncLease:
    """Sends a :class:`LeaseCore`'s commands; one connection, no retries (the next tick is the retry)."""

    def __init__(self, core: LeaseCore) -> None:
        config = core.config
        assert config.redis_url is not None
        options = pool_options(config, Retry(NoBackoff(), 0)) | {"max_connections": 1}
        self.core = core
        self._client = aredis.Redis.from_pool(
            aredis.BlockingConnectionPool.from_url(config.redis_url, **options)
        )
        self._renew = self._client.register_script(RENEW_SCRIPT)
        self._release = self._client.register_script(RELEASE_SCRIPT)

    async def tick(self) -> None:
        """Acquire or renew the lease, as the core says; a Redis error is counted by the core."""
        core = self.core
        attempt = core.attempt()
        try:
            with map_redis_errors():
                if attempt.command == "acquire":
                    answer = await self._client.set(core.key, core.token, nx=True, px=core.ttl_ms)
                else:
                    answer = await self._renew(keys=[core.key], args=[core.token, core.ttl_ms])
        except BackendError as exc:
            core.failed(attempt, exc)
        else:
            core.answered(attempt, bool(answer))

    async def release(self) -> None:
        """Stop leading and delete the key if it is still ours (else it expires)."""
        core = self.core
        if not core.release():
            return
        try:
            with map_redis_errors():
                await self._release(keys=[core.key], args=[core.token])
        except BackendError as exc:
            core.failed(None, exc)

    async def aclose(self) -> None:
        await self._client.aclose()
