"""Several uvicorn workers, metrics by OTLP: each worker's series are its own, and none goes back.

Scraping ``/metrics`` of an app run with ``uvicorn --workers N`` reads one worker per
scrape (each has its own counters), so a counter seems to go backwards whenever the
scrape lands on another worker. The documented way (``docs/fastapi.md``) is OTLP: every
worker is a process with its own ``service.instance.id`` (the SDK makes one per process),
its series carry it (a collector's Prometheus exporter turns it into ``instance``), and
each series is cumulative in its own process.

What runs: ``tests/e2e/plain_app.py`` under ``opentelemetry-instrument --metrics_exporter
otlp`` and ``uvicorn --workers 2``, exporting every 0.5 s to an OTLP/HTTP endpoint in this
process that records each export as it arrives (a stand-in for the OpenTelemetry Collector,
which cannot be installed here from the package registries: it decodes the real exporter's
protobuf requests, nothing more).
"""

from __future__ import annotations

import gzip
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_cache_demo.runner import free_port
from tests.e2e.prometheus_harness import REPO
from tests.support import RedisServer

pytestmark = pytest.mark.timeout(120)

WORKERS = 2
REQUESTS = 120
HTTP_DURATION = "http.server.request.duration"
CACHE_REQUESTS = "otel_cache.requests"

Key = tuple[str, str, tuple[tuple[str, str], ...]]  # (service.instance.id, metric, point attributes)


class OtlpRecorder:
    """Every cumulative point exported to it, in arrival order, per (instance, metric, attributes)."""

    def __init__(self) -> None:
        self.points: dict[Key, list[float]] = {}
        self.temporalities: set[int] = set()
        self.lock = threading.Lock()

    def record(self, body: bytes) -> None:
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        with self.lock:
            for resource_metrics in request.resource_metrics:
                resource = {a.key: a.value.string_value for a in resource_metrics.resource.attributes}
                instance = resource["service.instance.id"]
                for scope in resource_metrics.scope_metrics:
                    for metric in scope.metrics:
                        self._record_metric(instance, metric)

    def _record_metric(self, instance: str, metric: Any) -> None:
        kind = metric.WhichOneof("data")
        if kind == "histogram":
            self.temporalities.add(metric.histogram.aggregation_temporality)
            points = [(p.attributes, float(p.count)) for p in metric.histogram.data_points]
        elif kind == "sum" and metric.sum.is_monotonic:
            self.temporalities.add(metric.sum.aggregation_temporality)
            points = [(p.attributes, p.as_int or p.as_double) for p in metric.sum.data_points]
        else:
            return
        for attributes, value in points:
            labels = tuple(sorted((a.key, _text(a.value)) for a in attributes))
            self.points.setdefault((instance, metric.name, labels), []).append(float(value))

    def instances(self) -> set[str]:
        with self.lock:
            return {instance for instance, _, _ in self.points}

    def latest_total(self, metric: str, **match: str) -> float:
        """The sum over instances of each series' last value."""
        with self.lock:
            return sum(
                values[-1]
                for (_, name, labels), values in self.points.items()
                if name == metric and set(match.items()) <= set(labels)
            )


def _text(value: Any) -> str:
    kind = value.WhichOneof("value")
    return str(getattr(value, kind)) if kind else ""


@pytest.fixture
def recorder() -> Iterator[tuple[OtlpRecorder, int]]:
    recorded = OtlpRecorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path == "/v1/metrics":
                recorded.record(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorded, int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_two_workers_export_their_own_series_and_no_counter_goes_back(
    recorder: tuple[OtlpRecorder, int], fresh_redis_server: RedisServer, tmp_path: Path
) -> None:
    recorded, otlp_port = recorder
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "PYTHON"))}
    env |= {
        "PYTHONPATH": str(REPO),
        "OTEL_SERVICE_NAME": "shop",
        "OTEL_SEMCONV_STABILITY_OPT_IN": "http",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://127.0.0.1:{otlp_port}/v1/metrics",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_CACHE_REDIS_URL": fresh_redis_server.url,
        "OTEL_CACHE_NAMESPACE": "workers",
    }
    command = [str(Path(sys.executable).parent / "opentelemetry-instrument")]
    command += ["--traces_exporter", "none", "--metrics_exporter", "otlp", "--logs_exporter", "none"]
    command += [sys.executable, "-m", "uvicorn", "tests.e2e.plain_app:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(WORKERS), "--no-access-log"]
    log = tmp_path / "app.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while len(recorded.instances()) < WORKERS:  # every worker exports, busy or not
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"exports from {recorded.instances()}:\n{log.read_text()}"
            time.sleep(0.1)
        for n in range(REQUESTS):  # a connection each: the workers share the listening socket
            reply = httpx.get(f"http://127.0.0.1:{port}/items/{n % 30}", timeout=10.0)
            assert reply.status_code == 200, reply.text
        deadline = time.monotonic() + 30
        route = {"http.route": "/items/{n}"}
        while recorded.latest_total(HTTP_DURATION, **route) < REQUESTS:
            assert time.monotonic() < deadline, recorded.latest_total(HTTP_DURATION, **route)
            time.sleep(0.1)
        time.sleep(1.5)  # a few more exports of the same counts
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    assert len(recorded.instances()) == WORKERS  # one service.instance.id per worker
    assert recorded.temporalities == {2}  # AGGREGATION_TEMPORALITY_CUMULATIVE
    assert recorded.latest_total(HTTP_DURATION, **route) == REQUESTS  # every request, counted once
    assert recorded.latest_total(CACHE_REQUESTS, **{"otel_cache.level": "l1"}) >= REQUESTS
    backwards = {
        key: values
        for key, values in recorded.points.items()
        if any(later < earlier for earlier, later in itertools.pairwise(values))
    }
    assert backwards == {}
    assert "already instrumented" not in log.read_text()
