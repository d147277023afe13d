"""The cache's L2 (Redis) paths against raw redis-py: ``python -m benchmarks.l2 [--quick] [--callgrind]``.

Starts its own redis-server on a free port. For the sync API (``MultiLevelCache(config)``,
``redis.Redis``) and the async one (``MultiLevelCache(config, async_mode=True)``,
``redis.asyncio.Redis``), with ``CacheConfig(redis_url=..., namespace=..., invalidation=False)``,
it measures the client CPU per call of::

    get            key in Redis, not in L1 (an L2 hit that fills L1)  vs  GET of its Redis key
    get_many N     N = 10, 100, 1000 keys in Redis, none in L1        vs  MGET of their Redis keys
    put str        a short string                                     vs  SET key bytes PX ttl
    put dict       {"id": 1, "name": "x", "tags": ["a", "b"]}         vs  SET key bytes PX ttl

Redis is filled through another cache of the namespace (``put_many``), so the values are
in whatever format the cache writes. Raw redis-py gets the cache's own Redis keys, and
for SET the bytes a cache ``put`` left in Redis (it decodes and encodes nothing); it
speaks RESP3 like the cache. There is no switch that turns L1 off, so every read row
reads distinct keys and the round starts with ``cache.l1.clear()``, outside the timed
region: each call misses L1 and takes the L2 path. After each row the cache's L2
counters must show exactly one L2 hit and one L1 fill per key read, and no error.

Method: one row is three variants, *raw*, *cache*, and *cache+otel* (the same cache
with ``OtelCacheInstrumentor`` on SDK providers: a ``TracerProvider`` with a
``BatchSpanProcessor`` into an exporter that drops spans, a ``MeterProvider`` with an
``InMemoryMetricReader``; ``instrument_redis=False``, so redis-py is never traced). The
instrumentation is switched between rounds by handing its handler to
:mod:`otel_cache.telemetry.hooks` and taking it back. A round times a fixed list of
calls of one variant with ``time.process_time()`` (every thread of the process, the
span processor's included: an otel round ends with ``force_flush``), gc off::

    each row: fill Redis; one untimed warm-up round per variant
    round 1..rounds: the three variants, in an order rotated each round -> µs per call

A figure is the median over the rounds; ``cache / raw`` and ``otel on / off`` are
ratios of those medians, with the min..max of the same ratio taken round by round.

This process and redis-server are pinned to one CPU (``--no-pin``: not). Unpinned, a
sync GET's client CPU is bimodal on a small VM: ~22 µs when the reply is there before
the client reads, ~60 µs when it sleeps in ``recv`` and is woken (a voluntary context
switch per call), and the scheduler flips between the two within a run. On one CPU the
server answers while the client is preempted in ``send``: the cheaper mode, every time.
The report gives the voluntary context switches per call (``getrusage``) to show which.

``--callgrind`` runs the sync rows once more in a child under ``valgrind
--tool=callgrind``: the user-space instructions per call of each variant, the
difference of a short and a long run of calls (``(Ir_long - Ir_short) / (n_long -
n_short)``, which cancels the fixed costs), every run delimited by callgrind dumps
(``--dump-before=getppid``; the child calls ``os.getppid()`` between runs).

Progress goes to stderr, the tables to stdout; ``--json PATH`` also writes the raw
figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import importlib.metadata
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

from benchmarks.callgrind import Marks, available, labelled_instructions
from benchmarks.machine import CpuShare, machine_facts
from benchmarks.switched_telemetry import SwitchedTelemetry
from otel_cache import CacheConfig, MultiLevelCache
from tests.support import RedisServer

__all__ = ["CASES", "FULL", "QUICK", "VARIANTS", "Case", "Config", "main", "markdown", "run"]

_ROOT = Path(__file__).resolve().parent.parent
_PACKAGES = ("redis", "hiredis", "orjson", "opentelemetry-api", "opentelemetry-sdk")


@dataclass(frozen=True, slots=True)
class Config:
    """How long to measure; :data:`FULL` and :data:`QUICK` are the two presets."""

    rounds: int  # timed rounds per row (each times every variant once)
    single_calls: int  # calls per round of a get or put row
    many_keys: int  # keys per round of a get_many row: many_keys // N calls (at least 3)
    callgrind: bool = False
    pin: bool = True  # this process and redis-server on one CPU (see the module docstring)


FULL = Config(rounds=9, single_calls=2000, many_keys=20_000)
QUICK = Config(rounds=3, single_calls=200, many_keys=2_000)


@dataclass(frozen=True, slots=True)
class Case:
    """One row: ``op`` with ``size`` keys per call, against ``raw_command``."""

    name: str
    op: str  # "get", "get_many" or "put"
    size: int
    raw_command: str
    value: Any = field(default=None, hash=False, compare=False)


STRING = "hello, world"
RECORD = {"id": 1, "name": "x", "tags": ["a", "b"]}  # also the value every read row finds
CASES = (
    Case("get", "get", 1, "GET"),
    Case("get_many 10", "get_many", 10, "MGET"),
    Case("get_many 100", "get_many", 100, "MGET"),
    Case("get_many 1000", "get_many", 1000, "MGET"),
    Case("put str", "put", 1, "SET PX", STRING),
    Case("put dict", "put", 1, "SET PX", RECORD),
)
VARIANTS = ("raw", "cache", "cache+otel")
APIS = ("sync", "async")
_CHUNK = 1000  # commands per pipeline when filling Redis


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _calls_per_round(case: Case, config: Config) -> int:
    return config.single_calls if case.size == 1 else max(3, config.many_keys // case.size)


def _cache_config(url: str, namespace: str, **changes: Any) -> CacheConfig:
    # L1 holds a whole round of keys: a fill never evicts.
    return CacheConfig(
        redis_url=url,
        namespace=namespace,
        invalidation=False,
        l1_max_entries=100_000,
        name="l2-bench",
        **changes,
    )


def _raw_options() -> dict[str, Any]:
    return {"protocol": 3, "decode_responses": False}  # what the cache's client speaks


# -- telemetry ------------------------------------------------------------------------------


class _Otel(SwitchedTelemetry):
    """The switched instrumentation, off to start with; redis-py itself is never traced."""

    def __init__(self) -> None:
        super().__init__(instrument_redis=False)
        self.set(False)

    def exported(self) -> int:
        """Uninstrument; the otel_cache spans exported."""
        from otel_cache.telemetry.names import INSTRUMENTATION_NAME

        self.close()
        return int(self.spans.by_scope.get(INSTRUMENTATION_NAME, 0))


# -- one row ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Variant:
    """One variant of a row: ``fn(*args)`` for each ``args`` of ``calls``; ``prepare`` runs
    untimed before a round, ``finish`` timed after it."""

    fn: Callable[..., Any]
    calls: list[tuple[Any, ...]]
    prepare: Callable[[], None]
    finish: Callable[[], None]


def _keys(case: Case, api: str, calls: int) -> list[tuple[Any, ...]]:
    """The cache keys of a round: distinct, so that no read of the round can hit L1."""
    tag = case.name.replace(" ", "")
    if case.op == "get_many":
        return [([f"{api}:{tag}:{i * case.size + j}" for j in range(case.size)],) for i in range(calls)]
    return [(f"{api}:{tag}:{i}",) for i in range(calls)]


def _variants(
    case: Case, api: str, calls: int, cache: MultiLevelCache[str, Any], raw: Any, otel: _Otel, url: str
) -> dict[str, _Variant]:
    """The three variants of one row (``raw`` a sync or an asyncio redis-py client)."""
    keys = _keys(case, api, calls)
    namespace = cache.config.namespace
    l2_key = cache.tiers.l2_key
    raw_calls: list[tuple[Any, ...]]
    if case.op == "get_many":
        raw_calls = [([l2_key(key) for key in batch],) for (batch,) in keys]
    else:
        raw_calls = [(l2_key(key),) for (key,) in keys]
    sync = api != "async"
    if case.op == "put":
        _, ttl_ms = cache.tiers.ttls(None)
        data = _stored_bytes(url, namespace, case.value)
        cache_fn: Callable[..., Any] = cache.put if sync else cache.aput
        raw_fn: Callable[..., Any] = functools.partial(raw.set, px=ttl_ms)
        keys = [(key, case.value) for (key,) in keys]
        raw_calls = [(key, data) for (key,) in raw_calls]
    elif case.op == "get_many":
        cache_fn, raw_fn = (cache.get_many if sync else cache.aget_many), raw.mget
    else:
        cache_fn, raw_fn = (cache.get if sync else cache.aget), raw.get

    def prepare(on: bool) -> Callable[[], None]:
        def run() -> None:
            otel.set(on)
            cache.l1.clear()

        return run

    def nothing() -> None:
        pass

    return {
        "raw": _Variant(raw_fn, raw_calls, prepare(False), nothing),
        "cache": _Variant(cache_fn, keys, prepare(False), nothing),
        "cache+otel": _Variant(cache_fn, keys, prepare(True), otel.flush),
    }


def _fill(url: str, namespace: str, case: Case, api: str, calls: int) -> None:
    """Put a read row's keys in Redis through a cache of the namespace (so in the cache's format)."""
    if case.op == "put":
        return
    keys = _keys(case, api, calls)
    flat = [key for (batch,) in keys for key in batch] if case.op == "get_many" else [k for (k,) in keys]
    with MultiLevelCache[str, Any](_cache_config(url, namespace)) as filler:
        for start in range(0, len(flat), _CHUNK):
            filler.put_many([(key, RECORD) for key in flat[start : start + _CHUNK]])


def _stored_bytes(url: str, namespace: str, value: Any) -> bytes:
    """The bytes the cache stores in Redis for ``value``: what raw SET sends."""
    with MultiLevelCache[str, Any](_cache_config(url, namespace)) as filler:
        filler.put("probe", value)
        l2_key = filler.tiers.l2_key("probe")
    with redis.Redis.from_url(url, **_raw_options()) as client:
        data = client.get(l2_key)
    if not isinstance(data, bytes):
        raise RuntimeError("the cache's put left nothing in Redis")
    return data


def _waits() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw


def _sync_round(variant: _Variant) -> tuple[float, float]:
    """µs per call of one timed round, and the process's voluntary context switches per call."""
    variant.prepare()
    fn, calls = variant.fn, variant.calls
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        waits, start = _waits(), time.process_time()
        for args in calls:
            fn(*args)
        variant.finish()
        elapsed, waits = time.process_time() - start, _waits() - waits
    finally:
        if gc_was_enabled:
            gc.enable()
    return elapsed / len(calls) * 1e6, waits / len(calls)


