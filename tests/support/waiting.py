"""``wait_until`` / ``await_until``: wait for something the test itself set going (a background
refresh, a late load, an invalidation). The bound only ends a hang; it is no time window."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

__all__ = ["await_until", "wait_until"]

_STEP_S = 0.005
_STEPS = 6000  # 30 s


def wait_until(predicate: Callable[[], bool]) -> None:
    pause = threading.Event()
    for _ in range(_STEPS):
        if predicate():
            return
        pause.wait(_STEP_S)
    raise AssertionError("condition not reached")


async def await_until(predicate: Callable[[], bool]) -> None:
    for _ in range(_STEPS):
        if predicate():
            return
        await asyncio.sleep(_STEP_S)
    raise AssertionError("condition not reached")
