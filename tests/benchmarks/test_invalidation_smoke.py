"""``benchmarks.invalidation --quick`` runs end to end; the shape of what it reports, not its figures."""

from __future__ import annotations

import math

import pytest

from benchmarks import invalidation


@pytest.mark.timeout(180)
def test_quick_run_reports_lag_write_cost_and_hits() -> None:
    result = invalidation.run(quick=True)
    assert [(row["processes"], row["api"]) for row in result["lag"]] == [
        (2, "sync"),
        (2, "async"),
        (4, "sync"),
        (4, "async"),
    ]
    for row in result["lag"]:
        assert row["writes"] > 0
        assert 0 < row["messages"] <= row["writes"]  # batched, never more messages than writes
        assert row["samples"] > 0  # every reader heard the writer
        assert row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
    for value in result["write"].values():
        assert math.isfinite(value)
        assert value > 0
