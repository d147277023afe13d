"""The load generator: against the real service under uvicorn, and against raw servers for the edge cases."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from otel_cache_demo.catalogue import query_catalogue
from otel_cache_demo.loadgen import (
    GRAPHQL_DOCUMENT,
    LoadSpec,
    SecondStats,
    arun_load,
    encode_requests,
    run_load,
)

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(params=["async", "sync"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    port = _free_port()
    log = tmp_path / "service.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    command = [sys.executable, "-m", "otel_cache_demo.service", "--mode", request.param, "--port", str(port)]
    command += ["--log-level", "info"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
    service = Service(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"the service exited with {process.returncode}:\n{service.output()}")
            try:
                if httpx.get(f"{service.url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the service did not answer within {STARTUP_TIMEOUT} s:\n{service.output()}")
            time.sleep(0.05)
        yield service
    finally:
        if process.poll() is None:
            process.kill()  # only if the test did not stop it (it failed first)
            process.wait(timeout=SHUTDOWN_TIMEOUT)


def test_a_run_against_the_service_is_sane(service: Service) -> None:
    seconds: list[SecondStats] = []
    result = run_load(service.url, LoadSpec(concurrency=16, duration_s=2.0), on_second=seconds.append)

    assert result.errors == 0, result.errors_by_kind
    assert result.requests > 0
    assert result.qps > 0
    assert result.qps == pytest.approx(result.requests / result.duration_s)
    assert 1.9 <= result.duration_s <= 2.1
    assert result.p50_s is not None
    assert result.p90_s is not None
    assert result.p99_s is not None
    assert result.max_s is not None
    assert 0 < result.p50_s <= result.p90_s <= result.p99_s <= result.max_s
    assert result.hits + result.misses == result.requests  # every answer says HIT or MISS
    assert result.hit_ratio is not None
    assert result.hit_ratio > 0.3
    assert result.rest["requests"]
    assert result.graphql["requests"]
    assert result.rest["requests"] + result.graphql["requests"] == result.requests
    # The client measured itself.
    assert 0 < result.cpu_s <= result.process_cpu_s + 0.05
    assert 0 < result.cpu_utilisation < 1.05
    assert result.client_saturated == (result.cpu_utilisation >= 0.9)
    assert "of one core" in result.summary()
    # One line a second, as each second ended, and the same in the result.
    assert [s.second for s in result.per_second] == [0, 1]
    assert seconds == list(result.per_second)
    assert sum(s.requests for s in result.per_second) == result.requests
    assert all(s.p50_s is not None and s.p99_s is not None and s.p50_s <= s.p99_s for s in result.per_second)
    assert sum(s.client_cpu_s for s in result.per_second) == pytest.approx(result.cpu_s, abs=0.02)
    json.dumps(result.to_dict())

    stats = httpx.get(f"{service.url}/stats").json()
    assert stats["cache"]["l1"]["hits"] >= result.hits - stats["cache"]["coalesced"]
    metrics = httpx.get(f"{service.url}/metrics").text
    assert "otel_cache_requests_total" in metrics
    assert "http_server_request_duration_seconds_count" in metrics  # the CLI opts in to the stable names

    service.process.send_signal(signal.SIGTERM)
    assert service.process.wait(timeout=SHUTDOWN_TIMEOUT) in (0, -signal.SIGTERM)
    output = service.output()
    assert "Application shutdown complete" in output
    assert "Traceback" not in output


def test_paced_runs_hold_the_rate() -> None:
    async def main() -> None:
        async with raw_server(
            _answer(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-cache: HIT\r\n\r\nok")
        ) as url:
            result = await arun_load(url, LoadSpec(concurrency=4, duration_s=1.0, rate=200, path="/x"))
        assert 180 <= result.requests <= 201
        assert result.hit_ratio == 1.0
        assert result.errors == 0

    asyncio.run(main())


# -- requests and responses -------------------------------------------------------------------


def test_requests_are_encoded_once_per_query() -> None:
    spec = LoadSpec(n_queries=50, seed=5)
    encoded = encode_requests("http://127.0.0.1:9/prefix", spec)
    queries = query_catalogue(50, seed=5)
    assert len(encoded) == 50
    for (rest, graphql), query in zip(encoded, queries, strict=True):
        request_line, _, _ = rest.partition(b"\r\n")
        method, target, version = request_line.decode().split(" ")
        assert (method, version) == ("GET", "HTTP/1.1")
        parts = urlsplit(target)
        assert parts.path == "/prefix/traverse"
        fields = parse_qs(parts.query)
        assert fields["start"] == [query.start]
        assert fields["depth"] == [str(query.depth)]
        assert fields.get("relations") == query.relations
        assert fields.get("kinds") == query.kinds
        assert b"\r\nHost: 127.0.0.1:9\r\n" in rest
        assert rest.endswith(b"\r\n\r\n")
        head, _, body = graphql.partition(b"\r\n\r\n")
        assert head.startswith(b"POST /prefix/graphql HTTP/1.1\r\n")
        assert f"Content-Length: {len(body)}".encode() in head
        document = json.loads(body)
        assert document["query"] == GRAPHQL_DOCUMENT
        assert document["variables"]["start"] == query.start
    assert encode_requests("http://h:1", LoadSpec(path="/healthz")) == [
        (b"GET /healthz HTTP/1.1\r\nHost: h:1\r\nUser-Agent: otel-cache-loadgen\r\n\r\n",) * 2
    ]


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def _answer(response: bytes, *, close: bool = False) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(response)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


@pytest.mark.parametrize(
    ("response", "close", "hits"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Cache: HIT\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            False,
            True,
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", True, False),
    ],
    ids=["chunked", "connection-close"],
)
def test_responses_the_service_does_not_send_are_read_too(response: bytes, close: bool, hits: bool) -> None:
    async def main() -> None:
        async with raw_server(_answer(response, close=close)) as url:
            result = await arun_load(url, LoadSpec(concurrency=2, duration_s=0.5, path="/"))
        assert result.errors == 0
        assert result.requests > 10
        assert result.hits == (result.requests if hits else 0)
        assert result.misses == 0

    asyncio.run(main())


def test_errors_are_counted_by_kind() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # never answers; ends when the client gives up
        finally:
            writer.close()

    async def main() -> None:
        async with raw_server(_answer(b"HTTP/1.1 503 No\r\ncontent-length: 0\r\n\r\n")) as url:
            failed = await arun_load(url, LoadSpec(concurrency=2, duration_s=0.5, path="/"))
        assert failed.requests == 0
        assert failed.errors > 10
        assert failed.errors_by_kind == {"http_503": failed.errors}
        assert failed.p50_s is None
        assert failed.hit_ratio is None
        async with raw_server(hang) as url:
            stuck = await arun_load(url, LoadSpec(concurrency=2, duration_s=1.5, timeout_s=0.3, path="/"))
        assert stuck.requests == 0
        assert stuck.errors_by_kind["timeout"] >= 2

    asyncio.run(main())


def test_bad_specs_are_refused() -> None:
    for kwargs in (
        {"concurrency": 0},
        {"duration_s": 0},
        {"rate": 0},
        {"graphql_share": 2},
        {"n_queries": 0},
    ):
        with pytest.raises(ValueError, match=r"must|required"):
            LoadSpec(**kwargs)
    with pytest.raises(ValueError, match="http://"):
        run_load("https://example.com", LoadSpec(duration_s=0.1))
