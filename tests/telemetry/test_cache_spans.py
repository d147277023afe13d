"""Spans of otel_cache (``otel_cache/telemetry/cache_telemetry.py``) read through an InMemorySpanExporter."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

import otel_cache
from otel_cache.telemetry import hooks
from otel_cache.telemetry.names import ATTR, INSTRUMENTATION_NAME, METRICS, SCHEMA_URL, SPAN
from otel_cache.warming import AsyncWarmer, ThreadWarmer
from tests.support import RedisServer
from tests.telemetry.telemetry_helpers import Telemetry, all_attribute_values, call, hold_lock, points

# Tests that instrument redis-py take redis_url before telemetry, so the fixture's FLUSHALL is not traced.
WITH_REDIS = pytest.mark.parametrize("telemetry", [{"instrument_redis": True}], indirect=True)
SECRET_KEY = "secret-key-123"
SECRET_VALUE = "secret-value-456"
OUR_KEYS = {value for name, value in vars(ATTR).items() if name.isupper()}


def l2_span_name(operation: str) -> str:
    return SPAN.L2.format(operation=operation)


async def every_l2_operation(cache: Any, api: str, key: str = "ukey-1", value: str = "uvalue-1") -> None:
    """One L2 call each: set, get (L2 hit), get (miss), delete, set_many, get_many, clear.

    Also one L1 hit, which makes no L2 call and no span.
    """
    await call(cache, api, "put", key, value)
    cache.l1.clear()
    assert await call(cache, api, "get", key) == value
    assert await call(cache, api, "get", key) == value  # an L1 hit: no span
    assert await call(cache, api, "get", "ukey-missing") is None
    assert await call(cache, api, "delete", key)
    assert await call(cache, api, "put_many", {f"{key}-a": value, f"{key}-b": value}) == 2
    cache.l1.clear()
    assert await call(cache, api, "get_many", [f"{key}-a", f"{key}-b"]) == {
        f"{key}-a": value,
        f"{key}-b": value,
    }
    assert await call(cache, api, "clear") == 2


EVERY_L2_SPAN = [l2_span_name(op) for op in ("set", "get", "get", "delete", "set_many", "get_many", "clear")]


# -- L2 spans -----------------------------------------------------------------


async def test_each_l2_call_is_one_span_with_operation_level_and_hit(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url)
    await every_l2_operation(cache, api)

    spans = telemetry.cache_spans()
    assert [span.name for span in spans] == EVERY_L2_SPAN
    for span, operation in zip(
        spans, ("set", "get", "get", "delete", "set_many", "get_many", "clear"), strict=True
    ):
        assert span.kind is SpanKind.INTERNAL
        assert span.status.status_code is StatusCode.UNSET
        attributes = dict(span.attributes or {})
        hit = attributes.pop(ATTR.CACHE_HIT, None)
        assert attributes == {
            ATTR.CACHE_NAME: cache_name,
            ATTR.MODE: api,
            ATTR.OPERATION: operation,
            ATTR.LEVEL: "l2",
        }
        assert (hit is None) == (operation != "get")
        scope = span.instrumentation_scope
        assert scope is not None
        assert (scope.name, scope.version, scope.schema_url) == (
            INSTRUMENTATION_NAME,
            otel_cache.__version__,
            SCHEMA_URL,
        )
    assert [span.attributes.get(ATTR.CACHE_HIT) for span in spans if span.name == l2_span_name("get")] == [
        True,
        False,
    ]


async def test_l2_spans_are_children_of_the_current_span(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url)
    with telemetry.tracer.start_as_current_span("test.request") as parent:
        await call(cache, api, "put", "ukey-1", "uvalue-1")
    (span,) = telemetry.cache_spans()
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.context.trace_id == parent.get_span_context().trace_id


@WITH_REDIS
async def test_redis_command_spans_are_children_of_l2_spans(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url)
    await every_l2_operation(cache, api)

    ours = telemetry.cache_spans()
    assert [span.name for span in ours] == EVERY_L2_SPAN
    by_id = {span.context.span_id: span for span in ours}
    redis_spans = [span for span in telemetry.spans() if span not in ours]
    assert redis_spans, "no redis-py span: instrument_redis=True did not instrument redis"
    children: dict[int, list[ReadableSpan]] = {span_id: [] for span_id in by_id}
    for span in redis_spans:
        assert span.instrumentation_scope is not None
        assert "redis" in span.instrumentation_scope.name
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None, f"{span.name} has no parent"
        assert span.parent.span_id in by_id, f"{span.name} is not under an otel_cache.l2 span"
        assert span.context.trace_id == by_id[span.parent.span_id].context.trace_id
        children[span.parent.span_id].append(span)
    for span_id, kids in children.items():
        assert kids, f"{by_id[span_id].name} has no redis child span"
    (get_hit, _) = (span for span in ours if span.name == l2_span_name("get"))
    assert any("GET" in kid.name for kid in children[get_hit.context.span_id])


async def test_redis_failure_sets_error_status_type_and_exception_event(
    fresh_redis_server: RedisServer,
    telemetry: Telemetry,
    make_cache: Callable[..., Any],
    cache_name: str,
    api: str,
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=fresh_redis_server.url)
    await call(cache, api, "put", "ukey-1", "uvalue-1")
    fresh_redis_server.stop()
    cache.l1.clear()
    assert await call(cache, api, "get", "ukey-1") is None  # degraded: a miss
    await call(cache, api, "put", "ukey-2", "uvalue-2")  # degraded: a failed set (L1 takes no copy
    # while the invalidation channel is down, so the return value depends on when it noticed)

    ok, failed_get, failed_set = telemetry.cache_spans()
    assert ok.status.status_code is StatusCode.UNSET
    assert ATTR.ERROR_TYPE not in (ok.attributes or {})
    for span, operation in ((failed_get, "get"), (failed_set, "set")):
        assert span.name == l2_span_name(operation)
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[ATTR.ERROR_TYPE] == "ConnectionError"
        assert span.status.description == "ConnectionError"
        (event,) = span.events
        assert event.name == "exception"
        assert event.attributes["exception.type"].endswith("BackendUnavailableError")
    assert ATTR.CACHE_HIT not in (failed_get.attributes or {})


# -- loads ----------------------------------------------------------------------


async def test_a_served_fail_safe_copy_is_an_event_on_the_callers_span(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url, default_ttl=0.05)
    fail_safe = otel_cache.FailSafe(max_age=60)

    def down() -> str:
        raise LookupError("the source is down")

    get_or_set = getattr(cache, "get_or_set" if api == "sync" else "aget_or_set")

    async def read(loader: Callable[[], str]) -> str:
        result = get_or_set("ukey-f", loader, fail_safe=fail_safe)
        return str(await result if api == "async" else result)

    assert await read(lambda: "uvalue-f") == "uvalue-f"
    await asyncio.sleep(0.1)  # past the 50 ms TTL: the copy is all that is left
    with telemetry.tracer.start_as_current_span("test.request"):
        assert await read(down) == "uvalue-f"
    (request,) = telemetry.spans("test.request")
    events = [event for event in request.events if event.name == SPAN.FAIL_SAFE_EVENT]
    assert [dict(event.attributes or {}) for event in events] == [{ATTR.ERROR_TYPE: "LookupError"}]
    (load,) = [span for span in telemetry.spans(SPAN.LOAD) if span.status.status_code is StatusCode.ERROR]
    assert load.events[0].attributes["exception.type"].endswith("LookupError")


async def test_a_caller_that_stops_waiting_is_an_event_on_its_span(
    telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name)
    release_sync, release_async = threading.Event(), asyncio.Event()

    def slow() -> str:
        release_sync.wait(30)
        return "uvalue-late"

    async def aslow() -> str:
        await release_async.wait()
        return "uvalue-late"

    with telemetry.tracer.start_as_current_span("test.request"), pytest.raises(otel_cache.LoadTimeoutError):
        await call_with(
            cache, api, "get_or_set", "ukey-slow", slow if api == "sync" else aslow, hard_timeout=0.01
        )
    release_sync.set()
    release_async.set()
    (request,) = telemetry.spans("test.request")
    events = [
        dict(event.attributes or {}) for event in request.events if event.name == SPAN.LOAD_TIMEOUT_EVENT
    ]
    assert events == [{ATTR.TIMEOUT_KIND: "hard"}]


async def test_load_span_is_current_while_the_loader_runs(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url)
    seen: list[trace.SpanContext] = []

    def loader() -> str:
        seen.append(trace.get_current_span().get_span_context())
        return "uvalue-loaded"

    with telemetry.tracer.start_as_current_span("test.request") as parent:
        assert await call(cache, api, "get_or_set", "ukey-1", loader) == "uvalue-loaded"
    (load,) = telemetry.spans(SPAN.LOAD)
    assert seen == [load.context]
    assert load.parent is not None
    assert load.parent.span_id == parent.get_span_context().span_id
    assert dict(load.attributes or {}) == {
        ATTR.CACHE_NAME: cache_name,
        ATTR.MODE: api,
        ATTR.CACHE_HIT: False,
    }
    assert load.status.status_code is StatusCode.UNSET
    assert telemetry.spans(SPAN.LOAD_WAIT) == []


async def test_failed_load_span_has_error_status_and_exception(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url)

    def broken() -> str:
        raise LookupError("no such row")

    with pytest.raises(LookupError):
        await call(cache, api, "get_or_set", "ukey-1", broken)
    (load,) = telemetry.spans(SPAN.LOAD)
    assert load.status.status_code is StatusCode.ERROR
    assert load.attributes[ATTR.ERROR_TYPE] == "LookupError"
    assert [event.name for event in load.events] == ["exception"]
    assert load.events[0].attributes["exception.message"] == "no such row"


async def test_waiters_link_to_the_leaders_load_span_async(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str
) -> None:
    cache = make_cache(async_mode=True, name=cache_name, redis_url=redis_url)
    release = asyncio.Event()

    async def loader() -> str:
        await release.wait()
        return "uvalue-loaded"

    async def release_when_all_joined() -> None:
        while cache.async_flights.coalesced < 9:  # noqa: ASYNC110 - a plain counter, nothing to await
            await asyncio.sleep(0.001)
        release.set()

    _, *results = await asyncio.gather(
        release_when_all_joined(), *(cache.aget_or_set("ukey-1", loader) for _ in range(10))
    )
    assert results == ["uvalue-loaded"] * 10
    check_waiter_links(telemetry, cache_name, "async", waiters=9)


async def test_waiters_link_to_the_leaders_load_span_threads(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str
) -> None:
    cache = make_cache(async_mode=False, name=cache_name, redis_url=redis_url)
    loading = threading.Event()
    release = threading.Event()

    def loader() -> str:
        loading.set()
        assert release.wait(10)
        return "uvalue-loaded"

    with ThreadPoolExecutor(10) as pool:
        # The leader first, so that its load span has started when the others join (see the
        # xfail test below for a waiter that joins earlier).
        futures = [pool.submit(cache.get_or_set, "ukey-1", loader)]
        assert await asyncio.to_thread(loading.wait, 10)
        futures += [pool.submit(cache.get_or_set, "ukey-1", loader) for _ in range(9)]
        await asyncio.to_thread(wait_for_coalesced, cache, 9)
        release.set()
        assert [future.result() for future in futures] == ["uvalue-loaded"] * 10
    check_waiter_links(telemetry, cache_name, "sync", waiters=9)


async def test_waiter_joining_before_the_leaders_span_starts_still_links_to_it(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str
) -> None:
    cache = make_cache(async_mode=False, name=cache_name, redis_url=redis_url)
    handler = hooks.current()
    assert handler is not None
    tracer = handler.tracer  # type: ignore[attr-defined]
    start_span = tracer.start_span
    waiter_started = threading.Event()

    def slow_start_span(name: str, *args: Any, **kwargs: Any) -> Any:
        # Stands for a GIL switch: the leader's span starts only once a waiter is waiting.
        if name == SPAN.LOAD:
            assert waiter_started.wait(10)
        elif name == SPAN.LOAD_WAIT:
            waiter_started.set()
        return start_span(name, *args, **kwargs)

    tracer.start_span = slow_start_span
    try:
        with ThreadPoolExecutor(2) as pool:
            leader = pool.submit(cache.get_or_set, "ukey-1", lambda: "uvalue-loaded")
            await asyncio.to_thread(wait_for_flight, cache)
            waiter = pool.submit(cache.get_or_set, "ukey-1", lambda: "uvalue-other")
            assert leader.result() == waiter.result() == "uvalue-loaded"
    finally:
        del tracer.start_span
    check_waiter_links(telemetry, cache_name, "sync", waiters=1)


def wait_for_coalesced(cache: Any, count: int) -> None:
    for _ in range(10_000):
        if cache.sync_flights.coalesced >= count:
            return
        threading.Event().wait(0.001)
    raise AssertionError("the callers never joined the flight")


def wait_for_flight(cache: Any) -> None:
    for _ in range(10_000):
        if cache.sync_flights.in_flight():
            return
        threading.Event().wait(0.001)
    raise AssertionError("no flight started")


def check_waiter_links(telemetry: Telemetry, cache_name: str, mode: str, *, waiters: int) -> None:
    (load,) = telemetry.spans(SPAN.LOAD)
    waits = telemetry.spans(SPAN.LOAD_WAIT)
    assert len(waits) == waiters
    for wait in waits:
        assert [link.context for link in wait.links] == [load.context]
        assert dict(wait.attributes or {}) == {
            ATTR.CACHE_NAME: cache_name,
            ATTR.MODE: mode,
            ATTR.COALESCED: True,
        }
        assert wait.context.trace_id != load.context.trace_id or wait.parent is not None


# -- warmers ------------------------------------------------------------------


async def test_warmer_run_spans(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str
) -> None:
    cache = make_cache(async_mode=True, name=cache_name, redis_url=redis_url)

    def load(key: str) -> str:
        if key == "ukey-bad":
            raise LookupError("no such row")
        return "uvalue-1"

    thread_warmer = ThreadWarmer(cache, load, ["ukey-1"], interval=3600, name=f"{cache_name}-ok")
    async_warmer = AsyncWarmer(cache, load, ["ukey-1", "ukey-bad"], interval=3600, name=f"{cache_name}-bad")
    thread_warmer.run_once()
    await async_warmer.run_once()

    ok, bad = telemetry.spans(SPAN.WARMER_RUN)
    assert dict(ok.attributes or {}) == {
        ATTR.WARMER_NAME: thread_warmer.name,
        ATTR.MODE: "sync",
        ATTR.WARMER_FAILURES: 0,
    }
    assert ok.status.status_code is StatusCode.UNSET
    assert dict(bad.attributes or {}) == {
        ATTR.WARMER_NAME: async_warmer.name,
        ATTR.MODE: "async",
        ATTR.WARMER_FAILURES: 1,
    }
    assert bad.status.status_code is StatusCode.ERROR
    assert bad.end_time is not None
    assert bad.start_time is not None
    assert bad.end_time >= bad.start_time


# -- privacy ------------------------------------------------------------------


@WITH_REDIS
async def test_no_span_carries_a_raw_key_or_a_value(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url)
    await every_l2_operation(cache, api, SECRET_KEY, SECRET_VALUE)
    assert await call(cache, api, "get_or_set", f"{SECRET_KEY}-load", lambda: SECRET_VALUE) == SECRET_VALUE

    def broken() -> str:
        raise LookupError("no such row")

    with pytest.raises(LookupError):
        await call(cache, api, "get_or_set", f"{SECRET_KEY}-broken", broken)

    spans = telemetry.spans()
    assert len(telemetry.cache_spans()) == len(EVERY_L2_SPAN) + 5  # get, load, set; get, load
    assert len(spans) > len(telemetry.cache_spans())  # redis-py spans are scanned too
    texts = all_attribute_values(spans)
    leaks = [text for text in texts if SECRET_KEY in text or SECRET_VALUE in text]
    assert leaks == []
    # Only our own attribute keys on our spans (the exception event has the semconv keys).
    for span in telemetry.cache_spans():
        assert set(span.attributes or {}) <= OUR_KEYS, span.name
        for event in span.events:
            if event.name != "exception":
                assert set(event.attributes or {}) <= OUR_KEYS, event.name


@pytest.mark.parametrize("telemetry", [{"record_key_hashes": True}], indirect=True)
async def test_record_key_hashes_puts_a_hash_not_the_key_on_load_spans(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url)
    for key in (SECRET_KEY, SECRET_KEY, "ukey-other"):
        cache.l1.clear()
        await call(cache, api, "delete", key)
        await call(cache, api, "get_or_set", key, lambda: SECRET_VALUE)

    first, again, other = telemetry.spans(SPAN.LOAD)
    digest = first.attributes[ATTR.KEY_HASH]
    assert isinstance(digest, str)
    assert len(digest) == 16
    int(digest, 16)
    assert SECRET_KEY not in digest
    assert again.attributes[ATTR.KEY_HASH] == digest  # stable: the same key, the same hash
    assert other.attributes[ATTR.KEY_HASH] != digest
    # Only load spans carry it, and no span carries the key itself.
    for span in telemetry.cache_spans():
        assert (ATTR.KEY_HASH in (span.attributes or {})) == (span.name == SPAN.LOAD)
    assert [text for text in all_attribute_values(telemetry.spans()) if SECRET_KEY in text] == []


async def test_key_hashes_are_off_by_default(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str
) -> None:
    cache = make_cache(async_mode=True, name=cache_name, redis_url=redis_url)
    await cache.aget_or_set(SECRET_KEY, lambda: SECRET_VALUE)
    (load,) = telemetry.spans(SPAN.LOAD)
    assert ATTR.KEY_HASH not in (load.attributes or {})


# -- suppression and sampling ---------------------------------------------------


@WITH_REDIS
async def test_suppress_instrumentation_makes_no_spans_and_no_histogram_points(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url)
    with suppress_instrumentation():
        await every_l2_operation(cache, api)
        assert await call(cache, api, "get_or_set", "ukey-load", lambda: "uvalue-1") == "uvalue-1"
    assert telemetry.spans() == []
    metrics = telemetry.metrics()
    for spec in (METRICS.OPERATION_DURATION, METRICS.LOAD_DURATION):
        assert points(metrics, spec.name, otel_cache__name=cache_name) == []
    # The plain counters still count: they cost nothing to keep.
    assert points(metrics, METRICS.REQUESTS.name, otel_cache__name=cache_name) != []

    await call(cache, api, "put", "ukey-after", "uvalue-1")  # outside: spans again
    assert [span.name for span in telemetry.cache_spans()] == [l2_span_name("set")]


@pytest.mark.parametrize("telemetry", [{"sampler": ALWAYS_OFF, "instrument_redis": True}], indirect=True)
async def test_sampler_always_off_exports_nothing_and_calls_still_work(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url)
    await every_l2_operation(cache, api)
    assert await call(cache, api, "get_or_set", "ukey-load", lambda: "uvalue-1") == "uvalue-1"
    with telemetry.tracer.start_as_current_span("test.request"):
        assert await call(cache, api, "get", "ukey-load") == "uvalue-1"
    assert telemetry.spans() == []
    # Metrics do not depend on sampling.
    metrics = telemetry.metrics()
    durations = points(metrics, METRICS.OPERATION_DURATION.name, otel_cache__name=cache_name)
    assert sum(p.count for p in durations) == len(EVERY_L2_SPAN) + 2  # + the load's get and set
    assert len(points(metrics, METRICS.LOAD_DURATION.name, otel_cache__name=cache_name)) == 1


async def test_suppress_instrumentation_covers_warmer_runs(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str
) -> None:
    cache = make_cache(async_mode=False, name=cache_name, redis_url=redis_url)
    warmer = ThreadWarmer(cache, lambda key: "uvalue-1", ["ukey-1"], interval=3600, name=f"{cache_name}-w")
    with suppress_instrumentation():
        warmer.run_once()
    assert warmer.stats().runs == 1
    assert telemetry.spans() == []


async def test_suppress_instrumentation_covers_contended_lock_waits(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str, api: str
) -> None:
    cache = make_cache(async_mode=api == "async", name=cache_name, redis_url=redis_url)
    await call(cache, api, "put", "ukey-1", "uvalue-1")
    with telemetry.tracer.start_as_current_span("test.request"), suppress_instrumentation():
        thread = hold_lock(cache.l1.lock, 0.01)
        assert await call(cache, api, "put", "ukey-1", "uvalue-1") is True  # takes the L1 lock
        thread.join()
    assert cache.l1.lock.contended == 1
    (request_span,) = telemetry.spans("test.request")
    assert [event.name for event in request_span.events] == []
    assert points(telemetry.metrics(), METRICS.LOCK_WAIT.name, otel_cache__name=cache_name) == []


@pytest.mark.cluster
def test_on_a_cluster_l2_spans_and_breakers_name_the_node(
    telemetry: Telemetry, cache_name: str, redis_cluster: Any, redis_cluster_url: str
) -> None:
    cache: otel_cache.MultiLevelCache[str, Any] = otel_cache.MultiLevelCache(
        otel_cache.CacheConfig(
            name=cache_name, redis_url=redis_cluster_url, namespace="spans", invalidation=False
        )
    )
    try:
        cache.put("user:1", 1)  # the first call makes the client (its slot table): no node known before
        cache.put("user:1", 1)
        cache.l1.clear()
        assert cache.get("user:1") == 1
        primary = redis_cluster.primary_for_key(cache.tiers.l2_key("user:1"))
        for span in telemetry.spans("otel_cache.l2 get") + telemetry.spans("otel_cache.l2 set")[1:]:
            assert span.attributes is not None
            assert (span.attributes["server.address"], span.attributes["server.port"]) == (
                primary.host,
                primary.port,
            )
        states = points(
            telemetry.metrics(), "otel_cache.circuit_breaker.state", **{"otel_cache.name": cache_name}
        )
        nodes = {(p.attributes.get("server.address"), p.attributes.get("server.port")) for p in states}
        assert (primary.host, primary.port) in nodes
        assert (None, None) in nodes  # the breaker of calls that span the cluster
    finally:
        cache.close()


async def call_with(cache: Any, api: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """``call`` with keyword arguments too."""
    if api == "sync":
        return getattr(cache, method)(*args, **kwargs)
    return await getattr(cache, "a" + method)(*args, **kwargs)
