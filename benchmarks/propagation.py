"""Cross-process invalidation on loopback: ``python -m benchmarks.propagation [--quick] [--callgrind]``.

Starts its own redis-server on a free port, then measures four things::

    writer process ── put / aput k_i, paced at --rate ──> Redis ── PUBLISH ──> reader 1..N-1
        t_put = time.time() after put returned           each reader: L1 holds every k_i;
                                                         listener drops it, records the lag

1. **Propagation** with 2 and 4 processes (1 writer, N-1 readers; sync ``put`` and
   async ``aput``): the lag each reader's listener measures (``Coherence.lags``: the
   sender's ``time.time()`` when the publisher took the batch, to receipt), p50/p99/max
   over all readers, and the messages and keys sent and received (batching). Also
   *put→drop*: from the writer's ``put`` returning to the reader dropping that key's
   L1 copy, which adds what the lag leaves out (the publisher's wake-up and its wait
   for the gap between messages).
2. **Listener CPU**: each reader's ``time.process_time()`` per second of wall time
   over the writing window, and over an idle window just before it (same caches,
   channel up, no writes).
3. **Cost added to a write**: client CPU per unpaced sync ``put`` with
   ``invalidation=True`` and ``False``, alternating rounds in one process: the
   process's CPU (it includes the publisher and listener threads, and waits for the
   publisher to drain each round) and the calling thread's alone.
4. **L1 hit**: ns per ``MultiLevelCache.get`` hit with invalidation on and off, in
   the same run; with ``--callgrind``, instructions per hit under
   ``valgrind --tool=callgrind`` (the difference of two runs of different lengths).

Worker processes are started with the "spawn" context once and reused for every
configuration, each on a namespace of its own. Progress goes to stderr, the tables
to stdout; ``--json PATH`` also writes the raw figures. See ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import redis

from benchmarks.machine import CpuShare, machine_facts
from otel_cache import CacheConfig, MultiLevelCache
from otel_cache.l1.cache import AsyncLRUCache
from tests.support import RedisServer

__all__ = ["FULL", "QUICK", "Config", "main", "run"]

_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Config:
    """How long to measure; :data:`FULL` and :data:`QUICK` are the two presets."""

    rate: float  # writes/s of the paced writer
    write_s: float  # writing window per configuration
    idle_s: float  # idle window measured just before it
    cost_rounds: int  # alternating on/off rounds of unpaced puts
    cost_puts: int  # puts per round
    hit_repeats: int
    hit_number: int  # hits per timed repeat
    callgrind: bool = False


FULL = Config(
    rate=1000.0, write_s=5.0, idle_s=3.0, cost_rounds=10, cost_puts=2000, hit_repeats=7, hit_number=200_000
)
QUICK = Config(
    rate=1000.0, write_s=1.0, idle_s=0.5, cost_rounds=4, cost_puts=300, hit_repeats=3, hit_number=20_000
)

SETUPS = ((2, "sync"), (2, "async"), (4, "sync"), (4, "async"))  # (processes, writer API)
_DRAIN_S = 0.3  # after the last write: messages still in flight arrive


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- reader and writer processes ----------------------------------------------------------


class _DropClock(AsyncLRUCache[Hashable, Any]):
    """An L1 that notes when each key was dropped, for put→drop (the only change: ``delete``).

    The listener calls ``l1.delete`` for every key of a message; a reader calls it for no
    other reason. Assigned to the reader's L1 as its class (same slots, so same layout).
    """

    __slots__ = ()
    drops: dict[Hashable, float] = {}  # noqa: RUF012  # one reader cache per process

    def delete(self, key: Hashable) -> bool:
        _DropClock.drops[key] = time.time()
        return super().delete(key)


def _reader(url: str, conn: Connection) -> None:
    cache: MultiLevelCache[str, int] | None = None
    while True:
        command, arg = conn.recv()
        if command == "open":
            namespace, keys = arg
            cache = MultiLevelCache(
                CacheConfig(redis_url=url, namespace=namespace, l1_max_entries=keys + 100, name="reader")
            )
            cache.l1.__class__ = _DropClock
            cache.get("warm-up")  # opens the channel and waits for the subscription
            held = len(cache.get_many([f"k{i}" for i in range(keys)]))  # the writer's prefill
            conn.send(held)
        elif command == "mark":
            assert cache is not None
            coherence = cache.tiers.coherence
            assert coherence is not None
            if arg:  # the writing starts: keep only what follows
                coherence.lags.clear()
                _DropClock.drops.clear()
            conn.send((time.process_time(), time.monotonic(), asdict(coherence.stats())))
        elif command == "report":
            assert cache is not None
            coherence = cache.tiers.coherence
            assert coherence is not None
            conn.send((list(coherence.lags), dict(_DropClock.drops), asdict(coherence.stats())))
        elif command == "close":
            if cache is not None:
                cache.close()
            cache = None
            conn.send(None)
        else:
            return


def _writer(url: str, conn: Connection) -> None:
    while True:
        command, arg = conn.recv()
        if command == "prefill":
            namespace, keys = arg
            # No announcements: the readers take their copies afterwards.
            config = CacheConfig(redis_url=url, namespace=namespace, invalidation=False, name="prefill")
            with MultiLevelCache[str, int](config) as cache:
                cache.put_many((f"k{i}", 0) for i in range(keys))
            conn.send(None)
        elif command == "run":
            namespace, api, rate, seconds = arg
            config = CacheConfig(redis_url=url, namespace=namespace, name="writer")
            if api == "sync":
                conn.send(_write_sync(MultiLevelCache(config), conn, rate, seconds))
            else:
                conn.send(
                    asyncio.run(_write_async(MultiLevelCache(config, async_mode=True), conn, rate, seconds))
                )
        else:
            return


def _writer_stats(cache: MultiLevelCache[str, int]) -> dict[str, Any]:
    coherence = cache.tiers.coherence
    assert coherence is not None
    return asdict(coherence.stats())


def _write_sync(
    cache: MultiLevelCache[str, int], conn: Connection, rate: float, seconds: float
) -> dict[str, Any]:
    cache.get("warm-up")
    conn.send("ready")
    conn.recv()  # go
    done: list[float] = []
    cpu, start = time.process_time(), time.monotonic()
    while (now := time.monotonic()) - start < seconds:
        cache.put(f"k{len(done)}", len(done) + 1)
        done.append(time.time())
        time.sleep(max(0.0, start + len(done) / rate - time.monotonic()))
    conn.send(("done", len(done), time.process_time() - cpu, now - start))
    time.sleep(_DRAIN_S)
    stats = _writer_stats(cache)
    cache.close()
    return {"put_at": done, "stats": stats}


async def _write_async(
    cache: MultiLevelCache[str, int], conn: Connection, rate: float, seconds: float
) -> dict[str, Any]:
    await cache.aget("warm-up")
    conn.send("ready")
    conn.recv()  # go (the loop has nothing else to run yet)
    done: list[float] = []
    cpu, start = time.process_time(), time.monotonic()
    while (now := time.monotonic()) - start < seconds:
        await cache.aput(f"k{len(done)}", len(done) + 1)
        done.append(time.time())
        await asyncio.sleep(max(0.0, start + len(done) / rate - time.monotonic()))
    conn.send(("done", len(done), time.process_time() - cpu, now - start))
    await asyncio.sleep(_DRAIN_S)
    stats = _writer_stats(cache)
    await cache.aclose()
    return {"put_at": done, "stats": stats}


class _Worker:
    """One spawned process driven over a pipe: ``call`` sends a command and waits for the reply."""

    def __init__(self, ctx: Any, target: Callable[[str, Connection], None], url: str) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(url, child), daemon=True)
        self.process.start()
        child.close()

    def send(self, command: str, arg: Any = None) -> None:
        self.conn.send((command, arg))

    def recv(self, timeout: float = 120.0) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"worker {self.process.pid} did not answer within {timeout} s")
        return self.conn.recv()

    def call(self, command: str, arg: Any = None) -> Any:
        self.send(command, arg)
        return self.recv()

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # already gone
            self.send("exit")
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# -- 1 and 2: propagation and listener CPU ----------------------------------------------------


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p99 (nearest rank) and max, in ms; NaN when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1e3

    return {"p50_ms": rank(0.50), "p99_ms": rank(0.99), "max_ms": ordered[-1] * 1e3}


def _mark_all(readers: Sequence[_Worker], reset: bool) -> list[Any]:
    for reader in readers:
        reader.send("mark", reset)
    return [reader.recv() for reader in readers]


def _cpu_ms_per_s(start: Any, end: Any) -> float:
    return float((end[0] - start[0]) / (end[1] - start[1]) * 1e3)


def propagation(
    readers: Sequence[_Worker], writer: _Worker, processes: int, api: str, config: Config
) -> dict[str, Any]:
    """One configuration: the writer and ``processes - 1`` of the readers on a fresh namespace."""
    active = readers[: processes - 1]
    namespace = f"prop-{processes}-{api}-{os.getpid()}"
    keys = int(config.rate * config.write_s * 1.2) + 10
    writer.call("prefill", (namespace, keys))
    for reader in active:
        reader.send("open", (namespace, keys))
    held = [reader.recv() for reader in active]
    writer.send("run", (namespace, api, config.rate, config.write_s))
    assert writer.recv() == "ready"
    idle_start = _mark_all(active, reset=False)
    time.sleep(config.idle_s)
    busy_start = _mark_all(active, reset=True)
    writer.send("go")
    _, writes, writer_cpu_s, writing_s = writer.recv()
    busy_end = _mark_all(active, reset=False)
    written = writer.recv()  # after the writer's drain
    reports = []
    for reader in active:
        reports.append(reader.call("report"))
        reader.call("close")

    put_at: list[float] = written["put_at"]
    lags = [lag for samples, _, _ in reports for lag in samples]
    put_to_drop = [
        drops[f"k{i}"] - at for _, drops, _ in reports for i, at in enumerate(put_at) if f"k{i}" in drops
    ]
    received = [
        stats["received_messages"] - start[2]["received_messages"]
        for (_, _, stats), start in zip(reports, busy_start, strict=True)
    ]
    received_keys = [
        stats["received_keys"] - start[2]["received_keys"]
        for (_, _, stats), start in zip(reports, busy_start, strict=True)
    ]
    idle = [_cpu_ms_per_s(a, b) for a, b in zip(idle_start, busy_start, strict=True)]
    busy = [_cpu_ms_per_s(a, b) for a, b in zip(busy_start, busy_end, strict=True)]
    busy_wall = [b[1] - a[1] for a, b in zip(busy_start, busy_end, strict=True)]
    per_message_us = [
        (cpu_busy - cpu_idle) * wall / max(1, n) * 1e3  # ms/s x s / messages -> µs
        for cpu_busy, cpu_idle, wall, n in zip(busy, idle, busy_wall, received, strict=True)
    ]
    sent = written["stats"]
    return {
        "processes": processes,
        "api": api,
        "keys_held_per_reader": min(held),
        "writes": writes,
        "writes_per_s": writes / writing_s,
        "writer_cpu_ms_per_s": writer_cpu_s / writing_s * 1e3,
        "sent_messages": sent["sent_messages"],
        "sent_keys": sent["sent_keys"],
        "received_messages": sum(received),
        "received_keys": sum(received_keys),
        "lag_samples": len(lags),
        "lag": _quantiles(lags),
        "put_to_drop_samples": len(put_to_drop),
        "put_to_drop": _quantiles(put_to_drop),
        "reader_cpu_idle_ms_per_s": statistics.mean(idle),
        "reader_cpu_busy_ms_per_s": statistics.mean(busy),
        "listener_us_per_message": statistics.mean(per_message_us),
    }


# -- 3 and 4: cost added to a write, the L1 hit ------------------------------------------------


def _settle(cache: MultiLevelCache[str, int]) -> None:
    """Wait until the publisher has sent what the round queued (so its CPU counts), then a
    little longer for the cache's own listener to read (and skip) its own messages."""
    coherence = cache.tiers.coherence
    if coherence is not None:
        deadline = time.monotonic() + 5.0
        while coherence.has_pending() and time.monotonic() < deadline:
            time.sleep(0.0005)
    time.sleep(0.005)


