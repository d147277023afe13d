"""ADR-014's own figures, re-measured on our cache: batches of 1000 mixed operations.

ADR-014 reports "Sync cache: 1000 ops in 0.450s", "Async cache: 1000 ops in 0.215s"
and "Concurrent async: 10 workers, 1000 ops in 0.780s" without saying what an op
was. Here an op is drawn from a fixed, shuffled list of 1000: 80% hits
(``get``/``aget``) and 20% updates (``put``/``aput``), on random keys of a full
``AsyncLRUCache(max_entries=1000, default_ttl=600)``:

* ``sync``: one loop of 1000 ``cache.get`` / ``cache.put`` calls;
* ``async``: one coroutine awaiting 1000 ``cache.aget`` / ``cache.aput`` calls;
* ``10 workers``: ``asyncio.gather`` of 10 coroutines doing 100 of them each
  (1000 ops in all). No op suspends, so the workers run one after another.

Each figure is the wall time of a whole batch (gc off); the three batches are
repeated round-robin, and the report gives the median in ms per 1000 ops.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.workload import KEYS, TTL_S, VALUE, full_cache
from otel_cache.l1.cache import AsyncLRUCache

__all__ = ["OPS", "AdrSample", "Op", "make_ops", "run_adr"]

OPS = 1_000
WORKERS = 10
GET_SHARE = 0.8
Op = tuple[bool, str]  # (is a get, key)


@dataclass(frozen=True, slots=True)
class AdrSample:
    """Seconds per batch of ``OPS`` ops, one value per repeat, and the ADR's claim."""

    name: str
    claim_s: float
    seconds: list[float]


def make_ops(seed: int = 14) -> list[Op]:
    """Exactly ``GET_SHARE`` gets, the rest puts, on random keys, in a seeded random order."""
    rng = random.Random(seed)
    gets = round(OPS * GET_SHARE)
    kinds = [True] * gets + [False] * (OPS - gets)
    rng.shuffle(kinds)
    return [(is_get, rng.choice(KEYS)) for is_get in kinds]


def _sync_batch(cache: AsyncLRUCache[str, str], ops: list[Op]) -> float:
    get, put = cache.get, cache.put
    start = time.perf_counter()
    for is_get, key in ops:
        if is_get:
            get(key)
        else:
            put(key, VALUE)
    return time.perf_counter() - start


async def _async_ops(cache: AsyncLRUCache[str, str], ops: list[Op]) -> None:
    aget, aput = cache.aget, cache.aput
    for is_get, key in ops:
        if is_get:
            await aget(key)
        else:
            await aput(key, VALUE)


async def _async_batch(cache: AsyncLRUCache[str, str], ops: list[Op]) -> float:
    start = time.perf_counter()
    await _async_ops(cache, ops)
    return time.perf_counter() - start


async def _workers_batch(cache: AsyncLRUCache[str, str], ops: list[Op]) -> float:
    share = len(ops) // WORKERS
    start = time.perf_counter()
    await asyncio.gather(*(_async_ops(cache, ops[i * share : (i + 1) * share]) for i in range(WORKERS)))
    return time.perf_counter() - start


def run_adr(repeats: int) -> list[AdrSample]:
    """Time each of the three ADR batches ``repeats`` times, interleaved, each on its own cache."""
    ops = make_ops()
    with asyncio.Runner() as runner:
        sync_cache, async_cache, workers_cache = (full_cache(TTL_S) for _ in range(3))
        batches: list[tuple[str, float, Callable[[], float]]] = [
            ("sync: 1000 ops", 0.450, lambda: _sync_batch(sync_cache, ops)),
            ("async: 1000 ops", 0.215, lambda: runner.run(_async_batch(async_cache, ops))),
            (
                f"async: {WORKERS} workers, 1000 ops",
                0.780,
                lambda: runner.run(_workers_batch(workers_cache, ops)),
            ),
        ]
        for _, _, batch in batches:
            batch()  # warm-up, not counted
        seconds: list[list[float]] = [[] for _ in batches]
        gc.disable()
        try:
            # Round-robin, so that a busy spell of the machine hits every batch alike.
            for _ in range(repeats):
                for (_, _, batch), times in zip(batches, seconds, strict=True):
                    times.append(batch())
        finally:
            gc.enable()
    return [AdrSample(name, claim, times) for (name, claim, _), times in zip(batches, seconds, strict=True)]
