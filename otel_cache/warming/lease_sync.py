"""The lease's Redis I/O through redis-py's sync client, for :class:`~otel_cache.warming.ThreadWarmer`.

Only the warmer's lease thread calls it. Every decision is
:class:`~otel_cache.warming.lease.LeaseCore`'s; this sends the command it asks for.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from otel_cache.backends.redis_errors import map_redis_errors
from otel_cache.backends.redis_options import pool_options
from otel_cache.errors import BackendError
from otel_cache.warming.lease import RELEASE_SCRIPT, RENEW_SCRIPT, LeaseCore

__all__ = ["SyncLease"]


class SyncLease:
    """Sends a :class:`LeaseCore`'s commands; one connection, no retries (the next tick is the retry)."""

    def __init__(self, core: LeaseCore) -> None:
        config = core.config
        assert config.redis_url is not None
        options = pool_options(config, Retry(NoBackoff(), 0)) | {"max_connections": 1}
        self.core = core
        self._client = redis.Redis.from_pool(
            redis.BlockingConnectionPool.from_url(config.redis_url, **options)
        )
        self._renew = self._client.register_script(RENEW_SCRIPT)
        self._release = self._client.register_script(RELEASE_SCRIPT)

    def tick(self) -> None:
        """Acquire or renew the lease, as the core says; a Redis error is counted by the core."""
        core = self.core
        attempt = core.attempt()
        try:
            with map_redis_errors():
                if attempt.command == "acquire":
                    answer = self._client.set(core.key, core.token, nx=True, px=core.ttl_ms)
                else:
                    answer = self._renew(keys=[core.key], args=[core.token, core.ttl_ms])
        except BackendError as exc:
            core.failed(attempt, exc)
        else:
            core.answered(attempt, bool(answer))

    def release(self) -> None:
        """Stop leading and delete the key if it is still ours (else it expires)."""
        core = self.core
        if not core.release():
            return
        try:
            with map_redis_errors():
                self._release(keys=[core.key], args=[core.token])
        except BackendError as exc:
            core.failed(None, exc)

    def close(self) -> None:
        self._client.close()
