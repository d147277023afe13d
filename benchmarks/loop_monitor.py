"""What ``EventLoopMonitor`` costs while nothing blocks: ``python -m benchmarks.loop_monitor``.

Two measurements, in one process, with the monitors on an SDK ``MeterProvider`` (with
a reader) and an SDK ``TracerProvider``. Both count CPU time (``time.process_time``:
every thread of the process, the watchdog's included), which a neighbour process
taking the CPU does not inflate; wall time is shown beside it.

**1. Cost per wake-up, on an idle loop.** The loop has nothing to do but the monitor,
run fast so that its wake-ups add up to something measurable::

    idle loop          nothing                                  (the floor)
    bare sleeper       while True: await asyncio.sleep(0.001)   -> what any timer's wake-up costs
    sampler            interval 1 ms, no watchdog               -> CPU per sample
    sampler+watchdog   interval 1 ms, threshold 1 ms            -> minus the above, per watchdog wake-up

A sampler wake-up is a timer, a task step, two clock reads and a histogram record; a
watchdog wake-up is a futex wait ending, the GIL, a few attribute reads. Run 1000
times a second, every wake-up finds cold caches, as it will at 20 a second. From these
the cost of a setting is projected: ``1 / interval`` sampler and about
``1 / (threshold + interval / 2)`` watchdog wake-ups a second (the watchdog sleeps
until the sampler's current sleep is ``threshold`` overdue).

**2. A busy loop, with and without a monitor.** A fixed amount of loop work, the
runs interleaved (every round runs every setting once, in a rotating order)::

    round 1..repeats:  for each setting (rotated): start monitor -> time workload -> stop monitor

Workloads: ``sleep(0)`` (``await asyncio.sleep(0)`` in a loop: every iteration is one
turn of the event loop, the path the sampler's timer adds to) and ``cpu chunks``
(pure-Python work in slices of about 1 ms with a yield between: the loop thread always
wants the GIL, so each watchdog wake-up takes it away). Settings: ``off`` (no monitor;
one timer pending an hour ahead, as in any application with a timeout), ``off, no
timer`` (an empty timer heap: what a loop's first timer costs each turn), ``default``
(interval 50 ms, threshold 100 ms) and ``aggressive`` (interval 10 ms, threshold
20 ms). Overhead = median over rounds of (CPU time / CPU time of ``off`` in the same
round) - 1; the ``off`` row's spread ((max - min) / median) tells how much is noise.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from benchmarks.machine import machine_facts
from otel_cache.telemetry.loop_monitor import EventLoopMonitor

__all__ = ["main"]


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    interval: float | None  # None: no monitor
    threshold: float = 0.1
    watchdog: bool = True
    timer: bool = True  # a timer pending far ahead, as in any real application

    def sampler_per_s(self) -> float:
        return 0.0 if self.interval is None else 1 / self.interval

    def watchdog_per_s(self) -> float:
        if self.interval is None or not self.watchdog:
            return 0.0
        return 1 / (self.threshold + self.interval / 2)


BUSY_SETTINGS = (
    Setting("off", None),
    Setting("off, no timer", None, timer=False),
    Setting("default", 0.05, 0.1),
    Setting("aggressive", 0.01, 0.02),
)
PROJECTED = (Setting("default", 0.05, 0.1), Setting("no watchdog", 0.05, watchdog=False), BUSY_SETTINGS[3])


@dataclass(slots=True)
class Row:
    workload: str
    setting: Setting
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)


class Providers:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader], shutdown_on_exit=False)
        self.tracer_provider = TracerProvider(shutdown_on_exit=False)

    def monitor(self, setting: Setting) -> EventLoopMonitor:
        assert setting.interval is not None
        return EventLoopMonitor(
            interval=setting.interval,
            block_threshold=setting.threshold,
            watchdog=setting.watchdog,
            name=f"bench-{setting.name}",
            meter_provider=self.meter_provider,
            tracer_provider=self.tracer_provider,
        )

    def shutdown(self) -> None:
        self.reader.get_metrics_data()  # one collection: the observable callbacks ran at least once
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()


def _warn_blocks(monitor: EventLoopMonitor, what: str) -> None:  # the busy loop never blocks
    if monitor.blocks:
        print(f"warning: {what}: the loop blocked {monitor.blocks} times", file=sys.stderr)


# -- 1. cost per wake-up ------------------------------------------------------------------


async def _sleeper(interval: float, wakeups: list[int]) -> None:
    while True:
        await asyncio.sleep(interval)
        wakeups[0] += 1


async def _idle_cpu(
    providers: Providers, what: Setting | float | None, seconds: float
) -> tuple[float, float]:
    """CPU seconds per wall second of a loop that runs only ``what``, and its wake-ups per second.

    ``what``: a monitor's setting, the interval of a bare ``asyncio.sleep`` loop, or nothing.
    """
    gc.collect()
    monitor, sleeper, wakeups = None, None, [0]
    if isinstance(what, Setting):
        monitor = providers.monitor(what)
        monitor.start()
    elif what is not None:
        sleeper = asyncio.create_task(_sleeper(what, wakeups))
    await asyncio.sleep(0)
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if monitor is not None:
        wakeups[0] = monitor.samples
        await monitor.stop()
    if sleeper is not None:
        sleeper.cancel()
        await asyncio.wait({sleeper})
    return cpu / wall, wakeups[0] / wall


async def _wakeup_costs(providers: Providers, seconds: float, repeats: int) -> dict[str, float]:
    sampler = Setting("sampler", 0.001, 1.0, watchdog=False)
    both = Setting("sampler+watchdog", 0.001, 0.001)
    subjects: dict[str, Setting | float | None] = {
        "idle": None,
        "bare": 0.001,
        "sampler": sampler,
        "both": both,
    }
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in subjects}
    log = logging.getLogger("otel_cache.telemetry")
    level = log.level
    log.setLevel(logging.ERROR)  # a 1 ms threshold reports the machine's timer jitter as blocks
    try:
        for _ in range(repeats):
            for name, what in subjects.items():
                runs[name].append(await _idle_cpu(providers, what, seconds))
    finally:
        log.setLevel(level)
    cpu = {name: statistics.median(c for c, _ in results) for name, results in runs.items()}
    rate = {name: statistics.median(r for _, r in results) for name, results in runs.items()}
    per_timer = (cpu["bare"] - cpu["idle"]) / rate["bare"]
    per_sample = (cpu["sampler"] - cpu["idle"]) / rate["sampler"]
    # The watchdog's own wake-ups: CPU left over once the samples are paid for.
    per_watch = (cpu["both"] - cpu["idle"] - rate["both"] * per_sample) / both.watchdog_per_s()
    return {
        **{f"cpu_{name}": value for name, value in cpu.items()},
        **{f"rate_{name}": value for name, value in rate.items()},
        "per_timer_us": per_timer * 1e6,
        "per_sample_us": per_sample * 1e6,
        "per_watchdog_us": per_watch * 1e6,
    }


def _cost_table(costs: dict[str, float]) -> str:
    lines = [
        "| idle loop running | wake-ups/s | CPU share of one core | CPU per wake-up |",
        "|---|---:|---:|---:|",
        f"| nothing | | {costs['cpu_idle']:.3%} | |",
        f"| a bare `await asyncio.sleep(0.001)` loop | {costs['rate_bare']:.0f} | {costs['cpu_bare']:.2%} "
        f"| {costs['per_timer_us']:.1f} µs |",
        f"| the sampler, interval 1 ms | {costs['rate_sampler']:.0f} | {costs['cpu_sampler']:.2%} "
        f"| {costs['per_sample_us']:.1f} µs |",
        f"| sampler + watchdog, interval = threshold = 1 ms | {costs['rate_both']:.0f} "
        f"| {costs['cpu_both']:.2%} "
        f"| {costs['per_watchdog_us']:.1f} µs per watchdog wake-up |",
        "",
        f"A sample costs {costs['per_sample_us'] - costs['per_timer_us']:.1f} µs more than any timer's"
        " wake-up (the histogram record, two clock reads, a lock).",
        "",
        "| setting | sampler/s | watchdog/s | projected CPU share of one core |",
        "|---|---:|---:|---:|",
    ]
    for setting in PROJECTED:
        share = (
            setting.sampler_per_s() * costs["per_sample_us"]
            + setting.watchdog_per_s() * costs["per_watchdog_us"]
        ) / 1e6
        interval_ms = setting.interval * 1e3 if setting.interval is not None else 0.0
        lines.append(
            f"| {setting.name} (interval {interval_ms:.0f} ms, threshold {setting.threshold * 1e3:.0f} ms) "
            f"| {setting.sampler_per_s():.0f} | {setting.watchdog_per_s():.1f} | {share:.3%} |"
        )
    return "\n".join(lines)


# -- 2. a busy loop -------------------------------------------------------------------------


async def _sleep_zero(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _cpu_chunks(n: int) -> None:
    # n chunks of ~1 ms (20,000 additions each), yielding to the loop between them.
    for _ in range(n):
        total = 0
        for i in range(20_000):
            total += i
        await asyncio.sleep(0)


Workload = Callable[[int], Awaitable[None]]
WORKLOADS: dict[str, Workload] = {"sleep(0)": _sleep_zero, "cpu chunks": _cpu_chunks}


async def _busy_once(
    providers: Providers, workload: Workload, size: int, setting: Setting
) -> tuple[float, float]:
    gc.collect()  # before the monitor starts: a full collection can block the loop for 50 ms
    # With no timer at all each turn of the loop skips the timer heap; the sampler's timer
    # would be charged for a check that any application with a timeout already pays.
    timer = asyncio.get_running_loop().call_later(3600, lambda: None) if setting.timer else None
    monitor = providers.monitor(setting) if setting.interval is not None else None
    if monitor is not None:
        monitor.start()
        await asyncio.sleep(0)  # the sampler's first step: it is asleep when the clock starts
    wall, cpu = time.perf_counter(), time.process_time()
    await workload(size)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if timer is not None:
        timer.cancel()
    if monitor is not None:
        await monitor.stop()
        _warn_blocks(monitor, setting.name)
    return cpu, wall


async def _busy(providers: Providers, sizes: dict[str, int], repeats: int) -> list[Row]:
    rows = {(w, s.name): Row(w, s) for w in WORKLOADS for s in BUSY_SETTINGS}
    for name, workload in WORKLOADS.items():
        await _busy_once(providers, workload, sizes[name] // 10, BUSY_SETTINGS[0])  # warm-up
        for round_ in range(repeats):
            shift = round_ % len(BUSY_SETTINGS)
            for setting in BUSY_SETTINGS[shift:] + BUSY_SETTINGS[:shift]:
                cpu, wall = await _busy_once(providers, workload, sizes[name], setting)
                rows[name, setting.name].cpu.append(cpu)
                rows[name, setting.name].wall.append(wall)
            print(f"  {name}: round {round_ + 1}/{repeats}", file=sys.stderr)
    return list(rows.values())


def _busy_table(rows: list[Row]) -> str:
    lines = [
        "| workload | setting | CPU s (median) | overhead, CPU (paired) "
        "| wall s (median) | overhead, wall (paired) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    baselines = {row.workload: row for row in rows if row.setting.name == "off"}
    for row in rows:
        base = baselines[row.workload]
        cells = []
        for mine, theirs in ((row.cpu, base.cpu), (row.wall, base.wall)):
            if row is base:
                cells.append(f"(spread {(max(mine) - min(mine)) / statistics.median(mine):.1%})")
            else:
                # Each round ran both settings close together: its ratio cancels slow drifts.
                ratio = statistics.median(a / b for a, b in zip(mine, theirs, strict=True))
                cells.append(f"{ratio - 1:+.2%}")
        lines.append(
            f"| {row.workload} | {row.setting.name} | {statistics.median(row.cpu):.4f} | {cells[0]} "
            f"| {statistics.median(row.wall):.4f} | {cells[1]} |"
        )
    return "\n".join(lines)


async def _main(args: argparse.Namespace) -> tuple[dict[str, float], list[Row]]:
    providers = Providers()
    try:
        print("cost per wake-up ...", file=sys.stderr)
        costs = await _wakeup_costs(providers, args.idle_seconds, args.idle_repeats)
        print("busy loop ...", file=sys.stderr)
        rows = await _busy(
            providers, {"sleep(0)": args.sleep_iterations, "cpu chunks": args.cpu_chunks}, args.repeats
        )
    finally:
        providers.shutdown()
    return costs, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=7, help="busy-loop rounds (each runs every setting)")
    parser.add_argument("--sleep-iterations", type=int, default=60_000, help="sleep(0) awaits per busy run")
    parser.add_argument("--cpu-chunks", type=int, default=200, help="~1 ms chunks per busy run")
    parser.add_argument("--idle-seconds", type=float, default=1.0, help="length of an idle-loop run")
    parser.add_argument("--idle-repeats", type=int, default=3, help="idle-loop runs per setting")
    args = parser.parse_args(argv)
    facts = machine_facts()
    started = time.perf_counter()
    costs, rows = asyncio.run(_main(args))
    print(f"{facts['date']}  {facts['cpu']} x{facts['nproc']}  {facts['python']}\n")
    print("## Cost per wake-up (idle loop, CPU time)\n")
    print(_cost_table(costs))
    print("\n## Busy loop, with and without a monitor\n")
    print(_busy_table(rows))
    print(f"\ntotal {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
