"""deploy/grafana/provisioning: the data sources and dashboard provider the demo's Grafana loads."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from dashboards.generate import DASHBOARD_PATH
from tests.deploy.deploy_files import (
    DASHBOARD_PROVIDERS,
    DATASOURCES,
    REPO_ROOT,
    compose,
    compose_service,
    environment,
    host_path,
    load_yaml,
)

# The provisioned uids (the exemplar link names Jaeger's); the dashboard picks its data sources
# by variable, so it needs none of them.
PROMETHEUS_UID = "prometheus"
JAEGER_UID = "jaeger"


def _datasources() -> dict[str, dict[str, Any]]:
    config = load_yaml(DATASOURCES)
    assert config["apiVersion"] == 1
    return {datasource["uid"]: datasource for datasource in config["datasources"]}


def test_prometheus_and_jaeger_have_fixed_uids() -> None:
    datasources = _datasources()
    assert set(datasources) == {PROMETHEUS_UID, JAEGER_UID}
    assert datasources[PROMETHEUS_UID]["type"] == "prometheus"
    assert datasources[PROMETHEUS_UID]["url"] == "http://prometheus:9090"
    assert datasources[PROMETHEUS_UID]["isDefault"] is True
    assert datasources[JAEGER_UID]["type"] == "jaeger"
    assert datasources[JAEGER_UID]["url"] == "http://jaeger:16686"


def test_datasource_urls_point_at_compose_services() -> None:
    services = compose()["services"]
    for datasource in _datasources().values():
        host = urlsplit(datasource["url"]).hostname
        assert host in services, datasource["url"]


def test_exemplar_trace_ids_open_in_jaeger() -> None:
    destinations = _datasources()[PROMETHEUS_UID]["jsonData"]["exemplarTraceIdDestinations"]
    # trace_id: the exemplar label the collector's Prometheus exporter writes.
    assert [(d["name"], d["datasourceUid"]) for d in destinations] == [("trace_id", JAEGER_UID)]


def test_rate_interval_knows_the_scrape_interval() -> None:
    scrape_interval = load_yaml(REPO_ROOT / "deploy" / "prometheus.yml")["global"]["scrape_interval"]
    assert _datasources()[PROMETHEUS_UID]["jsonData"]["timeInterval"] == scrape_interval


def test_the_dashboard_provider_reads_the_mounted_dashboards_folder() -> None:
    config = load_yaml(DASHBOARD_PROVIDERS)
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    grafana = compose_service("grafana")
    folder = host_path(grafana, provider["options"]["path"])
    assert folder == DASHBOARD_PATH.parent
    # Grafana loads every *.json under the folder as a dashboard: only dashboards may be there.
    assert sorted(folder.rglob("*.json")) == [DASHBOARD_PATH]


def test_the_home_dashboard_is_the_provisioned_one() -> None:
    grafana = compose_service("grafana")
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path(grafana, home) == DASHBOARD_PATH
