"""ADR-014, Migration Guide, "REST API Endpoints", *Before*: the sync manager in an async endpoint.

Run:  uvicorn examples.migration.rest_before:app
Try:  curl 'http://127.0.0.1:8000/traverse?start=a&depth=2'

``get_query_result`` runs on the event loop: with Redis behind it (``OTEL_CACHE_REDIS_URL``)
every request waits for a Redis round trip with the loop blocked. See ``rest_after.py``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Query

from examples.migration.traversal import TraversalQuery, TraversalResult, run_traversal
from otel_cache import get_cache_manager

router = APIRouter()


# The ADR writes `query: TraversalQuery`. For a pydantic model FastAPI reads that from the
# request *body*, which a GET does not have; `Annotated[..., Query()]` reads its fields from
# the query string (`Depends()` would too, on FastAPI < 0.115).
@router.get("/traverse")
async def traverse(query: Annotated[TraversalQuery, Query()]) -> TraversalResult:
    cache = get_cache_manager()
    result = cache.get_query_result(query)  # Blocks event loop
    if result is None:
        result = run_traversal(query).model_dump(mode="json")
        cache.cache_query_result(query, result, ttl=60)
    return TraversalResult.model_validate(result)


app = FastAPI(title="traversal (before)")
app.include_router(router)
