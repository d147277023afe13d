"""Cross-process invalidation: propagation lag, the listener's CPU, the cost added to a write.

    python -m benchmarks.invalidation            # full run (about a minute)
    python -m benchmarks.invalidation --quick    # a few seconds: the shape, not the figures

Everything runs on loopback against a redis-server it starts itself on a free port.

* **Lag**: one writer process ``put``s distinct keys at a paced rate; 1 or 3 reader
  processes on the same namespace report the lags their listener measured (sender's
  clock at publishing to receipt, :attr:`Coherence.lags`), and their CPU per second.
* **Write cost**: client CPU per ``put`` with the channel on and off, alternating
  rounds in one process: the process's CPU (which includes the publisher and the
  listener threads) and the calling thread's alone.
* **Hit**: ns per L1 hit with the channel on and off (the hit path does not change).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
import timeit
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from otel_cache import CacheConfig, MultiLevelCache  # noqa: E402
from tests.support import RedisServer  # noqa: E402

__all__ = ["Lag", "run"]


@dataclass(frozen=True)
class Lag:
    processes: int
    api: str
    writes: int
    messages: int
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    listener_cpu_ms_per_s: float


def _reader(url: str, results: Any, ready: Any, stop: Any) -> None:
    cache: MultiLevelCache[str, int] = MultiLevelCache(CacheConfig(redis_url=url, namespace="bench"))
    cache.get("warm-up")  # subscribes
    ready.set()
    cpu, wall = time.process_time(), time.monotonic()
    stop.wait()
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    coherence = cache.tiers.coherence
    assert coherence is not None
    results.put((list(coherence.lags), cpu / wall))
    cache.close()


def _write(url: str, api: str, rate: float, seconds: float) -> tuple[int, int]:
    import asyncio

    cache: MultiLevelCache[str, int] = MultiLevelCache(
        CacheConfig(redis_url=url, namespace="bench"), async_mode=api == "async"
    )

    async def paced_async() -> int:
        await cache.aget("warm-up")
        start, i = time.monotonic(), 0
        while time.monotonic() - start < seconds:
            await cache.aput(f"k{i}", i)
            i += 1
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        await asyncio.sleep(0.5)
        await cache.aclose()
        return i

    if api == "async":
        writes = asyncio.run(paced_async())
    else:
        cache.get("warm-up")
        start, writes = time.monotonic(), 0
        while time.monotonic() - start < seconds:
            cache.put(f"k{writes}", writes)
            writes += 1
            time.sleep(max(0.0, start + writes / rate - time.monotonic()))
        time.sleep(0.5)
        cache.close()
    coherence = cache.tiers.coherence
    assert coherence is not None
    return writes, coherence.stats().sent_messages


def lag(url: str, readers: int, api: str, rate: float, seconds: float) -> Lag:
    ctx = mp.get_context("spawn")
    results, stop = ctx.Queue(), ctx.Event()
    ready = [ctx.Event() for _ in range(readers)]
    procs = [ctx.Process(target=_reader, args=(url, results, r, stop)) for r in ready]
    for proc in procs:
        proc.start()
    for event in ready:
        event.wait(60)
    writes, messages = _write(url, api, rate, seconds)
    stop.set()
    reports = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
    lags = sorted(sample for samples, _ in reports for sample in samples)

    def quantile(q: float) -> float:
        return lags[min(len(lags) - 1, int(q * len(lags)))] * 1000 if lags else float("nan")

    return Lag(
        processes=readers + 1,
        api=api,
        writes=writes,
        messages=messages,
        samples=len(lags),
        p50_ms=quantile(0.5),
        p99_ms=quantile(0.99),
        max_ms=lags[-1] * 1000 if lags else float("nan"),
        listener_cpu_ms_per_s=statistics.mean(cpu for _, cpu in reports) * 1000,
    )


def write_cost(url: str, rounds: int, puts: int) -> dict[str, float]:
    caches = {
        on: MultiLevelCache(CacheConfig(redis_url=url, namespace=f"cost-{on}", invalidation=on))
        for on in (True, False)
    }
    for cache in caches.values():
        cache.get("warm-up")
    process: dict[bool, list[float]] = {True: [], False: []}
    thread: dict[bool, list[float]] = {True: [], False: []}
    for round_ in range(rounds):
        for on in (True, False) if round_ % 2 else (False, True):
            cache = caches[on]
            p0, t0 = time.process_time(), time.thread_time()
            for i in range(puts):
                cache.put(f"k{i}", i)
            process[on].append((time.process_time() - p0) / puts * 1e6)
            thread[on].append((time.thread_time() - t0) / puts * 1e6)
            time.sleep(0.1)
    hits = {}
    for on, cache in caches.items():
        cache.put("hit", 1)
        assert cache.l1.get("hit") == 1
        hits[on] = min(timeit.repeat(lambda c=cache: c.get("hit"), number=100_000, repeat=5)) / 100_000 * 1e9
        cache.close()
    off_p, on_p = statistics.median(process[False]), statistics.median(process[True])
    off_t, on_t = statistics.median(thread[False]), statistics.median(thread[True])
    return {
        "put_process_cpu_us_off": off_p,
        "put_process_cpu_us_on": on_p,
        "put_process_ratio": on_p / off_p,
        "put_thread_cpu_us_off": off_t,
        "put_thread_cpu_us_on": on_t,
        "put_thread_ratio": on_t / off_t,
        "hit_ns_off": hits[False],
        "hit_ns_on": hits[True],
    }


def run(*, quick: bool) -> dict[str, Any]:
    seconds, rounds, puts = (1.0, 2, 300) if quick else (5.0, 6, 3000)
    server = RedisServer()
    server.start()
    try:
        lags = [
            asdict(lag(server.url, readers, api, 1000.0, seconds))
            for readers in (1, 3)
            for api in ("sync", "async")
        ]
        return {"lag": lags, "write": write_cost(server.url, rounds, puts)}
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: the shape, not the figures")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run(quick=args.quick)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print("| processes | writer API | writes | messages | p50 ms | p99 ms | max ms | listener CPU ms/s |")
    print("|---|---|---|---|---|---|---|---|")
    for row in result["lag"]:
        print(
            f"| {row['processes']} | {row['api']} | {row['writes']} | {row['messages']} "
            f"| {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['max_ms']:.2f} "
            f"| {row['listener_cpu_ms_per_s']:.0f} |"
        )
    w = result["write"]
    print(
        f"\nput, client CPU: off {w['put_process_cpu_us_off']:.1f} us, "
        f"on {w['put_process_cpu_us_on']:.1f} us "
        f"(x{w['put_process_ratio']:.2f} for the process; calling thread x{w['put_thread_ratio']:.2f})"
    )
    print(f"L1 hit: off {w['hit_ns_off']:.0f} ns, on {w['hit_ns_on']:.0f} ns")


if __name__ == "__main__":
    main()
