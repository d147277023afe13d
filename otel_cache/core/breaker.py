"""A circuit breaker that stops hammering a dead backend and probes it on a schedule.

::

    CLOSED --(threshold consecutive failures)--> OPEN
    OPEN   --(reset seconds passed; the next call is the probe)--> HALF_OPEN
    HALF_OPEN --probe succeeds--> CLOSED      HALF_OPEN --probe fails--> OPEN

While OPEN, calls are refused without touching the backend. In HALF_OPEN a single
probe is let through; if its caller vanishes without reporting (cancelled), another
probe is allowed once ``reset`` seconds have passed, so the breaker never sticks.

Pure state and an injected clock; the caller serialises access (the multi-level
cache calls it under its L2 bookkeeping lock).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(enum.IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    """Counts consecutive failures and decides whether the backend may be called."""

    __slots__ = ("_clock", "_since", "failures", "opens", "reset", "short_circuits", "state", "threshold")

    def __init__(self, *, threshold: int, reset: float, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.reset = reset
        self._clock = clock
        self.state = BreakerState.CLOSED
        self.failures = 0
        self._since = 0.0  # when it opened, or when the current probe started
        self.opens = 0
        self.short_circuits = 0

    def allow(self) -> bool:
        """Whether to call the backend now; a refusal is counted."""
        if self.state is BreakerState.CLOSED:
            return True
        now = self._clock()
        if now - self._since >= self.reset:
            self.state = BreakerState.HALF_OPEN
            self._since = now
            return True
        self.short_circuits += 1
        return False

    def succeeded(self) -> None:
        self.failures = 0
        self.state = BreakerState.CLOSED

    def failed(self) -> None:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.threshold:
            if self.state is not BreakerState.OPEN:
                self.opens += 1
            self.state = BreakerState.OPEN
            self._since = self._clock()
