"""The load generator: closed-loop HTTP/1.1 keep-alive clients asking Zipf-popular traversals.

::

    python -m otel_cache_demo.loadgen --url http://127.0.0.1:8002 --concurrency 32 --duration 30
    python -m otel_cache_demo.loadgen --url http://127.0.0.1:8002 --path /healthz   # calibration

    result = run_load("http://127.0.0.1:8002", LoadSpec(concurrency=32, duration_s=30))
    result.qps, result.p99_s, result.hit_ratio, result.cpu_utilisation

**The load.** ``concurrency`` connections, each a closed loop: send a request, read the
whole response, send the next. Which query comes next is one seeded sequence
(:class:`~otel_cache_demo.catalogue.RequestStream`): the ``i``-th request sent is the
same in every run, so both modes get the same load shape and differ only in how far
they get. ``graphql_share`` of the requests go to ``POST /graphql`` (the ``traversal``
field), the rest to ``GET /traverse``; query ``k`` of the catalogue is asked with
probability proportional to ``1 / k**zipf_s``. With ``rate`` set the connections
share a schedule of ``rate`` requests a second instead (a request waits for its slot;
if every connection is busy, requests go late, counted in ``late``): open-loop pacing
bounded by ``concurrency``.

**The client.** Written on asyncio streams, not an HTTP library: each request is
encoded once, up front; a response is read as its head (status line and headers, up to
the blank line) and ``Content-Length`` bytes of body (chunked bodies are read too).
That costs the client tens of microseconds of CPU a request, a fraction of what a
one-worker FastAPI service spends answering it, so on a 2-core machine the client
needs well under one core while the service uses the other (``--path /healthz``
loads the service's cheapest route, to see the client's share at the highest rate).
uvloop is used when installed.

**What it reports** (:class:`LoadResult`): per second (the last one partial if the
duration is not a whole number of seconds), the requests completed, errors,
cache hits and misses (from the ``X-Cache`` header), latency p50/p99/max and the
client's own CPU; overall, QPS, p50/p90/p99/max, the hit ratio, errors by kind, and the
client's CPU time and utilisation (CPU seconds of the thread that ran the load over
wall seconds; 1.0 is one core, which it cannot exceed). ``client_saturated`` is True
when that is 0.9 or more: the numbers then measure the load generator, not the
service. Latency runs from writing the request to reading the last byte of the
response; requests still in flight when the time is up are dropped, not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from otel_cache_demo.catalogue import RequestStream, query_catalogue
from otel_cache_demo.graph import TraversalQuery

__all__ = ["GRAPHQL_DOCUMENT", "LoadResult", "LoadSpec", "SecondStats", "arun_load", "main", "run_load"]

T = TypeVar("T")

GRAPHQL_DOCUMENT = (
    "query Traverse($start: String!, $depth: Int!, $relations: [String!], $kinds: [String!], $limit: Int!) "
    "{ traversal(start: $start, depth: $depth, relations: $relations, kinds: $kinds, limit: $limit) "
    "{ start depth reached examined nodes { id kind hops score } edges { source target relation } } }"
)
SATURATED = 0.9  # client CPU utilisation from which the client, not the service, sets the pace
_LATE_S = 0.005


@dataclass(frozen=True)
class LoadSpec:
    """What load to send.

    Args:
        concurrency: connections, each with one request in flight at a time.
        duration_s: seconds to send for.
        rate: requests a second for all connections together; ``None``: closed loop, as fast
            as the service answers.
        zipf_s: the Zipf exponent of query popularity (0: uniform).
        n_queries: distinct queries in the catalogue.
        graphql_share: fraction of requests sent by GraphQL.
        seed: the catalogue's and the request sequence's seed (the service's ``--catalogue-seed``).
        timeout_s: a request unanswered this long is an error and its connection is reopened.
        path: send ``GET path`` on every request instead (``"/healthz"``: calibration).
    """

    concurrency: int = 32
    duration_s: float = 10.0
    rate: float | None = None
    zipf_s: float = 1.1
    n_queries: int = 2_000
    graphql_share: float = 0.2
    seed: int = 0
    timeout_s: float = 10.0
    path: str | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if not self.duration_s > 0:
            raise ValueError("duration_s must be > 0")
        if self.rate is not None and not self.rate > 0:
            raise ValueError("rate must be > 0 (or None for a closed loop)")
        if not 0.0 <= self.graphql_share <= 1.0:
            raise ValueError("graphql_share must be between 0 and 1")
        if self.n_queries < 1 or self.zipf_s < 0 or not self.timeout_s > 0:
            raise ValueError("n_queries >= 1, zipf_s >= 0 and timeout_s > 0 are required")


@dataclass(frozen=True)
class SecondStats:
    """One second of a run (``second`` counts from 0); latencies in seconds, ``None`` if no request."""

    second: int
    requests: int
    errors: int
    hits: int
    misses: int
    p50_s: float | None
    p99_s: float | None
    max_s: float | None
    client_cpu_s: float

    @property
    def hit_ratio(self) -> float | None:
        answered = self.hits + self.misses
        return self.hits / answered if answered else None


@dataclass(frozen=True)
class LoadResult:
    """What a run measured. ``requests`` counts successful responses; ``errors`` the rest."""

    base_url: str
    spec: LoadSpec
    duration_s: float
    requests: int
    errors: int
    hits: int
    misses: int
    qps: float
    p50_s: float | None
    p90_s: float | None
    p99_s: float | None
    max_s: float | None
    mean_s: float | None
    rest: dict[str, float | int | None]
    graphql: dict[str, float | int | None]
    errors_by_kind: dict[str, int]
    late: int
    cpu_s: float
    process_cpu_s: float
    per_second: tuple[SecondStats, ...] = field(repr=False)

    @property
    def hit_ratio(self) -> float | None:
        """Hits over responses that said (``X-Cache``); ``None`` if none did."""
        answered = self.hits + self.misses
        return self.hits / answered if answered else None

    @property
    def cpu_utilisation(self) -> float:
        """The client's CPU seconds over wall seconds (1.0: one core, its ceiling)."""
        return self.cpu_s / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def client_saturated(self) -> bool:
        """True when the client used 90 % of a core or more: it may have set the pace."""
        return self.cpu_utilisation >= SATURATED

    def summary(self) -> str:
        """A few lines for a terminal."""

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1e3:.2f} ms"

        hit_ratio = "-" if self.hit_ratio is None else f"{self.hit_ratio:.1%}"
        verdict = (
            "the client may be the bottleneck"
            if self.client_saturated
            else "the client was not the bottleneck"
        )
        return "\n".join(
            [
                f"{self.base_url}: {self.requests} responses in {self.duration_s:.1f} s = {self.qps:.0f}/s "
                f"({self.errors} errors, {self.late} late), concurrency {self.spec.concurrency}",
                f"latency p50 {ms(self.p50_s)}  p90 {ms(self.p90_s)}  p99 {ms(self.p99_s)}"
                f"  max {ms(self.max_s)}  hit ratio {hit_ratio}",
                f"client CPU {self.cpu_s:.2f} s = {self.cpu_utilisation:.0%} of one core: {verdict}",
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON data, with the derived figures."""
        data = asdict(self)
        data["hit_ratio"] = self.hit_ratio
        data["cpu_utilisation"] = self.cpu_utilisation
        data["client_saturated"] = self.client_saturated
        return data


# -- requests ---------------------------------------------------------------------------------


def _rest_target(prefix: str, query: TraversalQuery) -> str:
    params: list[tuple[str, str | int]] = [("start", query.start), ("depth", query.depth)]
    params += [("relations", relation) for relation in query.relations or ()]
    params += [("kinds", kind) for kind in query.kinds or ()]
    params.append(("limit", query.limit))
    return f"{prefix}/traverse?{urlencode(params)}"


def _graphql_body(query: TraversalQuery) -> bytes:
    variables = {
        "start": query.start,
        "depth": query.depth,
        "relations": query.relations,
        "kinds": query.kinds,
        "limit": query.limit,
    }
    return json.dumps({"query": GRAPHQL_DOCUMENT, "variables": variables}, separators=(",", ":")).encode()


def _get(target: str, host: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: otel-cache-loadgen\r\n\r\n".encode()


def _post(target: str, host: str, body: bytes) -> bytes:
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: otel-cache-loadgen\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def encode_requests(base_url: str, spec: LoadSpec) -> list[tuple[bytes, bytes]]:
    """For each catalogue query, its ``(REST, GraphQL)`` request bytes (one pair if ``spec.path``)."""
    parts = urlsplit(base_url)
    host = parts.netloc
    prefix = parts.path.rstrip("/")
    if spec.path is not None:
        request = _get(prefix + spec.path, host)
        return [(request, request)]
    return [
        (_get(_rest_target(prefix, query), host), _post(f"{prefix}/graphql", host, _graphql_body(query)))
        for query in query_catalogue(spec.n_queries, seed=spec.seed)
    ]


# -- the run ------------------------------------------------------------------------------------


class _ResponseError(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> tuple[int, int, bool]:
        """Send ``request``; returns ``(status, x-cache: 1 hit, 0 miss, -1 absent, keep-alive)``."""
        self.writer.write(request)
        reader = self.reader
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        status = int(head[9:12])
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            end = head.index(b"\r\n", at + 17)
            length = int(head[at + 17 : end])
            if length:
                await reader.readexactly(length)
        elif b"\r\ntransfer-encoding: chunked" in head:
            await _read_chunked(reader)
        else:
            raise _ResponseError("no_length")
        at = head.find(b"\r\nx-cache: ")
        cache = -1 if at < 0 else (1 if head.startswith(b"hit", at + 11) else 0)
        return status, cache, b"\r\nconnection: close" not in head

    def close(self) -> None:
        self.writer.transport.abort()


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return
        await reader.readexactly(size + 2)


class _Run:
    """The state of one run; every worker is a task on one loop, so no locks."""

    def __init__(
        self, base_url: str, spec: LoadSpec, on_second: Callable[[SecondStats], object] | None
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"base_url must be http://host[:port][/prefix], got {base_url!r}")
        self.base_url = base_url
        self.host = parts.hostname
        self.port = parts.port or 80
        self.spec = spec
        self.on_second = on_second
        self.requests = encode_requests(base_url, spec)
        n_queries = 1 if spec.path is not None else spec.n_queries
        share = 0.0 if spec.path is not None else spec.graphql_share
        self.stream = RequestStream(n_queries, zipf_s=spec.zipf_s, graphql_share=share, seed=spec.seed)
        seconds = math.ceil(spec.duration_s)
        self.latencies = [array("d") for _ in range(seconds)]
        self.errors = [0] * seconds
        self.hits = [0] * seconds
        self.misses = [0] * seconds
        self.cpu = [0.0] * seconds
        self.by_protocol: tuple[array[float], array[float]] = (array("d"), array("d"))
        self.error_kinds: Counter[str] = Counter()
        self.late = 0
        self.next_slot = 0
        self.t0 = 0.0
        self.deadline = 0.0
        self.in_flight: dict[int, tuple[float, _Connection]] = {}
        self.reported = 0

    async def connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        return _Connection(reader, writer)

    async def run(self) -> LoadResult:
        spec = self.spec
        connections = [await self.connect() for _ in range(spec.concurrency)]
        cpu0, process0 = time.thread_time(), time.process_time()
        self.t0 = t0 = time.perf_counter()
        self.deadline = t0 + spec.duration_s
        workers = [
            asyncio.create_task(self.worker(i, connection)) for i, connection in enumerate(connections)
        ]
        ticker = asyncio.create_task(self.tick(cpu0))
        try:
            await asyncio.sleep(max(0.0, self.deadline - time.perf_counter()))
        finally:
            for task in (*workers, ticker):
                task.cancel()
            await asyncio.gather(*workers, ticker, return_exceptions=True)
            for _, connection in self.in_flight.values():
                connection.close()
        elapsed = min(time.perf_counter(), self.deadline) - t0
        cpu = time.thread_time() - cpu0
        self.close_second(len(self.latencies) - 1, cpu)
        return self.result(elapsed, cpu, time.process_time() - process0)

    async def worker(self, wid: int, connection: _Connection | None) -> None:
        spec = self.spec
        timeout = spec.timeout_s
        requests = self.requests
        stream = self.stream
        latencies, hits, misses = self.latencies, self.hits, self.misses
        last = len(latencies) - 1
        perf_counter = time.perf_counter
        rate = spec.rate
        try:
            while True:
                if rate is not None:
                    slot_at = self.t0 + self.next_slot / rate
                    self.next_slot += 1
                    if slot_at >= self.deadline:
                        return
                    delay = slot_at - perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    elif delay < -_LATE_S:
                        self.late += 1
                index, graphql = stream.next()
                request = requests[index][graphql]
                if connection is None:
                    try:
                        connection = await self.connect()
                    except OSError:
                        self.fail(min(int(perf_counter() - self.t0), last), "connect")
                        await asyncio.sleep(0.05)  # a service that is down: do not spin
                        continue
                started = perf_counter()
                if started >= self.deadline:
                    return
                self.in_flight[wid] = (started + timeout, connection)
                try:
                    status, cache, keep_alive = await connection.exchange(request)
                except Exception as exc:  # any failure fails this request only
                    kind = "timeout" if perf_counter() >= started + timeout else _error_kind(exc)
                    self.fail(min(int(perf_counter() - self.t0), last), kind)
                    connection.close()
                    connection = None
                    continue
                finally:
                    self.in_flight.pop(wid, None)
                ended = perf_counter()
                second = min(int(ended - self.t0), last)
                if status >= 400:
                    self.fail(second, f"http_{status}")
                else:
                    latency = ended - started
                    latencies[second].append(latency)
                    self.by_protocol[graphql].append(latency)
                    if cache == 1:
                        hits[second] += 1
                    elif cache == 0:
                        misses[second] += 1
                if not keep_alive:
                    connection.close()
                    connection = None
        finally:
            if connection is not None:
                connection.close()

    def fail(self, second: int, kind: str) -> None:
        self.errors[second] += 1
        self.error_kinds[kind] += 1

    async def tick(self, cpu0: float) -> None:
        """Seal and report each second as it ends; time out stuck requests (checked 4 times a second)."""
        last = len(self.latencies) - 1
        while True:
            now = time.perf_counter()
            for deadline, connection in list(self.in_flight.values()):
                if now >= deadline:
                    connection.close()  # the worker's read fails, and it records a timeout
            boundary = self.t0 + self.reported + 1
            if now >= boundary and self.reported < last:
                self.close_second(self.reported, time.thread_time() - cpu0)
                continue
            await asyncio.sleep(max(0.001, min(boundary, now + 0.25) - now))

    def close_second(self, second: int, cpu_so_far: float) -> None:
        """Seal every second up to ``second``; the CPU since the last seal is charged to ``second``."""
        while self.reported <= second:
            current = self.reported
            if current == second:
                self.cpu[current] = max(0.0, cpu_so_far - sum(self.cpu[:current]))
            self.reported += 1
            if self.on_second is not None:
                try:
                    self.on_second(self.second_stats(current))
                except Exception as exc:  # a display must not end the run
                    print(f"loadgen: on_second failed: {exc!r}", file=sys.stderr)

    def second_stats(self, second: int) -> SecondStats:
        ordered = sorted(self.latencies[second])
        return SecondStats(
            second=second,
            requests=len(ordered),
            errors=self.errors[second],
            hits=self.hits[second],
            misses=self.misses[second],
            p50_s=_quantile(ordered, 0.5),
            p99_s=_quantile(ordered, 0.99),
            max_s=ordered[-1] if ordered else None,
            client_cpu_s=self.cpu[second],
        )

    def result(self, elapsed: float, cpu: float, process_cpu: float) -> LoadResult:
        ordered = sorted(value for second in self.latencies for value in second)
        requests = len(ordered)
        return LoadResult(
            base_url=self.base_url,
            spec=self.spec,
            duration_s=elapsed,
            requests=requests,
            errors=sum(self.errors),
            hits=sum(self.hits),
            misses=sum(self.misses),
            qps=requests / elapsed if elapsed > 0 else 0.0,
            p50_s=_quantile(ordered, 0.5),
            p90_s=_quantile(ordered, 0.9),
            p99_s=_quantile(ordered, 0.99),
            max_s=ordered[-1] if ordered else None,
            mean_s=sum(ordered) / requests if requests else None,
            rest=_protocol_stats(self.by_protocol[0]),
            graphql=_protocol_stats(self.by_protocol[1]),
            errors_by_kind=dict(self.error_kinds),
            late=self.late,
            cpu_s=cpu,
            process_cpu_s=process_cpu,
            per_second=tuple(self.second_stats(second) for second in range(len(self.latencies))),
        )


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, asyncio.IncompleteReadError | EOFError | ConnectionError):
        return "connection"
    if isinstance(exc, ValueError | asyncio.LimitOverrunError):
        return "protocol"
    return type(exc).__name__


def _quantile(ordered: Sequence[float], q: float) -> float | None:
    """The nearest-rank quantile of sorted values."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _protocol_stats(values: array[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    return {
        "requests": len(ordered),
        "p50_s": _quantile(ordered, 0.5),
        "p99_s": _quantile(ordered, 0.99),
    }


async def arun_load(
    base_url: str, spec: LoadSpec, *, on_second: Callable[[SecondStats], object] | None = None
) -> LoadResult:
    """Run ``spec`` against ``base_url`` on the running loop; ``on_second`` gets each second as it ends.

    The client CPU counted is that of the loop's thread: keep other busy work off it.

    Raises:
        OSError: the service does not accept the connections.
    """
    return await _Run(base_url, spec, on_second).run()


def run_load(
    base_url: str, spec: LoadSpec, *, on_second: Callable[[SecondStats], object] | None = None
) -> LoadResult:
    """:func:`arun_load` on a loop of its own (uvloop if installed), in this thread."""
    return _run(arun_load(base_url, spec, on_second=on_second))


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


# -- command line ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m otel_cache_demo.loadgen",
        description="Closed-loop load on the otel_cache demo service.",
    )
    parser.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8002")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--rate", type=float, default=None, help="requests/s (default: closed loop)")
    parser.add_argument("--zipf-s", type=float, default=1.1)
    parser.add_argument("--queries", type=int, default=2_000, help="distinct queries in the catalogue")
    parser.add_argument("--graphql-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument("--path", default=None, help="GET this path only (e.g. /healthz, for calibration)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no line per second")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m otel_cache_demo.loadgen``; exits 1 if any request failed."""
    args = _parser().parse_args(argv)
    spec = LoadSpec(
        concurrency=args.concurrency,
        duration_s=args.duration,
        rate=args.rate,
        zipf_s=args.zipf_s,
        n_queries=args.queries,
        graphql_share=args.graphql_share,
        seed=args.seed,
        timeout_s=args.timeout,
        path=args.path,
    )

    def show(second: SecondStats) -> None:
        p50 = "-" if second.p50_s is None else f"{second.p50_s * 1e3:.2f}"
        p99 = "-" if second.p99_s is None else f"{second.p99_s * 1e3:.2f}"
        ratio = "-" if second.hit_ratio is None else f"{second.hit_ratio:.0%}"
        print(
            f"{second.second:4d}s {second.requests:7d} req {second.errors:4d} err  p50 {p50:>7} ms  "
            f"p99 {p99:>7} ms  hit {ratio:>4}  client cpu {second.client_cpu_s:.0%}",
            file=sys.stderr,
        )

    result = run_load(args.url, spec, on_second=None if args.quiet or args.json else show)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.summary())
    return 1 if result.errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
