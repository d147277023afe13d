"""``python -m benchmarks.scale --quick --json PATH`` runs end to end: its report's shape, not figures."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.scale import MEMORY, QUICK, ROWS
from tests.benchmarks.quick_run import run_quick

NUMBER = r"[\d,.]+"


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.timeout(120)
def test_quick_run_reports_every_row(tmp_path: Path) -> None:
    out_json = tmp_path / "scale.json"
    stdout = run_quick("benchmarks.scale", "--json", str(out_json))
    result = json.loads(out_json.read_text())
    skipped = result["skipped"]
    assert set(skipped) <= {"cachetools"}
    rows = [row for row in ROWS if row.needs not in skipped]
    variants = [variant for variant in MEMORY if variant.needs not in skipped]

    timing = result["timing"]
    assert [(row["size"], row["name"]) for row in timing] == [
        (size, row.name) for size in QUICK.sizes for row in rows
    ]
    for row, repeats in zip(timing, [r for r in QUICK.repeats for _ in rows], strict=True):
        where = f"{row['name']} at {row['size']}"
        assert len(row["ns_per_op"]) == repeats, where
        assert all(_positive(value) for value in row["ns_per_op"]), where
        assert _positive(row["median_ns"]), where
        assert row["loops"] >= 1, where
        if row["ref"]:
            assert _positive(row["ratio"]), where

    memory = result["memory"]
    assert [(row["size"], row["name"]) for row in memory] == [
        (size, variant.name) for size in QUICK.sizes for variant in variants
    ]
    for row in memory:
        where = f"{row['name']} at {row['size']}"
        assert _positive(row["traced_per_entry"]), where
        assert _positive(row["key_bytes_per_entry"]), where
        # A resident-size delta is coarse at these sizes: it may be 0, never missing on Linux.
        rss = row["rss_per_entry"]
        assert rss is None if not sys.platform.startswith("linux") else math.isfinite(rss), where
        assert row["by_line"], where
    assert result["callgrind"] is None

    out = stdout
    assert "| nproc " in out  # the machine line
    assert "otel_cache at " in out
    for heading in ("#### hit:", "#### insert with eviction:", "#### memory:", "#### where AsyncLRUCache"):
        assert heading in out
    per_size = rf" {NUMBER} \| ({NUMBER}x)? \|"
    for row in rows:
        assert re.search(rf"\| {re.escape(row.name)} \|{per_size * len(QUICK.sizes)}", out), row.name
    per_size = rf" {NUMBER} \| {NUMBER}x \| -?{NUMBER} \|"
    for variant in variants:
        assert re.search(rf"\| {re.escape(variant.name)} \|{per_size * len(QUICK.sizes)}", out), variant.name
    assert not re.search(r"\b(nan|inf)\b", out)
