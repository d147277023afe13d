"""How each design answers a traversal: cached through the managers, computed on a miss.

Both REST and GraphQL call these, so one mode answers both protocols the same way::

    SyncLookup(graph, ttl).lookup(query)           -> (result, hit)   legacy: get_cache_manager()
    await AsyncLookup(graph, ttl).alookup(query)   -> (result, hit)   new: get_async_cache_manager()

A miss runs :meth:`Graph.run <otel_cache_demo.graph.Graph.run>` once however many
requests ask for the query at the same time (the managers' single-flight), stores the
JSON data for ``ttl`` seconds and returns it; ``hit`` is False only for the request
that computed it. Where the computation runs is each design's best:

- **sync**: in the caller's thread. REST endpoints are ``def``, so that is one of
  FastAPI's worker threads and the loop stays free; the GraphQL resolver runs on the
  loop (strawberry calls resolvers there), as in the ADR's "before".
- **async**: inline on the event loop. The traversal is pure Python (0.1 to a few ms,
  about 0.6 ms on average): in a thread it would hold the GIL all the same, so the
  loop gains nothing, and pays a thread hop per miss plus waits of up to the GIL
  switch interval (5 ms) to get the GIL back. Concurrent misses of one query compute
  once; distinct misses are short enough to run between other requests' steps.
"""

from __future__ import annotations

from typing import Any

from otel_cache.managers import get_async_cache_manager, get_cache_manager
from otel_cache_demo.graph import Graph, TraversalQuery

__all__ = ["AsyncLookup", "SyncLookup", "UnknownNodeError"]


class UnknownNodeError(LookupError):
    """The query starts from a node the graph does not have."""

    def __init__(self, start: str) -> None:
        super().__init__(f"unknown node {start!r}")
        self.start = start


class _Lookup:
    def __init__(self, graph: Graph, ttl: float | None) -> None:
        self.graph = graph
        self.ttl = ttl

    def _check(self, query: TraversalQuery) -> None:
        # Before the cache: an unknown start is a client error, not something to cache.
        if query.start not in self.graph:
            raise UnknownNodeError(query.start)


class SyncLookup(_Lookup):
    """The legacy design: the sync manager (``threading.RLock`` L1, the sync Redis client)."""

    def lookup(self, query: TraversalQuery) -> tuple[dict[str, Any], bool]:
        """The result of ``query`` and whether it came from the cache."""
        self._check(query)
        computed = False

        def compute() -> dict[str, Any]:
            nonlocal computed
            computed = True
            return self.graph.run(query)

        result: dict[str, Any] = get_cache_manager().get_or_compute(query, compute, ttl=self.ttl)
        return result, not computed


class AsyncLookup(_Lookup):
    """The new design: the async manager (``redis.asyncio``; the L1 lock never blocks the loop)."""

    async def alookup(self, query: TraversalQuery) -> tuple[dict[str, Any], bool]:
        """The result of ``query`` and whether it came from the cache."""
        self._check(query)
        computed = False

        def compute() -> dict[str, Any]:
            nonlocal computed
            computed = True
            return self.graph.run(query)  # inline on the loop: see the module docstring

        result: dict[str, Any] = await get_async_cache_manager().aget_or_compute(query, compute, ttl=self.ttl)
        return result, not computed
