"""Single-flight for coroutines: concurrent misses of one key run the loader once.

The first caller (the leader) loads; the others await a future of their own loop,
shielded, so a waiter that is cancelled leaves the others alone. The flight table
is shared with the sync shell (:mod:`~otel_cache.multilevel.flight_table`): a
coroutine also waits on a thread that leads, and the reverse, across event loops
too. If the leader's loader raises, every waiter gets that exception. If the leader
is cancelled, waiters retry and one of them leads instead: nobody hangs on a leader
that is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

from otel_cache.errors import LoadTimeoutError
from otel_cache.multilevel.flight_table import LEADER_GONE, FlightTable

__all__ = ["AsyncFlights"]

T = TypeVar("T")


class AsyncFlights:
    """The async shell over a flight table; ``coalesced`` counts its waiters; ``loads`` and
    ``failures`` count loader calls and their exceptions (the cache's drivers count them)."""

    def __init__(self, table: FlightTable | None = None) -> None:
        self.table = table if table is not None else FlightTable()
        self.loads = 0
        self.coalesced = 0
        self.failures = 0

    async def run(
        self,
        key: Hashable,
        load: Callable[[], Awaitable[T]],
        waiting: Callable[[], AbstractContextManager[Any]] | None = None,
        wait_at_most: float | None = None,
    ) -> T:
        """``await load()`` once for concurrent callers of ``key``; ``waiting()`` wraps a waiter's
        wait, which lasts ``wait_at_most`` seconds at most (then :class:`LoadTimeoutError`)."""
        table = self.table
        loop = asyncio.get_running_loop()
        while True:
            flight, leader = table.join(key)
            if leader:
                break
            self.coalesced += 1
            future = table.wait_async(flight, loop)
            if future is not None:
                with waiting() if waiting is not None else nullcontext():
                    try:  # raises the leader's exception
                        await asyncio.wait_for(asyncio.shield(future), wait_at_most)
                    except TimeoutError:
                        if not future.done():
                            raise LoadTimeoutError(
                                f"waited {wait_at_most} s for another caller's load", kind="waiter"
                            ) from None
                        raise  # the leader's own TimeoutError
            if flight.error is not None:
                raise flight.error
            if flight.value is LEADER_GONE:
                continue
            return flight.value  # type: ignore[no-any-return]
        try:
            value = await load()
        except Exception as exc:
            table.finish(key, flight, error=exc)
            raise
        except BaseException:  # cancelled (or the process is exiting): let a waiter lead
            table.finish(key, flight)
            raise
        table.finish(key, flight, value)
        return value

    def in_flight(self) -> int:
        return self.table.in_flight()
