"""L1 + Redis: read-through, write-through, namespaces, encoding, auth and TLS.

Runs against the session redis-server (flushed per test), through both APIs
(``api`` fixture), and looks behind the cache with a raw redis-py client.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio.connection
import redis.connection

from otel_cache import (
    NO_EXPIRY,
    BackendUnavailableError,
    CacheConfig,
    CacheConfigError,
    InvalidTTLError,
    MultiLevelCache,
    SerializationError,
)
from otel_cache.core.ttl import MAX_TTL
from tests.multilevel.adapters import CacheAdapter
from tests.support import ManualClock, RedisServer
from tests.support.config import patient_config
from tests.support.stored import payload, payloads

MISS: Any = object()


async def until(predicate: Callable[[], bool]) -> None:
    """Wait for ``predicate`` (10 s: generous, the machine may be busy)."""
    deadline = time.monotonic() + 10.0
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


Make = Callable[..., CacheAdapter]


@pytest.fixture
def make(make_cache: Make, redis_url: str) -> Make:
    """``make(**config)``: a cache on the session server, namespace ``ns`` unless given."""

    def factory(*, clock: Callable[[], float] = time.monotonic, **config: Any) -> CacheAdapter:
        config.setdefault("namespace", "ns")
        config.setdefault("redis_url", redis_url)
        return make_cache(patient_config(**config), clock=clock)

    return factory


# -- read-through and write-through ----------------------------------------------


async def test_read_through_fills_l1(make: Make) -> None:
    cache = make()
    await cache.put("a", {"v": [1, 2]})
    cache.l1.clear()
    assert await cache.get("a") == {"v": [1, 2]}
    stats = await cache.stats()
    assert (stats.l2.hits, stats.l2.misses, stats.l2.fills) == (1, 0, 1)
    assert cache.l1.get("a") == {"v": [1, 2]}
    assert await cache.get("a") == {"v": [1, 2]}  # an L1 hit now
    assert (await cache.stats()).l2.hits == 1


async def test_l2_miss_is_counted_and_fills_nothing(make: Make) -> None:
    cache = make()
    assert await cache.get("absent", MISS) is MISS
    stats = await cache.stats()
    assert (stats.l2.hits, stats.l2.misses, stats.l2.fills) == (0, 1, 0)
    assert len(cache.l1) == 0


async def test_write_through_is_visible_in_redis(make: Make, raw_redis: redis.Redis) -> None:
    cache = make()
    assert await cache.put("user:1", {"name": "ada"}) is True
    raw = raw_redis.get("ns:user:1")
    assert payload(raw) == b'j{"name":"ada"}'
    assert (await cache.stats()).l2.writes == 1


async def test_non_str_keys_get_distinct_redis_keys(make: Make, raw_redis: redis.Redis) -> None:
    cache = make()
    await cache.put_many({"1": "str", 1: "int", ("1",): "tuple", b"1": "bytes", None: "none"})
    assert len(raw_redis.keys("ns:*")) == 5
    cache.l1.clear()
    assert await cache.get_many(["1", 1, ("1",), b"1", None]) == {
        "1": "str",
        1: "int",
        ("1",): "tuple",
        b"1": "bytes",
        None: "none",
    }


async def test_delete_removes_from_both_levels(make: Make, raw_redis: redis.Redis) -> None:
    cache = make()
    await cache.put("a", 1)
    assert await cache.delete("a") is True
    assert raw_redis.exists("ns:a") == 0
    assert await cache.get("a", MISS) is MISS
    assert (await cache.stats()).l2.deletes == 1


async def test_delete_of_a_key_only_in_redis(make: Make, raw_redis: redis.Redis) -> None:
    cache = make()
    raw_redis.set("ns:a", b"j1")
    assert await cache.delete("a") is True
    assert raw_redis.exists("ns:a") == 0
    assert await cache.delete("a") is False


async def test_get_many_reads_redis_with_one_mget(make: Make, raw_redis: redis.Redis) -> None:
    cache = make()
    await cache.put_many({"a": 1, "b": 2, "c": 3, "d": 4})
    cache.l1.clear()
    await cache.get("d")  # back in L1: not part of the MGET
    raw_redis.config_resetstat()
    assert await cache.get_many(["a", "b", "c", "d", "absent"]) == {"a": 1, "b": 2, "c": 3, "d": 4}
    commands = {name: stat["calls"] for name, stat in raw_redis.info("commandstats").items()}
    assert commands.get("cmdstat_mget") == 1
    assert "cmdstat_get" not in commands
    stats = await cache.stats()
    assert (stats.l2.hits, stats.l2.misses, stats.l2.fills) == (1 + 3, 1, 1 + 3)
    assert set(cache.l1.get_many(["a", "b", "c", "d"])) == {"a", "b", "c", "d"}


async def test_a_get_reads_redis_with_one_get_and_no_pttl(make: Make, raw_redis: redis.Redis) -> None:
    cache = make()
    await cache.put_many({"a": 1, "b": 2})
    cache.l1.clear()
    raw_redis.config_resetstat()
    assert await cache.get("a") == 1
    assert await cache.get_many(["b"]) == {"b": 2}
    commands = {name: stat["calls"] for name, stat in raw_redis.info("commandstats").items()}
    assert (commands.get("cmdstat_get"), commands.get("cmdstat_mget")) == (1, 1)
    assert "cmdstat_pttl" not in commands, "the expiry comes with the value"
    assert cache.l1.get_many(["a", "b"]) == {"a": 1, "b": 2}


async def test_a_value_written_before_the_expiry_header_is_served_but_not_copied_to_l1(
    make: Make, raw_redis: redis.Redis
) -> None:
    cache = make()
    raw_redis.set("ns:old", b'j{"v":1}', px=60_000)  # the serializer's bytes alone
    raw_redis.set("ns:older", b"j2")
    assert await cache.get("old") == {"v": 1}
    assert await cache.get_many(["older"]) == {"older": 2}
    assert cache.l1.get_many(["old", "older"]) == {}, "its expiry is unknown without a PTTL"
    await cache.put("old", {"v": 2})
    cache.l1.clear()
    assert await cache.get("old") == {"v": 2}
    assert cache.l1.get("old") == {"v": 2}, "rewritten with the header: copied again"


async def test_put_many_writes_every_pair_to_redis(make: Make, raw_redis: redis.Redis) -> None:
    cache = make()
    assert await cache.put_many({"a": 1, "b": 2}, ttl=30) == 2
    assert payloads(raw_redis.mget(["ns:a", "ns:b"])) == [b"j1", b"j2"]
    assert 29_000 < raw_redis.pttl("ns:a") <= 30_000
    assert (await cache.stats()).l2.writes == 2


async def test_a_second_cache_reads_what_the_first_wrote(make: Make) -> None:
    writer, reader = make(), make()
    assert await reader.get("warm-up", MISS) is MISS  # its first Redis call subscribes it
    await writer.put("a", [1])
    # The put's own invalidation would drop a copy the reader made before it arrived.
    await until(lambda: reader.target.tiers.coherence.stats().received_messages >= 1)
    assert await reader.get("a") == [1]
    assert reader.l1.get("a") == [1]
    await writer.delete("a")
    await until(lambda: reader.l1.get("a", MISS) is MISS)  # the writer's invalidation reached it
    assert await reader.get("a", MISS) is MISS


async def test_without_invalidation_a_second_cache_keeps_its_copy_for_its_l1_ttl(
    make_cache: Make, redis_url: str
) -> None:
    config = patient_config(redis_url=redis_url, namespace="ns", invalidation=False)
    writer, reader = make_cache(config), make_cache(config)
    await writer.put("a", [1])
    assert await reader.get("a") == [1]
    await writer.delete("a")
    assert await reader.get("a") == [1]  # still in the reader's L1: bounded by l1_ttl
    reader.l1.clear()
    assert await reader.get("a", MISS) is MISS


async def test_l1_ttl_bounds_how_long_l1_keeps_an_entry(make: Make, manual_clock: ManualClock) -> None:
    cache = make(clock=manual_clock, default_ttl=300, l1_ttl=10)
    await cache.put("a", 1)
    manual_clock.advance(11)
    assert "a" not in cache.l1
    assert await cache.get("a") == 1  # from Redis, which keeps the default TTL


async def test_l2_fill_never_outlives_the_redis_ttl(make: Make, manual_clock: ManualClock) -> None:
    cache = make(clock=manual_clock)  # default_ttl 300
    await cache.put("a", "a", ttl=30)
    await cache.put("b", "b", ttl=30)
    cache.l1.clear()  # e.g. evicted, or written by another process
    assert await cache.get("a") == "a"  # read through: fills L1 for what Redis has left
    assert await cache.get_many(["b"]) == {"b": "b"}
    manual_clock.advance(29)
    assert "a" in cache.l1
    assert "b" in cache.l1
    manual_clock.advance(1.5)
    assert "a" not in cache.l1
    assert "b" not in cache.l1


async def test_l2_fill_of_an_entry_without_expiry_is_capped_by_l1_ttl(
    make: Make, manual_clock: ManualClock
) -> None:
    cache = make(clock=manual_clock, default_ttl=300, l1_ttl=10)
    await cache.put("a", 1, ttl=NO_EXPIRY)
    cache.l1.clear()
    assert await cache.get("a") == 1
    manual_clock.advance(9)
    assert "a" in cache.l1
    manual_clock.advance(2)
    assert "a" not in cache.l1


async def test_short_ttl_expires_from_both_levels_in_real_time(make: Make, raw_redis: redis.Redis) -> None:
    cache = make()
    await cache.put("short", "s", ttl=0.3)
    cache.l1.clear()
    assert await cache.get("short") == "s"  # read through: fills L1
    deadline = time.monotonic() + 5
    while raw_redis.exists("ns:short"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    # L1 may lag Redis by the read's round trip (see test_fill_ttl_counts_from_when_the_read_was_sent).
    deadline = time.monotonic() + 1
    while await cache.get("short", MISS) is not MISS:
        assert time.monotonic() < deadline, "L1 kept the value after Redis dropped it"
        await asyncio.sleep(0.01)


# -- namespaces ------------------------------------------------------------------


async def test_namespaces_are_isolated(make: Make, raw_redis: redis.Redis) -> None:
    one, two = make(namespace="one"), make(namespace="two")
    await one.put("k", "one")
    await two.put("k", "two")
    one.l1.clear()
    two.l1.clear()
    assert await one.get("k") == "one"
    assert await two.get("k") == "two"
    await one.put("only-one", 1)
    assert await two.get("only-one", MISS) is MISS
    assert sorted(raw_redis.keys("*")) == [b"one:k", b"one:only-one", b"two:k"]


async def test_clear_removes_only_its_namespace(make: Make, raw_redis: redis.Redis) -> None:
    one, two = make(namespace="one"), make(namespace="two")
    await one.put_many({f"k{i}": i for i in range(20)})
    await two.put("k0", "two")
    raw_redis.set("plain", b"x")
    raw_redis.set("one", b"x")  # the namespace without its separator
    raw_redis.set("onex:k0", b"x")
    assert await one.clear() == 20
    assert sorted(raw_redis.keys("*")) == [b"one", b"onex:k0", b"plain", b"two:k0"]
    assert await two.get("k0") == "two"


async def test_clear_leaves_a_longer_namespace_alone(make: Make, raw_redis: redis.Redis) -> None:
    app, app_v2 = make(namespace="app"), make(namespace="app/v2")
    await app_v2.put("k", "v2")
    await app.put("k", "app")
    assert await app.clear() == 1
    assert raw_redis.keys("*") == [b"app/v2:k"]


@pytest.mark.parametrize("namespace", ["", "app:v2", "a*", "a?", "a[b]", "a\\b", "a b"])
def test_namespaces_that_could_overlap_another_are_refused(namespace: str) -> None:
    # clear() deletes "namespace:*": an empty namespace would be FLUSHDB, "app:v2" would be
    # inside "app", and glob characters would match other namespaces.
    with pytest.raises(CacheConfigError):
        CacheConfig(namespace=namespace)


# -- what Redis holds is untrusted -------------------------------------------------


@pytest.mark.parametrize("garbage", [b"\xff\x00garbage", b"", b"j{not json", b"x123", b"m\xc1"], ids=repr)
async def test_garbage_in_redis_is_a_counted_miss(make: Make, raw_redis: redis.Redis, garbage: bytes) -> None:
    cache = make()
    raw_redis.set("ns:a", garbage)
    assert await cache.get("a", MISS) is MISS
    stats = await cache.stats()
    assert stats.l2.decode_errors == 1
    assert stats.l2.misses == 1
    assert len(cache.l1) == 0
    assert await cache.get_many(["a"]) == {}
    assert (await cache.stats()).l2.decode_errors == 2


class _Trap:
    """Unpickling this creates a directory: proof that a payload was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.path),))


