"""``otel-cache demo``: both designs under the same load, on the same CPU budget, side by side.

::

    options = DemoOptions(duration_s=90, rounds=3, redis="embedded", rtt_ms=1.0)
    result, folder = run_demo(options, view=LogView())   # DemoResult, reports/demo-<UTC time>/

What runs (each child in its own process group, killed by the kernel if this process dies)::

    this process, pinned to the load CPU                 pinned to the service CPU
    ---------------------------------------              -------------------------
    main thread: schedule, /metrics scrapes, view        service --mode sync   (idle or loaded)
    load thread: otel_cache_demo.loadgen  ---- HTTP -->  service --mode async  (idle or loaded)
                                                               |        |
    [redis-server, pinned to the load CPU] <--- [delay proxy, load CPU] (--rtt-ms)

**Same CPU budget.** Both services are pinned to one CPU (``sched_setaffinity``: the
sync mode's threadpool and warmer thread included), the load generator, this process,
Redis and the delay proxy to another, so a mode gets one core whatever it does with it,
and the client never takes CPU from the service it measures. Both services run the
whole time; one is loaded at a time (an idle service costs its event-loop monitor's 20
wake-ups a second and a warmer run every ``ttl / 2``).

**Schedule.** A warm-up round per mode (not counted: L1 fills, Redis fills), then
measured rounds, strictly alternating: sync, async, sync, async... Both modes see the
same machine, and each round of a mode follows exactly one round of the other, so both
modes' caches have aged by the same gap when their round starts. That matters: entries
live ``ttl`` (60 s) in L1 and Redis, and an earlier schedule (pairs whose first mode
alternated: sync async, async sync...) left a mode idle for 0 or 60 s between rounds;
after 60 s idle a mode's L2 hit ratio was 37-45 % instead of 92-100 %, and the mode
with more such rounds lost QPS for it. The warm-up lasts a round by default, so the
first measured round of each mode follows the same gap too.

**What is measured** each second of load: the load generator's responses, errors,
p50/p99 and CPU; the loaded service's ``/metrics`` (loop lag, lock waits, hit ratios,
evictions) and CPU time (``/proc/<pid>/stat``). Per round: the same over the round,
and how busy each CPU was (``/proc/stat``). Over the run: the share of the CPUs other
processes took. :mod:`otel_cache_demo.report` turns that into figures.

**Redis.** ``redis="none"``: L1 only. ``"embedded"``: a ``redis-server`` of the run's
own on a free port (no persistence). ``redis_url``: that server; the sync service
uses the URL's database ``N``, the async service ``N + 1``, so neither reads what the
other computed (nothing is flushed). ``rtt_ms``: a :mod:`~otel_cache_demo.delay_proxy`
between the services and Redis (an embedded Redis if none is given).

**Stopping.** Ctrl-C or SIGTERM (:class:`Interrupted`) stops the load, then every
child process group (SIGTERM, SIGKILL after a grace period), with further signals
ignored until that is done.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import datetime
import http.client
import importlib.metadata
import os
import platform
import queue
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from prometheus_client.parser import text_string_to_metric_families

from otel_cache.telemetry.names import METRICS
from otel_cache_demo.loadgen import LoadResult, LoadSpec, SecondStats, arun_load
from otel_cache_demo.report import (
    MODES,
    DemoResult,
    RoundResult,
    SecondSample,
    ServerSnapshot,
    ServerWindow,
    write_report,
)

__all__ = [
    "SMOKE",
    "ChildProcess",
    "DemoOptions",
    "DemoView",
    "Interrupted",
    "Phase",
    "Status",
    "cpu_pins",
    "free_port",
    "machine_facts",
    "run_demo",
    "scrape",
    "start_delay_proxy",
    "start_redis",
    "start_service",
]

T = TypeVar("T")
HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 90.0  # the service builds its graph at start: seconds on a slow VM
STOP_GRACE_S = 5.0
SCRAPE_TIMEOUT_S = 5.0
_SERVICE_DEFAULTS = {"ttl": 60.0, "warm_keys": 100, "l1_max_entries": 500, "threads": 40}


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: the run stopped early (exit status 130)."""


