"""``otel_cache_demo.graph``: a deterministic graph, and a traversal checked by hand on a tiny one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from otel_cache.core.keys import query_key
from otel_cache_demo.graph import (
    DEFAULT_NODES,
    KINDS,
    RELATIONS,
    Graph,
    TraversalQuery,
    TraversalResult,
    build_graph,
    default_graph,
)


def tiny_graph() -> Graph:
    """a -calls(1.0)-> b, a -reads(0.5)-> c (database), b -calls(1.0)-> c, c has no out-edge.

    Node ids are the letters; kinds: a, b services, c a database.
    """
    service, database = KINDS.index("service"), KINDS.index("database")
    calls, reads = RELATIONS.index("calls"), RELATIONS.index("reads")
    ids = ("a", "b", "c")
    out = (((1, calls, 1.0), (2, reads, 0.5)), ((2, calls, 1.0),), ())
    return Graph(ids=ids, kinds=(service, service, database), out=out, index={"a": 0, "b": 1, "c": 2})


def test_the_same_arguments_build_the_same_graph() -> None:
    first, second = build_graph(300, 6, seed=3), build_graph(300, 6, seed=3)
    assert first == second
    assert build_graph(300, 6, seed=4) != first
    query = TraversalQuery(start=first.ids[0], depth=3)
    assert first.run(query) == second.run(query)


def test_the_default_graph_has_the_promised_shape() -> None:
    graph = default_graph()
    assert graph is default_graph()  # built once
    assert len(graph) == DEFAULT_NODES
    assert 7 <= graph.edge_count / len(graph) <= 9  # about 8 out-edges a node
    assert "service-0001" in graph
    assert "user-0000" in graph
    assert all(target != node for node, edges in enumerate(graph.out) for target, _, _ in edges)
    assert all(len({t for t, _, _ in edges}) == len(edges) for edges in graph.out)  # no repeated edge
    in_degree = [0] * len(graph)
    for edges in graph.out:
        for target, _, _ in edges:
            in_degree[target] += 1
    assert max(in_degree) > 10 * graph.edge_count / len(graph)  # hubs: heavy-tailed popularity


def test_one_hop_spreads_the_mass_by_weight() -> None:
    result = tiny_graph().traverse("a", 1)
    # a's mass 1.0 * 0.85 damping, split over 2 edges, times each edge's weight.
    assert result["nodes"] == [
        {"id": "b", "kind": "service", "hops": 1, "score": pytest.approx(0.425)},
        {"id": "c", "kind": "database", "hops": 1, "score": pytest.approx(0.2125)},
    ]
    assert result["edges"] == [
        {"source": "a", "target": "b", "relation": "calls"},
        {"source": "a", "target": "c", "relation": "reads"},
    ]
    assert (result["start"], result["depth"], result["reached"], result["examined"]) == ("a", 1, 2, 2)
    TraversalResult.model_validate(result)


def test_two_hops_add_up_the_mass_of_every_path() -> None:
    result = tiny_graph().traverse("a", 2)
    scores = {node["id"]: node["score"] for node in result["nodes"]}
    # c: 0.2125 directly, plus b's 0.425 * 0.85 over b's one edge.
    assert scores == {"b": pytest.approx(0.425), "c": pytest.approx(0.2125 + 0.425 * 0.85)}
    assert [node["id"] for node in result["nodes"]] == ["c", "b"]  # best score first
    assert result["nodes"][0]["hops"] == 1  # c was first reached at hop 1, by a's edge
    assert result["examined"] == 3  # a's two edges, then b's one (c has none)


def test_filters_and_limit() -> None:
    graph = tiny_graph()
    only_calls = graph.traverse("a", 2, relations=["calls"])
    assert [(n["id"], n["hops"]) for n in only_calls["nodes"]] == [("b", 1), ("c", 2)]
    assert only_calls["edges"][1] == {"source": "b", "target": "c", "relation": "calls"}
    services = graph.traverse("a", 2, kinds=["service"])
    assert [n["id"] for n in services["nodes"]] == ["b"]
    assert graph.traverse("a", 2, limit=1)["nodes"] == [pytest.approx(graph.traverse("a", 2)["nodes"][0])]
    assert graph.traverse("c", 3)["nodes"] == []  # no out-edges: nothing reached
    assert graph.traverse("a", 2, relations=[]) == graph.traverse("a", 2)  # empty filter: no filter


def test_bad_arguments_are_refused() -> None:
    graph = tiny_graph()
    with pytest.raises(KeyError):
        graph.traverse("nope", 1)
    with pytest.raises(ValueError, match="unknown relation"):
        graph.traverse("a", 1, relations=["likes"])
    with pytest.raises(ValueError, match="depth"):
        graph.traverse("a", 0)


def test_query_filters_are_normalised_so_equal_queries_share_a_key() -> None:
    one = TraversalQuery(start="a", depth=3, relations=["reads", "calls", "reads"])
    other = TraversalQuery(start="a", depth=3, relations=["calls", "reads"])
    assert one.relations == ["calls", "reads"]
    assert query_key(one) == query_key(other)
    assert TraversalQuery(start="a", kinds=[]).kinds is None
    assert query_key(TraversalQuery(start="a", depth=3)) != query_key(TraversalQuery(start="a", depth=2))


@pytest.mark.parametrize(
    "fields",
    [
        {"start": "a", "depth": 0},
        {"start": "a", "depth": 5},
        {"start": ""},
        {"start": "a", "relations": ["likes"]},
    ],
)
def test_query_validation(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TraversalQuery.model_validate(fields)
