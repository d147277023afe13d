"""``RedisConnector``: the one place that makes the cache's redis-py clients.

Retries: one, at once, and only for a connection that turns out dead when a command
is sent or read (``ConnectionError``: closed by the server, a proxy or a NAT while it
idled in the pool; refused): redis-py opens a new one and sends the command again.
Every command the cache sends is idempotent (GET, MGET, SET, DEL, tag sets, the
lease's scripts). The invalidation channel's client does not retry: a lost
subscription must be seen (L1 flushed), not silently renewed. Timeouts are never
retried: the multi-level cache has its own policy (a miss now, a circuit breaker for
a dead server), and a retried timeout would double the call.

Time budget, both APIs: a one-server pool waits at most half of ``redis_timeout`` for
a free connection when all ``redis_max_connections`` are busy, so a call over a pooled
connection takes at most 1.5x ``redis_timeout``; one that opens a connection adds up
to ``redis_connect_timeout`` per attempt. (A deadline around every async call,
``asyncio.timeout``, would bound connecting too, but costs several microseconds per
call, a timer armed and cancelled: measured in ``docs/benchmarks.md``, not adopted.)

From the URL (:mod:`otel_cache.core.redis_url`) it makes, for each use (the cache's
data calls, the invalidation channel, the warmer's lease), a client of its own:
``redis.Redis`` on a blocking pool for one server, ``RedisCluster`` for a cluster,
``Sentinel.master_for`` for a Sentinel set; sync or ``redis.asyncio``. Options for
all: the retry above, RESP3, the cache's timeouts and pool size.

A cluster client skips slots that no node serves (``require_full_coverage=False``)
so that one dead shard does not stop the others. A Sentinel client asks the
sentinels for the primary on every new connection and every half second
(:mod:`~otel_cache.backends.sentinel_follow`), and treats READONLY as a lost
connection, so after a failover it never writes to the demoted node.

Bring your own client: ``redis_client`` (sync) and ``async_redis_client`` are a
ready client or a function that makes one (an async one is called once per event
loop, since asyncio connections belong to their loop). The cache closes the
clients that its functions made and never a client it was handed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from redis.backoff import NoBackoff
from redis.connection import parse_url as _parse_url

from otel_cache.backends.sentinel_follow import AsyncFollowingPool, AsyncPrimaryWatch, PrimaryWatch
from otel_cache.config import CacheConfig
from otel_cache.core.redis_url import RedisKind, RedisURL, parse_redis_url
from otel_cache.errors import CacheConfigError

__all__ = [
    "ClientSource",
    "Connection",
    "RedisConnector",
    "Use",
    "db_of",
    "is_client",
    "kind_of",
]

Use = Literal["data", "channel", "lease"]
ClientSource = Any | Callable[[], Any]
"""A redis-py client, or a function without arguments that returns one."""

_POOL_SIZE: dict[Use, int | None] = {"data": None, "channel": 2, "lease": 1}


@dataclass(frozen=True, slots=True)
class Connection:
    """A client, whether the cache owns it, and the Sentinel manager it came from (its own
    connections to the sentinels)."""

    client: Any
    owned: bool
    sentinel: Any = None
    watch: PrimaryWatch | AsyncPrimaryWatch | None = None

    def close(self) -> None:
        """Close what the cache owns (sync clients)."""
        if isinstance(self.watch, PrimaryWatch):
            self.watch.stop()
        if self.owned:
            self.client.close()
            for sentinel in self.sentinel.sentinels if self.sentinel is not None else ():
                sentinel.close()

    async def aclose(self) -> None:
        """Close what the cache owns (asyncio clients)."""
        if isinstance(self.watch, AsyncPrimaryWatch):
            await self.watch.stop()
        if self.owned:
            await self.client.aclose()
            for sentinel in self.sentinel.sentinels if self.sentinel is not None else ():
                await sentinel.aclose()


class RedisConnector:
    """Makes clients for one cache, from its URL or from the clients the application gave."""

    def __init__(
        self,
        config: CacheConfig,
        *,
        redis_client: ClientSource | None = None,
        async_redis_client: ClientSource | None = None,
    ) -> None:
        self.config = config
        self._sync_source = redis_client
        self._async_source = async_redis_client
        self.url: RedisURL | None = None
        if redis_client is None and async_redis_client is None:
            if config.redis_url is None:
                raise CacheConfigError("no Redis: set redis_url or pass a client")
            self.url = parse_redis_url(config.redis_url)
        for name, source in (("redis_client", redis_client), ("async_redis_client", async_redis_client)):
            if source is not None and not is_client(source) and not callable(source):
                raise CacheConfigError(f"{name} must be a redis-py client or a function that returns one")

    @property
    def given(self) -> bool:
        """Whether the application gave the clients (else the cache makes them from the URL)."""
        return self.url is None

    @property
    def address(self) -> str:
        """Where Redis is, for telemetry and logs: ``host:port`` of the server, first seed or
        first sentinel; ``"client"`` for a client the application gave."""
        url = self.url
        if url is None:
            return "client"
        if url.nodes:
            host, port = url.nodes[0]
            return f"{host}:{port}"
        kwargs = _untyped(_parse_url)(_standalone(self.config))
        return kwargs.get("path") or f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"

    # -- clients ---------------------------------------------------------------------------

    def sync(self, use: Use) -> Connection:
        """A sync client for ``use``."""
        if self.given:
            return _given(self._sync_source, "redis_client", "the sync API")
        import redis

        assert self.url is not None
        retry = _retry_for(use, redis.retry.Retry, redis.ConnectionError)
        options = self._options(use)
        if self.url.kind == "cluster":
            from redis.cluster import ClusterNode, RedisCluster

            return Connection(
                RedisCluster(
                    startup_nodes=[_untyped(ClusterNode)(host, port) for host, port in self.url.nodes],
                    require_full_coverage=False,
                    retry=_cluster_retry(redis.retry.Retry),
                    **_cluster_options(self.url, options),
                ),
                owned=True,
            )
        if self.url.kind == "sentinel":
            from redis.sentinel import Sentinel

            sentinel = _untyped(Sentinel)(list(self.url.nodes), **_sentinel_options(self.url, options, retry))
            assert self.url.service is not None
            client = sentinel.master_for(self.url.service, **_master_options(self.url, options, retry))
            return Connection(client, owned=True, sentinel=sentinel, watch=PrimaryWatch(client))
        pool = redis.BlockingConnectionPool.from_url(
            _standalone(self.config), retry=retry, timeout=self.config.redis_pool_wait, **options
        )
        return Connection(redis.Redis.from_pool(pool), owned=True)

    def async_(self, use: Use) -> Connection:
        """An asyncio client for ``use``, for the running event loop only."""
        if self.given:
            return _given(self._async_source, "async_redis_client", "the async API")
        import redis.asyncio as aredis
        from redis.asyncio.retry import Retry

        assert self.url is not None
        retry = _retry_for(use, Retry, aredis.ConnectionError)
        options = self._options(use)
        if self.url.kind == "cluster":
            from redis.asyncio.cluster import ClusterNode, RedisCluster

            return Connection(
                RedisCluster(
                    startup_nodes=[_untyped(ClusterNode)(host, port) for host, port in self.url.nodes],
                    require_full_coverage=False,
                    retry=_cluster_retry(Retry),
                    **_cluster_options(self.url, options),
                ),
                owned=True,
            )
        if self.url.kind == "sentinel":
            from redis.asyncio.sentinel import Sentinel

            sentinel = _untyped(Sentinel)(list(self.url.nodes), **_sentinel_options(self.url, options, retry))
            assert self.url.service is not None
            client = sentinel.master_for(
                self.url.service,
                connection_pool_class=AsyncFollowingPool,
                **_master_options(self.url, options, retry),
            )
            return Connection(client, owned=True, sentinel=sentinel, watch=AsyncPrimaryWatch(client))
        pool = aredis.BlockingConnectionPool.from_url(
            _standalone(self.config), retry=retry, timeout=self.config.redis_pool_wait, **options
        )
        return Connection(aredis.Redis.from_pool(pool), owned=True)

    def _options(self, use: Use) -> dict[str, Any]:
        config = self.config
        return {
            "socket_timeout": config.redis_timeout,
            "socket_connect_timeout": config.redis_connect_timeout,
            "protocol": 3,
            "max_connections": _POOL_SIZE[use] or config.redis_max_connections,
            "decode_responses": False,
        }


def _untyped(function: Any) -> Any:
    """redis-py functions without annotations, called from typed code."""
    return cast(Any, function)


def _standalone(config: CacheConfig) -> str:
    assert config.redis_url is not None
    return config.redis_url


def _retry_for(use: Use, retry_class: Any, connection_error: type[Exception]) -> Any:
    """One retry, at once, of a call whose connection was found dead (not of a timeout); none
    for the invalidation channel, where redis-py would resubscribe in silence and the
    messages sent meanwhile would be missed: a lost subscription must be seen (L1 flushed)."""
    if use == "channel":
        return retry_class(NoBackoff(), 0)
    return retry_class(NoBackoff(), 1, supported_errors=(connection_error,))


def _cluster_retry(retry_class: Any) -> Any:
    """One retry, after redis-py has re-read the slot table: what carries a call over a
    graceful failover (CLUSTERDOWN while the replica takes over). A dead node is then
    tried twice, which on a refused connection costs little; against a host that does
    not answer at all a call can take twice the connect timeout."""
    return retry_class(NoBackoff(), 1)


def _url_kwargs(url: RedisURL) -> dict[str, Any]:
    """The user, password, TLS and query options of ``url`` as redis-py keyword arguments."""
    kwargs = _untyped(_parse_url)(url.standalone_url) if url.nodes else {}
    for name in ("host", "port", "db", "path", "connection_class"):
        kwargs.pop(name, None)
    if url.tls:
        kwargs["ssl"] = True
    return kwargs


def _cluster_options(url: RedisURL, options: dict[str, Any]) -> dict[str, Any]:
    return _url_kwargs(url) | options


def _sentinel_options(url: RedisURL, options: dict[str, Any], retry: Any) -> dict[str, Any]:
    """``Sentinel(...)`` keyword arguments: how to reach the sentinels themselves."""
    kwargs = _url_kwargs(url)
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": options["socket_timeout"],
        "socket_connect_timeout": options["socket_connect_timeout"],
        "retry": retry,
    }
    for name in ("sentinel_username", "sentinel_password"):
        value = kwargs.pop(name, None)
        if value is not None:
            sentinel_kwargs[name.removeprefix("sentinel_")] = value
    if url.tls:
        sentinel_kwargs["ssl"] = True
        for name, value in kwargs.items():
            if name.startswith("ssl_"):
                sentinel_kwargs[name] = value
    return {"sentinel_kwargs": sentinel_kwargs}


def _master_options(url: RedisURL, options: dict[str, Any], retry: Any) -> dict[str, Any]:
    """``Sentinel.master_for(...)`` keyword arguments: how to reach the primary."""
    kwargs = _url_kwargs(url)
    kwargs.pop("sentinel_username", None)
    kwargs.pop("sentinel_password", None)
    return kwargs | options | {"db": url.db, "retry": retry}


def _given(source: ClientSource | None, name: str, api: str) -> Connection:
    if source is None:
        raise CacheConfigError(f"{api} needs a Redis client: pass {name}= to MultiLevelCache")
    if is_client(source):
        return Connection(source, owned=False)
    if not callable(source):
        raise CacheConfigError(f"{name} must be a redis-py client or a function that returns one")
    client = source()
    if not is_client(client):
        raise CacheConfigError(f"{name}() returned {type(client).__name__}, not a redis-py client")
    return Connection(client, owned=True)


def is_client(obj: object) -> bool:
    """Whether ``obj`` is a redis-py client: ``Redis`` or ``RedisCluster``, sync or asyncio."""
    import redis
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.cluster

    return isinstance(
        obj,
        redis.Redis | redis.asyncio.Redis | redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster,
    )


def kind_of(client: object) -> RedisKind:
    """Which kind of Redis ``client`` talks to."""
    import redis.asyncio.cluster
    import redis.asyncio.sentinel
    import redis.cluster
    import redis.sentinel

    if isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster):
        return "cluster"
    pool = getattr(client, "connection_pool", None)
    if isinstance(
        pool, redis.sentinel.SentinelConnectionPool | redis.asyncio.sentinel.SentinelConnectionPool
    ):
        return "sentinel"
    return "standalone"


def db_of(client: object) -> int:
    """The database ``client`` selects (0 on a cluster)."""
    if kind_of(client) == "cluster":
        return 0
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None) or {}
    return int(kwargs.get("db") or 0)
