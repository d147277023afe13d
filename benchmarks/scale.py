"""The L1 at scale: ``python -m benchmarks.scale [--quick] [--json PATH] [--callgrind]``.

How the cost of :class:`~otel_cache.l1.AsyncLRUCache` per operation and per entry changes
with its size: 1,000, 100,000 and 1,000,000 entries (``--quick``: 1,000 and 10,000),
beside :class:`~benchmarks.minlru.MinLRU` (the OrderedDict floor) and, if it is installed,
``cachetools.LRUCache`` (reported as skipped when it is not). Every cache is full
(``max_entries = N``); keys are ``f"k{i}"``. At each size::

    hit        get (sync) and await aget of present keys, in a fixed random permutation of
               all N keys (so at 1M most lookups miss the CPU caches)
    insert     put of keys never seen (a cycle of 2N): each put adds one entry and evicts
               the oldest; values a short str and {"id": 1, "name": "x", "tags": ["a", "b"]}
               (one shared object); AsyncLRUCache without a TTL, with default_ttl=600, and
               with a max_bytes that never binds (every put then deep-sizes its value)
    memory     bytes per entry of a cache of N entries whose values are one shared object

Timing: the rows of one size are timed by :mod:`benchmarks.harness` (timeit-style loops,
gc off, calibrated to ``target_s`` a run, interleaved rounds); a figure is the median
ns/op over the rounds (fewer rounds at 1M, where a row's cache costs a second to build),
and its ratio is over the MinLRU row of the same operation, size and run. Every row draws
its key with ``next(keys)`` on an ``itertools.cycle``; that costs what the first row says
and is in every figure, never subtracted.

Memory: one fresh process per cache and size. The keys are built first, so their own size
is in no figure. Then, in that process: ``/proc/self/statm`` resident size before and after
building the cache (RSS; coarse at 1,000 entries: pages and allocator arenas), then
``tracemalloc`` started and the same cache built a second time (traced: the bytes the
allocations of the build hold once it is done). Both over N. The cache object itself and
its lock are a few hundred bytes in all, so a few tenths of a byte per entry at 1,000.

``--callgrind`` counts the user-space instructions per hit and per insert at 1,000 and
1,000,000 entries (``--quick``: 10,000) in a child under ``valgrind --tool=callgrind``,
as :mod:`benchmarks.l2` does: ``(Ir_long - Ir_short) / (n_long - n_short)`` of a short and
a long run of calls, every run delimited by callgrind dumps (``--dump-before=getppid``).
The figure includes the ``for`` loop over a prepared key list (the same in both rows).
Building the 1M-entry caches under valgrind takes a minute or two.

Progress goes to stderr, the tables to stdout; ``--json PATH`` also writes the raw figures.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import itertools
import json
import linecache
import os
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.callgrind import Marks, available, labelled_instructions
from benchmarks.harness import Bench, Namespace, run_benches
from benchmarks.machine import CpuShare, machine_facts
from benchmarks.minlru import AsyncMinLRU, MinLRU
from otel_cache.l1 import AsyncLRUCache

__all__ = ["FULL", "MEMORY", "QUICK", "ROWS", "Config", "MemoryVariant", "Row", "main", "markdown", "run"]

_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Config:
    """How long to measure; :data:`FULL` and :data:`QUICK` are the two presets."""

    sizes: tuple[int, ...]  # entries of every cache
    repeats: tuple[int, ...]  # timed rounds at each size
    target_s: float  # least duration of one timed run of a row
    callgrind_sizes: tuple[int, ...]
    callgrind: bool = False


FULL = Config(
    sizes=(1_000, 100_000, 1_000_000),
    repeats=(7, 7, 3),
    target_s=0.05,
    callgrind_sizes=(1_000, 1_000_000),
)
QUICK = Config(sizes=(1_000, 10_000), repeats=(3, 3), target_s=0.005, callgrind_sizes=(1_000, 10_000))

STRING = "value:0123456789"
RECORD = {"id": 1, "name": "x", "tags": ["a", "b"]}
TTL_S = 600.0
BYTES_PER_ENTRY_BOUND = 4096  # max_bytes = N times this: far above any entry here, never binds
_SEED = 0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cachetools() -> Any:
    """The cachetools module (imported by name: it need not be installed, nor typed)."""
    return importlib.import_module("cachetools")


def _missing(packages: Sequence[str]) -> list[str]:
    return [package for package in packages if importlib.util.find_spec(package) is None]


# -- the caches -------------------------------------------------------------------------------

Build = Callable[[Sequence[str]], Any]


def _ours(value: Any, ttl: float | None = None, max_bytes: bool = False) -> Build:
    def build(keys: Sequence[str]) -> AsyncLRUCache[str, Any]:
        cache: AsyncLRUCache[str, Any] = AsyncLRUCache(
            max_entries=len(keys),
            max_bytes=len(keys) * BYTES_PER_ENTRY_BOUND if max_bytes else None,
            default_ttl=ttl,
            name="scale-bench",
            register=False,
        )
        put = cache.put
        for key in keys:
            put(key, value)
        return cache

    return build


def _min(value: Any) -> Build:
    def build(keys: Sequence[str]) -> AsyncMinLRU:
        cache = AsyncMinLRU(len(keys))
        put = cache.put
        for key in keys:
            put(key, value)
        return cache

    return build


def _lru_cachetools(value: Any) -> Build:
    def build(keys: Sequence[str]) -> Any:
        cache = _cachetools().LRUCache(len(keys))
        for key in keys:
            cache[key] = value
        return cache

    return build


def _length(cache: Any) -> int:
    """Entries of any cache here (MinLRU has no ``__len__``: it is kept minimal)."""
    return len(cache._data) if isinstance(cache, MinLRU) else len(cache)


def _dict(value: Any) -> Build:
    def build(keys: Sequence[str]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key in keys:
            data[key] = value
        return data

    return build


# -- timed rows -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One timed row: ``stmt`` on the cache ``cache`` names, with ``v`` the value.

    Rows naming the same ``cache`` share one (hits leave a cache's content alone); ``ref``
    is the MinLRU row its ratio is taken over ("" for those rows and the key source).
    """

    name: str
    table: str  # "hit" (keys: a permutation of the present ones) or "insert" (new keys)
    stmt: str
    cache: str
    ref: str = ""
    is_async: bool = False
    needs: str = ""  # a package the row needs; skipped without it
    value: Any = None