async def _async_round(variant: _Variant) -> tuple[float, float]:
    """As :func:`_sync_round`, timed inside the event loop (starting it is not counted)."""
    variant.prepare()
    fn, calls = variant.fn, variant.calls
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        waits, start = _waits(), time.process_time()
        for args in calls:
            await fn(*args)
        variant.finish()
        elapsed, waits = time.process_time() - start, _waits() - waits
    finally:
        if gc_was_enabled:
            gc.enable()
    return elapsed / len(calls) * 1e6, waits / len(calls)


def _expected_hits(case: Case, calls: int, config: Config) -> int:
    """L2 hits of a read row: two cache variants, the warm-up round and the timed rounds."""
    return 0 if case.op == "put" else 2 * (config.rounds + 1) * calls * case.size


def _row(
    case: Case,
    api: str,
    config: Config,
    cache: MultiLevelCache[str, Any],
    variants: dict[str, _Variant],
    timed: Callable[[_Variant], tuple[float, float]],
) -> dict[str, Any]:
    """Time one row (warm-up, then rotated rounds) and check what the cache counted."""
    before = cache.tiers.stats()
    for name in VARIANTS:
        timed(variants[name])  # warm-up: connections, first-call costs
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    waits: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_ in range(config.rounds):
        shift = round_ % len(VARIANTS)
        for name in VARIANTS[shift:] + VARIANTS[:shift]:
            us, waited = timed(variants[name])
            samples[name].append(us)
            waits[name].append(waited)
    after = cache.tiers.stats()
    calls = len(variants["raw"].calls)
    checks = {
        "l2_hits": after.hits - before.hits,
        "l2_hits_expected": _expected_hits(case, calls, config),
        "l2_misses": after.misses - before.misses,
        "l2_errors": sum(after.errors.values()) - sum(before.errors.values()),
        "l2_skipped": after.skipped - before.skipped,
        "l1_fills": after.fills - before.fills,
    }
    if (
        checks["l2_hits"] != checks["l2_hits_expected"]
        or checks["l1_fills"] != checks["l2_hits"]
        or checks["l2_misses"]
        or checks["l2_errors"]
        or checks["l2_skipped"]
    ):
        raise RuntimeError(f"{api} {case.name}: the cache did not take the L2 path every time: {checks}")
    return {
        "api": api,
        **_summary(case, samples),
        "waits_per_call": {name: statistics.median(values) for name, values in waits.items()},
        "calls_per_round": calls,
        "checks": checks,
    }


def _summary(case: Case, samples: dict[str, list[float]]) -> dict[str, Any]:
    medians = {name: statistics.median(values) for name, values in samples.items()}

    def ratio(top: str, bottom: str) -> tuple[float, list[float]]:
        rounds = [a / b for a, b in zip(samples[top], samples[bottom], strict=True)]
        return medians[top] / medians[bottom], [min(rounds), max(rounds)]

    cache_raw, cache_raw_rounds = ratio("cache", "raw")
    otel, otel_rounds = ratio("cache+otel", "cache")
    return {
        "case": case.name,
        "op": case.op,
        "size": case.size,
        "raw_command": case.raw_command,
        "us": samples,
        "median_us": medians,
        "cache_over_raw": cache_raw,
        "cache_over_raw_rounds": cache_raw_rounds,
        "otel_over_off": otel,
        "otel_over_off_rounds": otel_rounds,
    }


# -- the two APIs -----------------------------------------------------------------------------


def run_sync(url: str, config: Config, otel: _Otel) -> list[dict[str, Any]]:
    rows = []
    cache: MultiLevelCache[str, Any] = MultiLevelCache(_cache_config(url, "l2-sync"))
    raw = redis.Redis.from_url(url, **_raw_options())
    try:
        for case in CASES:
            _progress(f"sync {case.name}")
            calls = _calls_per_round(case, config)
            _fill(url, cache.config.namespace, case, "sync", calls)
            variants = _variants(case, "sync", calls, cache, raw, otel, url)
            rows.append(_row(case, "sync", config, cache, variants, _sync_round))
    finally:
        otel.set(False)
        cache.close()
        raw.close()
    return rows


