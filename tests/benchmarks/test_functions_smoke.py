"""``python -m benchmarks.functions --quick`` runs end to end: the shape of its table, not figures."""

from __future__ import annotations

import re

import pytest

from benchmarks.functions import MISS_VARIANTS, VARIANTS
from tests.benchmarks.quick_run import run_quick


@pytest.mark.timeout(120)
def test_quick_run_reports_every_variant_for_both_apis() -> None:
    stdout = run_quick("benchmarks.functions")
    hits_table, misses_table = stdout.split("\n\n")
    rows = re.findall(r"^\| (sync|async) \| (.+?) \| [\d.]+ \| ([\d.]+)x \|$", hits_table, re.M)
    assert [(api, variant) for api, variant, _ in rows] == [
        (api, variant) for api in ("sync", "async") for variant in VARIANTS
    ]
    assert {float(ratio) for api, variant, ratio in rows if variant == "get_or_set"} == {1.0}
    misses = re.findall(r"^\| (sync|async) \| (\w+) \| [\d.]+ \| ([\d.]+)x \|$", misses_table, re.M)
    assert [(api, variant) for api, variant, _ in misses] == [
        (api, variant) for api in ("sync", "async") for variant in MISS_VARIANTS
    ]
