"""``OtelCacheInstrumentor`` (``otel_cache/telemetry/instrumentor.py``): on, off, on again, and zero-code."""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.instrumentation.redis import RedisInstrumentor

from otel_cache import AsyncLRUCache, CacheConfig, MultiLevelCache
from otel_cache.telemetry import hooks
from otel_cache.telemetry.cache_telemetry import CacheTelemetry
from otel_cache.telemetry.instrumentor import OtelCacheInstrumentor
from otel_cache.telemetry.names import ATTR, INSTRUMENTATION_NAME, METRICS, SPAN
from otel_cache.warming import ThreadWarmer
from tests.telemetry.telemetry_helpers import Telemetry, hold_lock, point, points

_loads = itertools.count()
GET_SPAN = SPAN.L2.format(operation="get")
SET_SPAN = SPAN.L2.format(operation="set")


def histogram_counts(telemetry: Telemetry, cache_name: str) -> dict[str, int]:
    """Total count of every histogram's points for this cache (or its warmer)."""
    metrics = telemetry.metrics()
    counts = {}
    for spec in (METRICS.OPERATION_DURATION, METRICS.LOAD_DURATION, METRICS.LOCK_WAIT):
        counts[spec.name] = sum(p.count for p in points(metrics, spec.name, otel_cache__name=cache_name))
    warmer = points(metrics, METRICS.WARMER_DURATION.name, otel_cache__warmer__name=f"{cache_name}-w")
    counts[METRICS.WARMER_DURATION.name] = sum(p.count for p in warmer)
    return counts


async def slow_path_traffic(cache: Any, cache_name: str) -> None:
    """An L2 read and write, a load (of a key never loaded before), a contended L1 lock wait, a warmer run."""
    await cache.aput("ukey-1", "uvalue-1")
    cache.l1.clear()
    await cache.aget("ukey-1")
    await cache.aget_or_set(f"ukey-load-{next(_loads)}", lambda: "uvalue-2")
    thread = hold_lock(cache.l1.lock, 0.005)
    await cache.l1.aget("ukey-absent")  # an L1 miss takes the L1 lock (hits never do)
    thread.join()
    ThreadWarmer(cache, lambda key: "uvalue", ["ukey-3"], interval=3600, name=f"{cache_name}-w").run_once()


# -- idempotence, off, on again ---------------------------------------------------


def test_the_instrumentor_is_a_singleton() -> None:
    assert OtelCacheInstrumentor() is OtelCacheInstrumentor()


async def test_instrument_twice_installs_one_handler(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str
) -> None:
    cache = make_cache(async_mode=True, name=cache_name, redis_url=redis_url)
    handler = hooks.current()
    assert isinstance(handler, CacheTelemetry)
    other = Telemetry()
    other.instrument()  # a no-op: already instrumented
    assert hooks.current() is handler

    await cache.aput("ukey-1", "uvalue-1")
    thread = hold_lock(cache.l1.lock, 0.01)
    await cache.l1.aget("ukey-absent")  # an L1 miss takes the L1 lock (hits never do)
    thread.join()

    assert [span.name for span in telemetry.cache_spans()] == [SET_SPAN]
    assert other.spans() == []
    metrics = telemetry.metrics()
    # One listener on the lock: one wait, one point with count 1.
    assert point(metrics, METRICS.LOCK_WAIT.name, otel_cache__name=cache_name).count == 1
    assert other.metrics() == {}
    other.shutdown()


async def test_uninstrument_stops_spans_and_metric_recording(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str
) -> None:
    cache = make_cache(async_mode=True, name=cache_name, redis_url=redis_url)
    await slow_path_traffic(cache, cache_name)
    spans_before = len(telemetry.spans())
    counts_before = histogram_counts(telemetry, cache_name)
    assert all(counts_before.values()), counts_before
    assert points(telemetry.metrics(), METRICS.REQUESTS.name, otel_cache__name=cache_name) != []

    telemetry.uninstrument()
    assert hooks.current() is None
    await slow_path_traffic(cache, cache_name)

    assert len(telemetry.spans()) == spans_before
    assert histogram_counts(telemetry, cache_name) == counts_before
    metrics = telemetry.metrics()
    for spec in (METRICS.REQUESTS, METRICS.PUTS, METRICS.ENTRIES, METRICS.LOCK_CONTENDED, METRICS.LOADS):
        assert points(metrics, spec.name, otel_cache__name=cache_name) == [], spec.name


