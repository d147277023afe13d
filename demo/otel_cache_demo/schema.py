"""The demo's GraphQL API (strawberry): one ``traversal`` field, one schema per design.

::

    { traversal(start: "service-0001", depth: 3, relations: ["calls"]) {
        start depth reached examined
        nodes { id kind hops score }
        edges { source target relation } } }

The resolvers are ADR-014's migration guide, *GraphQL Resolvers*:

- :class:`SyncQuery` (``--mode sync``): :func:`resolve_traversal_before`, the sync
  manager called from the resolver, on the event loop (strawberry runs resolvers there);
- :class:`AsyncQuery` (``--mode async``): :func:`resolve_traversal_after`, the async
  manager, awaited.

Both answer what REST answers for the same query and set ``X-Cache: HIT | MISS`` on
the HTTP response. The lookup (:mod:`otel_cache_demo.lookups`) comes from the request
context (``info.context["lookup"]``), set by the app.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.extensions import ParserCache, ValidationCache

from otel_cache_demo.graph import TraversalQuery
from otel_cache_demo.lookups import AsyncLookup, SyncLookup

__all__ = [
    "AsyncQuery",
    "Edge",
    "NodeHit",
    "SyncQuery",
    "TraversalResult",
    "make_schema",
    "resolve_traversal_after",
    "resolve_traversal_before",
]


@strawberry.type
class NodeHit:
    id: str
    kind: str
    hops: int
    score: float


@strawberry.type
class Edge:
    source: str
    target: str
    relation: str


@strawberry.type
class TraversalResult:
    start: str
    depth: int
    nodes: list[NodeHit]
    edges: list[Edge]
    reached: int
    examined: int

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> TraversalResult:
        """From the JSON data the cache holds (what REST sends)."""
        return cls(
            start=data["start"],
            depth=data["depth"],
            nodes=[
                NodeHit(id=n["id"], kind=n["kind"], hops=n["hops"], score=n["score"]) for n in data["nodes"]
            ],
            edges=[
                Edge(source=e["source"], target=e["target"], relation=e["relation"]) for e in data["edges"]
            ],
            reached=data["reached"],
            examined=data["examined"],
        )


def _query(
    start: str, depth: int, relations: list[str] | None, kinds: list[str] | None, limit: int
) -> TraversalQuery:
    return TraversalQuery.model_validate(
        {"start": start, "depth": depth, "relations": relations, "kinds": kinds, "limit": limit}
    )


def _mark(info: strawberry.Info, hit: bool) -> None:
    response = info.context.get("response")
    if response is not None:
        response.headers["x-cache"] = "HIT" if hit else "MISS"


async def resolve_traversal_before(
    info: strawberry.Info,
    start: str,
    depth: int = 2,
    relations: list[str] | None = None,
    kinds: list[str] | None = None,
    limit: int = 25,
) -> TraversalResult:
    """The sync design's resolver: the ADR's *before*."""
    query = _query(start, depth, relations, kinds, limit)
    lookup: SyncLookup = info.context["lookup"]
    cached, hit = lookup.lookup(query)  # Blocks event loop
    _mark(info, hit)
    return TraversalResult.from_data(cached)


async def resolve_traversal_after(
    info: strawberry.Info,
    start: str,
    depth: int = 2,
    relations: list[str] | None = None,
    kinds: list[str] | None = None,
    limit: int = 25,
) -> TraversalResult:
    """The async design's resolver: the ADR's *after*."""
    query = _query(start, depth, relations, kinds, limit)
    lookup: AsyncLookup = info.context["lookup"]
    cached, hit = await lookup.alookup(query)  # Non-blocking
    _mark(info, hit)
    return TraversalResult.from_data(cached)


_DESCRIPTION = "The most relevant nodes within `depth` hops of `start`."


@strawberry.type(name="Query")
class SyncQuery:
    traversal: TraversalResult = strawberry.field(resolver=resolve_traversal_before, description=_DESCRIPTION)


@strawberry.type(name="Query")
class AsyncQuery:
    traversal: TraversalResult = strawberry.field(resolver=resolve_traversal_after, description=_DESCRIPTION)


def make_schema(mode: str) -> strawberry.Schema:
    """The schema of ``mode`` ("sync" or "async"), with parsed and validated documents cached."""
    query = SyncQuery if mode == "sync" else AsyncQuery
    # Clients send a few documents with variables: parse and validate each once (the caches
    # are strawberry's, shared by every instance; the factories make one per request).
    return strawberry.Schema(
        query=query, extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)]
    )
