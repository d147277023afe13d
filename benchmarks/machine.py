"""Facts about the machine and the packages a benchmark ran with, for its report.

:class:`CpuShare` tells how much CPU *other* processes took while the benchmark ran:
on a shared 2-core machine a busy neighbour inflates every figure, so a report
should say when its run was not alone.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["CpuShare", "machine_facts"]

PACKAGES = ("otel-cache", "cachetools", "theine", "theine-core", "async-lru", "cashews", "aiocache", "rich")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _source_state() -> str | None:
    """The commit of the checkout the package runs from, "+dirty" if tracked ``otel_cache/`` files changed."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "otel_cache")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


def machine_facts() -> dict[str, object]:
    """Date, CPU, Python, the source commit, and the versions of the benchmarked packages."""
    return {
        "source": _source_state(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "nproc": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "switch_interval_s": sys.getswitchinterval(),
        "packages": {package: _version(package) for package in PACKAGES},
    }


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, steal) jiffies of all CPUs since boot, from ``/proc/stat``; None elsewhere."""
    try:
        fields = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    steal = fields[7] if len(fields) > 7 else 0
    return sum(fields[:8]) - idle - steal, steal


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class CpuShare:
    """Started at creation; :meth:`stop` gives the CPU share others used meanwhile."""

    def __init__(self) -> None:
        self._jiffies = _cpu_jiffies()
        self._own = _own_cpu_s()
        self._wall = time.perf_counter()

    def stop(self) -> dict[str, float | None]:
        """``others``: busy CPU time not ours, over wall time x CPUs (0..1); ``steal`` likewise."""
        end = _cpu_jiffies()
        if self._jiffies is None or end is None:
            return {"others": None, "steal": None}
        capacity = (time.perf_counter() - self._wall) * (os.cpu_count() or 1)
        tick = os.sysconf("SC_CLK_TCK")
        busy = (end[0] - self._jiffies[0]) / tick
        steal = (end[1] - self._jiffies[1]) / tick
        others = max(0.0, busy - (_own_cpu_s() - self._own))
        return {"others": round(others / capacity, 3), "steal": round(steal / capacity, 3)}
