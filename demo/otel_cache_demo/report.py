"""What a demo run measured, the figures derived from it, and the report folder written from it.

::

    result = DemoResult(...)                    # filled in by otel_cache_demo.runner
    rows = summary_rows(result)                 # the summary table (the terminal and report.md)
    folder = write_report(result, Path("reports/demo-20261125-031500"))
    # folder/report.md, folder/results.json, folder/qps.png, p99.png, loop_lag.png

Everything here but :func:`write_report` and :func:`write_charts` is pure: the
arithmetic over histogram buckets and counters, the per-mode summaries and the
comparison with ADR-014's claims, so that the tests check it on made-up data.

**Server-side figures** come from two scrapes of a service's ``/metrics`` (a
:class:`ServerWindow` is their difference): quantiles from the cumulative histogram
buckets, interpolated linearly inside the bucket as Prometheus' ``histogram_quantile``
does (so a p99 is never finer than the bucket bounds of
``otel_cache.telemetry.names``); ratios and rates from counters.

**Client-side figures** come from the load generator: QPS is responses over seconds;
a round's p50 and p99 are exact (nearest rank over the round's responses); a mode's
p50 and p99 are the median of its rounds' values, with the lowest and highest round
beside it.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ADR_P99_CHANGE",
    "ADR_QPS_RATIO",
    "Comparison",
    "DemoResult",
    "ModeSummary",
    "RoundResult",
    "SecondSample",
    "ServerWindow",
    "SummaryRow",
    "compare",
    "histogram_quantile",
    "reading",
    "render_markdown",
    "summarise",
    "summary_rows",
    "write_charts",
    "write_report",
]

ADR_QPS_RATIO = 2.1  # ADR-014: "QPS: 2.1x improvement"
ADR_P99_CHANGE = -0.35  # ADR-014: "P99 Latency: -35% reduction"
MODES = ("sync", "async")
CLIENT_SATURATED = 0.9  # loadgen.SATURATED: the client's thread used 90 % of a core
CORE_SATURATED = 0.95  # the load generator's core was this busy (with Redis, the proxy, the runner)
BUSY_MACHINE = 0.10  # other processes' share of all CPUs above which a run is flagged

Buckets = dict[float, float]  # upper bound (le) -> cumulative count; +inf included


# -- histogram and counter arithmetic --------------------------------------------------------


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile of cumulative ``buckets`` as Prometheus computes it; ``None`` if empty.

    Linear interpolation inside the bucket that holds the rank (the first bucket starts
    at 0); a rank in the ``+Inf`` bucket gives the highest finite bound.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be between 0 and 1")
    bounds = sorted(buckets)
    if not bounds or not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound if len(bounds) > 1 else None
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def _bucket_delta(after: Mapping[float, float], before: Mapping[float, float]) -> Buckets:
    # A counter that went down (the service restarted) counts from zero, as rate() does.
    return {
        le: (count - before.get(le, 0.0)) if count >= before.get(le, 0.0) else count
        for le, count in after.items()
    }


def _bucket_sum(parts: Iterable[Mapping[float, float]]) -> Buckets:
    total: Buckets = {}
    for part in parts:
        for le, count in part.items():
            total[le] = total.get(le, 0.0) + count
    return total


def _counter_delta(after: float, before: float) -> float:
    return after - before if after >= before else after


@dataclass(frozen=True)
class ServerSnapshot:
    """What one scrape of a service's ``/metrics`` (and its process's CPU time) said."""

    at: float  # time.monotonic() of the scrape
    cpu_s: float  # the service process's CPU seconds (all threads)
    lag: Buckets = field(default_factory=dict)
    lag_max_s: float | None = None  # the gauge: longest lag since the previous scrape
    lock_wait: Buckets = field(default_factory=dict)  # the L1 lock
    flight_wait: Buckets = field(default_factory=dict)  # callers waiting for another's load
    l1_hits: float = 0.0
    l1_misses: float = 0.0
    l2_hits: float = 0.0
    l2_misses: float = 0.0
    evictions: float = 0.0
    l2_errors: float = 0.0
    l2_get: Buckets = field(default_factory=dict)  # Redis GET durations (otel_cache.operation.duration)


@dataclass(frozen=True)
class ServerWindow:
    """A service's figures between two scrapes (or a merge of such windows)."""

    seconds: float
    cpu_s: float
    lag: Buckets
    lag_max_s: float | None
    lock_wait: Buckets
    l1_hits: float
    l1_misses: float
    l2_hits: float
    l2_misses: float
    evictions: float
    l2_errors: float
    flight_wait: Buckets = field(default_factory=dict)
    l2_get: Buckets = field(default_factory=dict)

    @classmethod
    def between(cls, before: ServerSnapshot, after: ServerSnapshot) -> ServerWindow:
        """From two scrapes of one service (``after`` carries the lag gauge of the window)."""
        return cls(
            seconds=max(0.0, after.at - before.at),
            cpu_s=max(0.0, after.cpu_s - before.cpu_s),
            lag=_bucket_delta(after.lag, before.lag),
            lag_max_s=after.lag_max_s,
            lock_wait=_bucket_delta(after.lock_wait, before.lock_wait),
            flight_wait=_bucket_delta(after.flight_wait, before.flight_wait),
            l1_hits=_counter_delta(after.l1_hits, before.l1_hits),
            l1_misses=_counter_delta(after.l1_misses, before.l1_misses),
            l2_hits=_counter_delta(after.l2_hits, before.l2_hits),
            l2_misses=_counter_delta(after.l2_misses, before.l2_misses),
            evictions=_counter_delta(after.evictions, before.evictions),
            l2_errors=_counter_delta(after.l2_errors, before.l2_errors),
            l2_get=_bucket_delta(after.l2_get, before.l2_get),
        )

    @classmethod
    def merge(cls, windows: Sequence[ServerWindow]) -> ServerWindow | None:
        """The windows as one (sums; the lag max is the largest); ``None`` for none."""
        if not windows:
            return None
        maxima = [w.lag_max_s for w in windows if w.lag_max_s is not None]
        return cls(
            seconds=sum(w.seconds for w in windows),
            cpu_s=sum(w.cpu_s for w in windows),
            lag=_bucket_sum(w.lag for w in windows),
            lag_max_s=max(maxima) if maxima else None,
            lock_wait=_bucket_sum(w.lock_wait for w in windows),
            flight_wait=_bucket_sum(w.flight_wait for w in windows),
            l1_hits=sum(w.l1_hits for w in windows),
            l1_misses=sum(w.l1_misses for w in windows),
            l2_hits=sum(w.l2_hits for w in windows),
            l2_misses=sum(w.l2_misses for w in windows),
            evictions=sum(w.evictions for w in windows),
            l2_errors=sum(w.l2_errors for w in windows),
            l2_get=_bucket_sum(w.l2_get for w in windows),
        )

    @property
    def lag_p99_s(self) -> float | None:
        """Interpolated in its bucket, so capped at the longest lag seen (the gauge) when that is known."""
        p99 = histogram_quantile(0.99, self.lag)
        if p99 is not None and self.lag_max_s is not None and self.lag_max_s > 0:
            return min(p99, self.lag_max_s)
        return p99

    @property
    def lag_samples(self) -> float:
        return max(self.lag.values(), default=0.0)

    @property
    def lock_wait_p99_s(self) -> float | None:
        return histogram_quantile(0.99, self.lock_wait)

    @property
    def lock_waits(self) -> float:
        """Contended acquisitions of the L1 lock timed in the window."""
        return max(self.lock_wait.values(), default=0.0)

    @property
    def flight_wait_p99_s(self) -> float | None:
        return histogram_quantile(0.99, self.flight_wait)

    @property
    def flight_waits(self) -> float:
        """Callers that waited for another caller's load of the same key (single-flight)."""
        return max(self.flight_wait.values(), default=0.0)

    @property
    def hit_ratio_l1(self) -> float | None:
        return _ratio(self.l1_hits, self.l1_hits + self.l1_misses)

    @property
    def hit_ratio_l2(self) -> float | None:
        return _ratio(self.l2_hits, self.l2_hits + self.l2_misses)

    @property
    def evictions_per_s(self) -> float | None:
        return self.evictions / self.seconds if self.seconds > 0 else None

    @property
    def cpu_utilisation(self) -> float | None:
        """The service's CPU seconds over wall seconds (1.0: the whole of its core)."""
        return self.cpu_s / self.seconds if self.seconds > 0 else None


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


