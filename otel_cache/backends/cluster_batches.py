"""A batch on a Redis Cluster, one pipeline per node: what to queue, and what the outcomes mean.

The sync and async backends share all of it and differ only in how they run the pipelines
(in turn, or gathered): :func:`read_pipelines` / :func:`write_pipelines` queue the commands,
the backend executes each (an exception is an outcome too), and :func:`read_outcomes` /
:func:`write_outcomes` turn the outcomes into results, raising
:class:`~otel_cache.errors.PartialBackendError` when some nodes (or slots no node serves)
left keys unanswered. A redis-py error that is not a Redis failure is re-raised as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otel_cache.backends.cluster_routes import NodeBatch, by_node
from otel_cache.backends.envelope import now_ms, unwrap_many, wrap
from otel_cache.backends.protocol import Stored
from otel_cache.backends.redis_errors import REDIS_ERRORS, node_error, partial_failure
from otel_cache.errors import BackendError

__all__ = ["Plan", "read_outcomes", "read_pipelines", "write_outcomes", "write_pipelines"]

Plan = tuple[dict[str, NodeBatch], list[int]]
"""The keys by node, and the positions of keys whose slot no node serves."""


def read_pipelines(client: Any, keys: Sequence[str]) -> tuple[Plan, list[Any]]:
    """One pipeline per node with one MGET per slot."""
    batches, uncovered = by_node(client, keys)
    pipes = []
    for batch in batches.values():
        pipe = client.pipeline(transaction=False)
        for positions in batch.slots.values():
            pipe.execute_command("MGET", *[keys[p] for p in positions], target_nodes=[batch.node])
        pipes.append(pipe)
    return (batches, uncovered), pipes


def read_outcomes(keys: Sequence[str], plan: Plan, outcomes: Sequence[Any]) -> list[Stored | None]:
    """The values read, in ``keys``' order; raises PartialBackendError if some were not."""
    batches, uncovered = plan
    values: list[bytes | str | None] = [None] * len(keys)
    failures, failed = _failures(plan, outcomes)
    for (name, batch), replies in zip(batches.items(), outcomes, strict=True):
        if name in failures:
            continue
        for positions, reply in zip(batch.slots.values(), replies, strict=True):
            for position, value in zip(positions, reply, strict=True):
                values[position] = value
    results = unwrap_many(values, now_ms())
    if failures or uncovered:
        raise partial_failure(results, failures, [keys[p] for p in failed], len(uncovered))
    return results


def write_pipelines(
    client: Any, items: Sequence[tuple[str, bytes]], ttl_ms: int | None
) -> tuple[Plan, list[Any]]:
    """One pipeline per node with a SET PX per key."""
    batches, uncovered = by_node(client, [key for key, _ in items])
    now = now_ms()
    pipes = []
    for batch in batches.values():
        pipe = client.pipeline(transaction=False)
        for position in batch.positions():
            key, value = items[position]
            pipe.set(key, wrap(value, ttl_ms, now), px=ttl_ms)
        pipes.append(pipe)
    return (batches, uncovered), pipes


def write_outcomes(
    keys: Sequence[str], plan: Plan, outcomes: Sequence[Any]
) -> tuple[list[str], BackendError | None]:
    """The keys written, and the PartialBackendError to raise once the tags are written (or None)."""
    failures, failed = _failures(plan, outcomes)
    lost = set(failed)
    written = [key for position, key in enumerate(keys) if position not in lost]
    if not failed:
        return written, None
    return written, partial_failure(None, failures, [keys[p] for p in failed], len(plan[1]))


def _failures(plan: Plan, outcomes: Sequence[Any]) -> tuple[dict[str, BackendError], list[int]]:
    batches, uncovered = plan
    failures: dict[str, BackendError] = {}
    failed = list(uncovered)
    for (name, batch), outcome in zip(batches.items(), outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, REDIS_ERRORS):
                raise outcome
            failures[name] = node_error(outcome, name)
            failed.extend(batch.positions())
    return failures, failed
