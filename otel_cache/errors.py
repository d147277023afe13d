"""Every error otel_cache raises.

All derive from :class:`CacheError`. Where a builtin exception already names the
kind of mistake, the error derives from it too (``CacheKeyError`` is a
``TypeError``, ``InvalidTTLError`` a ``ValueError``) so that existing ``except``
clauses keep working. No name shadows a builtin.

Backend (Redis) failures are mapped to :class:`BackendError` subclasses in one
place, :func:`otel_cache.backends.redis_errors.map_redis_errors`.
"""

from __future__ import annotations

__all__ = [
    "BackendBusyError",
    "BackendDataError",
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "BackendWriteRefusedError",
    "CacheClosedError",
    "CacheConfigError",
    "CacheError",
    "CacheKeyError",
    "CircuitOpenError",
    "InvalidTTLError",
    "PartialBackendError",
    "SerializationError",
]


class CacheError(Exception):
    """Base class of every otel_cache error."""


class CacheKeyError(CacheError, TypeError):
    """A key that cannot be used: unhashable, not encodable for L2, or too long."""


class InvalidTTLError(CacheError, ValueError):
    """A TTL that is negative, not finite or not a number."""


class CacheConfigError(CacheError, ValueError):
    """A configuration value (argument or ``OTEL_CACHE_*`` variable) that is invalid."""


class SerializationError(CacheError, ValueError):
    """A value that the L2 serializer cannot encode, or bytes it cannot decode."""


class LoadTimeoutError(CacheError, TimeoutError):
    """A ``get_or_set`` load ran past its timeout and no fail-safe copy could answer.

    The load goes on in the background and stores its value when it ends. ``kind`` is
    ``"hard"`` (the caller waited its ``hard_timeout``) or ``"waiter"`` (a caller waiting
    on another caller's load waited its ``hard_timeout``).
    """

    def __init__(self, message: str, *, kind: str = "hard") -> None:
        super().__init__(message)
        self.kind = kind


class CacheClosedError(CacheError, RuntimeError):
    """The cache was used after ``close()``/``aclose()``."""


class BackendError(CacheError):
    """The L2 backend (Redis) failed; ``__cause__`` holds the client's exception.

    ``node`` names the server that failed (``host:port``) when the client said so: on a
    cluster each node has its own circuit breaker.
    """

    node: str | None = None


class PartialBackendError(BackendError):
    """Some nodes of a cluster failed a call that spans nodes; the others answered.

    ``results`` holds the call's result with the failed nodes' share missing (``None``
    for each of their keys in a read), ``failures`` each failed node's error and
    ``failed_keys`` the keys on those nodes.
    """

    def __init__(
        self, message: str, *, results: object, failures: dict[str, BackendError], failed_keys: list[str]
    ) -> None:
        super().__init__(message)
        self.results = results
        self.failures = failures
        self.failed_keys = failed_keys


class BackendDataError(BackendError):
    """Redis answered, about one key: it holds another type (WRONGTYPE).

    A miss, never a sign that Redis is down: not fed to the circuit breaker, and not
    raised under policy "raise" either; a put over the key replaces it.
    """


class BackendWriteRefusedError(BackendError):
    """Redis refused a write but may still serve reads: out of memory with ``noeviction``
    (OOM), a read-only replica (READONLY), a failed snapshot (MISCONF), too few replicas
    (NOREPLICAS). Fed to the write side's circuit breaker only."""


class BackendUnavailableError(BackendError):
    """The backend could not be reached, refused the connection or reset it."""


class BackendTimeoutError(BackendError):
    """The backend did not answer within the configured timeout."""


class BackendBusyError(BackendTimeoutError):
    """Every pooled connection stayed busy for the connect timeout; Redis itself may be fine.

    Not fed to the circuit breaker: the pool is saturated, the server is not down.
    """


class CircuitOpenError(BackendUnavailableError):
    """The circuit breaker is open: the backend is skipped until the next probe."""
