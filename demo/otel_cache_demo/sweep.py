"""``otel-cache demo --sweep``: where ADR-014's claims hold, as a map.

::

    cells, folder = run_sweep(SweepOptions(), view=LogView())   # reports/sweep-<UTC time>/

One short demo run (:func:`~otel_cache_demo.runner.run_demo`, the same method: both
services pinned to one CPU, a warm-up round per mode, then rounds strictly alternating,
closed loop) for every pair of a Redis round trip (``0``: Redis on loopback, otherwise a
delay proxy adding that many ms) and a number of client connections. Each cell gives the
async/sync QPS ratio and the async p99's change against sync's, beside the ADR's 2.1x and
-35 %. The folder holds each run's own report (``rtt-<ms>-c-<connections>/``), the map as
``sweep.md``, ``sweep.json`` and, with matplotlib, ``sweep.png`` (two heat maps).

The ADR's claims rest on round trips: in the sync design a Redis call blocks its thread
(and, in the GraphQL resolvers, the event loop) for a round trip, in the async design the
loop serves others meanwhile. So async should win more as round trips grow and as more
requests wait at once, and not when one core is saturated by work that no await
overlaps (L1 hits, JSON, FastAPI itself).
"""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from otel_cache_demo.report import ADR_P99_CHANGE, ADR_QPS_RATIO, DemoResult
from otel_cache_demo.runner import DemoOptions, DemoView, run_demo

__all__ = ["SweepCell", "SweepOptions", "run_sweep", "write_sweep_report"]


@dataclass(frozen=True)
class SweepOptions:
    """The grid, and the run of each cell (``cell``: its ``DemoOptions`` but for the round trip,
    the connections and the report folder)."""

    rtts_ms: tuple[float, ...] = (0.0, 1.0, 5.0, 15.0)
    concurrencies: tuple[int, ...] = (8, 32, 128, 512)
    cell: DemoOptions = field(default_factory=lambda: DemoOptions(duration_s=10.0, rounds=2, warmup_s=5.0))
    out: Path | None = None

    def __post_init__(self) -> None:
        if not self.rtts_ms or not self.concurrencies:
            raise ValueError("a sweep needs at least one round trip and one concurrency")
        if any(rtt < 0 for rtt in self.rtts_ms) or any(c < 1 for c in self.concurrencies):
            raise ValueError("round trips must be >= 0 ms and concurrencies >= 1")
        if self.cell.rate is not None:
            raise ValueError("a sweep is a closed loop: QPS is what each mode can serve")

    def cell_options(self, rtt_ms: float, concurrency: int, folder: Path) -> DemoOptions:
        rtt = None if rtt_ms == 0 else rtt_ms  # 0: Redis on loopback, no proxy
        return replace(
            self.cell,
            redis="embedded" if self.cell.redis_url is None else self.cell.redis,
            rtt_ms=rtt,
            concurrency=concurrency,
            out=folder / f"rtt-{rtt_ms:g}-c-{concurrency}",
        )


@dataclass(frozen=True)
class SweepCell:
    """One cell of the map."""

    rtt_ms: float
    concurrency: int
    sync_qps: float
    async_qps: float
    sync_p99_s: float | None
    async_p99_s: float | None
    qps_ratio: float | None
    p99_change: float | None
    warnings: list[str]
    report: str

    @classmethod
    def of(cls, rtt_ms: float, concurrency: int, result: DemoResult, folder: Path) -> SweepCell:
        sync, async_ = result.summary("sync"), result.summary("async")
        comparison = result.comparison()
        return cls(
            rtt_ms=rtt_ms,
            concurrency=concurrency,
            sync_qps=sync.qps,
            async_qps=async_.qps,
            sync_p99_s=sync.p99_s,
            async_p99_s=async_.p99_s,
            qps_ratio=comparison.qps_ratio,
            p99_change=comparison.p99_change,
            warnings=result.warnings(),
            report=str(folder / "report.md"),
        )

    @property
    def qps_claim_holds(self) -> bool:
        return self.qps_ratio is not None and self.qps_ratio >= ADR_QPS_RATIO

    @property
    def p99_claim_holds(self) -> bool:
        # In whole percentage points, as shown (the demo's own verdict rounds the same way).
        return self.p99_change is not None and round(self.p99_change * 100) <= round(ADR_P99_CHANGE * 100)


