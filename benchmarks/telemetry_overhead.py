"""What otel_cache's telemetry costs: ``python -m benchmarks.telemetry_overhead [--quick]``.

Two measurements in one run; the table (markdown) goes to stdout, progress to stderr.

**1. L1 calls, not instrumented (a) and instrumented (b).** (b) is the state
``OtelCacheInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)`` leaves:
``tp`` an SDK ``TracerProvider`` with a ``BatchSpanProcessor`` into an exporter that
drops spans, ``mp`` an SDK ``MeterProvider`` with an ``InMemoryMetricReader`` (the
observable instruments are read at collection time, which no timed call triggers). Rows::

    AsyncLRUCache        get / await aget hit
    MultiLevelCache      get / await aget hit, get_or_set / await aget_or_set hit   (L1 only, no Redis)
    MultiLevelCache      get / await aget miss (a key never stored)
    MultiLevelCache      get_or_set / await aget_or_set miss: a span around the loader, the
                         load-duration histogram, then insert+evict (the keys of workload.insert_keys)

Every row is timed in both states, on the same cache, in the same process, with the
harness's timers (:mod:`benchmarks.harness`: timeit-style loops, gc off, calibrated
loop counts). The instrumentation is switched between timed runs by handing the
instrumentor's handler to :mod:`otel_cache.telemetry.hooks` and taking it back, which
is all that ``instrument()`` / ``uninstrument()`` change for a cache::

    instrument once; keep its handler; uninstall it
    each row: set up one cache; calibrate (a) not instrumented, then (b) instrumented
    round 1..repeats:  for each row: time (a) then (b)   (odd rounds: (b) then (a))

In ``--processes N`` fresh processes, one after another; an ns/op figure is the median
of a process's repeats, then the median over processes. ``b/a`` is taken round by round
((b) and (a) of one round ran side by side, under the same machine conditions): the
median of a process's per-round ratios, then the median over processes; its min..max
is over the per-process ratios (over the per-round ratios with one process). Checks
reported: spans the exporter received against the loads run instrumented (equal: no
span was dropped), and the otel_cache metric points one collection returned.

**2. A FastAPI request through a ``@cached`` endpoint, a hit**, on a real uvicorn
server, with ``FastAPIInstrumentor`` alone and with otel_cache's instrumentation too,
and with no instrumentation for scale: see :mod:`benchmarks.telemetry_http`.

The event-loop monitor's idle cost is measured by ``python -m benchmarks.loop_monitor``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.metadata
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.harness import Bench, Namespace
from benchmarks.machine import CpuShare, machine_facts
from benchmarks.switched_telemetry import SwitchedTelemetry
from benchmarks.telemetry_http import (
    PATH,
    VARIANTS,
    HttpConfig,
    counting_queue_full,
    run_http,
)
from benchmarks.workload import CAPACITY, HIT_KEY, KEYS, VALUE, full_cache, insert_keys

__all__ = ["FULL", "QUICK", "Config", "main", "markdown", "micro_rows", "run", "run_micro", "summarise"]

_ROOT = Path(__file__).resolve().parent.parent
_PACKAGES = (
    "otel-cache", "opentelemetry-api", "opentelemetry-sdk", "opentelemetry-instrumentation-fastapi",
    "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "h11",
)  # fmt: skip
_BUSY = 0.10  # share of the CPUs other processes used above which the run is flagged


@dataclass(frozen=True, slots=True)
class Config:
    """How long to measure; :data:`FULL` and :data:`QUICK` are the presets."""

    processes: int
    repeats: int
    target_s: float
    http_rounds: int
    http_slices: int
    http_slice_s: float
    http_together_s: float
    http_warmup_s: float
    concurrency: int
    part: str = "all"  # "all", "l1" or "http"

    def http(self) -> HttpConfig:
        return HttpConfig(
            rounds=self.http_rounds,
            slices=self.http_slices,
            slice_s=self.http_slice_s,
            together_s=self.http_together_s,
            warmup_s=self.http_warmup_s,
            concurrency=self.concurrency,
        )


FULL = Config(
    processes=3,
    repeats=7,
    target_s=0.05,
    http_rounds=3,
    http_slices=16,
    http_slice_s=0.5,
    http_together_s=4.0,
    http_warmup_s=1.0,
    concurrency=16,
)
QUICK = Config(
    processes=1,
    repeats=5,
    target_s=0.01,
    http_rounds=1,
    http_slices=2,
    http_slice_s=0.5,
    http_together_s=1.5,
    http_warmup_s=0.5,
    concurrency=16,
)


# -- part 1: the L1 rows -----------------------------------------------------------------------


def _load() -> str:
    return VALUE


async def _aload() -> str:
    return VALUE


def _multilevel(async_mode: bool) -> Namespace:
    from otel_cache import CacheConfig, MultiLevelCache

    # CacheConfig's defaults (default_ttl 300 s, no Redis) but the size of the L1 workload.
    cache: MultiLevelCache[str, str] = MultiLevelCache(
        CacheConfig(name="bench-telemetry", l1_max_entries=CAPACITY), async_mode=async_mode
    )
    for key in KEYS:
        cache.put(key, VALUE)
    return {
        "m": cache,
        "k": HIT_KEY,
        "absent": "absent:key",
        "keys": insert_keys(),
        "load": _load,
        "aload": _aload,
    }


def _close(namespace: Namespace) -> None:
    namespace["m"].close()


def micro_rows() -> list[Bench]:
    """The rows of part 1; each is timed twice, not instrumented and instrumented."""
    hit, load = "L1 hit", "L1 miss and load"

    def lru() -> Namespace:
        return {"c": full_cache(), "k": HIT_KEY}

    def ml(name: str, group: str, stmt: str, is_async: bool = False) -> Bench:
        return Bench(name, group, stmt, lambda: _multilevel(is_async), is_async=is_async, teardown=_close)

    return [
        Bench("AsyncLRUCache get hit", hit, "c.get(k)", lru),
        Bench("AsyncLRUCache await aget hit", hit, "await c.aget(k)", lru, is_async=True),
        ml("MultiLevelCache get hit", hit, "m.get(k)"),
        ml("MultiLevelCache await aget hit", hit, "await m.aget(k)", True),
        ml("MultiLevelCache get_or_set hit", hit, "m.get_or_set(k, load)"),
        ml("MultiLevelCache await aget_or_set hit", hit, "await m.aget_or_set(k, aload)", True),
        ml("MultiLevelCache get miss", load, "m.get(absent)"),
        ml("MultiLevelCache await aget miss", load, "await m.aget(absent)", True),
        ml("MultiLevelCache get_or_set miss: load + insert+evict", load, "m.get_or_set(next(keys), load)"),
        ml(
            "MultiLevelCache await aget_or_set miss: load + insert+evict",
            load,
            "await m.aget_or_set(next(keys), aload)",
            True,
        ),
    ]


class _Instrumentation(SwitchedTelemetry):
    """The switched instrumentation, redis-py instrumented too."""

    def checks(self) -> dict[str, Any]:
        """Uninstrument; the spans exported and the otel_cache metric points of one collection."""
        from otel_cache.telemetry.names import INSTRUMENTATION_NAME

        self.set(True)
        points = self.metric_points(INSTRUMENTATION_NAME)
        self.close()
        return {"spans_by_scope": dict(self.spans.by_scope), "otel_cache_metric_points": points}


def _loads(namespace: Namespace) -> int:
    cache = namespace.get("m")
    return 0 if cache is None else int(cache.sync_flights.loads + cache.async_flights.loads)


def _returning(namespace: Namespace) -> Callable[[], Namespace]:
    return lambda: namespace


def run_micro(
    rows: Sequence[Bench], *, repeats: int, target_s: float, progress: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """Part 1 in this process: every row in both states, interleaved; JSON-friendly raw results.

    Both states of a row time the same cache (one namespace), so that they differ in
    the instrumentation alone. Uses the harness's row preparation and calibration
    (private helpers of :mod:`benchmarks.harness`), adding only the switch between states.
    """
    instrumentation = _Instrumentation()
    pairs: list[tuple[harness._Prepared, harness._Prepared]] = []
    loads_instrumented = 0

    def timed(item: harness._Prepared, on: bool, loops: int) -> float:
        nonlocal loads_instrumented
        instrumentation.set(on)
        before = _loads(item.namespace)
        elapsed = item.timer(loops)
        if on:
            loads_instrumented += _loads(item.namespace) - before
        return elapsed

    try:
        with counting_queue_full() as queue_full:
            try:
                for bench in rows:
                    instrumentation.set(False)
                    a = harness._prepare(bench)
                    pairs.append((a, a))  # disposed below even if (b) fails to set up
                    b = harness._prepare(replace(bench, setup=_returning(a.namespace), teardown=None))
                    pairs[-1] = (a, b)
                    a.loops = harness._calibrate(functools.partial(timed, a, False), target_s)
                    b.loops = harness._calibrate(functools.partial(timed, b, True), target_s)
                progress(f"set up and calibrated {len(pairs)} rows x 2")
                for round_ in range(repeats):
                    states = (False, True) if round_ % 2 == 0 else (True, False)
                    for pair in pairs:
                        for on in states:
                            item = pair[on]
                            item.ns_per_op.append(timed(item, on, item.loops) / item.loops * 1e9)
                    progress(f"round {round_ + 1}/{repeats}")
            finally:
                for a, b in pairs:
                    harness._dispose(a)
                    if b is not a:
                        harness._dispose(b)
    finally:
        checks = instrumentation.checks()  # uninstruments: leaves no handler behind
    checks["loads_instrumented"] = loads_instrumented
    checks["queue_full_warnings"] = queue_full.count
    return {
        "rows": [
            {
                "name": a.bench.name,
                "group": a.bench.group,
                "loops": [a.loops, b.loops],
                "a": a.ns_per_op,
                "b": b.ns_per_op,
            }
            for a, b in pairs
        ],
        "checks": checks,
    }


# -- summaries ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MicroRow:
    group: str
    name: str
    a_ns: float
    b_ns: float
    ratio: float  # paired: median over rounds of b/a (then over processes)
    ratio_low: float
    ratio_high: float
    difference_ns: float  # paired likewise: b - a


@dataclass(frozen=True, slots=True)
class HttpRow:
    """One variant over every slice; ratios are over the ``fastapi`` variant (None for it)."""

    variant: str
    qps: float
    qps_low: float
    qps_high: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float | None
    server_busy: float | None
    others_share: float | None
    client_cpu_max: float
    errors: int
    hit_share: float
    server_spans_per_request: float | None
    otel_cache_spans: int
    qps_ratio: tuple[float, float, float] | None = None  # paired per-slice ratios: median, p25, p75
    cpu_ratio: tuple[float, float, float] | None = None


def _micro_summary(runs: Sequence[dict[str, Any]]) -> list[MicroRow]:
    result = []
    for index, row in enumerate(runs[0]["rows"]):
        per_run = [run["rows"][index] for run in runs]
        # b/a: the runs of a round are side by side in time, so their ratio cancels what the
        # machine did meanwhile; a process's figure is the median of its rounds' ratios.
        paired = [[b / a for a, b in zip(run["a"], run["b"], strict=True)] for run in per_run]
        differences = [[b - a for a, b in zip(run["a"], run["b"], strict=True)] for run in per_run]
        if len(per_run) == 1:
            a_ns, b_ns = statistics.median(per_run[0]["a"]), statistics.median(per_run[0]["b"])
            ratios, difference = paired[0], statistics.median(differences[0])
        else:
            a_ns = statistics.median([statistics.median(run["a"]) for run in per_run])
            b_ns = statistics.median([statistics.median(run["b"]) for run in per_run])
            ratios = [statistics.median(run_ratios) for run_ratios in paired]
            difference = statistics.median([statistics.median(run) for run in differences])
        result.append(
            MicroRow(
                row["group"],
                row["name"],
                a_ns,
                b_ns,
                statistics.median(ratios),
                min(ratios),
                max(ratios),
                difference,
            )
        )
    return result


_Key = tuple[int, int]  # (round, slice)


def _per_slice(
    slots: Sequence[dict[str, Any]], figure: Callable[[dict[str, Any]], float | None]
) -> dict[_Key, float]:
    values = {(slot["round"], slot["slice"]): figure(slot) for slot in slots}
    return {key: value for key, value in values.items() if value is not None}


def _qps(slot: dict[str, Any]) -> float | None:
    return float(slot["qps"]) if slot["requests"] else None


def _cpu_per_request_us(slot: dict[str, Any]) -> float | None:
    if slot["server_cpu_s"] is None or not slot["requests"]:
        return None
    return float(slot["server_cpu_s"] / slot["requests"] * 1e6)


def _paired(ours: dict[_Key, float], base: dict[_Key, float]) -> tuple[float, float, float] | None:
    """Median and quartiles of the ratios of slices taken side by side (same round and slice)."""
    ratios = [ours[key] / base[key] for key in ours if base.get(key)]
    if not ratios:
        return None
    if len(ratios) == 1:
        return ratios[0], ratios[0], ratios[0]
    low, median, high = statistics.quantiles(ratios, n=4, method="inclusive")
    return median, low, high


def _http_summary(http: dict[str, Any]) -> list[HttpRow]:
    by_variant = {variant: [s for s in http["slots"] if s["variant"] == variant] for variant in VARIANTS}
    base_qps = _per_slice(by_variant["fastapi"], _qps)
    base_cpu = _per_slice(by_variant["fastapi"], _cpu_per_request_us)
    rows = []
    for variant, slots in by_variant.items():
        if not slots:
            continue
        servers = [report for report in http["servers"] if report.get("variant") == variant]
        qps = _per_slice(slots, _qps)
        cpu = _per_slice(slots, _cpu_per_request_us)
        busy = [
            slot["server_cpu_s"] / slot["duration_s"] for slot in slots if slot["server_cpu_s"] is not None
        ]
        others = [
            max(0.0, slot["others_on_server_cpu_s"]) / slot["duration_s"]
            for slot in slots
            if slot.get("others_on_server_cpu_s") is not None
        ]
        # Requests each server answered: readiness probes, warm-ups, slices and side-by-side runs
        # (a few in flight when a run ended are not counted: spans per request is approximate).
        runs = [*slots, *(run for run in http.get("together") or [] if run["variant"] == variant)]
        served = http["warmup_requests"][variant] + sum(run["requests"] + run["errors"] for run in runs)
        scopes = [report.get("spans_by_scope", {}) for report in servers]
        server_spans = sum(
            count for by_scope in scopes for scope, count in by_scope.items() if scope.endswith("fastapi")
        )
        answered = sum(slot["hits"] + slot["misses"] for slot in slots)
        is_base = variant == "fastapi"
        rows.append(
            HttpRow(
                variant=variant,
                qps=statistics.median(qps.values()),
                qps_low=min(qps.values()),
                qps_high=max(qps.values()),
                p50_ms=statistics.median([slot["p50_ms"] for slot in slots if slot["p50_ms"] is not None]),
                p99_ms=statistics.median([slot["p99_ms"] for slot in slots if slot["p99_ms"] is not None]),
                cpu_us_per_request=statistics.median(cpu.values()) if cpu else None,
                server_busy=statistics.median(busy) if busy else None,
                others_share=statistics.median(others) if others else None,
                client_cpu_max=max(slot["client_cpu"] for slot in slots),
                errors=sum(slot["errors"] for slot in slots),
                hit_share=sum(slot["hits"] for slot in slots) / answered if answered else 0.0,
                server_spans_per_request=server_spans / served if served and variant != "none" else None,
                otel_cache_spans=sum(by_scope.get("otel_cache", 0) for by_scope in scopes),
                qps_ratio=None if is_base else _paired(qps, base_qps),
                cpu_ratio=None if is_base else _paired(cpu, base_cpu),
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class TogetherRow:
    """One variant loaded side by side with the others; the ratio is over ``fastapi``, per round."""

    variant: str
    qps: float
    cpu_us_per_request: float | None
    cpu_ratio: tuple[float, float, float] | None  # median, min, max over rounds


def _together_summary(http: dict[str, Any]) -> list[TogetherRow]:
    runs = http.get("together") or []
    base = {run["round"]: _cpu_per_request_us(run) for run in runs if run["variant"] == "fastapi"}
    rows = []
    for variant in VARIANTS:
        mine = [run for run in runs if run["variant"] == variant]
        if not mine:
            continue
        cpu = {run["round"]: _cpu_per_request_us(run) for run in mine}
        ratios = [
            value / reference
            for round_, value in cpu.items()
            if value is not None and (reference := base.get(round_))
        ]
        values = [value for value in cpu.values() if value is not None]
        rows.append(
            TogetherRow(
                variant=variant,
                qps=statistics.median(run["qps"] for run in mine),
                cpu_us_per_request=statistics.median(values) if values else None,
                cpu_ratio=(statistics.median(ratios), min(ratios), max(ratios)) if ratios else None,
            )
        )
    return rows


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """The printed figures, from the raw results of :func:`run` (JSON-friendly)."""
    micro = _micro_summary(result["micro"]) if result.get("micro") else []
    http = _http_summary(result["http"]) if result.get("http") else []
    together = _together_summary(result["http"]) if result.get("http") else []
    return {
        "micro": [asdict(row) for row in micro],
        "http": [asdict(row) for row in http],
        "together": [asdict(row) for row in together],
    }


# -- rendering -----------------------------------------------------------------------------------


def _num(value: float) -> str:
    return f"{value:,.1f}" if value < 1e5 else f"{value:,.0f}"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(head) - 1)
    return [f"| {' | '.join(cells)} |" for cells in (head, align, *rows)]


def _micro_lines(result: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    meta = result["meta"]
    spread = (
        f"b/a min..max: per process ({meta['processes']} processes x {meta['repeats']} rounds)"
        if meta["processes"] > 1
        else f"b/a min..max: per round ({meta['repeats']} rounds)"
    )
    head = ["operation", "(a) not instrumented ns/op", "(b) instrumented ns/op", "b/a", "b - a ns", spread]
    lines = []
    for group in dict.fromkeys(row["group"] for row in rows):
        lines += ["", f"#### {group}: (a) not instrumented, (b) OtelCacheInstrumentor on SDK providers", ""]
        cells = [
            [
                row["name"],
                _num(row["a_ns"]),
                _num(row["b_ns"]),
                f"{row['ratio']:.2f}x",
                f"{row['difference_ns']:+,.0f}",
                f"{row['ratio_low']:.2f}..{row['ratio_high']:.2f}",
            ]
            for row in rows
            if row["group"] == group
        ]
        lines += _table(head, cells)
    checks = [run["checks"] for run in result["micro"]]
    spans = sum(check["spans_by_scope"].get("otel_cache", 0) for check in checks)
    loads = sum(check["loads_instrumented"] for check in checks)
    lines += [
        "",
        f"- checks: the exporter received {spans:,} otel_cache spans for {loads:,} loads run instrumented"
        + (" (none dropped)" if spans == loads else " (MISMATCH: spans dropped or extra)")
        + f"; queue-full warnings {sum(check['queue_full_warnings'] for check in checks)}; "
        f"one metric collection at the end returned "
        f"{min(check['otel_cache_metric_points'] for check in checks)}+ otel_cache points per process.",
    ]
    return lines


def _ratio_cell(row: dict[str, Any], ratio: Sequence[float] | None) -> str:
    if ratio is None:
        return "1.00x" if row["variant"] == "fastapi" else ""
    return f"{ratio[0]:.2f}x ({ratio[1]:.2f}..{ratio[2]:.2f})"


def _http_lines(result: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    http = result["http"]
    config = http["config"]
    cpu = http["server_cpu"]
    pinned = (
        f"server pinned to CPU {cpu}, load generator to CPU {http['client_cpu']}"
        if cpu is not None
        else "not pinned (fewer than 2 CPUs available)"
    )
    lines = [
        "",
        f"#### FastAPI request through a @cached endpoint (a hit): GET {PATH}, one uvicorn worker",
        "",
        f"- {config['rounds']} round(s) of fresh servers, each warmed up {config['warmup_s']:g} s, then "
        f"loaded in turn for {config['slices']} slices of {config['slice_s']:g} s each (order reversed "
        f"every other slice); {config['concurrency']} keep-alive connections (closed loop); {pinned}; "
        f"metrics collected every {config['metric_interval_s']:g} s.",
        "- req/s: median over slices (min..max); p50, p99, server CPU µs/req (every server thread): "
        "median over slices; `÷ fastapi`: median (p25..p75) of the ratios of slices taken side by side; "
        "server CPU: share of the server's CPU the server used / anything else used (median over slices).",
        "",
    ]
    head = [
        "variant", "req/s", "min..max", "p50 ms", "p99 ms", "server CPU µs/req", "req/s ÷ fastapi",
        "CPU/req ÷ fastapi", "server CPU: ours / others", "server spans/req (≈)", "otel_cache spans",
    ]  # fmt: skip
    cells = []
    for row in rows:
        cpu_us, busy, others = row["cpu_us_per_request"], row["server_busy"], row["others_share"]
        cells.append(
            [
                row["variant"],
                f"{row['qps']:,.0f}",
                f"{row['qps_low']:,.0f}..{row['qps_high']:,.0f}",
                f"{row['p50_ms']:.2f}",
                f"{row['p99_ms']:.2f}",
                "" if cpu_us is None else f"{cpu_us:,.0f}",
                _ratio_cell(row, row["qps_ratio"]),
                _ratio_cell(row, row["cpu_ratio"]),
                "" if busy is None else f"{busy:.2f} / " + ("?" if others is None else f"{others:.2f}"),
                "" if row["server_spans_per_request"] is None else f"{row['server_spans_per_request']:.2f}",
                str(row["otel_cache_spans"]),
            ]
        )
    lines += _table(head, cells)
    client = max(row["client_cpu_max"] for row in rows)
    others_max = max((row["others_share"] for row in rows if row["others_share"] is not None), default=None)
    busy_min = min((row["server_busy"] for row in rows if row["server_busy"] is not None), default=None)
    note = (
        f"- load generator CPU at most {client:.2f} of a core; errors {sum(row['errors'] for row in rows)}; "
        f"cache hits {min(row['hit_share'] for row in rows):.1%} of measured requests"
    )
    if client >= 0.9:
        note += "; the load generator was saturated: it, not the server, set the pace"
    elif others_max is not None and others_max > _BUSY:
        note += (
            f"; other work took up to {others_max:.0%} of the server's CPU: req/s and latency fall with "
            "that share, whatever the variant (server CPU µs/req is the steadier figure)"
        )
    elif busy_min is not None and busy_min < 0.9:
        note += "; a server was not saturated"
    lines += ["", note]
    return lines


def _together_lines(result: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    http = result["http"]
    config = http["config"]
    where = "CPU " + str(http["server_cpu"]) if http["server_cpu"] is not None else "the same CPUs"
    lines = [
        "",
        f"#### The same servers side by side: all {len(rows)} loaded at once on {where}",
        "",
        f"- once per round, {config['together_s']:g} s, {config['concurrency']} connections each: the "
        "scheduler shares the CPU among them, so anything else that runs slows them all alike and their "
        "CPU costs per request compare under the very same conditions. req/s is each server's share "
        "(median over rounds); `÷ fastapi`: median (min..max) of the per-round ratios.",
        "",
    ]
    head = ["variant", "server CPU µs/req", "CPU/req ÷ fastapi", "req/s (its share)"]
    cells = []
    for row in rows:
        cpu, ratio = row["cpu_us_per_request"], row["cpu_ratio"]
        cells.append(
            [
                row["variant"],
                "" if cpu is None else f"{cpu:,.0f}",
                "" if ratio is None else f"{ratio[0]:.2f}x ({ratio[1]:.2f}..{ratio[2]:.2f})",
                f"{row['qps']:,.0f}",
            ]
        )
    return lines + _table(head, cells)


def markdown(result: dict[str, Any]) -> str:
    """The report: facts about the run, then the tables."""
    meta = result["meta"]
    summary = summarise(result)
    lines = [
        f"- {meta['date']} | {meta['cpu']} | nproc {meta['nproc']} | {meta['python']} | "
        f"otel_cache at {meta.get('source') or 'unknown commit'}",
        "- packages: "
        + ", ".join(f"{name} {version}" for name, version in meta["packages"].items() if version),
        "- not installed: "
        + (", ".join(name for name, version in meta["packages"].items() if not version) or "-"),
    ]
    share = meta.get("cpu_share") or {}
    if share.get("others") is not None:
        lines.append(
            f"- other processes used {share['others']:.0%} of the CPUs during the run (steal "
            f"{share['steal']:.0%}); run took {meta['elapsed_s']} s"
            + (" - a busy machine: figures are inflated and vary more" if share["others"] > _BUSY else "")
        )
    if summary["micro"]:
        lines.append(
            f"- L1 rows: ns/op, median; gc off while timing; loop overhead included; "
            f"{meta['processes']} process(es) x {meta['repeats']} interleaved rounds of >= "
            f"{meta['target_s'] * 1e3:g} ms runs. b/a and b - a are paired: taken round by round "
            "((a) and (b) of a round ran side by side), median over rounds, then over processes; "
            "on a busy machine they are steadier than the ns/op columns, which may come from "
            "different rounds and processes."
        )
        lines += _micro_lines(result, summary["micro"])
    if summary["http"]:
        lines += _http_lines(result, summary["http"])
    if summary["together"]:
        lines += _together_lines(result, summary["together"])
    return "\n".join(lines)


# -- driver -------------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _micro_child(config: Config, index: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.telemetry_overhead", "--child"]
    command += ["--repeats", str(config.repeats), "--target-ms", str(config.target_s * 1e3)]
    _progress(f"L1 process {index + 1}/{config.processes}")
    done = subprocess.run(command, cwd=_ROOT, stdout=subprocess.PIPE, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for package in _PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def run(config: Config, progress: Callable[[str], None] = _progress) -> dict[str, Any]:
    """The whole benchmark; raw results with the run's facts under ``meta``."""
    cpu = CpuShare()
    started = time.perf_counter()
    micro: list[dict[str, Any]] = []
    if config.part in ("all", "l1"):
        if config.processes == 1:
            micro = [
                run_micro(micro_rows(), repeats=config.repeats, target_s=config.target_s, progress=progress)
            ]
        else:
            micro = [_micro_child(config, index) for index in range(config.processes)]
    http = run_http(config.http(), progress) if config.part in ("all", "http") else None
    meta = {
        **machine_facts(),
        "packages": _versions(),
        **asdict(config),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "cpu_share": cpu.stop(),
    }
    return {"meta": meta, "micro": micro, "http": http}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.telemetry_overhead", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of about 15 s")
    parser.add_argument("--part", choices=("all", "l1", "http"), help="run one part only")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw results to PATH")
    parser.add_argument("--processes", type=int, help="fresh processes for the L1 part (full: 3)")
    parser.add_argument("--repeats", type=int, help="timed rounds per L1 row and process (full: 7)")
    parser.add_argument("--target-ms", type=float, help="least duration of one timed L1 run (full: 50)")
    parser.add_argument("--http-rounds", type=int, help="HTTP rounds, each with fresh servers (full: 3)")
    parser.add_argument("--http-slices", type=int, help="slices per variant and round (full: 16)")
    parser.add_argument("--http-slice-s", type=float, help="seconds of one slice (full: 0.5)")
    parser.add_argument(
        "--http-together-s", type=float, help="seconds of the side-by-side load per round (full: 4)"
    )
    parser.add_argument("--http-warmup", type=float, help="unmeasured seconds per server and round (full: 1)")
    parser.add_argument("--concurrency", type=int, help="keep-alive connections of the load (full: 16)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _config(args: argparse.Namespace) -> Config:
    config = QUICK if args.quick else FULL
    overrides = {
        "processes": args.processes,
        "repeats": args.repeats,
        "target_s": args.target_ms / 1e3 if args.target_ms is not None else None,
        "http_rounds": args.http_rounds,
        "http_slices": args.http_slices,
        "http_slice_s": args.http_slice_s,
        "http_together_s": args.http_together_s,
        "http_warmup_s": args.http_warmup,
        "concurrency": args.concurrency,
        "part": args.part,
    }
    return replace(config, **{key: value for key, value in overrides.items() if value is not None})


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    config = _config(args)
    if args.child:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON alone
            result = run_micro(
                micro_rows(), repeats=config.repeats, target_s=config.target_s, progress=_progress
            )
        json.dump(result, sys.stdout)
        return 0
    result = run(config)
    print(markdown(result))
    _progress(f"total {result['meta']['elapsed_s']} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