def write_cost(url: str, config: Config) -> dict[str, Any]:
    caches: dict[bool, MultiLevelCache[str, int]] = {
        on: MultiLevelCache(
            CacheConfig(
                redis_url=url, namespace=f"cost-{'on' if on else 'off'}", invalidation=on, name="cost"
            )
        )
        for on in (True, False)
    }
    process_us: dict[bool, list[float]] = {True: [], False: []}
    thread_us: dict[bool, list[float]] = {True: [], False: []}
    try:
        for cache in caches.values():
            cache.get("warm-up")
            for i in range(200):  # warm the connections and the key encoding
                cache.put(f"w{i}", i)
            _settle(cache)
        for round_ in range(config.cost_rounds):
            for on in (True, False) if round_ % 2 else (False, True):
                cache = caches[on]
                p0, t0 = time.process_time(), time.thread_time()
                for i in range(config.cost_puts):
                    cache.put(f"k{i}", i)
                t1 = time.thread_time()
                _settle(cache)
                p1 = time.process_time()
                process_us[on].append((p1 - p0) / config.cost_puts * 1e6)
                thread_us[on].append((t1 - t0) / config.cost_puts * 1e6)
        hits = _hits(caches, config)
        stats = caches[True].tiers.coherence
        assert stats is not None
        sent = stats.stats()
    finally:
        for cache in caches.values():
            cache.close()

    def summary(values: dict[bool, list[float]]) -> dict[str, Any]:
        ratios = [on / off for on, off in zip(values[True], values[False], strict=True)]
        return {
            "on_us": statistics.median(values[True]),
            "off_us": statistics.median(values[False]),
            "ratio": statistics.median(values[True]) / statistics.median(values[False]),
            "round_ratios": [min(ratios), max(ratios)],
        }

    return {
        "rounds": config.cost_rounds,
        "puts_per_round": config.cost_puts,
        "process": summary(process_us),
        "thread": summary(thread_us),
        "keys_per_message": sent.sent_keys / max(1, sent.sent_messages),
        "hit": hits,
    }


