"""Which node of a Redis Cluster holds a key, from the client's own slot table (no I/O).

A batch across slots is split by node (one pipeline per node, one MGET per slot within
it), so that a failed node costs only its own keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.crc import key_slot

__all__ = ["UNCOVERED", "NodeBatch", "by_node", "node_name"]


@dataclass(slots=True)
class NodeBatch:
    """The share of a batch that one node holds: its client node and, per slot, the batch's
    positions of the keys in that slot."""

    node: Any
    slots: dict[int, list[int]] = field(default_factory=dict)

    def positions(self) -> list[int]:
        return [position for positions in self.slots.values() for position in positions]


UNCOVERED = "uncovered"
"""The node name of keys whose slot no node serves (a dead primary not yet replaced)."""


def node_name(client: Any, key: str) -> str:
    """``host:port`` of the primary that holds ``key`` as the client knows it, or :data:`UNCOVERED`."""
    nodes = client.nodes_manager.slots_cache.get(key_slot(key.encode()))
    return str(nodes[0].name) if nodes else UNCOVERED


def by_node(client: Any, keys: Sequence[str]) -> tuple[dict[str, NodeBatch], list[int]]:
    """``keys`` split by the node that holds them; and the positions of keys whose slot no
    node serves (as far as the client knows)."""
    slots_cache = client.nodes_manager.slots_cache
    batches: dict[str, NodeBatch] = {}
    uncovered: list[int] = []
    for position, key in enumerate(keys):
        slot = key_slot(key.encode())
        nodes = slots_cache.get(slot)
        if not nodes:
            uncovered.append(position)
            continue
        node = nodes[0]
        batch = batches.get(node.name)
        if batch is None:
            batch = batches[node.name] = NodeBatch(node)
        batch.slots.setdefault(slot, []).append(position)
    return batches, uncovered
