"""dashboards/: the committed JSON is the generator's output, and every query is sound.

Every PromQL expression is parsed (promql-parser) after Grafana's variables are
replaced, and every metric it selects must be one that the demo service exports: an
otel_cache metric of ``otel_cache.telemetry.names`` (``MetricSpec.prometheus_name``, with
``_bucket``/``_sum``/``_count`` for histograms) or one of the few external metrics listed
here.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from dashboards.generate import DASHBOARD_PATH, VARIABLE_NAMES, main, render
from otel_cache.telemetry.names import METRICS
from tests.deploy.deploy_files import (
    REPO_ROOT,
)
from tests.deploy.metric_names import LIBRARY_LABELS, SCRAPE_LABELS, allowed_metric_names
from tests.support import RedisServer

# Metrics the service exports that are not otel_cache's own.
# Labels a query may name: otel_cache's attributes as Prometheus labels, the HTTP
# server attributes, and the ones Prometheus adds (deploy/prometheus.yml).
KNOWN_LABELS = (
    LIBRARY_LABELS
    | SCRAPE_LABELS
    | {"http_request_method", "http_response_status_code", "http_route", "url_scheme"}
    | {"service_name"}  # target_info's, for the service variable
)

# Metrics the dashboard queries that the demo exports only once a rare event happened:
# a failed Redis call, a contended lock, an invalidation from another process (a
# histogram has no series before its first point). The end-to-end test makes each happen.
ON_EVENT_ONLY = frozenset(
    {
        METRICS.L2_ERRORS.prometheus_name,
        f"{METRICS.LOCK_WAIT.prometheus_name}_bucket",
        f"{METRICS.INVALIDATION_LAG.prometheus_name}_bucket",
    }
)

# Values given to Grafana's variables before parsing. The rate window is unusual on
# purpose: every range in a query must be $__rate_interval.
RATE_WINDOW = "17m"
VARIABLES = {
    "__rate_interval": RATE_WINDOW,
    "__interval": "1m",
    "datasource": "prometheus",
    "jaeger": "jaeger",
    "job": "shop",
    "instance": "127.0.0.1:8000",
    "cache": "query-results",
    "mode": "async",
    "service": "shop",
    "trace_id": "0af7651916cd43dd8448eb211c80319c",
}


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_PATH.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _panels(dashboard: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    for panel in (dashboard or _dashboard())["panels"]:
        yield panel
        yield from panel.get("panels") or ()  # a collapsed row's


def _prometheus_targets() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in _panels():
        for target in panel.get("targets") or ():
            if (target.get("datasource") or panel.get("datasource") or {}).get("type") == "prometheus":
                yield panel, target


def _substitute(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain")
        assert name in VARIABLES, f"unknown variable ${name} in {expr}"
        return VARIABLES[name]

    return re.sub(r"\$(?:\{(?P<braced>\w+)(?::\w+)?\}|(?P<plain>\w+))", value, expr)


def _parse(expr: str) -> promql_parser.Expr:
    try:
        return promql_parser.parse(_substitute(expr))
    except ValueError as exc:
        pytest.fail(f"does not parse: {expr}\n{exc}")


def _nodes(expr: promql_parser.Expr) -> list[Any]:
    nodes: list[Any] = []
    promql_parser.walk(expr, lambda node: nodes.append(node) and None)
    return nodes


def _parsed() -> list[tuple[dict[str, Any], dict[str, Any], list[Any]]]:
    return [(panel, target, _nodes(_parse(target["expr"]))) for panel, target in _prometheus_targets()]


def _selected_metrics() -> set[str]:
    return {
        node.name
        for _panel, _target, nodes in _parsed()
        for node in nodes
        if isinstance(node, promql_parser.VectorSelector)
    }


# --------------------------------------------------------------------------- generated


def test_the_committed_json_is_the_generators_output() -> None:
    assert DASHBOARD_PATH.read_text(encoding="utf-8") == render(), "run: python -m dashboards.generate"


def test_generate_check_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "dashboard.json"
    assert main(["--check", "--output", str(output)]) == 1  # missing
    assert main(["--output", str(output)]) == 0
    assert main(["--check", "--output", str(output)]) == 0
    output.write_text(output.read_text(encoding="utf-8").replace("sync", "synk", 1), encoding="utf-8")
    assert main(["--check", "--output", str(output)]) == 1
    assert "not current" in capsys.readouterr().err
    assert main(["--check"]) == 0  # the committed file


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    panels = list(_panels())
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    boxes = [(p["gridPos"]["x"], p["gridPos"]["y"], p["gridPos"]["w"], p["gridPos"]["h"]) for p in panels]
    for index, (x, y, w, h) in enumerate(boxes):
        assert x + w <= 24
        for x2, y2, w2, h2 in boxes[index + 1 :]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, (x, y, w, h, x2, y2, w2, h2)


# --------------------------------------------------------------------------- PromQL


def test_there_are_prometheus_queries() -> None:
    assert len(list(_prometheus_targets())) >= 20


def test_every_prometheus_query_parses() -> None:
    for _panel, target in _prometheus_targets():
        _parse(target["expr"])


def test_every_metric_queried_is_one_the_service_exports() -> None:
    allowed = allowed_metric_names()
    for panel, target, nodes in _parsed():
        for node in nodes:
            if isinstance(node, promql_parser.VectorSelector):
                assert node.name, f"{panel['title']}: a selector without a metric name: {target['expr']}"
                assert node.name in allowed, f"{panel['title']}: {node.name} is not exported by the service"


def test_the_metric_allowlist_check_is_not_vacuous() -> None:
    allowed = allowed_metric_names()
    assert "otel_cache_requests_total" in allowed
    assert "otel_cache_operation_duration_seconds_bucket" in allowed
    assert "otel_cache_operation_duration_seconds" not in allowed  # a histogram has no bare series
    assert "otel_cache_requests" not in allowed


def test_the_issue_metrics_are_all_on_the_dashboard() -> None:
    selected = _selected_metrics()
    for spec in (
        METRICS.REQUESTS,
        METRICS.EVICTIONS,
        METRICS.ENTRIES,
        METRICS.MEMORY,
        METRICS.L2_ERRORS,
        METRICS.BREAKER_STATE,
        METRICS.LOCK_CONTENDED,
        METRICS.LOADS,
        METRICS.COALESCED,
        METRICS.WARMER_RUNS,
        METRICS.WARMER_FAILURES,
        METRICS.LOOP_LAG_MAX,
        METRICS.LOOP_BLOCKS,
    ):
        assert spec.prometheus_name in selected, spec.name
    for spec in (
        METRICS.OPERATION_DURATION,
        METRICS.LOCK_WAIT,
        METRICS.LOAD_DURATION,
        METRICS.WARMER_DURATION,
        METRICS.LOOP_LAG,
    ):
        assert f"{spec.prometheus_name}_bucket" in selected, spec.name
    assert "http_server_request_duration_seconds_bucket" in selected
    assert "http_server_request_duration_seconds_count" in selected


def test_every_label_named_is_one_the_series_carry() -> None:
    for panel, target, nodes in _parsed():
        names: set[str] = set()
        for node in nodes:
            if isinstance(node, promql_parser.VectorSelector):
                names.update(matcher.name for matcher in node.matchers.matchers)
            elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
                names.update(node.modifier.labels)
            elif (
                isinstance(node, promql_parser.BinaryExpr)
                and node.modifier is not None
                and node.modifier.matching is not None
            ):
                names.update(node.modifier.matching.labels)
        unknown = names - KNOWN_LABELS
        assert not unknown, f"{panel['title']}: unknown labels {unknown} in {target['expr']}"
        legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
        assert legend_labels <= KNOWN_LABELS, f"{panel['title']}: legend {target['legendFormat']}"


def test_every_range_is_the_rate_interval() -> None:
    window = datetime.timedelta(minutes=int(RATE_WINDOW.rstrip("m")))
    ranges = 0
    for panel, target, nodes in _parsed():
        for node in nodes:
            assert not isinstance(node, promql_parser.SubqueryExpr), panel["title"]
            if isinstance(node, promql_parser.MatrixSelector):
                assert node.range == window, f"{panel['title']}: use [$__rate_interval] in {target['expr']}"
                ranges += 1
    assert ranges >= 20


def test_every_selector_follows_the_variables_its_series_can() -> None:
    """job and instance on every series; mode on otel_cache's; the cache name on a cache's. No label
    of a particular Prometheus configuration (the demo's old source/mode)."""
    for panel, target, nodes in _parsed():
        for node in nodes:
            if not isinstance(node, promql_parser.VectorSelector):
                continue
            matchers = {(m.name, m.value) for m in node.matchers.matchers}
            where = f"{panel['title']}: {target['expr']}"
            assert {("job", "shop"), ("instance", "127.0.0.1:8000")} <= matchers, where
            if node.name.startswith("otel_cache_"):
                assert ("otel_cache_mode", "async") in matchers, where
            per_process = ("otel_cache_event_loop_", "otel_cache_warmer_")
            if node.name.startswith("otel_cache_") and not node.name.startswith(per_process):
                assert ("otel_cache_name", "query-results") in matchers, where
            assert not {name for name, _ in matchers} & {"source", "mode"}, where


def test_modes_are_side_by_side() -> None:
    """otel_cache's panels group by mode and their legends start with it (one colour per mode), or
    repeat per mode; the HTTP ones group by job."""
    for panel, target, nodes in _parsed():
        if panel.get("repeat") == "mode":
            assert panel["repeatDirection"] == "h"
            continue
        aggregations = [node for node in nodes if isinstance(node, promql_parser.AggregateExpr)]
        assert aggregations, panel["title"]
        if "http_server_" in target["expr"]:
            assert target["legendFormat"].startswith("{{job}}"), panel["title"]
            assert all("job" in a.modifier.labels for a in aggregations), target["expr"]
            continue
        assert target["legendFormat"].startswith("{{otel_cache_mode}}"), panel["title"]
        for aggregation in aggregations:
            assert "otel_cache_mode" in aggregation.modifier.labels, f"{panel['title']}: {target['expr']}"


def test_event_counters_show_zero_before_the_first_event() -> None:
    """A counter whose series appear with the first event (L2 errors by type, 5xx) falls back to 0."""
    for metric in (METRICS.L2_ERRORS.prometheus_name, 'http_response_status_code=~"5.."'):
        (expr,) = [target["expr"] for _panel, target in _prometheus_targets() if metric in target["expr"]]
        assert " or (0 * " in expr, expr


def test_quantile_panels_say_when_there_are_no_samples() -> None:
    for panel in _panels():
        exprs = [target.get("expr", "") for target in panel.get("targets") or ()]
        if panel["type"] == "timeseries" and all("histogram_quantile" in expr for expr in exprs):
            if "http_server_" in exprs[0] or "event_loop" in exprs[0]:
                continue  # always sampled: every request, every monitor tick
            assert panel["fieldConfig"]["defaults"]["noValue"] == "no samples in this range", panel["title"]


def test_every_timeseries_has_a_unit() -> None:
    units = {"ops", "reqps", "s", "percentunit", "short", "bytes"}
    for panel in _panels():
        if panel["type"] == "timeseries":
            assert panel["fieldConfig"]["defaults"].get("unit") in units, panel["title"]


def test_latency_quantiles_and_heatmaps_carry_exemplars() -> None:
    checked = 0
    for panel, target in _prometheus_targets():
        if "histogram_quantile" in target["expr"] or target.get("format") == "heatmap":
            assert target.get("exemplar") is True, f"{panel['title']}: {target['expr']}"
            checked += 1
    assert checked >= 8


def test_lock_wait_has_a_heatmap_per_mode_and_a_p99() -> None:
    lock_wait = f"{METRICS.LOCK_WAIT.prometheus_name}_bucket"
    heatmaps = [p for p in _panels() if p["type"] == "heatmap" and lock_wait in p["targets"][0]["expr"]]
    assert len(heatmaps) == 1
    assert heatmaps[0]["repeat"] == "mode"
    assert heatmaps[0]["targets"][0]["format"] == "heatmap"
    assert any(
        "histogram_quantile(0.99" in target["expr"] and lock_wait in target["expr"]
        for _panel, target in _prometheus_targets()
    )


# --------------------------------------------------------------------------- data sources and traces


def test_every_datasource_is_a_variable() -> None:
    """No uid of one Grafana: panels and targets name the datasource variables."""
    variables = {variable["name"]: variable for variable in _dashboard()["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    assert (variables["jaeger"]["type"], variables["jaeger"]["query"]) == ("datasource", "jaeger")
    seen = 0
    for panel in _panels():
        refs = [panel.get("datasource")] + [target.get("datasource") for target in panel.get("targets") or ()]
        for ref in filter(None, refs):
            assert ref == {
                "type": ref["type"],
                "uid": {"prometheus": "${datasource}", "jaeger": "${jaeger}"}[ref["type"]],
            }
            seen += 1
    assert seen > 30
    assert "localhost" not in DASHBOARD_PATH.read_text(encoding="utf-8")
    assert "__inputs" not in _dashboard()  # provisioning would not substitute them (grafana#10786)


def test_the_variables_are_the_librarys_labels_defaulting_to_all() -> None:
    variables = {variable["name"]: variable for variable in _dashboard()["templating"]["list"]}
    assert tuple(variables) == VARIABLE_NAMES
    labels = {"job": "job", "instance": "instance", "cache": "otel_cache_name", "mode": "otel_cache_mode"}
    for name, label in labels.items():
        variable = variables[name]
        assert variable["type"] == "query"
        assert variable["query"]["query"].endswith(f", {label})"), variable["query"]
        assert variable["query"]["query"].startswith("label_values(otel_cache_requests_total")
        assert (variable["multi"], variable["includeAll"], variable["allValue"]) == (True, True, ".*")
        assert variable["current"]["value"] == ["$__all"]
    assert variables["service"]["query"]["query"].startswith("label_values(target_info")


def test_a_traces_panel_shows_the_chosen_trace() -> None:
    traces = [panel for panel in _panels() if panel["type"] == "traces"]
    assert len(traces) == 1
    (target,) = traces[0]["targets"]
    assert target["datasource"]["uid"] == "${jaeger}"
    assert target["query"] == "$trace_id"
    variables = {variable["name"]: variable for variable in _dashboard()["templating"]["list"]}
    assert variables["trace_id"]["type"] == "textbox"


def test_recent_traces_search_each_service_in_jaeger() -> None:
    searches = [
        (panel, target)
        for panel in _panels()
        for target in panel.get("targets") or ()
        if target.get("queryType") == "search"
    ]
    assert len(searches) == 1
    ((panel, target),) = searches
    assert target["datasource"]["uid"] == "${jaeger}"
    assert (panel["repeat"], target["service"]) == ("service", "$service")


# --------------------------------------------------------------------------- the real service


@pytest.fixture(scope="module")
def probes(redis_server: RedisServer) -> dict[str, dict[str, Any]]:
    """What the demo app of each mode serves on /metrics, after a few requests (with Redis):
    ``{"names": [...], "text": "..."}`` (tests/deploy/export_probe.py)."""
    redis_server.flushall()
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("export_probe.py")), redis_server.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 0, result.stderr
    probes: dict[str, dict[str, Any]] = json.loads(result.stdout.splitlines()[-1])
    return probes


@pytest.fixture(scope="module")
def exported(probes: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """Metric names the demo app of each mode serves on /metrics."""
    return {mode: set(probe["names"]) for mode, probe in probes.items()}


@pytest.fixture(scope="module")
def scrapes(probes: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The whole /metrics text of each mode."""
    return {mode: str(probe["text"]) for mode, probe in probes.items()}


def test_promtool_finds_nothing_to_lint_in_a_real_scrape(scrapes: dict[str, str]) -> None:
    """``promtool check metrics`` (naming rules: no ``_count`` on a gauge, units, ``_total``) is
    clean on every mode's /metrics; it is not on a scrape with the old ``entry_count`` name."""
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not installed: apt-get install -y prometheus"

    def lint(text: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [promtool, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    for mode, text in scrapes.items():
        assert "otel_cache_entries{" in text
        result = lint(text)
        assert (result.returncode, result.stdout + result.stderr) == (0, ""), mode
    renamed = lint(scrapes["sync"].replace("otel_cache_entries", "otel_cache_entry_count"))
    assert renamed.returncode != 0
    assert "otel_cache_entry_count" in renamed.stdout + renamed.stderr


def test_the_demo_exports_every_metric_the_dashboard_queries(exported: dict[str, set[str]]) -> None:
    served = set().union(*exported.values())
    missing = _selected_metrics() - served - ON_EVENT_ONLY
    assert not missing, f"the dashboard queries metrics the demo does not export: {sorted(missing)}"
    assert "http_server_request_duration_seconds_bucket" in exported["sync"] & exported["async"]


def test_the_demo_exports_otel_cache_metrics_under_the_names_of_names_py(
    exported: dict[str, set[str]],
) -> None:
    """MetricSpec.prometheus_name is what the exporter really writes (the allowlist is not a guess)."""
    allowed = allowed_metric_names()
    for mode, names in exported.items():
        ours = {name for name in names if name.startswith("otel_cache_")}
        assert ours, mode
        assert ours <= allowed, f"{mode}: {sorted(ours - allowed)} not derived from names.py"
