"""The pure L1 core: LRU order, TTL, bounds, batch expiry and counters, with an injected clock."""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Iterable

import pytest

from otel_cache.core.lru import LRUCore
from otel_cache.core.sizing import deep_sizeof, shallow_entry_size
from otel_cache.core.stats import CacheStats
from otel_cache.core.ttl import MAX_TTL
from otel_cache.errors import CacheConfigError, CacheError, CacheKeyError, InvalidTTLError
from tests.support import ManualClock

MISS = object()


def entry_size(key: object, value: object) -> int:
    return deep_sizeof(key) + deep_sizeof(value)


def check_stats(
    stats: CacheStats,
    *,
    lookups: int | None = None,
    puts: int | None = None,
    entries: Iterable[tuple[object, object]] | None = None,
) -> None:
    """The documented invariants, plus what the test itself counted."""
    ev = stats.evictions
    assert set(ev) == {"size", "expired", "deleted", "rejected"}
    if lookups is not None:
        assert stats.hits + stats.misses == lookups
    if puts is not None:
        assert stats.puts == puts
    assert stats.inserts + stats.updates + ev["rejected"] == stats.puts
    assert stats.inserts - (ev["size"] + ev["expired"] + ev["deleted"]) == stats.entries
    if entries is not None:
        pairs = list(entries)
        assert stats.entries == len(pairs)
        # Without a byte bound only the cheap shallow size is counted (no walk of the value).
        size = entry_size if stats.max_bytes is not None else shallow_entry_size
        assert stats.bytes == sum(size(k, v) for k, v in pairs)


def make(clock: ManualClock, **kwargs: object) -> LRUCore[object, object]:
    kwargs.setdefault("max_entries", None)
    return LRUCore(clock=clock, **kwargs)  # type: ignore[arg-type]


# -- basics and LRU order ------------------------------------------------------


def test_miss_returns_default_and_counts(manual_clock: ManualClock) -> None:
    core = make(manual_clock)
    assert core.get("nope", MISS) is MISS
    assert core.get("nope", None) is None
    stats = core.stats()
    assert (stats.hits, stats.misses, stats.puts) == (0, 2, 0)
    check_stats(stats, lookups=2, puts=0, entries=[])


def test_put_get_and_update(manual_clock: ManualClock) -> None:
    core = make(manual_clock)
    assert core.put("a", 1) is True
    assert core.put("b", [1, 2]) is True
    assert core.get("a", MISS) == 1
    assert core.put("a", "one") is True
    assert core.get("a", MISS) == "one"
    stats = core.stats()
    assert (stats.hits, stats.inserts, stats.updates) == (2, 2, 1)
    assert len(core) == 2
    check_stats(stats, lookups=2, puts=3, entries=[("a", "one"), ("b", [1, 2])])


def test_least_recently_used_is_evicted_first(manual_clock: ManualClock) -> None:
    core = make(manual_clock, max_entries=3)
    for key in "abc":
        core.put(key, key.upper())
    assert core.get("a", MISS) == "A"  # a is now the most recent: b is the oldest
    core.put("d", "D")
    assert [k for k, _ in core.items()] == ["c", "a", "d"]
    assert core.get("b", MISS) is MISS
    core.put("e", "E")  # c is now the oldest
    assert [k for k, _ in core.items()] == ["a", "d", "e"]
    stats = core.stats()
    assert stats.evictions["size"] == 2
    check_stats(stats, lookups=2, puts=5, entries=core.items())


def test_update_refreshes_recency(manual_clock: ManualClock) -> None:
    core = make(manual_clock, max_entries=3)
    for key in "abc":
        core.put(key, 0)
    core.put("a", 1)
    core.put("d", 0)
    assert dict(core.items()) == {"c": 0, "a": 1, "d": 0}


def test_contains_changes_neither_order_nor_counters(manual_clock: ManualClock) -> None:
    core = make(manual_clock, max_entries=2, default_ttl=10)
    core.put("a", 1)
    core.put("b", 2)
    before = core.stats()
    assert core.contains("a")
    assert not core.contains("zzz")
    assert core.stats() == before
    core.put("c", 3)  # a is still the oldest
    assert not core.contains("a")
    assert core.contains("b")
    manual_clock.advance(10)
    assert not core.contains("b")  # expired, even though not removed yet
    assert core.stats().evictions["expired"] == 0


