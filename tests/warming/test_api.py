"""The public names of ``otel_cache.warming`` and the ``CacheWarmer`` factory."""

from __future__ import annotations

import pytest

import otel_cache.warming
from otel_cache.errors import CacheConfigError
from otel_cache.l1 import AsyncLRUCache
from otel_cache.warming import AsyncWarmer, CacheWarmer, ThreadWarmer


def test_exported_members() -> None:
    assert otel_cache.warming.__all__ == ["AsyncWarmer", "CacheWarmer", "ThreadWarmer", "WarmerStats"]
    for name in otel_cache.warming.__all__:
        assert getattr(otel_cache.warming, name).__module__.startswith("otel_cache.warming.")


def test_sync_mode_is_a_thread_and_async_mode_is_tasks() -> None:
    cache: AsyncLRUCache[str, str] = AsyncLRUCache()
    sync = CacheWarmer(cache, str, ["a"], interval=1)
    assert type(sync) is ThreadWarmer
    warmer = CacheWarmer(cache, str, ["a"], interval=1, async_mode=True, concurrency=2, name="x", ttl=5)
    assert type(warmer) is AsyncWarmer
    assert warmer.name == "x"


def test_concurrency_is_for_async_mode_only() -> None:
    with pytest.raises(CacheConfigError, match="concurrency"):
        CacheWarmer(AsyncLRUCache(), str, ["a"], interval=1, concurrency=4)  # type: ignore[call-overload]