_GET = "MinLRU.get"
_AGET = "AsyncMinLRU await aget"
_PUT_STR, _PUT_DICT = "MinLRU.put str", "MinLRU.put dict"
_TTL = f"ttl={TTL_S:g}"

ROWS: tuple[Row, ...] = (
    Row("next(keys): the key source of every row", "hit", "next(keys)", "min"),
    Row(_GET, "hit", "c.get(next(keys))", "min"),
    Row("AsyncLRUCache.get", "hit", "c.get(next(keys))", "ours", ref=_GET),
    Row(_AGET, "hit", "await c.aget(next(keys))", "min", is_async=True),
    Row("AsyncLRUCache await aget", "hit", "await c.aget(next(keys))", "ours", ref=_AGET, is_async=True),
    Row("cachetools.LRUCache.get", "hit", "c.get(next(keys))", "cachetools", ref=_GET, needs="cachetools"),
    Row("cachetools.LRUCache[k]", "hit", "c[next(keys)]", "cachetools", ref=_GET, needs="cachetools"),
    Row(_PUT_STR, "insert", "c.put(next(keys), v)", "min put str", value=STRING),
    Row(_PUT_DICT, "insert", "c.put(next(keys), v)", "min put dict", value=RECORD),
    Row("AsyncLRUCache.put str", "insert", "c.put(next(keys), v)", "ours str", ref=_PUT_STR, value=STRING),
    Row("AsyncLRUCache.put dict", "insert", "c.put(next(keys), v)", "ours dict", ref=_PUT_DICT, value=RECORD),
    Row(
        f"AsyncLRUCache {_TTL} put str",
        "insert",
        "c.put(next(keys), v)",
        "ours ttl str",
        ref=_PUT_STR,
        value=STRING,
    ),
    Row(
        f"AsyncLRUCache {_TTL} put dict",
        "insert",
        "c.put(next(keys), v)",
        "ours ttl dict",
        ref=_PUT_DICT,
        value=RECORD,
    ),
    Row(
        "AsyncLRUCache max_bytes put str",
        "insert",
        "c.put(next(keys), v)",
        "ours bytes str",
        ref=_PUT_STR,
        value=STRING,
    ),
    Row(
        "AsyncLRUCache max_bytes put dict",
        "insert",
        "c.put(next(keys), v)",
        "ours bytes dict",
        ref=_PUT_DICT,
        value=RECORD,
    ),
    Row(
        "cachetools.LRUCache[k] = v str",
        "insert",
        "c[next(keys)] = v",
        "cachetools str",
        ref=_PUT_STR,
        needs="cachetools",
        value=STRING,
    ),
    Row(
        "cachetools.LRUCache[k] = v dict",
        "insert",
        "c[next(keys)] = v",
        "cachetools dict",
        ref=_PUT_DICT,
        needs="cachetools",
        value=RECORD,
    ),
)

