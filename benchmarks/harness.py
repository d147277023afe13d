"""Timing loops in the style of :mod:`timeit`: gc off, calibrated loop count, repeats.

A :class:`Bench` is one table row: a statement timed in a tight ``for`` loop over
a namespace that its ``setup`` builds. Sync statements run through
:class:`timeit.Timer` itself; async statements (``await ...``) run in the same
kind of loop compiled into a coroutine, timed inside the coroutine so that starting
the event loop is not counted.

Repeats are interleaved: every row is set up and calibrated, then each round
times every row once. A neighbour process that slows the machine for a while
then slows one repeat of many rows, not every repeat of a few rows::

    calibrate each row: loops = 1, 2, 5, 10, 20, 50, ... until one run takes >= target_s
    round 1..repeats:   for each row: one run of `loops` iterations -> one ns/op sample

The loop itself costs something (the ``pass`` rows measure it); it is reported,
never subtracted.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import itertools
import time
import timeit
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Bench", "Namespace", "Sample", "run_benches"]

Namespace = dict[str, Any]
Setup = Callable[[], Namespace | Coroutine[Any, Any, Namespace]]
Teardown = Callable[[Namespace], object]

_ASYNC_TEMPLATE = """
async def _bench(_it, _timer):
    _t0 = _timer()
    for _i in _it:
        {stmt}
    return _timer() - _t0
"""


@dataclass(frozen=True, slots=True)
class Bench:
    """One row: ``stmt`` timed over the namespace returned by ``setup``.

    ``kind`` names the minimal-LRU row the ratio column compares with ("get",
    "aget", "update", "aupdate", "insert"); empty for baseline rows.
    ``setup`` and ``teardown`` may be coroutine functions; they run in the same
    event loop as the statement.
    """

    name: str
    group: str
    stmt: str
    setup: Setup
    kind: str = ""
    is_async: bool = False
    teardown: Teardown | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """The ns/op of each repeat of one bench in one process."""

    name: str
    group: str
    kind: str
    loops: int
    ns_per_op: list[float]


@dataclass(slots=True)
class _Prepared:
    bench: Bench
    runner: asyncio.Runner
    namespace: Namespace
    timer: Callable[[int], float]
    loops: int = 0
    ns_per_op: list[float] = field(default_factory=list)


def _prepare(bench: Bench) -> _Prepared:
    runner = asyncio.Runner()
    try:
        namespace = _maybe_await(runner, bench.setup())
    except BaseException:
        runner.close()
        raise
    if bench.is_async:
        timer = _async_timer(runner, bench.stmt, namespace)
    else:
        timer = _sync_timer(bench.stmt, namespace)
    return _Prepared(bench, runner, namespace, timer)


def _dispose(item: _Prepared) -> None:
    try:
        if item.bench.teardown is not None:
            _maybe_await(item.runner, item.bench.teardown(item.namespace))
    finally:
        item.runner.close()


def run_benches(
    benches: Sequence[Bench],
    *,
    repeats: int,
    target_s: float,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Sample]:
    """Set up and calibrate every bench, then time ``repeats`` interleaved rounds."""
    prepared: list[_Prepared] = []
    try:
        for bench in benches:
            prepared.append(_prepare(bench))
            prepared[-1].loops = _calibrate(prepared[-1].timer, target_s)
        progress(f"set up and calibrated {len(prepared)} rows")
        for round_ in range(repeats):
            for item in prepared:
                item.ns_per_op.append(item.timer(item.loops) / item.loops * 1e9)
            progress(f"round {round_ + 1}/{repeats}")
    finally:
        for item in prepared:
            _dispose(item)
    return [Sample(i.bench.name, i.bench.group, i.bench.kind, i.loops, i.ns_per_op) for i in prepared]


def _maybe_await(runner: asyncio.Runner, value: object) -> Any:
    return runner.run(value) if inspect.iscoroutine(value) else value


def _sync_timer(stmt: str, ns: Namespace) -> Callable[[int], float]:
    # timeit.Timer.timeit disables gc while it runs, and re-enables it after.
    return timeit.Timer(stmt, globals=ns).timeit


def _async_timer(runner: asyncio.Runner, stmt: str, ns: Namespace) -> Callable[[int], float]:
    local: Namespace = {}
    exec(compile(_ASYNC_TEMPLATE.format(stmt=stmt), "<bench>", "exec"), ns, local)
    bench_coro = local["_bench"]

    def timer(loops: int) -> float:
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            elapsed: float = runner.run(bench_coro(itertools.repeat(None, loops), time.perf_counter))
            return elapsed
        finally:
            if gc_was_enabled:
                gc.enable()

    return timer


def _calibrate(timer: Callable[[int], float], target_s: float) -> int:
    """The smallest loop count in the 1-2-5 series whose run takes at least ``target_s``."""
    for exponent in itertools.count():
        for mantissa in (1, 2, 5):
            loops: int = mantissa * 10**exponent
            if timer(loops) >= target_s:
                return loops
    raise AssertionError("unreachable")
