"""What the cache wrote to Redis, read back without the cache: the serializer's bytes."""

from __future__ import annotations

from otel_cache.backends.envelope import HEADER_SIZE


def payload(raw: bytes | str | None) -> bytes | None:
    """``raw`` (a GET reply) less its expiry header; None for a miss. Fails on another format."""
    if raw is None:
        return None
    assert isinstance(raw, bytes), raw
    assert raw[:1] == b"e", f"not a value the cache wrote: {raw!r}"
    assert len(raw) >= HEADER_SIZE, f"not a value the cache wrote: {raw!r}"
    return raw[HEADER_SIZE:]


def payloads(replies: list[bytes | None]) -> list[bytes | None]:
    """``payload`` of each MGET reply."""
    return [payload(raw) for raw in replies]
