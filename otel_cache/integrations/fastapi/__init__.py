"""FastAPI integration: lifespan, dependencies, ``@cached`` endpoints, instrumentation.

Needs the ``fastapi`` extra (``pip install 'otel-cache[fastapi]'``)::

    from fastapi import FastAPI
    from otel_cache.integrations.fastapi import (
        AsyncCacheManagerDep, cached, instrument_app, otel_cache_lifespan,
    )

    app = FastAPI(lifespan=otel_cache_lifespan())      # managers, loop monitor, warmers
    instrument_app(app)                                 # server spans + cache spans

    @app.get("/users/{user_id}")
    @cached(ttl=60, vary_headers=["accept-language"])  # under the route decorator
    async def user(user_id: int) -> User:
        return await load_user(user_id)

    @app.get("/traverse")
    async def traverse(query: Annotated[TraversalQuery, Query()], cache: AsyncCacheManagerDep):
        return await cache.aget_or_compute(query, lambda: run_traversal(query), ttl=60)

Lifespan
    :func:`otel_cache_lifespan` configures and creates the query-result managers at
    startup (so a bad ``OTEL_CACHE_*`` setting fails the startup), starts the
    event-loop monitor and the warmers, enters the app's own lifespan (``wrap=``),
    and undoes it all at shutdown, ending with ``await areset_cache_managers()``.

Dependencies
    ``CacheManagerDep`` / ``AsyncCacheManagerDep`` (``Annotated`` aliases over
    :func:`cache_manager` / :func:`async_cache_manager`) give an endpoint the
    process-wide sync or async manager. A ``def`` endpoint runs in FastAPI's
    threadpool and takes the sync one; an ``async def`` endpoint takes the async one.

``@cached``
    Caches the JSON form (``jsonable_encoder``) of what a GET endpoint returns, keyed by
    a hash of the endpoint, method, path, query parameters (in any order) and the
    values of ``vary_headers``, or by ``key=``, a template over the endpoint's
    parameters (then :func:`invalidate_cached` removes one response by its parameters;
    tags may be templates too). ``async def`` endpoints use the async cache API,
    ``def`` endpoints the sync API in the threadpool. Concurrent misses of one key
    run the endpoint once (single-flight). The body goes back through FastAPI, so
    ``response_model`` still filters it, on hits as on misses.

    ======================================  ==============================================
    request                                 behaviour
    ======================================  ==============================================
    (nothing special)                       served from the cache, or loaded and stored
    ``Cache-Control: no-cache``,            not served from the cache; loaded and stored
    ``max-age=0``, ``Pragma: no-cache``     (the next request is a hit)
    ``Cache-Control: max-age=N``            a cached response older than N s is reloaded
    ``Cache-Control: no-store``             the cache is not read or written (``BYPASS``)
    ``If-None-Match`` matching the ETag     ``304 Not Modified``, no body
    not GET/HEAD                            passed through (the key has no request body)
    endpoint returns a ``Response``         passed through, not cached
    ======================================  ==============================================

    Responses carry ``Cache-Control: max-age=<seconds left>``, ``ETag: W/"<hash of the
    body>"``, ``X-Cache: HIT | MISS | BYPASS`` (a request that waited for another's load
    is a HIT) and, with ``vary_headers``, ``Vary``. Only the body is cached: headers
    or a status code the endpoint sets on its own ``Response`` parameter are not
    replayed on hits. Without ``key=``, the stored keys are digests of the requests.

Instrumentation
    :func:`instrument_app` wires ``FastAPIInstrumentor`` (without the per-message
    receive/send spans) and ``OtelCacheInstrumentor``; :func:`uninstrument_app` undoes it.
"""

from otel_cache.integrations.fastapi.decorator import (
    ainvalidate_cached,
    cached,
    cached_key,
    invalidate_cached,
)
from otel_cache.integrations.fastapi.dependencies import (
    AsyncCacheManagerDep,
    CacheManagerDep,
    async_cache_manager,
    cache_manager,
)
from otel_cache.integrations.fastapi.instrument import instrument_app, uninstrument_app
from otel_cache.integrations.fastapi.lifespan import (
    AsyncService,
    SyncService,
    WarmerSpec,
    otel_cache_lifespan,
)

__all__ = [
    "AsyncCacheManagerDep",
    "AsyncService",
    "CacheManagerDep",
    "SyncService",
    "WarmerSpec",
    "ainvalidate_cached",
    "async_cache_manager",
    "cache_manager",
    "cached",
    "cached_key",
    "instrument_app",
    "invalidate_cached",
    "otel_cache_lifespan",
    "uninstrument_app",
]
