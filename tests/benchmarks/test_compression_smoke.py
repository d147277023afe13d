"""``python -m benchmarks.compression --quick`` runs end to end: the shape of its table, not figures."""

from __future__ import annotations

import re

import pytest

from benchmarks.compression import CODECS, SIZES
from tests.benchmarks.quick_run import run_quick


@pytest.mark.timeout(120)
def test_quick_run_reports_every_codec_for_every_size() -> None:
    stdout = run_quick("benchmarks.compression")
    rows = re.findall(r"^\| (\d+) \| (\w+) \| (\d+) \| ([\d.]+) \| ([\d.]+|-) \| [\d.]+ \|$", stdout, re.M)
    assert [(int(n), codec) for n, codec, *_ in rows] == [(n, codec) for n in SIZES for codec in CODECS]
    for _, codec, _, ratio, _ in rows:
        assert (float(ratio) == 1.0) == (codec == "none")