# -- options and plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo (the command line's options).

    ``duration_s`` is each mode's measured time, split in ``rounds`` rounds; ``warmup_s``
    is each mode's warm-up before it (None: a round's length).
    """

    duration_s: float = 90.0
    rounds: int = 3
    warmup_s: float | None = None
    concurrency: int = 32
    rate: float | None = None  # requests/s for each mode (paced); None: closed loop
    graphql_share: float = LoadSpec.graphql_share
    redis: Literal["none", "embedded"] = "none"
    redis_url: str | None = None
    rtt_ms: float | None = None
    out: Path | None = None
    seed: int = 0
    l1_max_entries: int = 500  # each service's L1 bound (the service's default)
    pin: bool = True
    service_cpu: int | None = None  # None: the first CPU this process may use
    load_cpu: int | None = None  # None: the second
    command: str = "otel-cache demo"

    def __post_init__(self) -> None:
        if not self.duration_s > 0 or self.rounds < 1 or (self.warmup_s is not None and self.warmup_s < 0):
            raise ValueError("duration_s > 0, rounds >= 1 and warmup_s >= 0 are required")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.l1_max_entries < 1:
            raise ValueError("l1_max_entries must be >= 1")
        if self.rate is not None and not self.rate > 0:
            raise ValueError("rate must be > 0")
        if not 0.0 <= self.graphql_share <= 1.0:
            raise ValueError("graphql_share must be between 0 and 1")
        if self.rtt_ms is not None and self.rtt_ms < 0:
            raise ValueError("rtt_ms must be >= 0")
        if self.redis not in ("none", "embedded"):
            raise ValueError("redis must be 'none' or 'embedded'")

    @property
    def round_s(self) -> float:
        return self.duration_s / self.rounds

    @property
    def warmup(self) -> float:
        """Each mode's warm-up in seconds."""
        return self.round_s if self.warmup_s is None else self.warmup_s

    @property
    def uses_redis(self) -> bool:
        return self.redis_url is not None or self.redis == "embedded" or self.rtt_ms is not None

    def phases(self) -> list[Phase]:
        """The schedule: a warm-up per mode, then rounds strictly alternating, sync first."""
        phases = [Phase(mode, "warmup", None, None, self.warmup) for mode in MODES if self.warmup > 0]
        for index in range(self.rounds):
            for offset, mode in enumerate(MODES):
                phases.append(Phase(mode, "round", index, 2 * index + offset, self.round_s))
        return phases


# --smoke: about 20 s in all (a few seconds of start-up, 2 x (3 + 6) s of load).
SMOKE = DemoOptions(duration_s=6.0, rounds=2)


@dataclass(frozen=True)
class Phase:
    """One stretch of load on one mode."""

    mode: str
    kind: Literal["warmup", "round"]
    round: int | None  # the mode's round, 0-based (None: warm-up)
    order: int | None  # among all measured rounds, 0-based
    seconds: float

    @property
    def label(self) -> str:
        return f"{self.mode} warm-up" if self.round is None else f"{self.mode} round {self.round + 1}"


@dataclass
class Status:
    """What a view shows: the plan, where the run is, and what it measured so far."""

    title: str
    details: list[str]
    phases: list[Phase]
    index: int = -1  # the current phase (-1: starting)
    phase_elapsed_s: float = 0.0
    samples: list[SecondSample] = field(default_factory=list)
    rounds: list[RoundResult] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return sum(p.seconds for p in self.phases)

    @property
    def done_s(self) -> float:
        if self.index < 0:
            return 0.0
        if self.index >= len(self.phases):
            return self.total_s
        done = sum(p.seconds for p in self.phases[: self.index])
        return done + min(self.phase_elapsed_s, self.phases[self.index].seconds)

    @property
    def phase(self) -> Phase | None:
        return self.phases[self.index] if 0 <= self.index < len(self.phases) else None


class DemoView(Protocol):
    """Where a run reports (``otel_cache_demo.live``: a rich live view, or plain log lines)."""

    def start(self, status: Status) -> None: ...
    def update(self, status: Status) -> None: ...
    def log(self, message: str) -> None: ...
    def stop(self) -> None: ...


# -- processes ----------------------------------------------------------------------------------


