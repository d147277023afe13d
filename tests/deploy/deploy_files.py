"""Paths and loaders shared by the deployment tests (docker-compose.yml, deploy/, dashboards/)."""

from __future__ import annotations

from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus.yml"
COLLECTOR_CONFIG = REPO_ROOT / "deploy" / "otel-collector.yaml"
GRAFANA_PROVISIONING = REPO_ROOT / "deploy" / "grafana" / "provisioning"
DATASOURCES = GRAFANA_PROVISIONING / "datasources" / "datasources.yaml"
DASHBOARD_PROVIDERS = GRAFANA_PROVISIONING / "dashboards" / "dashboards.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
PYPROJECT = REPO_ROOT / "pyproject.toml"
COMPOSE_SCHEMA = Path(__file__).resolve().parent / "schemas" / "compose_spec.json"

DEMO_SERVICES = {"sync": "service-sync", "async": "service-async"}


@cache
def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as file:
        return yaml.safe_load(file)


def load_yaml(path: Path) -> Any:
    """The parsed YAML file (cached: treat as read-only)."""
    return _load(path)


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)  # type: ignore[no-any-return]


def compose_service(name: str) -> dict[str, Any]:
    return compose()["services"][name]  # type: ignore[no-any-return]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, from either of the Compose forms (mapping or KEY=VALUE list)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, PurePosixPath]]:
    """(host path, container path) of each bind mount; named volumes are skipped."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
            if not source.startswith((".", "/")):
                continue  # a named volume
        else:
            if volume["type"] != "bind":
                continue
            source, target = volume["source"], volume["target"]
        mounts.append(((REPO_ROOT / source).resolve(), PurePosixPath(target)))
    return mounts


def host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The file of this repository that a service sees at ``container_path``, if one is mounted there."""
    wanted = PurePosixPath(container_path)
    for source, target in bind_mounts(service):
        if wanted == target:
            return source
        if target in wanted.parents:
            return source / wanted.relative_to(target)
    return None
