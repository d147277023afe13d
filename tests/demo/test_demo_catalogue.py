"""``otel_cache_demo.catalogue``: deterministic queries and a skewed, deterministic request stream."""

from __future__ import annotations

from collections import Counter

import pytest

from otel_cache_demo.catalogue import RequestStream, query_catalogue, top_share, zipf_cumulative
from otel_cache_demo.graph import default_graph


def test_the_catalogue_is_deterministic_distinct_and_prefix_stable() -> None:
    queries = query_catalogue(500, seed=7)
    assert queries == query_catalogue(500, seed=7)
    assert query_catalogue(50, seed=7) == queries[:50]  # "the top N" does not depend on the size
    assert query_catalogue(50, seed=8) != queries[:50]
    assert len({q.model_dump_json() for q in queries}) == 500
    graph = default_graph()
    assert all(q.start in graph for q in queries)
    filtered = sum(1 for q in queries if q.relations or q.kinds)
    assert 0.25 < filtered / len(queries) < 0.55


def test_zipf_with_s_1_1_sends_most_requests_to_the_top_tenth() -> None:
    assert top_share(2_000, 1.1, 0.1) > 0.5
    assert top_share(2_000, 0.0, 0.1) == pytest.approx(0.1)  # s = 0: uniform
    cumulative = zipf_cumulative(4, 1.0)
    assert cumulative == pytest.approx([1, 1.5, 1.5 + 1 / 3, 1.5 + 1 / 3 + 0.25])


def test_the_request_stream_is_deterministic_and_skewed() -> None:
    draws = RequestStream(2_000, zipf_s=1.1, graphql_share=0.2, seed=3).take(50_000)
    assert draws == RequestStream(2_000, zipf_s=1.1, graphql_share=0.2, seed=3).take(50_000)
    assert draws != RequestStream(2_000, zipf_s=1.1, graphql_share=0.2, seed=4).take(50_000)
    counts = Counter(index for index, _ in draws)
    top_tenth = sum(count for index, count in counts.items() if index < 200)
    assert top_tenth / len(draws) > 0.5
    assert counts[0] > counts[9] > counts[99]  # rank 1 most popular
    assert 0.18 < sum(graphql for _, graphql in draws) / len(draws) < 0.22


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="n_queries"):
        query_catalogue(0)
    with pytest.raises(ValueError, match="graphql_share"):
        RequestStream(10, graphql_share=1.5)
    with pytest.raises(ValueError, match="Zipf"):
        zipf_cumulative(0, 1.1)
