"""Hits skip the lock only while the GIL makes their C calls atomic.

This machine has no free-threaded CPython to run the suite on (none can be installed
from its package sources), so the no-GIL branch is exercised by setting what the module
detects at import (``LOCK_FREE_HITS``) before a cache is made. Whether a hit waited
for the lock is read off the getter thread's stack while the test holds the lock.
"""

from __future__ import annotations

import sys
import threading
import time

import pytest

from otel_cache.l1 import cache as l1_cache
from otel_cache.l1.cache import AsyncLRUCache, gil_enabled

WAIT = 10.0


def waiting_for_the_lock(thread: threading.Thread) -> bool:
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "acquire_contended":
            return True
        frame = frame.f_back
    return False


def test_this_interpreter_has_the_gil_and_hits_skip_the_lock() -> None:
    assert gil_enabled() is (getattr(sys, "_is_gil_enabled", lambda: True)())
    assert l1_cache.LOCK_FREE_HITS is gil_enabled()
    cache: AsyncLRUCache[str, int] = AsyncLRUCache()
    cache.put("k", 1)
    assert cache.lock.try_acquire(False)
    try:
        got: list[int | None] = []
        getter = threading.Thread(target=lambda: got.append(cache.get("k")))
        getter.start()
        getter.join(WAIT)
        assert got == [1], "the hit did not wait for the held lock"
    finally:
        cache.lock.release()


def test_without_the_gil_a_hit_takes_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(l1_cache, "LOCK_FREE_HITS", False)
    cache: AsyncLRUCache[str, int] = AsyncLRUCache()
    cache.put("k", 1)
    assert cache.lock.try_acquire(False)
    got: list[int | None] = []
    getter = threading.Thread(target=lambda: got.append(cache.get("k")))
    try:
        getter.start()
        deadline = time.monotonic() + WAIT
        while not waiting_for_the_lock(getter):
            assert getter.is_alive(), "the hit returned without taking the lock"
            assert time.monotonic() < deadline
            time.sleep(0.001)
    finally:
        cache.lock.release()
    getter.join(WAIT)
    assert got == [1]
    assert cache.peek("k") == 1
    assert cache.stats().hits == 1
