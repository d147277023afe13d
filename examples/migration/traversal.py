"""The domain of the migration examples: a small graph and a traversal over it.

``run_traversal`` stands in for an expensive graph query; ``calls`` counts its runs,
so that one can see the cache at work (the tests read it).
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, Field

__all__ = ["GRAPH", "Edge", "TraversalQuery", "TraversalResult", "calls", "run_traversal"]

GRAPH: dict[str, list[str]] = {
    "a": ["b", "c"],
    "b": ["d"],
    "c": ["d", "e"],
    "d": ["f"],
    "e": ["f", "a"],
    "f": [],
}

calls: Counter[str] = Counter()


class TraversalQuery(BaseModel):
    """Which traversal to run: its cache key is ``query_key(query)``, the same for equal queries."""

    start: str = "a"
    depth: int = Field(default=2, ge=0, le=6)


class Edge(BaseModel):
    source: str
    target: str


class TraversalResult(BaseModel):
    start: str
    depth: int
    nodes: list[str]
    edges: list[Edge]


def run_traversal(query: TraversalQuery) -> TraversalResult:
    """Breadth-first from ``query.start``, ``query.depth`` hops deep."""
    calls["run_traversal"] += 1
    seen = [query.start] if query.start in GRAPH else []
    edges: list[Edge] = []
    frontier = list(seen)
    for _ in range(query.depth):
        following: list[str] = []
        for node in frontier:
            for target in GRAPH[node]:
                edges.append(Edge(source=node, target=target))
                if target not in seen:
                    seen.append(target)
                    following.append(target)
        frontier = following
    return TraversalResult(start=query.start, depth=query.depth, nodes=seen, edges=edges)
