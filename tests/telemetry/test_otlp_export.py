"""otel_cache's spans and metrics through the real OTLP/HTTP exporters, to a tiny collector.

The collector is ``http.server`` in a thread that keeps every POST body; the bodies are
decoded with the OTLP protobuf messages, as a real collector would.
"""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import otel_cache
from otel_cache.telemetry.instrumentor import OtelCacheInstrumentor
from otel_cache.telemetry.names import ATTR, DURATION_BUCKETS, INSTRUMENTATION_NAME, METRICS, SCHEMA_URL, SPAN


class Collector(http.server.ThreadingHTTPServer):
    """Accepts OTLP/HTTP POSTs on ``/v1/traces`` and ``/v1/metrics`` and keeps the bodies."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: dict[str, list[bytes]] = {"/v1/traces": [], "/v1/metrics": []}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        known = self.path in self.server.bodies and self.headers["Content-Type"] == "application/x-protobuf"
        if known:
            with self.server.lock:
                self.server.bodies[self.path].append(body)
        self.send_response(200 if known else 404)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    for variable in ("OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_HEADERS"):
        monkeypatch.delenv(variable, raising=False)
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, name="test-otlp-collector", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def attributes(pairs: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` list -> dict of Python values."""
    result: dict[str, Any] = {}
    for pair in pairs:
        assert isinstance(pair, KeyValue)
        kind = pair.value.WhichOneof("value")
        result[pair.key] = getattr(pair.value, kind)
    return result


async def test_spans_and_metrics_reach_an_otlp_http_collector(
    redis_url: str, collector: Collector, make_cache: Callable[..., Any], cache_name: str
) -> None:
    resource = Resource.create({"service.name": "otlp-test"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces", timeout=5))
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{collector.url}/v1/metrics", timeout=5),
        export_interval_millis=3_600_000,
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    instrumentor = OtelCacheInstrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider, instrument_redis=True
    )
    try:
        cache = make_cache(async_mode=True, name=cache_name, redis_url=redis_url)
        await cache.aput("ukey-1", "uvalue-1")
        cache.l1.clear()
        assert await cache.aget("ukey-1") == "uvalue-1"  # L2 hit, fills L1
        assert await cache.aget("ukey-1") == "uvalue-1"  # L1 hit
        assert await cache.aget_or_set("ukey-2", lambda: "uvalue-2") == "uvalue-2"
        assert tracer_provider.force_flush(10_000)
        assert meter_provider.force_flush(10_000)
    finally:
        instrumentor.uninstrument()
        tracer_provider.shutdown()
        meter_provider.shutdown()

    # -- traces
    assert collector.bodies["/v1/traces"], "the span exporter posted nothing"
    ours: list[Any] = []
    others: list[Any] = []
    for body in collector.bodies["/v1/traces"]:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            assert attributes(resource_spans.resource.attributes)["service.name"] == "otlp-test"
            for scope_spans in resource_spans.scope_spans:
                if scope_spans.scope.name == INSTRUMENTATION_NAME:
                    assert scope_spans.scope.version == otel_cache.__version__
                    assert scope_spans.schema_url == SCHEMA_URL
                    ours.extend(scope_spans.spans)
                else:
                    others.extend(scope_spans.spans)
    names = [span.name for span in ours]
    get, set_, load = (SPAN.L2.format(operation="get"), SPAN.L2.format(operation="set"), SPAN.LOAD)
    assert sorted(names) == sorted([set_, get, get, load, set_])
    (hit,) = (span for span in ours if span.name == get and attributes(span.attributes)[ATTR.CACHE_HIT])
    assert attributes(hit.attributes) == {
        ATTR.CACHE_NAME: cache_name,
        ATTR.MODE: "async",
        ATTR.OPERATION: "get",
        ATTR.LEVEL: "l2",
        ATTR.CACHE_HIT: True,
    }
    (load_span,) = (span for span in ours if span.name == load)
    assert attributes(load_span.attributes)[ATTR.CACHE_HIT] is False
    # redis-py's spans travel in the same export, as children of ours.
    our_ids = {span.span_id for span in ours}
    assert others
    assert all(span.parent_span_id in our_ids for span in others)

    # -- metrics
    assert collector.bodies["/v1/metrics"], "the metric exporter posted nothing"
    metrics: dict[str, Any] = {}
    for body in collector.bodies["/v1/metrics"]:
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                if scope_metrics.scope.name == INSTRUMENTATION_NAME:
                    metrics.update({metric.name: metric for metric in scope_metrics.metrics})
    duration = metrics[METRICS.OPERATION_DURATION.name]
    assert duration.unit == "s"
    mine = [
        p for p in duration.histogram.data_points if attributes(p.attributes)[ATTR.CACHE_NAME] == cache_name
    ]
    assert sum(p.count for p in mine) == 4
    assert all(tuple(p.explicit_bounds) == DURATION_BUCKETS for p in mine)
    requests = metrics[METRICS.REQUESTS.name]
    assert requests.unit == METRICS.REQUESTS.unit
    assert requests.sum.is_monotonic
    l1_hits = [
        p.as_int
        for p in requests.sum.data_points
        if attributes(p.attributes)
        == {ATTR.CACHE_NAME: cache_name, ATTR.MODE: "async", ATTR.LEVEL: "l1", ATTR.RESULT: "hit"}
    ]
    assert l1_hits == [1]
