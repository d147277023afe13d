"""Threads on the sync API and coroutines on the async API, all on one AsyncLRUCache at once.

Every worker owns its keys and is the only one to write them, with increasing versions,
so it knows the one value each key may hold: any read of an older version, any stored
entry that is not its owner's last write, is a lost or stale update. One generator
(``worker_flow``) decides every operation; two drivers run it, a thread on the sync API
and a coroutine on the async API, so both sides do the same work.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from otel_cache.core.sizing import entry_size, shallow_entry_size
from otel_cache.core.stats import CacheStats
from otel_cache.l1 import AsyncLRUCache
from tests.support import ManualClock

THREADS = 4
COROUTINES = 200
DURATION_S = 0.7
TTLS = (None, None, 0.1, 30.0)  # None: the cache's default TTL
MISS: Any = object()
ABSENT: Any = object()

Op = tuple[str, tuple[Any, ...]]
Flow = Generator[Op, Any, None]


@dataclass
class Worker:
    name: str
    keys: list[str]
    last: dict[str, Any] = field(default_factory=dict)  # key -> last stored value, or ABSENT
    lookups: int = 0
    puts: int = 0
    ops: int = 0

    def check_read(self, key: str, got: Any) -> None:
        if got is not MISS:
            assert got == self.last.get(key, ABSENT), (
                f"{key}: read {got!r}, last wrote {self.last.get(key)!r}"
            )


def check_snapshot(stats: CacheStats, *, max_entries: int | None, max_bytes: int | None) -> None:
    ev = stats.evictions
    assert stats.inserts + stats.updates + ev["rejected"] == stats.puts
    assert stats.inserts - (ev["size"] + ev["expired"] + ev["deleted"]) == stats.entries
    if max_entries is not None:
        assert stats.entries <= max_entries
    if max_bytes is not None:
        assert 0 <= stats.bytes <= max_bytes


def worker_flow(
    w: Worker,
    rng: random.Random,
    deadline: float,
    *,
    clock: ManualClock | None,
    oversize: Any,
    max_entries: int | None,
    max_bytes: int | None,
    can_purge: bool,
) -> Flow:
    """Yield (method, args) operations; receive each result back."""
    version = 0
    batch = min(4, len(w.keys))
    while True:  # at least one operation, however late the worker starts
        w.ops += 1
        key = rng.choice(w.keys)
        r = rng.random()
        if r < 0.35:
            version += 1
            value = (w.name, key, version)
            stored = yield ("put", (key, value, rng.choice(TTLS)))
            w.puts += 1
            assert stored is True
            w.last[key] = value
        elif r < 0.40 and oversize is not None:
            stored = yield ("put", (key, oversize))
            w.puts += 1
            assert stored is False
            w.last[key] = ABSENT  # a rejected put drops the older value
        elif r < 0.50:
            yield ("delete", (key,))
            w.last[key] = ABSENT
        elif r < 0.58:
            pairs = []
            for k in rng.sample(w.keys, batch):
                version += 1
                pairs.append((k, (w.name, k, version)))
            stored = yield ("put_many", (pairs,))
            w.puts += len(pairs)
            assert stored == len(pairs)
            w.last.update(pairs)
        elif r < 0.66:
            wanted = rng.sample(w.keys, batch)
            found = yield ("get_many", (wanted,))
            w.lookups += len(wanted)
            assert set(found) <= set(wanted)
            for k, v in found.items():
                w.check_read(k, v)
        elif r < 0.70:
            present = yield ("contains", (key,))
            assert isinstance(present, bool)
        elif r < 0.72:
            stats = yield ("stats", ())
            check_snapshot(stats, max_entries=max_entries, max_bytes=max_bytes)
        elif r < 0.73 and can_purge:
            yield ("purge_expired", ())
        else:
            got = yield ("get", (key, MISS))
            w.lookups += 1
            w.check_read(key, got)
        if clock is not None and w.ops % 16 == 0:
            clock.advance(0.05)
        if time.perf_counter() >= deadline:
            return


SYNC_CALLS: dict[str, Callable[..., Any]] = {
    "contains": lambda cache, key: key in cache,
}


def run_sync(cache: AsyncLRUCache[str, Any], flow: Flow, errors: list[BaseException]) -> None:
    try:
        op = next(flow)
        while True:
            name, args = op
            call = SYNC_CALLS.get(name)
            result = call(cache, *args) if call else getattr(cache, name)(*args)
            op = flow.send(result)
    except StopIteration:
        pass
    except BaseException as exc:  # reported by the test, not lost in a thread
        errors.append(exc)


async def run_async(cache: AsyncLRUCache[str, Any], flow: Flow, errors: list[BaseException]) -> None:
    try:
        op = next(flow)
        while True:
            name, args = op
            result = await getattr(cache, "a" + name)(*args)
            await asyncio.sleep(0)  # let the other coroutines interleave
            op = flow.send(result)
    except StopIteration:
        pass
    except BaseException as exc:
        errors.append(exc)


async def stress(
    *,
    max_entries: int | None,
    max_bytes: int | None,
    default_ttl: float | None,
    oversize: Any,
    advance_clock: bool,
) -> tuple[AsyncLRUCache[str, Any], list[Worker], list[float]]:
    clock = ManualClock(start=1000.0)
    cache: AsyncLRUCache[str, Any] = AsyncLRUCache(
        max_entries=max_entries,
        max_bytes=max_bytes,
        default_ttl=default_ttl,
        clock=clock,
        expiry_resolution=0.1,
        expiry_batch=16,
    )
    notified: list[float] = []
    cache.lock.add_listener(lambda kind, wait: notified.append(wait))
    threads_w = [Worker(f"t{i}", [f"t{i}:{j}" for j in range(40)]) for i in range(THREADS)]
    coros_w = [Worker(f"c{i}", [f"c{i}:{j}" for j in range(6)]) for i in range(COROUTINES)]
    deadline = time.perf_counter() + DURATION_S
    errors: list[BaseException] = []
    common = {"oversize": oversize, "max_entries": max_entries, "max_bytes": max_bytes}

    threads = [
        threading.Thread(
            target=run_sync,
            args=(
                cache,
                worker_flow(
                    w,
                    random.Random(i),
                    deadline,
                    clock=clock if advance_clock and i == 0 else None,
                    can_purge=True,
                    **common,
                ),
                errors,
            ),
            name=f"stress-{w.name}",
        )
        for i, w in enumerate(threads_w)
    ]
    for thread in threads:
        thread.start()
    try:
        await asyncio.gather(
            *(
                run_async(
                    cache,
                    worker_flow(w, random.Random(1000 + i), deadline, clock=None, can_purge=False, **common),
                    errors,
                )
                for i, w in enumerate(coros_w)
            )
        )
    finally:
        for thread in threads:
            thread.join(30)
    assert not any(t.is_alive() for t in threads)
    assert errors == [], errors[:3]
    workers = threads_w + coros_w
    assert all(w.ops > 0 for w in workers)
    return cache, workers, notified


def stored_entries(cache: AsyncLRUCache[str, Any]) -> list[tuple[str, Any]]:
    """White-box: every stored (key, value), expired or not (``items()`` hides expired ones)."""
    return [(key, entry[0]) for key, entry in cache._core._data.items()]


def check_final_state(
    cache: AsyncLRUCache[str, Any], workers: list[Worker], notified: list[float]
) -> tuple[CacheStats, dict[str, Worker]]:
    stats = cache.stats()
    check_snapshot(stats, max_entries=cache._core.max_entries, max_bytes=cache._core.max_bytes)
    # Every lookup and every put that reached the core was counted, none twice.
    assert stats.hits + stats.misses == sum(w.lookups for w in workers)
    assert stats.puts == sum(w.puts for w in workers)
    entries = stored_entries(cache)
    assert stats.entries == len(entries) == len(cache)
    size = entry_size if stats.max_bytes is not None else shallow_entry_size  # no walk without a bound
    assert stats.bytes == sum(size(k, v) for k, v in entries)
    owners = {key: w for w in workers for key in w.keys}
    for key, value in entries:
        last = owners[key].last.get(key, ABSENT)
        assert last is not ABSENT, f"{key} holds {value!r} after its owner deleted it"
        assert value == last, f"{key} holds {value!r}, its owner last wrote {last!r}"
    lock = cache.lock_stats()
    assert sum(lock.buckets) == lock.contended
    assert lock.total_wait_s >= lock.max_wait_s >= 0.0
    assert len(notified) == lock.contended  # one notification per timed wait
    return stats, owners


async def test_small_cache_under_threads_and_coroutines() -> None:
    max_entries, max_bytes = 64, 8_000
    cache, workers, notified = await stress(
        max_entries=max_entries,
        max_bytes=max_bytes,
        default_ttl=0.5,
        oversize="x" * (max_bytes + 1000),
        advance_clock=True,
    )
    stats, _ = check_final_state(cache, workers, notified)
    assert stats.entries <= max_entries
    assert stats.bytes <= max_bytes
    ev = stats.evictions
    # The load really exercised every path (these are counts of thousands, not races).
    assert ev["size"] > 0
    assert ev["expired"] > 0
    assert ev["deleted"] > 0
    assert ev["rejected"] > 0
    assert stats.hits > 0
    assert stats.misses > 0


async def test_large_cache_keeps_every_final_value() -> None:
    cache, workers, notified = await stress(
        max_entries=None, max_bytes=None, default_ttl=None, oversize=None, advance_clock=False
    )
    stats, _ = check_final_state(cache, workers, notified)
    assert stats.evictions["size"] == stats.evictions["expired"] == stats.evictions["rejected"] == 0
    expected = {key: value for w in workers for key, value in w.last.items() if value is not ABSENT}
    assert stats.entries == len(expected)
    assert cache.get_many(expected) == expected
    for w in workers:
        for key in w.keys:
            if w.last.get(key, ABSENT) is ABSENT:
                assert key not in cache
