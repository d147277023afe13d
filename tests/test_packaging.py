"""The package as installed: one version everywhere, a command line that says it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import otel_cache

ROOT = Path(__file__).resolve().parents[1]


def test_the_version_is_written_once_and_read_everywhere() -> None:
    assert importlib.metadata.version("otel-cache") == otel_cache.__version__
    assert "\nversion = " not in (ROOT / "pyproject.toml").read_text()  # dynamic: from _version.py


def test_the_command_line_says_its_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "otel_cache.cli", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"otel-cache {otel_cache.__version__}"


def test_the_license_ships_beside_the_code() -> None:
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
