"""A clock the test moves by hand, injected instead of sleeping."""

from __future__ import annotations

import threading


class ManualClock:
    """A monotonic clock that only moves when the test calls :meth:`advance`.

    Pass it wherever the code under test takes a ``clock``/``timer`` callable
    (``cache = TTLCache(clock=clock)``), then ``clock.advance(30)`` to expire entries
    without waiting. Reads and advances take a lock so a clock shared with worker
    threads never shows a torn or out-of-order value.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    @property
    def now(self) -> float:
        """The current reading; the same as calling the clock."""
        return self()

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` and return the new reading.

        A monotonic clock never runs backwards, so a negative step is a bug in the test.
        """
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back (advance({seconds!r}))")
        with self._lock:
            self._now += seconds
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock(now={self():.6f})"
