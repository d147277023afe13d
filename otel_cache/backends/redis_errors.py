"""The one place where redis-py's exceptions become otel_cache's.

Use as ``with map_redis_errors(): ...`` around every client call, sync or async.
The original exception stays reachable as ``__cause__``; the failed server's
``host:port``, when redis-py names it, is the error's ``node``.

Cluster and Sentinel: MOVED and ASK are followed by redis-py itself; what is left
(``ClusterDownError``, ``TryAgainError`` after its retries, ``SlotNotCoveredError``,
``MasterNotFoundError``, ``RedisClusterException`` "cannot be connected") means the
node or the cluster cannot serve the call now: :class:`BackendUnavailableError`.

Replies about one key (WRONGTYPE) are :class:`BackendDataError`; refused writes on a
server that still reads (OOM, READONLY, MISCONF, NOREPLICAS) are
:class:`BackendWriteRefusedError`. A Sentinel client turns READONLY (a demoted primary)
into a lost connection itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis import exceptions as redis_exc

from otel_cache.backends.cluster_routes import UNCOVERED
from otel_cache.errors import (
    BackendBusyError,
    BackendDataError,
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    BackendWriteRefusedError,
    PartialBackendError,
)

__all__ = ["REDIS_ERRORS", "map_redis_errors", "mapped", "node_error", "partial_failure"]

# redis-py 6+ raises MaxConnectionsError from a full non-blocking pool.
_MAX_CONNECTIONS: type[Exception] | tuple[()] = getattr(redis_exc, "MaxConnectionsError", ())
_CLUSTER_UNAVAILABLE = (
    redis_exc.ClusterDownError,
    redis_exc.TryAgainError,
    redis_exc.RedisClusterException,  # not a RedisError: "Redis Cluster cannot be connected", slots
)
_WRITE_REFUSED = ("OOM ", "READONLY ", "MISCONF ", "NOREPLICAS ")

REDIS_ERRORS = (redis_exc.RedisError, redis_exc.RedisClusterException, OSError)
"""What a redis-py call may raise when Redis fails (``RedisClusterException`` is no RedisError)."""


@contextmanager
def map_redis_errors(node: str | None = None) -> Iterator[None]:
    """Raise each redis-py exception as a :class:`BackendError`; ``node``: the server called,
    when the caller knows it better than the exception does."""
    try:
        yield
    except BackendError:
        raise
    except REDIS_ERRORS as exc:
        raise mapped(exc, node) from exc


def mapped(exc: BaseException, node: str | None = None) -> BackendError:
    """The :class:`BackendError` for redis-py's ``exc`` (not raised; ``__cause__`` unset)."""
    error = _map(exc)
    error.node = node or _node_of(exc)
    return error


def _map(exc: BaseException) -> BackendError:
    if isinstance(exc, redis_exc.TimeoutError | TimeoutError):  # asyncio.TimeoutError is TimeoutError
        return BackendTimeoutError(f"Redis did not answer in time: {exc}")
    if _MAX_CONNECTIONS and isinstance(exc, _MAX_CONNECTIONS):
        return BackendBusyError(f"no Redis connection free: {exc}")
    if isinstance(exc, redis_exc.ConnectionError):
        if str(exc).startswith("No connection available"):  # BlockingConnectionPool timed out
            return BackendBusyError(f"no Redis connection free: {exc}")
        return BackendUnavailableError(f"Redis is unreachable: {exc}")
    if isinstance(exc, ConnectionError | OSError):
        # AuthenticationError and the "max connections" error are ConnectionErrors too.
        return BackendUnavailableError(f"Redis is unreachable: {exc}")
    if isinstance(exc, redis_exc.MovedError):  # only a one-server client sees it: redis-py follows it
        return BackendError(
            f"Redis answered MOVED: it is a Redis Cluster; use a redis+cluster:// URL ({exc})"
        )
    if isinstance(exc, _CLUSTER_UNAVAILABLE):
        return BackendUnavailableError(f"Redis cannot serve this now: {exc}")
    if isinstance(exc, redis_exc.ResponseError):
        reply = str(exc)
        if reply.startswith("WRONGTYPE"):
            return BackendDataError(f"Redis holds another type under the key: {exc}")
        # redis-py names OOM and READONLY (OutOfMemoryError, ReadOnlyError) but not all of them,
        # and strips the error code from some replies (READONLY): go by class or code.
        if isinstance(exc, redis_exc.OutOfMemoryError | redis_exc.ReadOnlyError) or reply.startswith(
            _WRITE_REFUSED
        ):
            return BackendWriteRefusedError(f"Redis refused the write: {exc}")
    return BackendError(f"Redis failed: {exc}")


def _node_of(exc: BaseException) -> str | None:
    """``host:port`` of the connection or cluster node redis-py attached to ``exc``."""
    where = getattr(exc, "connection", None)
    host, port = getattr(where, "host", None), getattr(where, "port", None)
    return f"{host}:{port}" if isinstance(host, str) and isinstance(port, int) else None


def node_error(exc: BaseException, node: str) -> BackendError:
    """:func:`mapped`, with ``__cause__`` set, for an error of one node of a batch."""
    if isinstance(exc, BackendError):
        return exc
    error = mapped(exc, node)
    error.__cause__ = exc
    return error


def partial_failure(
    results: object, failures: dict[str, BackendError], failed_keys: list[str], uncovered: int
) -> PartialBackendError:
    """The error of a batch that some nodes (or slots no node serves) left unanswered."""
    if uncovered:
        failures = failures | {
            UNCOVERED: BackendUnavailableError(f"{uncovered} key(s) in slots no node serves")
        }
    names = ", ".join(sorted(failures)) or "none"
    message = f"{len(failed_keys)} key(s) not served: nodes failed: {names}"
    if uncovered:
        message += f"; {uncovered} key(s) in slots no node serves"
    return PartialBackendError(message, results=results, failures=failures, failed_keys=failed_keys)
