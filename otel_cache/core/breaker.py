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

__all__ = ["BreakerSet", "BreakerState", "CircuitBreaker"]


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


_WORST = {BreakerState.OPEN: 2, BreakerState.HALF_OPEN: 1, BreakerState.CLOSED: 0}


class BreakerSet:
    """One :class:`CircuitBreaker` per node (each shard of a cluster), made on first use.

    ``None`` names the one server (or the cluster as a whole, for calls that span it).
    A node not called for ``forget_after`` seconds is no longer reported (after a
    failover the old primary's open breaker would otherwise be reported forever).
    """

    __slots__ = ("_breakers", "_clock", "_used", "forget_after", "reset", "threshold")

    def __init__(
        self, *, threshold: int, reset: float, clock: Callable[[], float], forget_after: float = 10.0
    ) -> None:
        self.threshold, self.reset, self._clock, self.forget_after = threshold, reset, clock, forget_after
        self._breakers: dict[str | None, CircuitBreaker] = {}
        self._used: dict[str | None, float] = {}
        self.get(None)

    def get(self, node: str | None) -> CircuitBreaker:
        breaker = self._breakers.get(node)
        if breaker is None:
            breaker = self._breakers[node] = CircuitBreaker(
                threshold=self.threshold, reset=self.reset, clock=self._clock
            )
        if node is not None:
            self._used[node] = self._clock()
        return breaker

    def reported(self) -> dict[str | None, CircuitBreaker]:
        """The breakers worth reporting: the one of the whole, and each node's used lately."""
        since = self._clock() - self.forget_after
        return {
            node: breaker
            for node, breaker in self._breakers.items()
            if node is None or self._used.get(node, since) > since
        }

    def worst(self) -> BreakerState:
        """The least healthy state among the reported breakers."""
        return max((b.state for b in self.reported().values()), key=_WORST.__getitem__)

    @property
    def opens(self) -> int:
        return sum(breaker.opens for breaker in self._breakers.values())

    @property
    def short_circuits(self) -> int:
        return sum(breaker.short_circuits for breaker in self._breakers.values())
