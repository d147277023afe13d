"""Client options shared by the sync and asyncio Redis backends.

Retries are off: the multi-level cache has its own policy (a miss now, a circuit
breaker for a dead server), and redis-py's default retries would turn every call
to a dead Redis into several timeouts. RESP3 is on. Auth and TLS come from the
URL (``redis://user:pass@host``, ``rediss://``). The pool blocks for at most the
connect timeout when all ``redis_max_connections`` connections are busy, rather
than failing at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from otel_cache.config import CacheConfig

__all__ = ["SCAN_BATCH", "add_to_tags", "glob_escape", "pool_options", "redis_db", "text"]

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


def add_to_tags(pipe: Any, tag_keys: Sequence[str], keys: Sequence[str], ttl_ms: int | None) -> None:
    """Queue: each tag set gains ``keys`` and lives at least as long as they do.

    One command per tag key (a single key each, so it works on a cluster too); the set's
    expiry is set when it has none (NX) and only ever extended (GT).
    """
    for tag_key in tag_keys:
        pipe.sadd(tag_key, *keys)
        if ttl_ms is None:
            pipe.persist(tag_key)
        else:
            pipe.pexpire(tag_key, ttl_ms, nx=True)
            pipe.pexpire(tag_key, ttl_ms, gt=True)


def text(member: bytes | str) -> str:
    return member.decode() if isinstance(member, bytes) else member


def redis_db(url: str) -> int:
    """The database number a Redis URL selects: ``redis://h/3``, ``unix:///s.sock?db=3`` (else 0)."""
    parts = urlsplit(url)
    for name, value in parse_qsl(parts.query):
        if name == "db" and value.isdigit():
            return int(value)
    path = parts.path.strip("/")
    return int(path) if parts.scheme != "unix" and path.isdigit() else 0


def glob_escape(text: str) -> str:
    """``text`` with SCAN's glob characters escaped, for a prefix match."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
