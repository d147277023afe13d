"""The HTTP part of :mod:`benchmarks.telemetry_overhead`: real uvicorn servers, a load from this process.

Each server is a child process (``python -m benchmarks.telemetry_http VARIANT PORT CPU ...``)
pinned to one CPU, running one uvicorn worker (uvloop and httptools when installed,
else asyncio and h11) with one FastAPI app whose only route is a ``@cached`` endpoint
on an L1-only ``MultiLevelCache``. The variants differ only in instrumentation::

    none                  no OpenTelemetry at all (for scale)
    fastapi               FastAPIInstrumentor.instrument_app(app, tracer_provider=tp, meter_provider=mp,
                                                             exclude_spans=["receive", "send"])
    fastapi+otel_cache    otel_cache.integrations.fastapi.instrument_app(app, tracer_provider=tp,
                                                                         meter_provider=mp)
                          = the same FastAPIInstrumentor call + OtelCacheInstrumentor().instrument(...)

``tp`` is an SDK ``TracerProvider`` with a ``BatchSpanProcessor`` into an exporter that
counts spans and drops them; ``mp`` an SDK ``MeterProvider`` whose
``PeriodicExportingMetricReader`` collects every ``metric_interval_s`` (1 s: sixty times
the SDK default, so collection costs are counted, not hidden) into an exporter that drops.

The load (:func:`otel_cache_demo.loadgen.run_load`, ``path=PATH``: every request is the
same ``GET``, so after the first one every request is a cache hit) runs in this process,
pinned to another CPU. Per round, the three servers are started fresh and warmed up
(``warmup_s`` each, not counted); then each is loaded for a short slice (``slice_s``) in
turn, ``slices`` times, the order reversed every other time. Short slices taken in turn
share the machine's conditions: a neighbour's burst of a few seconds falls on every
variant, not on one of them::

    round 1:  start 3 servers, warm each up
              slice 0: none, fastapi, fastapi+otel_cache
              slice 1: fastapi+otel_cache, fastapi, none
              ...
              side by side: all 3 loaded at once for together_s
              stop them (each reports the spans it exported)
    round 2:  fresh servers ...

Taking turns gives each variant's requests/s and latency with the CPU to itself (when
no neighbour takes it). *Side by side* answers the cost question under identical
conditions: the three servers, on the same CPU and each always with requests waiting,
are given their shares of it by the scheduler at millisecond grain, so a neighbour's
burst slows all of them at once; each server's CPU time per request then compares
cleanly (their requests/s and latencies are not the single-server figures).

Per slice: requests/s, p50 and p99 latency, the hits (``X-Cache``), the load
generator's CPU utilisation, the server process's CPU time (every thread, from
``/proc/<pid>/task/*/schedstat``) and how long its CPU was busy with anything else
(``/proc/stat``: other processes, interrupts). On a shared machine a neighbour that
lands on the server's CPU takes a share of it, and the server's requests/s and
latencies fall with that share, whatever the variant: compare slices taken side by side.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PATH", "VARIANTS", "HttpConfig", "run_http"]

_ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("none", "fastapi", "fastapi+otel_cache")
PATH = "/item/1"
_STARTUP_TIMEOUT_S = 60.0
_SHUTDOWN_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """How long to load the servers, and how hard (see the module's docstring)."""

    rounds: int
    slices: int
    slice_s: float
    together_s: float
    warmup_s: float
    concurrency: int
    metric_interval_s: float = 1.0


# -- the server (child process) -------------------------------------------------------------


def _build_app(variant: str, tracer_provider: Any, meter_provider: Any) -> Any:
    from fastapi import FastAPI
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    from otel_cache import CacheConfig, MultiLevelCache
    from otel_cache.integrations.fastapi import cached, instrument_app

    # An explicit L1-only cache: the managers' default would follow OTEL_CACHE_* (maybe a Redis).
    cache: MultiLevelCache[Any, Any] = MultiLevelCache(CacheConfig(name="bench-http"), async_mode=True)
    app = FastAPI()

    @app.get("/item/{item_id}", response_model=None)
    @cached(ttl=600, cache=cache)
    async def item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "name": f"item {item_id}", "tags": ["a", "b", "c"], "price": 12.5}

    if variant == "fastapi":
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            exclude_spans=["receive", "send"],
        )
    elif variant == "fastapi+otel_cache":
        instrument_app(app, tracer_provider=tracer_provider, meter_provider=meter_provider)
    elif variant != "none":
        raise ValueError(f"unknown variant {variant!r}")
    return app


