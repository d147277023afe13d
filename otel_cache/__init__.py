"""otel_cache: an observable multi-level cache for asyncio and FastAPI services."""
