"""``run_quick``: run a benchmark module's ``--quick`` mode in a subprocess, as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_quick(module: str, *args: str, timeout: float = 110) -> str:
    """``python -m {module} --quick {args}`` from the repository root; its stdout, once it exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
