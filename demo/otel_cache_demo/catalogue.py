"""The queries clients ask, and how often: a fixed catalogue with Zipf popularity.

::

    queries = query_catalogue(2_000, seed=7)       # distinct queries, most popular first
    stream = RequestStream(len(queries), zipf_s=1.1, graphql_share=0.2, seed=7)
    index, graphql = stream.next()                  # which query the next request asks, and how

Real query traffic is skewed: a few queries are asked all the time, most rarely.
Query ``k`` (1-based rank) is asked with probability proportional to ``1 / k**s``; with
``s = 1.1`` and 2,000 queries the top 10 % take about 80 % of the requests, so the hit
ratio a cache reaches depends on how many queries it can hold, as in production.

Both are deterministic: the catalogue depends only on ``seed`` and the graph, and each
query's place in it does not depend on ``n_queries`` (the first 100 of a 2,000-query
catalogue are the 100-query catalogue), so a service that warms "the top N" warms the
queries the load generator asks most. The request stream is one seeded sequence: the
``i``-th request sent is the same query, by the same protocol, in every run, whatever
the service's speed; only how far into the sequence a run gets differs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from otel_cache_demo.graph import KINDS, RELATIONS, Graph, TraversalQuery, default_graph

__all__ = ["RequestStream", "query_catalogue", "top_share", "zipf_cumulative"]

# What a catalogue is made of: mostly 3- and 4-hop walks, some filtered: a miss costs 0.1 to a
# few ms of CPU, about 0.5 ms on average (tests/demo/test_demo_graph.py prints the spread).
_DEPTHS = (2, 3, 4)
_DEPTH_WEIGHTS = (0.05, 0.45, 0.5)
_START_KINDS = frozenset(("service", "user", "team"))
_LIMITS = (25, 10, 50)
_LIMIT_WEIGHTS = (0.8, 0.1, 0.1)


def query_catalogue(n_queries: int, seed: int = 0, graph: Graph | None = None) -> list[TraversalQuery]:
    """``n_queries`` distinct queries over ``graph`` (default: the demo's), most popular first.

    About 60 % have no filter, 25 % follow only two or three relations, 15 % enter
    only three or four kinds of node.
    """
    if n_queries < 1:
        raise ValueError("n_queries must be >= 1")
    graph = graph if graph is not None else default_graph()
    starts = [
        node_id for node_id, kind in zip(graph.ids, graph.kinds, strict=True) if KINDS[kind] in _START_KINDS
    ]
    rng = random.Random(f"otel-cache-demo-catalogue:{seed}")
    seen: set[str] = set()
    queries: list[TraversalQuery] = []
    while len(queries) < n_queries:
        start = rng.choice(starts)
        depth = rng.choices(_DEPTHS, weights=_DEPTH_WEIGHTS)[0]
        limit = rng.choices(_LIMITS, weights=_LIMIT_WEIGHTS)[0]
        draw = rng.random()
        relations = kinds = None
        if draw < 0.25:
            relations = rng.sample(RELATIONS, rng.randint(2, 3))
        elif draw < 0.4:
            kinds = rng.sample(KINDS, rng.randint(3, 4))
        query = TraversalQuery.model_validate(
            {"start": start, "depth": depth, "relations": relations, "kinds": kinds, "limit": limit}
        )
        fingerprint = query.model_dump_json()
        if fingerprint not in seen:
            seen.add(fingerprint)
            queries.append(query)
    return queries


def zipf_cumulative(n: int, s: float) -> list[float]:
    """Cumulative Zipf weights of ranks 1..n (``random.choices(cum_weights=...)`` takes them)."""
    if n < 1 or s < 0:
        raise ValueError("a Zipf law needs n >= 1 and s >= 0")
    total = 0.0
    cumulative = []
    for rank in range(1, n + 1):
        total += rank**-s
        cumulative.append(total)
    return cumulative


def top_share(n: int, s: float, fraction: float) -> float:
    """The share of requests that go to the top ``fraction`` of ``n`` Zipf-ranked queries."""
    cumulative = zipf_cumulative(n, s)
    top = max(1, round(n * fraction))
    return cumulative[top - 1] / cumulative[-1]


class RequestStream:
    """The deterministic sequence of ``(query index, graphql?)`` a load run sends.

    Drawn in blocks of ``block`` with one seeded generator, so it costs well under a
    microsecond a request.
    """

    def __init__(
        self,
        n_queries: int,
        *,
        zipf_s: float = 1.1,
        graphql_share: float = 0.2,
        seed: int = 0,
        block: int = 4096,
    ) -> None:
        if not 0.0 <= graphql_share <= 1.0:
            raise ValueError("graphql_share must be between 0 and 1")
        self._cumulative = zipf_cumulative(n_queries, zipf_s)
        self._population = range(n_queries)
        self._graphql_share = graphql_share
        self._rng = random.Random(f"otel-cache-demo-requests:{seed}")
        self._block = block
        self._pending: Iterator[tuple[int, bool]] = iter(())

    def next(self) -> tuple[int, bool]:
        """The next request: its query's index in the catalogue, and whether it goes by GraphQL."""
        for item in self._pending:
            return item
        self._pending = iter(self._draw())
        return next(self._pending)

    def take(self, count: int) -> list[tuple[int, bool]]:
        """The next ``count`` requests."""
        return [self.next() for _ in range(count)]

    def _draw(self) -> Sequence[tuple[int, bool]]:
        rng = self._rng
        indices = rng.choices(self._population, cum_weights=self._cumulative, k=self._block)
        share = self._graphql_share
        return [(index, rng.random() < share) for index in indices]