def test_the_trap_is_armed(tmp_path: Path) -> None:
    target = tmp_path / "armed"
    pickle.loads(pickle.dumps(_Trap(target)))
    assert target.is_dir()


async def test_pickle_in_redis_is_never_unpickled_by_the_json_serializer(
    make: Make, raw_redis: redis.Redis, tmp_path: Path
) -> None:
    cache = make()
    target = tmp_path / "pwned"
    raw_redis.set("ns:a", b"p" + pickle.dumps(_Trap(target)))
    assert await cache.get("a", MISS) is MISS
    assert await cache.get_many(["a"]) == {}
    assert not target.exists()
    assert (await cache.stats()).l2.decode_errors == 2


HMAC_KEY = b"k" * 32


async def test_signed_pickle_round_trips(make: Make, raw_redis: redis.Redis) -> None:
    cache = make(serializer="pickle", pickle_hmac_key=HMAC_KEY)
    value = {"set": {1, 2}, "tuple": (1, 2), "bytes": b"\x00"}
    await cache.put("a", value)
    stored = payload(raw_redis.get("ns:a"))
    assert stored is not None
    assert stored.startswith(b"p")
    cache.l1.clear()
    assert await cache.get("a") == value


@pytest.mark.parametrize("forgery", ["unsigned", "wrong-key", "truncated"])
async def test_forged_pickle_is_a_miss(
    make: Make, raw_redis: redis.Redis, tmp_path: Path, forgery: str
) -> None:
    cache = make(serializer="pickle", pickle_hmac_key=HMAC_KEY)
    target = tmp_path / "pwned"
    payload = pickle.dumps(_Trap(target))
    planted = {
        "unsigned": b"p" + payload,
        "wrong-key": b"p" + hmac.new(b"w" * 32, payload, hashlib.sha256).digest() + payload,
        "truncated": b"p" + hmac.new(HMAC_KEY, payload, hashlib.sha256).digest()[:10],
    }[forgery]
    raw_redis.set("ns:a", planted)
    assert await cache.get("a", MISS) is MISS
    assert not target.exists()
    assert (await cache.stats()).l2.decode_errors == 1