def free_port(host: str = HOST) -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _load_prctl() -> Callable[..., int] | None:
    # Loaded here, in the parent: loading a library between fork and exec is not safe.
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _preexec(cpu: int | None, mask: set[int | signal.Signals]) -> Callable[[], None]:
    """Between fork and exec: die with this process (SIGKILL), run on ``cpu``, restore the signal mask."""
    prctl = _PRCTL

    def hook() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    return hook


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class ChildProcess:
    """A child in its own process group, output to ``log``; :meth:`stop` ends the whole group.

    The kernel SIGKILLs the child when the *thread* that started it ends
    (``PR_SET_PDEATHSIG``), so start children from a thread that outlives them (the main one).
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log: Path,
        *,
        cpu: int | None,
        on_start: Callable[[ChildProcess], object] | None = None,
        **popen: Any,
    ) -> None:
        self.name = name
        self.log = log
        self.command = list(command)
        log.parent.mkdir(parents=True, exist_ok=True)
        stdout = popen.pop("stdout", None)
        # SIGINT/SIGTERM wait (blocked) until on_start has the child: an interruption between
        # the fork and the registration would leave a child that nobody stops.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            with log.open("ab") as sink:
                self.popen: subprocess.Popen[bytes] = subprocess.Popen(
                    self.command,
                    stdout=sink if stdout is None else stdout,
                    stderr=sink,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # a group of its own: Ctrl-C reaches us, and we stop it
                    preexec_fn=_preexec(cpu, mask),
                    **popen,
                )
            self.pid = self.popen.pid
            if on_start is not None:
                on_start(self)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def output(self, tail: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def cpu_s(self) -> float | None:
        return process_cpu_s(self.pid)

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM to the group, SIGKILL after ``grace_s``; waits for the child. Idempotent."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace_s)
        # The leader may be gone while others of its group live on: SIGKILL the group anyway.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace_s)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def _wait_until(check: Callable[[], bool], child: ChildProcess, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if not child.running:
            raise RuntimeError(f"{child.name} exited with {child.popen.returncode}:\n{child.output()}")
        if check():
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{child.name} did not {what} within {timeout_s:.0f} s:\n{child.output()}")
        time.sleep(0.05)


def _http_get(port: int, path: str, timeout_s: float = SCRAPE_TIMEOUT_S) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _answers(port: int, path: str) -> bool:
    try:
        return _http_get(port, path, timeout_s=1.0)[0] == 200
    except OSError:
        return False


@dataclass
class Service:
    """A running demo service."""

    mode: str
    port: int
    child: ChildProcess
    redis_url: str | None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> Service:
        """Wait until ``/healthz`` answers; stops the child and raises RuntimeError if it does not."""
        try:
            _wait_until(lambda: _answers(self.port, "/healthz"), self.child, timeout_s, "answer /healthz")
        except BaseException:
            self.child.stop()
            raise
        return self


def _service_environment() -> dict[str, str]:
    # No OTEL_* from the caller: OTEL_CACHE_REDIS_URL would put Redis behind an "L1 only" run,
    # an OTLP endpoint would add exporting costs; the run states its settings itself.
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def start_service(
    mode: str,
    *,
    log: Path,
    redis_url: str | None = None,
    cpu: int | None = None,
    port: int | None = None,
    seed: int = 0,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout_s: float = STARTUP_TIMEOUT_S,
    on_start: Callable[[ChildProcess], object] | None = None,
    wait: bool = True,
) -> Service:
    """Start ``python -m otel_cache_demo.service --mode MODE`` and wait until ``/healthz`` answers.

    With ``wait=False`` it returns at once: call :meth:`Service.wait_ready` (several services
    then start side by side).
    """
    port = port or free_port()
    command = [sys.executable, "-m", "otel_cache_demo.service", "--mode", mode, "--host", HOST]
    command += ["--port", str(port), "--catalogue-seed", str(seed), "--log-level", "warning"]
    if redis_url is not None:
        command += ["--redis-url", redis_url]
    command += list(extra_args)
    child = ChildProcess(
        f"service-{mode}",
        command,
        log,
        cpu=cpu,
        env={**_service_environment(), **(env or {})},
        cwd=REPO_ROOT,
        on_start=on_start,
    )
    service = Service(mode, port, child, redis_url)
    return service.wait_ready(timeout_s) if wait else service


def _redis_ping(host: str, port: int, timeout_s: float = 1.0) -> float | None:
    """Seconds for one PING on a new connection (connect excluded); None if no PONG."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            started = time.perf_counter()
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
            elapsed = time.perf_counter() - started
    except OSError:
        return None
    return elapsed if reply.startswith((b"+PONG", b"-NOAUTH")) else None


