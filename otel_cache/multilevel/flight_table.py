"""The flight table that both single-flight shells share: one flight per key, whoever leads it.

A thread (:mod:`~otel_cache.multilevel.flight_sync`) and a coroutine
(:mod:`~otel_cache.multilevel.flight_async`) missing the same key join one flight, so
the loader runs once for both APIs of a cache::

    join(key) ── no flight ──> leader: load, then finish(value | error | gone)
       │                                   │
       └─ a flight ──> waiter ─────────────┴──> threads: the flight's Event is set
                                               coroutines: their own loop's future is settled
                                               (call_soon_threadsafe from another thread)

A leader that is gone (cancelled, ``KeyboardInterrupt``) settles its waiters with
:data:`LEADER_GONE`: they join again and one of them leads. A caller never waits on a
flight led from its own thread: a sync call made on an event loop's thread while a
coroutine of that loop leads would wait for a loop it blocks, so it loads on its own.

The table's lock guards only dict operations and appends (O(1), no callback inside).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Hashable
from typing import Any

__all__ = ["LEADER_GONE", "Flight", "FlightTable"]


class _LeaderGone:
    __slots__ = ()

    def __repr__(self) -> str:
        return "LEADER_GONE"


LEADER_GONE: Any = _LeaderGone()
"""A flight's outcome when its leader stopped without a value or an ``Exception``."""


class Flight:
    """One load in progress: its leader's thread and loop, and the waiters to settle."""

    __slots__ = ("done", "error", "futures", "thread", "value")

    def __init__(self, thread: int) -> None:
        self.done = threading.Event()
        self.thread = thread
        self.value: Any = LEADER_GONE
        self.error: BaseException | None = None
        self.futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = []


class FlightTable:
    """Flights by key, shared by the sync and the async single-flight shells of one cache."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, Flight] = {}

    def join(self, key: Hashable) -> tuple[Flight, bool]:
        """The key's flight and whether the caller leads it (a new flight)."""
        thread = threading.get_ident()
        with self._lock:
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = Flight(thread)
                return flight, True
            return flight, False

    def own_thread(self, flight: Flight) -> bool:
        """Whether ``flight`` is led from the calling thread (waiting on it could deadlock)."""
        return flight.thread == threading.get_ident()

    def wait_async(self, flight: Flight, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any] | None:
        """A future of ``loop`` settled with the flight's outcome; None if it has one already."""
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if flight.done.is_set():
                return None
            flight.futures.append((loop, future))
        return future

    def finish(
        self, key: Hashable, flight: Flight, value: Any = LEADER_GONE, error: BaseException | None = None
    ) -> None:
        """End the flight: later callers start a new one; every waiter gets the outcome."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
            flight.value = value
            flight.error = error
            flight.done.set()
            futures, flight.futures = flight.futures, []
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for loop, future in futures:
            if loop is here:
                _settle(future, value, error)
            else:
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits there
                    loop.call_soon_threadsafe(_settle, future, value, error)

    def in_flight(self) -> int:
        return len(self._flights)


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the waiter was cancelled
        return
    if error is not None:
        future.set_exception(error)
        future.exception()  # retrieved: with no waiter left, asyncio would log it
    else:
        future.set_result(value)