async def test_json_reader_accepts_what_a_msgpack_writer_stored(make: Make) -> None:
    writer, reader = make(serializer="msgpack"), make()
    await writer.put("a", {"n": [1, 2]})
    assert await reader.get("a") == {"n": [1, 2]}


# -- values Redis cannot store (the types it can: test_value_fidelity.py) ----------


@pytest.mark.timeout(2)
def test_self_referencing_value_is_refused_not_hung(redis_url: str) -> None:
    cache: MultiLevelCache[Any, Any] = MultiLevelCache(patient_config(redis_url=redis_url, namespace="ns"))
    try:
        loop: list[Any] = []
        loop.append(loop)
        with pytest.raises(SerializationError):
            cache.put("a", loop)
        assert cache.l1.get("a") is None
    finally:
        cache.close()


async def test_ttl_beyond_what_redis_accepts_is_refused(make: Make, raw_redis: redis.Redis) -> None:
    cache = make()
    with pytest.raises(InvalidTTLError):
        await cache.put("a", 1, ttl=sys.maxsize)
    with pytest.raises(InvalidTTLError):
        await cache.put_many({"a": 1}, ttl=1e16)
    assert raw_redis.exists("ns:a") == 0
    assert await cache.put("a", 1, ttl=MAX_TTL) is True
    assert raw_redis.pttl("ns:a") > (MAX_TTL - 60) * 1000
    stats = await cache.stats()
    assert stats.l2.errors == {}
    assert stats.l2.breaker_state == "closed"
    with pytest.raises(CacheConfigError):
        CacheConfig(default_ttl=1e16)


