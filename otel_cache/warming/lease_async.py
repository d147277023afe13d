"""The lease's Redis I/O through ``redis.asyncio``, for :class:`~otel_cache.warming.AsyncWarmer`.

Only the warmer's lease task calls it; no thread. Every decision is
:class:`~otel_cache.warming.lease.LeaseCore`'s; this sends the command it asks for.
"""

from __future__ import annotations

import contextlib
from typing import Any

from otel_cache.backends.redis_connect import Connection, RedisConnector
from otel_cache.backends.redis_errors import REDIS_ERRORS, map_redis_errors
from otel_cache.errors import BackendError
from otel_cache.warming.lease import RELEASE_SCRIPT, RENEW_SCRIPT, LeaseCore

__all__ = ["AsyncLease"]


class AsyncLease:
    """Sends a :class:`LeaseCore`'s commands; one connection, no retries (the next tick is the retry)."""

    def __init__(self, core: LeaseCore, connector: RedisConnector) -> None:
        self.core = core
        self._connector = connector
        self._connection: Connection | None = None
        self._scripts: tuple[Any, Any] | None = None

    def _client(self) -> tuple[Any, Any, Any]:
        """The client and the renew and release scripts, made on first use (inside the
        error mapping: a cluster client reads the slot table when it is made)."""
        if self._connection is None:
            self._connection = connection = self._connector.async_("lease")
            client = connection.client
            self._scripts = (client.register_script(RENEW_SCRIPT), client.register_script(RELEASE_SCRIPT))
        assert self._scripts is not None
        return self._connection.client, self._scripts[0], self._scripts[1]

    async def tick(self) -> None:
        """Acquire or renew the lease, as the core says; a Redis error is counted by the core."""
        core = self.core
        attempt = core.attempt()
        try:
            with map_redis_errors():
                if attempt.command == "acquire":
                    answer = await self._client()[0].set(core.key, core.token, nx=True, px=core.ttl_ms)
                else:
                    answer = await self._client()[1](keys=[core.key], args=[core.token, core.ttl_ms])
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
                await self._client()[2](keys=[core.key], args=[core.token])
        except BackendError as exc:
            core.failed(None, exc)

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await connection.aclose()
