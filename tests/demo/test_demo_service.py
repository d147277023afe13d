"""The demo service in both modes, over ASGI with its lifespan run by hand."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from otel_cache import get_async_cache_manager, get_cache_manager
from otel_cache_demo.catalogue import query_catalogue
from otel_cache_demo.graph import TraversalQuery, default_graph
from otel_cache_demo.loadgen import GRAPHQL_DOCUMENT
from otel_cache_demo.service import DemoSettings, Mode, cache_config, create_app, demo_cache
from otel_cache_demo.telemetry import DemoTelemetry, otlp_targets
from tests.integrations.asgi_client import serving

MODES = ["sync", "async"]
QUERY = TraversalQuery(start="service-0001", depth=3, relations=["calls", "depends_on"], limit=10)


def rest_params(query: TraversalQuery) -> list[tuple[str, str | int]]:
    params: list[tuple[str, str | int]] = [
        ("start", query.start),
        ("depth", query.depth),
        ("limit", query.limit),
    ]
    params += [("relations", r) for r in query.relations or ()]
    params += [("kinds", k) for k in query.kinds or ()]
    return params


def graphql_body(query: TraversalQuery) -> dict[str, Any]:
    variables = {
        "start": query.start,
        "depth": query.depth,
        "relations": query.relations,
        "kinds": query.kinds,
        "limit": query.limit,
    }
    return {"query": GRAPHQL_DOCUMENT, "variables": variables}


def manager_stats(mode: str) -> Any:
    manager = get_cache_manager() if mode == "sync" else get_async_cache_manager()
    return manager.cache.stats()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def client(mode: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(mode, warm_keys=0)) as http:
        yield http


async def test_rest_and_graphql_answer_the_same_for_the_same_query(client: httpx.AsyncClient) -> None:
    rest = await client.get("/traverse", params=rest_params(QUERY))
    graphql = await client.post("/graphql", json=graphql_body(QUERY))
    assert rest.status_code == graphql.status_code == 200
    assert rest.headers["content-type"] == "application/json"
    assert graphql.json() == {"data": {"traversal": rest.json()}}
    assert rest.json() == default_graph().run(QUERY)
    # One cache entry for both protocols: the GraphQL request was a hit.
    assert (rest.headers["x-cache"], graphql.headers["x-cache"]) == ("MISS", "HIT")


async def test_the_second_request_is_a_cache_hit(client: httpx.AsyncClient, mode: str) -> None:
    first = await client.get("/traverse", params=rest_params(QUERY))
    # The same query with its filters in another order: the same key.
    reordered = [("relations", "depends_on"), ("limit", 10), ("relations", "calls"), ("depth", 3)]
    second = await client.get("/traverse", params=[("start", QUERY.start), *reordered])
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert first.content == second.content
    stats = manager_stats(mode)
    assert stats.l1.hits >= 1
    assert (stats.sync_flights if mode == "sync" else stats.async_flights).loads == 1
    served = (await client.get("/stats")).json()
    assert served["mode"] == mode
    assert served["cache"]["loads"] == 1
    assert served["cache"]["l1"]["hits"] >= 1
    assert served["process"]["cpu_user_s"] > 0
    assert served["event_loop"]["samples"] >= 0


async def test_concurrent_misses_of_one_query_compute_it_once(client: httpx.AsyncClient, mode: str) -> None:
    query = TraversalQuery(start="service-0002", depth=4)
    answers = await asyncio.gather(*(client.get("/traverse", params=rest_params(query)) for _ in range(8)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert [a.headers["x-cache"] for a in answers].count("MISS") == 1
    assert (await client.get("/stats")).json()["cache"]["loads"] == 1


async def test_each_mode_runs_its_design(mode: str) -> None:
    app = create_app(mode, warm_keys=3)
    async with serving(app) as http:
        cache = get_cache_manager().cache
        config = cache.config
        assert cache.l1.lock_stats().kind == ("threading.RLock" if mode == "sync" else "threading.Lock")
        assert config.namespace == "otel-cache-demo"
        assert config.name == "query-results"
        warmer_threads = [t for t in threading.enumerate() if t.name == "otel-cache-warmer-top-queries"]
        assert len(warmer_threads) == (1 if mode == "sync" else 0)
        tasks = {task.get_name() for task in asyncio.all_tasks()}
        assert ("otel-cache-warmer-top-queries" in tasks) == (mode == "async")
        assert (await http.get("/healthz")).json() == {"status": "ok", "mode": mode}
    assert not [t for t in threading.enumerate() if t.name.startswith("otel-cache-warmer")]


async def test_the_most_popular_queries_are_warm(mode: str) -> None:
    app = create_app(mode, warm_keys=5)
    async with serving(app) as http:
        deadline = time.monotonic() + 10
        while (await http.get("/stats")).json()["cache"]["l1"]["entries"] < 5:
            assert time.monotonic() < deadline, "the warmer did not run"
            await asyncio.sleep(0.02)
        for query in query_catalogue(5):  # the load generator's top 5 (same seed)
            response = await http.get("/traverse", params=rest_params(query))
            assert response.headers["x-cache"] == "HIT"
        assert (await http.get("/stats")).json()["cache"]["loads"] == 0


async def test_bad_queries(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/traverse", params={"start": "nope", "depth": 2})
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "unknown node 'nope'"}
    too_deep = await client.get("/traverse", params={"start": "service-0001", "depth": 5})
    assert too_deep.status_code == 422
    graphql = await client.post("/graphql", json={"query": '{ traversal(start: "nope") { start } }'})
    assert graphql.json()["errors"][0]["message"] == "unknown node 'nope'"


async def test_metrics_expose_cache_loop_and_http_series(client: httpx.AsyncClient, mode: str) -> None:
    for _ in range(2):
        await client.get("/traverse", params=rest_params(QUERY))
    await asyncio.sleep(0.12)  # a few loop-lag samples
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert f'otel_cache_requests_total{{otel_cache_level="l1",otel_cache_mode="{mode}"' in _unscoped(text)
    assert f'otel_cache_event_loop_lag_seconds_count{{otel_cache_event_loop_name="demo-{mode}"' in _unscoped(
        text
    )
    # FastAPIInstrumentor's duration histogram: the stable name with
    # OTEL_SEMCONV_STABILITY_OPT_IN=http (the service's CLI sets it), else the old one.
    assert (
        "http_server_request_duration_seconds_count" in text
        or "http_server_duration_milliseconds_count" in text
    )
    target_info = next(line for line in text.splitlines() if line.startswith("target_info{"))
    assert f'service_name="otel-cache-demo-{mode}"' in target_info
    assert f'otel_cache_mode="{mode}"' in target_info


def _unscoped(text: str) -> str:
    """The exposition with the otel_scope_* labels removed, attributes in the order emitted."""
    lines = []
    for line in text.splitlines():
        if "{" in line:
            name, rest = line.split("{", 1)
            labels, value = rest.rsplit("}", 1)
            kept = [label for label in labels.split('",') if not label.startswith("otel_scope_")]
            line = name + "{" + '",'.join(kept) + "}" + value
        lines.append(line)
    return "\n".join(lines)


@pytest.mark.parametrize(("writer", "reader"), [("sync", "async"), ("async", "sync")])
async def test_both_modes_share_redis(redis_url: str, writer: str, reader: str) -> None:
    query = TraversalQuery(start="user-0003", depth=3)
    async with serving(create_app(writer, redis_url=redis_url, warm_keys=0)) as http:
        written = await http.get("/traverse", params=rest_params(query))
        assert written.headers["x-cache"] == "MISS"
    async with serving(create_app(reader, redis_url=redis_url, warm_keys=0)) as http:
        read = await http.get("/traverse", params=rest_params(query))
        assert read.headers["x-cache"] == "HIT"  # from Redis: this process's L1 started empty
        assert read.content == written.content
        stats = manager_stats(reader)
        assert stats.l2.enabled
        assert stats.l2.hits == 1
        assert (await http.get("/stats")).json()["cache"]["l2"]["hits"] == 1


@pytest.mark.parametrize(("mode", "lock"), [("sync", "threading.RLock"), ("async", "threading.Lock")])
def test_the_mode_sets_the_lock_and_settings_the_rest(mode: Mode, lock: str) -> None:
    settings = DemoSettings(mode, ttl=30, l1_max_entries=100, config_overrides={"default_ttl": 45})
    cache = demo_cache(settings)
    try:
        assert cache.l1.lock_stats().kind == lock
        assert cache.async_mode is (mode == "async")
        assert (cache.config.default_ttl, cache.config.l1_max_entries) == (45, 100)
        assert cache_config(settings) == cache.config
    finally:
        cache.close()


def test_bad_settings_are_refused() -> None:
    settings = DemoSettings("sync")
    with pytest.raises(ValueError, match="mode"):
        DemoSettings("threads")
    with pytest.raises(ValueError, match="not 'async'"):
        create_app("async", settings=settings)


# -- OTLP ---------------------------------------------------------------------------------------


class _Collector(BaseHTTPRequestHandler):
    received: list[str]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def otlp_collector() -> Iterator[tuple[str, list[str]]]:
    received: list[str] = []
    handler = type("Handler", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_otlp_is_on_only_when_the_standard_variables_ask() -> None:
    assert otlp_targets({}) == (False, False)
    assert otlp_targets({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) == (True, True)
    assert otlp_targets({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}) == (True, False)
    assert otlp_targets({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4318/v1/metrics"}) == (False, True)
    telemetry = DemoTelemetry.from_env("sync", {})
    assert telemetry.exporting == (False, False)
    telemetry.shutdown()


async def test_spans_and_metrics_go_to_the_otlp_endpoint(
    mode: str, otlp_collector: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, received = otlp_collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    app: FastAPI = create_app(mode, warm_keys=0)
    async with serving(app) as http:
        assert (await http.get("/traverse", params=rest_params(QUERY))).status_code == 200
    # Shutdown flushed both: the batch span processor and a last metric export.
    assert "/v1/traces" in received
    assert "/v1/metrics" in received