# -- what a run records --------------------------------------------------------------------------


@dataclass(frozen=True)
class SecondSample:
    """One second of load on one mode: the client's view, and the service's if its scrape succeeded.

    ``t_s`` counts from the start of the run's first phase; ``mode_s`` from the start of the
    mode's measured time (``None`` in the warm-up).
    """

    mode: str
    phase: str  # "warmup" | "round"
    round: int | None  # the mode's round, 0-based; None in the warm-up
    t_s: float
    mode_s: float | None
    requests: int
    errors: int
    p50_s: float | None
    p99_s: float | None
    client_cpu_s: float
    server: ServerWindow | None


@dataclass(frozen=True)
class RoundResult:
    """One measured round of one mode."""

    mode: str
    index: int  # the mode's round, 0-based
    order: int  # place among all measured rounds, 0-based
    started_s: float  # since the run's start
    duration_s: float
    requests: int
    errors: int
    errors_by_kind: dict[str, int]
    qps: float
    p50_s: float | None
    p99_s: float | None
    max_s: float | None
    client_hit_ratio: float | None
    client_cpu_utilisation: float
    server: ServerWindow | None
    service_core_busy: float | None  # /proc/stat: the service's core, all processes
    load_core_busy: float | None  # /proc/stat: the load generator's core, all processes


