"""deploy/prometheus.yml: promtool accepts it, and its targets are the compose services.

``promtool`` must be installed (Debian package ``prometheus``; ``.ci/run`` installs it):
without it these tests fail rather than skip.
"""

from __future__ import annotations

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


def test_the_services_reach_prometheus_once_through_the_collector() -> None:
    """One copy of each series (no direct scrape of the services beside the collector's), with the
    resource's job and instance kept."""
    jobs = _jobs()
    assert set(jobs) == {"otel-collector", "prometheus"}
    job = jobs["otel-collector"]
    assert job["honor_labels"] is True  # keep the exporter's job (= service.name)
    (static,) = job["static_configs"]
    assert "labels" not in static  # nothing the dashboard or the rules would depend on
    (host_port,) = static["targets"]
    host, port = host_port.split(":")
    assert host in compose()["services"]
    exporter = load_yaml(COLLECTOR_CONFIG)["exporters"]["prometheus"]
    assert exporter["endpoint"].rsplit(":", 1)[1] == port
    for mode, service in DEMO_SERVICES.items():
        env = compose()["services"][service]["environment"]
        assert env["OTEL_SERVICE_NAME"] == f"otel-cache-demo-{mode}"  # the job of its series


def test_every_scrape_target_is_a_compose_service_or_prometheus_itself() -> None:
    services = set(compose()["services"]) | {"localhost"}
    for job in _jobs().values():
        for static in job["static_configs"]:
            for target in static["targets"]:
                assert target.split(":")[0] in services, target
