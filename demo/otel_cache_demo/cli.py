"""``otel-cache demo``: the live sync-vs-async demo's command line.

::

    otel-cache demo                          # L1 only, about 4 minutes, live view, report folder
    otel-cache demo --redis embedded         # with a redis-server of its own on loopback
    otel-cache demo --rtt-ms 1               # ... behind a proxy adding 1 ms of round trip
    otel-cache demo --redis-url redis://host:6379/0
    otel-cache demo --smoke --no-live        # about 20 s, plain lines (CI)
    otel-cache demo --sweep                  # the map: 4 round trips x 4 concurrencies, ~15 min

It starts the demo service in both modes (sync: ADR-014's legacy design; async: its new
one), drives the same load at each in turn on the same CPU budget, shows both side by side
while it runs, prints a summary table with ADR-014's claims beside the measured ratios,
and writes ``reports/demo-<UTC time>/`` (``report.md``, ``results.json``, PNG charts, the
children's logs). The method is in :mod:`otel_cache_demo.runner` and ``docs/benchmarks.md``.

Exit status: 0 done, 1 the run failed (a service did not start, ...), 2 bad options,
130 interrupted (Ctrl-C or SIGTERM; every child process is stopped first).

The library's ``otel-cache`` command hands ``demo`` and what follows it to :func:`main`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otel_cache_demo.runner import DemoView
    from otel_cache_demo.sweep import SweepOptions

__all__ = ["main"]


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    demo = argparse.ArgumentParser(
        prog="otel-cache demo",
        description=(
            "Start the demo service in both modes, drive the same load at each in alternating "
            "rounds on the same CPU budget, show both live, and write a report folder."
        ),
    )
    demo.add_argument(
        "--duration", type=_positive, default=None, help="measured seconds per mode (default 90; smoke 6)"
    )
    demo.add_argument(
        "--rounds", type=_count, default=None, help="rounds per mode, alternating (default 3; smoke 2)"
    )
    demo.add_argument(
        "--warmup", type=_non_negative, default=None, help="warm-up seconds per mode (default: a round)"
    )
    demo.add_argument("--concurrency", type=_count, default=None, help="connections of the load (default 32)")
    demo.add_argument(
        "--rate",
        type=_positive,
        default=None,
        help="requests/s sent to each mode (paced, the same for both); default: closed loop, as fast as "
        "each mode answers",
    )
    demo.add_argument(
        "--graphql-share", type=float, default=0.2, help="share of requests sent by GraphQL (default 0.2)"
    )
    backend = demo.add_mutually_exclusive_group()
    backend.add_argument(
        "--redis",
        choices=("none", "embedded"),
        default=None,
        help="none: L1 only (default); embedded: start a redis-server of its own on a free port",
    )
    backend.add_argument(
        "--redis-url", default=None, help="use this Redis (sync: its database N, async: N + 1)"
    )
    demo.add_argument(
        "--rtt-ms",
        type=_non_negative,
        default=None,
        help="put a proxy adding this round trip between the services and Redis (implies Redis)",
    )
    demo.add_argument(
        "--l1-max-entries", type=_count, default=500, help="each service's L1 bound in entries (default 500)"
    )
    demo.add_argument("--smoke", action="store_true", help="a short run (about 20 s) to see that it works")
    demo.add_argument(
        "--sweep",
        action="store_true",
        help="run both modes at Redis round trips of 0, 1, 5, 15 ms and 8, 32, 128, 512 connections "
        "(each cell: --duration, default 10 s, in --rounds, default 2) and map where the ADR's claims hold",
    )
    demo.add_argument(
        "--out", type=Path, default=None, help="report folder (default reports/demo-<UTC time>)"
    )
    demo.add_argument("--no-live", action="store_true", help="plain log lines instead of the live view")
    demo.add_argument("--seed", type=int, default=0, help="the load's catalogue and request sequence")
    demo.add_argument("--no-pin", action="store_true", help="do not pin the services and the load to CPUs")
    demo.add_argument("--service-cpu", type=int, default=None, help="CPU of the services (default: first)")
    demo.add_argument(
        "--load-cpu", type=int, default=None, help="CPU of the load generator (default: second)"
    )
    return demo


def _demo(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from otel_cache_demo.live import LiveView, LogView, print_summary
    from otel_cache_demo.runner import SMOKE, DemoOptions, Interrupted, run_demo
    from otel_cache_demo.sweep import SweepOptions

    base = SMOKE if args.smoke else SweepOptions().cell if args.sweep else DemoOptions()
    if args.sweep and (args.rtt_ms is not None or args.concurrency is not None or args.rate is not None):
        print(
            "otel-cache demo: --sweep sets the round trip and the connections, closed loop", file=sys.stderr
        )
        return 2
    try:
        options = DemoOptions(
            duration_s=args.duration if args.duration is not None else base.duration_s,
            rounds=args.rounds if args.rounds is not None else base.rounds,
            warmup_s=args.warmup if args.warmup is not None else base.warmup_s,
            concurrency=args.concurrency if args.concurrency is not None else base.concurrency,
            rate=args.rate,
            graphql_share=args.graphql_share,
            redis=args.redis or "none",
            redis_url=args.redis_url,
            rtt_ms=args.rtt_ms,
            out=args.out,
            seed=args.seed,
            l1_max_entries=args.l1_max_entries,
            pin=not args.no_pin,
            service_cpu=args.service_cpu,
            load_cpu=args.load_cpu,
            command=shlex.join(["otel-cache", *argv]),
        )
    except ValueError as exc:
        print(f"otel-cache demo: {exc}", file=sys.stderr)
        return 2
    live = not args.no_live and sys.stdout.isatty()
    view = LiveView() if live else LogView()
    if args.sweep:
        return _sweep(SweepOptions(cell=options, out=args.out), LogView())
    try:
        result, folder = run_demo(options, view)
    except Interrupted as exc:
        print(f"otel-cache demo: interrupted ({exc}); every process it started is stopped", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"otel-cache demo: {exc}", file=sys.stderr)
        return 1
    print_summary(result, rich_table=live)
    for warning in result.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    print(f"report: {folder / 'report.md'}")
    return 0


def _sweep(options: SweepOptions, view: DemoView) -> int:
    from otel_cache_demo.runner import Interrupted
    from otel_cache_demo.sweep import run_sweep

    try:
        _cells, folder = run_sweep(options, view)
    except Interrupted as exc:
        print(f"otel-cache demo: interrupted ({exc}); every process it started is stopped", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"otel-cache demo: {exc}", file=sys.stderr)
        return 1
    print((folder / "sweep.md").read_text(encoding="utf-8"))
    print(f"map: {folder / 'sweep.md'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo with ``argv`` (the arguments after ``demo``); returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    return _demo(_parser().parse_args(arguments), ["demo", *arguments])


if __name__ == "__main__":
    sys.exit(main())
