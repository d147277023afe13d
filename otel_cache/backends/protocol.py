"""The interface the multi-level cache needs from an L2 backend: nine calls.

Keys are full (namespaced) strings and values bytes; the backend raises only
:class:`~otel_cache.errors.BackendError` subclasses. A read returns a
:data:`Stored` pair: the bytes and the milliseconds the backend will keep them
(``None``: no expiry; 0: unknown or over, so serve it but do not copy it to L1), so
that L1 never keeps a copy longer than L2 does. The Redis backends store each
value's expiry beside it (:mod:`otel_cache.backends.envelope`): a read is one GET.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["AsyncBackend", "Stored", "SyncBackend"]

Stored = tuple[bytes, int | None]


class SyncBackend(Protocol):
    def get(self, key: str) -> Stored | None: ...

    def set(self, key: str, value: bytes, ttl_ms: int | None, tag_keys: Sequence[str] = ()) -> None: ...

    def delete(self, key: str) -> bool: ...

    def delete_many(self, keys: Sequence[str]) -> int: ...

    def get_many(self, keys: Sequence[str]) -> list[Stored | None]: ...

    def set_many(
        self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None, tag_keys: Sequence[str] = ()
    ) -> None: ...

    def invalidate_tags(self, tag_keys: Sequence[str]) -> list[str]: ...

    def clear(self, prefix: str) -> int: ...

    def close(self) -> None: ...


class AsyncBackend(Protocol):
    async def get(self, key: str) -> Stored | None: ...

    async def set(self, key: str, value: bytes, ttl_ms: int | None, tag_keys: Sequence[str] = ()) -> None: ...

    async def delete(self, key: str) -> bool: ...

    async def delete_many(self, keys: Sequence[str]) -> int: ...

    async def get_many(self, keys: Sequence[str]) -> list[Stored | None]: ...

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None, tag_keys: Sequence[str] = ()
    ) -> None: ...

    async def invalidate_tags(self, tag_keys: Sequence[str]) -> list[str]: ...

    async def clear(self, prefix: str) -> int: ...

    async def aclose(self) -> None: ...
