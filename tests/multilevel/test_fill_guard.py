"""The fill guard: an L2 read that races a write must not put the old value into L1.

The race is made deterministic by driving a flow of ``cache.flows`` by hand (the
same generators the sync and async drivers run): the read's GET is answered with
the old bytes only after a write or delete of the same key has run, or while one
is half done.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from otel_cache import MultiLevelCache
from otel_cache.multilevel.steps import L1Step, L2Delete, L2Get, L2GetMany, L2Step
from tests.support import ManualClock
from tests.support.config import patient_config

pytestmark = pytest.mark.redis

MISS: Any = object()


@pytest.fixture
def cache(redis_url: str) -> Iterator[MultiLevelCache[Any, Any]]:
    cache: MultiLevelCache[Any, Any] = MultiLevelCache(patient_config(redis_url=redis_url, namespace="fg"))
    yield cache
    cache.close()


def next_l2(cache: MultiLevelCache[Any, Any], flow: Any) -> L2Step[Any]:
    """Run ``flow`` (its L1 steps as the sync driver would) up to its next L2 call."""
    step = next(flow)
    while isinstance(step, L1Step):
        step = flow.send(step.run(cache.l1))
    assert isinstance(step, L2Step), step
    return step


def answer(cache: MultiLevelCache[Any, Any], call: L2Step[Any]) -> Any:
    """What the sync driver would send back into the flow for ``call``."""
    return call.run(cache._backend())


def finish(cache: MultiLevelCache[Any, Any], flow: Any, reply: Any) -> Any:
    """Send ``reply`` in, run the L1 steps left, and return what the flow returns."""
    try:
        step = flow.send(reply)
        while True:
            assert isinstance(step, L1Step), step
            step = flow.send(step.run(cache.l1))
    except StopIteration as stop:
        return stop.value


def test_read_answered_before_a_write_does_not_fill_l1(cache: MultiLevelCache[Any, Any]) -> None:
    cache.put("k", "v1")
    cache.l1.clear()
    read = cache.flows.get_l2("k", MISS)
    call = next_l2(cache, read)
    assert call == L2Get("fg:k")
    old = answer(cache, call)  # Redis answers the GET with v1 ...
    cache.put("k", "v2")  # ... and a write lands before the reader fills L1
    assert finish(cache, read, old) == "v1"  # the read returns what it read
    assert cache.l1.get("k") == "v2"
    assert cache.get("k") == "v2"
    stats = cache.stats().l2
    assert (stats.fills, stats.fills_skipped) == (0, 1)


def test_read_during_a_delete_does_not_resurrect_the_value(
    cache: MultiLevelCache[Any, Any], raw_redis: redis.Redis
) -> None:
    cache.put("k", "v1")
    delete = cache.flows.delete("k")
    call = next_l2(cache, delete)  # L1 is emptied; the DEL has not reached Redis yet
    assert call == L2Delete("fg:k")
    assert cache.get("k") == "v1"  # a concurrent reader still finds v1 in Redis ...
    assert "k" not in cache.l1  # ... but does not put it back into L1
    assert finish(cache, delete, answer(cache, call)) is True
    assert raw_redis.exists("fg:k") == 0
    assert cache.get("k", MISS) is MISS
    assert cache.stats().l2.fills_skipped == 1


def test_get_many_skips_only_the_raced_key(cache: MultiLevelCache[Any, Any]) -> None:
    cache.put_many({1: "one", 2: "two"})  # ints: hash(1) and hash(2) fall in different stripes
    cache.l1.clear()
    read = cache.flows.get_many([1, 2])
    call = next_l2(cache, read)
    assert isinstance(call, L2GetMany)
    old = answer(cache, call)
    cache.put(1, "ONE")
    assert finish(cache, read, old) == {1: "one", 2: "two"}
    assert cache.l1.get_many([1, 2]) == {1: "ONE", 2: "two"}
    stats = cache.stats().l2
    assert (stats.fills, stats.fills_skipped) == (1, 1)


def test_unraced_read_fills_l1(cache: MultiLevelCache[Any, Any]) -> None:
    cache.put("k", "v1")
    cache.put("other", "x")  # a write of another key, before the read started
    cache.l1.clear()
    read = cache.flows.get_l2("k", MISS)
    call = next_l2(cache, read)
    assert finish(cache, read, answer(cache, call)) == "v1"
    assert cache.l1.get("k") == "v1"
    assert cache.stats().l2.fills == 1


def test_fill_ttl_counts_from_when_the_read_was_sent(redis_url: str, manual_clock: ManualClock) -> None:
    cache: MultiLevelCache[Any, Any] = MultiLevelCache(
        patient_config(redis_url=redis_url, namespace="fg"), clock=manual_clock
    )
    try:
        cache.put("k", "v", ttl=30)
        cache.l1.clear()
        read = cache.flows.get_l2("k", MISS)
        call = next_l2(cache, read)
        reply = answer(cache, call)  # Redis: 30 s left, as of now
        manual_clock.advance(0.2)  # the reply takes 0.2 s to arrive
        assert finish(cache, read, reply) == "v"
        manual_clock.advance(29.85)  # 30.05 s after the GET: Redis has dropped the key
        assert "k" not in cache.l1
    finally:
        cache.close()
