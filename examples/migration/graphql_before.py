"""ADR-014, Migration Guide, "GraphQL Resolvers", *Before*: the sync manager in an async resolver.

Run:  uvicorn examples.migration.graphql_before:app
Try:  curl -s http://127.0.0.1:8000/graphql -H 'content-type: application/json' \\
        -d '{"query": "{ resolveTraversal(start: \\"a\\", depth: 2) { nodes edges { source target } } }"}'

See ``graphql_after.py``.
"""

from __future__ import annotations

import strawberry
from fastapi import FastAPI
from strawberry.fastapi import GraphQLRouter

from examples.migration.graphql_types import TraversalResult
from examples.migration.traversal import TraversalQuery, run_traversal
from otel_cache import get_cache_manager


@strawberry.type
class Query:
    # The ADR writes `(self, info)` and leaves `query` to the reader. Strawberry needs `info`
    # annotated, and the traversal comes from the field's arguments.
    @strawberry.field
    async def resolve_traversal(
        self, info: strawberry.Info, start: str = "a", depth: int = 2
    ) -> TraversalResult:
        query = TraversalQuery(start=start, depth=depth)
        cache = get_cache_manager()
        cached = cache.get_query_result(query)  # Blocks event loop
        if cached is None:
            cached = run_traversal(query).model_dump(mode="json")
            cache.cache_query_result(query, cached, ttl=60)
        return TraversalResult.from_data(cached)


schema = strawberry.Schema(query=Query)
app = FastAPI(title="traversal GraphQL (before)")
app.include_router(GraphQLRouter(schema), prefix="/graphql")
