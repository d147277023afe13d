"""The L1 micro-benchmark: ``python -m benchmarks.l1 [--quick] [--markdown] [--json PATH]``.

Runs, in one process (or in each of ``--processes N`` fresh processes, one after
another, then takes the median over processes):

1. ADR-014's "1000 ops" figures (:mod:`benchmarks.adr`);
2. the contended run: 2 threads and the event loop on one cache
   (:mod:`benchmarks.contention`);
3. the micro rows (:mod:`benchmarks.suite`, :mod:`benchmarks.peers`): ns/op of
   one operation in a timeit-style loop, gc off, ``--repeats`` interleaved
   rounds (:mod:`benchmarks.harness`).

Peers that are not installed are reported as skipped. Progress goes to stderr,
the table to stdout. See ``docs/benchmarks.md`` for the method and a reading.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.adr import run_adr
from benchmarks.contention import run_contention
from benchmarks.harness import Bench, run_benches
from benchmarks.machine import CpuShare, machine_facts
from benchmarks.peers import peer_benches
from benchmarks.report import summarise
from benchmarks.suite import baseline_benches, minimal_benches, otel_cache_benches

__all__ = ["Config", "main", "run_once"]

_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Config:
    """How long to measure; :data:`FULL` and :data:`QUICK` are the two presets."""

    processes: int
    repeats: int
    target_s: float
    adr_repeats: int
    contention_s: float
    contention_runs: int
    only: str = ""

    def child_args(self) -> list[str]:
        return [
            "--repeats", str(self.repeats),
            "--target-ms", str(self.target_s * 1e3),
            "--adr-repeats", str(self.adr_repeats),
            "--contention-s", str(self.contention_s),
            "--contention-runs", str(self.contention_runs),
            "--only", self.only,
        ]  # fmt: skip


FULL = Config(processes=3, repeats=7, target_s=0.05, adr_repeats=300, contention_s=1.0, contention_runs=1)
QUICK = Config(processes=1, repeats=5, target_s=0.01, adr_repeats=50, contention_s=0.25, contention_runs=1)


def _benches(only: str) -> tuple[list[Bench], list[str]]:
    peers, skipped = peer_benches()
    benches = [*baseline_benches(), *minimal_benches(), *otel_cache_benches(), *peers]
    if only:
        # The minimal-LRU rows are the ratio column's reference: always keep them.
        benches = [b for b in benches if only.lower() in b.name.lower() or b.group == "minimal LRU"]
    return benches, skipped


def run_once(config: Config) -> dict[str, Any]:
    """Every measurement once, in this process; JSON-friendly raw results."""
    # The scenarios first: a peer's setup may start threads (theine does).
    _progress("ADR-014 batches")
    adr = [asdict(sample) for sample in run_adr(config.adr_repeats)]
    contention = []
    for run in range(config.contention_runs):
        _progress(f"contended run {run + 1}/{config.contention_runs}")
        contention.append(run_contention(config.contention_s))
    benches, skipped = _benches(config.only)
    samples = run_benches(benches, repeats=config.repeats, target_s=config.target_s, progress=_progress)
    micro = [asdict(sample) for sample in samples]
    return {"micro": micro, "adr": adr, "contention": contention, "skipped": skipped}


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run_child(config: Config, index: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.l1", "--child", *config.child_args()]
    _progress(f"process {index + 1}/{config.processes}")
    done = subprocess.run(command, cwd=_ROOT, stdout=subprocess.PIPE, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.l1", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables instead of rich ones")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw results to PATH")
    parser.add_argument("--processes", type=int, help="fresh processes to run, one after another")
    parser.add_argument("--repeats", type=int, help="timed runs per row and process")
    parser.add_argument("--target-ms", type=float, help="least duration of one timed run")
    parser.add_argument("--adr-repeats", type=int, help="timed 1000-op batches per scenario")
    parser.add_argument("--contention-s", type=float, help="duration of one contended run")
    parser.add_argument("--contention-runs", type=int, help="contended runs per process")
    parser.add_argument(
        "--only", default="", help="keep the rows whose name contains this (case-insensitive)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _config(args: argparse.Namespace) -> Config:
    config = QUICK if args.quick else FULL
    overrides = {
        "processes": args.processes,
        "repeats": args.repeats,
        "target_s": args.target_ms / 1e3 if args.target_ms is not None else None,
        "adr_repeats": args.adr_repeats,
        "contention_s": args.contention_s,
        "contention_runs": args.contention_runs,
        "only": args.only,
    }
    return replace(config, **{key: value for key, value in overrides.items() if value is not None})


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    config = _config(args)
    if args.child:
        # stdout carries the JSON alone: anything a peer prints goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            result = run_once(config)
        json.dump(result, sys.stdout)
        return 0
    facts = machine_facts()
    cpu = CpuShare()
    started = time.perf_counter()
    if config.processes == 1:
        runs = [run_once(config)]
    else:
        runs = [_run_child(config, index) for index in range(config.processes)]
    elapsed_s = round(time.perf_counter() - started, 1)
    meta = {
        **facts,
        **asdict(config),
        "elapsed_s": elapsed_s,
        "cpu_share": cpu.stop(),
        "loadavg": os.getloadavg(),
    }
    report = summarise(runs, meta)
    if args.markdown or importlib.util.find_spec("rich") is None:
        print(report.markdown())
    else:
        report.print_rich()
    for skipped in report.skipped:
        _progress(f"skipped {skipped}: not installed")
    _progress(f"total {meta['elapsed_s']} s")
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
