"""``@cached`` on ordinary functions and methods, sync and async, in L1 and through Redis."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from otel_cache import (
    AsyncCachedFunction,
    CacheConfig,
    CacheConfigError,
    CachedFunction,
    CacheKeyError,
    InvalidTTLError,
    MultiLevelCache,
    areset_cache_managers,
    cached,
    get_async_cache_manager,
    get_cache_manager,
)
from tests.support.config import patient_config
from tests.support.waiting import await_until, wait_until

MISS: Any = object()
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["l1", pytest.param("redis", marks=pytest.mark.redis)])
def config(request: pytest.FixtureRequest) -> CacheConfig:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return patient_config(redis_url=url, namespace="fn-tests")


@pytest.fixture
async def make_cache(config: CacheConfig) -> AsyncIterator[Callable[[], MultiLevelCache[Any, Any]]]:
    made: list[MultiLevelCache[Any, Any]] = []

    def make() -> MultiLevelCache[Any, Any]:
        cache: MultiLevelCache[Any, Any] = MultiLevelCache(config)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.aclose()


@pytest.fixture
def cache(make_cache: Callable[[], MultiLevelCache[Any, Any]]) -> MultiLevelCache[Any, Any]:
    return make_cache()


class Calls:
    """Counts the calls of the decorated functions."""

    def __init__(self) -> None:
        self.args: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.args.append(args)

    @property
    def count(self) -> int:
        return len(self.args)


# -- calls, keys and arguments -------------------------------------------------------


def test_a_sync_function_runs_once_per_distinct_call(cache: MultiLevelCache[Any, Any]) -> None:
    calls = Calls()

    @cached(ttl=60, cache=cache)
    def area(width: int, height: int = 2) -> tuple[int, int, int]:
        calls(width, height)
        return (width, height, width * height)

    assert area(3) == (3, 2, 6)
    assert area(3) == (3, 2, 6)
    assert area(width=3) == (3, 2, 6)
    assert area(3, 2) == (3, 2, 6)  # the default applied: one call
    assert area(3, height=5) == (3, 5, 15)
    assert calls.args == [(3, 2), (3, 5)]
    assert isinstance(area, CachedFunction)


async def test_an_async_function_runs_once_per_distinct_call(cache: MultiLevelCache[Any, Any]) -> None:
    calls = Calls()

    @cached(ttl=60, cache=cache)
    async def user(user_id: int, *, full: bool = False) -> dict[str, Any]:
        calls(user_id, full)
        await asyncio.sleep(0)
        return {"id": user_id, "full": full}

    assert await user(1) == {"id": 1, "full": False}
    assert await user(user_id=1) == {"id": 1, "full": False}
    assert await user(1, full=True) == {"id": 1, "full": True}
    assert await user(2) == {"id": 2, "full": False}
    assert calls.args == [(1, False), (1, True), (2, False)]
    assert isinstance(user, AsyncCachedFunction)


def test_the_decorated_function_keeps_its_name_doc_and_signature(cache: MultiLevelCache[Any, Any]) -> None:
    def lookup(name: str, limit: int = 10) -> list[str]:
        """Find names."""
        return [name] * limit

    wrapped = cached(cache=cache)(lookup)
    assert wrapped.__name__ == "lookup"
    assert wrapped.__doc__ == "Find names."
    assert wrapped.__wrapped__ is lookup  # type: ignore[attr-defined]
    assert inspect.signature(wrapped) == inspect.signature(lookup)


def test_the_default_key_names_the_function_and_digests_the_arguments(
    cache: MultiLevelCache[Any, Any],
) -> None:
    @cached(cache=cache)
    def report(region: str, filters: dict[str, Any]) -> int:
        return 0

    key = report.key("eu", {"b": 2, "a": [1, 2]})
    name = f"{__name__}.test_the_default_key_names_the_function_and_digests_the_arguments.<locals>.report"
    prefix, digest = str(key).rsplit(":", 1)
    assert prefix == f"fn:{name}"
    assert len(digest) == 32
    assert int(digest, 16) >= 0
    assert report.key("eu", {"a": [1, 2], "b": 2}) == key  # dict order does not matter
    assert report.key(region="eu", filters={"a": [1, 2], "b": 2}) == key
    assert report.key("us", {"a": [1, 2], "b": 2}) != key


def test_the_default_key_is_the_same_in_another_process() -> None:
    """No ``hash()`` in it: PYTHONHASHSEED differs between the two processes."""
    script = (
        "from otel_cache import cached, MultiLevelCache, CacheConfig\n"
        "@cached(cache=MultiLevelCache(CacheConfig()))\n"
        "def f(a, b=frozenset({'x', 'y', 'z'})): ...\n"
        "f.__module__ = 'm'\n"
        "print(f.key({'k': 1, 'j': (1.5, None)}))\n"
    )
    keys = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, cwd=ROOT
        )
        keys.add(out.stdout.strip())
    assert len(keys) == 1
    assert next(iter(keys)).startswith("fn:__main__.f:")


def test_a_key_template_names_the_entry_for_other_code(cache: MultiLevelCache[Any, Any]) -> None:
    calls = Calls()

    @cached(cache=cache, key="user:{user_id}")
    def user(user_id: int) -> str:
        calls(user_id)
        return f"user {user_id}"

    assert user(42) == "user 42"
    assert cache.get("user:42") == "user 42"
    cache.put("user:42", "changed elsewhere")
    assert user(42) == "changed elsewhere"
    assert calls.count == 1


def test_a_template_reaches_into_arguments(cache: MultiLevelCache[Any, Any]) -> None:
    @dataclass
    class Account:
        id: int
        region: str

    @cached(cache=cache, key="acct:{account.region}:{account.id}:{ids[0]}")
    def balance(account: Account, ids: list[int]) -> int:
        return account.id

    assert balance.key(Account(7, "eu"), [3, 4]) == "acct:eu:7:3"
    with pytest.raises(CacheKeyError, match="cannot be filled"):
        balance(Account(7, "eu"), [])


def test_a_key_callable_gets_the_arguments(cache: MultiLevelCache[Any, Any]) -> None:
    calls = Calls()

    @cached(cache=cache, key=lambda path, **_: ("file", path.lower()))
    def read(path: str, *, encoding: str = "utf-8") -> str:
        calls(path)
        return path

    assert read("A.txt") == "A.txt"
    assert read("a.TXT", encoding="latin-1") == "A.txt"  # same key: the callable said so
    assert calls.count == 1
    assert read.key("A.TXT") == ("file", "a.txt")


def test_an_argument_without_a_canonical_form_is_refused(cache: MultiLevelCache[Any, Any]) -> None:
    calls = Calls()

    @cached(cache=cache)
    def describe(thing: object) -> str:
        calls(thing)
        return "x"

    with pytest.raises(CacheKeyError):
        describe(object())
    assert calls.count == 0


def test_arguments_that_do_not_fit_the_signature_raise_type_error(cache: MultiLevelCache[Any, Any]) -> None:
    @cached(cache=cache)
    def one(x: int) -> int:
        return x

    with pytest.raises(TypeError):
        one(1, 2)  # type: ignore[call-arg]


# -- invalidation, bypass, condition ------------------------------------------------------


def test_invalidate_removes_one_calls_entry(cache: MultiLevelCache[Any, Any]) -> None:
    calls = Calls()

    @cached(cache=cache)
    def square(x: int) -> int:
        calls(x)
        return x * x

    square(2), square(3)
    assert square.invalidate(2) is True
    assert square.invalidate(2) is False  # gone already
    square(2), square(3)
    assert calls.args == [(2,), (3,), (2,)]


async def test_async_invalidate_removes_one_calls_entry(cache: MultiLevelCache[Any, Any]) -> None:
    calls = Calls()

    @cached(cache=cache)
    async def square(x: int) -> int:
        calls(x)
        return x * x

    await square(2)
    await square(3)
    assert await square.invalidate(x=2) is True
    await square(2)
    await square(3)
    assert calls.args == [(2,), (3,), (2,)]


def test_uncached_neither_reads_nor_writes(cache: MultiLevelCache[Any, Any]) -> None:
    values = iter(range(100))

    @cached(cache=cache, key="counter")
    def counter() -> int:
        return next(values)

    assert counter.uncached() == 0
    assert cache.get("counter", MISS) is MISS  # not written
    assert counter() == 1
    assert counter.uncached() == 2  # not read
    assert counter() == 1


async def test_async_uncached_neither_reads_nor_writes(cache: MultiLevelCache[Any, Any]) -> None:
    values = iter(range(100))

    @cached(cache=cache, key="counter")
    async def counter() -> int:
        return next(values)

    assert await counter.uncached() == 0
    assert await cache.aget("counter", MISS) is MISS
    assert await counter() == 1
    assert await counter.uncached() == 2
    assert await counter() == 1


@pytest.mark.parametrize("api", ["sync", "async"])
async def test_condition_and_unless_decide_what_is_stored(cache: MultiLevelCache[Any, Any], api: str) -> None:
    calls = Calls()

    def lookup(name: str) -> list[str] | None:
        calls(name)
        return None if name == "nobody" else [name]

    async def alookup(name: str) -> list[str] | None:
        return lookup(name)

    func: Any = lookup if api == "sync" else alookup
    found = cached(cache=cache, key="found:{name}", condition=lambda result: result is not None)(func)
    nonempty = cached(cache=cache, key="kept:{name}", unless=lambda result: result in (None, []))(func)
    for fn in (found, nonempty):
        for name in ("nobody", "nobody", "alice", "alice"):
            result = fn(name)
            if inspect.isawaitable(result):
                result = await result
            assert result == (None if name == "nobody" else [name])
    assert calls.args == [("nobody",), ("nobody",), ("alice",)] * 2
    assert await cache.aget("found:nobody", MISS) is MISS
    assert await cache.aget("found:alice") == ["alice"]


def test_what_the_function_raises_reaches_the_caller_and_is_not_stored(
    cache: MultiLevelCache[Any, Any],
) -> None:
    outcomes: list[Any] = [LookupError("down"), "ok"]

    @cached(cache=cache, key="flaky")
    def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return str(outcome)

    with pytest.raises(LookupError, match="down"):
        flaky()
    assert cache.get("flaky", MISS) is MISS
    assert flaky() == "ok"
    assert flaky() == "ok"


# -- tags ------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["sync", "async"])
async def test_tag_templates_let_one_invalidation_reach_many_calls(
    cache: MultiLevelCache[Any, Any], api: str
) -> None:
    calls = Calls()

    def posts(user_id: int, page: int = 1) -> list[str]:
        calls(user_id, page)
        return [f"{user_id}/{page}"]

    async def aposts(user_id: int, page: int = 1) -> list[str]:
        return posts(user_id, page)

    fn: Any = cached(cache=cache, tags=["posts", "user:{user_id}"])(posts if api == "sync" else aposts)

    async def call(*args: Any) -> Any:
        result = fn(*args)
        return await result if inspect.isawaitable(result) else result

    for args in ((1, 1), (1, 2), (2, 1)):
        await call(*args)
    assert await cache.ainvalidate_tags(["user:1"]) == 2
    for args in ((1, 1), (1, 2), (2, 1)):
        await call(*args)
    assert calls.args == [(1, 1), (1, 2), (2, 1), (1, 1), (1, 2)]


def test_tags_from_a_callable(cache: MultiLevelCache[Any, Any]) -> None:
    calls = Calls()

    @cached(cache=cache, tags=lambda order_id, customer: [f"customer:{customer}"])
    def order(order_id: int, customer: str) -> int:
        calls(order_id)
        return order_id

    order(1, "acme"), order(2, "acme"), order(3, "other")
    assert cache.invalidate_tags(["customer:acme"]) == 2
    order(1, "acme"), order(3, "other")
    assert calls.args == [(1,), (2,), (3,), (1,)]


# -- methods ---------------------------------------------------------------------------


class Repository:
    def __init__(self, tenant: str, calls: Calls, cache: MultiLevelCache[Any, Any]) -> None:
        self.tenant = tenant
        self.calls = calls
        self.cache = cache


def test_methods_share_entries_across_instances_unless_the_key_says_otherwise(
    cache: MultiLevelCache[Any, Any],
) -> None:
    calls = Calls()

    class Users(Repository):
        @cached(cache=cache)
        def shared(self, user_id: int) -> str:
            self.calls("shared", self.tenant, user_id)
            return f"{self.tenant}:{user_id}"

        @cached(cache=cache, key="{self.tenant}:user:{user_id}", tags=["tenant:{self.tenant}"])
        def per_tenant(self, user_id: int) -> str:
            self.calls("per_tenant", self.tenant, user_id)
            return f"{self.tenant}:{user_id}"

    a, b = Users("a", calls, cache), Users("b", calls, cache)
    assert a.shared(1) == "a:1"
    assert b.shared(1) == "a:1"  # self is not part of the default key
    assert a.per_tenant(1) == "a:1"
    assert b.per_tenant(1) == "b:1"
    assert a.per_tenant(1) == "a:1"
    assert calls.args == [("shared", "a", 1), ("per_tenant", "a", 1), ("per_tenant", "b", 1)]
    assert a.per_tenant.key(1) == "a:user:1"
    assert a.per_tenant.invalidate(1) is True
    assert cache.get("b:user:1") == "b:1"
    assert isinstance(Users.shared, CachedFunction)  # on the class: unbound
    assert Users.shared(b, 1) == "a:1"


async def test_async_methods_and_classmethods(cache: MultiLevelCache[Any, Any]) -> None:
    calls = Calls()

    class Users(Repository):
        @cached(cache=cache, key="{self.tenant}:{user_id}")
        async def get(self, user_id: int) -> str:
            self.calls(self.tenant, user_id)
            return f"{self.tenant}:{user_id}"

    a = Users("a", calls, cache)
    assert await a.get(1) == "a:1"
    assert await a.get(user_id=1) == "a:1"
    assert await a.get.uncached(1) == "a:1"
    assert await a.get.invalidate(1) is True
    assert await a.get(1) == "a:1"
    assert calls.args == [("a", 1), ("a", 1), ("a", 1)]


# -- concurrency: one load for concurrent cold callers -----------------------------------


def test_concurrent_cold_threads_run_the_function_once(cache: MultiLevelCache[Any, Any]) -> None:
    release = threading.Event()
    calls = Calls()

    @cached(cache=cache)
    def slow(x: int) -> dict[str, int]:
        calls(x)
        release.wait(10)
        return {"x": x}

    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(slow(7))) for _ in range(8)]
    for thread in threads:
        thread.start()
    wait_until(lambda: cache.stats().sync_flights.coalesced == 7)  # all 8 in the flight
    release.set()
    for thread in threads:
        thread.join(10)
    assert results == [{"x": 7}] * 8
    assert calls.count == 1


async def test_concurrent_cold_coroutines_and_a_thread_run_the_function_once(
    cache: MultiLevelCache[Any, Any],
) -> None:
    release = asyncio.Event()
    calls = Calls()

    @cached(cache=cache, key="shared")
    async def slow() -> str:
        calls()
        await release.wait()
        return "value"

    @cached(cache=cache, key="shared")
    def slow_sync() -> str:  # another function under the same key: the same flight
        calls()
        return "sync value"

    tasks = [asyncio.ensure_future(slow()) for _ in range(20)]
    await await_until(lambda: cache.stats().async_flights.coalesced == 19)
    thread_result: list[str] = []
    thread = threading.Thread(target=lambda: thread_result.append(slow_sync()))
    thread.start()
    await await_until(lambda: cache.stats().sync_flights.coalesced == 1)  # waits on the coroutines' flight
    release.set()
    assert await asyncio.gather(*tasks) == ["value"] * 20
    await asyncio.to_thread(thread.join, 10)
    assert thread_result == ["value"]
    assert calls.count == 1


# -- through Redis: another instance, values as they were -------------------------------


@pytest.mark.redis
async def test_another_instance_is_served_from_redis_with_values_unchanged(redis_url: str) -> None:
    config = patient_config(redis_url=redis_url, namespace="fn-shared")
    calls = Calls()

    def compute(day: str) -> dict[str, Any]:
        calls(day)
        return {"day": day, "span": (1, 2), "tags": {"a", "b"}, "raw": b"\x00\xff"}

    async with MultiLevelCache(config) as one, MultiLevelCache(config) as two:
        first = cached(cache=one)(compute)
        second = cached(cache=two)(compute)  # the same function in another process's cache
        assert first("mon") == second("mon")
        value = second("mon")
        assert value == {"day": "mon", "span": (1, 2), "tags": {"a", "b"}, "raw": b"\x00\xff"}
        assert type(value["span"]) is tuple
        assert type(value["tags"]) is set
        assert calls.count == 1
        assert first.invalidate("mon") is True
        key = second.key("mon")
        wait_until(lambda: two.l1.peek(key, MISS) is MISS)  # the invalidation reached the other L1
        second("mon")
        assert calls.count == 2


# -- the managers' cache by default -----------------------------------------------------


@pytest.mark.usefixtures("fresh_managers")
async def test_without_a_cache_the_managers_cache_serves_both_apis() -> None:
    calls = Calls()

    @cached(key="price:{item}")
    def price(item: str) -> int:
        calls(item)
        return 3

    @cached(key="price:{item}")
    async def aprice(item: str) -> int:
        calls(item)
        return 4

    assert price("tea") == 3
    assert await aprice("tea") == 3  # one cache behind both managers
    assert get_cache_manager().cache is get_async_cache_manager().cache
    assert get_cache_manager().cache.get("price:tea") == 3
    await areset_cache_managers()
    assert await aprice("tea") == 4  # looked up at each call: the new cache is empty
    assert calls.args == [("tea",), ("tea",)]


# -- bad settings ----------------------------------------------------------------------


def test_bad_settings_are_refused_at_decoration() -> None:
    def f(user_id: int) -> int:
        return user_id

    with pytest.raises(CacheConfigError, match=r"\{user\}"):
        cached(key="u:{user}")(f)
    with pytest.raises(CacheConfigError, match="not a parameter"):
        cached(key="u:{}")(f)
    with pytest.raises(CacheConfigError, match="not a parameter"):
        cached(tags=["t:{missing}"])(f)
    with pytest.raises(CacheConfigError, match="one string"):
        cached(tags="users")(f)
    with pytest.raises(CacheConfigError, match="bad key template"):
        cached(key="u:{user_id")(f)
    with pytest.raises(CacheConfigError, match="prefix"):
        cached(prefix="a:b")(f)
    with pytest.raises(CacheConfigError, match="key must be"):
        cached(key=42)(f)  # type: ignore[arg-type]
    with pytest.raises(InvalidTTLError):
        cached(ttl=-1)(f)
    with pytest.raises(TypeError, match="callable"):
        cached(condition=True)(f)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="MultiLevelCache"):
        cached(cache={})(f)  # type: ignore[arg-type]

    def gen() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        cached()(gen)
