"""The demo's views: a rich live terminal view, or plain log lines (``--no-live``, for CI).

Both show the same figures for each mode, side by side:

- **now**: the last few seconds of load on that mode (the running one), or the last
  seconds of its previous round (the idle one, dimmed);
- **measured**: every measured round of that mode so far, as the report computes it,
  and async against sync.

Client-side: QPS, p50, p99 (the load generator). Server-side, from the service's
``/metrics``: event-loop lag p99 and max, lock wait p99, hit ratio of L1 and L2,
evictions per second, and the service's CPU use of its core.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from otel_cache_demo.report import (
    MODES,
    DemoResult,
    ServerWindow,
    SummaryRow,
    ms,
    pct,
    summary_markdown,
    summary_rows,
)
from otel_cache_demo.runner import Status

if TYPE_CHECKING:
    from rich.console import Group
    from rich.live import Live

__all__ = ["LiveView", "LogView", "Recent", "print_summary", "recent"]

RECENT_S = 5  # seconds the "now" figures cover


@dataclass(frozen=True)
class Recent:
    """A mode's last few seconds of load."""

    seconds: int
    qps: float
    p50_s: float | None
    p99_s: float | None
    errors: int
    server: ServerWindow | None


def _median(values: Sequence[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def recent(status: Status, mode: str, seconds: int = RECENT_S) -> Recent | None:
    """The last ``seconds`` seconds of load on ``mode`` (warm-up included); None before any."""
    mine = [s for s in status.samples if s.mode == mode][-seconds:]
    if not mine:
        return None
    return Recent(
        seconds=len(mine),
        qps=sum(s.requests for s in mine) / len(mine),
        p50_s=_median([s.p50_s for s in mine if s.p50_s is not None]),
        p99_s=_median([s.p99_s for s in mine if s.p99_s is not None]),
        errors=sum(s.errors for s in mine),
        server=ServerWindow.merge([s.server for s in mine if s.server is not None]),
    )


def _fmt_clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _now_rows(status: Status) -> list[tuple[str, str, str]]:
    """(metric, sync now, async now)."""
    now = {mode: recent(status, mode) for mode in MODES}

    def cell(mode: str, what: str) -> str:
        r = now[mode]
        if r is None:
            return "-"
        w = r.server
        if what == "qps":
            return f"{r.qps:,.0f}"
        if what == "p50":
            return ms(r.p50_s)
        if what == "p99":
            return ms(r.p99_s)
        if w is None:
            return "-"
        if what == "lag_p99":
            return ms(w.lag_p99_s)
        if what == "lag_max":
            return ms(w.lag_max_s)
        if what == "lock":
            return f"{ms(w.lock_wait_p99_s, 2)} ({w.lock_waits:,.0f})"
        if what == "flight":
            return f"{ms(w.flight_wait_p99_s)} ({w.flight_waits:,.0f})"
        if what == "l1":
            return pct(w.hit_ratio_l1)
        if what == "l2":
            return pct(w.hit_ratio_l2)
        if what == "evictions":
            return "-" if w.evictions_per_s is None else f"{w.evictions_per_s:,.1f}"
        if what == "cpu":
            return pct(w.cpu_utilisation)
        raise ValueError(what)

    labels = [
        ("qps", "QPS"),
        ("p50", "p50 latency"),
        ("p99", "p99 latency"),
        ("lag_p99", "event-loop lag p99"),
        ("lag_max", "event-loop lag max"),
        ("lock", "L1 lock wait p99 (waits)"),
        ("flight", "single-flight wait p99 (waits)"),
        ("l1", "hit ratio L1"),
        ("l2", "hit ratio L2"),
        ("evictions", "evictions/s"),
        ("cpu", "service CPU"),
    ]
    return [(label, cell("sync", key), cell("async", key)) for key, label in labels]


def _measured(status: Status) -> dict[str, SummaryRow]:
    """The summary rows of the rounds measured so far, by metric label."""
    if not status.rounds:
        return {}
    result = DemoResult({}, {}, "", "", status.samples, status.rounds)
    rows = summary_rows(result)
    return {row.metric: row for row in rows}


# The "now" label -> the summary table's label, for the measured columns.
_SUMMARY_LABEL = {
    "QPS": "QPS",
    "p50 latency": "p50 latency (client)",
    "p99 latency": "p99 latency (client, median of rounds)",
    "event-loop lag p99": "event-loop lag p99",
    "event-loop lag max": "event-loop lag max",
    "L1 lock wait p99 (waits)": "L1 lock wait p99 (contended waits)",
    "single-flight wait p99 (waits)": "single-flight wait p99 (waits)",
    "hit ratio L1": "hit ratio L1",
    "hit ratio L2": "hit ratio L2",
    "evictions/s": "evictions/s",
    "service CPU": "service CPU (its core)",
}


def _progress_line(status: Status) -> str:
    phase = status.phase
    where = "starting" if phase is None and status.index < 0 else "done" if phase is None else phase.label
    if phase is not None and phase.round is not None:
        where += f" of {max((p.round or 0) for p in status.phases) + 1}"
    done, total = status.done_s, status.total_s
    return f"{where} | {_fmt_clock(done)} of {_fmt_clock(total)}, {_fmt_clock(total - done)} left"


class LogView:
    """Plain lines on ``stream``: start-up, a line every ``every_s`` seconds of load, each round's figures."""

    def __init__(self, stream: IO[str] | None = None, every_s: int = 5) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.every_s = every_s
        self._printed = 0
        self._started = time.monotonic()

    def _print(self, text: str) -> None:
        elapsed = time.monotonic() - self._started
        print(f"[{_fmt_clock(elapsed)}] {text}", file=self.stream, flush=True)

    def start(self, status: Status) -> None:
        self._started = time.monotonic()
        self._print(status.title)
        for detail in status.details:
            self._print(detail)
        self._print(f"plan: {len(status.phases)} phases, {_fmt_clock(status.total_s)} of load")

    def update(self, status: Status) -> None:
        if len(status.samples) < self._printed + self.every_s:
            return
        self._printed = len(status.samples)
        phase = status.phase
        if phase is None:
            return
        r = recent(status, phase.mode)
        if r is None:
            return
        w = r.server
        if w is None:
            server = "(no scrape)"
        else:
            evictions = "-" if w.evictions_per_s is None else f"{w.evictions_per_s:,.0f}"
            server = (
                f"lag p99 {ms(w.lag_p99_s):>9} max {ms(w.lag_max_s):>9}  "
                f"lock p99 {ms(w.lock_wait_p99_s, 2):>8}  "
                f"hit L1 {pct(w.hit_ratio_l1):>4} L2 {pct(w.hit_ratio_l2):>4}  ev/s {evictions:>5}"
            )
        line = (
            f"{phase.label:<16} qps {r.qps:7,.0f}  p50 {ms(r.p50_s):>9}  p99 {ms(r.p99_s):>9}  {server}  "
            f"| {_fmt_clock(status.total_s - status.done_s)} left"
        )
        self._print(line)

    def log(self, message: str) -> None:
        self._print(message)

    def stop(self) -> None:
        pass


class LiveView:
    """A rich ``Live`` display: the plan, a progress bar with the time left, both modes side by side."""

    def __init__(self, refresh_per_second: float = 2.0) -> None:
        from rich.console import Console

        self.console = Console()
        self.refresh_per_second = refresh_per_second
        self._messages: list[str] = []
        self._live: Live | None = None
        self._status: Status | None = None

    def _render(self, status: Status) -> Group:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        phase = status.phase
        active = None if phase is None else phase.mode
        header = Text(status.title, style="bold")
        details = [Text(detail, style="dim") for detail in status.details]
        bar = Table.grid(padding=(0, 1))
        bar.add_column(width=42)
        bar.add_column()
        bar.add_row(
            ProgressBar(total=max(status.total_s, 1e-9), completed=status.done_s, width=40),
            Text(_progress_line(status), style="cyan"),
        )
        table = Table(title=None, show_lines=False, expand=False)
        table.add_column("")
        for mode in MODES:
            label = f"{mode} now" + (" ▶" if mode == active else "")
            table.add_column(label, justify="right", style="bold" if mode == active else "dim")
        for mode in MODES:
            table.add_column(f"{mode} measured", justify="right")
        table.add_column("async vs sync", justify="right")
        measured = _measured(status)
        for metric, sync_now, async_now in _now_rows(status):
            row = measured.get(_SUMMARY_LABEL[metric])
            table.add_row(
                metric,
                sync_now,
                async_now,
                row.sync if row else "-",
                row.async_ if row else "-",
                row.comparison if row else "",
            )
        rounds = {mode: len([r for r in status.rounds if r.mode == mode]) for mode in MODES}
        footer = Text(
            "measured: "
            + ", ".join(f"{mode} {n} round(s)" for mode, n in rounds.items())
            + "   now: the last seconds of load on each mode (the running one in bold)",
            style="dim",
        )
        log = [Text(message, style="dim") for message in self._messages[-4:]]
        return Group(header, *details, bar, table, footer, *log)

    def start(self, status: Status) -> None:
        from rich.live import Live

        self._status = status
        live = Live(
            self._render(status),
            console=self.console,
            refresh_per_second=self.refresh_per_second,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        live.start()
        self._live = live

    def update(self, status: Status) -> None:
        self._status = status
        if self._live is not None:
            self._live.update(self._render(status))

    def log(self, message: str) -> None:
        self._messages.append(message)
        if self._status is not None:
            self.update(self._status)

    def stop(self) -> None:
        if self._live is not None:
            if self._status is not None:
                self._live.update(self._render(self._status))
            self._live.stop()
            self._live = None


def print_summary(result: DemoResult, *, rich_table: bool, stream: IO[str] | None = None) -> None:
    """The summary table: a rich table on a terminal, markdown otherwise."""
    out = stream if stream is not None else sys.stdout
    if not rich_table:
        print("\n".join(summary_markdown(result)), file=out, flush=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="otel-cache demo: sync vs async (measured rounds)")
    for name, justify in (("", "left"), ("sync", "right"), ("async", "right"), ("async vs sync", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("ADR-014", justify="left")
    comparison = result.comparison()
    for row in summary_rows(result):
        style = None
        if row.metric == "QPS" and comparison.qps_ratio is not None:
            style = "green" if "meets" in comparison.qps_verdict else "yellow"
        table.add_row(row.metric, row.sync, row.async_, row.comparison, row.adr, style=style)
    Console(file=out).print(table)
