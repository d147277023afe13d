"""deploy/otel-collector.yaml: parses, uses only components of the contrib distribution, wires up.

The collector cannot run here; these checks catch what it would refuse at start-up
(an unknown component type, a pipeline naming an undefined component) and the wiring
the demo depends on (OTLP in on the ports the services use, exemplars out).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.deploy_files import COLLECTOR_CONFIG, DEMO_SERVICES, compose, environment, load_yaml

# Component *types* (the part of an ID before "/") built into otelcol-contrib, by kind.
# A subset of the distribution's manifest: open-telemetry/opentelemetry-collector-releases,
# distributions/otelcol-contrib/manifest.yaml (dist version 0.135.0, the image pinned in
# docker-compose.yml), where each module's README gives its type name (e.g.
# memorylimiterprocessor -> memory_limiter). Add a name only after finding it there.
KNOWN_CONTRIB_COMPONENTS: dict[str, frozenset[str]] = {
    "receivers": frozenset(
        {"otlp", "prometheus", "jaeger", "zipkin", "hostmetrics", "filelog", "redis", "nop", "docker_stats"}
    ),
    "processors": frozenset(
        {
            "batch",
            "memory_limiter",
            "attributes",
            "resource",
            "filter",
            "transform",
            "resourcedetection",
            "probabilistic_sampler",
            "tail_sampling",
            "span",
            "cumulativetodelta",
            "deltatocumulative",
        }
    ),
    "exporters": frozenset(
        {
            "otlp",
            "otlphttp",
            "debug",
            "nop",
            "prometheus",
            "prometheusremotewrite",
            "file",
            "zipkin",
            "loadbalancing",
        }
    ),
    "extensions": frozenset(
        {"health_check", "pprof", "zpages", "basicauth", "bearertokenauth", "file_storage"}
    ),
    "connectors": frozenset({"spanmetrics", "servicegraph", "count", "forward", "routing", "exceptions"}),
}
KINDS = tuple(KNOWN_CONTRIB_COMPONENTS)
PIPELINE_KINDS = ("receivers", "processors", "exporters")


def _config() -> dict[str, Any]:
    config = load_yaml(COLLECTOR_CONFIG)
    assert isinstance(config, dict)
    return config


def _type(component_id: str) -> str:
    """``otlp/jaeger`` -> ``otlp``."""
    return component_id.split("/", 1)[0]


def test_the_config_has_only_known_top_level_sections() -> None:
    assert set(_config()) <= {*KINDS, "service"}


@pytest.mark.parametrize("kind", KINDS)
def test_every_component_is_built_into_the_contrib_distribution(kind: str) -> None:
    for component_id in _config().get(kind) or {}:
        assert "/" not in component_id or component_id.split("/", 1)[1], f"empty name in {component_id!r}"
        assert _type(component_id) in KNOWN_CONTRIB_COMPONENTS[kind], (
            f"{kind}: {component_id!r} is not in otelcol-contrib"
        )


def test_every_pipeline_names_defined_components_only() -> None:
    config = _config()
    defined = {kind: set(config.get(kind) or {}) for kind in KINDS}
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics"}
    for name, pipeline in pipelines.items():
        assert _type(name) in {"traces", "metrics", "logs"}
        assert pipeline["receivers"], name
        assert pipeline["exporters"], name
        for kind in PIPELINE_KINDS:
            for component_id in pipeline.get(kind) or []:
                # A connector is an exporter of one pipeline and a receiver of another.
                assert component_id in defined[kind] | defined["connectors"], f"{name}.{kind}: {component_id}"
    for extension in config["service"].get("extensions") or []:
        assert extension in defined["extensions"]


def test_every_defined_component_is_used() -> None:
    """The collector ignores an unused component; here it is a mistake."""
    config = _config()
    used = {
        component_id
        for pipeline in config["service"]["pipelines"].values()
        for kind in PIPELINE_KINDS
        for component_id in pipeline.get(kind) or []
    } | set(config["service"].get("extensions") or [])
    for kind in KINDS:
        for component_id in config.get(kind) or {}:
            assert component_id in used, f"{kind}: {component_id} is defined but not used"


def test_memory_limiter_comes_first() -> None:
    for name, pipeline in _config()["service"]["pipelines"].items():
        assert pipeline["processors"][0] == "memory_limiter", name
        assert "batch" in pipeline["processors"], name


def test_otlp_is_received_where_the_services_send_it() -> None:
    protocols = _config()["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    for service in DEMO_SERVICES.values():
        endpoint = environment(compose()["services"][service])["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert endpoint == "http://otel-collector:4318"
    assert "otel-collector" in compose()["services"]


def test_traces_go_to_jaeger_and_metrics_to_prometheus_with_exemplars() -> None:
    config = _config()
    pipelines = config["service"]["pipelines"]
    jaeger_exporters = [e for e in pipelines["traces"]["exporters"] if _type(e) == "otlp"]
    assert jaeger_exporters == ["otlp/jaeger"]
    jaeger = config["exporters"]["otlp/jaeger"]
    host, port = jaeger["endpoint"].split(":")
    assert host == "jaeger"
    assert host in compose()["services"]
    assert port == "4317"
    assert jaeger["tls"]["insecure"] is True
    assert "prometheus" in pipelines["metrics"]["exporters"]
    # OpenMetrics is the only format in which the exporter writes exemplars.
    assert config["exporters"]["prometheus"]["enable_open_metrics"] is True
