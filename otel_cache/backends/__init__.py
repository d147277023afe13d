"""L2 backends: a small protocol and the Redis implementations (sync and asyncio)."""

from otel_cache.backends.protocol import AsyncBackend, SyncBackend

__all__ = ["AsyncBackend", "SyncBackend"]
