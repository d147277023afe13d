"""One behaviour suite, run against every cache implementation.

===============  ==========================================================
``l1-sync``      ``AsyncLRUCache``, sync methods
``l1-async``     ``AsyncLRUCache``, async methods
``ml-sync``      ``MultiLevelCache`` without Redis, sync API
``ml-async``     ``MultiLevelCache`` without Redis, async API
``redis-sync``   ``MultiLevelCache`` + the session redis-server, sync API (``async_mode=False``)
``redis-async``  ``MultiLevelCache`` + the session redis-server, async API (``async_mode=True``)
``cluster-sync``   ``MultiLevelCache`` + the session Redis Cluster (3 primaries, 3 replicas), sync API
``cluster-async``  the same, async API
===============  ==========================================================

Every test names the implementations it applies to (``ALL``, ``MULTILEVEL``,
``L1_ONLY``, ``REDIS``), so an implementation without a feature (``get_or_set`` on
``AsyncLRUCache``) is never collected for it rather than skipped at run time. The L1
of every implementation runs on a ``ManualClock``; Redis keeps real time, so Redis
expiry is waited for with a short real TTL.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from otel_cache import (
    NO_EXPIRY,
    AsyncLRUCache,
    CacheClosedError,
    CacheError,
    CacheKeyError,
    InvalidTTLError,
    MultiLevelCache,
)
from tests.multilevel.adapters import CacheAdapter
from tests.support import ManualClock
from tests.support.config import patient_config

MISS: Any = object()
L1_MAX_BYTES = 16_384
DEFAULT_TTL = 300.0
IMPLS = (
    "l1-sync",
    "l1-async",
    "ml-sync",
    "ml-async",
    "redis-sync",
    "redis-async",
    "cluster-sync",
    "cluster-async",
)


def impls(*names: str) -> pytest.MarkDecorator:
    """Parametrize the ``cache`` fixture with ``names``."""
    params = []
    for name in names:
        marks: list[pytest.MarkDecorator] = []
        if name.startswith(("redis", "cluster")):
            marks.append(pytest.mark.redis)
        if name.startswith("cluster"):
            marks.append(pytest.mark.cluster)
        params.append(pytest.param(name, id=name, marks=marks))
    return pytest.mark.parametrize("cache", params, indirect=True)


ALL = impls(*IMPLS)
MULTILEVEL = impls("ml-sync", "ml-async", "redis-sync", "redis-async", "cluster-sync", "cluster-async")
L1_ONLY = impls("l1-sync", "l1-async", "ml-sync", "ml-async")
REDIS = impls("redis-sync", "redis-async", "cluster-sync", "cluster-async")


class BehaviourCache(CacheAdapter):
    """A ``CacheAdapter`` that also knows its clock and, with Redis, a raw client."""

    def __init__(self, target: Any, api: str, clock: ManualClock, raw: Any) -> None:
        super().__init__(target, api)
        self.clock = clock
        self.raw = raw

    async def let_expire(self, keys: list[Any], ttl: float) -> None:
        """Move past ``ttl``: the manual clock for L1, real time (polled) for Redis."""
        self.clock.advance(ttl * 1.5)
        if self.raw is None:
            return
        l2_keys = [self.l2_key(key) for key in keys]
        deadline = time.monotonic() + 5.0
        while self.raw.exists(*l2_keys):
            assert time.monotonic() < deadline, "Redis did not expire the keys"
            await asyncio.sleep(0.01)


@pytest.fixture
async def cache(request: pytest.FixtureRequest, manual_clock: ManualClock) -> AsyncIterator[BehaviourCache]:
    name: str = request.param
    kind, api = name.split("-")
    raw: Any = None
    target: Any
    if kind == "l1":
        target = AsyncLRUCache(max_bytes=L1_MAX_BYTES, default_ttl=DEFAULT_TTL, clock=manual_clock)
    else:
        url = None
        if kind == "redis":
            url = request.getfixturevalue("redis_url")
        elif kind == "cluster":
            url = request.getfixturevalue("redis_cluster_url")
        config = patient_config(
            redis_url=url, l1_max_bytes=L1_MAX_BYTES, default_ttl=DEFAULT_TTL, namespace="behaviour"
        )
        target = MultiLevelCache(config, async_mode=api == "async", clock=manual_clock)
        if kind == "redis":
            raw = redis.Redis.from_url(url)
        elif kind == "cluster":
            cluster = request.getfixturevalue("redis_cluster")
            raw = RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in cluster.seed_nodes])
    adapter = BehaviourCache(target, api, manual_clock, raw)
    if raw is not None:
        await subscribed(adapter)
    yield adapter
    await adapter.close()
    if raw is not None:
        raw.close()


async def subscribed(cache: BehaviourCache) -> None:
    """Open the invalidation channel and wait until it is up: until then L1 takes no copies,
    and on a busy machine the subscription can take longer than a first call waits."""
    await cache.delete("__warm-up__")  # a first Redis call; changes no L1 counter
    deadline = time.monotonic() + 30
    while not cache.ml.tiers.coherence.stats().up:
        assert time.monotonic() < deadline, "the invalidation channel never came up"
        await asyncio.sleep(0.02)


# -- round trips ---------------------------------------------------------------

VALUES = [
    {"name": "ada", "tags": ["x", "y"], "nested": {"n": 1, "f": 1.5, "ok": True, "none": None}},
    [1, "two", 3.0, None, [4]],
    "text with ünïcode",
    42,
    -7.25,
    True,
    "",
    0,
]


@ALL
async def test_put_get_round_trip_of_json_like_values(cache: BehaviourCache) -> None:
    for i, value in enumerate(VALUES):
        assert await cache.put(("v", i), value) is True
    for i, value in enumerate(VALUES):
        assert await cache.get(("v", i), MISS) == value


@ALL
async def test_none_is_a_value_distinct_from_a_miss(cache: BehaviourCache) -> None:
    assert await cache.put("none", None) is True
    assert await cache.get("none", MISS) is None
    assert await cache.get("absent", MISS) is MISS
    assert await cache.get_many(["none", "absent"]) == {"none": None}


@ALL
async def test_miss_returns_the_default(cache: BehaviourCache) -> None:
    assert await cache.get("absent") is None
    assert await cache.get("absent", MISS) is MISS
    assert await cache.get("absent", 17) == 17


@ALL
async def test_delete(cache: BehaviourCache) -> None:
    await cache.put("a", 1)
    await cache.put("b", 2)
    assert await cache.delete("a") is True
    assert await cache.get("a", MISS) is MISS
    assert await cache.delete("a") is False
    assert await cache.get("b") == 2


@ALL
async def test_overwrite(cache: BehaviourCache) -> None:
    await cache.put("a", {"v": 1})
    await cache.put("a", ["v", 2])
    assert await cache.get("a") == ["v", 2]
    assert cache.l1.stats().updates == 1


@ALL
async def test_l1_counters_agree(cache: BehaviourCache) -> None:
    await cache.put("a", 1)
    await cache.get("a")
    await cache.get("b")
    stats = cache.l1.stats()
    assert (stats.hits, stats.misses, stats.puts, stats.entries) == (1, 1, 1, 1)


@ALL
async def test_clear_empties_the_cache(cache: BehaviourCache) -> None:
    await cache.put_many({"a": 1, "b": 2})
    await cache.clear()
    assert await cache.get_many(["a", "b"]) == {}
    assert len(cache.l1) == 0


# -- TTL -----------------------------------------------------------------------


@ALL
async def test_ttl_expiry(cache: BehaviourCache) -> None:
    assert await cache.put("short", "s", ttl=0.2) is True
    await cache.put("long", "l")  # default TTL
    assert await cache.get("short") == "s"
    await cache.let_expire(["short"], 0.2)
    assert await cache.get("short", MISS) is MISS
    assert await cache.get("long") == "l"


@ALL
async def test_put_many_ttl_expiry(cache: BehaviourCache) -> None:
    assert await cache.put_many([("a", 1), ("b", 2)], ttl=0.2) == 2
    await cache.let_expire(["a", "b"], 0.2)
    assert await cache.get_many(["a", "b"]) == {}


@L1_ONLY
async def test_default_ttl_applies_when_no_ttl_is_given(cache: BehaviourCache) -> None:
    await cache.put("a", 1)
    cache.clock.advance(DEFAULT_TTL - 1)
    assert await cache.get("a") == 1
    cache.clock.advance(2)
    assert await cache.get("a", MISS) is MISS


@ALL
async def test_no_expiry_outlives_the_default_ttl(cache: BehaviourCache) -> None:
    assert await cache.put("forever", "f", ttl=NO_EXPIRY) is True
    cache.clock.advance(DEFAULT_TTL * 1000)
    assert await cache.get("forever", MISS) == "f"


@REDIS
async def test_ttl_is_sent_to_redis_in_milliseconds(cache: BehaviourCache) -> None:
    assert cache.raw is not None
    await cache.put("short", 1, ttl=1.5)
    await cache.put("default", 1)
    await cache.put("forever", 1, ttl=NO_EXPIRY)
    await cache.put_many({"many": 1}, ttl=2.5)
    assert 1000 < cache.raw.pttl(cache.l2_key("short")) <= 1500
    assert (DEFAULT_TTL - 5) * 1000 < cache.raw.pttl(cache.l2_key("default")) <= DEFAULT_TTL * 1000
    assert cache.raw.pttl(cache.l2_key("forever")) == -1
    assert 2000 < cache.raw.pttl(cache.l2_key("many")) <= 2500


# -- bulk ------------------------------------------------------------------------


@ALL
async def test_get_many_and_put_many(cache: BehaviourCache) -> None:
    assert await cache.put_many({"a": 1, "b": [2], ("t", 3): {"c": 3}}) == 3
    assert await cache.put_many([("d", 4), ("e", None)]) == 2
    found = await cache.get_many(["a", "b", ("t", 3), "d", "e", "absent", "a"])
    assert found == {"a": 1, "b": [2], ("t", 3): {"c": 3}, "d": 4, "e": None}
    assert await cache.get_many([]) == {}
    assert await cache.put_many([]) == 0


# -- invalid keys and TTLs -----------------------------------------------------

UNHASHABLE = ["list"]


@ALL
@pytest.mark.parametrize("op", ["get", "put", "delete", "put_many"])
async def test_unhashable_key_raises_cache_key_error(cache: BehaviourCache, op: str) -> None:
    calls: dict[str, Callable[[], Any]] = {
        "get": lambda: cache.get(UNHASHABLE),
        "put": lambda: cache.put(UNHASHABLE, 1),
        "delete": lambda: cache.delete(UNHASHABLE),
        "put_many": lambda: cache.put_many([(UNHASHABLE, 1)]),
    }
    with pytest.raises(CacheKeyError) as info:
        await calls[op]()
    assert isinstance(info.value, TypeError)


@ALL
async def test_unhashable_key_in_get_many_raises_cache_key_error(cache: BehaviourCache) -> None:
    with pytest.raises(CacheKeyError):
        await cache.get_many(["ok", UNHASHABLE])


@MULTILEVEL
@pytest.mark.parametrize(
    "key", [object(), ("tuple", object()), frozenset({1})], ids=["object", "tuple", "fset"]
)
async def test_key_that_redis_cannot_encode_raises_cache_key_error(cache: BehaviourCache, key: Any) -> None:
    # Also without Redis, so that code behaves the same with and without L2.
    with pytest.raises(CacheKeyError):
        await cache.put(key, 1)
    with pytest.raises(CacheKeyError):
        await cache.get(key)
    with pytest.raises(CacheKeyError):
        await cache.delete(key)
    with pytest.raises(CacheKeyError):
        await cache.get_many([key])
    with pytest.raises(CacheKeyError):
        await cache.put_many({key: 1})
    loads: list[int] = []
    with pytest.raises(CacheKeyError):
        await cache.get_or_set(key, lambda: loads.append(1))
    assert loads == []
    assert len(cache.l1) == 0


@MULTILEVEL
async def test_over_long_key_raises_cache_key_error(cache: BehaviourCache) -> None:
    limit = cache.ml.config.max_key_length
    assert await cache.put("k" * limit, 1) is True
    assert await cache.get("k" * limit) == 1
    with pytest.raises(CacheKeyError):
        await cache.put("k" * (limit + 1), 1)
    with pytest.raises(CacheKeyError):
        await cache.get("k" * (limit + 1))
    with pytest.raises(CacheKeyError):
        await cache.put_many({("k" * limit,): 1})  # the encoded tuple is longer than the limit


BAD_TTLS = [-1, 0, -0.5, True, False, "5", math.nan, -math.inf]


@ALL
@pytest.mark.parametrize("ttl", BAD_TTLS, ids=repr)
async def test_invalid_ttl_raises_invalid_ttl_error(cache: BehaviourCache, ttl: Any) -> None:
    with pytest.raises(InvalidTTLError) as info:
        await cache.put("a", 1, ttl=ttl)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, CacheError)
    with pytest.raises(InvalidTTLError):
        await cache.put_many({"b": 1}, ttl=ttl)
    assert await cache.get_many(["a", "b"]) == {}


@MULTILEVEL
async def test_get_or_set_with_invalid_ttl_raises(cache: BehaviourCache) -> None:
    with pytest.raises(InvalidTTLError):
        await cache.get_or_set("a", lambda: 1, ttl=-1)
    assert await cache.get("a", MISS) is MISS


# -- byte bound ----------------------------------------------------------------


@ALL
async def test_value_larger_than_l1_max_bytes_is_rejected_without_evicting(cache: BehaviourCache) -> None:
    for i in range(3):
        await cache.put(i, i)
    huge = "x" * (L1_MAX_BYTES + 1)
    assert await cache.put("huge", huge) is False
    assert "huge" not in cache.l1
    assert [await cache.get(i) for i in range(3)] == [0, 1, 2]
    stats = cache.l1.stats()
    assert stats.evictions["size"] == 0
    assert stats.evictions["rejected"] == 1
    assert stats.bytes <= L1_MAX_BYTES


@ALL
async def test_rejected_overwrite_never_serves_the_old_value(cache: BehaviourCache) -> None:
    await cache.put("a", "small")
    assert await cache.put("a", "x" * (L1_MAX_BYTES + 1)) is False
    assert await cache.get("a", MISS) != "small"


# -- get_or_set and clear (MultiLevelCache only) ---------------------------------


@MULTILEVEL
async def test_get_or_set(cache: BehaviourCache) -> None:
    calls: list[str] = []

    def loader() -> dict[str, int]:
        calls.append("load")
        return {"n": 1}

    assert await cache.get_or_set("a", loader) == {"n": 1}
    assert await cache.get_or_set("a", loader) == {"n": 1}
    assert calls == ["load"]
    assert await cache.get("a") == {"n": 1}


@MULTILEVEL
async def test_get_or_set_caches_none(cache: BehaviourCache) -> None:
    calls: list[int] = []

    def loader() -> None:
        calls.append(1)

    assert await cache.get_or_set("a", loader) is None
    assert await cache.get_or_set("a", loader) is None
    assert calls == [1]


@MULTILEVEL
async def test_get_or_set_ttl(cache: BehaviourCache) -> None:
    assert await cache.get_or_set("a", lambda: 1, ttl=0.2) == 1
    await cache.let_expire(["a"], 0.2)
    assert await cache.get_or_set("a", lambda: 2, ttl=0.2) == 2


@MULTILEVEL
async def test_clear_returns_how_many_redis_keys_it_removed(cache: BehaviourCache) -> None:
    await cache.put_many({"a": 1, "b": 2, "c": 3})
    assert await cache.clear() == (3 if cache.has_l2 else 0)
    assert await cache.get_many(["a", "b", "c"]) == {}
    assert await cache.clear() == 0


# -- close -----------------------------------------------------------------------


@ALL
async def test_close_twice_is_harmless(cache: BehaviourCache) -> None:
    await cache.put("a", 1)
    await cache.close()
    await cache.close()
    assert cache.target.closed


@ALL
@pytest.mark.parametrize("op", ["get", "put", "delete", "get_many", "put_many", "clear"])
async def test_use_after_close_raises_cache_closed_error(cache: BehaviourCache, op: str) -> None:
    await cache.put("a", 1)
    await cache.close()
    calls: dict[str, Callable[[], Any]] = {
        "get": lambda: cache.get("a"),
        "put": lambda: cache.put("a", 2),
        "delete": lambda: cache.delete("a"),
        "get_many": lambda: cache.get_many(["a"]),
        "put_many": lambda: cache.put_many({"a": 2}),
        "clear": lambda: cache.clear(),
    }
    with pytest.raises(CacheClosedError):
        await calls[op]()


@MULTILEVEL
async def test_get_or_set_after_close_raises_without_loading(cache: BehaviourCache) -> None:
    await cache.close()
    calls: list[int] = []
    with pytest.raises(CacheClosedError):
        await cache.get_or_set("a", lambda: calls.append(1))
    assert calls == []
