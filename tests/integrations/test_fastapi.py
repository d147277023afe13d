"""The FastAPI integration through httpx over ASGI: ``@cached``, dependencies, lifespan, instrumentation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
import redis
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from otel_cache import (
    AsyncCacheManager,
    CacheConfig,
    CacheConfigError,
    CacheManager,
    InvalidTTLError,
    MultiLevelCache,
    get_async_cache_manager,
    get_cache_manager,
)
from otel_cache.integrations.fastapi import (
    AsyncCacheManagerDep,
    CacheManagerDep,
    ainvalidate_cached,
    async_cache_manager,
    cache_manager,
    cached,
    cached_key,
    instrument_app,
    invalidate_cached,
    otel_cache_lifespan,
    uninstrument_app,
)
from otel_cache.warming import AsyncWarmer, CacheWarmer, ThreadWarmer
from tests.integrations.asgi_client import serving
from tests.support import ManualClock
from tests.support.config import patient_config

START = 1_700_000_000.0  # a Unix time for the injected clock


class Public(BaseModel):
    name: str


class Private(Public):
    password_hash: str


class Shop:
    """An app with the same ``@cached`` endpoints twice: ``/async/...`` (``async def``) and ``/sync/...``
    (``def``, run in FastAPI's threadpool). Each counts its calls in ``calls`` by endpoint name."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        cache: MultiLevelCache[Any, Any] | None = None,
        config: CacheConfig | None = None,
    ) -> None:
        self.calls: Counter[str] = Counter()
        self.async_gate = asyncio.Event()
        self.sync_gate = threading.Event()
        self.threads: list[str] = []
        self.app = app = FastAPI(lifespan=otel_cache_lifespan(config=config, loop_monitor=False))
        calls, threads = self.calls, self.threads
        options: dict[str, Any] = {"clock": clock, "cache": cache}

        def item_body(item_id: int, q: str | None, tag: list[str], lang: str | None) -> dict[str, Any]:
            calls["item"] += 1
            return {"id": item_id, "q": q, "tags": tag, "lang": lang, "n": calls["item"]}

        @app.get("/async/items/{item_id}")
        @cached(ttl=60, vary_headers=["Accept-Language"], **options)
        async def async_item(
            item_id: int,
            q: str | None = None,
            tag: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
            accept_language: Annotated[str | None, Header()] = None,
        ) -> dict[str, Any]:
            return item_body(item_id, q, tag, accept_language)

        @app.get("/sync/items/{item_id}")
        @cached(ttl=60, vary_headers=["Accept-Language"], **options)
        def sync_item(
            item_id: int,
            q: str | None = None,
            tag: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
            accept_language: Annotated[str | None, Header()] = None,
        ) -> dict[str, Any]:
            threads.append(threading.current_thread().name)
            return item_body(item_id, q, tag, accept_language)

        @app.get("/async/slow")
        @cached(ttl=60, **options)
        async def async_slow() -> dict[str, int]:
            calls["slow"] += 1
            await self.async_gate.wait()
            return {"n": calls["slow"]}

        @app.get("/sync/slow")
        @cached(ttl=60, **options)
        def sync_slow() -> dict[str, int]:
            calls["slow"] += 1
            assert self.sync_gate.wait(timeout=10)
            return {"n": calls["slow"]}

        @app.get("/async/raw")
        @cached(ttl=60, **options)
        async def async_raw() -> JSONResponse:
            calls["raw"] += 1
            return JSONResponse({"n": calls["raw"]}, headers={"x-raw": "yes"})

        @app.get("/sync/raw")
        @cached(ttl=60, **options)
        def sync_raw() -> JSONResponse:
            calls["raw"] += 1
            return JSONResponse({"n": calls["raw"]}, headers={"x-raw": "yes"})

        @app.get("/async/missing")
        @cached(ttl=60, **options)
        async def async_missing() -> dict[str, int]:
            calls["missing"] += 1
            raise HTTPException(status_code=404, detail="no such thing")

        @app.get("/sync/missing")
        @cached(ttl=60, **options)
        def sync_missing() -> dict[str, int]:
            calls["missing"] += 1
            raise HTTPException(status_code=404, detail="no such thing")

        @app.post("/async/items")
        @cached(ttl=60, **options)
        async def async_create() -> dict[str, int]:
            calls["create"] += 1
            return {"n": calls["create"]}

        @app.post("/sync/items")
        @cached(ttl=60, **options)
        def sync_create() -> dict[str, int]:
            calls["create"] += 1
            return {"n": calls["create"]}

        @app.get("/async/user", response_model=Public)
        @cached(ttl=60, **options)
        async def async_user() -> Any:
            calls["user"] += 1
            return Private(name="ada", password_hash="secret")

        @app.get("/sync/user", response_model=Public)
        @cached(ttl=60, **options)
        def sync_user() -> Any:
            calls["user"] += 1
            return Private(name="ada", password_hash="secret")

    def open_gate(self) -> None:
        self.async_gate.set()
        self.sync_gate.set()


