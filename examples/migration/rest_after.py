"""ADR-014, Migration Guide, "REST API Endpoints", *After*: the async manager, awaited.

Run:  uvicorn examples.migration.rest_after:app
Try:  curl 'http://127.0.0.1:8000/traverse?start=a&depth=2'

Two lines change in the endpoint (``get_async_cache_manager()``, ``await ...aget_query_result``
and ``acache_query_result``), and the app gets ``otel_cache_lifespan()``, which creates the
managers at startup and closes them (and their Redis connections) at shutdown.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Query

from examples.migration.traversal import TraversalQuery, TraversalResult, run_traversal
from otel_cache import get_async_cache_manager
from otel_cache.integrations.fastapi import otel_cache_lifespan

router = APIRouter()


# The ADR writes `query: TraversalQuery`. For a pydantic model FastAPI reads that from the
# request *body*, which a GET does not have; `Annotated[..., Query()]` reads its fields from
# the query string (`Depends()` would too, on FastAPI < 0.115).
@router.get("/traverse")
async def traverse(query: Annotated[TraversalQuery, Query()]) -> TraversalResult:
    cache = get_async_cache_manager()
    result = await cache.aget_query_result(query)  # Non-blocking
    if result is None:
        result = run_traversal(query).model_dump(mode="json")
        await cache.acache_query_result(query, result, ttl=60)
    return TraversalResult.model_validate(result)


app = FastAPI(title="traversal (after)", lifespan=otel_cache_lifespan())
app.include_router(router)
