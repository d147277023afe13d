"""Summaries of one or more benchmark processes, printed with rich or as markdown.

A process's raw results are JSON-friendly dicts (see :func:`benchmarks.l1.run_once`).
Summaries follow one rule: within a process a figure is the median of its repeats;
over several processes it is the median of the process medians, and min..max is
taken over those medians (over the repeats when there is one process). The
contended runs are summarised over all runs of all processes (``median_low``).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Report", "summarise"]

RawRun = dict[str, Any]

_LOOP_OVERHEAD = ("loop overhead (pass)", "async loop overhead (pass)")
_BUSY = 0.10  # share of the CPUs used by other processes above which a run is flagged


@dataclass(frozen=True, slots=True)
class Row:
    """One printed row: a median, its min..max, and the ratio to the minimal LRU if any."""

    group: str
    name: str
    median: float
    low: float
    high: float
    ratio: float | None = None
    extra: str = ""


@dataclass(frozen=True, slots=True)
class Report:
    """What gets printed: micro rows, ADR rows, contention rows, notes."""

    micro: list[Row]
    adr: list[Row]
    contention: list[Row]
    skipped: list[str]
    meta: dict[str, Any]

    def markdown(self) -> str:
        return "\n".join(_markdown_lines(self))

    def print_rich(self) -> None:
        _print_rich(self)


def _spread(per_process: Sequence[Sequence[float]]) -> tuple[float, float, float]:
    values = list(per_process[0]) if len(per_process) == 1 else [statistics.median(p) for p in per_process]
    return statistics.median(values), min(values), max(values)


def _micro_rows(runs: Sequence[RawRun]) -> list[Row]:
    per_run = [{sample["name"]: sample for sample in run["micro"]} for run in runs]
    first = per_run[0]
    summaries = {name: _spread([run[name]["ns_per_op"] for run in per_run]) for name in first}
    floor = {s["kind"]: summaries[name][0] for name, s in first.items() if s["group"] == "minimal LRU"}
    rows = []
    for name, sample in first.items():
        median, low, high = summaries[name]
        ratio = median / floor[sample["kind"]] if sample["kind"] in floor else None
        rows.append(Row(sample["group"], name, median, low, high, ratio))
    return rows


def _adr_rows(runs: Sequence[RawRun]) -> list[Row]:
    rows = []
    for index, sample in enumerate(runs[0]["adr"]):
        median, low, high = _spread([[s * 1e3 for s in run["adr"][index]["seconds"]] for run in runs])
        claim = f"ADR: {sample['claim_s'] * 1e3:,.0f} ms"
        rows.append(Row("adr", sample["name"], median, low, high, extra=claim))
    return rows


def _contention_rows(runs: Sequence[RawRun]) -> list[Row]:
    all_runs = [result for run in runs for result in run["contention"]]
    if not all_runs:
        return []
    rows = []
    for metric in all_runs[0]:
        values = [result[metric] for result in all_runs]
        # median_low: an observed value, never the mean of two (a bucket bound stays a bound).
        rows.append(Row("contention", metric, statistics.median_low(values), min(values), max(values)))
    return rows


def summarise(runs: Sequence[RawRun], meta: dict[str, Any]) -> Report:
    """One :class:`Report` from the raw results of every process."""
    return Report(_micro_rows(runs), _adr_rows(runs), _contention_rows(runs), runs[0]["skipped"], meta)


# -- rendering -----------------------------------------------------------------


def _num(value: float) -> str:
    return f"{value:,.1f}" if value < 1e5 else f"{value:,.0f}"


def _micro_cells(row: Row) -> list[str]:
    return [
        row.name,
        _num(row.median),
        f"{1e9 / row.median:,.0f}",
        f"{_num(row.low)}..{_num(row.high)}",
        f"{row.ratio:.2f}x" if row.ratio is not None else "",
    ]


_MICRO_HEAD = ["bench", "ns/op (median)", "ops/s", "min..max ns", "x min LRU"]
_ADR_HEAD = ["scenario", "ms per 1000 ops = µs/op (median)", "min..max ms", "ADR claim"]
_CONTENTION_HEAD = ["metric", "median", "min..max"]
_ADR_TITLE = "ADR-014 figures: 1000 ops, 80% hits / 20% updates"
_CONTENTION_TITLE = "contended: 2 threads get/put + the event loop aget, one cache"


def _adr_cells(row: Row) -> list[str]:
    return [row.name, f"{row.median:.3f}", f"{row.low:.3f}..{row.high:.3f}", row.extra]


def _contention_cells(row: Row) -> list[str]:
    return [row.name, _num(row.median), f"{_num(row.low)}..{_num(row.high)}"]


def _spread_label(meta: dict[str, Any]) -> str:
    if meta["processes"] == 1:
        return f"min..max over {meta['repeats']} repeats"
    return f"min..max of the per-process medians ({meta['processes']} processes x {meta['repeats']} repeats)"


def _notes(report: Report) -> list[str]:
    meta = report.meta
    overhead = {row.name: row.median for row in report.micro if row.name in _LOOP_OVERHEAD}
    notes = [
        f"{meta['date']} | {meta['cpu']} | nproc {meta['nproc']} | {meta['python']} | "
        f"otel_cache at {meta.get('source') or 'unknown commit'}",
        "packages: "
        + ", ".join(f"{name} {version}" for name, version in meta["packages"].items() if version),
        f"ns/op: median; {_spread_label(meta)}; gc off while timing; loop overhead not subtracted.",
    ]
    if overhead:
        notes.append(
            "loop overhead (included in every row): "
            + ", ".join(
                f"{name.removesuffix(' (pass)')} {value:.1f} ns/op" for name, value in overhead.items()
            )
        )
    notes.append("x min LRU: median over the median of the minimal OrderedDict LRU doing the same operation.")
    share = meta["cpu_share"]
    if share["others"] is not None:
        notes.append(
            f"other processes used {share['others']:.0%} of the CPUs during the run "
            f"(steal {share['steal']:.0%}); load average at the end {meta['loadavg'][0]:.2f}; "
            f"run took {meta['elapsed_s']} s"
            + (" - a busy machine: figures are inflated and vary more" if share["others"] > _BUSY else "")
        )
    if report.skipped:
        notes.append("skipped (not installed): " + ", ".join(report.skipped))
    return notes


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(head) - 1)
    return [f"| {' | '.join(cells)} |" for cells in (head, align, *rows)]


def _markdown_lines(report: Report) -> list[str]:
    lines = [f"- {note}" for note in _notes(report)]
    for group in dict.fromkeys(row.group for row in report.micro):
        lines += ["", f"#### {group}", ""]
        lines += _md_table(_MICRO_HEAD, [_micro_cells(row) for row in report.micro if row.group == group])
    if report.adr:
        lines += ["", f"#### {_ADR_TITLE}", ""]
        lines += _md_table(_ADR_HEAD, [_adr_cells(row) for row in report.adr])
    if report.contention:
        lines += ["", f"#### {_CONTENTION_TITLE}", ""]
        lines += _md_table(_CONTENTION_HEAD, [_contention_cells(row) for row in report.contention])
    return lines


def _rich_table(title: str, head: list[str]) -> Any:
    from rich.table import Table

    table = Table(*head, title=title, title_justify="left")
    for column in table.columns[1:]:
        column.justify = "right"
    return table


def _print_rich(report: Report) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # piped: do not wrap names at 80 columns
    micro = _rich_table("L1 micro-benchmark", _MICRO_HEAD)
    group = None
    for row in report.micro:
        if group is not None and row.group != group:
            micro.add_section()
        group = row.group
        # Text, not str: rich would read "[k]" in a name as markup.
        micro.add_row(*map(Text, _micro_cells(row)), style="bold" if row.group == "otel_cache" else None)
    console.print(micro)
    if report.adr:
        table = _rich_table(_ADR_TITLE, _ADR_HEAD)
        for row in report.adr:
            table.add_row(*map(Text, _adr_cells(row)))
        console.print(table)
    if report.contention:
        table = _rich_table(_CONTENTION_TITLE, _CONTENTION_HEAD)
        for row in report.contention:
            table.add_row(*map(Text, _contention_cells(row)))
        console.print(table)
    for note in _notes(report):
        console.print(note, markup=False, highlight=False)