class _QueueFull(logging.Handler):
    """Counts the BatchSpanProcessor's "Queue full" warnings (spans dropped before export)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Queue full" in record.getMessage():
            self.count += 1


@contextlib.contextmanager
def counting_queue_full() -> Iterator[_QueueFull]:
    """Count "Queue full" warnings of the SDK's batch processors while the block runs."""
    handler = _QueueFull()
    logger = logging.getLogger("opentelemetry.sdk")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def dropping_span_exporter() -> Any:
    """A ``SpanExporter`` that counts spans by instrumentation scope (``.by_scope``) and drops them."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class DropSpans(SpanExporter):
        def __init__(self) -> None:
            self.by_scope: collections.Counter[str] = collections.Counter()

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            for span in spans:
                scope = span.instrumentation_scope
                self.by_scope[scope.name if scope is not None else "?"] += 1
            return SpanExportResult.SUCCESS

    return DropSpans()


def _dropping_metric_exporter() -> Any:
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult

    class DropMetrics(MetricExporter):
        exports = 0

        def export(
            self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any
        ) -> MetricExportResult:
            self.exports += 1
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            return None

    return DropMetrics()


def serve(variant: str, port: int, cpu: int | None, metric_interval_s: float) -> dict[str, Any]:
    """Serve until SIGINT/SIGTERM; then flush the providers and return what they exported."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})  # first: the SDK's threads inherit it
    import uvicorn
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    spans = dropping_span_exporter()
    metrics = _dropping_metric_exporter()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    reader = PeriodicExportingMetricReader(metrics, export_interval_millis=metric_interval_s * 1e3)
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    app = _build_app(variant, tracer_provider, meter_provider)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    with counting_queue_full() as queue_full:
        # uvicorn re-raises the SIGINT it caught once it has shut down: that ends run() here.
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        tracer_provider.shutdown()  # exports what the batch processor still holds
        meter_provider.shutdown()
    return {
        "variant": variant,
        "spans_by_scope": dict(spans.by_scope),
        "metric_exports": metrics.exports,
        "queue_full_warnings": queue_full.count,
    }


# -- the client (this process) ----------------------------------------------------------------


@dataclass(slots=True)
class _Server:
    variant: str
    port: int
    process: subprocess.Popen[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pick_cpus() -> tuple[int | None, int | None]:
    """(server CPU, client CPU): two distinct CPUs this process may use, or (None, None)."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, None
    return available[0], available[1]


def _start(variant: str, cpu: int | None, config: HttpConfig) -> _Server:
    port = _free_port()
    command = [sys.executable, "-m", "benchmarks.telemetry_http", variant, str(port)]
    command += [str(-1 if cpu is None else cpu), str(config.metric_interval_s)]
    process = subprocess.Popen(command, cwd=_ROOT, stdout=subprocess.PIPE, text=True)
    return _Server(variant, port, process)


def _wait_ready(server: _Server) -> None:
    """Until ``GET PATH`` answers 200 (the first request: a miss that fills the cache)."""
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"server {server.variant} exited with {server.process.returncode}")
        try:
            with urllib.request.urlopen(server.url + PATH, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server {server.variant} not ready after {_STARTUP_TIMEOUT_S:.0f} s")
        time.sleep(0.05)


def _stop(server: _Server) -> dict[str, Any]:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
    try:
        out, _ = server.process.communicate(timeout=_SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.process.kill()
        out, _ = server.process.communicate()
    lines = out.strip().splitlines()
    report: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    report["returncode"] = server.process.returncode
    return report


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds every live thread of ``pid`` has run so far (Linux); None elsewhere.

    From ``/proc/<pid>/task/*/schedstat`` (nanoseconds), not ``/proc/<pid>/stat`` (10 ms
    ticks, too coarse for a one-second slice).
    """
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):  # a thread that just ended
                total += int((task / "schedstat").read_text().split()[0])
    except OSError:
        return None
    return total / 1e9


def cpu_busy_s(cpu: int | None) -> float | None:
    """Seconds CPU ``cpu`` has been busy (not idle, not waiting for I/O, not stolen) since boot; Linux."""
    if cpu is None:
        return None
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"cpu{cpu} "):
            fields = [int(field) for field in line.split()[1:9]]
            return (sum(fields) - fields[3] - fields[4] - fields[7]) / os.sysconf("SC_CLK_TCK")
    return None


def _warm(server: _Server, config: HttpConfig) -> int:
    from otel_cache_demo.loadgen import LoadSpec, run_load

    warm = run_load(
        server.url, LoadSpec(concurrency=config.concurrency, duration_s=config.warmup_s, path=PATH)
    )
    return warm.requests + warm.errors


