"""ADR-014's process-wide query-result managers: ``get_cache_manager()``, ``get_async_cache_manager()``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import BaseModel

import otel_cache.managers as managers
from otel_cache import (
    AsyncCacheManager,
    CacheClosedError,
    CacheConfig,
    CacheConfigError,
    CacheManager,
    MultiLevelCache,
    areset_cache_managers,
    configure_cache_managers,
    get_async_cache_manager,
    get_cache_manager,
    reset_cache_managers,
)
from otel_cache.core.keys import query_key
from tests.support.config import patient_config


class TraversalQuery(BaseModel):
    start: str
    depth: int
    filters: dict[str, str]


RESULT = {"nodes": ["svc-a", "svc-b"], "edges": [["svc-a", "svc-b"]], "depth": 2}


def _model_query() -> TraversalQuery:
    return TraversalQuery(start="svc-a", depth=2, filters={"env": "prod", "kind": "service"})


def _dict_query() -> dict[str, Any]:
    return {"start": "svc-a", "depth": 2, "filters": {"env": "prod", "kind": "service"}}


QUERIES = pytest.mark.parametrize("make_query", [_model_query, _dict_query], ids=["pydantic", "dict"])


pytestmark = pytest.mark.usefixtures("fresh_managers")  # tests/conftest.py


def _assert_no_managers() -> None:
    assert managers._sync_manager is None
    assert managers._async_manager is None
    assert managers._config is None


# -- the ADR's examples ---------------------------------------------------------


@QUERIES
def test_sync_example_from_the_adr(make_query: Any) -> None:
    query = make_query()
    cache = get_cache_manager()
    cache.cache_query_result(query, RESULT)
    assert cache.get_query_result(query) == RESULT


@QUERIES
async def test_async_example_from_the_adr(make_query: Any) -> None:
    query = make_query()
    cache = get_async_cache_manager()
    await cache.acache_query_result(query, RESULT)
    assert await cache.aget_query_result(query) == RESULT


def test_a_miss_returns_the_default() -> None:
    cache = get_cache_manager()
    assert cache.get_query_result(_model_query()) is None
    assert cache.get_query_result(_model_query(), default="nothing") == "nothing"
    assert not cache.has_query_result(_model_query())
    cache.cache_query_result(_model_query(), None)  # None is a result too
    assert cache.has_query_result(_model_query())
    assert cache.get_query_result(_model_query(), default="nothing") is None


async def test_an_async_miss_returns_the_default() -> None:
    cache = get_async_cache_manager()
    assert await cache.aget_query_result(_dict_query()) is None
    assert await cache.aget_query_result(_dict_query(), default=0) == 0


def test_the_same_query_with_fields_in_another_order_hits() -> None:
    cache = get_cache_manager()
    cache.cache_query_result(_model_query(), RESULT)
    reordered = TraversalQuery(filters={"kind": "service", "env": "prod"}, depth=2, start="svc-a")
    assert cache.get_query_result(reordered) == RESULT
    reordered_dict = {"filters": {"kind": "service", "env": "prod"}, "depth": 2, "start": "svc-a"}
    assert cache.get_query_result(reordered_dict) is None  # a model and a dict do not share a key
    cache.cache_query_result(_dict_query(), "as a dict")
    assert cache.get_query_result(reordered_dict) == "as a dict"
    assert cache.get_query_result(_model_query()) == RESULT


async def test_the_same_query_with_fields_in_another_order_hits_async() -> None:
    cache = get_async_cache_manager()
    await cache.acache_query_result(_model_query(), RESULT)
    reordered = TraversalQuery(filters={"kind": "service", "env": "prod"}, depth=2, start="svc-a")
    assert await cache.aget_query_result(reordered) == RESULT


def test_different_queries_miss() -> None:
    cache = get_cache_manager()
    cache.cache_query_result(_model_query(), RESULT)
    assert cache.get_query_result(TraversalQuery(start="svc-a", depth=3, filters={})) is None
    assert cache.key_for(_model_query()) == query_key(_model_query())


def test_invalidate_query() -> None:
    cache = get_cache_manager()
    cache.cache_query_result(_model_query(), RESULT)
    cache.cache_query_result(_dict_query(), "other")
    assert cache.invalidate_query(_model_query())
    assert cache.get_query_result(_model_query()) is None
    assert cache.get_query_result(_dict_query()) == "other"
    assert not cache.invalidate_query(_model_query())


async def test_ainvalidate_query() -> None:
    cache = get_async_cache_manager()
    await cache.acache_query_result(_model_query(), RESULT)
    assert await cache.ainvalidate_query(_model_query())
    assert await cache.aget_query_result(_model_query()) is None
    assert not await cache.ainvalidate_query(_model_query())


def test_clear() -> None:
    cache = get_cache_manager()
    cache.cache_query_result(_model_query(), RESULT)
    cache.clear()
    assert cache.get_query_result(_model_query()) is None


async def test_aclear() -> None:
    cache = get_async_cache_manager()
    await cache.acache_query_result(_model_query(), RESULT)
    await cache.aclear()
    assert await cache.aget_query_result(_model_query()) is None


def test_get_or_compute_runs_compute_once() -> None:
    cache = get_cache_manager()
    calls = 0
    started = threading.Barrier(8)

    def compute() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        time.sleep(0.05)  # long enough for the other threads to miss and wait on this load
        return RESULT

    def worker(results: list[Any]) -> None:
        started.wait()
        results.append(cache.get_or_compute(_model_query(), compute))

    results: list[Any] = []
    threads = [threading.Thread(target=worker, args=(results,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [RESULT] * 8
    assert calls == 1
    assert cache.get_or_compute(_model_query(), compute) == RESULT
    assert calls == 1


async def test_aget_or_compute_runs_compute_once() -> None:
    cache = get_async_cache_manager()
    calls = 0

    async def compute() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        for _ in range(3):
            await asyncio.sleep(0)
        return RESULT

    results = await asyncio.gather(*(cache.aget_or_compute(_model_query(), compute) for _ in range(10)))
    assert results == [RESULT] * 10
    assert calls == 1
    assert await cache.aget_or_compute(_model_query(), lambda: "plain function") == RESULT
    assert await cache.aget_or_compute(_dict_query(), lambda: "plain function") == "plain function"


# -- lifecycle ------------------------------------------------------------------


def test_nothing_is_created_at_import() -> None:
    script = (
        "import otel_cache, otel_cache.managers as m\nprint(m._sync_manager, m._async_manager, m._config)\n"
    )
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert done.stdout.split() == ["None", "None", "None"]


def test_managers_are_lazy_singletons() -> None:
    _assert_no_managers()
    sync_manager = get_cache_manager()
    assert managers._async_manager is None  # the sync one did not create the async one
    async_manager = get_async_cache_manager()
    assert isinstance(sync_manager, CacheManager)
    assert isinstance(async_manager, AsyncCacheManager)
    assert get_cache_manager() is sync_manager
    assert get_async_cache_manager() is async_manager
    assert sync_manager.cache is async_manager.cache  # one cache per process for both APIs
    assert sync_manager.cache.mode == "sync"  # the mode of the manager asked for first


async def test_the_managers_share_one_cache_both_ways() -> None:
    sync_manager, async_manager = get_cache_manager(), get_async_cache_manager()
    query = {"q": "shared"}
    sync_manager.cache_query_result(query, {"v": 1})
    assert await async_manager.aget_query_result(query) == {"v": 1}
    assert sync_manager.invalidate_query(query)
    assert await async_manager.aget_query_result(query) is None
    await async_manager.acache_query_result(query, {"v": 2})
    assert sync_manager.get_query_result(query) == {"v": 2}


def test_one_manager_for_concurrent_first_calls() -> None:
    seen: list[CacheManager] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        seen.append(get_cache_manager())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8
    assert all(manager is seen[0] for manager in seen)


def test_default_config_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_CACHE_L1_MAX_ENTRIES", "7")
    config = get_cache_manager().cache.config
    assert config.name == "query-results"
    assert config.l1_max_entries == 7
    assert not config.l2_enabled


def test_reset_closes_and_forgets() -> None:
    old = get_cache_manager()
    old_async = get_async_cache_manager()
    old.cache_query_result(_model_query(), RESULT)
    reset_cache_managers()
    _assert_no_managers()
    assert old.cache.closed
    assert old_async.cache.closed
    with pytest.raises(CacheClosedError):
        old.get_query_result(_model_query())
    with pytest.raises(CacheClosedError):
        old.cache_query_result(_model_query(), RESULT)
    new = get_cache_manager()
    assert new is not old
    assert new.get_query_result(_model_query()) is None
    reset_cache_managers()  # twice is harmless
    reset_cache_managers()


async def test_areset_closes_and_forgets() -> None:
    old = get_async_cache_manager()
    old_sync = get_cache_manager()
    await old.acache_query_result(_model_query(), RESULT)
    await areset_cache_managers()
    _assert_no_managers()
    assert old.cache.closed
    assert old_sync.cache.closed
    with pytest.raises(CacheClosedError):
        await old.aget_query_result(_model_query())
    with pytest.raises(CacheClosedError):
        await old.acache_query_result(_model_query(), RESULT)
    assert get_async_cache_manager() is not old
    assert await get_async_cache_manager().aget_query_result(_model_query()) is None


def test_configure_is_forgotten_by_reset() -> None:
    configure_cache_managers(CacheConfig(name="configured", l1_max_entries=3))
    assert get_cache_manager().cache.config.name == "configured"
    reset_cache_managers()
    assert get_cache_manager().cache.config.name == "query-results"


def test_configure_does_not_replace_existing_managers() -> None:
    existing = get_cache_manager()
    configure_cache_managers(CacheConfig(name="later"))
    assert get_cache_manager() is existing
    assert existing.cache.config.name == "query-results"
    configure_cache_managers(None)
    assert managers._config is None


async def test_the_managers_serve_a_cache_they_are_given_and_close_it() -> None:
    cache: MultiLevelCache[str, Any] = MultiLevelCache(
        CacheConfig(name="given"), async_mode=True, l1_lock=threading.RLock()
    )
    configure_cache_managers(cache=cache)
    assert get_async_cache_manager().cache is cache
    assert get_cache_manager().cache is cache
    await get_async_cache_manager().acache_query_result(_model_query(), RESULT)
    assert get_cache_manager().get_query_result(_model_query()) == RESULT
    assert cache.l1.lock_stats().kind == "threading.RLock"
    await areset_cache_managers()
    assert cache.closed
    assert get_cache_manager().cache.config.name == "query-results"


def test_a_given_cache_is_refused_while_the_managers_have_one() -> None:
    existing = get_cache_manager()
    late: MultiLevelCache[str, Any] = MultiLevelCache(CacheConfig(name="late"))
    try:
        with pytest.raises(CacheConfigError, match="reset the managers first"):
            configure_cache_managers(cache=late)
        with pytest.raises(CacheConfigError, match="not both"):
            configure_cache_managers(CacheConfig(name="late"), cache=late)
        assert get_cache_manager() is existing
    finally:
        late.close()


# -- through Redis -----------------------------------------------------------------


async def test_configured_managers_share_results_through_redis(redis_url: str) -> None:
    config = patient_config(redis_url=redis_url, namespace="test-managers")
    configure_cache_managers(config)
    sync_cache = get_cache_manager()
    async_cache = get_async_cache_manager()
    assert sync_cache.cache.config is config
    assert async_cache.cache.config is config

    assert sync_cache.cache_query_result(_model_query(), RESULT)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.exists(f"test-managers:{query_key(_model_query())}") == 1
    finally:
        client.close()

    # Two caches, one namespace: the async manager's L1 never saw the result.
    sync_cache.cache.l1.clear()
    async_cache.cache.l1.clear()
    reordered = TraversalQuery(filters={"kind": "service", "env": "prod"}, depth=2, start="svc-a")
    assert await async_cache.aget_query_result(reordered) == RESULT
    assert sync_cache.get_query_result(_model_query()) == RESULT

    # And the other way: an async invalidation removes it from Redis for everyone.
    assert await async_cache.ainvalidate_query(_model_query())
    sync_cache.cache.l1.clear()
    assert sync_cache.get_query_result(_model_query()) is None


class _Result(BaseModel):
    path: tuple[str, ...]


async def test_results_come_back_from_redis_as_they_were_cached(redis_url: str) -> None:
    config = patient_config(redis_url=redis_url, namespace="test-managers-values")
    configure_cache_managers(cache=MultiLevelCache(config, async_mode=True, value_types=[_Result]))
    await get_async_cache_manager().acache_query_result(_dict_query(), {"path": ("a", "b")})
    await get_async_cache_manager().acache_query_result(_model_query(), _Result(path=("c",)))
    cache = get_cache_manager()
    cache.cache.l1.clear()  # as another process sees it, from Redis
    assert cache.get_query_result(_dict_query()) == {"path": ("a", "b")}
    assert cache.get_query_result(_model_query()) == _Result(path=("c",))


async def test_areset_closes_redis_managers(redis_url: str) -> None:
    configure_cache_managers(patient_config(redis_url=redis_url, namespace="test-managers-reset"))
    old_async = get_async_cache_manager()
    old_sync = get_cache_manager()
    await old_async.acache_query_result(_model_query(), RESULT)
    old_sync.cache_query_result(_dict_query(), RESULT)
    await areset_cache_managers()
    with pytest.raises(CacheClosedError):
        await old_async.aget_query_result(_model_query())
    with pytest.raises(CacheClosedError):
        old_sync.get_query_result(_dict_query())
    # The config went with them: the new managers are L1 only.
    assert not get_cache_manager().cache.config.l2_enabled
    assert get_cache_manager().get_query_result(_dict_query()) is None
