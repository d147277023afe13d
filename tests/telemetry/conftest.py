"""Fixtures of the telemetry tests (helpers are in ``telemetry_helpers.py``).

``telemetry``            instruments otel_cache with a fresh ``TracerProvider`` (``SimpleSpanProcessor``
                         over an ``InMemorySpanExporter``) and a fresh ``MeterProvider``
                         (``InMemoryMetricReader``); always uninstruments at teardown. Options by
                         indirect parametrisation::

                             @pytest.mark.parametrize("telemetry", [{"instrument_redis": True}],
                                                      indirect=True)

                         keys: ``instrument_redis`` (default False), ``record_key_hashes``
                         (default: not passed, so ``OTEL_CACHE_RECORD_KEY_HASHES`` decides),
                         ``sampler`` (default: the SDK's).
``cache_name``           a name no other live cache has: the observable instruments report every
                         registered cache of the process, so a test reads only its own caches' points.
``api``                  "sync" or "async": tests that use it run once through each API.
``make_cache``           ``make(async_mode=..., **config)``: a ``MultiLevelCache``, closed after the test.
``exercise_everything``  ``await run(name)``: operations that make every cache metric report a point
                         (on a ``fresh_redis_server`` that it stops at the end, for the L2 error).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from otel_cache import AsyncLRUCache, FailSafe, LoadTimeoutError, MultiLevelCache
from otel_cache.telemetry import hooks
from otel_cache.warming import AsyncWarmer, ThreadWarmer
from tests.support import ManualClock, RedisServer
from tests.support.config import patient_config
from tests.telemetry.telemetry_helpers import Telemetry, hold_lock

_names = itertools.count()


@pytest.fixture
def telemetry(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    """otel_cache instrumented with in-memory providers; uninstrumented afterwards."""
    monkeypatch.delenv("OTEL_CACHE_RECORD_KEY_HASHES", raising=False)  # a developer's shell must not decide
    options = dict(getattr(request, "param", None) or {})
    assert hooks.current() is None, "a previous test left otel_cache instrumented"
    tel = Telemetry(**options)
    tel.instrument()
    try:
        yield tel
    finally:
        tel.uninstrument()
        tel.shutdown()


@pytest.fixture
def cache_name() -> str:
    """A cache name unique in this process."""
    return f"tcache{next(_names)}"


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> str:
    """Which API of the cache the test drives."""
    return str(request.param)


@pytest.fixture
async def make_cache() -> AsyncIterator[Callable[..., Any]]:
    """``make(async_mode=..., clock=..., **config)``: a ``MultiLevelCache`` (patient timeouts
    unless named); all closed after the test."""
    made: list[MultiLevelCache[Any, Any]] = []

    def make(*, async_mode: bool, clock: Callable[[], float] = time.monotonic, **config: Any) -> Any:
        cache: MultiLevelCache[Any, Any] = MultiLevelCache(
            patient_config(**config), async_mode=async_mode, clock=clock
        )
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.aclose()


@pytest.fixture
def exercise_everything(
    make_cache: Callable[..., Any], fresh_redis_server: RedisServer
) -> Iterator[Callable[[str], Awaitable[None]]]:
    """``await run(name)``: every cache metric gets a point; the caches live until the test ends.

    Keys all start with ``ukey-`` and values with ``uvalue-``, so that a test can look for them.
    """
    keep: list[Any] = []

    async def run(name: str) -> None:
        url = fresh_redis_server.url
        cache = make_cache(
            async_mode=True,
            name=name,
            redis_url=url,
            l1_max_entries=2,
            breaker_threshold=1,
            breaker_reset=600,
        )
        sync_cache = make_cache(
            async_mode=False, name=f"{name}-sync", redis_url=url, compression="zstd", compression_min_bytes=64
        )
        l1 = AsyncLRUCache[str, str](name=f"{name}-l1")
        keep.append(l1)
        # requests, puts, evictions, entries, memory, operation.duration
        for key in ("ukey-a", "ukey-b", "ukey-c"):
            await cache.aput(key, f"uvalue-{key}")
        assert await cache.aget("ukey-a") == "uvalue-ukey-a"  # L2 hit
        assert await cache.aget("ukey-nothing") is None  # L2 miss
        assert await cache.adelete("ukey-b")
        sync_cache.put("ukey-s", "uvalue-s")
        assert sync_cache.get("ukey-s") == "uvalue-s"
        sync_cache.put("ukey-z", "uvalue-z" * 64)  # compressed.size
        # refreshes: a refresh ahead of expiry, on a clock of the test's
        clock = ManualClock()
        refreshing = make_cache(async_mode=False, name=f"{name}-refresh", clock=clock)
        assert refreshing.get_or_set("ukey-r", lambda: "uvalue-r", ttl=10, refresh_ahead=0.5) == "uvalue-r"
        clock.advance(6)
        assert refreshing.get_or_set("ukey-r", lambda: "uvalue-r2", ttl=10, refresh_ahead=0.5) == "uvalue-r"
        for _ in range(6000):  # the refresh thread runs; this only waits for it (bounded: no hang)
            if refreshing.stats().refresh.succeeded:
                break
            await asyncio.sleep(0.005)
        # fail_safe.activations: an expired value whose load fails, answered by its copy
        refreshing.get_or_set("ukey-f", lambda: "uvalue-f", ttl=10, fail_safe=FailSafe(max_age=60))
        clock.advance(11)
        assert refreshing.get_or_set("ukey-f", _fail, ttl=10, fail_safe=FailSafe(max_age=60)) == "uvalue-f"
        # load.timeouts: a load that outlasts its caller's hard timeout (then released)
        release = threading.Event()
        with pytest.raises(LoadTimeoutError):
            refreshing.get_or_set(
                "ukey-t", lambda: release.wait(30) and "uvalue-t", ttl=10, hard_timeout=0.01
            )
        release.set()
        l1.put("ukey-l", "uvalue-l")
        assert l1.get("ukey-l") == "uvalue-l"
        # loads, coalesced, load.duration (success and failure)
        release = asyncio.Event()

        async def slow() -> str:
            await release.wait()
            return "uvalue-loaded"

        async def release_when_coalesced() -> None:
            while cache.async_flights.coalesced < 2:  # noqa: ASYNC110 - a plain counter, nothing to await
                await asyncio.sleep(0.001)
            release.set()

        loaded = await asyncio.gather(
            release_when_coalesced(), *(cache.aget_or_set("ukey-hot", slow) for _ in range(3))
        )
        assert loaded[1:] == ["uvalue-loaded"] * 3

        async def broken() -> str:
            raise LookupError("no such row")

        with pytest.raises(LookupError):
            await cache.aget_or_set("ukey-broken", broken)
        # lock.wait.duration, lock.contended
        thread = hold_lock(cache.l1.lock, 0.01)
        await cache.aget("ukey-hot")
        thread.join()
        # warmer runs, failures, duration

        def load(key: str) -> str:
            if key == "ukey-bad":
                raise LookupError("no such row")
            return f"uvalue-{key}"

        keys = ["ukey-w", "ukey-bad"]
        ThreadWarmer(sync_cache, load, keys, interval=3600, name=f"{name}-thread").run_once()
        warmer = AsyncWarmer(cache, load, keys, interval=3600, name=f"{name}-tasks")
        await warmer.run_once()
        keep.append(warmer)
        # l2.errors, circuit_breaker.state (open)
        fresh_redis_server.stop()
        assert await cache.aget("ukey-gone") is None

    yield run
    for item in keep:
        if isinstance(item, AsyncLRUCache):
            item.close()


def _fail() -> str:
    raise LookupError("the source is down")