def _hits(caches: dict[bool, MultiLevelCache[str, int]], config: Config) -> dict[str, Any]:
    for cache in caches.values():
        cache.put("hit", 1)
        if cache.l1.get("hit") != 1:
            raise RuntimeError("the hit key is not in L1: the benchmark would time L2 reads")
    samples: dict[bool, list[float]] = {True: [], False: []}
    number = config.hit_number
    for repeat in range(config.hit_repeats):
        for on in (True, False) if repeat % 2 else (False, True):
            cache = caches[on]
            timer = timeit.Timer("get('hit')", globals={"get": cache.get})
            samples[on].append(timer.timeit(number) / number * 1e9)
    return {
        "on_ns": statistics.median(samples[True]),
        "off_ns": statistics.median(samples[False]),
        "on_range_ns": [min(samples[True]), max(samples[True])],
        "off_range_ns": [min(samples[False]), max(samples[False])],
    }


# -- callgrind: instructions per hit -----------------------------------------------------------

_CALLGRIND_HITS = (10_000, 60_000)


def _hit_child(url: str, on: bool, hits: int) -> None:
    """Under callgrind: ``hits`` L1 hits, nothing else after setup."""
    config = CacheConfig(
        redis_url=url, namespace="cg", invalidation=on, redis_connect_timeout=60.0, name="cg"
    )
    cache: MultiLevelCache[str, int] = MultiLevelCache(config)
    cache.put("hit", 1)
    if cache.l1.get("hit") != 1:
        raise SystemExit("the hit key is not in L1")
    get = cache.get
    for _ in range(hits):
        get("hit")
    cache.close()


