"""The package as built and installed: a wheel of the library alone, one version everywhere, a
command line that says it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement

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


def test_the_wheel_holds_the_library_and_nothing_else(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("otel_cache-*.whl")
    assert wheel.name == f"otel_cache-{otel_cache.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"otel_cache-{otel_cache.__version__}.dist-info"
        assert {name.split("/")[0] for name in names} == {"otel_cache", info}
        assert not [name for name in names if "demo" in name]  # the demo is its own distribution
        assert "otel_cache/py.typed" in names
        assert "otel_cache/telemetry/names.py" in names
        assert f"{info}/licenses/LICENSE" in names
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert "Requires-Python: >=3.11" in metadata
    assert "Classifier: Typing :: Typed" in metadata
    assert "License-Expression: MIT" in metadata
    assert "otel-cache = otel_cache.cli:main" in entry_points
    assert "otel_cache = otel_cache.telemetry.instrumentor:OtelCacheInstrumentor" in entry_points
    # Lower bounds, not pins, on what a user installs with the library and its extras.
    # (One pin: the dashboard generator's SDK, whose exact output is the committed JSON.)
    requirements = [
        Requirement(line.removeprefix("Requires-Dist:").strip())
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    assert len(requirements) > 10
    pinned = [
        str(requirement)
        for requirement in requirements
        if any(spec.operator in ("==", "===") for spec in requirement.specifier)
        and requirement.name != "grafana-foundation-sdk"
    ]
    assert pinned == [], pinned


def test_otel_cache_demo_without_the_demo_says_how_to_install_it() -> None:
    # As if only the library's wheel were installed: the demo's package cannot be imported.
    script = (
        "import sys; sys.modules['otel_cache_demo'] = None; "
        "from otel_cache.cli import main; sys.exit(main(['demo']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "pip install -e ./demo" in done.stderr
