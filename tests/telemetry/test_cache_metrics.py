"""Metrics of otel_cache (``otel_cache/telemetry/cache_telemetry.py``) read through an InMemoryMetricReader.

Each test runs a known sequence of operations and checks the exact values, units and
attributes of the points of its own cache (named uniquely: the observable instruments
report every registered cache of the process).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum

from otel_cache import AsyncLRUCache
from otel_cache.telemetry.names import ATTR, DURATION_BUCKETS, METRICS, MetricSpec
from otel_cache.warming import AsyncWarmer, ThreadWarmer
from otel_cache.warming.lease import lease_key
from tests.support import ManualClock, RedisServer
from tests.telemetry.telemetry_helpers import Telemetry, call, hold_lock, point, points

# The event-loop monitor's metrics (otel_cache/telemetry/loop_monitor.py) are tested with it.
LOOP_METRICS = {METRICS.LOOP_LAG.name, METRICS.LOOP_LAG_MAX.name, METRICS.LOOP_BLOCKS.name}
UNRECORDED: set[str] = set()
CACHE_METRICS = {spec.name for spec in METRICS.all()} - LOOP_METRICS


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def check_shape(metric: Any, spec: MetricSpec) -> None:
    """Unit, description and data type agree with the spec."""
    assert metric.unit == spec.unit, spec.name
    assert metric.description == spec.description, spec.name
    data = metric.data
    if spec.kind == "histogram":
        assert isinstance(data, Histogram), spec.name
    elif spec.kind == "observable_gauge":
        assert isinstance(data, Gauge), spec.name
    elif spec.kind in ("counter", "observable_counter"):
        assert isinstance(data, Sum), spec.name
        assert data.is_monotonic, spec.name
    else:
        assert spec.kind == "observable_up_down_counter", spec.kind
        assert isinstance(data, Sum), spec.name
        assert not data.is_monotonic, spec.name


def value_of(metrics: dict[str, Any], spec: MetricSpec, **match: str) -> Any:
    return point(metrics, spec.name, **match).value


def breaker_state(metrics: dict[str, Any], **match: str) -> str:
    """The one state whose series is 1, after checking that there is a series per state."""
    found = points(metrics, METRICS.BREAKER_STATE.name, **match)
    series = {p.attributes[ATTR.BREAKER_STATE]: p.value for p in found}
    assert sorted(series) == ["closed", "half_open", "open"]
    (current,) = [state for state, value in series.items() if value == 1]
    assert sum(series.values()) == 1
    return current


# -- the multi-level cache ------------------------------------------------------


async def test_multilevel_counters_after_a_known_sequence(
    telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str, redis_url: str
) -> None:
    # No invalidation channel: until it is up L1 takes no copies, and the counts below are exact.
    cache = make_cache(
        async_mode=api == "async", name=cache_name, redis_url=redis_url, l1_max_entries=2, invalidation=False
    )
    mine = {"otel_cache__name": cache_name}

    await call(cache, api, "put", "ukey-a", 1)
    await call(cache, api, "put", "ukey-b", 2)
    for key in ("ukey-a", "ukey-b", "ukey-a"):  # 3 L1 hits
        assert await call(cache, api, "get", key) is not None
    for key in ("ukey-x", "ukey-y"):  # 2 L1 misses, 2 L2 misses
        assert await call(cache, api, "get", key) is None
    await call(cache, api, "put", "ukey-c", 3)  # evicts ukey-b (least recently used): size
    assert await call(cache, api, "get", "ukey-b") == 2  # L1 miss, L2 hit, fills L1: evicts ukey-a
    assert await call(cache, api, "delete", "ukey-c")  # deleted

    metrics = telemetry.metrics()
    mode = api
    requests = METRICS.REQUESTS
    assert value_of(metrics, requests, **mine, otel_cache__level="l1", otel_cache__result="hit") == 3
    assert value_of(metrics, requests, **mine, otel_cache__level="l1", otel_cache__result="miss") == 3
    assert value_of(metrics, requests, **mine, otel_cache__level="l2", otel_cache__result="hit") == 1
    assert value_of(metrics, requests, **mine, otel_cache__level="l2", otel_cache__result="miss") == 2
    assert value_of(metrics, METRICS.PUTS, **mine, otel_cache__level="l1") == 4  # 3 puts + 1 fill
    assert value_of(metrics, METRICS.PUTS, **mine, otel_cache__level="l2") == 3
    evictions = {
        reason: value_of(metrics, METRICS.EVICTIONS, **mine, otel_cache__eviction__reason=reason)
        for reason in ("size", "expired", "deleted", "rejected")
    }
    assert evictions == {"size": 2, "expired": 0, "deleted": 1, "rejected": 0}
    assert value_of(metrics, METRICS.ENTRIES, **mine) == 1
    assert value_of(metrics, METRICS.MEMORY, **mine) > 0
    for side in ("read", "write"):
        assert breaker_state(metrics, **mine, otel_cache__circuit_breaker__side=side) == "closed"
    assert points(metrics, METRICS.L2_ERRORS.name, **mine) == []
    # No get_or_set: no load counters; no contention: no lock waits, contended == 0.
    assert points(metrics, METRICS.LOADS.name, **mine) == []
    assert points(metrics, METRICS.COALESCED.name, **mine) == []
    assert points(metrics, METRICS.LOAD_DURATION.name, **mine) == []
    assert points(metrics, METRICS.LOCK_WAIT.name, **mine) == []
    assert value_of(metrics, METRICS.LOCK_CONTENDED, **mine, otel_cache__lock__type="threading.Lock") == 0

    durations = {
        operation: point(metrics, METRICS.OPERATION_DURATION.name, **mine, otel_cache__operation=operation)
        for operation in ("get", "set", "delete")
    }
    assert {op: p.count for op, p in durations.items()} == {"get": 3, "set": 3, "delete": 1}
    for p in durations.values():
        assert tuple(p.explicit_bounds) == DURATION_BUCKETS
        assert p.attributes[ATTR.LEVEL] == "l2"
        assert 0 < p.sum < 5
        assert sum(p.bucket_counts) == p.count

    for name in (
        METRICS.REQUESTS.name,
        METRICS.PUTS.name,
        METRICS.EVICTIONS.name,
        METRICS.ENTRIES.name,
        METRICS.MEMORY.name,
        METRICS.BREAKER_STATE.name,
        METRICS.LOCK_CONTENDED.name,
        METRICS.OPERATION_DURATION.name,
    ):
        spec = next(spec for spec in METRICS.all() if spec.name == name)
        check_shape(metrics[name], spec)
        for p in points(metrics, name, **mine):
            assert p.attributes[ATTR.MODE] == mode


async def test_l1_only_cache_counts_every_eviction_reason(
    telemetry: Telemetry, cache_name: str, manual_clock: ManualClock, api: str
) -> None:
    cache: AsyncLRUCache[str, Any] = AsyncLRUCache(
        max_entries=2, max_bytes=4_000, clock=manual_clock, name=cache_name
    )
    mine = {"otel_cache__name": cache_name}
    for key in ("ukey-a", "ukey-b", "ukey-c"):  # ukey-a evicted: size
        await call(cache, api, "put", key, 1)
    for key in ("ukey-b", "ukey-c", "ukey-b"):
        assert await call(cache, api, "get", key) == 1
    for key in ("ukey-a", "ukey-zz"):
        assert await call(cache, api, "get", key) is None
    assert await call(cache, api, "delete", "ukey-c")  # deleted
    await call(cache, api, "put", "ukey-t", 1, 1.0)
    manual_clock.advance(2)
    assert await call(cache, api, "get", "ukey-t") is None  # expired (a miss)
    assert await call(cache, api, "put", "ukey-big", "x" * 10_000) is False  # rejected

    metrics = telemetry.metrics()
    requests = METRICS.REQUESTS
    assert value_of(metrics, requests, **mine, otel_cache__level="l1", otel_cache__result="hit") == 3
    assert value_of(metrics, requests, **mine, otel_cache__level="l1", otel_cache__result="miss") == 3
    assert points(metrics, requests.name, **mine, otel_cache__level="l2") == []
    assert value_of(metrics, METRICS.PUTS, **mine, otel_cache__level="l1") == 5
    evictions = {
        p.attributes[ATTR.EVICTION_REASON]: p.value for p in points(metrics, METRICS.EVICTIONS.name, **mine)
    }
    assert evictions == {"size": 1, "expired": 1, "deleted": 1, "rejected": 1}
    assert value_of(metrics, METRICS.ENTRIES, **mine) == 1
    assert 0 < value_of(metrics, METRICS.MEMORY, **mine) <= 4_000
    assert value_of(metrics, METRICS.LOCK_CONTENDED, **mine, otel_cache__lock__type="threading.Lock") == 0
    # An L1-only cache has no L2, no breaker and no loads.
    for spec in (METRICS.L2_ERRORS, METRICS.BREAKER_STATE, METRICS.OPERATION_DURATION, METRICS.LOADS):
        assert points(metrics, spec.name, **mine) == []
    # AsyncLRUCache serves threads and coroutines alike: its mode is "mixed".
    for name in (requests.name, METRICS.PUTS.name, METRICS.EVICTIONS.name, METRICS.ENTRIES.name):
        for p in points(metrics, name, **mine):
            assert p.attributes[ATTR.MODE] == "mixed"
    cache.close()


async def test_breaker_state_and_l2_errors_by_error_type(
    telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str,
    fresh_redis_server: RedisServer,
) -> None:  # fmt: skip
    cache = make_cache(
        async_mode=api == "async",
        name=cache_name,
        redis_url=fresh_redis_server.url,
        breaker_threshold=1,
        breaker_reset=600,
    )
    mine = {"otel_cache__name": cache_name}
    assert await call(cache, api, "get", "ukey-1") is None  # an L2 miss: the connection works
    metrics = telemetry.metrics()
    reads = {**mine, "otel_cache__circuit_breaker__side": "read"}
    writes = {**mine, "otel_cache__circuit_breaker__side": "write"}
    assert breaker_state(metrics, **reads) == "closed"
    assert breaker_state(metrics, **writes) == "closed"
    assert points(metrics, METRICS.L2_ERRORS.name, **mine) == []

    fresh_redis_server.stop()
    assert await call(cache, api, "get", "ukey-2") is None  # fails: counted, breaker opens
    assert await call(cache, api, "get", "ukey-3") is None  # refused by the open breaker: no call

    metrics = telemetry.metrics()
    assert breaker_state(metrics, **reads) == "open"
    assert breaker_state(metrics, **writes) == "open"  # a dead server: both sides
    errors = points(metrics, METRICS.L2_ERRORS.name, **mine)
    assert [(p.attributes[ATTR.ERROR_TYPE], p.value) for p in errors] == [("ConnectionError", 1)]
    assert errors[0].attributes[ATTR.MODE] == api
    check_shape(metrics[METRICS.L2_ERRORS.name], METRICS.L2_ERRORS)
    check_shape(metrics[METRICS.BREAKER_STATE.name], METRICS.BREAKER_STATE)
    failed = point(metrics, METRICS.OPERATION_DURATION.name, **mine, error__type="ConnectionError")
    assert failed.count == 1
    assert failed.attributes[ATTR.OPERATION] == "get"


async def test_unsynced_keys_and_repairs(
    telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str,
    fresh_redis_server: RedisServer,
) -> None:  # fmt: skip
    # The invalidation channel off: its background repair would race with the read below.
    cache = make_cache(
        async_mode=api == "async",
        name=cache_name,
        redis_url=fresh_redis_server.url,
        breaker_threshold=100,
        redis_timeout=0.2,
        invalidation=False,
    )
    mine = {"otel_cache__name": cache_name}
    await call(cache, api, "put", "ukey-1", "uvalue-1")
    metrics = telemetry.metrics()
    assert value_of(metrics, METRICS.L2_UNSYNCED, **mine) == 0
    assert value_of(metrics, METRICS.L2_REPAIRS, **mine) == 0
    fresh_redis_server.pause()
    try:
        await call(cache, api, "put", "ukey-1", "uvalue-2")  # times out: Redis may keep uvalue-1
    finally:
        fresh_redis_server.resume()
    assert value_of(telemetry.metrics(), METRICS.L2_UNSYNCED, **mine) == 1
    cache.l1.clear()
    assert await call(cache, api, "get", "ukey-1") is None  # the stale copy is deleted, not served
    metrics = telemetry.metrics()
    assert value_of(metrics, METRICS.L2_UNSYNCED, **mine) == 0
    assert value_of(metrics, METRICS.L2_REPAIRS, **mine) == 1
    check_shape(metrics[METRICS.L2_UNSYNCED.name], METRICS.L2_UNSYNCED)
    check_shape(metrics[METRICS.L2_REPAIRS.name], METRICS.L2_REPAIRS)


async def test_invalidation_metrics_count_messages_lag_and_channel_state(
    telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str, redis_url: str
) -> None:
    writer = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url)
    reader = make_cache(async_mode=api == "async", name=cache_name + "-reader", redis_url=redis_url)
    mine = {"otel_cache__name": cache_name}
    theirs = {"otel_cache__name": cache_name + "-reader"}
    await call(writer, api, "put", "ukey-1", "uvalue-1")
    assert await call(reader, api, "get", "ukey-1") == "uvalue-1"
    await call(writer, api, "put", "ukey-1", "uvalue-2")
    deadline = time.monotonic() + 10
    while reader.tiers.coherence.stats().received_messages < 1:
        assert time.monotonic() < deadline, "the invalidation did not arrive"
        await asyncio.sleep(0.01)
    metrics = telemetry.metrics()
    assert value_of(metrics, METRICS.INVALIDATIONS_SENT, **mine) >= 1
    assert value_of(metrics, METRICS.INVALIDATIONS_RECEIVED, **theirs) >= 1
    assert value_of(metrics, METRICS.CHANNEL_UP, **theirs) == 1
    assert value_of(metrics, METRICS.L1_FLUSHES, **theirs) == 0
    (lag,) = points(metrics, METRICS.INVALIDATION_LAG.name, **theirs)
    assert lag.count >= 1
    for spec in (METRICS.INVALIDATIONS_SENT, METRICS.INVALIDATIONS_RECEIVED, METRICS.CHANNEL_UP):
        check_shape(metrics[spec.name], spec)


# -- loads --------------------------------------------------------------------


async def test_loads_coalesced_and_load_duration_by_result(
    telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str, redis_url: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url)
    mine = {"otel_cache__name": cache_name}
    calls = 0

    if api == "async":
        arelease = asyncio.Event()

        async def aload() -> str:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.05)
            await arelease.wait()
            return "loaded"

        async def release_when_all_joined() -> None:
            while cache.async_flights.coalesced < 9:  # noqa: ASYNC110 - a plain counter, nothing to await
                await asyncio.sleep(0.001)
            arelease.set()

        _, *results = await asyncio.gather(
            release_when_all_joined(), *(cache.aget_or_set("ukey-hot", aload) for _ in range(10))
        )
    else:
        release = threading.Event()

        def load() -> str:
            nonlocal calls
            calls += 1
            time.sleep(0.05)
            assert release.wait(10)
            return "loaded"

        with ThreadPoolExecutor(10) as pool:
            futures = [pool.submit(cache.get_or_set, "ukey-hot", load) for _ in range(10)]
            wait_until(lambda: cache.sync_flights.coalesced == 9)
            release.set()
            results = [future.result() for future in futures]
    assert results == ["loaded"] * 10
    assert calls == 1

    def broken() -> str:
        raise LookupError("no such row")

    with pytest.raises(LookupError):
        await call(cache, api, "get_or_set", "ukey-broken", broken)

    metrics = telemetry.metrics()
    assert value_of(metrics, METRICS.LOADS, **mine) == 2
    assert value_of(metrics, METRICS.COALESCED, **mine) == 9
    assert point(metrics, METRICS.LOADS.name, **mine).attributes[ATTR.MODE] == api
    success = point(metrics, METRICS.LOAD_DURATION.name, **mine, otel_cache__result="success")
    failure = point(metrics, METRICS.LOAD_DURATION.name, **mine, otel_cache__result="failure")
    assert success.count == 1
    assert success.sum >= 0.05
    assert failure.count == 1
    assert tuple(success.explicit_bounds) == DURATION_BUCKETS
    # The 9 waiters' waits are single-flight lock waits.
    waits = point(metrics, METRICS.LOCK_WAIT.name, **mine, otel_cache__lock__type="single-flight")
    assert waits.count == 9
    for spec in (METRICS.LOADS, METRICS.COALESCED, METRICS.LOAD_DURATION):
        check_shape(metrics[spec.name], spec)


# -- warmers ------------------------------------------------------------------


async def test_warmer_runs_failures_and_duration(
    telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, redis_url: str
) -> None:
    cache = make_cache(async_mode=True, name=cache_name, redis_url=redis_url)

    def load(key: str) -> str:
        if key == "ukey-bad":
            raise LookupError("no such row")
        return "v"

    async def aload(key: str) -> str:
        return load(key)

    keys = ["ukey-w1", "ukey-w2", "ukey-bad"]
    thread_warmer = ThreadWarmer(cache, load, keys, interval=3600, name=f"{cache_name}-thread")
    async_warmer = AsyncWarmer(cache, aload, keys, interval=3600, name=f"{cache_name}-tasks")
    thread_warmer.run_once()
    thread_warmer.run_once()
    await async_warmer.run_once()

    metrics = telemetry.metrics()
    for warmer, mode, runs in ((thread_warmer, "sync", 2), (async_warmer, "async", 1)):
        mine = {"otel_cache__warmer__name": warmer.name}
        run_points = points(metrics, METRICS.WARMER_RUNS.name, **mine)
        assert [(dict(p.attributes), p.value) for p in run_points] == [
            ({ATTR.WARMER_NAME: warmer.name, ATTR.MODE: mode}, runs)
        ]
        assert value_of(metrics, METRICS.WARMER_FAILURES, **mine) == runs  # one bad key per run
        duration = point(metrics, METRICS.WARMER_DURATION.name, **mine)
        assert duration.count == runs
        assert duration.attributes[ATTR.MODE] == mode
        assert tuple(duration.explicit_bounds) == DURATION_BUCKETS
    for spec in (METRICS.WARMER_RUNS, METRICS.WARMER_FAILURES, METRICS.WARMER_DURATION):
        check_shape(metrics[spec.name], spec)


async def test_warmer_leader_gauge_is_1_where_the_warmer_runs_on_schedule(
    telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, redis_url: str
) -> None:
    config = {"name": cache_name, "namespace": cache_name, "redis_url": redis_url, "invalidation": False}
    lead = ThreadWarmer(
        make_cache(async_mode=False, **config), str, ["a"], interval=3600, name=f"{cache_name}-lead"
    )
    follow = ThreadWarmer(
        make_cache(async_mode=False, **config), str, ["a"], interval=3600, name=f"{cache_name}-follow"
    )
    alone = ThreadWarmer(AsyncLRUCache(), str, ["a"], interval=3600, name=f"{cache_name}-alone")  # no Redis
    client = redis.Redis.from_url(redis_url)
    client.set(lease_key(cache_name, follow.name), "another-process", px=60_000)  # someone else leads
    client.close()
    warmers = (lead, follow, alone)

    def gauge() -> dict[str, Any]:
        metrics = telemetry.metrics()
        return {
            w.name: point(metrics, METRICS.WARMER_LEADER.name, otel_cache__warmer__name=w.name)
            for w in warmers
        }

    assert {name: p.value for name, p in gauge().items()} == dict.fromkeys((w.name for w in warmers), 0)
    for warmer in warmers:
        warmer.start()
    try:
        wait_until(lambda: lead.stats().leader and follow.stats().lease_acquired == 0 and follow.running)
        found = gauge()
        assert {name: p.value for name, p in found.items()} == {lead.name: 1, follow.name: 0, alone.name: 1}
        assert dict(found[lead.name].attributes) == {ATTR.WARMER_NAME: lead.name, ATTR.MODE: "sync"}
        check_shape(telemetry.metrics()[METRICS.WARMER_LEADER.name], METRICS.WARMER_LEADER)
    finally:
        for warmer in warmers:
            assert warmer.stop(timeout=10)
    assert {name: p.value for name, p in gauge().items()} == dict.fromkeys((w.name for w in warmers), 0)


# -- lock waits ---------------------------------------------------------------


async def test_contended_l1_lock_records_wait_and_span_event(
    telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str, redis_url: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url)
    mine = {"otel_cache__name": cache_name}
    await call(cache, api, "put", "ukey-1", "v")

    thread = hold_lock(cache.l1.lock, 0.03)
    with telemetry.tracer.start_as_current_span("test.request"):
        # A put takes the L1 lock (hits never do), after the wait; L2 is not locked.
        assert await call(cache, api, "put", "ukey-1", "w") is True
    thread.join()

    metrics = telemetry.metrics()
    wait = point(metrics, METRICS.LOCK_WAIT.name, **mine)
    assert dict(wait.attributes) == {
        ATTR.CACHE_NAME: cache_name,
        ATTR.MODE: api,
        ATTR.LOCK_TYPE: "threading.Lock",
    }
    assert wait.count == 1
    assert wait.sum >= 0.02
    assert tuple(wait.explicit_bounds) == DURATION_BUCKETS
    assert value_of(metrics, METRICS.LOCK_CONTENDED, **mine, otel_cache__lock__type="threading.Lock") == 1
    check_shape(metrics[METRICS.LOCK_WAIT.name], METRICS.LOCK_WAIT)

    (request_span,) = telemetry.spans("test.request")
    events = [event for event in request_span.events if event.name == "otel_cache.lock.contended"]
    assert len(events) == 1
    assert events[0].attributes[ATTR.LOCK_TYPE] == "threading.Lock"
    assert events[0].attributes[ATTR.LOCK_WAIT] >= 0.02


async def test_uncontended_l1_lock_records_no_wait(
    telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str, redis_url: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url)
    mine = {"otel_cache__name": cache_name}
    with telemetry.tracer.start_as_current_span("test.request"):
        await call(cache, api, "put", "ukey-1", "v")
        for _ in range(20):
            assert await call(cache, api, "get", "ukey-1") == "v"

    metrics = telemetry.metrics()
    assert points(metrics, METRICS.LOCK_WAIT.name, **mine) == []
    assert value_of(metrics, METRICS.LOCK_CONTENDED, **mine, otel_cache__lock__type="threading.Lock") == 0
    (request_span,) = telemetry.spans("test.request")
    assert [event.name for event in request_span.events] == []


async def test_lock_wait_listener_is_detached_by_uninstrument(
    telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, redis_url: str
) -> None:
    cache = make_cache(async_mode=True, name=cache_name, redis_url=redis_url)
    telemetry.uninstrument()
    thread = hold_lock(cache.l1.lock, 0.02)
    await cache.aget("ukey-1")
    thread.join()
    assert cache.l1.lock.contended == 1  # the wait happened ...
    telemetry.instrument()
    metrics = telemetry.metrics()
    # ... but nobody was listening: no lock-wait point (contended is read from the lock itself).
    assert points(metrics, METRICS.LOCK_WAIT.name, otel_cache__name=cache_name) == []


# -- everything at once -------------------------------------------------------


async def test_every_cache_metric_is_emitted_with_its_spec(
    telemetry: Telemetry, exercise_everything: Callable[..., Any], cache_name: str
) -> None:
    await exercise_everything(cache_name)
    metrics = telemetry.metrics()
    specs = {spec.name: spec for spec in METRICS.all()}
    assert set(metrics) == CACHE_METRICS - UNRECORDED
    for name, metric in metrics.items():
        check_shape(metric, specs[name])
        for p in metric.data.data_points:
            attributes = dict(p.attributes)
            if name.startswith("otel_cache.warmer."):
                assert set(attributes) == {ATTR.WARMER_NAME, ATTR.MODE}, name
            else:
                assert {ATTR.CACHE_NAME, ATTR.MODE} <= set(attributes), name
            assert attributes[ATTR.MODE] in ("sync", "async", "mixed"), name


async def test_no_metric_attribute_carries_a_key_or_a_value(
    telemetry: Telemetry, exercise_everything: Callable[..., Any], cache_name: str
) -> None:
    await exercise_everything(cache_name)
    metrics = telemetry.metrics()
    allowed_keys = {value for key, value in vars(ATTR).items() if key.isupper()}
    seen_points = 0
    for metric in metrics.values():
        for p in metric.data.data_points:
            seen_points += 1
            assert set(p.attributes) <= allowed_keys, metric.name
            for value in p.attributes.values():
                assert "ukey-" not in str(value), (metric.name, dict(p.attributes))
                assert "uvalue-" not in str(value), (metric.name, dict(p.attributes))
    assert seen_points > 20
    # Bounded values: every attribute other than the (configured) cache and warmer names
    # takes its value from a small fixed set.
    bounded = {
        ATTR.MODE: {"sync", "async", "mixed"},
        ATTR.LEVEL: {"l1", "l2"},
        ATTR.RESULT: {"hit", "miss", "success", "failure"},
        ATTR.OPERATION: {"get", "set", "delete", "get_many", "set_many", "clear"},
        ATTR.EVICTION_REASON: {"size", "expired", "deleted", "rejected"},
        ATTR.LOCK_TYPE: {"threading.Lock", "threading.RLock", "asyncio.Lock", "single-flight"},
    }
    for metric in metrics.values():
        for p in metric.data.data_points:
            for key, values in bounded.items():
                if key in p.attributes:
                    assert p.attributes[key] in values, (metric.name, key, p.attributes[key])


async def test_lock_hold_duration_is_recorded(
    telemetry: Telemetry, exercise_everything: Callable[..., Any], cache_name: str
) -> None:
    await exercise_everything(cache_name)
    assert METRICS.LOCK_HOLD.name in telemetry.metrics()
