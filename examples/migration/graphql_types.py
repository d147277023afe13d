"""The GraphQL types of the migration examples (strawberry), shared by before and after."""

from __future__ import annotations

from typing import Any

import strawberry

__all__ = ["Edge", "TraversalResult"]


@strawberry.type
class Edge:
    source: str
    target: str


@strawberry.type
class TraversalResult:
    start: str
    depth: int
    nodes: list[str]
    edges: list[Edge]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> TraversalResult:
        """From the JSON form the cache holds (``model_dump(mode="json")`` of the REST model)."""
        return cls(
            start=data["start"],
            depth=data["depth"],
            nodes=list(data["nodes"]),
            edges=[Edge(source=edge["source"], target=edge["target"]) for edge in data["edges"]],
        )