@dataclass(frozen=True)
class ModeSummary:
    """One mode over all its measured rounds."""

    mode: str
    rounds: int
    seconds: float
    requests: int
    errors: int
    qps: float
    p50_s: float | None
    p99_s: float | None
    p99_min_s: float | None
    p99_max_s: float | None
    max_s: float | None
    server: ServerWindow | None
    client_cpu_max: float
    load_core_busy_max: float | None
    client_hit_ratio: float | None = None  # responses with X-Cache: HIT over those with the header

    @property
    def lag_p99_s(self) -> float | None:
        return None if self.server is None else self.server.lag_p99_s

    @property
    def lag_max_s(self) -> float | None:
        return None if self.server is None else self.server.lag_max_s

    @property
    def lock_wait_p99_s(self) -> float | None:
        return None if self.server is None else self.server.lock_wait_p99_s


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(mode: str, rounds: Sequence[RoundResult]) -> ModeSummary:
    """The mode's figures over ``rounds`` (those of other modes are ignored)."""
    mine = [r for r in rounds if r.mode == mode]
    seconds = sum(r.duration_s for r in mine)
    requests = sum(r.requests for r in mine)
    p99s = [r.p99_s for r in mine if r.p99_s is not None]
    maxima = [r.max_s for r in mine if r.max_s is not None]
    core = [r.load_core_busy for r in mine if r.load_core_busy is not None]
    said = [(r.client_hit_ratio, r.requests) for r in mine if r.client_hit_ratio is not None]
    answered = sum(n for _, n in said)
    return ModeSummary(
        mode=mode,
        rounds=len(mine),
        seconds=seconds,
        requests=requests,
        errors=sum(r.errors for r in mine),
        qps=requests / seconds if seconds > 0 else 0.0,
        p50_s=_median(r.p50_s for r in mine),
        p99_s=_median(p99s),
        p99_min_s=min(p99s, default=None),
        p99_max_s=max(p99s, default=None),
        max_s=max(maxima, default=None),
        server=ServerWindow.merge([r.server for r in mine if r.server is not None]),
        client_cpu_max=max((r.client_cpu_utilisation for r in mine), default=0.0),
        load_core_busy_max=max(core, default=None),
        client_hit_ratio=sum(ratio * n for ratio, n in said) / answered if answered else None,
    )


@dataclass(frozen=True)
class Comparison:
    """async against sync, and against ADR-014's claims.

    ``qps_ratio`` is async QPS over sync QPS (all measured rounds); ``p99_change`` is the
    async p99 over the sync p99, minus 1 (-0.35 is the ADR's -35 %). The ``pair_*`` lists
    give the same for each pair of rounds (the i-th round of each mode), so their spread
    shows how steady the machine was.
    """

    qps_ratio: float | None
    p99_change: float | None
    p50_change: float | None
    lag_p99_ratio: float | None
    pair_qps_ratios: list[float]
    pair_p99_changes: list[float]
    paced: bool = False  # both modes were sent the same requests/s: their QPS cannot differ

    @property
    def qps_verdict(self) -> str:
        if self.paced:
            return "not compared: a paced load sends both modes the same requests/s"
        return _verdict_ratio(self.qps_ratio)

    @property
    def p99_verdict(self) -> str:
        return _verdict_change(self.p99_change)


def _verdict_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "not measured"
    if ratio >= ADR_QPS_RATIO:
        return f"meets the ADR's {ADR_QPS_RATIO}x (beats it by {ratio / ADR_QPS_RATIO - 1:.0%})"
    return f"misses the ADR's {ADR_QPS_RATIO}x ({ratio:.2f}x is {ratio / ADR_QPS_RATIO:.0%} of it)"


