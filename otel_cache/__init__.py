"""otel_cache: an observable multi-level cache for asyncio and FastAPI services.

``AsyncLRUCache`` is the in-process L1 (sync and async API over one core);
``MultiLevelCache`` puts Redis behind it; ``get_cache_manager()`` and
``get_async_cache_manager()`` serve query results; ``@cached`` caches what any function
returns; ``otel_cache.warming.CacheWarmer`` keeps keys warm.
"""

from otel_cache._version import __version__
from otel_cache.config import CacheConfig
from otel_cache.core.fail_safe import FailSafe, LoadTimeouts
from otel_cache.core.stats import CacheStats, EvictionReason, LockWaitStats
from otel_cache.core.tiers import L2Stats
from otel_cache.core.ttl import NO_EXPIRY
from otel_cache.decorator import AsyncCachedFunction, CachedFunction, cached
from otel_cache.errors import (
    BackendBusyError,
    BackendDataError,
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    BackendWriteRefusedError,
    CacheClosedError,
    CacheConfigError,
    CacheError,
    CacheKeyError,
    CircuitOpenError,
    InvalidTTLError,
    LoadTimeoutError,
    PartialBackendError,
    SerializationError,
)
from otel_cache.l1 import AsyncLRUCache
from otel_cache.managers import (
    AsyncCacheManager,
    CacheManager,
    areset_cache_managers,
    configure_cache_managers,
    get_async_cache_manager,
    get_cache_manager,
    reset_cache_managers,
)
from otel_cache.multilevel import FlightStats, MultiLevelCache, MultiLevelStats

__all__ = [
    "NO_EXPIRY",
    "AsyncCacheManager",
    "AsyncCachedFunction",
    "AsyncLRUCache",
    "BackendBusyError",
    "BackendDataError",
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "BackendWriteRefusedError",
    "CacheClosedError",
    "CacheConfig",
    "CacheConfigError",
    "CacheError",
    "CacheKeyError",
    "CacheManager",
    "CacheStats",
    "CachedFunction",
    "CircuitOpenError",
    "EvictionReason",
    "FailSafe",
    "FlightStats",
    "InvalidTTLError",
    "L2Stats",
    "LoadTimeoutError",
    "LoadTimeouts",
    "LockWaitStats",
    "MultiLevelCache",
    "MultiLevelStats",
    "PartialBackendError",
    "SerializationError",
    "__version__",
    "areset_cache_managers",
    "cached",
    "configure_cache_managers",
    "get_async_cache_manager",
    "get_cache_manager",
    "reset_cache_managers",
]
