"""Helpers of the warming tests: polling with a deadline, leftover threads and tasks, one harness."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from otel_cache.warming import AsyncWarmer, CacheWarmer, ThreadWarmer, WarmerStats

PREFIX = "otel-cache-warmer-"


async def eventually(predicate: Callable[[], object], within: float = 5.0) -> None:
    """Poll ``predicate`` until it is true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.005)


def warmer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(PREFIX)]


def warmer_tasks() -> list[str]:
    """Every task but the test's own (call from inside the loop)."""
    current = asyncio.current_task()
    return [t.get_name() for t in asyncio.all_tasks() if t is not current]


class Shell:
    """Drives a ThreadWarmer or an AsyncWarmer through one async interface."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.async_mode = kind == "async"

    def make(self, cache: Any, loader: Any, keys: Any, **kwargs: Any) -> Any:
        return CacheWarmer(cache, loader, keys, async_mode=self.async_mode, **kwargs)

    async def start(self, warmer: ThreadWarmer[Any, Any] | AsyncWarmer[Any, Any]) -> None:
        warmer.start()

    async def stop(self, warmer: ThreadWarmer[Any, Any] | AsyncWarmer[Any, Any]) -> None:
        if isinstance(warmer, AsyncWarmer):
            await warmer.stop()
        else:
            assert warmer.stop(timeout=5.0)

    async def run_once(self, warmer: ThreadWarmer[Any, Any] | AsyncWarmer[Any, Any]) -> WarmerStats:
        if isinstance(warmer, AsyncWarmer):
            return await warmer.run_once()
        return warmer.run_once()

    def leftovers(self) -> list[str]:
        """Warmer threads and any task but the current one: both must be empty after stop."""
        return warmer_threads() + warmer_tasks()
