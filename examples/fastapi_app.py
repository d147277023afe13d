"""otel_cache's FastAPI integration in one app: lifespan, a warmer, dependencies, ``@cached``, telemetry.

Run:   uvicorn examples.fastapi_app:app
       OTEL_CACHE_REDIS_URL=redis://localhost:6379/0 uvicorn examples.fastapi_app:app   (Redis behind)
Try:   curl -i 'http://127.0.0.1:8000/traverse?start=a&depth=2'          # X-Cache: MISS, then HIT
       curl -i 'http://127.0.0.1:8000/traverse?depth=2&start=a'          # same key: HIT
       curl -i -H 'If-None-Match: W/"..."' 'http://127.0.0.1:8000/traverse?start=a&depth=2'  # 304
       curl -i -H 'Cache-Control: no-cache' 'http://127.0.0.1:8000/traverse?start=a&depth=2' # refresh
       curl 'http://127.0.0.1:8000/query?start=a&depth=3'               # the manager, as a dependency
With an OpenTelemetry SDK configured (``opentelemetry-instrument uvicorn examples.fastapi_app:app``),
server spans and cache spans are exported.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query

from examples.migration.traversal import TraversalQuery, TraversalResult, calls, run_traversal
from otel_cache import AsyncCacheManager, get_async_cache_manager
from otel_cache.integrations.fastapi import (
    AsyncCacheManagerDep,
    CacheManagerDep,
    cached,
    instrument_app,
    otel_cache_lifespan,
)
from otel_cache.warming import AsyncWarmer, CacheWarmer

# The traversals everyone asks for, kept warm in the query-results cache.
POPULAR = {AsyncCacheManager.key_for(query): query for query in (TraversalQuery(start="a", depth=3),)}


def load_popular(key: str) -> dict[str, Any]:
    return run_traversal(POPULAR[key]).model_dump(mode="json")


def popular_warmer() -> AsyncWarmer[str, dict[str, Any]]:
    # A factory: the lifespan calls it at startup, once the managers exist.
    cache = get_async_cache_manager().cache
    return CacheWarmer(
        cache, load_popular, list(POPULAR), interval=300, ttl=600, async_mode=True, name="popular"
    )


app = FastAPI(title="otel_cache example", lifespan=otel_cache_lifespan(warmers=[popular_warmer]))
instrument_app(app, excluded_urls="healthz")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/traverse")
@cached(ttl=60, vary_headers=["accept-language"])
async def traverse(query: Annotated[TraversalQuery, Query()]) -> TraversalResult:
    """An async endpoint whose whole response is cached (async cache API)."""
    return run_traversal(query)


@app.get("/traverse/sync")
@cached(ttl=60)
def traverse_sync(query: Annotated[TraversalQuery, Query()]) -> TraversalResult:
    """A ``def`` endpoint: FastAPI runs it in a thread, and ``@cached`` uses the sync API there."""
    return run_traversal(query)


@app.get("/query")
async def query_result(
    query: Annotated[TraversalQuery, Query()], cache: AsyncCacheManagerDep
) -> TraversalResult:
    """The async manager as a dependency; concurrent misses run the traversal once."""
    result = await cache.aget_or_compute(query, lambda: run_traversal(query).model_dump(mode="json"), ttl=60)
    return TraversalResult.model_validate(result)


@app.get("/query/sync")
def query_result_sync(query: Annotated[TraversalQuery, Query()], cache: CacheManagerDep) -> TraversalResult:
    """The sync manager as a dependency, in a ``def`` endpoint."""
    result = cache.get_or_compute(query, lambda: run_traversal(query).model_dump(mode="json"), ttl=60)
    return TraversalResult.model_validate(result)


@app.get("/stats")
async def stats() -> dict[str, int]:
    """How often the traversal ran: the cache at work."""
    return {"traversals": calls["run_traversal"]}
