"""A user's own app, instrumented the documented way, fills every panel of the shipped dashboard.

What runs (all on 127.0.0.1, all stopped at the end)::

    this process --HTTP--> uvicorn tests.e2e.plain_app:app   under opentelemetry-instrument
                           (--metrics_exporter prometheus, OTEL_SEMCONV_STABILITY_OPT_IN=http,
                            OTEL_CACHE_REDIS_URL: the test's redis-server)
    another instance (this process) -- writes to the same Redis and namespace
    prometheus  --scrapes the app's exporter every second, job "shop" (a plain job: no labels)

``tests/e2e/plain_app.py`` has no telemetry code: what the dashboard needs comes from
``opentelemetry-instrument`` alone (FastAPI's HTTP metrics, otel_cache's instrumentor
through its entry point, the loop monitor the lifespan starts). The load makes every
event a panel shows happen, none left to chance: lookups that hit and miss both levels
(L1 holds 20 entries), a burst of callers of one slow query (single-flight waits: the
lock-wait panels), writes of another instance (invalidations and their lag), a blocking
endpoint (an event-loop block), Redis hung past the timeout (L2 errors, the breaker), the
listener's connection killed (an L1 flush), and the warmer's runs.

Then every Prometheus query of ``dashboards/otel-cache.json`` runs with Grafana's
variables at their defaults (All: ``.*``; a panel repeated by ``$mode`` with the app's
mode) over the whole run, and must give a finite value. ``NO_DATA_EXPECTED`` is where an
exemption would go, with its reason: none.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis as redis_py

from otel_cache import CacheConfig, MultiLevelCache
from otel_cache_demo.runner import ChildProcess, free_port
from tests.e2e.prometheus_harness import (
    REPO,
    prometheus_binary,
    prometheus_targets,
    start_prometheus,
    substitute,
)
from tests.support import RedisServer

pytestmark = pytest.mark.timeout(180)

JOB = "shop"
NAMESPACE = "shop"
SCRAPE_INTERVAL = "1s"
BURST = 16  # concurrent callers of one slow query
NO_DATA_EXPECTED: dict[str, str] = {}  # panel title -> why it may show no data: none


class App:
    """The plain app under ``opentelemetry-instrument``, with its Prometheus exporter's port."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, metrics_port: int, log: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.metrics_port = metrics_port
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def app(fresh_redis_server: RedisServer, tmp_path: Path) -> Iterator[App]:
    port, metrics_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "PYTHON"))}
    env |= {
        "PYTHONPATH": str(REPO),
        "OTEL_SERVICE_NAME": JOB,
        "OTEL_SEMCONV_STABILITY_OPT_IN": "http",
        "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
        "OTEL_CACHE_REDIS_URL": fresh_redis_server.url,
        "OTEL_CACHE_NAMESPACE": NAMESPACE,
        "OTEL_CACHE_L1_MAX_ENTRIES": "20",
    }
    command = [str(Path(sys.executable).parent / "opentelemetry-instrument")]
    command += ["--traces_exporter", "none", "--metrics_exporter", "prometheus", "--logs_exporter", "none"]
    command += [sys.executable, "-m", "uvicorn", "tests.e2e.plain_app:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-access-log"]
    log = tmp_path / "app.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
    started = App(process, port, metrics_port, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"the app exited:\n{started.output()}"
            try:
                if httpx.get(f"{started.url}/items/0", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the app did not answer:\n{started.output()}"
            time.sleep(0.1)
        yield started
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def _requests(client: httpx.AsyncClient, paths: list[str]) -> None:
    replies = await asyncio.gather(*(client.get(path) for path in paths))
    assert [reply.status_code for reply in replies] == [200] * len(paths), [r.text[:200] for r in replies]


async def _another_instance(redis_url: str, stop: asyncio.Event) -> None:
    """A second replica on the same Redis and namespace: its writes reach the app as invalidations."""
    config = CacheConfig(redis_url=redis_url, namespace=NAMESPACE, name="query-results")
    other: MultiLevelCache[str, int] = MultiLevelCache(config, async_mode=True)
    try:
        written = 0
        while not stop.is_set():
            await other.aput(f"another-instance-{written % 20}", written)
            written += 1
            await asyncio.sleep(0.05)
    finally:
        await other.aclose()


async def _drive(app: App, redis: RedisServer) -> None:
    stop = asyncio.Event()
    writer = asyncio.create_task(_another_instance(redis.url, stop))
    async with httpx.AsyncClient(
        base_url=app.url, timeout=30.0, limits=httpx.Limits(max_connections=32)
    ) as client:
        for round_ in range(2):  # twice: a series born in the first has a rate in the second
            for start in range(0, 120, 8):  # 60 keys per endpoint over an L1 of 20: both levels
                await _requests(client, [f"/items/{n % 60}" for n in range(start, start + 8)])
                await _requests(client, [f"/squares/{n % 60}" for n in range(start, start + 8)])
            await _requests(client, [f"/slow/{round_}"] * BURST)  # one load, the others wait
            await _requests(client, ["/block"])  # the loop blocked for 0.3 s
            redis.pause()  # calls time out (OTEL_CACHE_REDIS_TIMEOUT, 0.25 s): errors, the breaker opens
            try:
                await _requests(client, [f"/squares/{100 + round_ * 10 + n}" for n in range(8)])
            finally:
                redis.resume()
            with redis_py.Redis(host=redis.host, port=redis.port, socket_timeout=5.0) as admin:
                admin.client_kill_filter(_type="pubsub")  # the listener's connection: L1 flushed
            await asyncio.sleep(2.5)  # the warmer runs each second; a few scrapes
    stop.set()
    await writer


def test_a_plain_app_under_opentelemetry_instrument_fills_every_panel(
    tmp_path: Path,
    fresh_redis_server: RedisServer,
    app: App,
    children: list[ChildProcess],
    closers: list[Callable[[], None]],
) -> None:
    prometheus_binary()  # fail first when it is missing
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": "900ms"},
        "scrape_configs": [
            {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{app.metrics_port}"]}]}
        ],
    }
    prometheus = start_prometheus(tmp_path, config, 1, children, closers)
    start = time.time()
    asyncio.run(_drive(app, fresh_redis_server))
    time.sleep(2.5)  # the last scrapes
    at = time.time()
    window = f"{math.ceil(at - start) + 5}s"

    modes = {s["metric"]["otel_cache_mode"] for s in prometheus.query("otel_cache_requests_total", at)}
    assert modes == {"async"}  # the lifespan's default: the async manager's cache
    defaults = {name: ".*" for name in ("job", "instance", "cache", "mode", "service")}
    values = {**defaults, "__rate_interval": window, "__interval": SCRAPE_INTERVAL}
    missing, checked = [], 0
    for panel, target in prometheus_targets():
        variables = {**values, "mode": "async"} if panel.get("repeat") == "mode" else values
        expr = substitute(target["expr"], variables)
        series = prometheus.query(expr, at)
        checked += 1
        if any(math.isfinite(float(s["value"][1])) for s in series) or panel["title"] in NO_DATA_EXPECTED:
            continue
        missing.append(f"{panel['title']} [{target.get('refId')}]: {expr} -> {series}")
    assert checked >= 30
    assert not missing, "panels without data:\n" + "\n".join(missing)

    # The events were real, not the zero fallbacks: errors counted, a block seen, a flush, waits.
    def total(expr: str) -> float:
        return sum(float(s["value"][1]) for s in prometheus.query(expr, at))

    assert total('otel_cache_l2_errors_total{job="shop"}') > 0
    assert total('otel_cache_event_loop_blocks_total{job="shop"}') >= 2
    assert total('otel_cache_invalidation_l1_flushes_total{job="shop"}') >= 1
    assert total('otel_cache_lock_wait_duration_seconds_count{otel_cache_lock_type="single-flight"}') > 0
    assert total('otel_cache_invalidation_lag_seconds_count{job="shop"}') > 0
    assert total('otel_cache_warmer_runs_total{job="shop"}') >= 2
    assert "already instrumented" not in app.output()