@pytest.fixture(params=["async", "sync"])
def api(request: pytest.FixtureRequest) -> str:
    """Which endpoints a test calls: ``async def`` ones or ``def`` ones (same behaviour expected)."""
    return str(request.param)


def _cache_of(api: str) -> MultiLevelCache[Any, Any]:
    return get_async_cache_manager().cache if api == "async" else get_cache_manager().cache


def _flights(api: str) -> Any:
    cache = _cache_of(api)
    return cache.async_flights if api == "async" else cache.sync_flights


# -- @cached: hits, misses and keys -------------------------------------------------------


async def test_miss_then_hit(api: str) -> None:
    shop = Shop()
    async with serving(shop.app) as client:
        first = await client.get(f"/{api}/items/1", params={"q": "x"})
        second = await client.get(f"/{api}/items/1", params={"q": "x"})
    assert first.status_code == second.status_code == 200
    assert first.headers["x-cache"] == "MISS"
    assert second.headers["x-cache"] == "HIT"
    assert first.json() == second.json() == {"id": 1, "q": "x", "tags": [], "lang": None, "n": 1}
    assert shop.calls["item"] == 1


async def test_concurrent_misses_run_the_endpoint_once(api: str) -> None:
    shop = Shop()
    async with serving(shop.app) as client:
        requests = [asyncio.create_task(client.get(f"/{api}/slow")) for _ in range(20)]
        # Until every other request waits on the one load (a counter: there is no event to await).
        while _flights(api).coalesced < 19:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        shop.open_gate()
        responses = await asyncio.gather(*requests)
    assert shop.calls["slow"] == 1
    assert {r.status_code for r in responses} == {200}
    assert all(r.json() == {"n": 1} for r in responses)
    assert sorted(r.headers["x-cache"] for r in responses) == ["HIT"] * 19 + ["MISS"]
    assert len({r.headers["etag"] for r in responses}) == 1


async def test_vary_headers_split_the_key(api: str) -> None:
    shop = Shop()
    path = f"/{api}/items/1"
    async with serving(shop.app) as client:
        en = await client.get(path, headers={"Accept-Language": "en"})
        fr = await client.get(path, headers={"accept-language": "fr"})
        none = await client.get(path)
        en_again = await client.get(path, headers={"ACCEPT-LANGUAGE": "en"})
        other = await client.get(path, headers={"Accept-Language": "en", "X-Other": "1"})
    assert [r.headers["x-cache"] for r in (en, fr, none)] == ["MISS"] * 3
    assert (en.json()["lang"], fr.json()["lang"], none.json()["lang"]) == ("en", "fr", None)
    assert en_again.headers["x-cache"] == other.headers["x-cache"] == "HIT"  # other headers do not matter
    assert en_again.json() == en.json()
    assert en.headers["vary"] == "accept-language"
    assert shop.calls["item"] == 3


async def test_query_order_does_not_matter_but_repeated_values_keep_theirs(api: str) -> None:
    shop = Shop()
    async with serving(shop.app) as client:
        first = await client.get(f"/{api}/items/1?q=x&tag=a&tag=b")
        reordered = await client.get(f"/{api}/items/1?tag=a&q=x&tag=b")
        swapped = await client.get(f"/{api}/items/1?q=x&tag=b&tag=a")
        other_path = await client.get(f"/{api}/items/2?q=x&tag=a&tag=b")
    assert first.headers["x-cache"] == "MISS"
    assert reordered.headers["x-cache"] == "HIT"
    assert reordered.json() == first.json()
    assert swapped.headers["x-cache"] == "MISS"  # ?tag=b&tag=a is another list
    assert swapped.json()["tags"] == ["b", "a"]
    assert other_path.headers["x-cache"] == "MISS"
    assert shop.calls["item"] == 3