def _slice(server: _Server, config: HttpConfig, round_: int, slice_: int, cpu: int | None) -> dict[str, Any]:
    from otel_cache_demo.loadgen import LoadSpec, run_load

    cpu0, busy0 = process_cpu_s(server.process.pid), cpu_busy_s(cpu)
    result = run_load(
        server.url, LoadSpec(concurrency=config.concurrency, duration_s=config.slice_s, path=PATH)
    )
    cpu1, busy1 = process_cpu_s(server.process.pid), cpu_busy_s(cpu)
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    # What else kept the server's CPU busy meanwhile: other processes, interrupts, softirqs.
    others = None if server_cpu is None or busy0 is None or busy1 is None else busy1 - busy0 - server_cpu
    return {
        "variant": server.variant,
        "round": round_,
        "slice": slice_,
        "requests": result.requests,
        "duration_s": result.duration_s,
        "qps": result.qps,
        "p50_ms": None if result.p50_s is None else result.p50_s * 1e3,
        "p99_ms": None if result.p99_s is None else result.p99_s * 1e3,
        "max_ms": None if result.max_s is None else result.max_s * 1e3,
        "errors": result.errors,
        "hits": result.hits,
        "misses": result.misses,
        "client_cpu": result.cpu_utilisation,
        "server_cpu_s": server_cpu,
        "others_on_server_cpu_s": others,
    }


def _together(servers: Sequence[_Server], config: HttpConfig, round_: int) -> list[dict[str, Any]]:
    """Load every server at once, each with its own ``concurrency`` connections, from one loop.

    The servers share one CPU, each always with work to do: the scheduler splits the CPU
    between them, and whatever else runs on it slows all of them alike. Each server's
    CPU time per request is then measured under the very same conditions.
    """
    import asyncio

    from otel_cache_demo.loadgen import LoadSpec, arun_load

    spec = LoadSpec(concurrency=config.concurrency, duration_s=config.together_s, path=PATH)

    async def load_all() -> list[Any]:
        return list(await asyncio.gather(*(arun_load(server.url, spec) for server in servers)))

    cpu0 = [process_cpu_s(server.process.pid) for server in servers]
    results = asyncio.run(load_all())
    cpu1 = [process_cpu_s(server.process.pid) for server in servers]
    rows = []
    for server, result, start, end in zip(servers, results, cpu0, cpu1, strict=True):
        rows.append(
            {
                "variant": server.variant,
                "round": round_,
                "requests": result.requests,
                "errors": result.errors,
                "hits": result.hits,
                "misses": result.misses,
                "duration_s": result.duration_s,
                "qps": result.qps,
                "client_cpu": result.cpu_utilisation,  # the one loop's thread: all loads together
                "server_cpu_s": None if start is None or end is None else end - start,
            }
        )
    return rows


@contextlib.contextmanager
def _pinned(cpu: int | None) -> Iterator[None]:
    """This thread on ``cpu`` while the block runs (the load generator's thread)."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def run_http(config: HttpConfig, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every round (fresh servers, warmed up, then slices interleaved); JSON-friendly raw results."""
    server_cpu, client_cpu = pick_cpus()
    slots: list[dict[str, Any]] = []
    together: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    warmup_requests: dict[str, int] = dict.fromkeys(VARIANTS, 0)
    with _pinned(client_cpu):
        for round_ in range(config.rounds):
            servers = [_start(variant, server_cpu, config) for variant in VARIANTS]
            try:
                for server in servers:
                    _wait_ready(server)
                for server in servers:
                    warmup_requests[server.variant] += 1 + _warm(server, config)  # + the readiness probe
                progress(f"http round {round_ + 1}/{config.rounds}: {config.slices} slices per variant")
                by_variant = {server.variant: server for server in servers}
                for slice_ in range(config.slices):
                    order = VARIANTS if slice_ % 2 == 0 else VARIANTS[::-1]
                    for variant in order:
                        slots.append(_slice(by_variant[variant], config, round_, slice_, server_cpu))
                progress(f"http round {round_ + 1}/{config.rounds}: the servers side by side")
                together.extend(_together(servers, config, round_))
            finally:
                for server in servers:
                    report = _stop(server)
                    report["round"] = round_
                    reports.append(report)
    return {
        "slots": slots,
        "together": together,
        "servers": reports,
        "warmup_requests": warmup_requests,
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
        "config": {
            "rounds": config.rounds,
            "slices": config.slices,
            "slice_s": config.slice_s,
            "together_s": config.together_s,
            "warmup_s": config.warmup_s,
            "concurrency": config.concurrency,
            "metric_interval_s": config.metric_interval_s,
            "path": PATH,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """The server child: ``python -m benchmarks.telemetry_http VARIANT PORT CPU METRIC_INTERVAL_S``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.telemetry_http", description=__doc__)
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("port", type=int)
    parser.add_argument("cpu", type=int, help="CPU to pin the server to; -1: none")
    parser.add_argument("metric_interval_s", type=float)
    args = parser.parse_args(argv)
    report = serve(args.variant, args.port, None if args.cpu < 0 else args.cpu, args.metric_interval_s)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
