"""``python -m benchmarks.values --quick`` runs end to end: the shape of its table, not figures."""

from __future__ import annotations

import re

import pytest

from benchmarks.values import CASES
from tests.benchmarks.quick_run import run_quick


@pytest.mark.timeout(120)
def test_quick_run_reports_every_case_both_ways() -> None:
    stdout = run_quick("benchmarks.values")
    rows = re.findall(r"^\| (.+?) \| (write|read) \| `(\w)` \| [\d.]+ \| [\d.]+ \| [\d.]+x \(", stdout, re.M)
    assert [(case, direction) for case, direction, _ in rows] == [
        (case, direction) for case in CASES for direction in ("write", "read")
    ]
    formats = {case: fmt for case, _, fmt in rows}
    assert formats == {"small dict": "j", "rows 100": "j", "tuple rows 100": "J", "dataclass": "J"}
