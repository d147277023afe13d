"""``RedisBackend``: L2 through redis-py's sync client: one server, a Cluster or Sentinel."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from otel_cache.backends.cluster_batches import read_outcomes, read_pipelines, write_outcomes, write_pipelines
from otel_cache.backends.cluster_routes import node_name
from otel_cache.backends.envelope import now_ms, unwrap, unwrap_many, wrap
from otel_cache.backends.protocol import Stored
from otel_cache.backends.redis_connect import Connection, RedisConnector, kind_of
from otel_cache.backends.redis_errors import REDIS_ERRORS, map_redis_errors
from otel_cache.backends.redis_options import SCAN_BATCH, add_to_tags, glob_escape, text

__all__ = ["RedisBackend"]


class RedisBackend:
    """The :class:`~otel_cache.backends.SyncBackend` over a sync redis-py client; thread-safe.

    The client is made on first use (a cluster client asks a seed node for the slot table
    then), so that a Redis that is down when the cache starts is a counted failure.
    """

    def __init__(self, connector: RedisConnector) -> None:
        self._connector = connector
        self._connection: Connection | None = None
        self._lock = threading.Lock()
        self.cluster = False

    @property
    def client(self) -> Any:
        connection = self._connection
        if connection is None:
            with self._lock:
                if self._connection is None:
                    with map_redis_errors():
                        self._connection = self._connector.sync("data")
                    self.cluster = kind_of(self._connection.client) == "cluster"
                connection = self._connection
        return connection.client

    def node_of(self, key: str) -> str | None:
        """The server that holds ``key`` (each cluster node has a breaker); None: the one server."""
        connection = self._connection
        if not self.cluster or connection is None:
            return None
        return node_name(connection.client, key)

    def get(self, key: str) -> Stored | None:
        with map_redis_errors():
            raw = self.client.get(key)
        return unwrap(raw, now_ms())

    def set(self, key: str, value: bytes, ttl_ms: int | None, tag_keys: Sequence[str] = ()) -> None:
        value = wrap(value, ttl_ms, now_ms())
        with map_redis_errors():
            client = self.client
            if not tag_keys:
                client.set(key, value, px=ttl_ms)
                return
            pipe = client.pipeline(transaction=False)
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
            client = self.client
            if not self.cluster:
                return unwrap_many(client.mget(keys), now_ms())
        return self._cluster_get_many(client, keys)

    def _cluster_get_many(self, client: Any, keys: Sequence[str]) -> list[Stored | None]:
        # One pipeline per node, in turn: a dead node costs only its own keys.
        plan, pipes = read_pipelines(client, keys)
        return read_outcomes(keys, plan, [_execute(pipe) for pipe in pipes])

    def delete_many(self, keys: Sequence[str]) -> int:
        """Delete ``keys`` (UNLINK; per slot on a cluster); how many existed."""
        if not keys:
            return 0
        with map_redis_errors():
            return int(self.client.unlink(*keys))

    def set_many(
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
                pipe.execute()
                return
        keys = [key for key, _ in items]
        plan, pipes = write_pipelines(client, items, ttl_ms)
        written, error = write_outcomes(keys, plan, [_execute(pipe) for pipe in pipes])
        if tag_keys and written:
            with map_redis_errors():
                pipe = client.pipeline(transaction=False)
                add_to_tags(pipe, tag_keys, written, ttl_ms)
                pipe.execute()
        if error is not None:
            raise error

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
                pipe.execute_command("UNLINK", key)  # a cluster pipeline's unlink() is no queueing call
            for tag_key, tag_members in zip(tag_keys, members, strict=True):
                if tag_members:  # only what was read: a key tagged since stays in the set
                    pipe.srem(tag_key, *tag_members)
            replies = pipe.execute()
        return [key for key, removed in zip(keys, replies, strict=False) if removed]

    def clear(self, prefix: str) -> int:
        """Delete every key under ``prefix`` (SCAN + UNLINK, on every primary of a cluster;
        never FLUSHDB)."""
        removed = 0
        with map_redis_errors():
            client = self.client
            batch: list[Any] = []
            for key in client.scan_iter(match=glob_escape(prefix) + "*", count=SCAN_BATCH):
                batch.append(key)
                if len(batch) >= SCAN_BATCH:
                    removed += int(client.unlink(*batch))
                    batch.clear()
            if batch:
                removed += int(client.unlink(*batch))
        return removed

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with map_redis_errors():
                connection.close()


def _execute(pipe: Any) -> Any:
    """A pipeline's replies, or the Redis failure that ended it (an outcome like the replies)."""
    try:
        return pipe.execute()
    except REDIS_ERRORS as exc:
        return exc