async def test_get_or_set_with_an_unstorable_result_returns_it_from_l1_only(
    make: Make, raw_redis: redis.Redis
) -> None:
    cache = make()
    unstorable = object()
    assert await cache.get_or_set("a", lambda: unstorable) is unstorable
    assert cache.l1.get("a") is unstorable
    assert raw_redis.exists("ns:a") == 0
    assert await cache.get_or_set("a", lambda: "other") is unstorable  # an L1 hit
    assert (await cache.stats()).l2.encode_errors == 1


# -- auth and TLS ----------------------------------------------------------------


@pytest.fixture(scope="module")
def password_server() -> Iterator[RedisServer]:
    with RedisServer(password="s3cret") as server:
        yield server


@pytest.mark.redis
async def test_password_in_the_url_authenticates(make_cache: Make, password_server: RedisServer) -> None:
    assert ":s3cret@" in password_server.url
    cache = make_cache(patient_config(redis_url=password_server.url))
    await cache.put("a", 1)
    cache.l1.clear()
    assert await cache.get("a") == 1
    assert (await cache.stats()).l2.errors == {}
    assert "s3cret" not in repr(cache.target)


@pytest.mark.redis
async def test_wrong_password_degrades_to_a_miss(make_cache: Make, password_server: RedisServer) -> None:
    url = password_server.url.replace("s3cret", "wrong")
    cache = make_cache(patient_config(redis_url=url))
    assert await cache.get("a", MISS) is MISS
    assert await cache.put("a", 1) is False  # the invalidation channel is down too: L1 takes no copy
    assert cache.l1.get("a", MISS) is MISS
    assert (await cache.stats()).l2.errors == {"AuthenticationError": 2}
    alone = make_cache(CacheConfig(redis_url=url, invalidation=False))
    assert await alone.put("a", 1) is True  # L1 only
    assert alone.l1.get("a") == 1


