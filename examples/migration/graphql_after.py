"""ADR-014, Migration Guide, "GraphQL Resolvers", *After*: the async manager, awaited.

Run:  uvicorn examples.migration.graphql_after:app
Try:  curl -s http://127.0.0.1:8000/graphql -H 'content-type: application/json' \\
        -d '{"query": "{ resolveTraversal(start: \\"a\\", depth: 2) { nodes edges { source target } } }"}'

The resolver changes in two lines; the app gets ``otel_cache_lifespan()`` to create and
close the managers.
"""

from __future__ import annotations

import strawberry
from fastapi import FastAPI
from strawberry.fastapi import GraphQLRouter

from examples.migration.graphql_types import TraversalResult
from examples.migration.traversal import TraversalQuery, run_traversal
from otel_cache import get_async_cache_manager
from otel_cache.integrations.fastapi import otel_cache_lifespan


@strawberry.type
class Query:
    # The ADR writes `(self, info)` and leaves `query` to the reader. Strawberry needs `info`
    # annotated, and the traversal comes from the field's arguments.
    @strawberry.field
    async def resolve_traversal(
        self, info: strawberry.Info, start: str = "a", depth: int = 2
    ) -> TraversalResult:
        query = TraversalQuery(start=start, depth=depth)
        cache = get_async_cache_manager()
        cached = await cache.aget_query_result(query)  # Non-blocking
        if cached is None:
            cached = run_traversal(query).model_dump(mode="json")
            await cache.acache_query_result(query, cached, ttl=60)
        return TraversalResult.from_data(cached)


schema = strawberry.Schema(query=Query)
app = FastAPI(title="traversal GraphQL (after)", lifespan=otel_cache_lifespan())
app.include_router(GraphQLRouter(schema), prefix="/graphql")
