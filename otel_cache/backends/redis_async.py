"""``AsyncRedisBackend``: L2 through ``redis.asyncio``: one server, a Cluster or Sentinel."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from otel_cache.backends.cluster_batches import read_outcomes, read_pipelines, write_outcomes, write_pipelines
from otel_cache.backends.cluster_routes import node_name
from otel_cache.backends.envelope import now_ms, unwrap, unwrap_many, wrap
from otel_cache.backends.protocol import Stored
from otel_cache.backends.redis_connect import Connection, RedisConnector, kind_of
from otel_cache.backends.redis_errors import map_redis_errors
from otel_cache.backends.redis_options import SCAN_BATCH, add_to_tags, glob_escape, text

__all__ = ["AsyncRedisBackend"]


class AsyncRedisBackend:
    """The :class:`~otel_cache.backends.AsyncBackend` over a ``redis.asyncio`` client.

    Connections belong to the event loop that opened them: use one instance per loop. A
    cluster client reads the slot table on its first command; a cluster's batches go to
    their nodes at once (one pipeline per node, gathered).
    """

    def __init__(self, connector: RedisConnector) -> None:
        self._connector = connector
        with map_redis_errors():
            self._connection: Connection | None = connector.async_("data")
        self.cluster = kind_of(self._connection.client) == "cluster"

    @property
    def client(self) -> Any:
        connection = self._connection
        assert connection is not None, "closed"
        return connection.client

    def node_of(self, key: str) -> str | None:
        """The server that holds ``key`` (each cluster node has a breaker); None: the one server."""
        connection = self._connection
        if not self.cluster or connection is None:
            return None
        return node_name(connection.client, key)

    async def get(self, key: str) -> Stored | None:
        with map_redis_errors():
            raw = await self.client.get(key)
        return unwrap(raw, now_ms())

    async def set(self, key: str, value: bytes, ttl_ms: int | None, tag_keys: Sequence[str] = ()) -> None:
        value = wrap(value, ttl_ms, now_ms())
        with map_redis_errors():
            client = self.client
            if not tag_keys:
                await client.set(key, value, px=ttl_ms)
                return
            pipe = client.pipeline(transaction=False)
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
            client = self.client
            if not self.cluster:
                return unwrap_many(await client.mget(keys), now_ms())
        return await self._cluster_get_many(client, keys)

    async def _cluster_get_many(self, client: Any, keys: Sequence[str]) -> list[Stored | None]:
        # One pipeline per node, all at once: a dead node costs only its own keys.
        await _initialized(client)
        plan, pipes = read_pipelines(client, keys)
        outcomes = await asyncio.gather(*(pipe.execute() for pipe in pipes), return_exceptions=True)
        return read_outcomes(keys, plan, outcomes)

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete ``keys`` (UNLINK; per slot on a cluster); how many existed."""
        if not keys:
            return 0
        with map_redis_errors():
            return int(await self.client.unlink(*keys))

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None, tag_keys: Sequence[str] = ()
    ) -> None:
        if not items:
            return
        now = now_ms()
        with map_redis_errors():
            client = self.client
            if not self.cluster:
                pipe = client.pipeline(transaction=False)
                for key, value in items:
                    pipe.set(key, wrap(value, ttl_ms, now), px=ttl_ms)
                if tag_keys:
                    add_to_tags(pipe, tag_keys, [key for key, _ in items], ttl_ms)
                await pipe.execute()
                return
        keys = [key for key, _ in items]
        await _initialized(client)
        plan, pipes = write_pipelines(client, items, ttl_ms)
        outcomes = await asyncio.gather(*(pipe.execute() for pipe in pipes), return_exceptions=True)
        written, error = write_outcomes(keys, plan, outcomes)
        if tag_keys and written:
            with map_redis_errors():
                pipe = client.pipeline(transaction=False)
                add_to_tags(pipe, tag_keys, written, ttl_ms)
                await pipe.execute()
        if error is not None:
            raise error

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
                pipe.execute_command("UNLINK", key)  # a cluster pipeline's unlink() is no queueing call
            for tag_key, tag_members in zip(tag_keys, members, strict=True):
                if tag_members:  # only what was read: a key tagged since stays in the set
                    pipe.srem(tag_key, *tag_members)
            replies = await pipe.execute()
        return [key for key, removed in zip(keys, replies, strict=False) if removed]

    async def clear(self, prefix: str) -> int:
        """Delete every key under ``prefix`` (SCAN + UNLINK, on every primary of a cluster;
        never FLUSHDB)."""
        removed = 0
        with map_redis_errors():
            client = self.client
            batch: list[Any] = []
            async for key in client.scan_iter(match=glob_escape(prefix) + "*", count=SCAN_BATCH):
                batch.append(key)
                if len(batch) >= SCAN_BATCH:
                    removed += int(await client.unlink(*batch))
                    batch.clear()
            if batch:
                removed += int(await client.unlink(*batch))
        return removed

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with map_redis_errors():
                await connection.aclose()


async def _initialized(client: Any) -> None:
    """The cluster client has read the slot table (it does so on its first command)."""
    with map_redis_errors():
        await client.initialize()
