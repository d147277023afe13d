"""docker-compose.yml: valid against the Compose Specification, and everything it names exists.

Docker cannot run here, so the file is checked statically: the schema, the files it
mounts and builds from, pinned images, and the wiring between services.

The schema is ``compose/config/compose_spec.json`` from the docker-compose 1.29.2 wheel
on PyPI (see ``schemas/README.md``).
"""

from __future__ import annotations

import json
import re
import shlex

import jsonschema
import pytest

from tests.deploy.deploy_files import (
    COMPOSE_FILE,
    COMPOSE_SCHEMA,
    DEMO_SERVICES,
    DOCKERFILE,
    REPO_ROOT,
    bind_mounts,
    compose,
    compose_service,
    environment,
    host_path,
)

EXPECTED_SERVICES = {
    "redis",
    "otel-collector",
    "prometheus",
    "jaeger",
    "grafana",
    "service-sync",
    "service-async",
    "loadgen",
}


def _validator() -> jsonschema.Draft201909Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    # The schema declares draft 2019-09 as "http://json-schema.org/draft/2019-09/schema#",
    # a spelling jsonschema does not look up: name the draft.
    assert "2019-09" in schema["$schema"]
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    errors = sorted(_validator().iter_errors(compose()), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{list(error.path)}: {error.message}" for error in errors)


def test_the_schema_rejects_a_broken_file() -> None:
    """The validator is not vacuous: an unknown service key is an error."""
    assert _validator().is_valid({"services": {"x": {"image": "redis"}}})
    assert not _validator().is_valid({"services": {"x": {"image": "redis", "no_such_key": 1}}})
    assert not _validator().is_valid({"name": "demo", "services": {}})  # newer than this schema


def test_every_service_of_the_demo_is_there() -> None:
    assert set(compose()["services"]) == EXPECTED_SERVICES


def test_every_bind_mounted_file_and_folder_exists() -> None:
    checked = 0
    for name, service in compose()["services"].items():
        for source, _target in bind_mounts(service):
            assert source.exists(), f"{name} mounts {source}, which does not exist"
            assert REPO_ROOT in source.parents, f"{name} mounts {source}, outside the repository"
            checked += 1
    assert checked >= 5


def test_every_build_context_and_dockerfile_exists() -> None:
    built = [service for service in compose()["services"].values() if "build" in service]
    assert len(built) == 3  # service-sync, service-async, loadgen: one image
    for service in built:
        build = service["build"]
        context = REPO_ROOT / (build if isinstance(build, str) else build.get("context", "."))
        assert context.is_dir()
        dockerfile = context / (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert dockerfile.is_file()
    assert {service["image"] for service in built} == {"otel-cache-demo:local"}


@pytest.mark.parametrize("name", sorted(EXPECTED_SERVICES - {"service-sync", "service-async", "loadgen"}))
def test_third_party_images_are_pinned(name: str) -> None:
    image = compose_service(name)["image"]
    assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+[\w.-]*", image), (
        f"{name}: {image} is not pinned to a version"
    )


def test_the_collector_is_the_contrib_distribution_and_jaeger_all_in_one() -> None:
    assert compose_service("otel-collector")["image"].startswith("otel/opentelemetry-collector-contrib:")
    jaeger = compose_service("jaeger")
    assert jaeger["image"].startswith("jaegertracing/all-in-one:")
    assert environment(jaeger)["COLLECTOR_OTLP_ENABLED"] == "true"


def test_prometheus_stores_exemplars_and_reads_the_repository_config() -> None:
    prometheus = compose_service("prometheus")
    flags = prometheus["command"]
    assert "--enable-feature=exemplar-storage" in flags
    (config_flag,) = [flag for flag in flags if flag.startswith("--config.file=")]
    config = host_path(prometheus, config_flag.split("=", 1)[1])
    assert config == REPO_ROOT / "deploy" / "prometheus.yml"


def test_the_collector_reads_the_repository_config() -> None:
    collector = compose_service("otel-collector")
    (config_flag,) = [arg for arg in collector["command"] if arg.startswith("--config=")]
    assert host_path(collector, config_flag.split("=", 1)[1]) == REPO_ROOT / "deploy" / "otel-collector.yaml"


def test_grafana_is_provisioned_anonymous_admin_with_the_dashboard_as_home() -> None:
    grafana = compose_service("grafana")
    env = environment(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Admin"
    home = host_path(grafana, env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home == REPO_ROOT / "dashboards" / "otel-cache.json"
    assert home.is_file()
    for kind in ("datasources", "dashboards"):
        mounted = host_path(grafana, f"/etc/grafana/provisioning/{kind}")
        assert mounted is not None, f"{kind} provisioning is not mounted"
        assert mounted.is_dir()
        assert any(mounted.glob("*.yaml"))
    assert "3000:3000" in grafana["ports"]


@pytest.mark.parametrize(("mode", "name"), sorted(DEMO_SERVICES.items()))
def test_each_demo_service_runs_its_mode_and_exports_otlp_to_the_collector(mode: str, name: str) -> None:
    service = compose_service(name)
    command = service["command"]
    assert command[:3] == ["python", "-m", "otel_cache_demo.service"]
    assert command[command.index("--mode") + 1] == mode
    assert command[command.index("--host") + 1] == "0.0.0.0"  # the default, 127.0.0.1, is unreachable
    assert command[command.index("--redis-url") + 1].startswith("redis://redis:6379/")
    env = environment(service)
    assert env["OTEL_SERVICE_NAME"] == f"otel-cache-demo-{mode}"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert env["OTEL_SEMCONV_STABILITY_OPT_IN"] == "http"
    assert {"redis", "otel-collector"} <= set(service["depends_on"])


def test_the_load_generator_drives_both_modes() -> None:
    loadgen = compose_service("loadgen")
    script = loadgen["command"][-1]
    assert loadgen["command"][:2] == ["sh", "-c"]
    assert "python -m otel_cache_demo.loadgen --url" in script
    assert set(re.findall(r"http://[\w-]+:\d+", script)) == {
        f"http://{name}:8000" for name in DEMO_SERVICES.values()
    }
    # Compose interpolates "$": a shell variable must be written "$$".
    assert not re.search(r"(?<!\$)\$(?!\$)", script.replace("$$", ""))
    assert set(loadgen["depends_on"]) == set(DEMO_SERVICES.values())


def test_depends_on_names_only_services_of_the_file() -> None:
    services = compose()["services"]
    for name, service in services.items():
        assert set(service.get("depends_on") or ()) <= set(services) - {name}


def test_the_dockerfile_builds_the_service_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [
        (parts[0], parts[1] if len(parts) > 1 else "")
        for parts in (line.split(None, 1) for line in text.splitlines() if line.strip() and line[0].isupper())
    ]
    assert instructions[0] == ("FROM", "python:3.11-slim-bookworm")
    users = [arg for keyword, arg in instructions if keyword == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    for keyword, arg in instructions:
        if keyword == "COPY":
            for source in arg.split()[:-1]:
                assert (REPO_ROOT / source).exists(), f"COPY {source}: no such file"
    assert "RUN pip install . ./demo\n" in text  # the library, and the demo's own distribution
    assert '"otel_cache_demo.service"' in text


def test_the_compose_file_is_documented() -> None:
    readme = (REPO_ROOT / "dashboards" / "README.md").read_text(encoding="utf-8")
    assert "docker compose up" in readme
    assert "http://localhost:3000" in readme
    assert COMPOSE_FILE.name in readme


def test_the_demo_command_lines_are_accepted_by_the_demo() -> None:
    """The options compose passes exist (argparse would exit the container at start-up)."""
    from otel_cache_demo import loadgen, service

    commands = [compose_service(name)["command"] for name in DEMO_SERVICES.values()]
    dockerfile_cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert dockerfile_cmd is not None
    commands.append(json.loads(dockerfile_cmd.group(1)))
    for command in commands:
        assert command[:3] == ["python", "-m", "otel_cache_demo.service"]
        service._parser().parse_args(command[3:])
    script = compose_service("loadgen")["command"][-1]
    (arguments,) = re.findall(r"python -m otel_cache_demo\.loadgen ([^;]*);", script)
    for name in DEMO_SERVICES.values():
        loadgen._parser().parse_args(shlex.split(arguments.replace("$$1", f"http://{name}:8000")))
