"""Rows for other Python caches, each measured on the same workload as ours.

A peer that is not installed is skipped, never fatal: :func:`peer_benches`
returns the rows it can run and the names of the packages it skipped. Peers are
imported only in their setup, so that their import-time side effects (theine
starts a maintenance thread, which wakes once a second) come after the ADR and
contended scenarios, which run first.

* cachetools ``LRUCache`` / ``TTLCache(ttl=600)``: ``get`` hit, ``c[k] = v``
  update and insert+evict (not thread-safe; no lock).
* async-lru ``alru_cache``: a hit of a decorated coroutine function.
* cashews ``mem://``: ``await cache.get`` hit and ``await cache.set`` update.
* aiocache ``SimpleMemoryCache(timeout=None)``: ``await get`` hit, ``await set`` update
  (the default 5 s timeout wraps every call in ``asyncio.wait_for``).
* theine ``Cache`` (W-TinyLFU, locked shards): ``get`` hit, ``set`` update and
  insert (TinyLFU may refuse to admit a new key, so "insert" need not evict).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from benchmarks.harness import Bench, Namespace
from benchmarks.workload import CAPACITY, HIT_KEY, KEYS, TTL_S, VALUE, insert_keys

__all__ = ["peer_benches"]

_GROUP = "peers"


def _namespace(cache: object) -> Namespace:
    return {"c": cache, "k": HIT_KEY, "v": VALUE, "keys": insert_keys()}


def _cachetools(ttl: float | None) -> Namespace:
    import cachetools

    cache: cachetools.Cache[str, str]
    cache = cachetools.LRUCache(CAPACITY) if ttl is None else cachetools.TTLCache(CAPACITY, ttl)
    for key in KEYS:
        cache[key] = VALUE
    return _namespace(cache)


def _cachetools_benches() -> list[Bench]:
    benches = []
    for ttl, label in ((None, "cachetools.LRUCache"), (TTL_S, f"cachetools.TTLCache ttl={TTL_S:g}")):

        def setup(ttl: float | None = ttl) -> Namespace:
            return _cachetools(ttl)

        benches += [
            Bench(f"{label} get hit", _GROUP, "c.get(k)", setup, kind="get"),
            Bench(f"{label} [k]=v update", _GROUP, "c[k] = v", setup, kind="update"),
            Bench(f"{label} [k]=v insert+evict", _GROUP, "c[next(keys)] = v", setup, kind="insert"),
        ]
    return benches


async def _async_lru() -> Namespace:
    from async_lru import alru_cache

    @alru_cache(maxsize=CAPACITY)
    async def load(key: str) -> str:
        return VALUE

    for key in KEYS:
        await load(key)
    return {"load": load, "k": HIT_KEY}


async def _cashews() -> Namespace:
    from cashews import Cache

    cache = Cache()
    cache.setup("mem://")
    for key in KEYS:
        await cache.set(key, VALUE)
    return _namespace(cache)


async def _aiocache() -> Namespace:
    from aiocache import SimpleMemoryCache  # type: ignore[import-untyped]

    cache = SimpleMemoryCache(timeout=None)
    for key in KEYS:
        await cache.set(key, VALUE)
    return _namespace(cache)


async def _aclose(ns: Namespace) -> None:
    await ns["c"].close()


def _theine() -> Namespace:
    from theine import Cache

    cache: Cache[str, str] = Cache(CAPACITY)
    for key in KEYS:
        cache.set(key, VALUE)
    return _namespace(cache)


def _close(ns: Namespace) -> None:
    ns["c"].close()


def _async_lru_benches() -> list[Bench]:
    return [
        Bench("async-lru alru_cache hit", _GROUP, "await load(k)", _async_lru, kind="aget", is_async=True)
    ]


def _cashews_benches() -> list[Bench]:
    name = "cashews mem://"
    return [
        Bench(f"{name} await get hit", _GROUP, "await c.get(k)", _cashews, "aget", True, _aclose),
        Bench(f"{name} await set update", _GROUP, "await c.set(k, v)", _cashews, "aupdate", True, _aclose),
    ]


def _aiocache_benches() -> list[Bench]:
    name = "aiocache SimpleMemoryCache"
    return [
        Bench(f"{name} await get hit", _GROUP, "await c.get(k)", _aiocache, "aget", True, _aclose),
        Bench(f"{name} await set update", _GROUP, "await c.set(k, v)", _aiocache, "aupdate", True, _aclose),
    ]


def _theine_benches() -> list[Bench]:
    return [
        Bench("theine.Cache get hit", _GROUP, "c.get(k)", _theine, kind="get", teardown=_close),
        Bench("theine.Cache set update", _GROUP, "c.set(k, v)", _theine, kind="update", teardown=_close),
        Bench(
            "theine.Cache set insert", _GROUP, "c.set(next(keys), v)", _theine, kind="insert", teardown=_close
        ),
    ]


_PEERS: tuple[tuple[str, Callable[[], list[Bench]]], ...] = (
    ("cachetools", _cachetools_benches),
    ("async_lru", _async_lru_benches),
    ("cashews", _cashews_benches),
    ("aiocache", _aiocache_benches),
    ("theine", _theine_benches),
)


def peer_benches() -> tuple[list[Bench], list[str]]:
    """The rows of every installed peer, and the module names of the missing ones."""
    benches: list[Bench] = []
    skipped: list[str] = []
    for module, make in _PEERS:
        if importlib.util.find_spec(module) is None:
            skipped.append(module)
        else:
            benches += make()
    return benches, skipped