async def test_both_kinds_of_endpoint_use_the_one_process_cache(api: str) -> None:
    shop = Shop()
    async with serving(shop.app) as client:
        await client.get(f"/{api}/items/7")
        assert _cache_of("sync") is _cache_of("async")
        assert _cache_of(api).l1.stats().entries == 1
    if api == "sync":  # run by FastAPI in its threadpool
        assert shop.threads
        assert threading.main_thread().name not in shop.threads


async def test_an_explicit_cache_is_used(api: str) -> None:
    cache: MultiLevelCache[Any, Any] = MultiLevelCache(CacheConfig(name="http"), async_mode=api == "async")
    shop = Shop(cache=cache)
    try:
        async with serving(shop.app) as client:
            await client.get(f"/{api}/items/1")
            assert cache.l1.stats().entries == 1
            assert get_async_cache_manager().cache.l1.stats().entries == 0
            assert get_cache_manager().cache.l1.stats().entries == 0
    finally:
        await cache.aclose()


# -- request cache directives ----------------------------------------------------------


async def test_no_store_neither_reads_nor_writes(api: str) -> None:
    shop = Shop()
    path, no_store = f"/{api}/items/1", {"Cache-Control": "no-store"}
    async with serving(shop.app) as client:
        bypass = await client.get(path, headers=no_store)
        miss = await client.get(path)  # the no-store response was not stored
        bypass_again = await client.get(path, headers=no_store)  # nor is the cache read
        hit = await client.get(path)
    assert bypass.headers["x-cache"] == bypass_again.headers["x-cache"] == "BYPASS"
    assert "etag" not in bypass.headers
    assert "cache-control" not in bypass.headers
    assert miss.headers["x-cache"] == "MISS"
    assert (bypass.json()["n"], miss.json()["n"], bypass_again.json()["n"]) == (1, 2, 3)
    assert hit.headers["x-cache"] == "HIT"
    assert hit.json()["n"] == 2


@pytest.mark.parametrize(
    "headers",
    [{"Cache-Control": "no-cache"}, {"Cache-Control": "max-age=0"}, {"Pragma": "no-cache"}],
    ids=["no-cache", "max-age=0", "pragma"],
)
async def test_no_cache_refreshes(api: str, headers: dict[str, str]) -> None:
    shop = Shop()
    async with serving(shop.app) as client:
        await client.get(f"/{api}/items/1")
        refreshed = await client.get(f"/{api}/items/1", headers=headers)
        after = await client.get(f"/{api}/items/1")
    assert refreshed.headers["x-cache"] == "MISS"
    assert refreshed.json()["n"] == 2  # not served from the cache
    assert after.headers["x-cache"] == "HIT"
    assert after.json()["n"] == 2  # the refreshed response replaced the old one
    assert after.headers["etag"] == refreshed.headers["etag"]


async def test_request_max_age_reloads_older_entries(api: str) -> None:
    clock = ManualClock(START)
    shop = Shop(clock=clock)
    async with serving(shop.app) as client:
        await client.get(f"/{api}/items/1")
        clock.advance(10)
        young_enough = await client.get(f"/{api}/items/1", headers={"Cache-Control": "max-age=30"})
        too_old = await client.get(f"/{api}/items/1", headers={"Cache-Control": "max-age=5"})
    assert young_enough.headers["x-cache"] == "HIT"
    assert too_old.headers["x-cache"] == "MISS"
    assert too_old.json()["n"] == 2


async def test_cache_control_max_age_counts_down(api: str) -> None:
    clock = ManualClock(START)
    shop = Shop(clock=clock)
    async with serving(shop.app) as client:
        miss = await client.get(f"/{api}/items/1")
        clock.advance(25.5)
        hit = await client.get(f"/{api}/items/1")
        clock.advance(40)  # past our clock's expiry; the cache's own TTL runs on real time
        late = await client.get(f"/{api}/items/1")
    assert miss.headers["cache-control"] == "max-age=60"
    assert hit.headers["cache-control"] == "max-age=34"
    assert late.headers["cache-control"] == "max-age=0"


