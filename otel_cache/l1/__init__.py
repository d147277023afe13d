"""L1: the in-process cache and its lock."""

from otel_cache.l1.cache import AsyncLRUCache
from otel_cache.l1.lock import TimedLock

__all__ = ["AsyncLRUCache", "TimedLock"]
