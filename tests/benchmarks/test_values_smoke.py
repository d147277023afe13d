"""``python -m benchmarks.values --quick`` runs end to end: the shape of its table, not figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.values import CASES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_quick_run_reports_every_case_both_ways() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.values", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = re.findall(
        r"^\| (.+?) \| (write|read) \| `(\w)` \| [\d.]+ \| [\d.]+ \| [\d.]+x \(", done.stdout, re.M
    )
    assert [(case, direction) for case, direction, _ in rows] == [
        (case, direction) for case in CASES for direction in ("write", "read")
    ]
    formats = {case: fmt for case, _, fmt in rows}
    assert formats == {"small dict": "j", "rows 100": "j", "tuple rows 100": "J", "dataclass": "J"}
