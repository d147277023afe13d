"""What only the thread warmer does: its daemon thread, joining it, and runs from several threads."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from otel_cache.errors import CacheConfigError
from otel_cache.l1 import AsyncLRUCache
from otel_cache.warming import ThreadWarmer
from tests.warming.helpers import warmer_threads

pytestmark = pytest.mark.timeout(20)


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        time.sleep(0.005)


def test_runs_in_one_named_daemon_thread() -> None:
    seen: list[threading.Thread] = []

    def loader(key: str) -> str:
        seen.append(threading.current_thread())
        return key

    warmer = ThreadWarmer(AsyncLRUCache(), loader, ["a", "b"], interval=0.02, name="users")
    with warmer:
        wait_for(lambda: warmer.stats().runs >= 2)
        assert warmer_threads() == ["otel-cache-warmer-users"]
    assert {t.name for t in seen} == {"otel-cache-warmer-users"}
    assert all(t.daemon for t in seen)
    assert warmer_threads() == []


def test_stop_wakes_a_sleeping_thread_at_once() -> None:
    warmer = ThreadWarmer(AsyncLRUCache(), str, ["a"], interval=30)
    warmer.start()
    wait_for(lambda: warmer.stats().runs == 1)
    started = time.monotonic()
    assert warmer.stop(timeout=5)
    assert time.monotonic() - started < 1.0
    assert warmer_threads() == []


def test_stop_ends_a_run_after_the_current_key_and_reports_a_busy_thread() -> None:
    entered, release = threading.Event(), threading.Event()
    loads: list[str] = []

    def loader(key: str) -> str:
        loads.append(key)
        entered.set()
        release.wait(10)
        return key

    cache: AsyncLRUCache[str, str] = AsyncLRUCache()
    warmer = ThreadWarmer(cache, loader, ["a", "b", "c"], interval=30)
    warmer.start()
    assert entered.wait(5)
    assert warmer.stop(timeout=0.05) is False, "the thread is still inside the loader"
    assert warmer.running
    release.set()
    assert warmer.stop(timeout=5)
    assert loads == ["a"], "keys after the current one are skipped once stopped"
    assert "a" in cache
    assert warmer.stats().runs == 1, "a run cut short still counts what it warmed"
    assert warmer_threads() == []


def test_stop_from_inside_the_loader_ends_the_thread() -> None:
    results: list[bool] = []

    def loader(key: str) -> str:
        results.append(warmer.stop())
        return key

    warmer: ThreadWarmer[str, str] = ThreadWarmer(AsyncLRUCache(), loader, ["a", "b"], interval=0.02)
    warmer.start()
    wait_for(lambda: not warmer.running)
    assert results == [False]
    assert warmer.stop(timeout=5)
    assert warmer_threads() == []


def test_runs_never_overlap_and_no_count_is_lost() -> None:
    lock = threading.Lock()
    inside = peak = 0

    def loader(key: str) -> str:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        time.sleep(0)  # let another thread in, if it could get in
        with lock:
            inside -= 1
        return key

    keys = [f"k{i}" for i in range(20)]
    warmer = ThreadWarmer(AsyncLRUCache(), loader, keys, interval=0.001)
    warmer.start()
    callers = [threading.Thread(target=lambda: [warmer.run_once() for _ in range(25)]) for _ in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(10)
    stats = warmer.stats()  # before stop(), which may cut the thread's last run short
    assert warmer.stop(timeout=5)
    assert peak == 1, "one run at a time: run_once() waits, a scheduled run is skipped"
    assert stats.runs >= 100
    assert stats.keys_warmed == 20 * stats.runs


def test_stop_from_a_loader_in_run_once_does_not_deadlock() -> None:
    stopped: list[bool] = []

    def loader(key: str) -> str:
        if threading.current_thread() is threading.main_thread():
            time.sleep(0.05)  # the thread's scheduled runs come due meanwhile and must not block
            stopped.append(warmer.stop(timeout=5))
        return key

    warmer: ThreadWarmer[str, str] = ThreadWarmer(AsyncLRUCache(), loader, ["a"], interval=0.001)
    warmer.start()
    assert warmer.run_once().keys_warmed >= 1
    assert stopped == [True]
    assert not warmer.running
    assert warmer_threads() == []


def test_an_async_loader_is_refused() -> None:
    async def loader(key: str) -> str:
        return key

    with pytest.raises(CacheConfigError, match="AsyncWarmer"):
        ThreadWarmer(AsyncLRUCache(), loader, ["a"], interval=1)


def test_context_manager_starts_and_stops() -> None:
    warmer = ThreadWarmer(AsyncLRUCache(), str, ["a"], interval=30, name="ctx")
    with warmer as entered:
        assert entered is warmer
        assert warmer.running
        assert warmer.thread_name in warmer_threads()
    assert not warmer.running
    assert warmer_threads() == []