def _verdict_change(change: float | None) -> str:
    if change is None:
        return "not measured"
    # In whole percentage points, as the table shows them: -34.6 % is shown -35 %, which meets -35 %.
    points = round(ADR_P99_CHANGE * 100) - round(change * 100)
    unit = "point" if abs(points) == 1 else "points"
    if points == 0:
        return f"meets the ADR's {ADR_P99_CHANGE:.0%} (equals it)"
    if points > 0:
        return f"meets the ADR's {ADR_P99_CHANGE:.0%} (beats it by {points} {unit})"
    return f"misses the ADR's {ADR_P99_CHANGE:.0%} (by {-points} {unit})"


def compare(
    sync: ModeSummary, async_: ModeSummary, rounds: Sequence[RoundResult], *, paced: bool = False
) -> Comparison:
    """The comparison of two mode summaries (and of each pair of their rounds)."""
    by_mode = {mode: sorted((r for r in rounds if r.mode == mode), key=lambda r: r.index) for mode in MODES}
    pair_qps = [a.qps / s.qps for s, a in zip(by_mode["sync"], by_mode["async"], strict=False) if s.qps > 0]
    pair_p99 = [
        a.p99_s / s.p99_s - 1
        for s, a in zip(by_mode["sync"], by_mode["async"], strict=False)
        if s.p99_s and a.p99_s is not None
    ]

    def change(new: float | None, old: float | None) -> float | None:
        return new / old - 1 if new is not None and old else None

    return Comparison(
        qps_ratio=async_.qps / sync.qps if sync.qps > 0 and async_.rounds else None,
        p99_change=change(async_.p99_s, sync.p99_s),
        p50_change=change(async_.p50_s, sync.p50_s),
        lag_p99_ratio=(
            async_.lag_p99_s / sync.lag_p99_s if async_.lag_p99_s is not None and sync.lag_p99_s else None
        ),
        pair_qps_ratios=pair_qps,
        pair_p99_changes=pair_p99,
        paced=paced,
    )


@dataclass
class DemoResult:
    """Everything a run measured, with its settings and the machine it ran on."""

    settings: dict[str, Any]
    machine: dict[str, Any]
    started_at: str  # ISO 8601, UTC
    finished_at: str
    seconds: list[SecondSample]
    rounds: list[RoundResult]
    other_cpu_share: float | None = None  # other processes' share of all CPUs while measuring
    notes: list[str] = field(default_factory=list)

    def summary(self, mode: str) -> ModeSummary:
        return summarise(mode, self.rounds)

    def comparison(self) -> Comparison:
        paced = bool(self.settings.get("rate"))
        return compare(self.summary("sync"), self.summary("async"), self.rounds, paced=paced)

    def warnings(self) -> list[str]:
        """What makes the figures less trustworthy, in words (empty when nothing does)."""
        found: list[str] = []
        for mode in MODES:
            s = self.summary(mode)
            if s.errors:
                found.append(f"{mode}: {s.errors} requests failed")
            if s.client_cpu_max >= CLIENT_SATURATED:
                found.append(
                    f"{mode}: the load generator used {s.client_cpu_max:.0%} of its core: "
                    "it may have set the pace"
                )
            if s.load_core_busy_max is not None and s.load_core_busy_max >= CORE_SATURATED:
                found.append(
                    f"{mode}: the load generator's core was {s.load_core_busy_max:.0%} busy "
                    "(load generator, runner, Redis, proxy and other processes)"
                )
        if self.other_cpu_share is not None and self.other_cpu_share > BUSY_MACHINE:
            found.append(
                f"other processes used {self.other_cpu_share:.0%} of the CPUs while measuring "
                f"(above {BUSY_MACHINE:.0%}): the machine was busy, the figures are noisier"
            )
        return found

    def loadgen_verdict(self) -> str:
        busiest = max((self.summary(mode).client_cpu_max for mode in MODES), default=0.0)
        if busiest >= CLIENT_SATURATED:
            return f"{busiest:.0%} of a core at most: WARNING, it may be the bottleneck"
        return f"{busiest:.0%} of a core at most: not the bottleneck"

    def to_dict(self) -> dict[str, Any]:
        """JSON data: the raw record plus the derived figures."""
        data = asdict(self)
        data["summary"] = {}
        for mode in MODES:
            s = self.summary(mode)
            entry = asdict(s)
            entry.update(
                lag_p99_s=s.lag_p99_s,
                lag_max_s=s.lag_max_s,
                lock_wait_p99_s=s.lock_wait_p99_s,
                lock_waits=None if s.server is None else s.server.lock_waits,
                hit_ratio_l1=None if s.server is None else s.server.hit_ratio_l1,
                hit_ratio_l2=None if s.server is None else s.server.hit_ratio_l2,
                evictions_per_s=None if s.server is None else s.server.evictions_per_s,
                service_cpu_utilisation=None if s.server is None else s.server.cpu_utilisation,
            )
            data["summary"][mode] = entry
        comparison = self.comparison()
        data["comparison"] = asdict(comparison) | {
            "adr_qps_ratio": ADR_QPS_RATIO,
            "adr_p99_change": ADR_P99_CHANGE,
            "qps_verdict": comparison.qps_verdict,
            "p99_verdict": comparison.p99_verdict,
        }
        data["warnings"] = self.warnings()
        safe: dict[str, Any] = _json_safe(data)
        return safe


