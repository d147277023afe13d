"""AsyncLRUCache: one behaviour suite run against the sync shell and the async shell."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pytest

from otel_cache.core.sizing import entry_size, shallow_entry_size
from otel_cache.core.stats import CacheStats
from otel_cache.errors import CacheClosedError, CacheConfigError, CacheKeyError, InvalidTTLError
from otel_cache.l1 import AsyncLRUCache
from tests.support import ManualClock

MISS = object()


class Shell:
    """The same async surface over either API of one cache, so every test runs twice."""

    def __init__(self, cache: AsyncLRUCache[Any, Any], mode: str) -> None:
        self.cache = cache
        self.mode = mode

    async def _call(self, name: str, *args: Any) -> Any:
        if self.mode == "sync":
            return getattr(self.cache, name)(*args)
        return await getattr(self.cache, "a" + name)(*args)

    async def get(self, key: Any, default: Any = None) -> Any:
        return await self._call("get", key, default)

    async def put(self, key: Any, value: Any, ttl: float | None = None) -> bool:
        return await self._call("put", key, value, ttl)

    async def delete(self, key: Any) -> bool:
        return await self._call("delete", key)

    async def clear(self) -> None:
        await self._call("clear")

    async def stats(self) -> CacheStats:
        return await self._call("stats")

    async def contains(self, key: Any) -> bool:
        if self.mode == "sync":
            return key in self.cache
        return await self.cache.acontains(key)

    async def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        return await self._call("get_many", keys)

    async def put_many(
        self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]], ttl: float | None = None
    ) -> int:
        return await self._call("put_many", items, ttl)

    async def close(self) -> None:
        await self._call("close")


@pytest.fixture(params=["sync", "async"])
def make(request: pytest.FixtureRequest, manual_clock: ManualClock) -> Callable[..., Shell]:
    def factory(**kwargs: Any) -> Shell:
        kwargs.setdefault("clock", manual_clock)
        return Shell(AsyncLRUCache(**kwargs), request.param)

    return factory


def check_stats(stats: CacheStats, *, lookups: int, puts: int, entries: Iterable[tuple[Any, Any]]) -> None:
    ev = stats.evictions
    pairs = list(entries)
    assert stats.hits + stats.misses == lookups
    assert stats.puts == puts
    assert stats.inserts + stats.updates + ev["rejected"] == stats.puts
    assert stats.inserts - (ev["size"] + ev["expired"] + ev["deleted"]) == stats.entries
    assert stats.entries == len(pairs)
    # Without a byte bound only the cheap shallow size is counted (no walk of the value).
    size = entry_size if stats.max_bytes is not None else shallow_entry_size
    assert stats.bytes == sum(size(k, v) for k, v in pairs)


# -- basics --------------------------------------------------------------------


async def test_get_put_update(make: Callable[..., Shell]) -> None:
    c = make()
    assert await c.get("a") is None
    assert await c.get("a", MISS) is MISS
    assert await c.put("a", {"n": [1, 2]}) is True
    assert await c.get("a") == {"n": [1, 2]}
    assert await c.put("a", "two") is True
    assert await c.get("a") == "two"
    stats = await c.stats()
    assert (stats.hits, stats.misses, stats.inserts, stats.updates) == (2, 2, 1, 1)
    check_stats(stats, lookups=4, puts=2, entries=[("a", "two")])
    assert len(c.cache) == 1


async def test_delete_and_clear(make: Callable[..., Shell]) -> None:
    c = make()
    for i in range(5):
        await c.put(i, i)
    assert await c.delete(3) is True
    assert await c.delete(3) is False
    assert await c.get(3, MISS) is MISS
    await c.clear()
    assert len(c.cache) == 0
    assert await c.get(0, MISS) is MISS
    stats = await c.stats()
    assert stats.evictions["deleted"] == 5
    check_stats(stats, lookups=2, puts=5, entries=[])


async def test_lru_order(make: Callable[..., Shell]) -> None:
    c = make(max_entries=3)
    for key in "abc":
        await c.put(key, key)
    await c.get("a")
    await c.put("d", "d")  # evicts b
    await c.put("e", "e")  # evicts c
    assert [await c.contains(k) for k in "abcde"] == [True, False, False, True, True]
    stats = await c.stats()
    assert stats.evictions["size"] == 2
    check_stats(stats, lookups=1, puts=5, entries=[(k, k) for k in "ade"])


async def test_contains_does_not_change_lru_order_or_counters(make: Callable[..., Shell]) -> None:
    c = make(max_entries=2)
    await c.put("a", 1)
    await c.put("b", 2)
    before = await c.stats()
    assert await c.contains("a") is True  # a stays the oldest
    assert await c.contains("x") is False
    assert await c.stats() == before
    await c.put("c", 3)
    assert await c.contains("a") is False
    assert await c.get("b") == 2


async def test_ttl(make: Callable[..., Shell], manual_clock: ManualClock) -> None:
    c = make(default_ttl=10)
    await c.put("default", 1)
    await c.put("short", 2, ttl=1)
    await c.put("forever", 3, ttl=math.inf)
    manual_clock.advance(1)
    assert await c.get("short", MISS) is MISS
    assert await c.get("default") == 1
    manual_clock.advance(9)
    assert await c.contains("default") is False
    assert await c.get("default", MISS) is MISS
    manual_clock.advance(1e6)
    assert await c.get("forever") == 3
    stats = await c.stats()
    assert stats.evictions["expired"] == 2
    assert (stats.hits, stats.misses) == (2, 2)
    check_stats(stats, lookups=4, puts=3, entries=[("forever", 3)])


async def test_expired_entries_are_purged_by_puts(
    make: Callable[..., Shell], manual_clock: ManualClock
) -> None:
    c = make(expiry_batch=8, max_entries=None)
    await c.put_many({i: i for i in range(20)}, ttl=1)
    manual_clock.advance(3)
    assert len(c.cache) == 20
    await c.put("x", 1)
    assert len(c.cache) == 13
    assert c.cache.purge_expired() == 8
    assert c.cache.purge_expired() == 4
    assert c.cache.purge_expired() == 0
    stats = await c.stats()
    assert stats.evictions["expired"] == 20
    check_stats(stats, lookups=0, puts=21, entries=[("x", 1)])


async def test_byte_bound_and_rejection(make: Callable[..., Shell]) -> None:
    c = make(max_bytes=3000)
    await c.put("a", ["a" * 1000])
    await c.put("b", ["b" * 1000])
    await c.put("c", ["c" * 1000])  # the deep sizer sees the strings: a goes
    assert await c.contains("a") is False
    assert await c.put("b", "x" * 5000) is False  # rejected; the stale b is dropped
    assert await c.get("b", MISS) is MISS
    assert await c.get("c") == ["c" * 1000]
    stats = await c.stats()
    assert stats.bytes <= 3000
    assert stats.evictions == {"size": 1, "expired": 0, "deleted": 1, "rejected": 1}
    check_stats(stats, lookups=2, puts=4, entries=[("c", ["c" * 1000])])


async def test_errors(make: Callable[..., Shell]) -> None:
    c = make()
    with pytest.raises(CacheKeyError):
        await c.get(["unhashable"])
    with pytest.raises(TypeError):
        await c.put({"un": "hashable"}, 1)
    with pytest.raises(CacheKeyError):
        await c.delete([1])
    with pytest.raises(CacheKeyError):
        await c.contains({1})
    with pytest.raises(InvalidTTLError):
        await c.put("k", 1, ttl=0)
    with pytest.raises(ValueError, match="positive"):
        await c.put("k", 1, ttl=-5)
    with pytest.raises(InvalidTTLError):
        await c.put_many({"k": 1}, ttl=math.nan)
    check_stats(await c.stats(), lookups=0, puts=0, entries=[])
    # An error inside the lock released it: the cache still works.
    assert await c.put("k", 1) is True
    assert await c.get("k") == 1
    assert c.cache.lock.stats().contended == 0


# -- bulk ----------------------------------------------------------------------


async def test_get_many_and_put_many_across_chunks(make: Callable[..., Shell]) -> None:
    c = make(max_entries=None)
    assert await c.put_many({f"m{i}": i for i in range(150)}) == 150
    assert await c.put_many((f"t{i}", [i]) for i in range(130)) == 130
    keys = [f"m{i}" for i in range(0, 200, 2)] + [f"t{i}" for i in range(130)] + ["nope"]
    found = await c.get_many(keys)
    expected = {f"m{i}": i for i in range(0, 150, 2)} | {f"t{i}": [i] for i in range(130)}
    assert found == expected
    assert await c.get_many([]) == {}
    stats = await c.stats()
    assert (stats.hits, stats.misses) == (len(expected), len(keys) - len(expected))
    entries = [(f"m{i}", i) for i in range(150)] + [(f"t{i}", [i]) for i in range(130)]
    check_stats(stats, lookups=len(keys), puts=280, entries=entries)


async def test_put_many_with_ttl_bounds_and_rejections(
    make: Callable[..., Shell], manual_clock: ManualClock
) -> None:
    c = make(max_entries=100, max_bytes=50_000)
    items = [(i, "v" * 10) for i in range(150)]
    items[70] = (70, "h" * 60_000)  # too big: rejected, not counted as stored
    assert await c.put_many(items, ttl=5) == 149
    found = await c.get_many(range(150))
    assert sorted(found) == list(range(49, 70)) + list(range(71, 150))
    manual_clock.advance(5)
    assert await c.get_many(range(150)) == {}
    stats = await c.stats()
    assert stats.evictions["rejected"] == 1
    assert stats.evictions["size"] == 49
    assert stats.evictions["expired"] == 100
    check_stats(stats, lookups=300, puts=150, entries=[])


async def test_bulk_calls_release_the_lock_between_chunks(make: Callable[..., Shell]) -> None:
    c = make(max_entries=None)
    lock = c.cache.lock
    seen_stored: list[int] = []

    def pairs() -> Iterator[tuple[int, int]]:
        for i in range(200):
            # The caller's iterable is consumed outside the lock ...
            assert lock.try_acquire(False)
            lock.release()
            # ... and earlier chunks are already stored while later ones are built.
            seen_stored.append(sum(1 for k in range(i) if k in c.cache))
            yield i, i

    assert await c.put_many(pairs()) == 200
    assert seen_stored[0] == 0
    assert 0 < seen_stored[-1] < 199
    assert seen_stored == sorted(seen_stored)

    def keys() -> Iterator[int]:
        for i in range(200):
            assert lock.try_acquire(False)
            lock.release()
            yield i

    assert len(await c.get_many(keys())) == 200


class Walked(dict[str, Any]):
    """A dict that notes whether the sizer walked it, and whether the cache's lock was held then."""

    def __init__(self, lock: Any, **items: Any) -> None:
        super().__init__(**items)
        self.lock = lock
        self.walks_under_lock: list[bool] = []

    def items(self) -> Any:
        held = not self.lock.try_acquire(False)
        if not held:
            self.lock.release()
        self.walks_under_lock.append(held)
        return super().items()