@pytest.mark.redis
async def test_wrong_password_raises_under_the_raise_policy(
    make_cache: Make, password_server: RedisServer
) -> None:
    url = password_server.url.replace("s3cret", "wrong")
    cache = make_cache(CacheConfig(redis_url=url, on_backend_error="raise"))
    with pytest.raises(BackendUnavailableError) as info:
        await cache.get("a")
    assert isinstance(info.value.__cause__, redis.exceptions.AuthenticationError)
    assert "wrong" not in str(info.value)


def test_rediss_url_builds_a_tls_connection_pool() -> None:
    config = CacheConfig(redis_url="rediss://:pw@127.0.0.1:6380/0?ssl_cert_reqs=required")
    cache: MultiLevelCache[Any, Any] = MultiLevelCache(config)
    try:
        pool = cache._backend().client.connection_pool  # type: ignore[attr-defined]
        assert issubclass(pool.connection_class, redis.connection.SSLConnection)
        assert pool.connection_kwargs["ssl_cert_reqs"] in ("required", 2)
        assert "pw" not in repr(cache)
    finally:
        cache.close()


async def test_rediss_url_builds_a_tls_connection_pool_for_asyncio() -> None:
    cache: MultiLevelCache[Any, Any] = MultiLevelCache(
        CacheConfig(redis_url="rediss://127.0.0.1:6380/0"), async_mode=True
    )
    try:
        pool = cache._backend_for_loop().client.connection_pool  # type: ignore[attr-defined]
        assert issubclass(pool.connection_class, redis.asyncio.connection.SSLConnection)
    finally:
        await cache.aclose()
