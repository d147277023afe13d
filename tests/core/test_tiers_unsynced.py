"""TierCore's stale-copy guard: which L2 copies may be stale, bounded, with its counters."""

from __future__ import annotations

from otel_cache.core.tiers import TierCore


def tiers(max_unsynced: int = 3) -> TierCore:
    return TierCore(
        namespace="t",
        max_key_length=256,
        default_ttl=60.0,
        l1_ttl=None,
        raise_errors=False,
        breaker_threshold=3,
        breaker_reset=5.0,
        clock=lambda: 0.0,
        max_unsynced=max_unsynced,
    )


def test_a_marked_key_is_unsynced_until_synced() -> None:
    core = tiers()
    assert not core.is_unsynced("t:a")
    core.mark_unsynced(["t:a", "t:b"])
    assert core.is_unsynced("t:a")
    assert core.is_unsynced("t:b")
    core.mark_synced(["t:a"])
    assert not core.is_unsynced("t:a")
    assert core.is_unsynced("t:b")
    stats = core.stats()
    assert (stats.unsynced, stats.repairs) == (1, 0)  # a write synced it: not a repair


def test_repairs_count_only_keys_that_were_unsynced() -> None:
    core = tiers()
    core.mark_unsynced(["t:a"])
    core.mark_synced(["t:a", "t:never"], repaired=True)
    core.mark_synced(["t:a"], repaired=True)  # already synced
    assert (core.stats().repairs, core.stats().unsynced) == (1, 0)


def test_the_oldest_are_forgotten_past_the_bound_and_counted() -> None:
    core = tiers(max_unsynced=3)
    core.mark_unsynced(["t:1", "t:2", "t:3"])
    core.mark_unsynced(["t:1"])  # marked again: the newest now
    core.mark_unsynced(["t:4", "t:5"])
    assert [k for k in ("t:1", "t:2", "t:3", "t:4", "t:5") if core.is_unsynced(k)] == ["t:1", "t:4", "t:5"]
    stats = core.stats()
    assert (stats.unsynced, stats.unsynced_dropped) == (3, 2)


def test_a_failed_clear_is_pending_and_a_successful_one_syncs_everything() -> None:
    core = tiers()
    core.mark_unsynced(["t:a", "t:b"])
    core.clear_finished(ok=False)
    assert core.stats().clear_pending is True
    assert core.is_unsynced("t:a")
    core.clear_finished(ok=True)
    stats = core.stats()
    assert (stats.clear_pending, stats.unsynced) == (False, 0)
    assert not core.is_unsynced("t:b")
