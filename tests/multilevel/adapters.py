"""``CacheAdapter``: the same ``async def`` methods over every cache API.

It wraps an ``AsyncLRUCache`` or a ``MultiLevelCache`` and calls either its sync
methods (``get``) or their async twins (``aget``), so that one test body runs
against both shells.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from otel_cache import AsyncLRUCache, MultiLevelCache

__all__ = ["CacheAdapter"]


class CacheAdapter:
    """The same ``async def`` methods over the sync or the async API of one cache."""

    def __init__(self, target: AsyncLRUCache[Any, Any] | MultiLevelCache[Any, Any], api: str) -> None:
        assert api in ("sync", "async")
        self.target = target
        self.api = api

    def __repr__(self) -> str:
        return f"<CacheAdapter {type(self.target).__name__} api={self.api}>"

    @property
    def multilevel(self) -> bool:
        return isinstance(self.target, MultiLevelCache)

    @property
    def ml(self) -> MultiLevelCache[Any, Any]:
        assert isinstance(self.target, MultiLevelCache)
        return self.target

    @property
    def l1(self) -> AsyncLRUCache[Any, Any]:
        return self.target.l1 if isinstance(self.target, MultiLevelCache) else self.target

    @property
    def has_l2(self) -> bool:
        return isinstance(self.target, MultiLevelCache) and self.target.config.l2_enabled

    def l2_key(self, key: Any) -> str:
        return self.ml.tiers.l2_key(key)

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.api == "sync":
            return getattr(self.target, name)(*args, **kwargs)
        return await getattr(self.target, "a" + name)(*args, **kwargs)

    async def get(self, key: Any, default: Any = None) -> Any:
        return await self._call("get", key, default)

    async def put(self, key: Any, value: Any, ttl: Any = None, **tags: Any) -> bool:
        """``tags=[...]``: MultiLevelCache only."""
        return await self._call("put", key, value, ttl, **tags)  # type: ignore[no-any-return]

    async def delete(self, key: Any) -> bool:
        return await self._call("delete", key)  # type: ignore[no-any-return]

    async def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        return await self._call("get_many", keys)  # type: ignore[no-any-return]

    async def put_many(
        self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]], ttl: Any = None, **tags: Any
    ) -> int:
        return await self._call("put_many", items, ttl, **tags)  # type: ignore[no-any-return]

    async def get_or_set(self, key: Any, loader: Callable[[], Any], ttl: Any = None, **tags: Any) -> Any:
        """MultiLevelCache only; ``loader`` is a plain function (both APIs accept one)."""
        assert self.multilevel, "AsyncLRUCache has no get_or_set"
        return await self._call("get_or_set", key, loader, ttl, **tags)

    async def invalidate_tags(self, tags: Any) -> int:
        """MultiLevelCache only."""
        return await self._call("invalidate_tags", tags)  # type: ignore[no-any-return]

    async def clear(self) -> Any:
        return await self._call("clear")

    async def stats(self) -> Any:
        return await self._call("stats")

    async def close(self) -> None:
        await self._call("close")
