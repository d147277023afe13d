"""Two threads and the event loop on one cache: throughput per side and lock waits.

The L1 cache guards its core with one ``threading.Lock`` (see
``otel_cache/l1/lock.py``). This scenario shows what that costs under mixed use::

    thread 1 ─┐  sync get/put, ADR mix (80% hits, 20% updates), flat out
    thread 2 ─┼─> AsyncLRUCache(max_entries=1000, default_ttl=600)
    loop     ─┘  one coroutine: await aget hits, flat out

Each run has three parts of ``duration_s`` each, on fresh caches:

1. ``alone``: the loop side alone (its ops/s without any thread);
2. ``own caches``: the same three sides at once, each on its own cache: they
   share the GIL but no lock (the control);
3. ``same cache``: the three sides on one cache, as drawn above.

Reported: ops/s per side in each part; the lock's own statistics in part 3
(``cache.lock_stats()``: contended waits, their max, the p99 estimated from its
buckets as the upper bound of the bucket holding the 99th percentile); and the
same waits split by side, exact, from a wait listener on the lock (it runs only
after a contended wait, outside the lock).

Every side shares one GIL, so a contended wait mostly means "the holder was
switched out while holding the lock" (``sys.getswitchinterval()``, 5 ms by default).
"""

from __future__ import annotations

import asyncio
import gc
import math
import sys
import threading
import time
from dataclasses import dataclass
from itertools import cycle, islice

from benchmarks.adr import Op, make_ops
from benchmarks.workload import TTL_S, VALUE, full_cache
from otel_cache.core.stats import LockWaitStats
from otel_cache.l1.cache import AsyncLRUCache

__all__ = ["bucket_quantile", "run_contention"]

THREADS = 2
_LOOP_KEYS = 100  # keys the loop side goes through between two looks at its deadline


def bucket_quantile(stats: LockWaitStats, q: float) -> float:
    """Upper bound in seconds of the bucket holding quantile ``q`` (inf: above the last bound)."""
    total = sum(stats.buckets)
    if not total:
        return 0.0
    seen = 0
    for bound, count in zip((*stats.bounds, math.inf), stats.buckets, strict=True):
        seen += count
        if seen >= q * total:
            return bound
    return math.inf


def _thread_side(
    cache: AsyncLRUCache[str, str],
    ops: list[Op],
    start: threading.Barrier,
    stop: threading.Event,
    rates: list[float],
) -> None:
    get, put = cache.get, cache.put
    done = 0
    start.wait()
    began = time.perf_counter()
    while not stop.is_set():
        for is_get, key in ops:
            if is_get:
                get(key)
            else:
                put(key, VALUE)
        done += len(ops)
    rates.append(done / (time.perf_counter() - began))


@dataclass(frozen=True, slots=True)
class _LoopSide:
    rate: float  # ops/s
    latencies: list[float]  # seconds, one per aget


async def _loop_side(cache: AsyncLRUCache[str, str], keys: list[str], duration_s: float) -> _LoopSide:
    # Each aget is timed (about 2 clock reads per op, in every part alike): a stall
    # behind a thread shows up as one slow aget, whatever its cause (lock or GIL).
    aget, clock = cache.aget, time.perf_counter
    latencies: list[float] = []
    record = latencies.append
    began = clock()
    deadline = began + duration_s
    while clock() < deadline:
        for key in keys:
            before = clock()
            await aget(key)
            record(clock() - before)
    return _LoopSide(len(latencies) / (clock() - began), latencies)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _waits(prefix: str, waits: list[float]) -> dict[str, float]:
    return {
        f"{prefix} contended waits": len(waits),
        f"{prefix} wait p99 µs": _quantile(waits, 0.99) * 1e6,
        f"{prefix} wait max µs": max(waits, default=0.0) * 1e6,
    }


def _latency(part: str, side: _LoopSide) -> dict[str, float]:
    return {
        f"loop aget p99 µs: {part}": _quantile(side.latencies, 0.99) * 1e6,
        f"loop aget max µs: {part}": max(side.latencies, default=0.0) * 1e6,
    }


def _mixed(
    runner: asyncio.Runner,
    loop_cache: AsyncLRUCache[str, str],
    thread_caches: list[AsyncLRUCache[str, str]],
    ops: list[Op],
    duration_s: float,
) -> tuple[_LoopSide, float]:
    """Threads on ``thread_caches`` and the loop on ``loop_cache`` at once: (loop side, threads ops/s)."""
    keys = [key for _, key in islice(cycle(ops), _LOOP_KEYS)]
    start, stop = threading.Barrier(len(thread_caches) + 1), threading.Event()
    rates: list[float] = []
    threads = [
        threading.Thread(target=_thread_side, args=(cache, ops, start, stop, rates), daemon=True)
        for cache in thread_caches
    ]
    for thread in threads:
        thread.start()
    start.wait()
    try:
        loop_side = runner.run(_loop_side(loop_cache, keys, duration_s))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return loop_side, sum(rates)


def run_contention(duration_s: float) -> dict[str, float]:
    """One run of each of the three set-ups; returns flat ``{metric: value}``, units in the names."""
    ops = make_ops()
    keys = [key for _, key in islice(cycle(ops), _LOOP_KEYS)]
    gc.disable()
    try:
        with asyncio.Runner() as runner:
            alone = runner.run(_loop_side(full_cache(TTL_S), keys, duration_s))
            own_caches = [full_cache(TTL_S) for _ in range(THREADS)]
            own_loop, own_threads = _mixed(runner, full_cache(TTL_S), own_caches, ops, duration_s)
            cache = full_cache(TTL_S)
            waits: list[tuple[int, float]] = []  # (thread id, seconds); list.append is atomic
            cache.lock.add_listener(lambda _kind, wait: waits.append((threading.get_ident(), wait)))
            shared_loop, shared_threads = _mixed(runner, cache, [cache] * THREADS, ops, duration_s)
    finally:
        gc.enable()
    lock = cache.lock_stats()
    loop_thread = threading.get_ident()
    return {
        "loop aget ops/s: alone": alone.rate,
        "loop aget ops/s: own caches": own_loop.rate,
        "loop aget ops/s: same cache": shared_loop.rate,
        f"{THREADS} threads get/put ops/s: own caches": own_threads,
        f"{THREADS} threads get/put ops/s: same cache": shared_threads,
        **_latency("alone", alone),
        **_latency("own caches", own_loop),
        **_latency("same cache", shared_loop),
        "lock contended waits": lock.contended,
        "lock max wait µs": lock.max_wait_s * 1e6,
        "lock p99 wait µs (bucket bound)": bucket_quantile(lock, 0.99) * 1e6,
        **_waits("loop-side", [wait for ident, wait in waits if ident == loop_thread]),
        **_waits("thread-side", [wait for ident, wait in waits if ident != loop_thread]),
        "switch interval µs": sys.getswitchinterval() * 1e6,
    }
