"""``AsyncRedisBackend``: L2 through ``redis.asyncio``: one server, a Cluster or Sentinel."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from otel_cache.backends.cluster_routes import NodeBatch, by_node, node_name
from otel_cache.backends.envelope import now_ms, unwrap, unwrap_many, wrap
from otel_cache.backends.protocol import Stored
from otel_cache.backends.redis_connect import Connection, RedisConnector, kind_of
from otel_cache.backends.redis_errors import REDIS_ERRORS, map_redis_errors, node_error, partial_failure
from otel_cache.backends.redis_options import SCAN_BATCH, add_to_tags, glob_escape, text
from otel_cache.errors import BackendError

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
        # One pipeline per node (one MGET per slot): a dead node costs only its own keys.
        batches, uncovered = await _by_node(client, keys)
        values: list[bytes | str | None] = [None] * len(keys)
        failures: dict[str, BackendError] = {}
        failed: list[int] = list(uncovered)

        async def read(batch: NodeBatch) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for positions in batch.slots.values():
                pipe.execute_command("MGET", *[keys[p] for p in positions], target_nodes=[batch.node])
            replies: list[Any] = await pipe.execute()
            return replies

        outcomes = await asyncio.gather(*(read(batch) for batch in batches.values()), return_exceptions=True)
        for (name, batch), replies in zip(batches.items(), outcomes, strict=True):
            if isinstance(replies, BaseException):
                if not isinstance(replies, REDIS_ERRORS):
                    raise replies
                failures[name] = node_error(replies, name)
                failed.extend(batch.positions())
                continue
            for positions, reply in zip(batch.slots.values(), replies, strict=True):
                for position, value in zip(positions, reply, strict=True):
                    values[position] = value
        results = unwrap_many(values, now_ms())
        if failures or uncovered:
            raise partial_failure(results, failures, [keys[p] for p in failed], len(uncovered))
        return results

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
        batches, uncovered = await _by_node(client, keys)
        failures: dict[str, BackendError] = {}
        failed: list[int] = list(uncovered)

        async def write(batch: NodeBatch) -> None:
            pipe = client.pipeline(transaction=False)
            for position in batch.positions():
                key, value = items[position]
                pipe.set(key, wrap(value, ttl_ms, now), px=ttl_ms)
            await pipe.execute()

        outcomes = await asyncio.gather(*(write(batch) for batch in batches.values()), return_exceptions=True)
        for (name, batch), outcome in zip(batches.items(), outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, REDIS_ERRORS):
                    raise outcome
                failures[name] = node_error(outcome, name)
                failed.extend(batch.positions())
        failed_set = set(failed)
        if tag_keys and len(failed_set) < len(keys):
            written = [key for position, key in enumerate(keys) if position not in failed_set]
            with map_redis_errors():
                pipe = client.pipeline(transaction=False)
                add_to_tags(pipe, tag_keys, written, ttl_ms)
                await pipe.execute()
        if failures or uncovered:
            raise partial_failure(None, failures, [keys[p] for p in failed], len(uncovered))

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


async def _by_node(client: Any, keys: Sequence[str]) -> tuple[dict[str, NodeBatch], list[int]]:
    """:func:`by_node` once the client has read the slot table (on its first command)."""
    with map_redis_errors():
        await client.initialize()
    return by_node(client, keys)