async def test_etag_and_if_none_match(api: str) -> None:
    shop = Shop()
    path = f"/{api}/items/1"
    async with serving(shop.app) as client:
        first = await client.get(path)
        etag = first.headers["etag"]
        assert etag.startswith('W/"')
        assert etag.endswith('"')
        not_modified = await client.get(path, headers={"If-None-Match": etag})
        strong_form = await client.get(path, headers={"If-None-Match": etag[2:]})
        in_a_list = await client.get(path, headers={"If-None-Match": f'"other", {etag}'})
        star = await client.get(path, headers={"If-None-Match": "*"})
        changed = await client.get(path, headers={"If-None-Match": 'W/"other"'})
    for response in (not_modified, strong_form, in_a_list, star):
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["cache-control"].startswith("max-age=")
        assert response.headers["x-cache"] == "HIT"
    assert changed.status_code == 200
    assert changed.json() == first.json()
    assert shop.calls["item"] == 1


async def test_a_fresh_load_with_an_unchanged_body_is_not_modified_either(api: str) -> None:
    shop = Shop()
    async with serving(shop.app) as client:
        first = await client.get(f"/{api}/items/1")
        await _cache_of(api).aclear()
        shop.calls["item"] = 0  # the reload produces the same body
        again = await client.get(f"/{api}/items/1", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["x-cache"] == "MISS"


# -- what is not cached --------------------------------------------------------------


async def test_responses_are_passed_through_uncached(api: str) -> None:
    shop = Shop()
    async with serving(shop.app) as client:
        first = await client.get(f"/{api}/raw")
        second = await client.get(f"/{api}/raw")
    assert (first.json(), second.json()) == ({"n": 1}, {"n": 2})
    assert first.headers["x-raw"] == "yes"
    assert "x-cache" not in first.headers
    assert "etag" not in first.headers


async def test_errors_are_not_cached(api: str) -> None:
    shop = Shop()
    async with serving(shop.app) as client:
        first = await client.get(f"/{api}/missing")
        second = await client.get(f"/{api}/missing")
    assert first.status_code == second.status_code == 404
    assert second.json() == {"detail": "no such thing"}
    assert shop.calls["missing"] == 2


async def test_unsafe_methods_bypass_the_cache(api: str) -> None:
    shop = Shop()
    async with serving(shop.app) as client:
        first = await client.post(f"/{api}/items")
        second = await client.post(f"/{api}/items")
    assert (first.json(), second.json()) == ({"n": 1}, {"n": 2})
    assert first.headers["x-cache"] == "BYPASS"


async def test_response_model_filters_hits_as_well_as_misses(api: str) -> None:
    shop = Shop()
    async with serving(shop.app) as client:
        miss = await client.get(f"/{api}/user")
        hit = await client.get(f"/{api}/user")
    assert miss.json() == hit.json() == {"name": "ada"}
    assert hit.headers["x-cache"] == "HIT"


# -- the decorated endpoint, seen by FastAPI ---------------------------------------------


def test_openapi_shows_the_endpoint_parameters_only() -> None:
    shop = Shop()
    operation = shop.app.openapi()["paths"]["/async/items/{item_id}"]["get"]
    names = {(p["name"], p["in"]) for p in operation["parameters"]}
    assert names == {("item_id", "path"), ("q", "query"), ("tag", "query"), ("accept-language", "header")}
    assert "requestBody" not in operation


def test_decorator_arguments_are_checked() -> None:
    with pytest.raises(InvalidTTLError):
        cached(ttl=0)
    with pytest.raises(InvalidTTLError):
        cached(ttl=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="namespace"):
        cached(namespace="a:b")
    with pytest.raises(ValueError, match="vary_headers"):
        cached(vary_headers=[""])

    def stream() -> Any:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        cached()(stream)


async def test_a_decorated_endpoint_may_take_the_request_itself() -> None:
    app = FastAPI()

    @app.get("/echo")
    @cached(ttl=5)
    async def echo(request: Request, response: Response) -> dict[str, str]:
        response.headers["x-own"] = "set by the endpoint"
        return {"path": request.url.path}

    @app.get("/echo-sync")
    @cached(ttl=5)
    def echo_sync(request: Request) -> dict[str, str]:
        return {"path": request.url.path}

    async with serving(app) as client:
        first = await client.get("/echo")
        second = await client.get("/echo")
        sync = await client.get("/echo-sync")
    assert first.json() == second.json() == {"path": "/echo"}
    assert first.headers["x-own"] == "set by the endpoint"
    assert "x-own" not in second.headers  # only the body is cached
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert sync.json() == {"path": "/echo-sync"}


# -- dependencies -----------------------------------------------------------------------


async def test_dependencies_give_the_process_wide_managers() -> None:
    app = FastAPI(lifespan=otel_cache_lifespan(loop_monitor=False))
    seen: dict[str, object] = {}

    @app.get("/async")
    async def with_async(manager: AsyncCacheManagerDep) -> dict[str, bool]:
        seen["async"] = manager
        await manager.acache_query_result({"q": 1}, {"r": 1})
        return {"ok": True}

    @app.get("/sync")
    def with_sync(manager: CacheManagerDep) -> dict[str, bool]:
        seen["sync"] = manager
        manager.cache_query_result({"q": 1}, {"r": 2})
        return {"ok": True}

    async with serving(app) as client:
        assert (await client.get("/async")).status_code == 200
        assert (await client.get("/sync")).status_code == 200
        assert seen["async"] is get_async_cache_manager()
        assert seen["sync"] is get_cache_manager()
        # One cache for both APIs: the sync endpoint's later write is what both read.
        assert await get_async_cache_manager().aget_query_result({"q": 1}) == {"r": 2}
        assert get_cache_manager().get_query_result({"q": 1}) == {"r": 2}


async def test_dependencies_can_be_overridden() -> None:
    app = FastAPI()
    other = AsyncCacheManager(MultiLevelCache(CacheConfig(name="other"), async_mode=True))
    app.dependency_overrides[async_cache_manager] = lambda: other

    @app.get("/")
    async def endpoint(
        manager: AsyncCacheManagerDep, sync: Annotated[CacheManager, Depends(cache_manager)]
    ) -> dict[str, bool]:
        return {"other": manager is other, "sync": sync is get_cache_manager()}

    try:
        async with serving(app) as client:
            assert (await client.get("/")).json() == {"other": True, "sync": True}
    finally:
        await other.aclose()


# -- lifespan --------------------------------------------------------------------------


def _own_threads() -> set[threading.Thread]:
    """Live threads, without the worker pools of asyncio and AnyIO (FastAPI's threadpool)."""
    pools = ("asyncio_", "AnyIO worker")
    return {t for t in threading.enumerate() if t.is_alive() and not t.name.startswith(pools)}


def _otel_cache_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("otel-cache")}


