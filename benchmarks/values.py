"""What faithful values cost: the L2 serializer against raw orjson, ``python -m benchmarks.values [--quick]``.

For each value below, the cache's JSON serializer (``make_serializer("json")``: the
walk that decides plain or tagged, then orjson; a tagged tree is built first and
rebuilt on read) against orjson alone on the same value (``orjson.dumps`` /
``orjson.loads``, which turns tuples into lists and dataclasses into dicts: the
reference is what fidelity is paid against, not an equal)::

    small dict      {"id": 1, "name": "x", "tags": ["a", "b"]}        plain
    rows 100        100 such dicts in a list                            plain
    tuple rows 100  100 tuples (int, str, float)                        tagged
    dataclass       a dataclass with a UUID, a datetime, a Decimal,     tagged, declared
                    a list of 3 small dataclasses and an enum

Method: ``timeit`` per call, gc off, the variants interleaved round by round
(``--rounds``, 7 by default), the median of the rounds; the ratio ``cache / raw`` is
of the medians, with its min..max round by round. Neither path is on an L1 hit: L1
keeps the object. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import enum
import gc
import statistics
import sys
import timeit
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from otel_cache.core.serialization import make_serializer

__all__ = ["CASES", "main", "measure"]


class Status(enum.Enum):
    OPEN = "open"


@dataclasses.dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


@dataclasses.dataclass(frozen=True)
class Order:
    id: uuid.UUID
    placed: dt.datetime
    total: Decimal
    lines: list[Line]
    status: Status


SMALL = {"id": 1, "name": "x", "tags": ["a", "b"]}
CASES: dict[str, Any] = {
    "small dict": SMALL,
    "rows 100": [dict(SMALL, id=i) for i in range(100)],
    "tuple rows 100": [(i, f"name-{i}", i / 3) for i in range(100)],
    "dataclass": Order(
        uuid.UUID(int=7),
        dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC),
        Decimal("19.99"),
        [Line(f"sku-{i}", i) for i in range(3)],
        Status.OPEN,
    ),
}


def _raw_default(value: Any) -> Any:
    # orjson stores dataclasses, UUIDs and datetimes natively; Decimals and enums need help.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError


def measure(rounds: int, loops: int) -> list[dict[str, Any]]:
    """One row per case and direction: µs per call of the cache and of raw orjson."""
    serializer = make_serializer("json", value_types=[Status, Line, Order])
    rows = []
    for name, value in CASES.items():
        stored = serializer.dumps(value)
        raw_stored = orjson.dumps(value, default=_raw_default)
        assert serializer.loads(stored) == value, name
        pairs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
            "write": (
                lambda v=value: serializer.dumps(v),
                lambda v=value: orjson.dumps(v, default=_raw_default),
            ),
            "read": (lambda s=stored: serializer.loads(s), lambda s=raw_stored: orjson.loads(s)),
        }
        for direction, (cache_call, raw_call) in pairs.items():
            cache_us: list[float] = []
            raw_us: list[float] = []
            for index in range(rounds):
                order = [(cache_call, cache_us), (raw_call, raw_us)]
                for call, out in order if index % 2 == 0 else reversed(order):
                    out.append(timeit.timeit(call, number=loops) / loops * 1e6)
            ratios = [c / r for c, r in zip(cache_us, raw_us, strict=True)]
            rows.append(
                {
                    "case": name,
                    "direction": direction,
                    "format": chr(stored[0]),
                    "cache_us": statistics.median(cache_us),
                    "raw_us": statistics.median(raw_us),
                    "ratio_min": min(ratios),
                    "ratio_max": max(ratios),
                }
            )
            print(f"  {name} {direction}", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--loops", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 50 calls: a smoke run")
    args = parser.parse_args(argv)
    rounds, loops = (3, 50) if args.quick else (args.rounds, args.loops)
    gc.disable()
    try:
        rows = measure(rounds, loops)
    finally:
        gc.enable()
    print("| value | direction | format | cache µs | orjson µs | cache / orjson (min..max) |")
    print("| --- | --- | :---: | ---: | ---: | ---: |")
    for row in rows:
        ratio = row["cache_us"] / row["raw_us"]
        print(
            f"| {row['case']} | {row['direction']} | `{row['format']}` | {row['cache_us']:.2f} | "
            f"{row['raw_us']:.2f} | {ratio:.2f}x ({row['ratio_min']:.2f}..{row['ratio_max']:.2f}) |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
