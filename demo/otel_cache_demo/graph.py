"""The demo's domain (ADR-014's ``core.traversal``): a generated graph and a traversal over it.

::

    graph = default_graph()                      # 5,000 nodes, ~8 out-edges each, seeded
    query = TraversalQuery(start="service-0001", depth=3, relations=["calls"])
    result = graph.run(query)                    # JSON data; TraversalResult.model_validate(result)

**The graph** is a service catalogue: nodes of six kinds (service, database, queue,
host, team, user), edges of six relations (calls, reads, writes, runs_on, owned_by,
depends_on) with a weight in [0.1, 1]. Targets are drawn by a heavy-tailed
popularity, so a few nodes (a shared database, a core team) are reached from
everywhere, as in real dependency graphs. :func:`build_graph` is deterministic: the
same arguments give the same graph in every process, so a sync and an async service
answer the same query with the same bytes.

**The traversal** is a bounded relevance walk, the kind of query a dependency
explorer runs: from ``start``, ``depth`` hops along out-edges (only ``relations``,
only into nodes of ``kinds``, when given), each hop spreading the walker's mass over
the edges by weight. A node's score is the mass that reached it; the answer is the
``limit`` best-scored nodes with the hop at which each was first reached and the
edge it was reached by. The cost grows with the walk (``examined`` edges): tens of
microseconds at depth 1, about a millisecond at depth 3 to 4 unfiltered. That is the
work a cache miss pays; a hit pays none of it.

Pure: no I/O, no locks, no globals made at import (:func:`default_graph` builds on
first call and keeps the graph).
"""

from __future__ import annotations

import functools
import heapq
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DEFAULT_AVG_DEGREE",
    "DEFAULT_NODES",
    "DEFAULT_SEED",
    "KINDS",
    "RELATIONS",
    "Edge",
    "Graph",
    "Kind",
    "NodeHit",
    "Relation",
    "TraversalQuery",
    "TraversalResult",
    "build_graph",
    "default_graph",
]

Kind = Literal["service", "database", "queue", "host", "team", "user"]
Relation = Literal["calls", "reads", "writes", "runs_on", "owned_by", "depends_on"]
KINDS: tuple[str, ...] = get_args(Kind)
RELATIONS: tuple[str, ...] = get_args(Relation)

DEFAULT_NODES = 5_000
DEFAULT_AVG_DEGREE = 8
DEFAULT_SEED = 14  # ADR-014

# How often each kind occurs, and which relation an edge from one kind to another has.
_KIND_WEIGHTS = (0.35, 0.1, 0.05, 0.15, 0.05, 0.3)
_REL = {name: index for index, name in enumerate(RELATIONS)}
_RELATION_BY_KINDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("service", "service"): ("calls", "depends_on"),
    ("service", "database"): ("reads", "writes"),
    ("service", "queue"): ("writes", "reads"),
    ("user", "service"): ("calls",),
    ("user", "database"): ("reads",),
}
_DAMPING = 0.85  # mass a walker carries on at each hop


class TraversalQuery(BaseModel):
    """A traversal to run; equal queries (whatever the filter order) have one cache key.

    Filters are normalised (sorted, without duplicates, empty as ``None``), so
    ``relations=["reads", "calls"]`` and ``["calls", "reads"]`` are one query.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: str = Field(min_length=1, max_length=64, description="id of the node to start from")
    depth: int = Field(default=2, ge=1, le=4, description="hops to walk")
    relations: list[Relation] | None = Field(default=None, description="follow only these relations")
    kinds: list[Kind] | None = Field(default=None, description="enter only nodes of these kinds")
    limit: Annotated[int, Field(ge=1, le=200)] = 25

    @field_validator("relations", "kinds")
    @classmethod
    def _normalise(cls, value: list[str] | None) -> list[str] | None:
        return sorted(set(value)) if value else None


class NodeHit(BaseModel):
    id: str
    kind: Kind
    hops: int
    score: float


class Edge(BaseModel):
    source: str
    target: str
    relation: Relation


class TraversalResult(BaseModel):
    """What :meth:`Graph.run` returns, as a model (the endpoints send the JSON data as is)."""

    start: str
    depth: int
    nodes: list[NodeHit]
    edges: list[Edge]
    reached: int = Field(description="nodes the walk reached (before the limit)")
    examined: int = Field(description="edges the walk looked at: the work done")


@dataclass(frozen=True, slots=True)
class Graph:
    """An immutable directed graph; node ``i`` has id ``ids[i]``, kind ``KINDS[kinds[i]]``.

    ``out[i]`` holds node ``i``'s out-edges as ``(target, relation index, weight)``.
    """

    ids: tuple[str, ...]
    kinds: tuple[int, ...]
    out: tuple[tuple[tuple[int, int, float], ...], ...]
    index: dict[str, int]

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.index

    @property
    def edge_count(self) -> int:
        return sum(len(edges) for edges in self.out)

    def run(self, query: TraversalQuery) -> dict[str, Any]:
        """:meth:`traverse` with the query's fields."""
        return self.traverse(
            query.start, query.depth, relations=query.relations, kinds=query.kinds, limit=query.limit
        )

    def traverse(
        self,
        start: str,
        depth: int,
        *,
        relations: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        limit: int = 25,
    ) -> dict[str, Any]:
        """The ``limit`` most relevant nodes within ``depth`` hops of ``start``, as JSON data.

        Raises:
            KeyError: ``start`` is not a node.
            ValueError: ``depth`` or ``limit`` below 1, or an unknown relation or kind.
        """
        if depth < 1 or limit < 1:
            raise ValueError("depth and limit must be >= 1")
        origin = self.index[start]
        allowed_relations = _indices(relations, RELATIONS, "relation")
        allowed_kinds = _indices(kinds, KINDS, "kind")
        node_kinds = self.kinds
        out = self.out

        mass: dict[int, float] = {origin: 1.0}
        score: dict[int, float] = {}
        reached_by: dict[int, tuple[int, int, int]] = {origin: (0, origin, -1)}  # hop, source, relation
        examined = 0
        for hop in range(1, depth + 1):
            spread: dict[int, float] = {}
            for source, carried in mass.items():
                edges = out[source]
                examined += len(edges)
                share = carried * _DAMPING / len(edges) if edges else 0.0
                for target, relation, weight in edges:
                    if allowed_relations is not None and relation not in allowed_relations:
                        continue
                    if allowed_kinds is not None and node_kinds[target] not in allowed_kinds:
                        continue
                    spread[target] = spread.get(target, 0.0) + share * weight
                    if target not in reached_by:
                        reached_by[target] = (hop, source, relation)
            for target, value in spread.items():
                score[target] = score.get(target, 0.0) + value
            mass = spread
            if not mass:
                break
        score.pop(origin, None)

        ids = self.ids
        best = heapq.nlargest(limit, score.items(), key=lambda item: (item[1], -item[0]))
        nodes = []
        edges_out = []
        for node, value in best:
            hop, source, relation = reached_by[node]
            nodes.append(
                {"id": ids[node], "kind": KINDS[node_kinds[node]], "hops": hop, "score": round(value, 9)}
            )
            edges_out.append({"source": ids[source], "target": ids[node], "relation": RELATIONS[relation]})
        return {
            "start": start,
            "depth": depth,
            "nodes": nodes,
            "edges": edges_out,
            "reached": len(reached_by) - 1,
            "examined": examined,
        }