def _json_safe(value: Any) -> Any:
    # Histogram bounds are float keys (inf among them): JSON wants strings, and no Infinity.
    if isinstance(value, dict):
        return {_key(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _key(key: object) -> str:
    if isinstance(key, float):
        return "+Inf" if math.isinf(key) else repr(key)
    return str(key)


# -- the summary table --------------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryRow:
    """One line of the summary table: a figure for each mode, their comparison, the ADR's claim."""

    metric: str
    sync: str
    async_: str
    comparison: str = ""
    adr: str = ""


def ms(value: float | None, digits: int = 1) -> str:
    """Seconds as milliseconds, or "-"."""
    return "-" if value is None else f"{value * 1e3:,.{digits}f} ms"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _change(value: float | None) -> str:
    return "-" if value is None else f"{value:+.0%}"


def summary_rows(result: DemoResult) -> list[SummaryRow]:
    """The summary table: both modes side by side, async against sync, and the ADR's claims."""
    s, a = result.summary("sync"), result.summary("async")
    c = result.comparison()
    ss, sa = s.server, a.server

    def server(window: ServerWindow | None, attr: str) -> float | None:
        value: float | None = None if window is None else getattr(window, attr)
        return value

    def spread(summary: ModeSummary) -> str:
        if summary.p99_min_s is None or summary.p99_max_s is None or summary.rounds < 2:
            return ms(summary.p99_s)
        return f"{ms(summary.p99_s)} ({summary.p99_min_s * 1e3:,.0f}..{summary.p99_max_s * 1e3:,.0f})"

    pair_qps = (
        f" (pairs {min(c.pair_qps_ratios):.2f}..{max(c.pair_qps_ratios):.2f})"
        if len(c.pair_qps_ratios) > 1
        else ""
    )
    pair_p99 = (
        f" (pairs {min(c.pair_p99_changes):+.0%}..{max(c.pair_p99_changes):+.0%})"
        if len(c.pair_p99_changes) > 1
        else ""
    )
    lock_s = server(ss, "lock_waits")
    lock_a = server(sa, "lock_waits")
    return [
        SummaryRow(
            "QPS",
            f"{s.qps:,.0f}",
            f"{a.qps:,.0f}",
            f"{_x(c.qps_ratio)}{pair_qps}",
            f"{ADR_QPS_RATIO}x: {c.qps_verdict}",
        ),
        SummaryRow("p50 latency (client)", ms(s.p50_s), ms(a.p50_s), _change(c.p50_change)),
        SummaryRow(
            "p99 latency (client, median of rounds)",
            spread(s),
            spread(a),
            f"{_change(c.p99_change)}{pair_p99}",
            f"{ADR_P99_CHANGE:.0%}: {c.p99_verdict}",
        ),
        SummaryRow(
            "event-loop lag p99",
            ms(s.lag_p99_s),
            ms(a.lag_p99_s),
            _x(c.lag_p99_ratio),
        ),
        SummaryRow("event-loop lag max", ms(s.lag_max_s), ms(a.lag_max_s)),
        SummaryRow(
            "L1 lock wait p99 (contended waits)",
            f"{ms(server(ss, 'lock_wait_p99_s'), 2)} ({lock_s or 0:,.0f})",
            f"{ms(server(sa, 'lock_wait_p99_s'), 2)} ({lock_a or 0:,.0f})",
        ),
        SummaryRow(
            "single-flight wait p99 (waits)",
            f"{ms(server(ss, 'flight_wait_p99_s'))} ({server(ss, 'flight_waits') or 0:,.0f})",
            f"{ms(server(sa, 'flight_wait_p99_s'))} ({server(sa, 'flight_waits') or 0:,.0f})",
        ),
        SummaryRow("hit ratio, responses (X-Cache)", pct(s.client_hit_ratio), pct(a.client_hit_ratio)),
        SummaryRow("hit ratio L1", pct(server(ss, "hit_ratio_l1")), pct(server(sa, "hit_ratio_l1"))),
        SummaryRow("hit ratio L2", pct(server(ss, "hit_ratio_l2")), pct(server(sa, "hit_ratio_l2"))),
        SummaryRow("evictions/s", _num(server(ss, "evictions_per_s")), _num(server(sa, "evictions_per_s"))),
        SummaryRow(
            "service CPU (its core)", pct(server(ss, "cpu_utilisation")), pct(server(sa, "cpu_utilisation"))
        ),
        SummaryRow("errors", f"{s.errors:,}", f"{a.errors:,}"),
        SummaryRow(
            "load generator CPU (max of rounds)",
            pct(s.client_cpu_max),
            pct(a.client_cpu_max),
            result.loadgen_verdict(),
        ),
    ]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


# -- report.md --------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = [":---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def summary_markdown(result: DemoResult) -> list[str]:
    """The summary table in markdown."""
    rows = summary_rows(result)
    return _table(
        ["", "sync", "async", "async vs sync", "ADR-014"],
        [(r.metric, r.sync, r.async_, r.comparison, r.adr) for r in rows],
        "lrrll",
    )


def _rounds_markdown(result: DemoResult) -> list[str]:
    rows = []
    for r in sorted(result.rounds, key=lambda r: r.order):
        w = r.server
        rows.append(
            (
                str(r.order + 1),
                r.mode,
                f"{r.started_s:.0f}",
                f"{r.qps:,.0f}",
                ms(r.p50_s),
                ms(r.p99_s),
                ms(None if w is None else w.lag_p99_s),
                ms(None if w is None else w.lag_max_s),
                pct(None if w is None else w.cpu_utilisation),
                pct(r.client_cpu_utilisation),
                pct(r.load_core_busy),
                str(r.errors),
            )
        )
    return _table(
        [
            "#",
            "mode",
            "start s",
            "QPS",
            "p50",
            "p99",
            "loop lag p99",
            "loop lag max",
            "service CPU",
            "loadgen CPU",
            "load core busy",
            "errors",
        ],
        rows,
        "llrrrrrrrrrr",
    )


def reading(result: DemoResult) -> list[str]:
    """A plain reading of the figures (what they say, not why: docs/benchmarks.md has the why)."""
    s, a = result.summary("sync"), result.summary("async")
    c = result.comparison()
    lines = []
    if c.paced:
        lines.append(
            f"- **Throughput**: not compared: the load was paced, {result.settings['rate']:g} requests/s "
            f"to each mode, and they served {s.qps:,.0f} and {a.qps:,.0f} (sync, async); a closed-loop "
            "run (without `--rate`) compares throughput."
        )
    elif c.qps_ratio is not None:
        lines.append(
            f"- **Throughput**: async served {c.qps_ratio:.2f}x the requests per second of sync "
            f"({a.qps:,.0f} vs {s.qps:,.0f}); this {c.qps_verdict}."
        )
    if c.p99_change is not None:
        closed = not result.settings.get("rate")
        lines.append(
            f"- **Tail latency**: the async p99 is {c.p99_change:+.0%} against sync "
            f"({ms(a.p99_s)} vs {ms(s.p99_s)}); this {c.p99_verdict}."
            + (
                " In a closed loop each connection waits for its answer, so latency is about "
                "concurrency / QPS: a mode that serves more requests per second shows lower latency "
                "for that reason alone (`--rate` compares latencies at the same offered load)."
                if closed
                else ""
            )
        )
    if s.lag_p99_s is not None and a.lag_p99_s is not None:
        bucket_s, bucket_a = _lag_bucket(s.lag_p99_s), _lag_bucket(a.lag_p99_s)
        if bucket_s == bucket_a:
            verdict = (
                f"both in the histogram's {bucket_s[0] * 1e3:g}..{bucket_s[1] * 1e3:g} ms bucket, "
                "so no difference can be read from them"
            )
        else:
            verdict = f"the {'async' if a.lag_p99_s < s.lag_p99_s else 'sync'} mode's loop answered sooner"
        lines.append(
            f"- **Event loop**: lag p99 {ms(s.lag_p99_s)} (sync) vs {ms(a.lag_p99_s)} (async), "
            f"max {ms(s.lag_max_s)} vs {ms(a.lag_max_s)}: {verdict}."
        )
    cpu_s = None if s.server is None else s.server.cpu_utilisation
    cpu_a = None if a.server is None else a.server.cpu_utilisation
    if cpu_s is not None and cpu_a is not None:
        bound = min(cpu_s, cpu_a) >= 0.9
        lines.append(
            f"- **CPU**: each service had one core; sync used {cpu_s:.0%} of it, async {cpu_a:.0%}. "
            + (
                "Both were CPU-bound, so the QPS ratio is the ratio of CPU per request."
                if bound
                else "A service below ~90 % of its core was waiting (for Redis, the GIL or its clients), "
                "not computing."
            )
        )
    lines.append(f"- **Load generator**: {result.loadgen_verdict()}.")
    for warning in result.warnings():
        lines.append(f"- **Warning**: {warning}.")
    return lines


def _load_words(settings: Mapping[str, Any]) -> str:
    if settings.get("rate"):
        return (
            f"paced load, {settings['rate']:g} requests/s to each mode over up to "
            f"{settings.get('concurrency')} connections (the same offered load for both: compare latencies)"
        )
    return (
        f"the load generator's closed loop, {settings.get('concurrency')} connections each sending "
        "its next request when the previous one is answered (each mode as fast as it can: compare QPS; "
        "latency is then about concurrency / QPS)"
    )


def _lag_bucket(value: float) -> tuple[float, float]:
    """The loop-lag histogram bucket (lower, upper] that holds ``value``."""
    from otel_cache.telemetry.names import LAG_BUCKETS

    lower = 0.0
    for bound in LAG_BUCKETS:
        if value <= bound:
            return lower, bound
        lower = bound
    return lower, math.inf


def render_markdown(result: DemoResult, charts: Sequence[str] = ()) -> str:
    """report.md."""
    st, m = result.settings, result.machine
    lines = [
        "# otel-cache demo: sync vs async",
        "",
        f"Run from {result.started_at} to {result.finished_at} (UTC) on otel_cache "
        f"{m.get('commit', '?')}: `{st.get('command', 'otel-cache demo')}`.",
        "",
        "## Summary",
        "",
        *summary_markdown(result),
        "",
        "## Reading",
        "",
        *reading(result),
        "",
        "## Method",
        "",
        f"- **Scenario**: the demo service (`python -m otel_cache_demo.service`) in each mode, "
        f"{st.get('backend', '?')}; {_load_words(st)}, Zipf-popular traversals ({st.get('queries')} "
        f"queries, s = {st.get('zipf_s')}, {st.get('graphql_share', 0):.0%} by GraphQL, seed "
        f"{st.get('seed')}).",
        f"- **Same CPU budget**: {st.get('pinning', '?')}",
        f"- **Schedule**: {st.get('warmup_s'):g} s of warm-up per mode (not counted), then "
        f"{st.get('rounds')} rounds of {st.get('round_s'):g} s per mode, strictly alternating (sync, "
        "async, sync, async...): both modes see the same machine, and each round of a mode follows "
        "one round of the other, so both modes' cache entries (TTL 60 s) have aged alike. Both "
        "services run the whole time; only one is loaded at a time.",
        "- **Client-side figures** (QPS, p50, p99): from the load generator, per round; a mode's "
        "p50/p99 is the median of its rounds. **Server-side figures** (loop lag, lock wait, hit "
        "ratios, evictions, the L1 lock's contended waits, single-flight waits): from the "
        "service's `/metrics`, scraped once a second, as differences "
        "of counters and histogram buckets (quantiles interpolated in the bucket, as Prometheus "
        "does; the loop lag's buckets are 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100 ms...). "
        "The loop-lag max is the service's gauge (longest lag since the previous scrape); the "
        "loop-lag p99 is capped at it. The hit ratios per level are the cache's lookups "
        "(`otel_cache.requests`, one per call and level); the responses' hit ratio is the "
        "share of `X-Cache: HIT`.",
        "",
        "## Machine",
        "",
        *_table(["fact", "value"], [(k, str(v)) for k, v in m.items()], "ll"),
        "",
    ]
    if result.other_cpu_share is not None:
        lines += [
            f"Other processes used {result.other_cpu_share:.0%} of the CPUs while measuring "
            f"(/proc/stat, minus this run's processes).",
            "",
        ]
    lines += ["## Rounds", "", *_rounds_markdown(result), ""]
    if charts:
        lines += [
            "## Charts",
            "",
            "Per second of load. The x axis is each mode's measured time, its rounds end to end, so "
            "both modes' lines overlay; a dotted vertical is where a mode's round ends and its next "
            "one begins (one round of the other mode ran in between). Latencies and loop lag are the "
            "quantiles the tables report.",
            "",
        ]
        lines += [f"![{name}]({name})" for name in charts]
        lines.append("")
    if result.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in result.notes], ""]
    lines += [
        "## Settings",
        "",
        *_table(["setting", "value"], [(k, str(v)) for k, v in st.items()], "ll"),
        "",
        "`results.json` holds every second, every round and the summaries.",
        "",
    ]
    return "\n".join(lines)


