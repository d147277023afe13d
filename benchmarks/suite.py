"""The rows of the L1 table that need nothing but the standard library and our cache.

* ``baseline``: what the loop, the key source and the building blocks of any LRU
  cost on this machine (they also let figures be compared across machines);
* ``minimal LRU``: :mod:`benchmarks.minlru`, the floor every ratio is taken against;
* ``otel_cache``: :class:`~otel_cache.l1.AsyncLRUCache` with its defaults
  (hit counters on, ``deep_sizeof`` sizer, one ``threading.Lock``), without and with
  a default TTL.

Statements call methods through the instance (``c.get(k)``), as user code does.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from benchmarks.harness import Bench, Namespace
from benchmarks.minlru import AsyncMinLRU
from benchmarks.workload import CAPACITY, HIT_KEY, KEYS, TTL_S, VALUE, full_cache, insert_keys

__all__ = ["baseline_benches", "minimal_benches", "otel_cache_benches"]


def _namespace(cache: object) -> Namespace:
    return {"c": cache, "k": HIT_KEY, "v": VALUE, "keys": insert_keys()}


async def _noop() -> None:
    return None


def baseline_benches() -> list[Bench]:
    """Empty loops, the insert key source, dict/OrderedDict/lock/clock primitives."""
    group = "baseline"
    return [
        Bench("loop overhead (pass)", group, "pass", dict),
        Bench("async loop overhead (pass)", group, "pass", dict, is_async=True),
        Bench("next(cycle) (put-insert key source)", group, "next(keys)", lambda: {"keys": insert_keys()}),
        Bench("dict.get hit", group, "d.get(k)", lambda: {"d": dict.fromkeys(KEYS, VALUE), "k": HIT_KEY}),
        Bench(
            "OrderedDict [k] + move_to_end",
            group,
            "od[k]; od.move_to_end(k)",
            lambda: {"od": OrderedDict.fromkeys(KEYS, VALUE), "k": HIT_KEY},
        ),
        Bench("time.monotonic()", group, "monotonic()", lambda: {"monotonic": time.monotonic}),
        Bench(
            "threading.Lock acquire()+release()",
            group,
            "lock.acquire(); lock.release()",
            lambda: {"lock": threading.Lock()},
        ),
        Bench("await trivial coroutine", group, "await noop()", lambda: {"noop": _noop}, is_async=True),
    ]


def _min_lru() -> Namespace:
    cache = AsyncMinLRU(CAPACITY)
    for key in KEYS:
        cache.put(key, VALUE)
    return _namespace(cache)


def minimal_benches() -> list[Bench]:
    """The OrderedDict LRU of :mod:`benchmarks.minlru`: the 1.0x of the ratio column."""
    group = "minimal LRU"
    return [
        Bench("MinLRU.get hit", group, "c.get(k)", _min_lru, kind="get"),
        Bench("MinLRU.put update", group, "c.put(k, v)", _min_lru, kind="update"),
        Bench("MinLRU.put insert+evict", group, "c.put(next(keys), v)", _min_lru, kind="insert"),
        Bench("AsyncMinLRU await aget hit", group, "await c.aget(k)", _min_lru, kind="aget", is_async=True),
        Bench(
            "AsyncMinLRU await aput update",
            group,
            "await c.aput(k, v)",
            _min_lru,
            kind="aupdate",
            is_async=True,
        ),
    ]


def otel_cache_benches() -> list[Bench]:
    """``AsyncLRUCache`` hit, update and insert+evict, sync and async, without and with a TTL."""
    benches = []
    for ttl, label in ((None, "AsyncLRUCache"), (TTL_S, f"AsyncLRUCache ttl={TTL_S:g}")):

        def setup(ttl: float | None = ttl) -> Namespace:
            return _namespace(full_cache(ttl))

        benches += [
            Bench(f"{label} get hit", "otel_cache", "c.get(k)", setup, kind="get"),
            Bench(
                f"{label} await aget hit", "otel_cache", "await c.aget(k)", setup, kind="aget", is_async=True
            ),
            Bench(f"{label} put update", "otel_cache", "c.put(k, v)", setup, kind="update"),
            Bench(
                f"{label} await aput update",
                "otel_cache",
                "await c.aput(k, v)",
                setup,
                kind="aupdate",
                is_async=True,
            ),
            Bench(f"{label} put insert+evict", "otel_cache", "c.put(next(keys), v)", setup, kind="insert"),
        ]
    return benches