async def test_without_a_byte_bound_a_put_never_walks_the_value(make: Callable[..., Shell]) -> None:
    c = make(max_entries=None)
    value = Walked(c.cache.lock, a=[1, 2], b={"c": 3})
    assert await c.put("k", value)
    assert await c.put_many([("m", value)]) == 1
    assert value.walks_under_lock == [], "no walk: only the shallow size is counted"
    assert (await c.stats()).bytes == shallow_entry_size("k", value) + shallow_entry_size("m", value)


async def test_with_a_byte_bound_the_value_is_sized_outside_the_lock(make: Callable[..., Shell]) -> None:
    c = make(max_entries=None, max_bytes=100_000)
    value = Walked(c.cache.lock, a=[1, 2], b={"c": 3})
    assert await c.put("k", value)
    assert await c.put_many([("m", value)]) == 1
    assert value.walks_under_lock == [False, False], "walked once a put, with the lock free"
    assert (await c.stats()).bytes == entry_size("k", value) + entry_size("m", value)


async def test_a_custom_sizer_runs_outside_the_lock(make: Callable[..., Shell]) -> None:
    held: list[bool] = []

    def sizer(obj: object) -> int:
        lock = c.cache.lock
        free = lock.try_acquire(False)
        if free:
            lock.release()
        held.append(not free)
        return 10

    c = make(max_entries=None, max_bytes=1_000, sizer=sizer)
    assert await c.put("k", "v")
    assert await c.put_many([("a", 1), ("b", 2)]) == 2
    assert held == [False] * 6
    assert (await c.stats()).bytes == 60


