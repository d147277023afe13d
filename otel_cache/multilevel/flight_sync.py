"""Single-flight for threads: concurrent misses of one key run the loader once.

The first caller (the leader) loads; the others wait on an Event and get its
value, or its exception. If the leader dies of something that is not an
``Exception`` (``KeyboardInterrupt``, ``SystemExit``), waiters retry and one of
them leads instead: nobody hangs on a leader that is gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

__all__ = ["SyncFlights"]

T = TypeVar("T")


class _Flight:
    __slots__ = ("done", "error", "retry", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.retry = False


class SyncFlights:
    """Flight table for the sync API; ``loads`` and ``coalesced`` are counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight] = {}
        self.loads = 0
        self.coalesced = 0
        self.failures = 0

    def run(
        self,
        key: Hashable,
        load: Callable[[], T],
        waiting: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> T:
        """``load()`` once for concurrent callers of ``key``; ``waiting()`` wraps a waiter's wait."""
        while True:
            with self._lock:
                flight = self._flights.get(key)
                if flight is None:
                    flight = self._flights[key] = _Flight()
                    self.loads += 1
                    break
                self.coalesced += 1
            with waiting() if waiting is not None else nullcontext():
                flight.done.wait()
            if flight.retry:
                continue
            if flight.error is not None:
                raise flight.error
            return flight.value  # type: ignore[no-any-return]
        try:
            value = load()
        except Exception as exc:
            flight.error = exc
            with self._lock:
                self.failures += 1
            raise
        except BaseException:
            flight.retry = True
            raise
        else:
            flight.value = value
            return value
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def in_flight(self) -> int:
        return len(self._flights)
