"""Counter snapshots."""

from __future__ import annotations

import dataclasses

import pytest

from otel_cache.core.stats import CacheStats, EvictionReason, LockWaitStats


def make_stats(hits: int, misses: int) -> CacheStats:
    return CacheStats(
        hits=hits,
        misses=misses,
        puts=0,
        inserts=0,
        updates=0,
        evictions={reason.label: 0 for reason in EvictionReason},
        entries=0,
        bytes=0,
        max_entries=None,
        max_bytes=None,
    )


def test_hit_ratio_and_lookups() -> None:
    assert make_stats(0, 0).hit_ratio == 0.0
    assert make_stats(3, 1).hit_ratio == 0.75
    assert make_stats(3, 1).lookups == 4
    assert make_stats(0, 5).hit_ratio == 0.0


def test_eviction_labels() -> None:
    assert [r.label for r in EvictionReason] == ["size", "expired", "deleted", "rejected"]
    assert [int(r) for r in EvictionReason] == [0, 1, 2, 3]


def test_snapshots_are_frozen() -> None:
    stats = make_stats(1, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.hits = 2  # type: ignore[misc]
    lock = LockWaitStats(kind="k", contended=0, total_wait_s=0.0, max_wait_s=0.0)
    assert (lock.bounds, lock.buckets) == ((), ())
