"""A breaker per node: TierCore routes each L2 key to its node (a Redis Cluster shard).

The route is a plain function here (the backend's slot table in the cache): keys ``a:*``
live on node A, ``b:*`` on node B.
"""

from __future__ import annotations

import pytest

from otel_cache.core.breaker import BreakerSet, BreakerState
from otel_cache.core.tiers import TierCore
from otel_cache.errors import BackendBusyError, BackendUnavailableError, CircuitOpenError, PartialBackendError
from tests.support import ManualClock

THRESHOLD = 2
RESET = 1.0


def tiers(clock: ManualClock, *, raise_errors: bool = False) -> TierCore:
    core = TierCore(
        namespace="t",
        max_key_length=256,
        default_ttl=60.0,
        l1_ttl=None,
        raise_errors=raise_errors,
        breaker_threshold=THRESHOLD,
        breaker_reset=RESET,
        clock=clock,
    )
    core.route = lambda l2_key: l2_key.split(":", 1)[0].upper()
    return core


def fail_node_a(core: TierCore) -> None:
    for _ in range(THRESHOLD):
        assert core.l2_allowed("a:1")
        core.l2_failed(BackendUnavailableError("down"), "a:1")


def test_a_dead_node_refuses_its_own_keys_only(manual_clock: ManualClock) -> None:
    core = tiers(manual_clock)
    fail_node_a(core)
    assert not core.l2_allowed("a:2")
    assert core.l2_allowed("b:1")
    assert core.l2_allowed()  # the breaker of calls that span the cluster
    stats = core.stats()
    assert stats.nodes == {"A": "open", "B": "closed"}
    assert stats.breaker_state == "open"  # the worst of them
    assert stats.breaker_opens == 1
    assert stats.skipped == 1
    assert stats.errors == {"BackendUnavailableError": THRESHOLD}


def test_a_batch_asks_each_node_once_and_keeps_the_healthy_keys(manual_clock: ManualClock) -> None:
    core = tiers(manual_clock)
    fail_node_a(core)
    assert core.l2_allowed_many(["a:1", "b:1", "a:2", "b:2"]) == [False, True, False, True]
    assert core.stats().skipped == 1  # one refusal for node A, not one per key


def test_a_partial_failure_feeds_only_the_failed_nodes_breaker(manual_clock: ManualClock) -> None:
    core = tiers(manual_clock)
    core.l2_failed(BackendUnavailableError("blip"), "b:1")  # B has one failure on record
    partial = PartialBackendError(
        "A failed", results=[None, b"x"], failures={"A": BackendUnavailableError("down")}, failed_keys=["a:1"]
    )
    for _ in range(THRESHOLD):
        core.l2_batch_finished(["a:1", "b:1"], partial)
    assert core.breakers.get("A").state is BreakerState.OPEN
    assert core.breakers.get("B").state is BreakerState.CLOSED
    assert core.breakers.get("B").failures == 0  # B answered: its record is clean again


def test_a_whole_batch_failure_counts_against_every_node_of_the_batch(manual_clock: ManualClock) -> None:
    core = tiers(manual_clock)
    for _ in range(THRESHOLD):
        core.l2_batch_finished(["a:1", "b:1"], BackendUnavailableError("down"))
    assert core.stats().nodes == {"A": "open", "B": "open"}


def test_a_saturated_pool_is_counted_but_opens_no_breaker(manual_clock: ManualClock) -> None:
    core = tiers(manual_clock)
    for _ in range(THRESHOLD * 3):
        core.l2_batch_finished(["a:1"], BackendBusyError("pool"))
    assert core.breakers.get("A").state is BreakerState.CLOSED
    assert core.stats().errors == {"BackendBusyError": THRESHOLD * 3}


def test_under_policy_raise_a_batch_raises_only_when_no_node_may_be_called(manual_clock: ManualClock) -> None:
    core = tiers(manual_clock, raise_errors=True)
    for _ in range(THRESHOLD):
        with pytest.raises(BackendUnavailableError):
            core.l2_failed(BackendUnavailableError("down"), "a:1")
    assert core.l2_allowed_many(["a:1", "b:1"]) == [False, True]
    with pytest.raises(CircuitOpenError):
        core.l2_allowed_many(["a:1", "a:2"])
    with pytest.raises(CircuitOpenError):
        core.l2_allowed("a:1")


def test_a_probe_is_let_through_after_the_reset(manual_clock: ManualClock) -> None:
    core = tiers(manual_clock)
    fail_node_a(core)
    manual_clock.advance(RESET)
    assert core.l2_allowed("a:1")  # the probe (half-open): the client re-reads the topology on failure
    core.l2_succeeded("a:1")
    assert core.stats().nodes["A"] == "closed"


def test_a_node_no_longer_routed_to_is_forgotten_in_the_report(manual_clock: ManualClock) -> None:
    breakers = BreakerSet(threshold=1, reset=RESET, clock=manual_clock, forget_after=10.0)
    breakers.get("old").failed()
    assert set(breakers.reported()) == {None, "old"}
    assert breakers.worst() is BreakerState.OPEN
    manual_clock.advance(10.5)  # a failover moved its slots: nothing asks for it any more
    breakers.get("new")
    assert set(breakers.reported()) == {None, "new"}
    assert breakers.worst() is BreakerState.CLOSED
    assert breakers.opens == 1  # counters keep what happened
