"""``otel-cache demo --sweep``: the map of where the ADR's claims hold, from real short runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from otel_cache.cli import main
from otel_cache_demo.live import LogView
from otel_cache_demo.runner import DemoOptions, smoke_options
from otel_cache_demo.sweep import SweepCell, SweepOptions, run_sweep, sweep_markdown


def _cell(rtt_ms: float, concurrency: int, qps_ratio: float, p99_change: float) -> SweepCell:
    return SweepCell(
        rtt_ms=rtt_ms,
        concurrency=concurrency,
        sync_qps=100.0,
        async_qps=100.0 * qps_ratio,
        sync_p99_s=0.1,
        async_p99_s=0.1 * (1 + p99_change),
        qps_ratio=qps_ratio,
        p99_change=p99_change,
        warnings=[],
        report="x/report.md",
    )


def test_the_map_marks_the_cells_where_a_claim_holds() -> None:
    options = SweepOptions(rtts_ms=(0.0, 15.0), concurrencies=(8, 512))
    cells = [_cell(0.0, 8, 1.2, -0.30), _cell(0.0, 512, 2.1, -0.346), _cell(15.0, 8, 2.5, -0.60)]
    text = sweep_markdown(cells, options)
    qps_table, p99_table = text.split("## Async QPS / sync QPS")[1].split("## Async p99 against sync p99")
    assert "| 0 ms | 1.20x | **2.10x** |" in qps_table  # 2.1x meets 2.1x
    assert "| 15 ms | **2.50x** | (not run) |" in qps_table
    assert "| 0 ms | -30 % | **-35 %** |" in p99_table  # -34.6 % is shown -35 %: met, as the demo says
    assert "| 15 ms | **-60 %** | (not run) |" in p99_table


def test_a_sweep_cell_is_the_demo_at_that_round_trip_and_concurrency(tmp_path: Path) -> None:
    options = SweepOptions()
    assert (options.rtts_ms, options.concurrencies) == ((0.0, 1.0, 5.0, 15.0), (8, 32, 128, 512))
    loopback = options.cell_options(0.0, 8, tmp_path)
    assert (loopback.redis, loopback.rtt_ms, loopback.concurrency) == ("embedded", None, 8)
    far = options.cell_options(15.0, 512, tmp_path)
    assert (far.rtt_ms, far.concurrency, far.out) == (15.0, 512, tmp_path / "rtt-15-c-512")
    with pytest.raises(ValueError, match="closed loop"):
        SweepOptions(cell=DemoOptions(rate=100.0))
    with pytest.raises(ValueError, match="at least one"):
        SweepOptions(rtts_ms=())


def test_sweep_refuses_the_options_it_sets(capsys: pytest.CaptureFixture[str]) -> None:
    for extra in (["--rtt-ms", "1"], ["--concurrency", "8"], ["--rate", "10"]):
        assert main(["demo", "--sweep", *extra]) == 2
        assert "--sweep sets the round trip" in capsys.readouterr().err


def test_a_small_real_sweep_writes_the_map(tmp_path: Path) -> None:
    options = SweepOptions(
        rtts_ms=(0.0, 1.0),
        concurrencies=(4,),
        cell=smoke_options(duration_s=2.0, rounds=1, warmup_s=1.0),
        out=tmp_path,
    )
    cells, folder = run_sweep(options, LogView())
    assert folder == tmp_path
    assert [(cell.rtt_ms, cell.concurrency) for cell in cells] == [(0.0, 4), (1.0, 4)]
    for cell in cells:
        assert cell.qps_ratio is not None
        assert math.isfinite(cell.qps_ratio)
        assert cell.qps_ratio > 0
        assert cell.sync_qps > 0
        assert cell.async_qps > 0
        assert Path(cell.report).is_file()
    data = json.loads((folder / "sweep.json").read_text(encoding="utf-8"))
    assert [c["rtt_ms"] for c in data["cells"]] == [0.0, 1.0]
    assert "## Async QPS / sync QPS" in (folder / "sweep.md").read_text(encoding="utf-8")
    assert (folder / "sweep.png").stat().st_size > 10_000
