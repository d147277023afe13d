"""Following the primary that a Sentinel set names, between connections too.

redis-py asks the sentinels for the primary only when it opens a connection, so after a
failover its pooled connections stay on the old primary. After a crash they die and
reconnect, but after a graceful ``SENTINEL FAILOVER`` the old primary keeps taking
writes until the sentinels demote it (about 10 s), and every one of those writes is
lost when it resyncs from the new primary. A watch asks the sentinels for the primary
every :data:`FOLLOW_INTERVAL_S` (one ``SENTINEL MASTERS`` to the first sentinel that
answers) from a daemon thread (sync) or a task on the client's event loop (asyncio);
when they name another one, the pool closes its idle connections and each busy one as
it comes back, so the next command connects to the new primary.

Writes that the old primary takes after the promotion and before the sentinels name the
new one (Sentinel reconfigures about once a second) are lost all the same: Redis
replicates asynchronously, and only ``WAIT`` on every write would close that window.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from typing import Any

import redis
import redis.asyncio.sentinel
import redis.sentinel

__all__ = ["FOLLOW_INTERVAL_S", "AsyncFollowingPool", "AsyncPrimaryWatch", "PrimaryWatch", "on_old_primary"]

FOLLOW_INTERVAL_S = 0.5
"""How often a watch asks the sentinels which node is the primary."""


def on_old_primary(pool: Any, connection: Any) -> bool:
    """Whether ``connection`` (a subscribed one, say) from a Sentinel ``pool`` is to a node
    that the sentinels no longer name as primary; False for other pools."""
    if not isinstance(
        pool, redis.sentinel.SentinelConnectionPool | redis.asyncio.sentinel.SentinelConnectionPool
    ):
        return False
    primary = pool.master_address
    return (
        pool.is_master
        and connection is not None
        and primary is not None
        and primary != (connection.host, connection.port)
    )


class AsyncFollowingPool(redis.asyncio.sentinel.SentinelConnectionPool):
    """redis-py's asyncio Sentinel pool, which closes a connection to a node that is no
    longer the primary when it comes back (the sync pool already does; the asyncio
    pool's own ``owns_connection`` fails in redis-py 8.1, so it is not used)."""

    async def release(self, connection: Any) -> None:
        if on_old_primary(self, connection):
            await connection.disconnect()
        await super().release(connection)


class PrimaryWatch:
    """Asks the sentinels for the primary of a sync client's pool, in a daemon thread,
    until :meth:`stop` or until the pool is gone."""

    def __init__(self, client: Any, interval_s: float = FOLLOW_INTERVAL_S) -> None:
        self._pool = weakref.ref(client.connection_pool)
        self._interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="otel-cache-sentinel-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            pool = self._pool()
            if pool is None:
                return
            with contextlib.suppress(redis.RedisError, OSError):
                pool.get_master_address()  # no sentinel answers: the next connection asks again
            del pool

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop watching (the thread ends after its current question, if any)."""
        self._stopped.set()


class AsyncPrimaryWatch:
    """Asks the sentinels for the primary of an asyncio client's pool, in a task on the
    running loop, until :meth:`stop` or until the pool is gone."""

    def __init__(self, client: Any, interval_s: float = FOLLOW_INTERVAL_S) -> None:
        self._task = asyncio.get_running_loop().create_task(
            _follow(weakref.ref(client.connection_pool), interval_s), name="otel-cache-sentinel-watch"
        )

    @property
    def running(self) -> bool:
        return not self._task.done()

    async def stop(self) -> None:
        """Stop watching; from the watch's own loop."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def _follow(pool_ref: weakref.ref[Any], interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        pool = pool_ref()
        if pool is None:
            return
        with contextlib.suppress(redis.RedisError, OSError):
            await pool.get_master_address()
        del pool
