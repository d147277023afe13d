"""What only the asyncio warmer does: tasks, bounded concurrency, async loaders, cancellation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import pytest

from otel_cache.errors import CacheConfigError
from otel_cache.l1 import AsyncLRUCache
from otel_cache.warming import AsyncWarmer
from tests.warming.helpers import eventually, warmer_tasks, warmer_threads

pytestmark = pytest.mark.timeout(20)


async def test_runs_as_one_named_task_and_no_thread() -> None:
    threads = set(threading.enumerate())

    async def loader(key: str) -> str:
        return key.upper()

    cache: AsyncLRUCache[str, str] = AsyncLRUCache()
    warmer = AsyncWarmer(cache, loader, ["a", "b"], interval=0.02, name="users", concurrency=1)
    warmer.start()
    try:
        await eventually(lambda: warmer.stats().runs >= 2)
        assert warmer_tasks() == ["otel-cache-warmer-users"]
        assert set(threading.enumerate()) == threads
    finally:
        await warmer.stop()
    assert cache.get("a") == "A"
    assert warmer_tasks() == []
    assert warmer_threads() == []


async def _fetch(key: str) -> str:
    await asyncio.sleep(0)
    return f"async-{key}"


def _compute(key: str) -> str:
    return f"sync-{key}"


def _deferred(key: str) -> Awaitable[str]:
    return _fetch(key)


@pytest.mark.parametrize(
    ("loader", "expected"),
    [(_fetch, "async-a"), (_compute, "sync-a"), (_deferred, "async-a")],
    ids=["async-def", "plain-function", "returns-awaitable"],
)
async def test_async_and_sync_loaders(loader: Callable[[str], Awaitable[str] | str], expected: str) -> None:
    cache: AsyncLRUCache[str, str] = AsyncLRUCache()
    stats = await AsyncWarmer(cache, loader, ["a", "b"], interval=1).run_once()
    assert (stats.keys_warmed, stats.failures) == (2, 0)
    assert cache.get("a") == expected


async def test_an_async_loader_that_raises_fails_its_key_only() -> None:
    async def fetch(key: str) -> str:
        await asyncio.sleep(0)
        if key == "bad":
            raise TimeoutError("slow backend")
        return key

    cache: AsyncLRUCache[str, str] = AsyncLRUCache()
    stats = await AsyncWarmer(cache, fetch, ["a", "bad", "c"], interval=1).run_once()
    assert (stats.keys_warmed, stats.failures, stats.last_error) == (2, 1, "TimeoutError")


@pytest.mark.parametrize("concurrency", [1, 3, 20])
async def test_loads_are_bounded_by_concurrency(concurrency: int) -> None:
    in_flight = peak = 0

    async def fetch(key: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(3):
            await asyncio.sleep(0)
        in_flight -= 1
        return key

    cache: AsyncLRUCache[int, int] = AsyncLRUCache()
    stats = await AsyncWarmer(cache, fetch, range(10), interval=1, concurrency=concurrency).run_once()
    assert stats.keys_warmed == 10
    assert peak == min(concurrency, 10)
    assert len(cache) == 10


async def test_stop_cancels_a_run_in_progress_and_its_workers() -> None:
    started = 0
    never = asyncio.Event()

    async def hang(key: int) -> int:
        nonlocal started
        started += 1
        await never.wait()
        return key

    cache: AsyncLRUCache[int, int] = AsyncLRUCache()
    warmer = AsyncWarmer(cache, hang, range(10), interval=30, concurrency=4)
    warmer.start()
    await eventually(lambda: started == 4)
    assert len(warmer_tasks()) == 5, "the scheduler and its four workers"
    await asyncio.wait_for(warmer.stop(), timeout=1)
    assert warmer_tasks() == []
    assert warmer.stats().runs == 1, "a run cut short still counts what it warmed"
    assert warmer.stats().keys_warmed == 0


@pytest.mark.parametrize("concurrency", [1, 8])
async def test_stop_from_inside_the_loader(concurrency: int) -> None:
    async def fetch(key: str) -> str:
        await warmer.stop()
        return key

    warmer: AsyncWarmer[str, str] = AsyncWarmer(
        AsyncLRUCache(), fetch, ["a", "b"], interval=0.02, concurrency=concurrency
    )
    warmer.start()
    await eventually(lambda: warmer_tasks() == [])
    assert not warmer.running
    await warmer.stop()


async def test_stop_from_a_loader_in_run_once() -> None:
    async def fetch(key: str) -> str:
        await warmer.stop()
        return key

    warmer: AsyncWarmer[str, str] = AsyncWarmer(AsyncLRUCache(), fetch, ["a", "b"], interval=30)
    warmer.start()
    await eventually(lambda: warmer.stats().runs == 1)  # the scheduled run has stopped the warmer
    assert warmer_tasks() == []
    warmer.start()
    stats = await asyncio.wait_for(warmer.run_once(), timeout=2)
    assert stats.runs == 2
    assert stats.keys_warmed >= 3, "run_once() warmed both keys after stopping the scheduler"
    assert warmer_tasks() == []


async def test_async_context_manager() -> None:
    async with AsyncWarmer(AsyncLRUCache(), str, ["a"], interval=30, name="ctx") as warmer:
        assert warmer.running
        assert warmer_tasks() == ["otel-cache-warmer-ctx"]
    assert not warmer.running
    assert warmer_tasks() == []


def test_start_needs_a_running_loop() -> None:
    warmer = AsyncWarmer(AsyncLRUCache(), str, ["a"], interval=1)
    with pytest.raises(RuntimeError, match="running event loop"):
        warmer.start()
    assert not warmer.running


@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True])
def test_invalid_concurrency(concurrency: int) -> None:
    with pytest.raises(CacheConfigError, match="concurrency"):
        AsyncWarmer(AsyncLRUCache(), str, ["a"], interval=1, concurrency=concurrency)