def _indices(names: Iterable[str] | None, known: Sequence[str], what: str) -> frozenset[int] | None:
    if names is None:
        return None
    chosen = set(names)
    if not chosen:
        return None
    unknown = chosen.difference(known)
    if unknown:
        raise ValueError(f"unknown {what}: {sorted(unknown)}")
    return frozenset(known.index(name) for name in chosen)


def build_graph(
    n_nodes: int = DEFAULT_NODES, avg_degree: float = DEFAULT_AVG_DEGREE, seed: int = DEFAULT_SEED
) -> Graph:
    """A deterministic graph: the same arguments give the same graph in every process.

    Out-degrees are geometric around ``avg_degree`` (at least 1); targets are drawn by a
    Pareto popularity, so in-degrees are heavy-tailed; no self-loops or repeated edges.
    """
    if n_nodes < 2 or avg_degree <= 0:
        raise ValueError("a graph needs at least 2 nodes and a positive average degree")
    rng = random.Random(seed)
    kinds = tuple(rng.choices(range(len(KINDS)), weights=_KIND_WEIGHTS, k=n_nodes))
    numbered = dict.fromkeys(range(len(KINDS)), 0)
    names = []
    for kind in kinds:  # numbered per kind: "service-0000", "service-0001", ..., "user-0000", ...
        names.append(f"{KINDS[kind]}-{numbered[kind]:04d}")
        numbered[kind] += 1
    ids = tuple(names)
    popularity = [rng.paretovariate(1.5) for _ in range(n_nodes)]
    cumulative: list[float] = []
    total = 0.0
    for weight in popularity:
        total += weight
        cumulative.append(total)
    population = range(n_nodes)
    out: list[tuple[tuple[int, int, float], ...]] = []
    # A geometric degree with mean avg_degree: 1 + failures before success, p = 1 / avg_degree.
    p = 1.0 / max(avg_degree, 1.0)
    for node in population:
        degree = 1
        while rng.random() > p and degree < n_nodes - 1:
            degree += 1
        targets: dict[int, None] = {}
        for target in rng.choices(population, cum_weights=cumulative, k=degree * 2):
            if target != node:
                targets[target] = None
                if len(targets) == degree:
                    break
        source_kind = KINDS[kinds[node]]
        edges = []
        for target in targets:
            edges.append(
                (target, _relation(rng, source_kind, KINDS[kinds[target]]), round(rng.uniform(0.1, 1.0), 3))
            )
        out.append(tuple(edges))
    return Graph(ids=ids, kinds=kinds, out=tuple(out), index={node_id: i for i, node_id in enumerate(ids)})


def _relation(rng: random.Random, source: str, target: str) -> int:
    if target == "host":
        return _REL["runs_on"]
    if target == "team":
        return _REL["owned_by"]
    choices = _RELATION_BY_KINDS.get((source, target), ("depends_on",))
    return _REL[choices[0] if len(choices) == 1 else rng.choice(choices)]


@functools.cache
def default_graph() -> Graph:
    """The demo's graph (``build_graph()`` with the defaults), built on first call and kept."""
    return build_graph()