# -- TTL -----------------------------------------------------------------------


def test_default_ttl_expires_at_deadline(manual_clock: ManualClock) -> None:
    core = make(manual_clock, default_ttl=10)
    core.put("k", "v")
    manual_clock.advance(9.999)
    assert core.get("k", MISS) == "v"
    manual_clock.advance(0.001)
    assert core.get("k", MISS) is MISS
    stats = core.stats()
    assert (stats.hits, stats.misses) == (1, 1)
    assert stats.evictions["expired"] == 1
    assert len(core) == 0
    check_stats(stats, lookups=2, puts=1, entries=[])


def test_per_entry_ttl_overrides_default(manual_clock: ManualClock) -> None:
    core = make(manual_clock, default_ttl=10)
    core.put("short", 1, ttl=1)
    core.put("long", 2, ttl=100)
    core.put("default", 3)
    manual_clock.advance(1)
    assert core.get("short", MISS) is MISS
    assert core.get("default", MISS) == 3
    manual_clock.advance(9)
    assert core.get("default", MISS) is MISS
    assert core.get("long", MISS) == 2
    manual_clock.advance(90)
    assert core.get("long", MISS) is MISS
    assert core.stats().evictions["expired"] == 3


def test_update_replaces_the_deadline(manual_clock: ManualClock) -> None:
    core = make(manual_clock, default_ttl=10)
    core.put("k", 1, ttl=1)
    core.put("k", 2, ttl=50)
    manual_clock.advance(5)
    assert core.purge_expired() == 0
    assert core.get("k", MISS) == 2
    core.put("k", 3, ttl=1)
    manual_clock.advance(2)
    assert core.get("k", MISS) is MISS


def test_inf_ttl_never_expires_despite_default(manual_clock: ManualClock) -> None:
    core = make(manual_clock, default_ttl=1)
    core.put("forever", 1, ttl=math.inf)
    core.put("brief", 2)
    manual_clock.advance(1e6)
    assert core.purge_expired() == 1
    assert core.get("forever", MISS) == 1
    assert core.get("brief", MISS) is MISS
    assert dict(core.items()) == {"forever": 1}


def test_inf_default_ttl_means_no_expiry(manual_clock: ManualClock) -> None:
    core = make(manual_clock, default_ttl=math.inf)
    assert core.default_ttl is None
    core.put("k", 1)
    core.put("j", 2, ttl=5)
    manual_clock.advance(1e9)
    assert core.get("k", MISS) == 1
    assert core.get("j", MISS) is MISS


def test_expired_lookup_is_a_miss_and_an_expired_eviction(manual_clock: ManualClock) -> None:
    core = make(manual_clock)
    core.put("k", "v", ttl=2)
    core.put("other", "w")
    manual_clock.advance(3)
    assert core.get("k", "dflt") == "dflt"
    stats = core.stats()
    assert (stats.hits, stats.misses, stats.entries) == (0, 1, 1)
    assert stats.evictions == {"size": 0, "expired": 1, "deleted": 0, "rejected": 0}
    check_stats(stats, lookups=1, puts=2, entries=[("other", "w")])
    # A second lookup is a plain miss: the entry is gone, not expired twice.
    assert core.get("k", MISS) is MISS
    assert core.stats().evictions["expired"] == 1


def test_entry_whose_deadline_is_zero_still_expires() -> None:
    # A monotonic clock's reference point is undefined, so negative readings are legal.
    clock = ManualClock(start=-10.0)
    core = make(clock)
    core.put("k", 1, ttl=10)
    clock.advance(20)
    assert core.get("k", MISS) is MISS


@pytest.mark.parametrize("ttl", [MAX_TTL * 1.5, 1e308, sys.float_info.max], ids=repr)
def test_ttl_beyond_the_maximum_is_refused_without_side_effects(
    manual_clock: ManualClock, ttl: float
) -> None:
    # It used to raise OverflowError from the expiry buckets, after the insert: bound broken.
    core = make(manual_clock, max_entries=1, expiry_resolution=0.1)
    core.put("a", 1)
    with pytest.raises(InvalidTTLError):
        core.put("k", 2, ttl=ttl)
    assert dict(core.items()) == {"a": 1}
    check_stats(core.stats(), puts=1, entries=core.items())


