"""``examples/fastapi_app.py`` served by a real uvicorn process, with Redis behind, stopped cleanly."""

from __future__ import annotations

import os
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
    """A uvicorn child process and where it logs."""

    def __init__(self, process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def uvicorn_server(redis_url: str, tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    log = tmp_path / "uvicorn.log"
    env = {**os.environ, "OTEL_CACHE_REDIS_URL": redis_url, "OTEL_CACHE_NAMESPACE": "uvicorn-test"}
    with log.open("wb") as sink:
        command = [sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--no-access-log", "--lifespan", "on"]
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
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

    uvicorn_server.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (since 0.29): -SIGTERM.
    assert uvicorn_server.process.wait(timeout=SHUTDOWN_TIMEOUT) in (0, -signal.SIGTERM)
    output = uvicorn_server.output()
    assert "Application startup complete" in output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
    assert "ERROR" not in output