def _otel_cache_tasks() -> set[str]:
    return {t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("otel-cache")}


async def test_lifespan_starts_and_stops_warmers_and_leaves_nothing_behind() -> None:
    threads_before = _own_threads()
    loaded: Counter[str] = Counter()

    def load(key: str) -> str:
        loaded[key] += 1
        return key.upper()

    made: list[object] = []

    def async_factory() -> AsyncWarmer[str, str]:
        warmer = CacheWarmer(
            get_async_cache_manager().cache, load, ["a", "b"], interval=60, async_mode=True, name="async-w"
        )
        made.append(warmer)
        return warmer

    thread_warmer: ThreadWarmer[str, str] = ThreadWarmer(
        get_cache_manager().cache, load, ["c"], interval=60, name="sync-w"
    )
    app = FastAPI(lifespan=otel_cache_lifespan(warmers=[async_factory, thread_warmer]))

    async with app.router.lifespan_context(app):
        assert thread_warmer.running
        assert isinstance(made[0], AsyncWarmer)
        assert made[0].running
        assert "otel-cache-warmer-sync-w" in _otel_cache_threads()
        assert "otel-cache-warmer-async-w" in _otel_cache_tasks()
        deadline = time.monotonic() + 5
        while sum(loaded.values()) < 3 and time.monotonic() < deadline:  # noqa: ASYNC110 - a thread counts
            await asyncio.sleep(0.005)
        assert await get_async_cache_manager().cache.aget("a") == "A"
        # The thread warmer was made before startup with the cache of that time; the factory
        # ran after the managers existed.
        assert made[0]._cache is get_async_cache_manager().cache  # type: ignore[attr-defined]
        sync_manager = get_cache_manager()

    assert not thread_warmer.running
    assert not made[0].running  # type: ignore[attr-defined]
    assert _otel_cache_threads() == set()
    assert _otel_cache_tasks() == set()
    assert _own_threads() == threads_before  # the loop monitor's watchdog is gone too
    assert get_cache_manager() is not sync_manager  # the managers were reset at shutdown