async def test_instrument_uninstrument_instrument_with_new_providers(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str
) -> None:
    cache = make_cache(async_mode=True, name=cache_name, redis_url=redis_url)
    await slow_path_traffic(cache, cache_name)
    first_spans = len(telemetry.spans())
    first_counts = histogram_counts(telemetry, cache_name)
    telemetry.uninstrument()

    second = Telemetry()
    second.instrument()
    try:
        await slow_path_traffic(cache, cache_name)
        # Everything goes to the new providers: spans, histograms, observable counters ...
        assert [span.name for span in second.cache_spans()] == [span.name for span in telemetry.cache_spans()]
        assert histogram_counts(second, cache_name) == first_counts
        metrics = second.metrics()
        hits = point(
            metrics,
            METRICS.REQUESTS.name,
            otel_cache__name=cache_name,
            otel_cache__level="l1",
            otel_cache__result="hit",
        )
        assert hits.value == cache.stats().l1.hits
        # ... and nothing more to the old ones.
        assert len(telemetry.spans()) == first_spans
        assert histogram_counts(telemetry, cache_name) == first_counts
    finally:
        second.uninstrument()
        second.shutdown()


async def test_the_previous_meter_provider_stays_silent_after_instrumenting_with_another(
    telemetry: Telemetry, cache_name: str
) -> None:
    cache: AsyncLRUCache[str, str] = AsyncLRUCache(name=cache_name)
    cache.put("ukey-1", "uvalue-1")
    assert points(telemetry.metrics(), METRICS.REQUESTS.name, otel_cache__name=cache_name) != []
    telemetry.uninstrument()
    assert points(telemetry.metrics(), METRICS.REQUESTS.name, otel_cache__name=cache_name) == []
    second = Telemetry()
    second.instrument()
    try:
        assert points(second.metrics(), METRICS.REQUESTS.name, otel_cache__name=cache_name) != []
        assert points(telemetry.metrics(), METRICS.REQUESTS.name, otel_cache__name=cache_name) == []
    finally:
        second.uninstrument()
        second.shutdown()
        cache.close()


