"""Where the time of an ``AsyncLRUCache`` hit and update goes: ``python -m benchmarks.breakdown``.

Times the layers of the hot paths separately, in one process: the full call, the
pure core alone (``cache._core``, a private attribute: this is a diagnostic, not an
API), the lock's raw acquire/release as the shell calls them, and the default
sizer. The differences are estimates (layers overlap in cache and branch
predictor state), good for finding the big parts, not for adding up to the ns.

Both the median and the minimum of the repeats are printed: on a shared machine
the minimum is the better estimate of what the code costs when it is not interrupted.
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.harness import Bench, Namespace, run_benches
from benchmarks.workload import CAPACITY, HIT_KEY, KEYS, TTL_S, VALUE
from otel_cache.core.sizing import deep_sizeof
from otel_cache.l1.cache import AsyncLRUCache

__all__ = ["main"]


def _cache(**options: object) -> AsyncLRUCache[str, str]:
    cache: AsyncLRUCache[str, str] = AsyncLRUCache(max_entries=CAPACITY, **options)  # type: ignore[arg-type]
    for key in KEYS:
        cache.put(key, VALUE)
    return cache


def _namespace(**options: object) -> Namespace:
    cache = _cache(**options)
    return {
        "c": cache,
        "core": cache._core,
        "acquire": cache._try_acquire,
        "release": cache._release,
        "sizer": deep_sizeof,
        "clock": time.monotonic,
        "k": HIT_KEY,
        "v": VALUE,
    }


def _benches() -> list[Bench]:
    plain, ttl, unsized = _namespace, lambda: _namespace(default_ttl=TTL_S), lambda: _namespace(sizer=None)
    rows = [
        ("loop overhead (pass)", "pass", plain, False),
        ("hit: c.get(k)", "c.get(k)", plain, False),
        ("hit: await c.aget(k)", "await c.aget(k)", plain, True),
        ("hit: core.get(k, None) (no lock, no shell)", "core.get(k, None)", plain, False),
        ("hit: lock acquire(False) + release()", "acquire(False); release()", plain, False),
        ("hit ttl=600: c.get(k)", "c.get(k)", ttl, False),
        ("hit ttl=600: core.get(k, None)", "core.get(k, None)", ttl, False),
        ("clock: time.monotonic()", "clock()", plain, False),
        ("update: c.put(k, v)", "c.put(k, v)", plain, False),
        ("update: core.put(k, v)", "core.put(k, v)", plain, False),
        ("update: sizer(k) + sizer(v) (deep_sizeof)", "sizer(k) + sizer(v)", plain, False),
        ("update sizer=None: c.put(k, v)", "c.put(k, v)", unsized, False),
        ("update sizer=None: core.put(k, v)", "core.put(k, v)", unsized, False),
        ("update ttl=600: c.put(k, v)", "c.put(k, v)", ttl, False),
        ("update ttl=600: core.put(k, v)", "core.put(k, v)", ttl, False),
    ]
    return [Bench(name, "breakdown", stmt, setup, is_async=is_async) for name, stmt, setup, is_async in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.breakdown", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--target-ms", type=float, default=30.0)
    args = parser.parse_args(argv)
    print("| layer | ns/op median | ns/op min |\n| --- | ---: | ---: |")
    for sample in run_benches(_benches(), repeats=args.repeats, target_s=args.target_ms / 1e3):
        print(
            f"| {sample.name} | {statistics.median(sample.ns_per_op):,.1f} | {min(sample.ns_per_op):,.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