async def test_lifespan_runs_the_loop_monitor() -> None:
    pytest.importorskip("otel_cache.telemetry.loop_monitor")
    threads_before = set(threading.enumerate())
    app = FastAPI(lifespan=otel_cache_lifespan(monitor_options={"name": "test-app", "interval": 0.01}))
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.03)
        started = {
            t for t in set(threading.enumerate()) - threads_before if not t.name.startswith("asyncio_")
        }
        assert started, "the monitor's watchdog thread is running"
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        assert tasks, "the monitor's sampler task is running"
    assert {
        t for t in set(threading.enumerate()) - threads_before if not t.name.startswith("asyncio_")
    } == set()
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_lifespan_takes_a_monitor_instance_or_none() -> None:
    events: list[str] = []

    class Monitor:
        def start(self) -> None:
            events.append("start")

        async def stop(self) -> None:
            events.append("stop")

    app = FastAPI(lifespan=otel_cache_lifespan(loop_monitor=Monitor()))
    async with app.router.lifespan_context(app):
        assert events == ["start"]
    assert events == ["start", "stop"]
    with pytest.raises(ValueError, match="monitor_options"):
        otel_cache_lifespan(loop_monitor=False, monitor_options={"name": "x"})


async def test_lifespan_configures_and_creates_the_managers() -> None:
    config = CacheConfig(name="api", namespace="api-test", default_ttl=30)
    app = FastAPI(lifespan=otel_cache_lifespan(config=config, loop_monitor=False))
    async with app.router.lifespan_context(app):
        assert get_async_cache_manager().cache.config is config
        assert get_cache_manager().cache.config is config
    assert get_async_cache_manager().cache.config.name == "query-results"  # reset: from the environment


async def test_managers_made_before_startup_keep_their_config(caplog: pytest.LogCaptureFixture) -> None:
    early = get_async_cache_manager()
    app = FastAPI(lifespan=otel_cache_lifespan(config=CacheConfig(name="late"), loop_monitor=False))
    with caplog.at_level("WARNING", logger="otel_cache.integrations.fastapi"):
        async with app.router.lifespan_context(app):
            assert get_async_cache_manager() is early
            assert get_cache_manager().cache is early.cache  # one cache, with its own config
            assert early.cache.config.name == "query-results"
    assert "the managers' cache existed before startup" in caplog.text


async def test_the_lifespan_honours_otel_cache_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_CACHE_NAME", "catalogue")
    monkeypatch.setenv("OTEL_CACHE_DEFAULT_TTL", "42")
    app = FastAPI(lifespan=otel_cache_lifespan(loop_monitor=False))
    async with app.router.lifespan_context(app):
        config = get_async_cache_manager().cache.config
        assert (config.name, config.default_ttl) == ("catalogue", 42)
        assert get_cache_manager().cache.config is config  # the sync manager, made on first use
    monkeypatch.delenv("OTEL_CACHE_NAME")
    async with app.router.lifespan_context(app):
        assert get_async_cache_manager().cache.config.name == "query-results"


async def test_a_bad_environment_fails_the_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_CACHE_DEFAULT_TTL", "forever")
    app = FastAPI(lifespan=otel_cache_lifespan(loop_monitor=False))
    with pytest.raises(CacheConfigError, match="OTEL_CACHE_DEFAULT_TTL"):
        async with app.router.lifespan_context(app):
            pass


