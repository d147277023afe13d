"""Single-flight for coroutines: concurrent misses of one key run the loader once.

The first coroutine (the leader) loads; the others await a shielded future, so a
waiter that is cancelled leaves the others alone. If the leader's loader raises,
every waiter gets that exception. If the leader is cancelled, waiters retry and
one of them leads instead: nobody hangs on a leader that is gone. Flights are
kept per event loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

__all__ = ["AsyncFlights"]

T = TypeVar("T")


class _LeaderGoneError(Exception):
    """The leading coroutine was cancelled: waiters must retry."""


class AsyncFlights:
    """Flight table for the async API; ``loads`` and ``coalesced`` are counters."""

    def __init__(self) -> None:
        self._tables: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[Hashable, asyncio.Future[Any]]
        ] = weakref.WeakKeyDictionary()
        self.loads = 0
        self.coalesced = 0
        self.failures = 0

    async def run(
        self,
        key: Hashable,
        load: Callable[[], Awaitable[T]],
        waiting: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> T:
        """``await load()`` once for concurrent callers of ``key``; ``waiting()`` wraps a waiter's wait."""
        loop = asyncio.get_running_loop()
        flights = self._tables.get(loop)
        if flights is None:
            flights = self._tables[loop] = {}
        while (future := flights.get(key)) is not None:
            self.coalesced += 1
            try:
                with waiting() if waiting is not None else nullcontext():
                    return await asyncio.shield(future)
            except _LeaderGoneError:
                continue
        future = loop.create_future()
        future.add_done_callback(_retrieve)
        flights[key] = future
        self.loads += 1
        try:
            value = await load()
        except Exception as exc:
            self.failures += 1
            future.set_exception(exc)
            raise
        except BaseException:  # cancelled (or the process is exiting): let a waiter lead
            future.set_exception(_LeaderGoneError())
            raise
        else:
            future.set_result(value)
            return value
        finally:
            if flights.get(key) is future:
                del flights[key]

    def in_flight(self) -> int:
        return sum(len(table) for table in self._tables.values())


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Mark the exception as seen: with no waiter, asyncio would log it as never retrieved.
    if not future.cancelled():
        future.exception()
