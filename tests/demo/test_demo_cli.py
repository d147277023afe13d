"""``otel-cache demo`` end to end (a real smoke run, interrupted runs), its options, and the delay proxy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_cache.cli import main
from otel_cache_demo.delay_proxy import DelayProxy

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "otel_cache.cli", "demo"]


def _env(**changes: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(changes)
    return env


class Running:
    """A CLI run in a process group of its own, its output read line by line."""

    def __init__(self, args: list[str], **env: str) -> None:
        self.process = subprocess.Popen(
            [*CLI, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
            env=_env(**env),
            start_new_session=True,  # as a shell runs a job: Ctrl-C goes to the whole group
        )
        self.lines: list[str] = []
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no line matching {pattern!r} within {timeout} s:\n" + "\n".join(self.lines))
            if line is None:
                pytest.fail(f"the run ended before {pattern!r}:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if re.search(pattern, line):
                return line

    def finish(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        while (line := self._queue.get(timeout=5)) is not None:
            self.lines.append(line)
        self.close()
        return code

    def close(self) -> None:
        self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def runs() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for run in started:
        if run.process.poll() is None:
            os.killpg(run.process.pid, signal.SIGKILL)
            run.process.wait(timeout=10)
        run.close()


def _children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found.add(child)
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- options -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--rounds", "0"],
        ["demo", "--l1-max-entries", "0"],
        ["demo", "--duration", "-1"],
        ["demo", "--redis", "embedded", "--redis-url", "redis://127.0.0.1:6379/0"],
        ["demo", "--redis", "elsewhere"],
        ["nothing"],
    ],
)
def test_bad_options_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "usage: otel-cache" in capsys.readouterr().err


def test_help_lists_the_demo_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--duration", "--rounds", "--concurrency", "--redis", "--redis-url", "--rtt-ms"):
        assert option in text
    for option in ("--smoke", "--out", "--no-live", "--l1-max-entries"):
        assert option in text


def test_without_redis_server_an_embedded_redis_fails_cleanly(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "--smoke", "--no-live", "--redis", "embedded", "--out", str(tmp_path / "report")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_env(PATH=str(tmp_path)),  # no redis-server on this PATH
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "redis-server is not on the PATH" in done.stderr


# -- real runs -------------------------------------------------------------------------------------------


@pytest.mark.timeout(150)
def test_a_smoke_run_measures_both_modes_and_writes_the_report(tmp_path: Path, runs: list[Running]) -> None:
    folder = tmp_path / "report"
    started = time.monotonic()
    # A small L1 (30 of the catalogue's 2000 queries): both modes must evict.
    run = Running(["--smoke", "--no-live", "--out", str(folder), "--l1-max-entries", "30"])
    runs.append(run)
    code = run.finish(timeout=120)
    elapsed = time.monotonic() - started
    assert code == 0, run.output
    assert elapsed < 90, f"--smoke took {elapsed:.0f} s"
    assert "| QPS |" in run.output
    assert "ADR-014" in run.output
    assert f"report: {folder / 'report.md'}" in run.output
    # Every child stopped on the way out, and said so.
    pids = {int(pid) for pid in re.findall(r"started \S+ pid (\d+)", run.output)}
    assert len(pids) == 2
    for pid in pids:
        assert f"pid {pid} (exit status" in run.output
        assert not _alive(pid)

    names = {path.name for path in folder.iterdir()}
    assert {"report.md", "results.json", "qps.png", "p99.png", "loop_lag.png", "logs"} <= names
    data = json.loads((folder / "results.json").read_text())
    for mode in ("sync", "async"):
        summary = data["summary"][mode]
        assert summary["rounds"] == 2
        assert summary["requests"] > 0
        assert summary["errors"] == 0
        assert summary["lag_p99_s"] is not None
        assert summary["evictions_per_s"] > 0
    assert data["comparison"]["qps_ratio"] > 0
    assert data["settings"]["backend"].startswith("L1 only")
    assert "l1_max_entries 30" in data["settings"]["service"]
    assert {second["mode"] for second in data["seconds"]} == {"sync", "async"}
    report = (folder / "report.md").read_text()
    assert "## Method" in report
    assert "## Machine" in report


@pytest.mark.timeout(150)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_everything_and_exits_130(
    tmp_path: Path, runs: list[Running], signum: signal.Signals
) -> None:
    """Ctrl-C (SIGINT to the job's process group, as a terminal sends it) or SIGTERM mid-run."""
    run = Running(
        [
            "--no-live",
            "--redis",
            "embedded",
            "--rtt-ms",
            "1",
            "--warmup",
            "1",
            "--duration",
            "600",
            "--out",
            str(tmp_path / "report"),
        ]
    )
    runs.append(run)
    run.wait_for(r"sync round 1: ", timeout=90)  # everything is up and under load
    time.sleep(1.0)
    children = _children_of(run.process.pid)
    started = {int(pid) for pid in re.findall(r"started \S+ (?:\S+ )?pid (\d+)", run.output)}
    assert len(started) == 4, run.output  # redis-server, the delay proxy, two services
    assert started <= children
    if signum == signal.SIGINT:
        os.killpg(run.process.pid, signum)
    else:
        run.process.send_signal(signum)
    code = run.finish(timeout=60)
    assert code == 130, run.output
    assert "interrupted" in run.output
    for pid in started:
        assert f"pid {pid} (exit status" in run.output  # stopped by the runner, not only by the kernel
    leftovers = [pid for pid in children if _alive(pid)]
    assert not leftovers, f"still running: {leftovers}"
    assert not (tmp_path / "report" / "report.md").exists()


# -- the delay proxy ------------------------------------------------------------------------------------


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_the_delay_proxy_adds_the_round_trip_and_keeps_the_bytes_in_order() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with DelayProxy("127.0.0.1", port, rtt_s=0.02) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            times = []
            for _ in range(5):
                started = time.perf_counter()
                writer.write(b"ping")
                assert await reader.readexactly(4) == b"ping"
                times.append(time.perf_counter() - started)
            assert min(times) >= 0.02
            assert sorted(times)[2] < 0.02 + 0.03
            payload = bytes(range(256)) * 4096  # 1 MiB, in many chunks each way
            writer.write(payload)
            assert await asyncio.wait_for(reader.readexactly(len(payload)), 10) == payload
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # the close went through
            writer.close()
            assert proxy.rtt_s == 0.02
    finally:
        server.close()
        await server.wait_closed()


async def test_the_delay_proxy_drops_a_client_whose_target_refuses() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]  # bound, not listening: connections are refused
        async with DelayProxy("127.0.0.1", dead_port, rtt_s=0.001) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"hello")
            with contextlib.suppress(ConnectionResetError):  # a reset, as a network gives it
                assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            assert not proxy.sides