def run_async(url: str, config: Config, otel: _Otel) -> list[dict[str, Any]]:
    rows = []
    with asyncio.Runner() as runner:  # one loop: the cache's asyncio backend belongs to it
        cache: MultiLevelCache[str, Any] = MultiLevelCache(_cache_config(url, "l2-async"), async_mode=True)
        raw = redis.asyncio.Redis.from_url(url, **_raw_options())

        def timed(variant: _Variant) -> tuple[float, float]:
            return runner.run(_async_round(variant))

        try:
            for case in CASES:
                _progress(f"async {case.name}")
                calls = _calls_per_round(case, config)
                _fill(url, cache.config.namespace, case, "async", calls)
                variants = _variants(case, "async", calls, cache, raw, otel, url)
                rows.append(_row(case, "async", config, cache, variants, timed))
        finally:
            otel.set(False)
            runner.run(cache.aclose())
            runner.run(raw.aclose())
    return rows


def _expected_spans(rows: Sequence[dict[str, Any]], config: Config) -> int:
    """One L2 span per cache+otel call: the warm-up round and the timed rounds."""
    return sum(row["calls_per_round"] * (config.rounds + 1) for row in rows)


# -- callgrind: instructions per call --------------------------------------------------------

_CG_CALLS = {1: (100, 400), 10: (50, 200), 100: (10, 40), 1000: (2, 6)}  # calls (short, long) by size
_CG_NAMESPACE = "l2-cg"