async def test_lifespan_wraps_the_apps_own_and_passes_its_state() -> None:
    events: list[str] = []
    warmer: ThreadWarmer[str, str] = ThreadWarmer(get_cache_manager().cache, str.upper, ["x"], interval=60)

    @asynccontextmanager
    async def own(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        events.append(f"own start, warmer running={warmer.running}")
        yield {"db": "connected"}
        events.append(f"own stop, warmer running={warmer.running}")

    app = FastAPI(lifespan=otel_cache_lifespan(warmers=[warmer], loop_monitor=False, wrap=own))
    async with app.router.lifespan_context(app) as state:
        assert state == {"db": "connected"}
    assert events == ["own start, warmer running=True", "own stop, warmer running=True"]
    assert not warmer.running


async def test_a_failed_startup_stops_what_had_started() -> None:
    warmer: ThreadWarmer[str, str] = ThreadWarmer(get_cache_manager().cache, str.upper, ["x"], interval=60)

    def broken() -> ThreadWarmer[str, str]:
        raise RuntimeError("cannot make this warmer")

    app = FastAPI(lifespan=otel_cache_lifespan(warmers=[warmer, broken], loop_monitor=False))
    manager = get_cache_manager()
    with pytest.raises(RuntimeError, match="cannot make"):
        async with app.router.lifespan_context(app):
            pass
    assert not warmer.running
    assert _otel_cache_threads() == set()
    assert get_cache_manager() is not manager


async def test_lifespan_refuses_what_is_not_a_warmer() -> None:
    app = FastAPI(lifespan=otel_cache_lifespan(warmers=[lambda: 42], loop_monitor=False))  # type: ignore[list-item]
    with pytest.raises(TypeError, match="start"):
        async with app.router.lifespan_context(app):
            pass


# -- Redis behind ------------------------------------------------------------------------


async def test_cached_endpoint_with_redis_behind(redis_url: str) -> None:
    shop = Shop(config=patient_config(redis_url=redis_url, namespace="svc"))
    async with serving(shop.app) as client:
        first = await client.get("/async/items/12345", params={"q": "secret-token"})
        sync_first = await client.get("/sync/items/1")
    # A new startup has new managers with empty L1s: the hits come from Redis.
    async with serving(shop.app) as client:
        second = await client.get("/async/items/12345", params={"q": "secret-token"})
        sync_second = await client.get("/sync/items/1")
        assert get_cache_manager().cache is get_async_cache_manager().cache
        assert get_async_cache_manager().cache.stats().l2.hits == 2  # one per endpoint kind
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert (sync_first.headers["x-cache"], sync_second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.json() == first.json()
    assert second.headers["etag"] == first.headers["etag"]
    assert shop.calls["item"] == 2

    raw = redis.Redis.from_url(redis_url)
    try:
        keys = sorted(key.decode() for key in raw.keys("*"))
    finally:
        raw.close()
    assert len(keys) == 2
    assert all(key.startswith("svc:http:RequestKey:") for key in keys)  # digests, not paths
    assert not [key for key in keys if "12345" in key or "secret" in key]


# -- instrumentation -------------------------------------------------------------------------


async def test_instrument_app_traces_requests_and_cache_calls_without_receive_and_send_spans(
    redis_url: str,
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_cache.telemetry.instrumentor import OtelCacheInstrumentor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    shop = Shop(config=patient_config(redis_url=redis_url))
    instrument_app(shop.app, tracer_provider=provider)
    instrument_app(shop.app, tracer_provider=provider)  # idempotent
    try:
        assert OtelCacheInstrumentor().is_instrumented_by_opentelemetry
        async with serving(shop.app) as client:
            assert (await client.get("/async/items/1", params={"token": "raw-value"})).status_code == 200
            await client.get("/async/items/1", params={"token": "raw-value"})
    finally:
        uninstrument_app(shop.app)
        provider.shutdown()
    assert not OtelCacheInstrumentor().is_instrumented_by_opentelemetry
    spans = exporter.get_finished_spans()
    names = [span.name for span in spans]
    assert names.count("GET /async/items/{item_id}") == 2
    assert not [name for name in names if name.endswith(("http receive", "http send"))]
    miss = next(span for span in spans if span.name == "GET /async/items/{item_id}")
    cache_spans = [span for span in spans if span.name.startswith("otel_cache.")]
    assert cache_spans, names
    # The cache's spans of the first request belong to its trace.
    assert miss.context is not None
    assert {span.context.trace_id for span in cache_spans if span.context} & {miss.context.trace_id}
    text = " ".join(str(value) for span in spans for value in (span.attributes or {}).values())
    assert "RequestKey" not in text  # no cache key on any span


# -- key templates, tag templates and invalidation (the machinery of otel_cache.cached) ----


class Users:
    """``/{api}/users/{user_id}``: keyed by a template, tagged by templates; ``/{api}/lang/{user_id}``
    also varies by ``accept-language``."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.app = app = FastAPI()
        calls = self.calls

        @app.get("/async/users/{user_id}")
        @cached(ttl=60, key="user:{user_id}", tags=["users", "user:{user_id}"])
        async def async_user(user_id: int, detail: bool = False) -> dict[str, Any]:
            calls["user"] += 1
            return {"id": user_id, "detail": detail, "n": calls["user"]}

        @app.get("/sync/users/{user_id}")
        @cached(ttl=60, key="user:{user_id}", tags=["users", "user:{user_id}"])
        def sync_user(user_id: int, detail: bool = False) -> dict[str, Any]:
            calls["user"] += 1
            return {"id": user_id, "detail": detail, "n": calls["user"]}

        @app.get("/async/lang/{user_id}")
        @cached(ttl=60, key="lang:{user_id}", vary_headers=["accept-language"])
        async def async_lang(user_id: int, accept_language: Annotated[str, Header()] = "") -> dict[str, Any]:
            calls["lang"] += 1
            return {"lang": accept_language}

        @app.get("/sync/lang/{user_id}")
        @cached(ttl=60, key="lang:{user_id}", vary_headers=["accept-language"])
        def sync_lang(user_id: int, accept_language: Annotated[str, Header()] = "") -> dict[str, Any]:
            calls["lang"] += 1
            return {"lang": accept_language}

        @app.get("/plain")
        @cached(ttl=60)
        async def plain() -> dict[str, int]:
            return {}

        self.user = {"async": async_user, "sync": sync_user}
        self.lang = {"async": async_lang, "sync": sync_lang}
        self.plain = plain


async def test_a_key_template_names_the_entry_and_invalidate_cached_removes_it(api: str) -> None:
    users = Users()
    endpoint = users.user[api]
    async with serving(users.app) as client:
        first = await client.get(f"/{api}/users/1")
        again = await client.get(f"/{api}/users/1", params={"detail": "true"})  # not in the template
        assert (first.headers["x-cache"], again.headers["x-cache"]) == ("MISS", "HIT")
        assert again.json() == {"id": 1, "detail": False, "n": 1}
        assert cached_key(endpoint, user_id=1) == "http:user:1"
        assert _cache_of(api).get("http:user:1") is not None  # other code can name the entry
        if api == "async":
            assert await ainvalidate_cached(endpoint, user_id=1) is True
        else:
            assert await asyncio.to_thread(invalidate_cached, endpoint, user_id=1) is True
        after = await client.get(f"/{api}/users/1")
        assert after.headers["x-cache"] == "MISS"
        assert after.json()["n"] == 2


async def test_tag_templates_invalidate_one_users_responses(api: str) -> None:
    users = Users()
    async with serving(users.app) as client:
        await client.get(f"/{api}/users/1")
        await client.get(f"/{api}/users/2")
        assert await _cache_of(api).ainvalidate_tags(["user:1"]) == 1
        one = await client.get(f"/{api}/users/1")
        two = await client.get(f"/{api}/users/2")
        assert (one.headers["x-cache"], two.headers["x-cache"]) == ("MISS", "HIT")
        assert await _cache_of(api).ainvalidate_tags(["users"]) == 2


async def test_a_keyed_endpoint_that_varies_keeps_one_entry_per_header_value(api: str) -> None:
    users = Users()
    async with serving(users.app) as client:
        en = await client.get(f"/{api}/lang/1", headers={"accept-language": "en"})
        fr = await client.get(f"/{api}/lang/1", headers={"accept-language": "fr"})
        en_again = await client.get(f"/{api}/lang/1", headers={"accept-language": "en"})
    assert [r.json()["lang"] for r in (en, fr, en_again)] == ["en", "fr", "en"]
    assert [r.headers["x-cache"] for r in (en, fr, en_again)] == ["MISS", "MISS", "HIT"]
    assert users.calls["lang"] == 2
    with pytest.raises(TypeError, match="varies by headers"):
        cached_key(users.lang[api], user_id=1)


def test_invalidation_helpers_refuse_what_they_cannot_name() -> None:
    users = Users()
    with pytest.raises(TypeError, match="no key="):
        cached_key(users.plain)
    with pytest.raises(TypeError, match="not a @cached endpoint"):
        cached_key(test_invalidation_helpers_refuse_what_they_cannot_name)
    with pytest.raises(CacheConfigError, match="not a parameter"):

        @cached(key="user:{uid}")
        async def wrong(user_id: int) -> None: ...
