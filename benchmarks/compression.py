"""What compression costs and saves on L2 values, ``python -m benchmarks.compression [--quick]``.

For rows of small dicts (``{"id", "name", "tags"}``, 100 and 1,000 of them) serialized by the
cache's JSON serializer, per codec (none, zstd level 3, lz4): the size written to Redis,
its ratio to the serialized size, and the µs to write (compress) and to read
(decompress and decode) one value, next to the same value uncompressed.

Method: ``timeit`` per call, gc off, the codecs interleaved round by round
(``--rounds``, 7 by default), medians of the rounds. The network time saved by smaller
values is not measured here (on loopback it is small; on a real network it is the point).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import timeit
from typing import Any

from otel_cache.core.compression import make_compression
from otel_cache.core.serialization import make_serializer

__all__ = ["CODECS", "SIZES", "main", "measure"]

CODECS = ("none", "zstd", "lz4")
SIZES = (100, 1000)


def measure(rounds: int, loops: int) -> list[dict[str, Any]]:
    """One row per size and codec."""
    serializer = make_serializer("json")
    rows = []
    for size in SIZES:
        value = [{"id": i, "name": f"name-{i}", "tags": ["a", "b"]} for i in range(size)]
        data = serializer.dumps(value)
        packs = {"none": lambda d=data: d}
        for name in CODECS[1:]:
            compression = make_compression(name, min_bytes=1)
            packs[name] = lambda d=data, c=compression: c.pack(d)
        stored = {name: pack() for name, pack in packs.items()}
        assert all(serializer.loads(blob) == value for blob in stored.values() if blob is not None)
        write: dict[str, list[float]] = {name: [] for name in CODECS}
        read: dict[str, list[float]] = {name: [] for name in CODECS}
        for index in range(rounds):
            order = CODECS if index % 2 == 0 else tuple(reversed(CODECS))
            for name in order:
                blob = stored[name]
                write[name].append(timeit.timeit(packs[name], number=loops) / loops * 1e6)
                read[name].append(
                    timeit.timeit(lambda b=blob: serializer.loads(b), number=loops) / loops * 1e6
                )
            print(f"  {size} rows, round {index + 1}/{rounds}", file=sys.stderr)
        for name in CODECS:
            blob = stored[name]
            assert blob is not None
            rows.append(
                {
                    "rows": size,
                    "codec": name,
                    "bytes": len(blob),
                    "ratio": len(blob) / len(data),
                    "write_us": statistics.median(write[name]),
                    "read_us": statistics.median(read[name]),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--loops", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 10 calls: a smoke run")
    args = parser.parse_args(argv)
    rounds, loops = (3, 10) if args.quick else (args.rounds, args.loops)
    gc.disable()
    try:
        rows = measure(rounds, loops)
    finally:
        gc.enable()
    print("| rows | codec | bytes in Redis | / serialized | compress µs | read µs |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        compress = "-" if row["codec"] == "none" else f"{row['write_us']:.1f}"
        print(
            f"| {row['rows']} | {row['codec']} | {row['bytes']} | {row['ratio']:.3f} | "
            f"{compress} | {row['read_us']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