# -- close ---------------------------------------------------------------------


async def test_close_twice_is_harmless(make: Callable[..., Shell]) -> None:
    c = make()
    await c.put("k", 1)
    assert not c.cache.closed
    await c.close()
    assert c.cache.closed
    await c.close()
    c.cache.close()
    await c.cache.aclose()
    assert len(c.cache) == 0


async def test_use_after_close_raises(make: Callable[..., Shell]) -> None:
    c = make()
    await c.put("k", 1)
    await c.close()
    cache = c.cache
    sync_calls: list[Callable[[], object]] = [
        lambda: cache.get("k"),
        lambda: cache.put("k", 2),
        cache.stats,
        lambda: cache.delete("k"),
        cache.clear,
        lambda: "k" in cache,
        lambda: cache.get_many(["k"]),
        lambda: cache.put_many({"k": 2}),
        cache.purge_expired,
    ]
    for call in sync_calls:
        with pytest.raises(CacheClosedError):
            call()
    async_calls: list[Callable[[], Any]] = [
        lambda: cache.aget("k"),
        lambda: cache.aput("k", 2),
        cache.astats,
        lambda: cache.adelete("k"),
        cache.aclear,
        lambda: cache.acontains("k"),
        lambda: cache.aget_many(["k"]),
        lambda: cache.aput_many({"k": 2}),
    ]
    for acall in async_calls:
        with pytest.raises(CacheClosedError):
            await acall()
    with pytest.raises(RuntimeError):  # CacheClosedError is a RuntimeError
        await c.get("k")
    # The lock is still free: closing and failing calls left nothing held.
    assert cache.lock.try_acquire(False)
    cache.lock.release()