def _instructions(url: str, on: bool, hits: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "benchmarks.propagation",
            "--hit-child",
            url,
            "on" if on else "off",
            str(hits),
        ]
        subprocess.run(command, cwd=_ROOT, check=True, capture_output=True, timeout=600)
        text = out.read_text()
    found = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.MULTILINE)
    if found is None:
        raise RuntimeError("no instruction total in the callgrind output")
    return int(found.group(1))


def callgrind_hits(url: str) -> dict[str, float] | None:
    if shutil.which("valgrind") is None:
        return None
    low, high = _CALLGRIND_HITS
    result = {}
    for on in (True, False):
        _progress(f"callgrind: invalidation {'on' if on else 'off'}")
        short, long_ = _instructions(url, on, low), _instructions(url, on, high)
        result["on_ir" if on else "off_ir"] = (long_ - short) / (high - low)
    return result


# -- the run and its report ---------------------------------------------------------------


def run(config: Config) -> dict[str, Any]:
    """Every measurement, against a redis-server of its own; JSON-friendly results."""
    facts = machine_facts()
    share = CpuShare()
    started = time.perf_counter()
    with RedisServer() as server:
        with redis.Redis.from_url(server.url) as client:
            redis_version = client.info("server")["redis_version"]
        ctx = mp.get_context("spawn")
        _progress("starting 3 readers and a writer")
        readers = [_Worker(ctx, _reader, server.url) for _ in range(3)]
        writer = _Worker(ctx, _writer, server.url)
        try:
            rows = []
            for processes, api in SETUPS:
                _progress(f"propagation: {processes} processes, {api} writer")
                rows.append(propagation(readers, writer, processes, api, config))
        finally:
            for worker in (*readers, writer):
                worker.stop()
        _progress("cost added to a put, L1 hit")
        cost = write_cost(server.url, config)
        instructions = callgrind_hits(server.url) if config.callgrind else None
    return {
        "config": asdict(config),
        "facts": {
            **facts,
            "redis": redis_version,
            "cpu_share": share.stop(),
            "loadavg": os.getloadavg(),
            "elapsed_s": round(time.perf_counter() - started, 1),
        },
        "propagation": rows,
        "write": cost,
        "callgrind": instructions,
    }


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(head) - 1)
    return [f"| {' | '.join(cells)} |" for cells in (head, align, *rows)]


