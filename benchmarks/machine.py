"""Facts about the machine and the packages a benchmark ran with, for its report."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import sys
from pathlib import Path

__all__ = ["machine_facts"]

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


def machine_facts() -> dict[str, object]:
    """Date, CPU, Python and the versions of the benchmarked packages (None: not installed)."""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "nproc": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "switch_interval_s": sys.getswitchinterval(),
        "packages": {package: _version(package) for package in PACKAGES},
    }
