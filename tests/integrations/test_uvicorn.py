"""``examples/fastapi_app.py`` served by a real uvicorn process, with Redis behind, stopped cleanly:
run plainly, and under ``opentelemetry-instrument`` (zero code: the app also calls
``instrument_app``, and nothing is instrumented twice) with the Prometheus exporter scraped."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 20.0
SHUTDOWN_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A uvicorn child process and where it logs; ``metrics_url``: its Prometheus exporter's
    (under ``opentelemetry-instrument``)."""

    def __init__(
        self, process: subprocess.Popen[bytes], base_url: str, log: Path, metrics_url: str | None
    ) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log
        self.metrics_url = metrics_url

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(params=["uvicorn", "opentelemetry-instrument"])
def uvicorn_server(request: pytest.FixtureRequest, redis_url: str, tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    log = tmp_path / "uvicorn.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env |= {"OTEL_CACHE_REDIS_URL": redis_url, "OTEL_CACHE_NAMESPACE": "uvicorn-test"}
    command = []
    metrics_url = None
    if request.param == "opentelemetry-instrument":
        metrics_port = _free_port()
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        env |= {
            "OTEL_SERVICE_NAME": "uvicorn-test",
            # The stable HTTP conventions (http.server.request.duration in s), as docs/fastapi.md
            # advises: the old ones' http_server_duration_milliseconds fails promtool's lint.
            "OTEL_SEMCONV_STABILITY_OPT_IN": "http",
            # Spans printed within 0.1 s: uvicorn ends by re-raising SIGTERM, so no exit-time flush.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
            "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
        }
        command += [str(Path(sys.executable).parent / "opentelemetry-instrument")]
        command += [
            "--traces_exporter",
            "console",
            "--metrics_exporter",
            "prometheus",
            "--logs_exporter",
            "none",
        ]
    with log.open("wb") as sink:
        command += [sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--no-access-log", "--lifespan", "on"]
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log, metrics_url)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.kill()  # only if the test did not stop it (it failed first)
            process.wait(timeout=SHUTDOWN_TIMEOUT)


def _wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"uvicorn exited with {server.process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"uvicorn did not answer within {STARTUP_TIMEOUT} s:\n{server.output()}")


def test_example_app_under_uvicorn(uvicorn_server: Server) -> None:
    with httpx.Client(base_url=uvicorn_server.base_url, timeout=5.0) as client:
        # The lifespan's warmer ran its first run at startup: the popular traversal is warm.
        deadline = time.monotonic() + 5
        while client.get("/stats").json()["traversals"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get("/stats").json() == {"traversals": 1}
        warm = client.get("/query", params={"start": "a", "depth": "3"})
        assert warm.status_code == 200
        assert client.get("/stats").json() == {"traversals": 1}  # served by the warmed entry

        miss = client.get("/traverse", params={"start": "a", "depth": "2"})
        hit = client.get("/traverse", params={"depth": "2", "start": "a"})
        assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
        assert miss.json() == hit.json()
        assert miss.headers["cache-control"] == "max-age=60"
        not_modified = client.get(
            "/traverse", params={"start": "a", "depth": "2"}, headers={"If-None-Match": miss.headers["etag"]}
        )
        assert not_modified.status_code == 304
        refreshed = client.get(
            "/traverse", params={"start": "a", "depth": "2"}, headers={"Cache-Control": "no-cache"}
        )
        assert refreshed.headers["x-cache"] == "MISS"

        sync = [client.get("/traverse/sync", params={"start": "c"}) for _ in range(2)]
        assert [r.headers["x-cache"] for r in sync] == ["MISS", "HIT"]
        assert client.get("/query/sync", params={"start": "e"}).status_code == 200
        assert client.get("/stats").json() == {"traversals": 5}
        if uvicorn_server.metrics_url is not None:
            _check_the_scrape(client.get(uvicorn_server.metrics_url).text)
            _wait_for_output(uvicorn_server, '"name": "otel_cache.l2 get"')  # the console exporter's

    uvicorn_server.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (since 0.29): -SIGTERM.
    assert uvicorn_server.process.wait(timeout=SHUTDOWN_TIMEOUT) in (0, -signal.SIGTERM)
    output = uvicorn_server.output()
    assert "Application startup complete" in output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
    assert "ERROR" not in output
    assert "already instrumented" not in output  # neither FastAPI nor redis-py twice
    if uvicorn_server.metrics_url is not None:  # the console exporter printed the spans
        assert '"name": "GET /traverse"' in output
        assert '"name": "otel_cache.l2 get"' in output


def _wait_for_output(server: Server, text: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while text not in server.output():
        assert time.monotonic() < deadline, f"not in the output within {STARTUP_TIMEOUT} s: {text}"
        time.sleep(0.05)


def _check_the_scrape(text: str) -> None:
    """The zero-code app's /metrics has the HTTP and cache metrics, and nothing promtool flags."""
    assert "otel_cache_requests_total{" in text
    assert 'otel_cache_name="query-results"' in text
    assert (
        "http_server_duration_milliseconds_bucket{" in text
        or "http_server_request_duration_seconds_bucket{" in text
    )
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not installed: apt-get install -y prometheus"
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30, check=False
    )
    assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")
