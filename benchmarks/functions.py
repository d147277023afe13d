"""What ``@cached`` adds to an L1 hit, ``python -m benchmarks.functions [--quick]``.

One L1-only ``MultiLevelCache``, every entry warm, and per call (sync, then async)::

    get            cache.get("user:42")                    the floor: a key already built
    get_or_set     cache.get_or_set(f"user:{uid}", load)   the hand-written equivalent
    @cached tmpl   user(42), key="user:{user_id}"          binding + template + the same get_or_set
    @cached digest user(42), the default key               binding + canonical JSON + BLAKE2b

A miss adds the same per-call cost to the load it starts (the key is built once per
call), so these differences are what the decorator costs on a miss too.

A second table prices the options on a miss (every call a new key, L1 only, a loader
that returns at once), against a plain ``get_or_set`` miss::

    plain          get_or_set(key, load, 60)
    fail_safe      ... fail_safe=FailSafe(max_age=600)       the L1 copy beside the entry
    refresh_ahead  ... refresh_ahead=0.8                     the refresh schedule
    hard_timeout   ... hard_timeout=1                        the load in a thread (sync) or a task (async)

Method: ``timeit`` per call (the async calls awaited in a loop inside one coroutine),
gc off, the variants interleaved round by round (``--rounds``, 7 by default), the
median of the rounds, and the ratio to ``get_or_set`` of the medians. Progress goes to
stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Iterator
from typing import Any

from otel_cache import CacheConfig, FailSafe, MultiLevelCache, cached

__all__ = ["MISS_VARIANTS", "VARIANTS", "main", "measure", "measure_misses"]

VARIANTS = ("get", "get_or_set", "@cached tmpl", "@cached digest")
MISS_VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "fail_safe": {"fail_safe": FailSafe(max_age=600)},
    "refresh_ahead": {"refresh_ahead": 0.8},
    "hard_timeout": {"hard_timeout": 1.0},
}


def _sync_calls(cache: MultiLevelCache[Any, Any]) -> dict[str, Callable[[], Any]]:
    def load() -> dict[str, int]:
        return {"id": 42}

    @cached(cache=cache, key="user:{user_id}")
    def by_template(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    @cached(cache=cache)
    def by_digest(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    uid = 42
    return {
        "get": lambda: cache.get("user:42"),
        "get_or_set": lambda: cache.get_or_set(f"user:{uid}", load),
        "@cached tmpl": lambda: by_template(uid),
        "@cached digest": lambda: by_digest(uid),
    }


def _async_calls(cache: MultiLevelCache[Any, Any]) -> dict[str, Callable[[int], Any]]:
    async def load() -> dict[str, int]:
        return {"id": 42}

    @cached(cache=cache, key="auser:{user_id}")
    async def by_template(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    @cached(cache=cache)
    async def by_digest(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    uid = 42

    async def get(n: int) -> None:
        for _ in range(n):
            await cache.aget("auser:42")

    async def get_or_set(n: int) -> None:
        for _ in range(n):
            await cache.aget_or_set(f"auser:{uid}", load)

    async def template(n: int) -> None:
        for _ in range(n):
            await by_template(uid)

    async def digest(n: int) -> None:
        for _ in range(n):
            await by_digest(uid)

    return {"get": get, "get_or_set": get_or_set, "@cached tmpl": template, "@cached digest": digest}


def measure(rounds: int, loops: int) -> list[dict[str, Any]]:
    """One row per API and variant: µs per call (median of rounds) and the ratio to get_or_set."""
    cache: MultiLevelCache[Any, Any] = MultiLevelCache(CacheConfig(), async_mode=True)
    rows = []
    try:
        sync_calls = _sync_calls(cache)
        for call in sync_calls.values():
            call()  # warm: every variant hits from here on
        async_calls = _async_calls(cache)
        loop = asyncio.new_event_loop()
        try:
            for acall in async_calls.values():
                loop.run_until_complete(acall(1))

            def timed_async(acall: Callable[[int], Any]) -> float:
                started = time.perf_counter()
                loop.run_until_complete(acall(loops))
                return (time.perf_counter() - started) / loops * 1e6

            for api in ("sync", "async"):
                samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
                for index in range(rounds):
                    order = list(VARIANTS) if index % 2 == 0 else list(reversed(VARIANTS))
                    for name in order:
                        if api == "sync":
                            us = timeit.timeit(sync_calls[name], number=loops) / loops * 1e6
                        else:
                            us = timed_async(async_calls[name])
                        samples[name].append(us)
                    print(f"  {api} round {index + 1}/{rounds}", file=sys.stderr)
                reference = statistics.median(samples["get_or_set"])
                for name in VARIANTS:
                    median = statistics.median(samples[name])
                    rows.append({"api": api, "variant": name, "us": median, "ratio": median / reference})
        finally:
            loop.close()
    finally:
        cache.close()
    return rows


def measure_misses(rounds: int, loops: int) -> list[dict[str, Any]]:
    """One row per API and option: µs per get_or_set miss and the ratio to a plain miss."""
    keys = itertools.count()
    return [row for api in ("sync", "async") for row in _misses(api, rounds, loops, keys)]


def _misses(api: str, rounds: int, loops: int, keys: Iterator[int]) -> list[dict[str, Any]]:
    cache: MultiLevelCache[Any, Any] = MultiLevelCache(
        CacheConfig(l1_max_entries=None), async_mode=api == "async"
    )
    loop = asyncio.new_event_loop()

    def load() -> int:
        return 1

    def timed(options: dict[str, Any]) -> float:
        batch = [f"miss-{next(keys)}" for _ in range(loops)]
        if api == "sync":
            started = time.perf_counter()
            for key in batch:
                cache.get_or_set(key, load, 60, **options)
            return (time.perf_counter() - started) / loops * 1e6

        async def run() -> None:
            for key in batch:
                await cache.aget_or_set(key, load, 60, **options)

        started = time.perf_counter()
        loop.run_until_complete(run())
        return (time.perf_counter() - started) / loops * 1e6

    try:
        samples: dict[str, list[float]] = {name: [] for name in MISS_VARIANTS}
        for index in range(rounds):
            names = list(MISS_VARIANTS) if index % 2 == 0 else list(reversed(MISS_VARIANTS))
            for name in names:
                samples[name].append(timed(MISS_VARIANTS[name]))
            cache.l1.clear()
            print(f"  {api} misses, round {index + 1}/{rounds}", file=sys.stderr)
    finally:
        loop.run_until_complete(cache.aclose())
        loop.close()
    reference = statistics.median(samples["plain"])
    return [
        {
            "api": api,
            "variant": name,
            "us": statistics.median(samples[name]),
            "ratio": statistics.median(samples[name]) / reference,
        }
        for name in MISS_VARIANTS
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--loops", type=int, default=20000)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 200 calls: a smoke run")
    args = parser.parse_args(argv)
    rounds, loops = (3, 200) if args.quick else (args.rounds, args.loops)
    gc.disable()
    try:
        rows = measure(rounds, loops)
        misses = measure_misses(rounds, max(loops // 10, 20))
    finally:
        gc.enable()
    print("| API | call (L1 hit) | µs per call | / get_or_set |")
    print("| --- | --- | ---: | ---: |")
    for row in rows:
        print(f"| {row['api']} | {row['variant']} | {row['us']:.2f} | {row['ratio']:.2f}x |")
    print()
    print("| API | get_or_set miss with | µs per call | / plain |")
    print("| --- | --- | ---: | ---: |")
    for row in misses:
        print(f"| {row['api']} | {row['variant']} | {row['us']:.2f} | {row['ratio']:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