def redis_rtt_s(host: str, port: int, pings: int = 200) -> float | None:
    """The median time of ``pings`` PINGs on one connection; None if it does not answer."""
    try:
        with socket.create_connection((host, port), timeout=2.0) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            times = []
            for _ in range(pings):
                started = time.perf_counter()
                sock.sendall(b"PING\r\n")
                if not sock.recv(64):
                    return None
                times.append(time.perf_counter() - started)
    except OSError:
        return None
    times.sort()
    return times[len(times) // 2]


@dataclass
class Redis:
    """A redis-server of the run's own."""

    port: int
    child: ChildProcess
    version: str

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


def start_redis(
    *,
    log: Path,
    cpu: int | None = None,
    workdir: Path | None = None,
    on_start: Callable[[ChildProcess], object] | None = None,
) -> Redis:
    """Start ``redis-server`` on a free port (no persistence) and wait for PONG.

    Raises:
        FileNotFoundError: no ``redis-server`` on the PATH.
    """
    executable = shutil.which("redis-server")
    if executable is None:
        raise FileNotFoundError("redis-server is not on the PATH (Debian: apt-get install redis-server)")
    version = subprocess.run([executable, "--version"], capture_output=True, text=True, check=False).stdout
    port = free_port()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="otel-cache-demo-redis-"))
    command = [executable, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    command += ["--dir", str(workdir), "--protected-mode", "no"]
    child = ChildProcess("redis-server", command, log, cpu=cpu, on_start=on_start)
    try:
        _wait_until(lambda: _redis_ping(HOST, port) is not None, child, 10.0, "answer PING")
    except BaseException:
        child.stop()
        raise
    return Redis(port, child, version.strip())


@dataclass
class Proxy:
    """A running delay proxy."""

    port: int
    rtt_ms: float
    child: ChildProcess


def start_delay_proxy(
    target_host: str,
    target_port: int,
    rtt_ms: float,
    *,
    log: Path,
    cpu: int | None = None,
    on_start: Callable[[ChildProcess], object] | None = None,
) -> Proxy:
    """Start ``python -m otel_cache_demo.delay_proxy`` on a free port; returns once it listens."""
    command = [sys.executable, "-m", "otel_cache_demo.delay_proxy"]
    command += ["--target", f"{target_host}:{target_port}", "--rtt-ms", str(rtt_ms)]
    child = ChildProcess(
        "delay-proxy",
        command,
        log,
        cpu=cpu,
        on_start=on_start,
        stdout=subprocess.PIPE,
        env=_service_environment(),
        cwd=REPO_ROOT,
    )
    try:
        assert child.popen.stdout is not None
        ready, _, _ = select.select([child.popen.stdout], [], [], 20.0)
        line = child.popen.stdout.readline().decode() if ready else ""
        if not line.startswith("listening "):
            raise RuntimeError(f"the delay proxy did not start:\n{child.output()}")
    except BaseException:
        child.stop()
        raise
    return Proxy(int(line.rsplit(":", 1)[1]), rtt_ms, child)


def _with_address(url: str, host: str, port: int, db: int | None = None) -> str:
    """``url`` pointed at ``host:port`` (credentials kept), and at database ``db`` if given."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@{host}:{port}" if auth else f"{host}:{port}"
    path = parts.path if db is None else f"/{db}"
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def _database(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def _mode_urls(url: str) -> dict[str, str]:
    """The sync service uses the URL's database N, the async one N + 1."""
    parts = urlsplit(url)
    db = _database(url)
    host, port = parts.hostname or HOST, parts.port or 6379
    return {"sync": _with_address(url, host, port, db), "async": _with_address(url, host, port, db + 1)}


# -- CPU accounting -----------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads), from ``/proc``; None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


@dataclass(frozen=True)
class CpuTimes:
    """``/proc/stat``: busy and total ticks, per CPU and for the machine."""

    busy: dict[str, float]
    total: dict[str, float]

    @classmethod
    def read(cls) -> CpuTimes | None:
        try:
            lines = Path("/proc/stat").read_text().splitlines()
        except OSError:
            return None
        busy, total = {}, {}
        for line in lines:
            if not line.startswith("cpu"):
                continue
            name, *values = line.split()
            ticks = [float(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
            total[name] = sum(ticks)
            busy[name] = total[name] - ticks[3] - ticks[4]
        return cls(busy, total)

    def busy_since(self, before: CpuTimes, cpu: str) -> float | None:
        """The share of ``cpu`` ("cpu0", or "cpu" for all) that was busy since ``before``."""
        if cpu not in self.total or cpu not in before.total:
            return None
        spent = self.total[cpu] - before.total[cpu]
        return (self.busy[cpu] - before.busy[cpu]) / spent if spent > 0 else None


def cpu_pins(options: DemoOptions) -> tuple[int | None, int | None, str]:
    """(service CPU, load CPU, a sentence for the report): two distinct CPUs, or none."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = []
    if not options.pin:
        return None, None, "not pinned (--no-pin): the services and the load generator share every CPU."
    if len(allowed) < 2:
        count = len(allowed) or "an unknown number of"
        return None, None, f"not pinned: this process may use {count} CPU(s)."
    service = options.service_cpu if options.service_cpu is not None else allowed[0]
    load = options.load_cpu if options.load_cpu is not None else next(c for c in allowed if c != service)
    if service == load or service not in allowed or load not in allowed:
        raise ValueError(f"service CPU {service} and load CPU {load} must be two of {allowed}")
    text = (
        f"both services pinned to CPU {service} (sched_setaffinity; every thread, the sync mode's "
        f"threadpool and warmer included); the load generator, the runner, Redis and the delay proxy "
        f"pinned to CPU {load}. Each mode gets one core."
    )
    return service, load, text


# -- scraping -----------------------------------------------------------------------------------

_LAG = f"{METRICS.LOOP_LAG.prometheus_name}_bucket"
_LAG_MAX = METRICS.LOOP_LAG_MAX.prometheus_name
_LOCK_WAIT = f"{METRICS.LOCK_WAIT.prometheus_name}_bucket"
_REQUESTS = METRICS.REQUESTS.prometheus_name
_EVICTIONS = METRICS.EVICTIONS.prometheus_name
_L2_ERRORS = METRICS.L2_ERRORS.prometheus_name
_L2_DURATION = f"{METRICS.OPERATION_DURATION.prometheus_name}_bucket"


def parse_metrics(text: str, *, at: float, cpu_s: float) -> ServerSnapshot:
    """The figures the demo uses from one ``/metrics`` text (summed over the other labels)."""
    lag: dict[float, float] = {}
    lock_wait: dict[float, float] = {}
    flight_wait: dict[float, float] = {}
    l2_get: dict[float, float] = {}
    counters = {"l1_hit": 0.0, "l1_miss": 0.0, "l2_hit": 0.0, "l2_miss": 0.0}
    evictions = l2_errors = 0.0
    lag_max: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            if name in (_LAG, _LOCK_WAIT):
                if name == _LAG:
                    target = lag
                elif labels.get("otel_cache_lock_type") == "single-flight":
                    target = flight_wait
                else:
                    target = lock_wait
                le = float(labels["le"])
                target[le] = target.get(le, 0.0) + value
            elif name == _L2_DURATION and labels.get("otel_cache_operation") == "get":
                le = float(labels["le"])
                l2_get[le] = l2_get.get(le, 0.0) + value
            elif name == _LAG_MAX:
                lag_max = value if lag_max is None else max(lag_max, value)
            elif name == _REQUESTS:
                key = f"{labels.get('otel_cache_level')}_{labels.get('otel_cache_result')}"
                if key in counters:
                    counters[key] += value
            elif name == _EVICTIONS:
                evictions += value
            elif name == _L2_ERRORS:
                l2_errors += value
    return ServerSnapshot(
        at=at,
        cpu_s=cpu_s,
        lag=lag,
        lag_max_s=lag_max,
        lock_wait=lock_wait,
        flight_wait=flight_wait,
        l1_hits=counters["l1_hit"],
        l1_misses=counters["l1_miss"],
        l2_hits=counters["l2_hit"],
        l2_misses=counters["l2_miss"],
        evictions=evictions,
        l2_errors=l2_errors,
        l2_get=l2_get,
    )


def scrape(service: Service) -> ServerSnapshot | None:
    """One scrape of the service's ``/metrics`` and its CPU time; None if either failed."""
    try:
        status, body = _http_get(service.port, "/metrics")
    except OSError:
        return None
    cpu = service.child.cpu_s()
    if status != 200 or cpu is None:
        return None
    return parse_metrics(body.decode(), at=time.monotonic(), cpu_s=cpu)


# -- the load thread ----------------------------------------------------------------------------


class _LoadThread:
    """An event loop in a thread of its own: the load generator's, so its CPU time is its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="otel-cache-demo-load", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    async def _drain(self) -> None:
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        with contextlib.suppress(Exception):
            self.submit(self._drain()).result(timeout=5.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5.0)
        if not self.thread.is_alive():
            self.loop.close()


# -- machine facts ------------------------------------------------------------------------------


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def commit() -> str:
    """The repository's short commit, with "+dirty (N files)" if files under otel_cache/ differ from it.

    Untracked files count: the demo's own new modules would otherwise go unmentioned.
    """
    head = _git("rev-parse", "--short", "HEAD")
    if head is None:
        return "unknown (not a git checkout)"
    dirty = _git("status", "--porcelain", "--", "otel_cache")
    return f"{head}+dirty ({len(dirty.splitlines())} files)" if dirty else head


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def machine_facts() -> dict[str, Any]:
    """nproc, CPU model, kernel, Python, commit and the versions that matter to the figures."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = None
    packages = ("otel-cache", "uvicorn", "fastapi", "starlette", "strawberry-graphql", "redis", "hiredis")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "host": platform.node(),
        "nproc": allowed,
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "gil_switch_interval_ms": sys.getswitchinterval() * 1e3,
        "commit": commit(),
        "packages": ", ".join(f"{name} {_version(name)}" for name in packages),
    }


# -- the run ------------------------------------------------------------------------------------


def _recent_windows(samples: Sequence[SecondSample]) -> list[ServerWindow]:
    return [s.server for s in samples if s.server is not None]


class _Run:
    def __init__(self, options: DemoOptions, view: DemoView) -> None:
        self.options = options
        self.view = view
        self.service_cpu, self.load_cpu, self.pinning = cpu_pins(options)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
        self.folder = options.out if options.out is not None else Path("reports") / f"demo-{stamp}"
        self.logs = self.folder / "logs"
        self.children: list[ChildProcess] = []
        self.services: dict[str, Service] = {}
        self.notes: list[str] = []
        self.settings: dict[str, Any] = {}
        self.seconds = queue.SimpleQueue[SecondStats]()
        self.status = Status("otel-cache demo: sync vs async", [], options.phases())
        self.t0 = 0.0
        self.load: _LoadThread | None = None

    # -- set-up ---------------------------------------------------------------------------

    def _log(self, message: str) -> None:
        try:
            self.view.log(message)
        except Exception as exc:  # a display must not end the run, nor its clean-up
            print(f"otel-cache demo: the view failed: {exc!r}; {message}", file=sys.stderr)

    def _start_backend(self) -> tuple[dict[str, str | None], str]:
        """The Redis URL of each mode (None: L1 only) and a description."""
        options = self.options
        if not options.uses_redis:
            return {mode: None for mode in MODES}, "L1 only (no Redis)"
        if options.redis_url is not None:
            url = options.redis_url
            parts = urlsplit(url)
            host, port = parts.hostname or HOST, parts.port or 6379
            description = f"L1 + Redis at {host}:{port} (--redis-url)"
        else:
            redis = start_redis(
                log=self.logs / "redis-server.log",
                cpu=self.load_cpu,
                workdir=self.logs,
                on_start=self.children.append,
            )
            self._log(f"started redis-server pid {redis.child.pid} on port {redis.port}")
            self.settings["redis_version"] = redis.version
            url, host, port = redis.url, HOST, redis.port
            description = "L1 + Redis (embedded redis-server on loopback)"
        direct = redis_rtt_s(host, port)
        self.settings["redis_ping_direct_ms"] = None if direct is None else round(direct * 1e3, 3)
        if options.rtt_ms is not None:
            proxy = start_delay_proxy(
                host,
                port,
                options.rtt_ms,
                log=self.logs / "delay-proxy.log",
                cpu=self.load_cpu,
                on_start=self.children.append,
            )
            self._log(
                f"started delay proxy pid {proxy.child.pid} on port {proxy.port} (+{options.rtt_ms} ms RTT)"
            )
            via = redis_rtt_s(HOST, proxy.port)
            self.settings["redis_ping_via_proxy_ms"] = None if via is None else round(via * 1e3, 3)
            url = _with_address(url, HOST, proxy.port)
            description += (
                f", behind a delay proxy adding {options.rtt_ms:g} ms of round trip "
                f"(PING {self.settings['redis_ping_direct_ms']} ms direct, "
                f"{self.settings['redis_ping_via_proxy_ms']} ms through the proxy)"
            )
        return dict(_mode_urls(url)), description + "; sync uses Redis database N, async N + 1"

    def _start_services(self, urls: dict[str, str | None]) -> None:
        self._log("starting the services (each builds its graph first) ...")
        for mode in MODES:
            self.services[mode] = start_service(
                mode,
                log=self.logs / f"service-{mode}.log",
                redis_url=urls[mode],
                cpu=self.service_cpu,
                seed=self.options.seed,
                extra_args=["--l1-max-entries", str(self.options.l1_max_entries)],
                on_start=self.children.append,
                wait=False,
            )
        for mode, service in self.services.items():
            service.wait_ready()
            self._log(f"started service-{mode} pid {service.child.pid} on {service.url}")

    # -- phases ---------------------------------------------------------------------------

    def _scrape(self, mode: str) -> ServerSnapshot | None:
        return scrape(self.services[mode])

    def _run_phase(self, phase: Phase, mode_offset_s: float) -> RoundResult | None:
        options = self.options
        service = self.services[phase.mode]
        spec = LoadSpec(
            concurrency=options.concurrency,
            duration_s=phase.seconds,
            rate=options.rate,
            graphql_share=options.graphql_share,
            seed=options.seed,
        )
        cores_before = CpuTimes.read()
        previous = self._scrape(phase.mode)  # also resets the service's lag-max gauge
        windows: list[ServerWindow] = []
        started = time.monotonic()
        assert self.load is not None
        future = self.load.submit(arun_load(service.url, spec, on_second=self.seconds.put))
        while True:
            try:
                second = self.seconds.get(timeout=0.25)
            except queue.Empty:
                self.status.phase_elapsed_s = time.monotonic() - started
                if future.done():
                    break
                self.view.update(self.status)
                continue
            snapshot = self._scrape(phase.mode)
            window = None
            if snapshot is not None and previous is not None:
                window = ServerWindow.between(previous, snapshot)
                windows.append(window)
            if snapshot is not None:
                previous = snapshot
            sample = SecondSample(
                mode=phase.mode,
                phase=phase.kind,
                round=phase.round,
                t_s=time.monotonic() - self.t0,
                mode_s=None if phase.round is None else mode_offset_s + second.second + 1,
                requests=second.requests,
                errors=second.errors,
                p50_s=second.p50_s,
                p99_s=second.p99_s,
                client_cpu_s=second.client_cpu_s,
                server=window,
            )
            self.status.samples.append(sample)
            self.status.phase_elapsed_s = time.monotonic() - started
            self.view.update(self.status)
        result: LoadResult = future.result()
        while True:  # seconds that arrived after the last poll
            try:
                self.seconds.get_nowait()
            except queue.Empty:
                break
        final = self._scrape(phase.mode)
        if final is not None and previous is not None:
            windows.append(ServerWindow.between(previous, final))
        cores_after = CpuTimes.read()

        def busy(cpu: int | None) -> float | None:
            if cores_before is None or cores_after is None:
                return None
            return cores_after.busy_since(cores_before, "cpu" if cpu is None else f"cpu{cpu}")

        if phase.round is None or phase.order is None:
            return None
        return RoundResult(
            mode=phase.mode,
            index=phase.round,
            order=phase.order,
            started_s=started - self.t0,
            duration_s=result.duration_s,
            requests=result.requests,
            errors=result.errors,
            errors_by_kind=dict(result.errors_by_kind),
            qps=result.qps,
            p50_s=result.p50_s,
            p99_s=result.p99_s,
            max_s=result.max_s,
            client_hit_ratio=result.hit_ratio,
            client_cpu_utilisation=result.cpu_utilisation,
            server=ServerWindow.merge(windows),
            service_core_busy=busy(self.service_cpu),
            load_core_busy=busy(self.load_cpu),
        )

    def _our_cpu_s(self) -> float:
        own = process_cpu_s(os.getpid()) or 0.0
        return own + sum(child.cpu_s() or 0.0 for child in self.children)

    # -- the whole --------------------------------------------------------------------------

    def run(self) -> tuple[DemoResult, Path]:
        options = self.options
        started_at = datetime.datetime.now(datetime.UTC)
        machine = machine_facts()  # before this thread is pinned to one CPU
        self.folder.mkdir(parents=True, exist_ok=True)
        previous_affinity: set[int] | None = None
        if self.load_cpu is not None:
            previous_affinity = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {self.load_cpu})  # this thread, and the load thread it starts
        self.status.details = [self.pinning]
        self.view.start(self.status)
        self.load = _LoadThread()
        try:
            urls, backend = self._start_backend()
            self._start_services(urls)
            self.settings = {
                "command": options.command,
                "backend": backend,
                "concurrency": options.concurrency,
                "rate": options.rate,
                "queries": LoadSpec().n_queries,
                "zipf_s": LoadSpec().zipf_s,
                "graphql_share": options.graphql_share,
                "seed": options.seed,
                "warmup_s": options.warmup,
                "rounds": options.rounds,
                "round_s": options.round_s,
                "duration_s": options.duration_s,
                "rtt_ms": options.rtt_ms,
                "pinning": self.pinning,
                "service_cpu": self.service_cpu,
                "load_cpu": self.load_cpu,
                "service": ", ".join(
                    f"{k} {v}"
                    for k, v in {**_SERVICE_DEFAULTS, "l1_max_entries": options.l1_max_entries}.items()
                ),
                "loop_monitor": "interval 50 ms, block threshold 100 ms (the service's defaults)",
                **self.settings,
            }
            self.status.details = [backend, self.pinning]
            rounds: list[RoundResult] = []
            measured_s = dict.fromkeys(MODES, 0.0)
            self.t0 = time.monotonic()
            ours_before = cpu_before = None
            for index, phase in enumerate(self.status.phases):
                if phase.kind == "round" and cpu_before is None:
                    cpu_before, ours_before = CpuTimes.read(), self._our_cpu_s()
                self.status.index = index
                self.status.phase_elapsed_s = 0.0
                self._log(f"{phase.label}: {phase.seconds:.0f} s")
                round_result = self._run_phase(phase, measured_s[phase.mode])
                if round_result is not None:
                    rounds.append(round_result)
                    self.status.rounds.append(round_result)
                    measured_s[phase.mode] += phase.seconds
                    self._log(_round_line(round_result))
            cpu_after, ours_after = CpuTimes.read(), self._our_cpu_s()
            other = None
            if cpu_before is not None and cpu_after is not None and ours_before is not None:
                spent = cpu_after.total["cpu"] - cpu_before.total["cpu"]
                busy = cpu_after.busy["cpu"] - cpu_before.busy["cpu"]
                ours = (ours_after - ours_before) * _CLOCK_TICKS
                other = max(0.0, (busy - ours) / spent) if spent > 0 else None
            self.status.index = len(self.status.phases)
            result = DemoResult(
                settings=self.settings,
                machine=machine,
                started_at=started_at.strftime("%Y-%m-%d %H:%M:%S"),
                finished_at=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S"),
                seconds=self.status.samples,
                rounds=rounds,
                other_cpu_share=other,
                notes=self.notes,
            )
            write_report(result, self.folder)
            return result, self.folder
        finally:
            with _signals_ignored():
                if self.load is not None:
                    self.load.close()
                self.stop_children()
                try:
                    self.view.stop()
                except Exception as exc:
                    print(f"otel-cache demo: the view failed: {exc!r}", file=sys.stderr)
                if previous_affinity is not None:
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(0, previous_affinity)

    def stop_children(self) -> None:
        # Services first (they hold connections to the proxy and Redis), then the rest.
        for child in reversed(self.children):
            child.stop()
            self._log(f"stopped {child.name} pid {child.pid} (exit status {child.popen.returncode})")


def _round_line(r: RoundResult) -> str:
    w = r.server
    lag = "-" if w is None or w.lag_p99_s is None else f"{w.lag_p99_s * 1e3:.1f} ms"
    p99 = "-" if r.p99_s is None else f"{r.p99_s * 1e3:.1f} ms"
    return (
        f"{r.mode} round {r.index + 1}: {r.qps:,.0f} QPS, p99 {p99}, loop lag p99 {lag}, "
        f"loadgen CPU {r.client_cpu_utilisation:.0%}, {r.errors} errors"
    )


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM while cleaning up (main thread only): a second Ctrl-C cannot cut it short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in _STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` in the main thread, for the block's duration."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise_interrupted) for signum in _STOP_SIGNALS}
    try:
        yield
    except KeyboardInterrupt as exc:
        raise Interrupted("SIGINT") from exc
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_demo(options: DemoOptions, view: DemoView) -> tuple[DemoResult, Path]:
    """Run the demo: start everything, measure, write the report folder, stop everything.

    Returns the result and the report folder. Every child process is stopped on the way
    out, whatever happened.

    Raises:
        Interrupted: SIGINT or SIGTERM arrived (when called from the main thread).
        FileNotFoundError: ``redis="embedded"`` (or ``rtt_ms``) and no ``redis-server``.
        RuntimeError: a service, Redis or the proxy did not start.
    """
    with interruptible():
        return _Run(options, view).run()


def smoke_options(**changes: Any) -> DemoOptions:
    """The ``--smoke`` options, with ``changes``."""
    return replace(SMOKE, **changes)