def _ms(q: dict[str, float]) -> str:
    return f"{q['p50_ms']:.2f} / {q['p99_ms']:.2f} / {q['max_ms']:.1f}"


def markdown(result: dict[str, Any]) -> str:
    facts, rows, write = result["facts"], result["propagation"], result["write"]
    share = facts["cpu_share"]
    lines = [
        f"- {facts['date']} | {facts['cpu']} | nproc {facts['nproc']} | {facts['python']} | "
        f"redis-server {facts['redis']} | otel_cache at {facts.get('source') or 'unknown commit'}",
        f"- writer paced at {result['config']['rate']:,.0f} puts/s for {result['config']['write_s']:g} s "
        f"per row; readers hold a copy of every key; idle window {result['config']['idle_s']:g} s",
    ]
    if share["others"] is not None:
        lines.append(
            f"- other processes used {share['others']:.0%} of the CPUs (steal {share['steal']:.0%}); "
            f"load average at the end {facts['loadavg'][0]:.2f}; run took {facts['elapsed_s']} s"
        )
    lines += [
        "",
        "#### propagation (lag: publish → receipt; put→drop: put returned → reader's L1 copy gone)",
        "",
    ]
    lines += _table(
        [
            "processes",
            "writer API",
            "writes/s",
            "sent msgs / keys",
            "keys/msg",
            "received msgs / keys",
            "lag p50 / p99 / max ms",
            "put→drop p50 / p99 / max ms",
        ],
        [
            [
                str(row["processes"]),
                row["api"],
                f"{row['writes_per_s']:,.0f}",
                f"{row['sent_messages']:,} / {row['sent_keys']:,}",
                f"{row['sent_keys'] / max(1, row['sent_messages']):.2f}",
                f"{row['received_messages']:,} / {row['received_keys']:,}",
                _ms(row["lag"]),
                _ms(row["put_to_drop"]),
            ]
            for row in rows
        ],
    )
    lines += ["", "#### listener CPU (per reader, mean over readers)", ""]
    lines += _table(
        [
            "processes",
            "writer API",
            "idle ms CPU/s",
            "writing ms CPU/s",
            "added ms CPU/s",
            "µs per message",
            "writer ms CPU/s",
        ],
        [
            [
                str(row["processes"]),
                row["api"],
                f"{row['reader_cpu_idle_ms_per_s']:.2f}",
                f"{row['reader_cpu_busy_ms_per_s']:.1f}",
                f"{row['reader_cpu_busy_ms_per_s'] - row['reader_cpu_idle_ms_per_s']:.1f}",
                f"{row['listener_us_per_message']:.0f}",
                f"{row['writer_cpu_ms_per_s']:.0f}",
            ]
            for row in rows
        ],
    )
    lines += [
        "",
        f"#### cost added to a put (client CPU, unpaced sync put, {write['rounds']} alternating rounds "
        f"of {write['puts_per_round']:,})",
        "",
    ]
    cost_rows = []
    for label, key in (
        ("process (incl. publisher + listener)", "process"),
        ("calling thread only", "thread"),
    ):
        figures = write[key]
        low, high = figures["round_ratios"]
        cost_rows.append(
            [
                label,
                f"{figures['off_us']:.1f}",
                f"{figures['on_us']:.1f}",
                f"{figures['ratio']:.2f}x",
                f"{low:.2f}..{high:.2f}x",
            ]
        )
    lines += _table(["CPU", "off µs/put", "on µs/put", "on / off", "per-round on / off"], cost_rows)
    lines.append(f"\n(keys per message while unpaced: {write['keys_per_message']:.1f})")
    hit = write["hit"]
    lines += ["", "#### L1 hit (`MultiLevelCache.get`)", ""]
    hit_rows = [
        [
            "ns per hit (median)",
            f"{hit['off_ns']:.0f}",
            f"{hit['on_ns']:.0f}",
            f"{hit['on_ns'] / hit['off_ns']:.2f}x",
        ],
        [
            "ns per hit (min..max)",
            "{:.0f}..{:.0f}".format(*hit["off_range_ns"]),
            "{:.0f}..{:.0f}".format(*hit["on_range_ns"]),
            "",
        ],
    ]
    instructions = result["callgrind"]
    if instructions is not None:
        hit_rows.append(
            [
                "instructions per hit (callgrind)",
                f"{instructions['off_ir']:,.0f}",
                f"{instructions['on_ir']:,.0f}",
                f"{instructions['on_ir'] / instructions['off_ir']:.3f}x",
            ]
        )
    lines += _table(["", "invalidation off", "invalidation on", "on / off"], hit_rows)
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.propagation", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run of 10-20 s: the shape, not the figures"
    )
    parser.add_argument("--callgrind", action="store_true", help="also count instructions per hit (valgrind)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw results to PATH")
    parser.add_argument("--hit-child", nargs=3, metavar=("URL", "ON", "HITS"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.hit_child:
        url, on, hits = args.hit_child
        _hit_child(url, on == "on", int(hits))
        return 0
    config = replace(QUICK if args.quick else FULL, callgrind=args.callgrind)
    result = run(config)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
