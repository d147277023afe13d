"""``benchmarks.cluster`` runs end to end on the session's cluster: every row, positive figures
(its own checks: every cache read one L2 hit, no L2 error). The shape of its report, not figures."""

from __future__ import annotations

import math

import pytest

from benchmarks.cluster import ROWS, run
from tests.support.redis_cluster import RedisClusterServers


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_a_short_run_reports_every_row(redis_cluster: RedisClusterServers, redis_cluster_url: str) -> None:
    result = run(redis_cluster_url, redis_cluster.seed_nodes, rounds=1, calls=3)
    assert set(result) == {"sync", "async"}
    for rows in result.values():
        assert set(rows) == {name for name, _ in ROWS}
        for row in rows.values():
            for figure in (row["cache_us"], row["raw_us"], row["cache_over_raw"]):
                assert math.isfinite(figure)
                assert figure > 0