def test_the_longest_ttl_is_kept_and_expires(manual_clock: ManualClock) -> None:
    core = make(manual_clock, max_entries=1, expiry_resolution=0.001)
    core.put("a", 1)
    assert core.put("k", 2, ttl=MAX_TTL) is True
    assert dict(core.items()) == {"k": 2}
    manual_clock.advance(MAX_TTL - 1)
    assert core.get("k", MISS) == 2
    manual_clock.advance(1)
    assert core.get("k", MISS) is MISS
    assert core.purge_expired() == 0


# -- batch expiry --------------------------------------------------------------


def test_purge_expired_removes_at_most_one_batch(manual_clock: ManualClock) -> None:
    core = make(manual_clock, expiry_batch=10)
    for i in range(35):
        core.put(i, i, ttl=1)
    for i in range(35, 40):
        core.put(i, i, ttl=100)
    manual_clock.advance(5)
    removed = []
    lengths = []
    for _ in range(5):
        removed.append(core.purge_expired())
        lengths.append(len(core))
    assert removed == [10, 10, 10, 5, 0]
    assert lengths == [30, 20, 10, 5, 5]
    assert dict(core.items()) == {i: i for i in range(35, 40)}
    stats = core.stats()
    assert stats.evictions["expired"] == 35
    check_stats(stats, puts=40, entries=core.items())


def test_puts_purge_expired_entries_in_batches(manual_clock: ManualClock) -> None:
    core = make(manual_clock, expiry_batch=10)
    for i in range(35):
        core.put(("old", i), i, ttl=1)
    manual_clock.advance(5)
    lengths = []
    for i in range(5):
        core.put(("new", i), i)  # no TTL: the new entries never expire
        lengths.append(len(core))
    # each put removes at most one batch of 10; the 35 expired are gone after 4 puts
    assert lengths == [26, 17, 8, 4, 5]
    stats = core.stats()
    assert stats.evictions["expired"] == 35
    assert stats.misses == 0  # nobody looked them up
    check_stats(stats, puts=40, entries=[(("new", i), i) for i in range(5)])


def test_purge_spares_entries_that_have_not_expired(manual_clock: ManualClock) -> None:
    core = make(manual_clock, expiry_resolution=1.0)
    core.put("a", 1, ttl=1.5)
    core.put("b", 2, ttl=2.5)
    manual_clock.advance(2.0)
    core.purge_expired()
    assert core.contains("b")
    assert core.get("b", MISS) == 2
    assert core.get("a", MISS) is MISS


def test_random_operations_match_a_reference_model() -> None:
    """Unbounded core vs a dict of (value, deadline): every get agrees, whatever purging did."""
    rng = random.Random(1234)
    clock = ManualClock(start=100.0)
    core = make(clock, default_ttl=1.0, expiry_resolution=0.25, expiry_batch=3)
    model: dict[int, tuple[int, float]] = {}
    lookups = puts = 0

    def alive(key: int) -> bool:
        return key in model and model[key][1] > clock.now

    for step in range(4000):
        key = rng.randrange(60)
        op = rng.random()
        if op < 0.4:
            ttl = rng.choice([None, math.inf, rng.uniform(0.05, 3.0)])
            core.put(key, step, ttl=ttl)
            seconds = 1.0 if ttl is None else ttl
            model[key] = (step, clock.now + seconds)
            puts += 1
        elif op < 0.75:
            was_alive = alive(key)
            got = core.get(key, MISS)
            lookups += 1
            if was_alive:
                assert got == model[key][0]
            else:
                assert got is MISS
        elif op < 0.85:
            was_alive, known = alive(key), key in model
            result = core.delete(key)
            if was_alive:
                assert result is True
            if not known:
                assert result is False
            model.pop(key, None)
        elif op < 0.9:
            assert 0 <= core.purge_expired() <= 3
        else:
            clock.advance(rng.uniform(0, 0.3))
        assert dict(core.items()) == {k: v for k, (v, _) in model.items() if alive(k)}
        check_stats(core.stats(), lookups=lookups, puts=puts)

    # Far in the future every deadline is past: purging empties all but the infinite ones.
    clock.advance(1e4)
    while core.purge_expired():
        pass
    check_stats(core.stats(), entries=core.items())
    assert len(core) == sum(1 for _, deadline in model.values() if deadline == math.inf)


