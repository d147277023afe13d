"""Client options shared by the sync and asyncio Redis backends.

Retries are off: the multi-level cache has its own policy (a miss now, a circuit
breaker for a dead server), and redis-py's default retries would turn every call
to a dead Redis into several timeouts. RESP3 is on. Auth and TLS come from the
URL (``redis://user:pass@host``, ``rediss://``). The pool blocks for at most the
connect timeout when all ``redis_max_connections`` connections are busy, rather
than failing at once.
"""

from __future__ import annotations

from typing import Any

from otel_cache.config import CacheConfig

__all__ = ["SCAN_BATCH", "glob_escape", "pool_options", "stored"]

SCAN_BATCH = 500


def pool_options(config: CacheConfig, retry: Any) -> dict[str, Any]:
    """Keyword arguments for ``BlockingConnectionPool.from_url`` (sync or asyncio)."""
    return {
        "socket_timeout": config.redis_timeout,
        "socket_connect_timeout": config.redis_connect_timeout,
        "retry": retry,
        "protocol": 3,
        "max_connections": config.redis_max_connections,
        "timeout": config.redis_connect_timeout,
        "decode_responses": False,
    }


def glob_escape(text: str) -> str:
    """``text`` with SCAN's glob characters escaped, for a prefix match."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def stored(value: bytes | None, pttl: int) -> tuple[bytes, int | None] | None:
    """A GET reply and its PTTL reply as a ``Stored`` pair (PTTL -1: no expiry).

    PTTL -2 means the key expired between the two commands: a miss.
    """
    if value is None or pttl == -2:
        return None
    return value, (pttl if pttl >= 0 else None)
