"""dashboards/rules/otel-cache.rules.yml: promtool accepts it, its unit tests pass (and catch a
changed threshold), and it names only metrics and labels otel_cache exports.

The behaviour is in ``otel-cache.rules.test.yml`` beside this file (``promtool test rules``:
each alert fires on the series that should page and stays quiet on its look-alikes).
``promtool`` must be installed (Debian package ``prometheus``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import promql_parser
import pytest

from tests.deploy.deploy_files import PROMETHEUS_CONFIG, REPO_ROOT, compose_service, load_yaml
from tests.deploy.metric_names import LIBRARY_LABELS, SCRAPE_LABELS, allowed_metric_names

RULES = REPO_ROOT / "dashboards" / "rules" / "otel-cache.rules.yml"
RULES_TEST = Path(__file__).with_name("otel-cache.rules.test.yml")
ALERTS = {
    "OtelCacheCircuitBreakerOpen",
    "OtelCacheL2ErrorRateHigh",
    "OtelCacheHitRatioDropped",
    "OtelCacheEventLoopLagHigh",
    "OtelCacheInvalidationChannelDown",
    "OtelCacheLockWaitHigh",
    "OtelCacheWarmerHasNoLeader",
}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not installed: apt-get install -y prometheus"
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60, check=False)


def _rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def _nodes(expr: str) -> list[Any]:
    nodes: list[Any] = []
    promql_parser.walk(promql_parser.parse(expr), lambda node: nodes.append(node) and None)
    return nodes


def test_promtool_check_rules_passes() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_promtool_test_rules_passes() -> None:
    result = _promtool("test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested() -> None:
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    assert alerts == ALERTS
    tested = {
        case["alertname"]
        for test in load_yaml(RULES_TEST)["tests"]
        for case in test.get("alert_rule_test", ())
    }
    assert tested == alerts
    for rule in _rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
            assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


@pytest.mark.parametrize(
    ("original", "changed"),
    [
        ("otel_cache:l2_error_ratio:rate5m > 0.05", "otel_cache:l2_error_ratio:rate5m > 0.5"),
        (
            'otel_cache_circuit_breaker_state="open"}) == 1',
            'otel_cache_circuit_breaker_state=~"open|half_open"}) == 1',
        ),
        ("otel_cache:event_loop_lag:p99_5m > 0.1", "otel_cache:event_loop_lag:p99_5m > 1"),
        ("for: 2m", "for: 0m"),
        ("and otel_cache:lookups:rate5m > 1", "and otel_cache:lookups:rate5m > 0"),
    ],
    ids=["error-threshold", "half-open-counted-as-open", "lag-threshold", "channel-blip", "traffic-floor"],
)
def test_the_unit_tests_catch_a_changed_rule(tmp_path: Path, original: str, changed: str) -> None:
    text = RULES.read_text(encoding="utf-8")
    assert text.count(original) == 1
    rules_dir = tmp_path / "dashboards" / "rules"
    rules_dir.mkdir(parents=True)
    (rules_dir / RULES.name).write_text(text.replace(original, changed), encoding="utf-8")
    tests_dir = tmp_path / "tests" / "deploy"
    tests_dir.mkdir(parents=True)
    shutil.copy(RULES_TEST, tests_dir / RULES_TEST.name)
    result = _promtool("test", "rules", str(tests_dir / RULES_TEST.name))
    assert result.returncode != 0, f"the unit tests did not notice: {changed}"
    assert "FAILED" in result.stdout + result.stderr


def test_the_rules_name_only_what_otel_cache_exports() -> None:
    allowed = allowed_metric_names()
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    labels = LIBRARY_LABELS | SCRAPE_LABELS | {"error_type"}
    for rule in _rules():
        for node in _nodes(rule["expr"]):
            if isinstance(node, promql_parser.VectorSelector):
                assert node.name in allowed | recorded, f"{rule}: {node.name} is not exported"
                assert {m.name for m in node.matchers.matchers} <= labels, rule
            elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
                assert set(node.modifier.labels) <= labels, rule
    assert "otel_cache_circuit_breaker_state" in allowed  # the check is not vacuous


def test_the_compose_prometheus_loads_the_rules() -> None:
    """deploy/prometheus.yml names the rules relative to itself; the compose stack mounts both
    where that path leads, and promtool finds them from the repository's copy."""
    (rule_file,) = load_yaml(PROMETHEUS_CONFIG)["rule_files"]
    assert (PROMETHEUS_CONFIG.parent / rule_file).resolve() == RULES
    service = compose_service("prometheus")
    (config_flag,) = [arg for arg in service["command"] if arg.startswith("--config.file=")]
    config_in_container = PurePosixPath(config_flag.removeprefix("--config.file="))
    mounts = {PurePosixPath(volume["target"]): volume["source"] for volume in service["volumes"]}
    assert mounts[config_in_container] == "./deploy/prometheus.yml"
    rules_in_container = PurePosixPath(os.path.normpath(config_in_container.parent / rule_file))
    assert mounts[rules_in_container.parent] == "./dashboards/rules"
    result = _promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout
