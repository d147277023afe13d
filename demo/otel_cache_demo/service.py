"""The demo service: a graph-traversal API, written once per design, to run side by side.

Run::

    python -m otel_cache_demo.service --mode sync  --port 8001   # the legacy design
    python -m otel_cache_demo.service --mode async --port 8002   # ADR-014's design
    curl 'http://127.0.0.1:8002/traverse?start=service-0001&depth=3&relations=calls'
    curl -s http://127.0.0.1:8002/graphql -H 'content-type: application/json' \\
      -d '{"query": "{ traversal(start: \\"service-0001\\", depth: 3) { nodes { id score } } }"}'

Add ``--redis-url redis://127.0.0.1:6379/0`` (or ``OTEL_CACHE_REDIS_URL``) to put Redis
behind L1; both modes use the namespace ``otel-cache-demo`` and the same keys, so one
reads what the other stored (give each its own ``--namespace``, or flush Redis, between
runs that must start cold). The invalidation channel is on, as in any deployment with
Redis: two services on one database drop each other's L1 copies of what they store (the
same results: extra misses, nothing wrong); ``otel-cache demo`` gives each mode a
database of its own, and so a channel of its own. Set
``OTEL_EXPORTER_OTLP_ENDPOINT`` to export traces and metrics over OTLP/HTTP
(:mod:`otel_cache_demo.telemetry`).

=================  ===============================  ===============================
                   ``--mode sync`` (legacy)          ``--mode async`` (ADR-014)
=================  ===============================  ===============================
L1 lock            ``threading.RLock``              ``threading.Lock`` (loop-fair waits)
Redis client       redis-py, sync                   ``redis.asyncio``
REST endpoint      ``def``, in FastAPI's threadpool  ``async def``, on the loop
GraphQL resolver   sync manager, on the loop         async manager, awaited
cache API          ``get_or_compute``               ``await aget_or_compute``
warmer             ``ThreadWarmer`` (a thread)      ``AsyncWarmer`` (tasks)
=================  ===============================  ===============================

Everything else is the same: the graph and its queries, the response bytes (cached
JSON data sent with orjson, ``X-Cache: HIT | MISS``), the GraphQL document caches,
the warm set (the catalogue's ``--warm-keys`` most popular queries, refreshed every
``ttl / 2`` seconds so they never expire), the telemetry, and the event loop: both
run uvicorn with one worker on the standard ``asyncio`` loop by default
(``--loop uvloop`` for both if installed). The standard loop is the default because
the event-loop monitor's block spans can name the request that blocked the loop only
with Python-level loop handles.

Endpoints: ``GET /traverse`` (query string: ``start``, ``depth`` 1..4, ``relations``,
``kinds`` repeated, ``limit``), ``POST /graphql`` (field ``traversal``), ``GET /metrics``
(Prometheus), ``GET /healthz``, ``GET /stats`` (the cache's counters, the process's CPU
time and the event loop's lag, for a report).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args

import anyio.to_thread
import orjson
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import Response
from prometheus_client import make_asgi_app
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.fastapi import GraphQLRouter

from otel_cache.config import CacheConfig
from otel_cache.integrations.fastapi import instrument_app, otel_cache_lifespan
from otel_cache.l1.lock import RawLock
from otel_cache.managers import (
    CacheManager,
    configure_cache_managers,
    get_async_cache_manager,
    get_cache_manager,
)
from otel_cache.multilevel import MultiLevelCache, MultiLevelStats
from otel_cache.telemetry.instrumentor import OtelCacheInstrumentor
from otel_cache.telemetry.loop_monitor import EventLoopMonitor
from otel_cache.warming import AsyncWarmer, CacheWarmer, ThreadWarmer
from otel_cache_demo.catalogue import query_catalogue
from otel_cache_demo.graph import Graph, TraversalQuery, TraversalResult, default_graph
from otel_cache_demo.lookups import AsyncLookup, SyncLookup, UnknownNodeError
from otel_cache_demo.schema import make_schema
from otel_cache_demo.telemetry import DemoTelemetry

__all__ = ["DEFAULT_NAMESPACE", "DemoSettings", "Mode", "cache_config", "create_app", "demo_cache", "main"]

Mode = Literal["sync", "async"]
MODES: tuple[str, ...] = get_args(Mode)
DEFAULT_NAMESPACE = "otel-cache-demo"
_LOCKS: dict[str, Callable[[], RawLock]] = {
    "sync": threading.RLock,  # the ADR's legacy lock: the comparison's, not the library's
    "async": threading.Lock,
}


@dataclass(frozen=True)
class DemoSettings:
    """How one demo service runs (the CLI's options).

    ``l1_max_entries`` defaults to a quarter of the load generator's default catalogue
    (2,000 queries), so the Zipf tail misses L1 and the hit ratio is a real one.
    """

    mode: Mode
    redis_url: str | None = None
    ttl: float = 60.0
    warm_keys: int = 100
    warm_interval: float | None = None  # None: ttl / 2
    catalogue_seed: int = 0
    l1_max_entries: int = 500
    namespace: str = DEFAULT_NAMESPACE
    threads: int | None = None  # sync mode: FastAPI's threadpool size (None: anyio's 40)
    loop_monitor: bool = True
    config_overrides: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.warm_keys < 0:
            raise ValueError("warm_keys must be >= 0")
        if self.threads is not None and self.threads < 1:
            raise ValueError("threads must be >= 1")


def cache_config(settings: DemoSettings) -> CacheConfig:
    """The managers' config: ``OTEL_CACHE_*`` variables, then the settings."""
    overrides: dict[str, object] = {
        "name": "query-results",
        "namespace": settings.namespace,
        "default_ttl": settings.ttl,
        "l1_max_entries": settings.l1_max_entries,
    }
    if settings.redis_url is not None:
        overrides["redis_url"] = settings.redis_url
    overrides.update(settings.config_overrides)
    return CacheConfig.from_env(None).with_changes(**overrides)


def demo_cache(settings: DemoSettings) -> MultiLevelCache[str, Any]:
    """The managers' cache: :func:`cache_config`, and the L1 lock of the mode's design
    (the sync service's ``threading.RLock``, as the ADR's legacy code has it)."""
    return MultiLevelCache(
        cache_config(settings), async_mode=settings.mode == "async", l1_lock=_LOCKS[settings.mode]()
    )


@dataclass
class _State:
    """What the routes of one app share (``app.state.demo``)."""

    settings: DemoSettings
    telemetry: DemoTelemetry
    graph: Graph
    monitor: EventLoopMonitor | None = None


def create_app(
    mode: Mode,
    *,
    redis_url: str | None = None,
    ttl: float = 60.0,
    warm_keys: int = 100,
    settings: DemoSettings | None = None,
    telemetry: DemoTelemetry | None = None,
    graph: Graph | None = None,
) -> FastAPI:
    """The demo app of ``mode``; ``settings`` (if given) replace the keyword arguments.

    The app owns otel_cache's process-wide state while it serves: its lifespan binds the
    cache telemetry to its providers, creates the managers, starts the loop monitor and
    the warmer, and undoes it all at shutdown. Serve one demo app per process at a time.
    A ``telemetry`` passed in is the caller's to shut down; one made here is shut down
    with the app, which therefore serves once.
    """
    settings = (
        settings
        if settings is not None
        else DemoSettings(mode, redis_url=redis_url, ttl=ttl, warm_keys=warm_keys)
    )
    if settings.mode != mode:
        raise ValueError(f"settings are for mode {settings.mode!r}, not {mode!r}")
    owns_telemetry = telemetry is None
    telemetry = telemetry if telemetry is not None else DemoTelemetry.from_env(mode)
    graph = graph if graph is not None else default_graph()
    cache_config(settings)  # bad settings fail here, not at startup
    state = _State(settings, telemetry, graph)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _bind_cache_telemetry(telemetry)
        monitor = None
        if settings.loop_monitor:
            # Both modes: the sync design runs on a loop too (uvicorn's), and its lag is the point.
            monitor = EventLoopMonitor(
                name=f"demo-{mode}",
                mode=mode,
                meter_provider=telemetry.meter_provider,
                tracer_provider=telemetry.tracer_provider,
            )
        warmers = [_warmer_factory(settings, graph)] if settings.warm_keys else []
        try:
            configure_cache_managers(cache=demo_cache(settings))
            async with otel_cache_lifespan(
                config=None,  # the managers serve the cache configured above
                warmers=warmers,
                loop_monitor=monitor if monitor is not None else False,
                mode="sync" if mode == "sync" else "async",
            )(app):
                state.monitor = monitor
                if mode == "sync" and settings.threads is not None:
                    anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
                yield
        finally:
            state.monitor = None
            instrumentor = OtelCacheInstrumentor()
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
            if owns_telemetry:
                telemetry.shutdown()

    app = FastAPI(title=f"otel-cache demo ({mode})", lifespan=lifespan)
    app.state.demo = state
    if mode == "sync":
        _sync_routes(app, SyncLookup(graph, settings.ttl), state)
    else:
        _async_routes(app, AsyncLookup(graph, settings.ttl), state)
    app.router.routes.append(Route("/metrics", _ASGIEndpoint(make_asgi_app(registry=telemetry.registry))))
    instrument_app(
        app,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        excluded_urls="/healthz$,/metrics$,/stats$",  # not the API: no spans, no HTTP metrics
    )
    return app


def _bind_cache_telemetry(telemetry: DemoTelemetry) -> None:
    # OtelCacheInstrumentor is process-wide: point it at this app's providers, whoever
    # instrumented it before (another app of this process, or instrument_app at creation).
    instrumentor = OtelCacheInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )


def _warmer_factory(
    settings: DemoSettings, graph: Graph
) -> Callable[[], ThreadWarmer[str, dict[str, Any]] | AsyncWarmer[str, dict[str, Any]]]:
    """The warmer of the catalogue's most popular queries (called at startup, once the managers exist)."""
    popular = {
        CacheManager.key_for(q): q
        for q in query_catalogue(settings.warm_keys, seed=settings.catalogue_seed, graph=graph)
    }
    interval = settings.warm_interval if settings.warm_interval is not None else settings.ttl / 2

    def load(key: str) -> dict[str, Any]:
        return graph.run(popular[key])

    async def aload(key: str) -> dict[str, Any]:
        # Yield first: with L1 alone aput() never suspends, so without this a run of
        # `warm_keys` traversals would hold the loop from its first key to its last.
        await asyncio.sleep(0)
        return graph.run(popular[key])

    def factory() -> ThreadWarmer[str, dict[str, Any]] | AsyncWarmer[str, dict[str, Any]]:
        keys = list(popular)
        if settings.mode == "sync":
            # The legacy design's CacheWarmer thread, sharing the RLock with the request threads.
            return CacheWarmer(
                get_cache_manager().cache, load, keys, interval=interval, ttl=settings.ttl, name="top-queries"
            )
        # Tasks on the loop; each key's traversal runs inline, between other tasks' steps.
        return CacheWarmer(
            get_async_cache_manager().cache,
            aload,
            keys,
            interval=interval,
            ttl=settings.ttl,
            name="top-queries",
            async_mode=True,
        )

    return factory


# -- routes -------------------------------------------------------------------------------

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "`start` is not a node of the graph"}}


class _ASGIEndpoint:
    """An ASGI app as a route's endpoint: Starlette calls a plain function as ``f(request)``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _json(result: Mapping[str, Any], hit: bool) -> Response:
    # The cached JSON data as is: no model validation on the way out (response_model
    # documents it), the same bytes in both modes.
    return Response(
        orjson.dumps(result), media_type="application/json", headers={"x-cache": "HIT" if hit else "MISS"}
    )


def _sync_routes(app: FastAPI, lookup: SyncLookup, state: _State) -> None:
    @app.get("/traverse", response_model=TraversalResult, responses=_NOT_FOUND)
    def traverse(query: Annotated[TraversalQuery, Query()]) -> Response:
        """Runs in FastAPI's threadpool: the sync manager's calls (and Redis) block a worker thread."""
        try:
            result, hit = lookup.lookup(query)
        except UnknownNodeError as exc:
            raise HTTPException(404, str(exc)) from exc
        return _json(result, hit)

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        return _stats(state, get_cache_manager().cache.stats())

    _common_routes(app, lookup, state)


def _async_routes(app: FastAPI, lookup: AsyncLookup, state: _State) -> None:
    @app.get("/traverse", response_model=TraversalResult, responses=_NOT_FOUND)
    async def traverse(query: Annotated[TraversalQuery, Query()]) -> Response:
        """On the loop: the async manager awaits Redis; a miss computes inline."""
        try:
            result, hit = await lookup.alookup(query)
        except UnknownNodeError as exc:
            raise HTTPException(404, str(exc)) from exc
        return _json(result, hit)

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return _stats(state, await get_async_cache_manager().cache.astats())

    _common_routes(app, lookup, state)


def _common_routes(app: FastAPI, lookup: SyncLookup | AsyncLookup, state: _State) -> None:
    mode = state.settings.mode

    async def context() -> dict[str, object]:
        return {"lookup": lookup}

    app.include_router(GraphQLRouter(make_schema(mode), context_getter=context), prefix="/graphql")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        # async in both modes: the load generator's calibration target, the same in each.
        return {"status": "ok", "mode": mode}


def _stats(state: _State, stats: MultiLevelStats) -> dict[str, Any]:
    times = os.times()
    flights = stats.sync_flights if state.settings.mode == "sync" else stats.async_flights
    monitor = state.monitor
    return {
        "mode": state.settings.mode,
        "cache": {
            "l1": {
                "hits": stats.l1.hits,
                "misses": stats.l1.misses,
                "hit_ratio": stats.l1.hit_ratio,
                "entries": stats.l1.entries,
                "evictions": stats.l1.evictions,
            },
            "l2": {
                "enabled": stats.l2.enabled,
                "hits": stats.l2.hits,
                "misses": stats.l2.misses,
                "errors": stats.l2.errors,
            },
            "loads": flights.loads,
            "coalesced": flights.coalesced,
        },
        "process": {
            "cpu_user_s": times.user,
            "cpu_system_s": times.system,
            "threads": threading.active_count(),
        },
        "event_loop": None
        if monitor is None
        else {"samples": monitor.samples, "max_lag_s": monitor.max_lag_s, "blocks": monitor.blocks},
    }


# -- command line -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m otel_cache_demo.service", description="The otel_cache demo service (one design)."
    )
    parser.add_argument(
        "--mode", choices=MODES, required=True, help="sync: the legacy design; async: ADR-014's"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--redis-url", default=None, help="put Redis behind L1 (default: OTEL_CACHE_REDIS_URL)"
    )
    parser.add_argument(
        "--namespace", default=DEFAULT_NAMESPACE, help="Redis key prefix (shared by both modes by default)"
    )
    parser.add_argument("--ttl", type=float, default=60.0, help="seconds a result stays cached")
    parser.add_argument(
        "--warm-keys", type=int, default=100, help="most popular queries to keep warm (0: none)"
    )
    parser.add_argument("--l1-max-entries", type=int, default=500, help="L1 bound (default: 500)")
    parser.add_argument(
        "--catalogue-seed", type=int, default=0, help="the load generator's --seed, for the warm set"
    )
    parser.add_argument("--threads", type=int, default=None, help="sync mode: threadpool size (default 40)")
    parser.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the same in both modes"
    )
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--access-log", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m otel_cache_demo.service``: serve one design with uvicorn, one worker."""
    import uvicorn

    args = _parser().parse_args(argv)
    # Stable HTTP semantic conventions: http.server.request.duration in seconds.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = DemoSettings(
        args.mode,
        redis_url=args.redis_url,
        namespace=args.namespace,
        ttl=args.ttl,
        warm_keys=args.warm_keys,
        l1_max_entries=args.l1_max_entries,
        catalogue_seed=args.catalogue_seed,
        threads=args.threads,
    )
    telemetry = DemoTelemetry.from_env(args.mode)
    app = create_app(args.mode, settings=settings, telemetry=telemetry)
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            loop=args.loop,
            lifespan="on",
            access_log=args.access_log,
            log_level=args.log_level,
        )
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
