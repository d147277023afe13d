"""``CacheConfig``: every setting of a cache, from arguments or ``OTEL_CACHE_*`` variables.

=====================================  =========================  ===================
variable                               field                      default
=====================================  =========================  ===================
``OTEL_CACHE_NAME``                    ``name``                   ``default``
``OTEL_CACHE_REDIS_URL``               ``redis_url``              unset: L1 only
``OTEL_CACHE_L1_MAX_ENTRIES``          ``l1_max_entries``         ``10000``
``OTEL_CACHE_L1_MAX_BYTES``            ``l1_max_bytes``           unset: no bound
``OTEL_CACHE_DEFAULT_TTL``             ``default_ttl`` (seconds)  ``300``
``OTEL_CACHE_L1_TTL``                  ``l1_ttl`` (seconds)       unset: as default
``OTEL_CACHE_NAMESPACE``               ``namespace``              ``otel-cache``
``OTEL_CACHE_SERIALIZER``              ``serializer``             ``json``
``OTEL_CACHE_PICKLE_HMAC_KEY``         ``pickle_hmac_key``        unset
``OTEL_CACHE_COMPRESSION``             ``compression``            unset: none (``zstd``, ``lz4``)
``OTEL_CACHE_COMPRESSION_MIN_BYTES``   ``compression_min_bytes``  ``1024``
``OTEL_CACHE_REDIS_TIMEOUT``           ``redis_timeout`` (s)      ``0.25``
``OTEL_CACHE_REDIS_CONNECT_TIMEOUT``   ``redis_connect_timeout``  ``0.5``
``OTEL_CACHE_REDIS_MAX_CONNECTIONS``   ``redis_max_connections``  ``64``
``OTEL_CACHE_ON_BACKEND_ERROR``        ``on_backend_error``       ``degrade``
``OTEL_CACHE_BREAKER_THRESHOLD``       ``breaker_threshold``      ``5``
``OTEL_CACHE_BREAKER_RESET``           ``breaker_reset`` (s)      ``1``
``OTEL_CACHE_MAX_KEY_LENGTH``          ``max_key_length``         ``1024``
``OTEL_CACHE_INVALIDATION``            ``invalidation``           ``true`` (with Redis)
=====================================  =========================  ===================

The Redis URL names one server, a Redis Cluster or a Sentinel set, and may carry
auth and TLS: ``redis://user:password@host:6379/0``,
``rediss://host:6380/0?ssl_cert_reqs=required`` (``rediss`` is Redis over TLS),
``redis+cluster://host1:7000,host2:7001``, ``redis+sentinel://host1,host2:26380/mymaster/0``
(grammar: :mod:`otel_cache.core.redis_url`). Passwords never appear in ``repr()``
nor in :attr:`CacheConfig.redacted_redis_url`. To hand the cache a client of your
own instead, see :class:`~otel_cache.MultiLevelCache`'s ``redis_client``.

``invalidation`` (on by default whenever ``redis_url`` is set): every process on
the same Redis and namespace drops its L1 copy of a key that another one wrote,
deleted or cleared, through a pub/sub channel; see :mod:`otel_cache.core.coherence`
and ``docs/many-instances.md``. Off, other processes' writes show in L1 only once
the copy's L1 TTL (``l1_ttl``) ends.

``breaker_reset`` is 1 s by default: a dead server costs one probe call a second, and
that probe is what teaches a Cluster client the new primary, so the cache follows a
failover within about a second of the promotion (a Sentinel client also asks the
sentinels every half second).

Time budget of a Redis call, both APIs: at most half of ``redis_timeout`` waiting for
a pooled connection, then ``redis_timeout`` for the command (1.5x in all); opening a
connection adds up to ``redis_connect_timeout`` per attempt.

``compression`` (the ``zstd`` or ``lz4`` extra) compresses the L2 copy of every value
whose serialized form is at least ``compression_min_bytes`` long, when that makes it
shorter; readers decompress whatever their own setting (:mod:`otel_cache.core.compression`).

``on_backend_error="degrade"`` (the default) makes every Redis failure a miss
(reads) or an L1-only write (writes), counted and recorded; ``"raise"`` raises the
mapped :class:`~otel_cache.errors.BackendError` instead (a key of another type read,
:class:`~otel_cache.errors.BackendDataError`, stays a miss under both).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Literal

from otel_cache.core.compression import CompressionName
from otel_cache.core.redis_url import parse_redis_url, redact_redis_url
from otel_cache.core.ttl import validate_ttl
from otel_cache.errors import CacheConfigError

__all__ = ["CacheConfig", "SerializerName"]

SerializerName = Literal["json", "msgpack", "pickle"]
_SERIALIZERS = ("json", "msgpack", "pickle")
_POLICIES = ("degrade", "raise")
_PREFIX = "OTEL_CACHE_"
_NAMESPACE = re.compile(r"[A-Za-z0-9_.\-/]+")


@dataclass(frozen=True)
class CacheConfig:
    """Settings of one :class:`~otel_cache.MultiLevelCache`. Validated on creation."""

    name: str = "default"
    redis_url: str | None = field(default=None, repr=False)
    l1_max_entries: int | None = 10_000
    l1_max_bytes: int | None = None
    default_ttl: float | None = 300.0
    l1_ttl: float | None = None
    namespace: str = "otel-cache"
    serializer: SerializerName = "json"
    pickle_hmac_key: bytes | None = field(default=None, repr=False)
    compression: CompressionName | None = None
    compression_min_bytes: int = 1024
    redis_timeout: float = 0.25
    redis_connect_timeout: float = 0.5
    redis_max_connections: int = 64
    on_backend_error: Literal["degrade", "raise"] = "degrade"
    breaker_threshold: int = 5
    breaker_reset: float = 1.0
    max_key_length: int = 1024
    invalidation: bool = True

    @property
    def redis_pool_wait(self) -> float:
        """How long a call waits for a free pooled connection: half of ``redis_timeout``."""
        return self.redis_timeout / 2

    def __post_init__(self) -> None:
        if not self.name:
            raise CacheConfigError("name must not be empty")
        if not _NAMESPACE.fullmatch(self.namespace):
            # No ':' and no glob characters: clear() deletes "namespace:*", which must not
            # reach into another namespace ("app" vs "app:v2").
            raise CacheConfigError(
                f"namespace must be letters, digits and . _ - / only (no ':'), got {self.namespace!r}"
            )
        if self.redis_url is not None:
            try:
                parse_redis_url(self.redis_url)
            except ValueError as exc:
                raise CacheConfigError(f"redis_url is invalid: {exc}") from exc
        for name in ("l1_max_entries", "l1_max_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise CacheConfigError(f"{name} must be a positive int or None, got {value!r}")
        try:
            validate_ttl(self.default_ttl, name="default_ttl")
            validate_ttl(self.l1_ttl, name="l1_ttl")
        except ValueError as exc:
            raise CacheConfigError(str(exc)) from exc
        if self.serializer not in _SERIALIZERS:
            raise CacheConfigError(f"serializer must be one of {_SERIALIZERS}, got {self.serializer!r}")
        if self.serializer == "pickle" and not self.pickle_hmac_key:
            raise CacheConfigError("the pickle serializer needs pickle_hmac_key (OTEL_CACHE_PICKLE_HMAC_KEY)")
        if self.compression not in (None, "zstd", "lz4"):
            raise CacheConfigError(f"compression must be 'zstd', 'lz4' or None, got {self.compression!r}")
        if not isinstance(self.invalidation, bool):
            raise CacheConfigError(f"invalidation must be true or false, got {self.invalidation!r}")
        if self.on_backend_error not in _POLICIES:
            raise CacheConfigError(f"on_backend_error must be one of {_POLICIES}")
        for name in ("redis_timeout", "redis_connect_timeout", "breaker_reset"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise CacheConfigError(f"{name} must be a positive number of seconds, got {value!r}")
        for name in ("redis_max_connections", "breaker_threshold", "max_key_length", "compression_min_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise CacheConfigError(f"{name} must be a positive int, got {value!r}")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        defaults: Mapping[str, object] | None = None,
        **overrides: object,
    ) -> CacheConfig:
        """Read ``OTEL_CACHE_*`` variables (unset or empty ones keep the default).

        Precedence, lowest first: the field's default, ``defaults`` (an app's own defaults),
        the environment, ``overrides``.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = dict(defaults or {})
        from_environment: set[str] = set()
        for f in fields(cls):
            raw = env.get(_PREFIX + f.name.upper())
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(f.name, raw.strip(), f.type)
            from_environment.add(f.name)
        values.update(overrides)
        try:
            return cls(**values)  # type: ignore[arg-type]
        except CacheConfigError as exc:
            field_name = str(exc).split(" ", 1)[0]
            if field_name in from_environment - set(overrides):
                raise CacheConfigError(f"{_PREFIX}{field_name.upper()}: {exc}") from exc
            raise

    def with_changes(self, **changes: object) -> CacheConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def l2_enabled(self) -> bool:
        return self.redis_url is not None

    @property
    def redacted_redis_url(self) -> str | None:
        """The Redis URL without its passwords, for logs and span attributes."""
        return None if self.redis_url is None else redact_redis_url(self.redis_url)


def _parse(name: str, raw: str, annotation: object) -> object:
    kind = str(annotation)
    if "CompressionName" in kind and raw.lower() in ("none", "off"):
        return None
    if kind == "bool":
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise CacheConfigError(f"{_PREFIX}{name.upper()}={raw!r} is not true or false")
    try:
        if "bytes" in kind:
            return raw.encode()
        if "int" in kind and "float" not in kind:
            return None if raw.lower() == "none" else int(raw)
        if "float" in kind:
            return None if raw.lower() in ("none", "inf") and "None" in kind else float(raw)
    except ValueError as exc:
        raise CacheConfigError(f"{_PREFIX}{name.upper()}={raw!r} is not a valid number") from exc
    return raw
