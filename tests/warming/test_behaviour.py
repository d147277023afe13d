"""The same behaviour asserted on both warmers (thread and asyncio tasks), with a real L1 cache."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from typing import Any

import pytest

from otel_cache.errors import CacheConfigError
from otel_cache.l1 import AsyncLRUCache
from tests.support import ManualClock
from tests.warming.helpers import Shell, eventually

pytestmark = pytest.mark.timeout(20)

FAST = 0.02  # seconds between runs: tests wait for counters, never for a length of time


class VersionedLoader:
    """Returns ``(key, n)`` for the n-th load of ``key``; raises for the keys in ``failing``."""

    def __init__(self, *failing: str) -> None:
        self.failing = set(failing)
        self.loads: Counter[str] = Counter()

    def __call__(self, key: str) -> tuple[str, int]:
        self.loads[key] += 1
        if key in self.failing:
            raise LookupError(f"no such user: {key}")
        return key, self.loads[key]


async def test_keys_are_warmed_and_refreshed_on_schedule(shell: Shell) -> None:
    cache: AsyncLRUCache[str, Any] = AsyncLRUCache()
    loader = VersionedLoader()
    warmer = shell.make(cache, loader, ["a", "b", "c"], interval=FAST)
    await shell.start(warmer)
    try:
        await eventually(lambda: warmer.stats().runs >= 3)
    finally:
        await shell.stop(warmer)
    stats = warmer.stats()
    # Each snapshot is taken after its run's puts, so three runs mean three versions in the cache.
    versions = {key: value[1] for key, value in cache.get_many("abc").items()}
    assert sorted(versions) == ["a", "b", "c"]
    assert min(versions.values()) >= 3, versions
    assert stats.keys_warmed == 3 * stats.runs
    assert (stats.failures, stats.keys_rejected, stats.last_error) == (0, 0, None)
    assert shell.leftovers() == []


async def test_a_failing_key_fails_alone_and_is_counted_and_logged(
    shell: Shell, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_cache.warming")
    cache: AsyncLRUCache[str, Any] = AsyncLRUCache()
    loader = VersionedLoader("bad")
    warmer = shell.make(cache, loader, ["a", "bad", "c"], interval=FAST, name="users")
    await shell.start(warmer)
    try:
        await eventually(lambda: warmer.stats().runs >= 3)
        assert warmer.running, "a failure never ends the warmer"
    finally:
        await shell.stop(warmer)
    stats = warmer.stats()
    assert stats.failures == stats.runs, "one failure per run: the bad key, every time"
    assert stats.keys_warmed == 2 * stats.runs, "the other keys were warmed in every run"
    assert stats.last_error == "LookupError"
    assert cache.get("a") is not None
    assert cache.get("c") is not None
    assert "bad" not in cache
    failures = [r for r in caplog.records if r.name == "otel_cache.warming"]
    assert len(failures) >= stats.runs
    assert all(r.levelno == logging.WARNING and r.exc_info for r in failures)
    assert "cache warmer 'users': load of key 'bad' failed: LookupError" in failures[0].getMessage()


async def test_a_cache_that_raises_is_counted_and_survived(
    shell: Shell, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_cache.warming")
    cache: AsyncLRUCache[str, Any] = AsyncLRUCache()
    cache.close()  # every put now raises CacheClosedError
    warmer = shell.make(cache, VersionedLoader(), ["a", "b"], interval=FAST)
    await shell.start(warmer)
    try:
        await eventually(lambda: warmer.stats().runs >= 2)
        assert warmer.running
    finally:
        await shell.stop(warmer)
    stats = warmer.stats()
    assert (stats.failures, stats.keys_warmed, stats.last_error) == (2 * stats.runs, 0, "CacheClosedError")
    assert "store of key 'a' failed" in caplog.records[0].getMessage()


async def test_a_failing_key_callable_fails_that_run_only(shell: Shell) -> None:
    cache: AsyncLRUCache[str, Any] = AsyncLRUCache()
    listings = iter([["a"], ["a", "b"]])
    first = True

    def keys() -> list[str]:
        nonlocal first
        if first:
            first = False
            raise ConnectionError("db down")
        return next(listings, ["a", "b"])

    warmer = shell.make(cache, VersionedLoader(), keys, interval=FAST)
    await shell.start(warmer)
    try:
        await eventually(lambda: warmer.stats().runs >= 3)
    finally:
        await shell.stop(warmer)
    stats = warmer.stats()
    assert (stats.failures, stats.last_error) == (1, "ConnectionError")
    assert {"a", "b"} <= set(cache.get_many(["a", "b"])), "the key callable's later answers were warmed"


async def test_rejected_puts_are_counted_not_failed(shell: Shell) -> None:
    cache: AsyncLRUCache[str, Any] = AsyncLRUCache(max_bytes=1_000)
    warmer = shell.make(
        cache, lambda key: key * (10_000 if key == "big" else 1), ["big", "small"], interval=1
    )
    stats = await shell.run_once(warmer)
    assert (stats.keys_warmed, stats.keys_rejected, stats.failures) == (1, 1, 0)
    assert "big" not in cache
    assert "small" in cache


async def test_run_once_warms_without_starting(shell: Shell) -> None:
    cache: AsyncLRUCache[str, Any] = AsyncLRUCache()
    warmer = shell.make(cache, VersionedLoader(), ["a", "b"], interval=30)
    stats = await shell.run_once(warmer)
    assert (stats.runs, stats.keys_warmed) == (1, 2)
    assert cache.get("a") == ("a", 1)
    assert not warmer.running
    assert shell.leftovers() == []


async def test_entries_get_the_warmer_ttl(shell: Shell) -> None:
    clock = ManualClock()
    cache: AsyncLRUCache[str, Any] = AsyncLRUCache(default_ttl=1_000, clock=clock)
    warmer = shell.make(cache, VersionedLoader(), ["a"], interval=30, ttl=5)
    await shell.run_once(warmer)
    clock.advance(4.9)
    assert "a" in cache
    clock.advance(0.2)
    assert "a" not in cache


async def test_run_duration_comes_from_the_injected_clock(shell: Shell) -> None:
    clock = ManualClock()

    def loader(key: str) -> str:
        clock.advance(0.5)
        return key

    warmer = shell.make(AsyncLRUCache(), loader, ["a", "b", "c"], interval=30, clock=clock)
    stats = await shell.run_once(warmer)
    assert stats.last_run_duration_s == 1.5


async def test_start_and_stop_are_idempotent_and_restartable(shell: Shell) -> None:
    cache: AsyncLRUCache[str, Any] = AsyncLRUCache()
    warmer = shell.make(cache, VersionedLoader(), ["a"], interval=FAST, name="idem")
    await shell.stop(warmer)  # stop before start: nothing to do
    await shell.start(warmer)
    await shell.start(warmer)
    assert len(shell.leftovers()) == 1, "a second start adds no thread or task"
    await eventually(lambda: warmer.stats().runs >= 1)
    await shell.stop(warmer)
    await shell.stop(warmer)
    assert not warmer.running
    assert shell.leftovers() == []

    runs = warmer.stats().runs
    await shell.start(warmer)
    await eventually(lambda: warmer.stats().runs > runs)
    await shell.stop(warmer)
    assert shell.leftovers() == []


async def test_stop_is_prompt_with_a_long_interval(shell: Shell) -> None:
    warmer = shell.make(AsyncLRUCache(), VersionedLoader(), ["a"], interval=30)
    await shell.start(warmer)
    await eventually(lambda: warmer.stats().runs == 1)
    started = time.monotonic()
    await shell.stop(warmer)
    assert time.monotonic() - started < 1.0
    assert shell.leftovers() == []


async def test_run_immediately_false_waits_one_interval(shell: Shell) -> None:
    loader = VersionedLoader()
    warmer = shell.make(AsyncLRUCache(), loader, ["a"], interval=30, run_immediately=False)
    await shell.start(warmer)
    try:
        assert warmer.running
        await asyncio.sleep(0.05)  # give a wrong first run the chance to happen; passing never needs it
        assert loader.loads == {}
        assert warmer.stats().runs == 0
    finally:
        await shell.stop(warmer)
    assert loader.loads == {}


@pytest.mark.parametrize("interval", [0, -0.5, math.nan, math.inf, True])
def test_invalid_interval_raises(shell: Shell, interval: float) -> None:
    with pytest.raises(CacheConfigError, match="interval"):
        shell.make(AsyncLRUCache(), VersionedLoader(), ["a"], interval=interval)


def test_loader_must_be_callable(shell: Shell) -> None:
    with pytest.raises(CacheConfigError, match="loader"):
        shell.make(AsyncLRUCache(), {"a": 1}, ["a"], interval=1)
