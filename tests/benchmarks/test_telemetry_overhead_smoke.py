"""``benchmarks.telemetry_overhead`` runs end to end with tiny sizes; the shape of what it reports.

Timing is not checked (these runs are far too short to mean anything); what is checked:
every row and variant is there, the instrumented state really emits (one span per load,
none dropped), a hit through ``@cached`` makes no otel_cache span, and nothing is left
instrumented afterwards.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from benchmarks import telemetry_overhead as bench
from benchmarks.telemetry_http import VARIANTS
from otel_cache.telemetry import hooks

TINY = replace(
    bench.QUICK,
    repeats=2,
    target_s=0.001,
    http_rounds=1,
    http_slices=2,
    http_slice_s=0.2,
    http_together_s=0.3,
    http_warmup_s=0.1,
    concurrency=2,
)


def test_run_reports_every_row_and_variant() -> None:
    result = bench.run(TINY, progress=lambda _: None)

    assert hooks.current() is None, "the benchmark left otel_cache instrumented"
    (micro,) = result["micro"]
    names = [row["name"] for row in micro["rows"]]
    assert names == [row.name for row in bench.micro_rows()]
    for row in micro["rows"]:
        assert len(row["a"]) == len(row["b"]) == TINY.repeats
        assert all(value > 0 for value in row["a"] + row["b"])
    checks = micro["checks"]
    assert checks["loads_instrumented"] > 0
    assert checks["spans_by_scope"].get("otel_cache", 0) == checks["loads_instrumented"]
    assert checks["otel_cache_metric_points"] > 0

    http = result["http"]
    assert [slot["variant"] for slot in http["slots"]] == [*VARIANTS, *reversed(VARIANTS)]
    # A slice of 0.2 s on a busy machine may complete no request: counts are checked for
    # shape; that each server answered is its readiness probe (counted in its warm-up).
    assert all(http["warmup_requests"][variant] >= 1 for variant in VARIANTS)
    for slot in http["slots"]:
        assert slot["errors"] == 0
        assert slot["requests"] >= 0
        assert slot["misses"] == 0, "the readiness probe filled the cache: every measured request hits"
    assert sorted(run["variant"] for run in http["together"]) == sorted(VARIANTS)
    assert all(run["requests"] >= 0 and run["errors"] == 0 for run in http["together"])
    servers = {report["variant"]: report for report in http["servers"]}
    assert all(report["returncode"] == 0 for report in servers.values())
    assert servers["none"]["spans_by_scope"] == {}
    assert servers["fastapi"]["spans_by_scope"].get("otel_cache", 0) == 0
    assert servers["fastapi+otel_cache"]["spans_by_scope"]["otel_cache"] == 1  # the first request's load
    assert all(report["queue_full_warnings"] == 0 for report in servers.values())

    summary = bench.summarise(result)
    assert [row["name"] for row in summary["micro"]] == names
    assert [row["variant"] for row in summary["http"]] == list(VARIANTS)
    assert [row["variant"] for row in summary["together"]] == list(VARIANTS)
    report = bench.markdown(result)
    for text in [*names, *VARIANTS, "b/a", "req/s", "server CPU µs/req", "none dropped", "side by side"]:
        assert text in report


def test_child_prints_only_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--child", "--repeats", "1", "--target-ms", "1"]) == 0

    out = capsys.readouterr().out
    result = json.loads(out)
    assert {row["name"] for row in result["rows"]} == {row.name for row in bench.micro_rows()}
    assert hooks.current() is None
