"""What the end-to-end tests share: a real Prometheus they start, and the dashboard's queries
with Grafana's variables substituted."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from otel_cache_demo.runner import ChildProcess, free_port

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "dashboards" / "otel-cache.json"


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or shutil.which("prometheus", path="/usr/bin")
    if found is None:
        pytest.fail("prometheus is not installed (Debian: apt-get install prometheus; .ci/run does it)")
    return found


# -- the dashboard's queries ------------------------------------------------------------------------


def dashboard_panels() -> Iterator[dict[str, Any]]:
    for panel in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]:
        yield panel
        yield from panel.get("panels") or ()


def prometheus_targets() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every Prometheus query of the dashboard."""
    found = []
    for panel in dashboard_panels():
        for target in panel.get("targets") or ():
            datasource = target.get("datasource") or panel.get("datasource") or {}
            if datasource.get("type") == "prometheus":
                found.append((panel, target))
    return found


def substitute(expr: str, values: dict[str, str]) -> str:
    """``expr`` with Grafana's ``$name`` / ``${name}`` variables replaced by ``values``."""

    def value(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain")
        assert name in values, f"unknown variable ${name} in {expr}"
        return values[name]

    return re.sub(r"\$(?:\{(?P<braced>\w+)(?::\w+)?\}|(?P<plain>\w+))", value, expr)


# -- Prometheus -------------------------------------------------------------------------------------


class Prometheus:
    """A running Prometheus, through its HTTP API."""

    def __init__(self, child: ChildProcess, port: int) -> None:
        self.child = child
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=10.0)

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        response = self.http.get("/api/v1/query", params={"query": expr, "time": f"{at:.3f}"})
        body = response.json()
        assert response.status_code == 200, f"{expr}: {body}"
        assert body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        try:
            active: list[dict[str, Any]] = self.http.get("/api/v1/targets").json()["data"]["activeTargets"]
        except (httpx.HTTPError, ValueError, KeyError):
            return []
        return active

    def targets_up(self, expected: int) -> bool:
        active = self.targets()
        return len(active) == expected and all(t["health"] == "up" for t in active)

    def close(self) -> None:
        self.http.close()


def start_prometheus(
    tmp_path: Path,
    config: dict[str, Any],
    expected_targets: int,
    children: list[ChildProcess],
    closers: list[Callable[[], None]],
) -> Prometheus:
    """Prometheus with ``config``, once its ``expected_targets`` targets are up."""
    binary = prometheus_binary()
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    command = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage",
        "--log.level=warn",
    ]
    child = ChildProcess(
        "prometheus", command, tmp_path / "prometheus.log", cpu=None, on_start=children.append
    )
    prometheus = Prometheus(child, port)
    closers.append(prometheus.close)
    deadline = time.monotonic() + 60
    while not prometheus.targets_up(expected_targets):
        assert child.running, f"prometheus exited:\n{child.output()}"
        assert time.monotonic() < deadline, f"targets not up: {prometheus.targets()}\n{child.output()}"
        time.sleep(0.25)
    return prometheus
