"""The one place where redis-py's exceptions become otel_cache's.

Use as ``with map_redis_errors(): ...`` around every client call, sync or async.
The original exception stays reachable as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis import exceptions as redis_exc

from otel_cache.errors import BackendBusyError, BackendError, BackendTimeoutError, BackendUnavailableError

__all__ = ["map_redis_errors"]

# redis-py 6+ raises MaxConnectionsError from a full non-blocking pool.
_MAX_CONNECTIONS: type[Exception] | tuple[()] = getattr(redis_exc, "MaxConnectionsError", ())


@contextmanager
def map_redis_errors() -> Iterator[None]:
    try:
        yield
    except (redis_exc.TimeoutError, TimeoutError) as exc:  # asyncio.TimeoutError is TimeoutError
        raise BackendTimeoutError(f"Redis did not answer in time: {exc}") from exc
    except _MAX_CONNECTIONS as exc:
        raise BackendBusyError(f"no Redis connection free: {exc}") from exc
    except redis_exc.ConnectionError as exc:
        if str(exc).startswith("No connection available"):  # BlockingConnectionPool timed out
            raise BackendBusyError(f"no Redis connection free: {exc}") from exc
        raise BackendUnavailableError(f"Redis is unreachable: {exc}") from exc
    except (ConnectionError, OSError) as exc:
        # AuthenticationError and the "max connections" error are ConnectionErrors too.
        raise BackendUnavailableError(f"Redis is unreachable: {exc}") from exc
    except redis_exc.RedisError as exc:
        raise BackendError(f"Redis failed: {exc}") from exc
