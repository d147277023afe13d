"""Single-flight for threads: concurrent misses of one key run the loader once.

The first caller (the leader) loads; the others wait on the flight's Event and get
its value, or its exception. The flight table is shared with the async shell
(:mod:`~otel_cache.multilevel.flight_table`), so a thread also waits on a coroutine
that leads, and the reverse. If the leader dies of something that is not an
``Exception`` (``KeyboardInterrupt``, ``SystemExit``, a cancelled coroutine), waiters
retry and one of them leads instead: nobody hangs on a leader that is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

from otel_cache.errors import LoadTimeoutError
from otel_cache.multilevel.flight_table import LEADER_GONE, FlightTable

__all__ = ["SyncFlights"]

T = TypeVar("T")


class SyncFlights:
    """The sync shell over a flight table; ``coalesced`` counts its waiters; ``loads`` and
    ``failures`` count loader calls and their exceptions (the cache's drivers count them)."""

    def __init__(self, table: FlightTable | None = None) -> None:
        self.table = table if table is not None else FlightTable()
        self.loads = 0
        self.coalesced = 0
        self.failures = 0

    def run(
        self,
        key: Hashable,
        load: Callable[[], T],
        waiting: Callable[[], AbstractContextManager[Any]] | None = None,
        wait_at_most: float | None = None,
    ) -> T:
        """``load()`` once for concurrent callers of ``key``; ``waiting()`` wraps a waiter's wait,
        which lasts ``wait_at_most`` seconds at most (then :class:`LoadTimeoutError`)."""
        table = self.table
        while True:
            flight, leader = table.join(key)
            if leader:
                break
            if table.own_thread(flight):  # led by a coroutine of the loop this call blocks
                return load()
            self.coalesced += 1
            with waiting() if waiting is not None else nullcontext():
                if not flight.done.wait(wait_at_most):
                    raise LoadTimeoutError(
                        f"waited {wait_at_most} s for another caller's load", kind="waiter"
                    )
            if flight.error is not None:
                raise flight.error
            if flight.value is LEADER_GONE:
                continue
            return flight.value  # type: ignore[no-any-return]
        try:
            value = load()
        except Exception as exc:
            table.finish(key, flight, error=exc)
            raise
        except BaseException:
            table.finish(key, flight)
            raise
        table.finish(key, flight, value)
        return value

    def in_flight(self) -> int:
        return self.table.in_flight()