async def test_instrument_uninstrument_instrument_with_the_same_providers(
    redis_url: str, telemetry: Telemetry, make_cache: Callable[..., Any], cache_name: str
) -> None:
    cache = make_cache(async_mode=True, name=cache_name, redis_url=redis_url)
    await slow_path_traffic(cache, cache_name)
    first = histogram_counts(telemetry, cache_name)
    telemetry.uninstrument()
    telemetry.instrument()
    await slow_path_traffic(cache, cache_name)

    assert histogram_counts(telemetry, cache_name) == {name: 2 * count for name, count in first.items()}
    metrics = telemetry.metrics()
    hits = point(
        metrics,
        METRICS.REQUESTS.name,
        otel_cache__name=cache_name,
        otel_cache__level="l1",
        otel_cache__result="hit",
    )
    assert hits.value == cache.stats().l1.hits
    names = [span.name for span in telemetry.cache_spans()]
    assert names[: len(names) // 2] == names[len(names) // 2 :]


async def test_caches_made_before_instrument_are_observed(
    redis_url: str, make_cache: Callable[..., Any], cache_name: str
) -> None:
    cache = make_cache(async_mode=True, name=cache_name, redis_url=redis_url)
    await cache.aput("ukey-1", "uvalue-1")
    telemetry = Telemetry()
    telemetry.instrument()
    try:
        thread = hold_lock(cache.l1.lock, 0.01)
        assert await cache.l1.aget("ukey-absent") is None  # an L1 miss takes the lock (hits never do)
        thread.join()
        metrics = telemetry.metrics()
        assert point(metrics, METRICS.LOCK_WAIT.name, otel_cache__name=cache_name).count == 1
        assert (
            point(metrics, METRICS.PUTS.name, otel_cache__name=cache_name, otel_cache__level="l2").value == 1
        )
    finally:
        telemetry.uninstrument()
        telemetry.shutdown()


# -- options ------------------------------------------------------------------


async def test_record_key_hashes_from_the_environment(
    redis_url: str, make_cache: Callable[..., Any], cache_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make_cache(async_mode=True, name=cache_name, redis_url=redis_url)
    for setting, expected in (("true", True), ("0", False)):
        monkeypatch.setenv("OTEL_CACHE_RECORD_KEY_HASHES", setting)
        telemetry = Telemetry()
        telemetry.instrument()
        try:
            await cache.aget_or_set(f"ukey-{setting}", lambda: "uvalue")
            (load,) = telemetry.spans(SPAN.LOAD)
            assert (ATTR.KEY_HASH in (load.attributes or {})) is expected
        finally:
            telemetry.uninstrument()
            telemetry.shutdown()


def test_an_isolated_registry_hides_live_caches_and_gives_them_back() -> None:
    outside: MultiLevelCache[str, Any] = MultiLevelCache(CacheConfig(name="outside"))
    try:
        with hooks.isolated_registry():
            assert hooks.registered() == []
            inside: MultiLevelCache[str, Any] = MultiLevelCache(CacheConfig(name="inside"))
            assert hooks.registered() == [inside]
        assert outside in hooks.registered()
        assert inside not in hooks.registered()
        inside.close()
    finally:
        outside.close()


def test_instrument_redis_instruments_and_uninstruments_redis_py() -> None:
    redis_instrumentor = RedisInstrumentor()
    assert not redis_instrumentor.is_instrumented_by_opentelemetry
    # An earlier test's cache may still be alive (held by a thread or a frame): not seen here.
    with hooks.isolated_registry():
        assert hooks.registered() == []
        telemetry = Telemetry(instrument_redis=True)
        telemetry.instrument()
        try:
            # Not before a cache exists: another instrumentor may still be about to do it.
            assert not redis_instrumentor.is_instrumented_by_opentelemetry
            cache: MultiLevelCache[str, Any] = MultiLevelCache(CacheConfig(name="first"))
            assert redis_instrumentor.is_instrumented_by_opentelemetry
            cache.close()
        finally:
            telemetry.uninstrument()
            telemetry.shutdown()
    assert not redis_instrumentor.is_instrumented_by_opentelemetry


def test_uninstrument_leaves_a_redis_instrumentation_it_did_not_make() -> None:
    redis_instrumentor = RedisInstrumentor()
    telemetry = Telemetry(instrument_redis=True)
    redis_instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        telemetry.instrument()
        telemetry.uninstrument()
        assert redis_instrumentor.is_instrumented_by_opentelemetry
    finally:
        redis_instrumentor.uninstrument()
        telemetry.shutdown()


# -- zero code ----------------------------------------------------------------


def test_entry_point_resolves_to_the_instrumentor() -> None:
    (entry_point,) = importlib.metadata.entry_points(group="opentelemetry_instrumentor", name="otel_cache")
    assert entry_point.value == "otel_cache.telemetry.instrumentor:OtelCacheInstrumentor"
    assert entry_point.load() is OtelCacheInstrumentor


SCRIPT = textwrap.dedent(
    """
    import sys

    from otel_cache import CacheConfig, MultiLevelCache

    cache = MultiLevelCache(CacheConfig(name="zero-code", redis_url=sys.argv[1]))
    cache.put("ukey-cli", "uvalue-cli")
    cache.l1.clear()
    assert cache.get("ukey-cli") == "uvalue-cli"
    cache.close()
    """
)


def console_spans(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects the console exporter printed, one per span."""
    decoder = json.JSONDecoder()
    spans, index = [], 0
    while (start := stdout.find("{", index)) != -1:
        span, index = decoder.raw_decode(stdout, start)
        spans.append(span)
    return spans


@pytest.mark.parametrize(
    "disabled",
    ["", "redis"],
    ids=["redis-instrumentor-loaded-too", "redis-instrumentor-disabled"],
)
def test_opentelemetry_instrument_traces_a_cache_with_zero_code(
    redis_url: str, tmp_path: Path, disabled: str
) -> None:
    """Redis spans nest under the cache's, from redis-py's own instrumentor (loaded by
    ``opentelemetry-instrument`` in no set order with ours), and nothing is instrumented twice
    (no "already instrumented" warning); with ``redis`` disabled there are none (ours respects
    the list too)."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    cli = Path(sys.executable).parent / "opentelemetry-instrument"
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env["OTEL_SERVICE_NAME"] = "test"
    env["OTEL_SEMCONV_STABILITY_OPT_IN"] = "database"
    env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = disabled
    result = subprocess.run(
        [
            str(cli),
            "--traces_exporter",
            "console",
            "--metrics_exporter",
            "none",
            "--logs_exporter",
            "none",
            sys.executable,
            str(script),
            redis_url,
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"name": "otel_cache.l2 get"' in result.stdout, result.stdout + result.stderr
    assert "already instrumented" not in result.stderr

    spans = console_spans(result.stdout)
    (get,) = (span for span in spans if span["name"] == GET_SPAN)
    (put,) = (span for span in spans if span["name"] == SET_SPAN)
    assert get["attributes"][ATTR.CACHE_NAME] == "zero-code"
    assert get["attributes"][ATTR.CACHE_HIT] is True
    assert put["attributes"][ATTR.OPERATION] == "set"
    assert get["resource"]["attributes"]["service.name"] == "test"
    assert INSTRUMENTATION_NAME in result.stdout
    get_id = get["context"]["span_id"]
    children = [span for span in spans if span.get("parent_id") == get_id]
    if disabled == "redis":
        assert children == []
        return
    # redis-py was instrumented too (by its own entry point or by ours): its spans nest under ours.
    assert children, "no redis span under the get"
    # OTEL_SEMCONV_STABILITY_OPT_IN=database: the stable database conventions.
    assert children[0]["attributes"]["db.system.name"] == "redis"