def _cg_child(url: str) -> None:
    """Under callgrind: every sync row's variants, a short and a long run each, between markers.

    Prints the markers' labels (JSON) on stdout: the part after the i-th marker is labelled
    ``labels[i - 1]``.
    """
    otel = _Otel()
    # Long timeouts: the client runs some 50 times slower under valgrind.
    cache: MultiLevelCache[str, Any] = MultiLevelCache(
        _cache_config(url, _CG_NAMESPACE, redis_timeout=60.0, redis_connect_timeout=60.0)
    )
    raw = redis.Redis.from_url(url, socket_timeout=60.0, **_raw_options())
    marks = Marks()
    mark = marks.mark

    gc.disable()  # as in the timed rounds; a collection would land in whichever run it likes
    for case in CASES:
        short, long_ = _CG_CALLS[case.size]
        variants = _variants(case, "sync", long_, cache, raw, otel, url)  # the parent filled Redis
        hits = cache.tiers.stats().hits
        for name in VARIANTS:
            variant = variants[name]
            for label, calls in (("warm", short), ("short", short), ("long", long_)):
                variant.prepare()
                fn = variant.fn
                mark(f"{case.name}|{name}|{label}")
                for args in variant.calls[:calls]:
                    fn(*args)
                variant.finish()
                mark("between")
        expected = 0 if case.op == "put" else 2 * (2 * short + long_) * case.size
        if cache.tiers.stats().hits - hits != expected:
            raise SystemExit(f"callgrind child, {case.name}: not one L2 hit per key read")
    gc.enable()
    otel.set(False)
    cache.close()
    raw.close()
    otel.close()
    print(marks.json())


def callgrind(url: str) -> dict[str, dict[str, float]] | None:
    """Instructions per call of each sync row and variant; None without valgrind."""
    if not available():
        return None
    for case in CASES:  # natively: filling under valgrind would take longer than the counting
        _fill(url, _CG_NAMESPACE, case, "sync", _CG_CALLS[case.size][1])
    _progress("callgrind: every sync row in one child under valgrind (a minute or two)")
    by_label = labelled_instructions("benchmarks.l2", ["--callgrind-child", url], cwd=_ROOT, timeout=1200)
    result: dict[str, dict[str, float]] = {}
    for case in CASES:
        short, long_ = _CG_CALLS[case.size]
        result[case.name] = {
            name: (by_label[f"{case.name}|{name}|long"] - by_label[f"{case.name}|{name}|short"])
            / (long_ - short)
            for name in VARIANTS
        }
    return result


# -- the run and its report ---------------------------------------------------------------


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for package in _PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


@contextlib.contextmanager
def _pinned(server: RedisServer, enabled: bool) -> Iterator[int | None]:
    """This thread (and the threads it starts) and the server's main thread on one CPU, the
    last this process may use; yields it (None: not pinned). The affinity is restored after."""
    pid = server.pid
    if not enabled or pid is None or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    mine, its = os.sched_getaffinity(0), os.sched_getaffinity(pid)
    cpu = max(mine)
    os.sched_setaffinity(0, {cpu})
    os.sched_setaffinity(pid, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, mine)
        with contextlib.suppress(OSError):  # the server may be gone
            os.sched_setaffinity(pid, its)


def run(config: Config) -> dict[str, Any]:
    """Every row of both APIs, against a redis-server of its own; JSON-friendly results."""
    facts = machine_facts()
    share = CpuShare()
    started = time.perf_counter()
    with RedisServer() as server, _pinned(server, config.pin) as cpu:
        with redis.Redis.from_url(server.url) as client:
            redis_version = client.info("server")["redis_version"]
        otel = _Otel()  # after pinning: the span processor's thread inherits it
        try:
            rows = run_sync(server.url, config, otel) + run_async(server.url, config, otel)
        finally:
            spans = otel.exported()
        instructions = callgrind(server.url) if config.callgrind else None
    return {
        "config": asdict(config),
        "facts": {
            **facts,
            "redis": redis_version,
            "pinned_cpu": cpu,
            "versions": _versions(),
            "cpu_share": share.stop(),
            "loadavg": os.getloadavg(),
            "elapsed_s": round(time.perf_counter() - started, 1),
        },
        "rows": rows,
        "spans": {"exported": spans, "expected": _expected_spans(rows, config)},
        "callgrind": instructions,
    }


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(head) - 1)
    return [f"| {' | '.join(cells)} |" for cells in (head, align, *rows)]


def _us(value: float) -> str:
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def _range(bounds: Sequence[float]) -> str:
    return f"{bounds[0]:.2f}..{bounds[1]:.2f}x"


