"""Instructions per labelled part of a child process run under ``valgrind --tool=callgrind``.

For the benchmarks' ``--callgrind`` options. The child (``python -m <module> <args>``)
marks the start of each part with a :class:`Marks`, which notes the label and calls
``os.getppid()``: callgrind dumps its counters before every call of that C function
(``--dump-before=getppid``), so part *i* of the dumps holds what ran after mark *i*. The
child prints the labels as its last line of JSON. A figure per call is then the
difference of a short and a long run of calls over the difference of their lengths,
which cancels the fixed costs of a run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["MARKER", "Marks", "available", "labelled_instructions"]

MARKER = "getppid"  # the C function whose calls make callgrind dump its counters
_BETWEEN = "between"


class Marks:
    """The child's side: ``mark(label)`` before each part; ``print(marks.json())`` at the end."""

    def __init__(self) -> None:
        self.labels: list[str] = []

    def mark(self, label: str = _BETWEEN) -> None:
        self.labels.append(label)
        os.getppid()

    def json(self) -> str:
        return json.dumps(self.labels)


def available() -> bool:
    return shutil.which("valgrind") is not None


def labelled_instructions(module: str, args: Sequence[str], *, cwd: Path, timeout: float) -> dict[str, int]:
    """Run ``python -m module args`` under callgrind; the instructions of each labelled part."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            "valgrind",
            "--tool=callgrind",
            "-q",
            f"--dump-before={MARKER}",
            f"--callgrind-out-file={Path(tmp) / 'callgrind.out'}",
            sys.executable,
            "-m",
            module,
            *args,
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(
            command, cwd=cwd, check=True, capture_output=True, text=True, timeout=timeout, env=env
        )
        parts = _dumped_parts(Path(tmp))
    labels: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    if len(parts) != len(labels) + 1:
        raise RuntimeError(f"callgrind dumped {len(parts)} parts for {len(labels)} marks")
    # Part 1 is everything before the first mark; part i + 2 follows mark i.
    return {label: parts[i + 2] for i, label in enumerate(labels) if label != _BETWEEN}


def _dumped_parts(directory: Path) -> dict[int, int]:
    """Instructions of each dumped part of a callgrind run (its ``part:`` and ``totals:`` lines)."""
    totals = {}
    for path in directory.glob("callgrind.out*"):
        text = path.read_text()
        part = re.search(r"^part:\s*(\d+)", text, re.MULTILINE)
        total = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.MULTILINE)
        if part is None or total is None:
            raise RuntimeError(f"no part or instruction total in {path.name}")
        totals[int(part.group(1))] = int(total.group(1))
    return totals
