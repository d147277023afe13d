"""Command helpers shared by the sync and asyncio Redis backends.

The clients themselves and their options come from
:mod:`otel_cache.backends.redis_connect`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["SCAN_BATCH", "add_to_tags", "glob_escape", "text"]

SCAN_BATCH = 500


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


def glob_escape(text: str) -> str:
    """``text`` with SCAN's glob characters escaped, for a prefix match."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