def _api_lines(api: str, rows: Sequence[dict[str, Any]], config: dict[str, Any]) -> list[str]:
    client = "redis.Redis" if api == "sync" else "redis.asyncio.Redis"
    mode = "MultiLevelCache(config)" if api == "sync" else "MultiLevelCache(config, async_mode=True)"
    lines = [
        "",
        f"#### {api}: `{mode}` vs `{client}` (client CPU µs per call, median of {config['rounds']} rounds)",
        "",
    ]
    lines += _table(
        [
            "operation",
            "raw",
            "raw µs",
            "cache µs",
            "cache / raw",
            "per-round",
            "cache+otel µs",
            "otel on / off",
            "per-round",
        ],
        [
            [
                row["case"],
                row["raw_command"],
                _us(row["median_us"]["raw"]),
                _us(row["median_us"]["cache"]),
                f"{row['cache_over_raw']:.2f}x",
                _range(row["cache_over_raw_rounds"]),
                _us(row["median_us"]["cache+otel"]),
                f"{row['otel_over_off']:.2f}x",
                _range(row["otel_over_off_rounds"]),
            ]
            for row in rows
            if row["api"] == api
        ],
    )
    return lines


def _callgrind_lines(instructions: dict[str, dict[str, float]]) -> list[str]:
    lines = ["", "#### sync, instructions per call (callgrind, client user space)", ""]
    lines += _table(
        ["operation", "raw Ir", "cache Ir", "cache / raw", "cache+otel Ir", "otel on / off"],
        [
            [
                case,
                f"{counts['raw']:,.0f}",
                f"{counts['cache']:,.0f}",
                f"{counts['cache'] / counts['raw']:.2f}x",
                f"{counts['cache+otel']:,.0f}",
                f"{counts['cache+otel'] / counts['cache']:.2f}x",
            ]
            for case, counts in instructions.items()
        ],
    )
    return lines


def _pin_text(cpu: int | None) -> str:
    if cpu is None:
        return "not pinned"
    return f"this process and redis-server pinned to CPU {cpu}"


def _median_waits(rows: Sequence[dict[str, Any]], variant: str) -> float:
    return float(statistics.median(row["waits_per_call"][variant] for row in rows))


def markdown(result: dict[str, Any]) -> str:
    facts, config, spans = result["facts"], result["config"], result["spans"]
    versions, share = facts["versions"], facts["cpu_share"]
    lines = [
        f"- {facts['date']} | {facts['cpu']} | nproc {facts['nproc']} | {facts['python']} | "
        f"redis-py {versions['redis']} (hiredis {versions['hiredis'] or 'no'}) | "
        f"redis-server {facts['redis']} | opentelemetry-sdk {versions['opentelemetry-sdk']} | "
        f"otel_cache at {facts.get('source') or 'unknown commit'}",
        f"- {config['single_calls']:,} calls per round of get and put, {config['many_keys']:,} keys per "
        f"round of get_many; reads miss L1 (cleared before each round); raw = the cache's keys and bytes",
        f"- {_pin_text(facts['pinned_cpu'])}; voluntary context switches per call (median over rows): "
        + ", ".join(f"{name} {_median_waits(result['rows'], name):.2f}" for name in VARIANTS),
    ]
    if share["others"] is not None:
        lines.append(
            f"- other processes used {share['others']:.0%} of the CPUs (steal {share['steal']:.0%}); "
            f"load average at the end {facts['loadavg'][0]:.2f}; run took {facts['elapsed_s']} s"
        )
    dropped = spans["expected"] - spans["exported"]
    lines.append(
        f"- otel: {spans['exported']:,} otel_cache spans exported of {spans['expected']:,} "
        + ("(none dropped)" if dropped == 0 else f"({dropped:,} dropped or extra)")
    )
    for api in APIS:
        lines += _api_lines(api, result["rows"], config)
    if result["callgrind"] is not None:
        lines += _callgrind_lines(result["callgrind"])
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.l2", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds: the shape only")
    parser.add_argument(
        "--callgrind", action="store_true", help="also count instructions per sync call (valgrind)"
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin this process and redis-server to one CPU",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw results to PATH")
    parser.add_argument("--callgrind-child", metavar="URL", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.callgrind_child:
        _cg_child(args.callgrind_child)
        return 0
    config = replace(QUICK if args.quick else FULL, callgrind=args.callgrind, pin=not args.no_pin)
    result = run(config)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
