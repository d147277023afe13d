"""ADR-014's migration guide as it stands in ``examples/migration``: before and after answer alike."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import httpx
import pytest

from examples.migration import graphql_after, graphql_before, rest_after, rest_before, traversal
from otel_cache import CacheConfig, configure_cache_managers, get_async_cache_manager, get_cache_manager
from tests.integrations.asgi_client import serving

QUERIES = [{"start": "a", "depth": "2"}, {"start": "c", "depth": "3"}, {"start": "nowhere", "depth": "1"}]
GRAPHQL = "query ($start: String!, $depth: Int!) { resolveTraversal(start: $start, depth: $depth) %s }"
FIELDS = "{ start depth nodes edges { source target } }"


async def _rest(module: ModuleType, params: dict[str, str]) -> Any:
    async with serving(module.app) as client:
        response = await client.get("/traverse", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _graphql(module: ModuleType, start: str, depth: int) -> Any:
    async with serving(module.app) as client:
        response = await client.post(
            "/graphql", json={"query": GRAPHQL % FIELDS, "variables": {"start": start, "depth": depth}}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["resolveTraversal"]


@pytest.mark.parametrize("params", QUERIES, ids=lambda p: f"{p['start']}-{p['depth']}")
async def test_rest_before_and_after_answer_the_same(params: dict[str, str]) -> None:
    before = await _rest(rest_before, params)
    after = await _rest(rest_after, params)
    assert before == after
    assert before == traversal.run_traversal(traversal.TraversalQuery.model_validate(params)).model_dump(
        mode="json"
    )


async def test_rest_before_uses_the_sync_manager_and_after_the_async_one_over_one_cache() -> None:
    params = {"start": "a", "depth": "2"}
    async with serving(rest_before.app) as client:
        await client.get("/traverse", params=params)
        await client.get("/traverse", params=params)
        assert traversal.calls["run_traversal"] == 1
        assert get_cache_manager().cache.stats().l1.hits == 1
    traversal.calls.clear()
    async with serving(rest_after.app) as client:
        first = await client.get("/traverse", params=params)
        second = await client.get("/traverse", params=params)
        # Mid-migration both APIs share one cache: what the legacy endpoint cached is served.
        assert traversal.calls["run_traversal"] == 0
        assert get_async_cache_manager().cache is get_cache_manager().cache
        assert get_async_cache_manager().cache.stats().l1.hits == 3
    assert first.json() == second.json()


async def test_rest_query_comes_from_the_query_string() -> None:
    operation = rest_after.app.openapi()["paths"]["/traverse"]["get"]
    assert {(p["name"], p["in"]) for p in operation["parameters"]} == {("start", "query"), ("depth", "query")}
    assert "requestBody" not in operation
    async with serving(rest_after.app) as client:
        too_deep = await client.get("/traverse", params={"start": "a", "depth": "99"})
        defaults = await client.get("/traverse")
    assert too_deep.status_code == 422
    assert defaults.json()["start"] == "a"
    assert defaults.json()["depth"] == 2


@pytest.mark.parametrize(("start", "depth"), [("a", 2), ("e", 4)])
async def test_graphql_before_and_after_answer_the_same(start: str, depth: int) -> None:
    before = await _graphql(graphql_before, start, depth)
    after = await _graphql(graphql_after, start, depth)
    assert before == after
    assert before["nodes"][0] == start


async def test_graphql_after_hits_the_cache_on_the_second_call() -> None:
    async with serving(graphql_after.app) as client:
        for _ in range(2):
            response = await client.post(
                "/graphql", json={"query": GRAPHQL % FIELDS, "variables": {"start": "a", "depth": 3}}
            )
            assert "errors" not in response.json()
        assert traversal.calls["run_traversal"] == 1
        assert get_async_cache_manager().cache.stats().l1.hits == 1


async def test_graphql_and_rest_share_query_results() -> None:
    """One process serving both: the resolver finds what the endpoint cached (same query key)."""
    async with serving(rest_after.app) as client:
        rest = (await client.get("/traverse", params={"start": "b", "depth": "2"})).json()
        transport = httpx.ASGITransport(app=graphql_after.app)  # its lifespan is not run: same managers
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as graphql_client:
            response = await graphql_client.post(
                "/graphql", json={"query": GRAPHQL % FIELDS, "variables": {"start": "b", "depth": 2}}
            )
    assert response.json()["data"]["resolveTraversal"] == rest
    assert traversal.calls["run_traversal"] == 1


async def test_before_and_after_share_redis_entries(redis_url: str) -> None:
    """Instances still on the old code and instances on the new one read each other's results."""
    config = CacheConfig(redis_url=redis_url, name="query-results")
    configure_cache_managers(config)
    before = await _rest(rest_before, {"start": "a", "depth": "3"})
    assert traversal.calls["run_traversal"] == 1
    # rest_after's lifespan takes the environment's config: configure it the same way first.
    configure_cache_managers(config)
    after = await _rest(rest_after, {"start": "a", "depth": "3"})
    configure_cache_managers(config)
    graphql = await _graphql(graphql_after, "a", 3)
    assert traversal.calls["run_traversal"] == 1  # the two later calls were L2 hits
    assert before == after == graphql
