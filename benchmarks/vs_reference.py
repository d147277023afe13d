"""How much slower or faster this machine is than a reference run, row by row.

``python -m benchmarks.vs_reference RESULTS.json REFERENCE.md`` reads the raw
results that ``python -m benchmarks.l1 --json RESULTS.json`` wrote and the
markdown tables of a run on another machine (rows ``| bench | ns/op | ...``), and
prints, for every row both measured, here / reference. Rows that measure the same
code on both machines (the Python primitives, the same versions of the peers) give
the machine factor; our cache's figures divided by it are what they would roughly
be on the reference machine. The reference figures are the other machine's, never
ours.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from pathlib import Path

__all__ = ["main", "reference_rows"]

# Our row name -> the reference's, where the two name the same measurement differently.
_ALIASES = {
    "AsyncMinLRU await aget hit": "AsyncMinLRU await get hit",
    "AsyncMinLRU await aput update": "AsyncMinLRU await set update",
    "cachetools.TTLCache ttl=600 get hit": "cachetools.TTLCache get hit",
    "cachetools.TTLCache ttl=600 [k]=v update": "cachetools.TTLCache [k]=v update",
    "cachetools.TTLCache ttl=600 [k]=v insert+evict": "cachetools.TTLCache [k]=v insert+evict",
    "aiocache SimpleMemoryCache await get hit": "aiocache SimpleMemoryCache get hit (timeout=None)",
    "aiocache SimpleMemoryCache await set update": "aiocache SimpleMemoryCache set update (timeout=None)",
    "theine.Cache get hit": "theine.Cache (tlfu) get hit",
    "theine.Cache set update": "theine.Cache (tlfu) set update",
    "theine.Cache set insert": "theine.Cache (tlfu) set insert+evict",
}
_ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*([\d,]+(?:\.\d+)?)\s*\|")


def reference_rows(text: str) -> dict[str, float]:
    """``{bench: ns/op}`` from markdown tables; the first table holding a name wins."""
    rows: dict[str, float] = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if match:
            rows.setdefault(match[1], float(match[2].replace(",", "")))
    return rows


def _medians(results: dict[str, object]) -> tuple[dict[str, float], dict[str, str]]:
    runs = results["runs"]
    assert isinstance(runs, list)
    medians: dict[str, float] = {}
    groups: dict[str, str] = {}
    for sample in runs[0]["micro"]:
        name = sample["name"]
        per_process = [
            statistics.median(next(s for s in run["micro"] if s["name"] == name)["ns_per_op"]) for run in runs
        ]
        medians[name] = statistics.median(per_process)
        groups[name] = sample["group"]
    return medians, groups


def _geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(value) for value in values)) if values else math.nan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.vs_reference", description=__doc__.splitlines()[0]
    )
    parser.add_argument("results", type=Path, help="JSON written by python -m benchmarks.l1 --json")
    parser.add_argument("reference", type=Path, help="markdown tables of a run on another machine")
    args = parser.parse_args(argv)
    ours, groups = _medians(json.loads(args.results.read_text()))
    reference = reference_rows(args.reference.read_text())
    factors: dict[str, list[float]] = {}
    print("| bench | here ns/op | reference machine ns/op | here / reference |\n| --- | ---: | ---: | ---: |")
    for name, here in ours.items():
        there = reference.get(_ALIASES.get(name, name))
        if there is None:
            continue
        factors.setdefault(groups[name], []).append(here / there)
        print(f"| {name} | {here:,.1f} | {there:,.1f} | {here / there:.2f} |")
    print()
    for group, values in factors.items():
        print(f"- geometric mean of here / reference, {group} rows ({len(values)}): {_geomean(values):.2f}")
    shared = [value for group, values in factors.items() if group != "otel_cache" for value in values]
    factor = _geomean(shared)
    print(f"- machine factor (all shared rows, {len(shared)}): {factor:.2f}")
    print("\n| otel_cache row | here ns/op | here / machine factor |\n| --- | ---: | ---: |")
    for name, here in ours.items():
        if groups[name] == "otel_cache":
            print(f"| {name} | {here:,.1f} | {here / factor:,.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