_CACHES: dict[str, Build] = {
    "min": _min(STRING),
    "ours": _ours(STRING),
    "cachetools": _lru_cachetools(STRING),
    "min put str": _min(STRING),
    "min put dict": _min(RECORD),
    "ours str": _ours(STRING),
    "ours dict": _ours(RECORD),
    "ours ttl str": _ours(STRING, ttl=TTL_S),
    "ours ttl dict": _ours(RECORD, ttl=TTL_S),
    "ours bytes str": _ours(STRING, max_bytes=True),
    "ours bytes dict": _ours(RECORD, max_bytes=True),
    "cachetools str": _lru_cachetools(STRING),
    "cachetools dict": _lru_cachetools(RECORD),
}


class _Workload:
    """The keys of one size, and the caches its rows run on (built on first use)."""

    def __init__(self, size: int) -> None:
        self.keys = [f"k{i}" for i in range(size)]
        self.order = self.keys.copy()  # the hit order: every key once, scattered
        random.Random(_SEED).shuffle(self.order)
        self.new = [f"n{i}" for i in range(2 * size)]  # a cycle of 2N: never in the cache
        self._caches: dict[str, Any] = {}

    def cache(self, name: str) -> Any:
        if name not in self._caches:
            self._caches[name] = _CACHES[name](self.keys)
        return self._caches[name]

    def namespace(self, row: Row) -> Namespace:
        keys = self.order if row.table == "hit" else self.new
        return {"c": self.cache(row.cache), "keys": itertools.cycle(keys), "v": row.value}


def _time_size(size: int, repeats: int, target_s: float, skipped: Sequence[str]) -> list[dict[str, Any]]:
    """Every row at one size, in interleaved rounds; one JSON-friendly dict per row."""
    _progress(f"{size:,} entries: building the caches and calibrating")
    started = time.perf_counter()
    work = _Workload(size)
    rows = [row for row in ROWS if row.needs not in skipped]
    benches = [
        Bench(row.name, row.table, row.stmt, partial(work.namespace, row), is_async=row.is_async)
        for row in rows
    ]
    samples = run_benches(benches, repeats=repeats, target_s=target_s, progress=_progress)
    medians = {sample.name: statistics.median(sample.ns_per_op) for sample in samples}
    result = []
    for row, sample in zip(rows, samples, strict=True):
        ratio = medians[row.name] / medians[row.ref] if row.ref else (1.0 if row.name in _REFS else None)
        result.append(
            {
                "size": size,
                "name": row.name,
                "table": row.table,
                "ref": row.ref,
                "loops": sample.loops,
                "ns_per_op": sample.ns_per_op,
                "median_ns": medians[row.name],
                "ratio": ratio,
            }
        )
    del work, benches, samples
    gc.collect()
    _progress(f"{size:,} entries: {time.perf_counter() - started:.1f} s")
    return result


_REFS = frozenset(row.ref for row in ROWS if row.ref)


# -- memory per entry -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoryVariant:
    """One row of the memory table: ``build`` makes a cache of the keys given."""

    name: str
    build: Build
    needs: str = ""


