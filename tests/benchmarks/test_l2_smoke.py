"""``python -m benchmarks.l2 --quick --json PATH`` runs end to end: the shape of its report, not figures."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks.l2 import APIS, CASES, QUICK, VARIANTS
from tests.benchmarks.quick_run import run_quick

NUMBER = r"[\d,.]+"


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.timeout(120)
def test_quick_run_reports_every_row(tmp_path: Path) -> None:
    out_json = tmp_path / "l2.json"
    stdout = run_quick("benchmarks.l2", "--json", str(out_json))
    result = json.loads(out_json.read_text())

    rows = result["rows"]
    assert [(row["api"], row["case"]) for row in rows] == [(api, case.name) for api in APIS for case in CASES]
    for row in rows:
        where = f"{row['api']} {row['case']}"
        assert sorted(row["us"]) == sorted(VARIANTS), where
        for variant in VARIANTS:
            assert len(row["us"][variant]) == QUICK.rounds, where
            assert all(_positive(value) for value in row["us"][variant]), where
            assert _positive(row["median_us"][variant]), where
        for ratio in ("cache_over_raw", "otel_over_off"):
            assert _positive(row[ratio]), where
            low, high = row[f"{ratio}_rounds"]
            assert _positive(low), where
            assert low <= high, where
        assert row["calls_per_round"] >= 3, where
        checks = row["checks"]
        assert checks["l2_hits"] == checks["l2_hits_expected"] == checks["l1_fills"], where
        assert checks["l2_misses"] == checks["l2_errors"] == checks["l2_skipped"] == 0, where
    assert result["spans"]["exported"] == result["spans"]["expected"] > 0  # none dropped
    assert result["callgrind"] is None

    out = stdout
    assert "redis-server " in out  # the machine line
    assert "redis-py " in out
    for api in APIS:
        assert f"#### {api}:" in out
    for case in CASES:
        cells = rf"\| {re.escape(case.name)} \| {re.escape(case.raw_command)} \|"
        # raw µs, cache µs, cache / raw and its per-round range; cache+otel µs, on / off and its range
        row = rf"{cells} {NUMBER} \| {NUMBER} \| {NUMBER}x \| {NUMBER}\.\.{NUMBER}x \|"
        row += rf" {NUMBER} \| {NUMBER}x \| {NUMBER}\.\.{NUMBER}x \|"
        assert len(re.findall(row, out)) == len(APIS), f"no row for {case.name} in each API's table"
    assert not re.search(r"\b(nan|inf)\b", out)
