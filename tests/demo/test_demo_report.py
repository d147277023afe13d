"""otel_cache_demo.report: the arithmetic, the comparison with ADR-014 and the report folder, on made-up runs.

Also the parsing of a real ``/metrics`` text into the figures the report uses
(``otel_cache_demo.runner.parse_metrics``), against the demo app's own output.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import httpx
import pytest

from otel_cache_demo.report import (
    ADR_P99_CHANGE,
    ADR_QPS_RATIO,
    DemoResult,
    RoundResult,
    SecondSample,
    ServerSnapshot,
    ServerWindow,
    compare,
    histogram_quantile,
    reading,
    render_markdown,
    summarise,
    summary_rows,
    write_report,
)
from otel_cache_demo.runner import DemoOptions, _mode_urls, _with_address, parse_metrics
from otel_cache_demo.service import create_app

INF = math.inf

# -- histogram_quantile: Prometheus' rules --------------------------------------------------------


def test_quantile_interpolates_inside_the_bucket() -> None:
    buckets = {0.1: 50.0, 0.2: 100.0, INF: 100.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.75, buckets) == pytest.approx(0.15)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.05)  # the first bucket starts at 0
    assert histogram_quantile(1.0, buckets) == pytest.approx(0.2)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.99, {0.1: 10.0, 0.5: 20.0, INF: 100.0}) == 0.5


def test_quantile_of_nothing_is_none() -> None:
    assert histogram_quantile(0.99, {}) is None
    assert histogram_quantile(0.99, {0.1: 0.0, INF: 0.0}) is None
    assert histogram_quantile(0.99, {0.1: 3.0}) is None  # no +Inf bucket: not a histogram
    with pytest.raises(ValueError, match="between 0 and 1"):
        histogram_quantile(1.5, {INF: 1.0})


# -- windows between scrapes --------------------------------------------------------------------------


def snapshot(at: float, **values: object) -> ServerSnapshot:
    return ServerSnapshot(at=at, cpu_s=float(values.pop("cpu_s", 0.0)), **values)  # type: ignore[arg-type]


def test_a_window_is_the_difference_of_two_scrapes() -> None:
    before = snapshot(
        10.0, cpu_s=5.0, lag={0.01: 100.0, 0.1: 110.0, INF: 110.0}, l1_hits=80, l1_misses=20, evictions=7
    )
    after = snapshot(
        12.0,
        cpu_s=6.5,
        lag={0.01: 130.0, 0.1: 150.0, INF: 150.0},
        lag_max_s=0.08,
        l1_hits=160,
        l1_misses=40,
        evictions=17,
        l2_hits=3,
        l2_misses=1,
    )
    window = ServerWindow.between(before, after)
    assert window.seconds == 2.0
    assert window.cpu_utilisation == pytest.approx(0.75)
    assert window.lag == {0.01: 30.0, 0.1: 40.0, INF: 40.0}
    assert window.lag_samples == 40.0
    assert window.hit_ratio_l1 == pytest.approx(0.8)
    assert window.hit_ratio_l2 == pytest.approx(0.75)
    assert window.evictions_per_s == pytest.approx(5.0)
    # p99 interpolates to 0.0976 in (0.01, 0.1], capped at the longest lag the gauge saw.
    assert window.lag_p99_s == pytest.approx(0.08)
    assert window.lock_wait_p99_s is None
    assert window.lock_waits == 0


def test_a_counter_that_went_down_counts_from_zero() -> None:
    window = ServerWindow.between(snapshot(0.0, l1_hits=1000), snapshot(1.0, l1_hits=30, l1_misses=10))
    assert window.l1_hits == 30  # the service restarted: as Prometheus' rate() does


def test_merging_windows_adds_them_and_keeps_the_longest_lag() -> None:
    a = ServerWindow.between(snapshot(0.0), snapshot(1.0, lag={0.01: 10.0, INF: 10.0}, lag_max_s=0.004))
    b = ServerWindow.between(snapshot(1.0), snapshot(3.0, lag={0.01: 5.0, INF: 6.0}, lag_max_s=0.2))
    merged = ServerWindow.merge([a, b])
    assert merged is not None
    assert merged.seconds == 3.0
    assert merged.lag == {0.01: 15.0, INF: 16.0}
    assert merged.lag_max_s == 0.2
    assert ServerWindow.merge([]) is None


# -- a made-up run ------------------------------------------------------------------------------------


def window(seconds: float = 30.0, lag_slow: float = 0.0, cpu: float = 1.0) -> ServerWindow:
    lag = {0.001: 600.0 - lag_slow, 0.05: 600.0, INF: 600.0}
    return ServerWindow(
        seconds=seconds,
        cpu_s=cpu * seconds,
        lag=lag,
        lag_max_s=0.04 if lag_slow else 0.001,
        lock_wait={},
        l1_hits=800.0,
        l1_misses=200.0,
        l2_hits=0.0,
        l2_misses=0.0,
        evictions=30.0,
        l2_errors=0.0,
    )


def round_result(mode: str, index: int, qps: float, p99: float, **changes: object) -> RoundResult:
    fields: dict[str, object] = {
        "mode": mode,
        "index": index,
        "order": 2 * index + (mode == "async"),
        "started_s": 30.0 * (2 * index + (mode == "async")),
        "duration_s": 30.0,
        "requests": round(qps * 30),
        "errors": 0,
        "errors_by_kind": {},
        "qps": qps,
        "p50_s": p99 / 4,
        "p99_s": p99,
        "max_s": p99 * 2,
        "client_hit_ratio": 0.8,
        "client_cpu_utilisation": 0.1,
        "server": window(lag_slow=20.0 if mode == "sync" else 0.0),
        "service_core_busy": 1.0,
        "load_core_busy": 0.2,
    }
    fields.update(changes)
    return RoundResult(**fields)  # type: ignore[arg-type]


def demo_result(rounds: list[RoundResult], **changes: object) -> DemoResult:
    seconds = [
        SecondSample(
            mode=r.mode,
            phase="round",
            round=r.index,
            t_s=r.started_s + s,
            mode_s=30.0 * r.index + s + 1,
            requests=round(r.qps),
            errors=0,
            p50_s=r.p50_s,
            p99_s=r.p99_s,
            client_cpu_s=0.1,
            server=window(1.0),
        )
        for r in rounds
        for s in range(30)
    ]
    fields: dict[str, object] = {
        "settings": {
            "command": "otel-cache demo",
            "backend": "L1 only",
            "concurrency": 32,
            "rounds": 2,
            "round_s": 30.0,
            "warmup_s": 10.0,
        },
        "machine": {"nproc": 2, "commit": "abc1234"},
        "started_at": "2026-11-25 04:00:00",
        "finished_at": "2026-11-25 04:02:20",
        "seconds": seconds,
        "rounds": rounds,
        "other_cpu_share": 0.02,
    }
    fields.update(changes)
    return DemoResult(**fields)  # type: ignore[arg-type]


ROUNDS = [
    round_result("sync", 0, 400.0, 0.200),
    round_result("async", 0, 520.0, 0.150),
    round_result("sync", 1, 420.0, 0.220),
    round_result("async", 1, 500.0, 0.130),
]


def test_a_modes_summary_pools_requests_and_takes_the_median_round() -> None:
    sync = summarise("sync", ROUNDS)
    assert sync.rounds == 2
    assert sync.qps == pytest.approx(410.0)
    assert sync.p99_s == pytest.approx(0.21)
    assert (sync.p99_min_s, sync.p99_max_s) == (0.2, 0.22)
    assert sync.server is not None
    assert sync.server.seconds == 60.0
    assert sync.lag_max_s == 0.04


def test_the_comparison_gives_ratios_overall_and_per_pair() -> None:
    c = compare(summarise("sync", ROUNDS), summarise("async", ROUNDS), ROUNDS)
    assert c.qps_ratio == pytest.approx(510 / 410)
    assert c.pair_qps_ratios == pytest.approx([520 / 400, 500 / 420])
    assert c.p99_change == pytest.approx(0.14 / 0.21 - 1)
    assert c.pair_p99_changes == pytest.approx([0.15 / 0.2 - 1, 0.13 / 0.22 - 1])
    assert c.lag_p99_ratio is not None
    assert c.lag_p99_ratio < 1


@pytest.mark.parametrize(
    ("qps_ratio", "expected"),
    [
        (1.24, "misses the ADR's 2.1x (1.24x is 59% of it)"),
        (2.1, "meets the ADR's 2.1x (beats it by 0%)"),
        (2.52, "meets the ADR's 2.1x (beats it by 20%)"),
    ],
)
def test_the_qps_verdict_says_by_how_much(qps_ratio: float, expected: str) -> None:
    rounds = [round_result("sync", 0, 100.0, 0.2), round_result("async", 0, 100.0 * qps_ratio, 0.2)]
    assert demo_result(rounds).comparison().qps_verdict == expected


@pytest.mark.parametrize(
    ("async_p99", "expected"),
    [
        (0.16, "misses the ADR's -35% (by 15 points)"),
        (0.10, "meets the ADR's -35% (beats it by 15 points)"),
        (0.132, "misses the ADR's -35% (by 1 point)"),  # -34 %
        (0.1305, "meets the ADR's -35% (equals it)"),  # -34.75 %, shown -35 %
        (0.128, "meets the ADR's -35% (beats it by 1 point)"),  # -36 %
    ],
)
def test_the_p99_verdict_says_by_how_many_points(async_p99: float, expected: str) -> None:
    rounds = [round_result("sync", 0, 100.0, 0.2), round_result("async", 0, 100.0, async_p99)]
    assert demo_result(rounds).comparison().p99_verdict == expected


def test_a_paced_run_does_not_judge_throughput() -> None:
    rounds = [round_result("sync", 0, 50.0, 0.2), round_result("async", 0, 50.0, 0.1)]
    settings = {"command": "otel-cache demo --rate 50", "backend": "L1 only", "rate": 50.0}
    result = demo_result(rounds, settings=settings)
    comparison = result.comparison()
    assert comparison.paced
    assert comparison.qps_verdict.startswith("not compared: a paced load")
    assert comparison.p99_verdict == "meets the ADR's -35% (beats it by 15 points)"
    text = "\n".join(reading(result))
    assert "not compared: the load was paced, 50 requests/s" in text
    assert "misses the ADR's 2.1x" not in text
    assert not demo_result(rounds).comparison().paced


def test_the_summary_table_puts_the_adr_claims_beside_the_ratios() -> None:
    rows = {row.metric: row for row in summary_rows(demo_result(ROUNDS))}
    assert rows["QPS"].sync == "410"
    assert rows["QPS"].async_ == "510"
    assert rows["QPS"].comparison.startswith("1.24x (pairs 1.19..1.30)")
    assert rows["QPS"].adr.startswith(f"{ADR_QPS_RATIO}x: misses")
    assert rows["p99 latency (client, median of rounds)"].comparison.startswith("-33% (pairs -41%..-25%)")
    assert (
        rows["p99 latency (client, median of rounds)"].adr
        == f"{ADR_P99_CHANGE:.0%}: misses the ADR's -35% (by 2 points)"
    )
    assert rows["hit ratio, responses (X-Cache)"].sync == "80%"
    assert rows["event-loop lag p99"].sync != "-"
    assert (
        rows["load generator CPU (max of rounds)"].comparison == "10% of a core at most: not the bottleneck"
    )


def test_warnings_name_a_saturated_client_a_busy_machine_and_errors() -> None:
    quiet = demo_result(ROUNDS)
    assert quiet.warnings() == []
    rounds = [*ROUNDS[:3], round_result("async", 1, 500.0, 0.13, client_cpu_utilisation=0.95, errors=3)]
    busy = demo_result(rounds, other_cpu_share=0.3)
    warnings = busy.warnings()
    assert any("async: 3 requests failed" in w for w in warnings)
    assert any("load generator used 95%" in w for w in warnings)
    assert any("other processes used 30%" in w for w in warnings)
    assert "WARNING" in busy.loadgen_verdict()


def test_the_markdown_report_has_the_summary_method_machine_and_rounds() -> None:
    text = render_markdown(demo_result(ROUNDS), charts=["qps.png"])
    for heading in ("## Summary", "## Reading", "## Method", "## Machine", "## Rounds", "## Charts"):
        assert heading in text
    assert "| QPS | 410 | 510 |" in text
    assert "![qps.png](qps.png)" in text
    assert "abc1234" in text
    assert "misses the ADR's 2.1x" in text


def test_write_report_writes_markdown_json_and_charts(tmp_path: Path) -> None:
    folder = write_report(demo_result(ROUNDS), tmp_path / "report")
    names = {path.name for path in folder.iterdir()}
    assert {"report.md", "results.json", "qps.png", "p99.png", "loop_lag.png"} <= names
    for chart in ("qps.png", "p99.png", "loop_lag.png"):
        assert (folder / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "redis_latency.png" not in names  # no Redis GET was measured: no empty chart
    data = json.loads((folder / "results.json").read_text())
    assert data["summary"]["sync"]["qps"] == pytest.approx(410.0)
    assert data["comparison"]["adr_qps_ratio"] == ADR_QPS_RATIO
    assert data["rounds"][0]["server"]["lag"]["+Inf"] == 600.0  # float keys, Infinity as a string
    assert len(data["seconds"]) == 4 * 30


def test_an_empty_mode_gives_no_ratio() -> None:
    result = demo_result([round_result("sync", 0, 100.0, 0.2)])
    assert result.comparison().qps_ratio is None
    assert result.comparison().qps_verdict == "not measured"
    render_markdown(result)  # and the report still renders


# -- the runner's pure parts ---------------------------------------------------------------------------


def test_the_schedule_warms_up_both_then_strictly_alternates() -> None:
    phases = DemoOptions(duration_s=90, rounds=3).phases()
    assert [(p.mode, p.kind, p.round) for p in phases] == [
        ("sync", "warmup", None),
        ("async", "warmup", None),
        ("sync", "round", 0),
        ("async", "round", 0),
        ("sync", "round", 1),
        ("async", "round", 1),
        ("sync", "round", 2),
        ("async", "round", 2),
    ]
    # Every phase lasts a round: each round of a mode follows exactly one round of the other.
    assert {p.seconds for p in phases} == {30.0}
    assert [p.order for p in phases if p.kind == "round"] == list(range(6))
    assert DemoOptions(duration_s=90, rounds=3, warmup_s=5).phases()[0].seconds == 5
    assert [p.kind for p in DemoOptions(warmup_s=0).phases()].count("warmup") == 0


def test_each_mode_gets_its_own_redis_database() -> None:
    assert _mode_urls("redis://:secret@cache.example:6380/4") == {
        "sync": "redis://:secret@cache.example:6380/4",
        "async": "redis://:secret@cache.example:6380/5",
    }
    assert _mode_urls("redis://127.0.0.1:6379") == {
        "sync": "redis://127.0.0.1:6379/0",
        "async": "redis://127.0.0.1:6379/1",
    }
    assert (
        _with_address("rediss://u:p@host:6379/2?x=1", "127.0.0.1", 4000)
        == "rediss://u:p@127.0.0.1:4000/2?x=1"
    )


def test_parse_metrics_keeps_the_redis_get_durations() -> None:
    text = "\n".join(
        [
            "# TYPE otel_cache_operation_duration_seconds histogram",
            *(
                f'otel_cache_operation_duration_seconds_bucket{{otel_cache_operation="{op}",le="{le}"}} {n}'
                for op, counts in (("get", (3, 5, 5)), ("set", (7, 7, 7)))
                for le, n in zip(("0.001", "0.01", "+Inf"), counts, strict=True)
            ),
            "",
        ]
    )
    parsed = parse_metrics(text, at=1.0, cpu_s=0.0)
    assert parsed.l2_get == {0.001: 3.0, 0.01: 5.0, math.inf: 5.0}


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_parse_metrics_reads_the_demo_apps_own_metrics(mode: str) -> None:
    app = create_app(mode, warm_keys=0)  # type: ignore[arg-type]
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://demo") as client,
    ):
        for depth in (1, 2, 1, 1):
            response = await client.get("/traverse", params={"start": "service-0001", "depth": depth})
            assert response.status_code == 200
        await asyncio.sleep(0.3)  # a few loop-lag samples (one every 50 ms)
        text = (await client.get("/metrics")).text
    parsed = parse_metrics(text, at=1.0, cpu_s=2.0)
    assert parsed.l1_hits == 2.0
    assert parsed.l1_misses >= 2.0  # the single-flight's second look counts too
    assert parsed.l2_hits == parsed.l2_misses == 0.0  # L1 only
    assert math.inf in parsed.lag
    assert parsed.lag_max_s is not None
