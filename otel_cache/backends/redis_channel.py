"""``RedisChannel``: one pub/sub channel over redis-py's sync client (the invalidation channel).

Its own connections, apart from the cache's pool (a client the application gave is
shared): one subscribed connection for listening, one small pool for publishing. On
a cluster, PUBLISH reaches every node, so the subscription may sit on any node (the
one the channel's slot maps to); a lost node is a lost subscription, and the next
one reads the slot table afresh. Its commands are plumbing, not the application's
traffic: they run under ``suppress_instrumentation`` (no redis-py spans; the cache's
own metrics count the messages). Every call raises only
:class:`~otel_cache.errors.BackendError` subclasses.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation

from otel_cache.backends.redis_connect import Connection, RedisConnector, db_of, kind_of
from otel_cache.backends.redis_errors import REDIS_ERRORS, map_redis_errors
from otel_cache.backends.sentinel_follow import on_old_primary
from otel_cache.core.coherence import channel_name
from otel_cache.errors import BackendUnavailableError

__all__ = ["RedisChannel"]


class RedisChannel:
    """Subscribe to, listen on and publish to the invalidation channel of ``namespace`` (sync)."""

    def __init__(self, connector: RedisConnector, namespace: str) -> None:
        config = connector.config
        self._connector = connector
        self._namespace = namespace
        self._connection: Connection | None = None
        self._timeout = config.redis_connect_timeout + config.redis_timeout
        self._pubsub: Any = None
        self._subscribed: Any = None  # the pubsub's connection, once subscribed
        self._closing = threading.Lock()
        self._sentinel = False
        self.heard_at = time.monotonic()

    def _client(self) -> Any:
        if self._connection is None:
            with map_redis_errors(), suppress_instrumentation():
                connection = self._connection = self._connector.sync("channel")
            self._sentinel = kind_of(connection.client) == "sentinel"
        return self._connection.client

    @property
    def channel(self) -> str:
        """``{namespace}:__invalidate__[:db]``, the db the client selects."""
        return channel_name(self._namespace, db_of(self._client()))

    def subscribe(self) -> None:
        """Subscribe and wait for Redis to confirm."""
        channel = self.channel
        with map_redis_errors(), suppress_instrumentation():
            self._pubsub = pubsub = self._client().pubsub()
            pubsub.subscribe(channel)
            deadline = time.monotonic() + self._timeout
            while True:
                message = pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
                if message is not None and message["type"] == "subscribe":
                    self.heard_at = time.monotonic()
                    return
                if time.monotonic() >= deadline:
                    raise BackendUnavailableError("Redis did not confirm the subscription in time")

    def receive(self, wait_s: float) -> bytes | None:
        """The next message's data, or None after ``wait_s`` seconds or a reply that is not a
        message. Raises :class:`~otel_cache.errors.BackendUnavailableError` once the
        sentinels name another primary than the one subscribed to (it would hear nothing)."""
        if self._sentinel and on_old_primary(self._client().connection_pool, self._pubsub.connection):
            raise BackendUnavailableError("the sentinels name another primary")
        with map_redis_errors(), suppress_instrumentation():
            message = self._pubsub.get_message(timeout=wait_s)
        if message is None:
            return None
        self.heard_at = time.monotonic()
        data = message["data"] if message["type"] == "message" else None
        return data if isinstance(data, bytes) else None

    def ping(self) -> None:
        """Ask for a reply on the subscribed connection (a dead connection shows up as silence)."""
        with map_redis_errors(), suppress_instrumentation():
            self._pubsub.ping()

    def publish(self, data: bytes) -> int:
        channel = self.channel
        with map_redis_errors(), suppress_instrumentation():
            return int(self._client().publish(channel, data))

    def close(self) -> None:
        """Close both connections; safe to call again from the listener, which must: a read that
        ``close()`` from another thread interrupted may have reconnected the subscription."""
        with self._closing:  # stop() and the listener may close at once; redis-py's close is not thread-safe
            pubsub, self._pubsub = self._pubsub, None
            if pubsub is not None and pubsub.connection is not None:
                self._subscribed = pubsub.connection  # kept: a second close disconnects it again
            subscribed = self._subscribed
            connection, self._connection = self._connection, None
            try:
                if pubsub is not None:
                    pubsub.close()
                if connection is not None:
                    connection.close()
                if subscribed is not None:
                    subscribed.disconnect()
            except REDIS_ERRORS:
                pass