_VALUE = 1  # every value is this one (cached) int: values cost nothing of their own
_BIG_VALUE = "x" * 300  # shared too; the entry's size (an int > 256) is then an object of its own
_MINLRU = "MinLRU"
_OURS = "AsyncLRUCache"
_OURS_TTL = f"AsyncLRUCache {_TTL}"
_OURS_BIG = "AsyncLRUCache, a 300-char str value (shared)"

MEMORY: tuple[MemoryVariant, ...] = (
    MemoryVariant("dict (no LRU, for reference)", _dict(_VALUE)),
    MemoryVariant(_MINLRU, _min(_VALUE)),
    MemoryVariant("cachetools.LRUCache", _lru_cachetools(_VALUE), needs="cachetools"),
    MemoryVariant(_OURS, _ours(_VALUE)),
    MemoryVariant(_OURS_TTL, _ours(_VALUE, ttl=TTL_S)),
    MemoryVariant(_OURS_BIG, _ours(_BIG_VALUE)),
)


def _rss() -> int | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _by_line(snapshot: tracemalloc.Snapshot, size: int) -> list[dict[str, Any]]:
    """The lines whose allocations hold at least half a byte per entry, with their source."""
    lines = []
    for stat in snapshot.statistics("lineno"):
        frame = stat.traceback[0]
        if stat.size < size / 2 or frame.filename == tracemalloc.__file__:
            continue
        path = Path(frame.filename)
        with_root = path.is_relative_to(_ROOT)
        lines.append(
            {
                "where": f"{path.relative_to(_ROOT) if with_root else path.name}:{frame.lineno}",
                "code": linecache.getline(frame.filename, frame.lineno).strip(),
                "bytes_per_entry": stat.size / size,
                "blocks_per_entry": stat.count / size,
            }
        )
    return lines


def _memory_child(name: str, size: int) -> dict[str, Any]:
    """In a fresh process: the RSS and the traced bytes per entry of one cache of ``size`` entries."""
    (variant,) = (variant for variant in MEMORY if variant.name == name)
    keys = [f"k{i}" for i in range(size)]
    gc.collect()
    rss_before = _rss()
    kept = variant.build(keys)
    gc.collect()
    rss_after = _rss()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    traced = variant.build(keys)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    if _length(kept) != size or _length(traced) != size:
        raise RuntimeError(f"{name}: {_length(traced)} entries, not {size}")
    return {
        "size": size,
        "name": name,
        "traced_per_entry": (after - before) / size,
        "rss_per_entry": None if rss_before is None or rss_after is None else (rss_after - rss_before) / size,
        "key_bytes_per_entry": sum(map(sys.getsizeof, keys)) / size,
        "by_line": _by_line(snapshot, size),
    }