# -- bounds --------------------------------------------------------------------


def test_entry_bound_is_never_exceeded(manual_clock: ManualClock) -> None:
    core = make(manual_clock, max_entries=5)
    for i in range(50):
        core.put(i, i)
        assert len(core) <= 5
    assert dict(core.items()) == {i: i for i in range(45, 50)}
    stats = core.stats()
    assert stats.evictions["size"] == 45
    check_stats(stats, puts=50, entries=core.items())


def test_byte_bound_counts_container_contents(manual_clock: ManualClock) -> None:
    values = {key: [ch * 1000] for key, ch in zip("abc", "xyz", strict=True)}
    one = entry_size("a", values["a"])
    assert all(entry_size(k, v) == one for k, v in values.items())
    budget = 2 * one + 10
    # With shallow sizes all three would fit; the deep sizer sees the 1000-char strings.
    assert 3 * (sys.getsizeof("a") + sys.getsizeof(values["a"])) < budget
    core = make(manual_clock, max_bytes=budget)
    core.put("a", values["a"])
    core.put("b", values["b"])
    assert core.stats().bytes == 2 * one
    assert core.get("a", MISS) is values["a"]  # b becomes the oldest
    core.put("c", values["c"])
    assert dict(core.items()) == {"a": values["a"], "c": values["c"]}
    stats = core.stats()
    assert stats.bytes <= budget
    assert stats.evictions["size"] == 1
    check_stats(stats, lookups=1, puts=3, entries=core.items())


def test_a_large_put_evicts_as_many_as_needed(manual_clock: ManualClock) -> None:
    small = {k: k * 100 for k in "abcd"}
    budget = sum(entry_size(k, v) for k, v in small.items())
    core = make(manual_clock, max_bytes=budget)
    for k, v in small.items():
        core.put(k, v)
    big = "z" * (entry_size("a", small["a"]) + entry_size("b", small["b"]) - 200)
    assert core.put("big", big) is True
    assert [k for k, _ in core.items()] == ["c", "d", "big"]
    stats = core.stats()
    assert stats.bytes <= budget
    assert stats.evictions["size"] == 2
    check_stats(stats, puts=5, entries=core.items())


def test_value_larger_than_max_bytes_is_rejected(manual_clock: ManualClock) -> None:
    core = make(manual_clock, max_bytes=2000)
    core.put("a", "a" * 100)
    core.put("b", "b" * 100)
    before = core.stats()
    assert core.put("huge", "h" * 5000) is False
    assert core.get("huge", MISS) is MISS
    stats = core.stats()
    assert dict(core.items()) == {"a": "a" * 100, "b": "b" * 100}
    assert stats.evictions == {**before.evictions, "rejected": 1}
    assert stats.bytes == before.bytes
    check_stats(stats, lookups=1, puts=3, entries=core.items())


def test_rejected_put_drops_the_stale_older_value(manual_clock: ManualClock) -> None:
    core = make(manual_clock, max_bytes=2000, default_ttl=60)
    core.put("k", "old")
    core.put("other", 1)
    assert core.put("k", ["x" * 3000]) is False
    assert core.get("k", MISS) is MISS
    assert not core.contains("k")
    stats = core.stats()
    assert stats.evictions == {"size": 0, "expired": 0, "deleted": 1, "rejected": 1}
    check_stats(stats, lookups=1, puts=3, entries=[("other", 1)])
    # The dropped entry's expiry bucket was cleaned too: purging later finds nothing odd.
    manual_clock.advance(120)
    assert core.purge_expired() == 1
    assert len(core) == 0


def test_no_sizer_means_no_byte_accounting(manual_clock: ManualClock) -> None:
    core = make(manual_clock, sizer=None)
    core.put("k", "v" * 10_000)
    assert core.stats().bytes == 0


def test_custom_sizer_is_used(manual_clock: ManualClock) -> None:
    core = make(manual_clock, sizer=lambda obj: 10, max_bytes=45)
    for i in range(5):
        core.put(i, i)
    assert [k for k, _ in core.items()] == [3, 4]
    assert core.stats().bytes == 40


# -- delete and clear ----------------------------------------------------------