# -- construction --------------------------------------------------------------


def test_config_errors_and_name() -> None:
    with pytest.raises(CacheConfigError):
        AsyncLRUCache(max_entries=0)
    with pytest.raises(CacheConfigError):
        AsyncLRUCache(max_bytes=100, sizer=None)
    with pytest.raises(InvalidTTLError):
        AsyncLRUCache(default_ttl=-1)
    cache: AsyncLRUCache[str, int] = AsyncLRUCache(name="users", max_entries=2, default_ttl=60)
    assert cache.name == "users"
    assert AsyncLRUCache().name == "default"
    stats = cache.stats()
    assert (stats.max_entries, stats.max_bytes) == (2, None)


def test_uncontended_calls_record_no_lock_waits() -> None:
    cache: AsyncLRUCache[int, int] = AsyncLRUCache()
    calls: list[tuple[str, float]] = []
    cache.lock.add_listener(lambda kind, wait: calls.append((kind, wait)))
    for i in range(1000):
        cache.put(i, i)
        cache.get(i)
        _ = i in cache
    cache.get_many(range(100))
    cache.delete(1)
    cache.stats()
    lock = cache.lock_stats()
    assert (lock.contended, lock.total_wait_s, lock.max_wait_s) == (0, 0.0, 0.0)
    assert sum(lock.buckets) == 0
    assert calls == []
