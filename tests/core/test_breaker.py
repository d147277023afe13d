"""The circuit breaker, driven by a manual clock."""

from __future__ import annotations

import pytest

from otel_cache.core.breaker import BreakerState, CircuitBreaker
from tests.support import ManualClock

THRESHOLD = 3
RESET = 5.0


@pytest.fixture
def breaker(manual_clock: ManualClock) -> CircuitBreaker:
    return CircuitBreaker(threshold=THRESHOLD, reset=RESET, clock=manual_clock)


def _open(breaker: CircuitBreaker) -> None:
    for _ in range(THRESHOLD):
        assert breaker.allow()
        breaker.failed()
    assert breaker.state is BreakerState.OPEN


def test_starts_closed(breaker: CircuitBreaker) -> None:
    assert breaker.state is BreakerState.CLOSED
    assert (breaker.opens, breaker.short_circuits) == (0, 0)
    assert all(breaker.allow() for _ in range(100))
    assert breaker.short_circuits == 0


def test_opens_after_threshold_consecutive_failures(breaker: CircuitBreaker) -> None:
    for _ in range(THRESHOLD - 1):
        breaker.failed()
        assert breaker.state is BreakerState.CLOSED
        assert breaker.allow()
    breaker.failed()
    assert breaker.state is BreakerState.OPEN
    assert breaker.opens == 1


def test_a_success_resets_the_count(breaker: CircuitBreaker) -> None:
    for _ in range(5):
        for _ in range(THRESHOLD - 1):
            breaker.failed()
        breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.opens == 0
    for _ in range(THRESHOLD - 1):
        breaker.failed()
    assert breaker.state is BreakerState.CLOSED
    breaker.failed()
    assert breaker.state is BreakerState.OPEN


def test_open_refuses_and_counts_short_circuits(breaker: CircuitBreaker, manual_clock: ManualClock) -> None:
    _open(breaker)
    for _ in range(4):
        assert not breaker.allow()
        manual_clock.advance(RESET / 5)
    assert breaker.short_circuits == 4
    assert breaker.state is BreakerState.OPEN


def test_one_probe_after_reset_while_others_are_refused(
    breaker: CircuitBreaker, manual_clock: ManualClock
) -> None:
    _open(breaker)
    manual_clock.advance(RESET)
    assert breaker.allow()  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    refused_before = breaker.short_circuits
    assert not breaker.allow()
    assert not breaker.allow()
    assert breaker.short_circuits == refused_before + 2
    assert breaker.state is BreakerState.HALF_OPEN


def test_probe_success_closes(breaker: CircuitBreaker, manual_clock: ManualClock) -> None:
    _open(breaker)
    manual_clock.advance(RESET)
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow() for _ in range(10))
    # Closed again with a fresh count: it takes a full threshold to reopen.
    for _ in range(THRESHOLD - 1):
        breaker.failed()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.opens == 1


def test_probe_failure_reopens(breaker: CircuitBreaker, manual_clock: ManualClock) -> None:
    _open(breaker)
    manual_clock.advance(RESET)
    assert breaker.allow()
    breaker.failed()  # one failure is enough in half-open
    assert breaker.state is BreakerState.OPEN
    assert breaker.opens == 2
    # And the reset period starts again from the failed probe.
    manual_clock.advance(RESET - 0.25)
    assert not breaker.allow()
    manual_clock.advance(0.25)
    assert breaker.allow()
    assert breaker.state is BreakerState.HALF_OPEN


def test_a_probe_that_never_reports_allows_another_after_a_reset_period(
    breaker: CircuitBreaker, manual_clock: ManualClock
) -> None:
    _open(breaker)
    manual_clock.advance(RESET)
    assert breaker.allow()  # this probe's caller is cancelled and never reports
    manual_clock.advance(RESET - 0.25)
    assert not breaker.allow()
    manual_clock.advance(0.25)
    assert breaker.allow()  # a new probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.opens == 1


def test_reset_boundary_is_inclusive(breaker: CircuitBreaker, manual_clock: ManualClock) -> None:
    _open(breaker)
    manual_clock.advance(RESET - 0.25)
    assert not breaker.allow()
    manual_clock.advance(0.25)
    assert breaker.allow()


def test_threshold_one_opens_on_the_first_failure(manual_clock: ManualClock) -> None:
    breaker = CircuitBreaker(threshold=1, reset=1.0, clock=manual_clock)
    breaker.failed()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_counters_over_several_cycles(breaker: CircuitBreaker, manual_clock: ManualClock) -> None:
    for cycle in range(1, 4):
        _open(breaker)
        assert not breaker.allow()
        manual_clock.advance(RESET)
        assert breaker.allow()
        breaker.failed()  # the first probe fails
        assert breaker.opens == 2 * cycle
        manual_clock.advance(RESET)
        assert breaker.allow()
        breaker.succeeded()  # the second one succeeds
        assert breaker.state is BreakerState.CLOSED
    assert breaker.opens == 6
    assert breaker.short_circuits == 3