def test_delete(manual_clock: ManualClock) -> None:
    core = make(manual_clock)
    core.put("a", 1)
    core.put("b", 2, ttl=1)
    assert core.delete("a") is True
    assert core.delete("a") is False
    manual_clock.advance(2)
    assert core.delete("b") is True  # expired but still stored
    stats = core.stats()
    assert stats.evictions["deleted"] == 2
    assert stats.evictions["expired"] == 0
    check_stats(stats, puts=2, entries=[])
    manual_clock.advance(10)
    assert core.purge_expired() == 0


def test_clear_counts_deleted_and_keeps_counters(manual_clock: ManualClock) -> None:
    core = make(manual_clock, default_ttl=5)
    for i in range(7):
        core.put(i, str(i))
    core.get(1, MISS)
    assert core.clear() == 7
    assert len(core) == 0
    stats = core.stats()
    assert stats.evictions["deleted"] == 7
    assert (stats.hits, stats.inserts) == (1, 7)
    check_stats(stats, lookups=1, puts=7, entries=[])
    manual_clock.advance(10)
    assert core.purge_expired() == 0  # no expiry bucket survived the clear
    assert core.clear() == 0
    core.put("again", 1)
    check_stats(core.stats(), entries=[("again", 1)])


# -- errors --------------------------------------------------------------------


@pytest.mark.parametrize("key", [[1], {"a": 1}, {1}, ([1], 2)], ids=["list", "dict", "set", "tuple-of-list"])
def test_unhashable_key_raises_cache_key_error(manual_clock: ManualClock, key: object) -> None:
    core = make(manual_clock)
    for call in (
        lambda: core.get(key, None),
        lambda: core.put(key, 1),
        lambda: core.delete(key),
        lambda: core.contains(key),
    ):
        with pytest.raises(CacheKeyError, match="hashable") as info:
            call()
        assert isinstance(info.value, TypeError)
        assert isinstance(info.value, CacheError)
    stats = core.stats()
    assert (stats.hits, stats.misses, stats.puts, stats.entries) == (0, 0, 0, 0)


BAD_TTLS = [0, 0.0, -1, -0.5, -math.inf, math.nan, True, False, "10", b"1", [5]]


@pytest.mark.parametrize("ttl", BAD_TTLS, ids=repr)
def test_invalid_ttl_raises_invalid_ttl_error(manual_clock: ManualClock, ttl: object) -> None:
    core = make(manual_clock)
    with pytest.raises(InvalidTTLError) as info:
        core.put("k", 1, ttl=ttl)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert core.stats().puts == 0
    assert len(core) == 0
    with pytest.raises(InvalidTTLError):
        make(manual_clock, default_ttl=ttl)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_entries": 0},
        {"max_entries": -1},
        {"max_entries": True},
        {"max_bytes": 0},
        {"max_bytes": -100},
        {"max_bytes": False},
        {"max_bytes": 1000, "sizer": None},
        {"expiry_resolution": 0},
        {"expiry_resolution": -1.0},
        {"expiry_resolution": math.nan},
        {"expiry_batch": 0},
        {"expiry_batch": -3},
    ],
    ids=repr,
)
def test_invalid_config_raises_cache_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(CacheConfigError) as info:
        LRUCore(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_entries": "10"}, {"max_entries": 2.5}, {"max_entries": math.nan}, {"max_bytes": math.nan}],
    ids=repr,
)
def test_non_integer_bounds_raise_cache_config_error(kwargs: dict[str, object]) -> None:
    # "10" used to raise a bare TypeError; 2.5 and NaN used to be accepted (NaN: no bound at all).
    with pytest.raises(CacheConfigError):
        LRUCore(**kwargs)  # type: ignore[arg-type]


def test_valid_config_is_kept(manual_clock: ManualClock) -> None:
    core = make(manual_clock, max_entries=3, max_bytes=5000, default_ttl=7, expiry_batch=5)
    assert (core.max_entries, core.max_bytes, core.default_ttl, core.expiry_batch) == (3, 5000, 7.0, 5)
    stats = core.stats()
    assert (stats.max_entries, stats.max_bytes) == (3, 5000)
    unbounded = LRUCore(max_entries=None)
    for i in range(20_000):
        unbounded.put(i, None)
    assert len(unbounded) == 20_000