def _memory(name: str, size: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.scale", "--memory-child", name, str(size)]
    done = subprocess.run(command, cwd=_ROOT, capture_output=True, text=True, check=True, timeout=600)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- callgrind: instructions per op -------------------------------------------------------------

_CG_CALLS = (2_000, 10_000)  # calls of the short and the long run
_CG_IMPLS = ("AsyncLRUCache", "MinLRU")
_CG_OPS = ("hit", "insert")


def _cg_child(sizes: Sequence[int]) -> None:
    """Under callgrind: at each size, a short and a long run of each op and cache, between markers.

    Prints the markers' labels (JSON) on stdout: the part after the i-th marker is labelled
    ``labels[i - 1]``.
    """
    marks = Marks()
    mark = marks.mark

    gc.disable()  # as in the timed runs; a collection would land in whichever run it likes
    for size in sizes:
        _progress(f"callgrind child: {size:,} entries")
        work = _Workload(size)
        caches: dict[str, Any] = {
            "AsyncLRUCache": _ours(STRING)(work.keys),
            "MinLRU": _min(STRING)(work.keys),
        }
        for op in _CG_OPS:
            source = work.order if op == "hit" else work.new
            for impl in _CG_IMPLS:
                cache, start = caches[impl], 0
                for label, calls in (("warm", _CG_CALLS[0]), ("short", _CG_CALLS[0]), ("long", _CG_CALLS[1])):
                    keys = [source[(start + i) % len(source)] for i in range(calls)]
                    start += calls
                    mark(f"{size}|{op}|{impl}|{label}")
                    if op == "hit":
                        for key in keys:
                            cache.get(key)
                    else:
                        for key in keys:
                            cache.put(key, STRING)
                    mark("between")
                if _length(cache) != size:
                    raise SystemExit(f"callgrind child: {impl} holds {_length(cache)} entries, not {size}")
        del work, caches
    gc.enable()
    print(marks.json())


def callgrind(sizes: Sequence[int]) -> list[dict[str, Any]] | None:
    """Instructions per call of each op and cache at each size; None without valgrind."""
    if not available():
        return None
    _progress("callgrind: one child under valgrind (building 1M-entry caches takes a minute or two)")
    by_label = labelled_instructions(
        "benchmarks.scale", ["--callgrind-child", ",".join(map(str, sizes))], cwd=_ROOT, timeout=1800
    )
    short, long_ = _CG_CALLS
    rows = []
    for size in sizes:
        for op in _CG_OPS:
            counts = {
                impl: (by_label[f"{size}|{op}|{impl}|long"] - by_label[f"{size}|{op}|{impl}|short"])
                / (long_ - short)
                for impl in _CG_IMPLS
            }
            rows.append({"size": size, "op": op, "ir": counts, "ratio": counts[_OURS] / counts[_MINLRU]})
    return rows


# -- the run and its report ---------------------------------------------------------------------


def run(config: Config) -> dict[str, Any]:
    """Every timed row at every size, then the memory rows, then (optionally) callgrind."""
    facts = machine_facts()
    share = CpuShare()
    started = time.perf_counter()
    skipped = _missing(["cachetools"])
    timing: list[dict[str, Any]] = []
    for size, repeats in zip(config.sizes, config.repeats, strict=True):
        timing += _time_size(size, repeats, config.target_s, skipped)
    memory = []
    for size in config.sizes:
        _progress(f"memory at {size:,} entries: one process per cache")
        memory += [_memory(variant.name, size) for variant in MEMORY if variant.needs not in skipped]
    instructions = callgrind(config.callgrind_sizes) if config.callgrind else None
    return {
        "config": asdict(config),
        "facts": {
            **facts,
            "cpu_share": share.stop(),
            "loadavg": os.getloadavg(),
            "elapsed_s": round(time.perf_counter() - started, 1),
        },
        "skipped": skipped,
        "timing": timing,
        "memory": memory,
        "callgrind": instructions,
    }


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(head) - 1)
    return [f"| {' | '.join(cells)} |" for cells in (head, align, *rows)]


