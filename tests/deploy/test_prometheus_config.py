"""deploy/prometheus.yml: promtool accepts it, and its targets are the compose services.

``promtool`` must be installed (Debian package ``prometheus``; ``.ci/run`` installs it):
without it these tests fail rather than skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.deploy.deploy_files import (
    COLLECTOR_CONFIG,
    DEMO_SERVICES,
    PROMETHEUS_CONFIG,
    compose,
    load_yaml,
)


def _jobs() -> dict[str, Any]:
    return {job["job_name"]: job for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]}


def test_promtool_check_config_passes() -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not installed: apt-get install -y prometheus"
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_rejects_a_broken_config(tmp_path: Path) -> None:
    """The check is not vacuous."""
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not installed: apt-get install -y prometheus"
    broken = tmp_path / "prometheus.yml"
    broken.write_text("scrape_configs:\n  - job_name: x\n    scrape_interval: soon\n", encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "config", str(broken)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode != 0


def test_each_demo_service_is_scraped_directly_with_its_mode() -> None:
    jobs = _jobs()
    for mode, service in DEMO_SERVICES.items():
        job = jobs[f"otel-cache-demo-{mode}"]
        (static,) = job["static_configs"]
        assert static["targets"] == [f"{service}:8000"]
        assert static["labels"] == {"mode": mode, "source": "scrape"}
        # The service's --port in docker-compose.yml.
        command = compose()["services"][service]["command"]
        assert command[command.index("--port") + 1] == "8000"


def test_the_collector_copy_gets_mode_from_the_service_name() -> None:
    job = _jobs()["otel-collector"]
    assert job["honor_labels"] is True  # keep the exporter's job (= service.name)
    (static,) = job["static_configs"]
    assert static["labels"] == {"source": "collector"}
    (host_port,) = static["targets"]
    host, port = host_port.split(":")
    assert host in compose()["services"]
    exporter = load_yaml(COLLECTOR_CONFIG)["exporters"]["prometheus"]
    assert exporter["endpoint"].rsplit(":", 1)[1] == port
    (relabel,) = job["metric_relabel_configs"]
    assert relabel["source_labels"] == ["job"]
    assert relabel["target_label"] == "mode"
    pattern = relabel["regex"]
    for mode, service in DEMO_SERVICES.items():
        service_name = f"otel-cache-demo-{mode}"
        env = compose()["services"][service]["environment"]
        assert env["OTEL_SERVICE_NAME"] == service_name
        match = re.fullmatch(pattern, service_name)  # Prometheus anchors its regexes
        assert match is not None
        assert match.expand(relabel["replacement"].replace("$", "\\")) == mode


def test_every_scrape_target_is_a_compose_service_or_prometheus_itself() -> None:
    services = set(compose()["services"]) | {"localhost"}
    for job in _jobs().values():
        for static in job["static_configs"]:
            for target in static["targets"]:
                assert target.split(":")[0] in services, target