# -- charts -----------------------------------------------------------------------------------

_COLOURS = {"sync": "tab:red", "async": "tab:blue"}


def _per_second(sample: SecondSample, value: str) -> float | None:
    """One chart value of one second (ms or percent), or None when not measured."""
    server = sample.server
    if value == "qps":
        return float(sample.requests)
    if value in ("p99", "p50"):
        latency = sample.p99_s if value == "p99" else sample.p50_s
        return None if latency is None else latency * 1e3
    if server is None:
        return None
    if value == "lag_p99":
        lag = server.lag_p99_s
    elif value == "lag_max":
        lag = server.lag_max_s
    elif value == "redis_p99":
        lag = histogram_quantile(0.99, server.l2_get)
    elif value in ("hit_l1", "hit_l2"):
        ratio = server.hit_ratio_l1 if value == "hit_l1" else server.hit_ratio_l2
        return None if ratio is None else ratio * 100
    else:
        raise ValueError(value)
    return None if lag is None else lag * 1e3


def _series(result: DemoResult, mode: str, value: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for sample in result.seconds:
        if sample.mode != mode or sample.mode_s is None:
            continue
        y = _per_second(sample, value)
        if y is not None:
            xs.append(sample.mode_s)
            ys.append(y)
    return xs, ys


# name, title, [(value, line style, legend)], y unit: what report.md shows, in its order.
_CHARTS = (
    ("qps.png", "Throughput", [("qps", "-", "")], "responses per second"),
    ("p99.png", "Client latency (the table's p50 and p99)", [("p99", "-", "p99"), ("p50", ":", "p50")], "ms"),
    (
        "loop_lag.png",
        "Event-loop lag (the table's p99, and the longest)",
        [("lag_p99", "-", "p99"), ("lag_max", ":", "max")],
        "ms",
    ),
    (
        "hit_ratio.png",
        "Hit ratio per level",
        [("hit_l1", "-", "L1"), ("hit_l2", ":", "L2 (after an L1 miss)")],
        "%",
    ),
    (
        "redis_latency.png",
        "Redis GET latency p99 (otel_cache.operation.duration)",
        [("redis_p99", "-", "")],
        "ms",
    ),
)


def write_charts(result: DemoResult, folder: Path) -> list[str]:
    """PNG charts of the per-second series, both modes on each; the file names of those with data.

    Linear axes from 0 with labelled ticks. The x axis is each mode's measured time (its
    rounds end to end, so the two modes' lines overlay); dotted verticals mark where a round
    ends and the mode's next round (after one round of the other mode) begins. Needs
    matplotlib (Agg backend).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    round_s = float(result.settings.get("round_s") or 0.0)
    rounds = int(result.settings.get("rounds") or 0)
    written = []
    for name, title, values, unit in _CHARTS:
        fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
        try:
            for mode in MODES:
                for value, style, legend in values:
                    xs, ys = _series(result, mode, value)
                    if xs:
                        label = f"{mode} {legend}".strip()
                        ax.plot(xs, ys, style, color=_COLOURS[mode], label=label, linewidth=1.4)
            if not ax.get_lines():
                continue  # nothing measured (no Redis: no Redis latency)
            for boundary in range(1, rounds):
                ax.axvline(boundary * round_s, color="grey", linestyle=":", linewidth=0.8)
            if rounds > 1:
                ax.plot([], [], color="grey", linestyle=":", linewidth=0.8, label="next round")
            ax.set_title(title)
            ax.set_xlabel("measured seconds of each mode (its rounds end to end)")
            ax.set_ylabel(unit)
            ax.set_ylim(bottom=0, top=100 if unit == "%" else None)
            ax.grid(True, alpha=0.3)
            ax.legend(loc="best")
            fig.tight_layout()
            fig.savefig(folder / name)
            written.append(name)
        finally:
            plt.close(fig)
    return written


def write_report(result: DemoResult, folder: Path) -> Path:
    """Write ``report.md``, ``results.json`` and the charts into ``folder`` (created); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    try:
        charts = write_charts(result, folder)
    except ImportError:
        charts = []
        result.notes.append("No charts: matplotlib is not installed (pip install matplotlib).")
    (folder / "report.md").write_text(render_markdown(result, charts), encoding="utf-8")
    return folder