def run_sweep(options: SweepOptions, view: DemoView) -> tuple[list[SweepCell], Path]:
    """Run every cell, round trip by round trip; write the map; return the cells and the folder."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = options.out or Path("reports") / f"sweep-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    cells: list[SweepCell] = []
    for rtt_ms in options.rtts_ms:
        for concurrency in options.concurrencies:
            view.log(f"sweep: {rtt_ms:g} ms to Redis, {concurrency} connections")
            result, cell_folder = run_demo(options.cell_options(rtt_ms, concurrency, folder), view)
            cells.append(SweepCell.of(rtt_ms, concurrency, result, cell_folder))
            write_sweep_report(cells, options, folder)  # what is done so far, if stopped later
    return cells, folder


def _grid(cells: Sequence[SweepCell], options: SweepOptions) -> dict[tuple[float, int], SweepCell]:
    return {(cell.rtt_ms, cell.concurrency): cell for cell in cells}


def _cell_text(value: float | None, kind: str, holds: bool) -> str:
    if value is None:
        return "-"
    text = f"{value:.2f}x" if kind == "qps" else f"{value * 100:+.0f} %"
    return f"**{text}**" if holds else text


def sweep_markdown(cells: Sequence[SweepCell], options: SweepOptions) -> str:
    """The map as two tables (rows: round trip; columns: connections); a claim met is in bold."""
    grid = _grid(cells, options)
    header = ["Redis round trip"] + [f"{c} conn." for c in options.concurrencies]
    lines = [
        "# Where ADR-014's claims hold",
        "",
        f"Each cell: one `otel-cache demo` run, closed loop, {options.cell.warmup:g} s warm-up and "
        f"{options.cell.rounds} rounds of {options.cell.round_s:g} s per mode, alternating; both services "
        "on one CPU. Round trip 0: Redis on loopback; otherwise a proxy adds it. **Bold**: the ADR's "
        f"claim is met ({ADR_QPS_RATIO}x QPS; {ADR_P99_CHANGE:.0%} P99).",
        "",
    ]
    for title, kind in (("Async QPS / sync QPS", "qps"), ("Async p99 against sync p99", "p99")):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for rtt in options.rtts_ms:
            row = [f"{rtt:g} ms"]
            for concurrency in options.concurrencies:
                cell = grid.get((rtt, concurrency))
                if cell is None:
                    row.append("(not run)")
                elif kind == "qps":
                    row.append(_cell_text(cell.qps_ratio, kind, cell.qps_claim_holds))
                else:
                    row.append(_cell_text(cell.p99_change, kind, cell.p99_claim_holds))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines += ["## Each cell", "", "| round trip | conn. | QPS sync / async | p99 sync / async | warnings |"]
    lines.append("| --- | ---: | ---: | ---: | --- |")
    for cell in cells:
        p99 = " / ".join(
            "-" if p is None else f"{p * 1e3:.1f} ms" for p in (cell.sync_p99_s, cell.async_p99_s)
        )
        warnings = "; ".join(cell.warnings) or "none"
        lines.append(
            f"| {cell.rtt_ms:g} ms | {cell.concurrency} | {cell.sync_qps:.0f} / {cell.async_qps:.0f} "
            f"| {p99} | {warnings} |"
        )
    return "\n".join(lines) + "\n"


def write_sweep_report(cells: Sequence[SweepCell], options: SweepOptions, folder: Path) -> Path:
    """``sweep.md``, ``sweep.json`` and (with matplotlib) ``sweep.png`` into ``folder``."""
    data: dict[str, Any] = {
        "rtts_ms": list(options.rtts_ms),
        "concurrencies": list(options.concurrencies),
        "cell": {
            "duration_s": options.cell.duration_s,
            "rounds": options.cell.rounds,
            "warmup_s": options.cell.warmup,
        },
        "adr": {"qps_ratio": ADR_QPS_RATIO, "p99_change": ADR_P99_CHANGE},
        "cells": [asdict(cell) for cell in cells],
    }
    (folder / "sweep.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    (folder / "sweep.md").write_text(sweep_markdown(cells, options), encoding="utf-8")
    with contextlib.suppress(ImportError):
        _heat_maps(cells, options, folder / "sweep.png")
    return folder


def _heat_maps(cells: Sequence[SweepCell], options: SweepOptions, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    grid = _grid(cells, options)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    try:
        maps = (
            ("Async QPS / sync QPS (ADR: 2.1x)", "qps", 1.0, "RdYlGn"),
            ("Async p99 against sync p99 (ADR: -35 %)", "p99", 0.0, "RdYlGn_r"),
        )
        for ax, (title, kind, centre, colours) in zip(axes, maps, strict=True):
            values = [
                [_value(grid.get((rtt, c)), kind) for c in options.concurrencies] for rtt in options.rtts_ms
            ]
            finite = [v for row in values for v in row if v == v]  # NaN != NaN
            low, high = min([*finite, centre - 0.01]), max([*finite, centre + 0.01])
            image = ax.imshow(values, cmap=colours, norm=TwoSlopeNorm(vcenter=centre, vmin=low, vmax=high))
            ax.set_xticks(range(len(options.concurrencies)), [str(c) for c in options.concurrencies])
            ax.set_yticks(range(len(options.rtts_ms)), [f"{r:g} ms" for r in options.rtts_ms])
            ax.set_xlabel("client connections (closed loop)")
            ax.set_ylabel("Redis round trip")
            ax.set_title(title)
            for i, rtt in enumerate(options.rtts_ms):
                for j, concurrency in enumerate(options.concurrencies):
                    cell = grid.get((rtt, concurrency))
                    if cell is None:
                        continue
                    value = cell.qps_ratio if kind == "qps" else cell.p99_change
                    holds = cell.qps_claim_holds if kind == "qps" else cell.p99_claim_holds
                    text = _cell_text(value, kind, False) + (" ✓" if holds else "")
                    ax.text(
                        j, i, text, ha="center", va="center", fontsize=9, weight="bold" if holds else None
                    )
            fig.colorbar(image, ax=ax, shrink=0.8)
        fig.suptitle("Where ADR-014's claims hold (✓: met)")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def _value(cell: SweepCell | None, kind: str) -> float:
    value = None if cell is None else (cell.qps_ratio if kind == "qps" else cell.p99_change)
    return float("nan") if value is None else value