def _ns(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _bytes(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def _timing_lines(table: str, title: str, result: dict[str, Any]) -> list[str]:
    sizes = result["config"]["sizes"]
    cells = {(row["name"], row["size"]): row for row in result["timing"] if row["table"] == table}
    head = ["row"]
    for size in sizes:
        head += [f"{size:,} ns", "/ MinLRU"]
    body = []
    for name in dict.fromkeys(name for name, _ in cells):
        line = [name]
        for size in sizes:
            row = cells[(name, size)]
            line += [_ns(row["median_ns"]), _ratio(row["ratio"])]
        body.append(line)
    return ["", f"#### {title}", "", *_table(head, body)]


def _memory_lines(result: dict[str, Any]) -> list[str]:
    sizes = result["config"]["sizes"]
    cells = {(row["name"], row["size"]): row for row in result["memory"]}
    head = ["cache"]
    for size in sizes:
        head += [f"{size:,} traced", "/ MinLRU", "RSS"]
    body = []
    for name in dict.fromkeys(name for name, _ in cells):
        line = [name]
        for size in sizes:
            row = cells[(name, size)]
            floor = cells[(_MINLRU, size)]["traced_per_entry"]
            line += [_bytes(row["traced_per_entry"]), _ratio(row["traced_per_entry"] / floor)]
            line.append(_bytes(row["rss_per_entry"]))
        body.append(line)
    keys = ", ".join(f"{cells[(_MINLRU, size)]['key_bytes_per_entry']:.1f}" for size in sizes)
    lines = [
        "",
        "#### memory: bytes per entry, the keys' own size excluded (one value object shared by all)",
        "",
        *_table(head, body),
        "",
        f"The keys themselves (`sys.getsizeof`, not counted above): {keys} B each at {_sizes(sizes)}. "
        "RSS: the resident-size growth of the first build; at small sizes it is coarse (pages, and "
        "memory the interpreter had already mapped), the traced figure is the exact one.",
    ]
    # Where our bytes go: differences of the rows above (traced).
    parts = [
        ("hash table (a plain dict)", "dict (no LRU, for reference)", None),
        ("LRU links (OrderedDict over dict)", _MINLRU, "dict (no LRU, for reference)"),
        ("entry tuple (value, expires_at, size)", _OURS, _MINLRU),
        (f"{_TTL}: expiry float + expiry-wheel set slot", _OURS_TTL, _OURS),
        ("size int > 256 (not a cached small int)", _OURS_BIG, _OURS),
    ]
    body = []
    for label, top, bottom in parts:
        line = [label]
        for size in sizes:
            value = cells[(top, size)]["traced_per_entry"]
            if bottom is not None:
                value -= cells[(bottom, size)]["traced_per_entry"]
            line.append(_bytes(value))
        body.append(line)
    head = ["part", *(f"{size:,}" for size in sizes)]
    title = "where AsyncLRUCache's bytes per entry go (differences of traced rows)"
    return [*lines, "", f"#### {title}", "", *_table(head, body)]


def _sizes(sizes: Sequence[int]) -> str:
    return " / ".join(f"{size:,}" for size in sizes)


def _callgrind_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    short, long_ = _CG_CALLS
    title = f"instructions per op (callgrind; runs of {short:,} and {long_:,} calls, the loop included)"
    lines = ["", f"#### {title}", ""]
    return lines + _table(
        ["op", "entries", "AsyncLRUCache Ir", "MinLRU Ir", "/ MinLRU"],
        [
            [
                row["op"],
                f"{row['size']:,}",
                f"{row['ir'][_OURS]:,.0f}",
                f"{row['ir'][_MINLRU]:,.0f}",
                _ratio(row["ratio"]),
            ]
            for row in rows
        ],
    )


def markdown(result: dict[str, Any]) -> str:
    facts, config, share = result["facts"], result["config"], result["facts"]["cpu_share"]
    versions = facts["packages"]
    repeats = ", ".join(f"{r} at {s:,}" for s, r in zip(config["sizes"], config["repeats"], strict=True))
    lines = [
        f"- {facts['date']} | {facts['cpu']} | nproc {facts['nproc']} | {facts['python']} | "
        f"cachetools {versions.get('cachetools') or 'not installed'} | "
        f"otel_cache at {facts.get('source') or 'unknown commit'}",
        f"- ns per op: median of the rounds ({repeats} entries), each run at least "
        f"{config['target_s'] * 1e3:g} ms, gc off; / MinLRU: over the MinLRU row of the same "
        f"operation and size in this run",
    ]
    if share["others"] is not None:
        lines.append(
            f"- other processes used {share['others']:.0%} of the CPUs (steal {share['steal']:.0%}); "
            f"load average at the end {facts['loadavg'][0]:.2f}; run took {facts['elapsed_s']} s"
        )
    for package in result["skipped"]:
        lines.append(f"- skipped: {package} (not installed)")
    lines += _timing_lines(
        "hit", "hit: get of present keys in a random order over the whole cache (ns per op)", result
    )
    lines += _timing_lines(
        "insert", "insert with eviction: put of a new key into a full cache (ns per op)", result
    )
    lines += _memory_lines(result)
    if result["callgrind"] is not None:
        lines += _callgrind_lines(result["callgrind"])
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds: the shape only")
    parser.add_argument(
        "--callgrind", action="store_true", help="also count instructions per hit and insert (valgrind)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw results to PATH")
    parser.add_argument("--memory-child", nargs=2, metavar=("CACHE", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--callgrind-child", metavar="SIZES", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.memory_child:
        name, size = args.memory_child
        print(json.dumps(_memory_child(name, int(size))))
        return 0
    if args.callgrind_child:
        _cg_child([int(size) for size in args.callgrind_child.split(",")])
        return 0
    config = replace(QUICK if args.quick else FULL, callgrind=args.callgrind)
    result = run(config)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
