"""Generate the Grafana dashboard that compares the demo service in sync and in async mode.

    python -m dashboards.generate            # writes dashboards/otel-cache-comparison.json
    python -m dashboards.generate --check    # exits 1 if the committed JSON is not current

The JSON is committed so that Grafana provisions it as a plain file, and a test
(``tests/deploy/test_dashboard.py``) fails when it differs from what this module
builds: edit this module, run it, commit both.

Layout (every time-series panel draws both modes; legends start with the mode)::

    Sync vs async        request rate | HTTP latency p50/p99 | event-loop lag | loop blocks
    Hit ratio and L1     hit ratio per level | evictions by reason | entries and bytes
    Locks                lock-wait heatmap: sync | lock-wait heatmap: async   (repeated by $mode)
                         lock wait p99 by lock type | contended acquisitions
    Redis (L2)           Redis latency p50/p99 | Redis errors, stale copies | circuit breaker state (per node)
    Loads and warmer     loads, coalesced | load duration p99 | warmer runs, failures | warmer duration
    Many instances       invalidation messages, L1 flushes | invalidation lag p50/p99 |
                         channel up, warmer leaders
    Traces               recent traces: sync | recent traces: async  (Jaeger search, repeated)
                         the trace in $trace_id (traces panel)

Variables:

- ``source``: which copy of the metrics to read. Prometheus holds two: ``collector``
  (the service's OTLP export, re-exposed by the OpenTelemetry Collector's Prometheus
  exporter with OpenMetrics exemplars) and ``scrape`` (the service's own ``/metrics``,
  which the Python Prometheus exporter serves without exemplars). Every query selects one,
  so no series is counted twice.
- ``mode``: ``sync``, ``async`` or both; Prometheus puts a ``mode`` label on every series
  (``deploy/prometheus.yml``).
- ``trace_id``: the trace the traces panel shows; an exemplar or a trace ID in the
  recent-traces tables leads there.

Metric names come from ``otel_cache.telemetry.names`` (``MetricSpec.prometheus_name``);
the only others are the HTTP server metrics of ``opentelemetry-instrumentation-fastapi``
under ``OTEL_SEMCONV_STABILITY_OPT_IN=http``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import heatmap as heatmap_builder
from grafana_foundation_sdk.builders import prometheus as prometheus_builder
from grafana_foundation_sdk.builders import statetimeline as statetimeline_builder
from grafana_foundation_sdk.builders import table as table_builder
from grafana_foundation_sdk.builders import timeseries as timeseries_builder
from grafana_foundation_sdk.cog import builder as cog_builder
from grafana_foundation_sdk.cog import variants as cog_variants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model
from grafana_foundation_sdk.models import heatmap as heatmap_model
from grafana_foundation_sdk.models import prometheus as prometheus_model

from otel_cache.telemetry.names import METRICS, MetricSpec

__all__ = [
    "DASHBOARD_PATH",
    "DASHBOARD_UID",
    "JAEGER_UID",
    "MODES",
    "PROMETHEUS_UID",
    "SERVICE_NAME",
    "build_dashboard",
    "main",
    "render",
]

DASHBOARD_UID = "otel-cache-comparison"
DASHBOARD_PATH = Path(__file__).with_name(f"{DASHBOARD_UID}.json")
PROMETHEUS_UID = "prometheus"  # deploy/grafana/provisioning/datasources/datasources.yaml
JAEGER_UID = "jaeger"
MODES = ("sync", "async")
# service.name of each demo service (otel_cache_demo.telemetry; OTEL_SERVICE_NAME in
# docker-compose.yml): Jaeger searches by it.
SERVICE_NAME = "otel-cache-demo-{mode}"
SOURCES = ("collector", "scrape")

PROMETHEUS = dashboard_model.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
JAEGER = dashboard_model.DataSourceRef(type_val="jaeger", uid=JAEGER_UID)

# The series every query reads: one copy of the metrics (see the module docstring), the modes picked.
SELECTOR = 'source="$source", mode=~"$mode"'
RATE_INTERVAL = "$__rate_interval"

# HTTP server duration from opentelemetry-instrumentation-fastapi (stable HTTP semconv).
HTTP_DURATION = "http_server_request_duration_seconds"

# Both modes on one panel: the same hue per mode everywhere, p50 dashed.
MODE_COLORS = {"sync": "blue", "async": "orange"}
DASHED = dashboard_model.DynamicConfigValue(
    id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
)


# --------------------------------------------------------------------------- PromQL


def _name(spec: MetricSpec) -> str:
    return spec.prometheus_name


def _selector(metric: str, extra: str = "") -> str:
    matchers = f"{SELECTOR}, {extra}" if extra else SELECTOR
    return f"{metric}{{{matchers}}}"


def _rate(metric: str, extra: str = "") -> str:
    return f"rate({_selector(metric, extra)}[{RATE_INTERVAL}])"


def _sum_rate(metric: str, by: str, extra: str = "") -> str:
    return f"sum by ({by}) ({_rate(metric, extra)})"


def _breaker_in(state: str) -> str:
    """1 for each breaker (mode, side, node) in ``state``, else 0."""
    series = _selector(_name(METRICS.BREAKER_STATE), f'otel_cache_circuit_breaker_state="{state}"')
    return f"max by (mode, otel_cache_circuit_breaker_side, server_address, server_port) ({series})"


def _quantile(q: float, histogram: str, by: str, extra: str = "") -> str:
    return f"histogram_quantile({q}, {_sum_rate(f'{histogram}_bucket', f'{by}, le', extra)})"


def _target(ref_id: str, expr: str, legend: str, *, exemplar: bool = False) -> prometheus_builder.Dataquery:
    query = (
        prometheus_builder.Dataquery()
        .ref_id(ref_id)
        .expr(expr)
        .legend_format(legend)
        .range()
        .datasource(PROMETHEUS)
    )
    if exemplar:
        query = query.exemplar(True)
    return query


# --------------------------------------------------------------------------- Jaeger


class JaegerQuery(cog_variants.Dataquery):
    """A query of Grafana's Jaeger data source (the SDK has no builder for it).

    ``trace_id`` set: that trace (for the traces panel); else a search of ``service``'s
    traces (a table of trace IDs). Field names follow Grafana's ``JaegerQuery`` type.
    """

    def __init__(self, ref_id: str, *, service: str = "", trace_id: str = "", limit: int = 20) -> None:
        self.ref_id = ref_id
        self.service = service
        self.trace_id = trace_id
        self.limit = limit

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {"refId": self.ref_id, "datasource": JAEGER.to_json()}
        if self.trace_id:
            payload["query"] = self.trace_id
        else:
            payload.update(queryType="search", service=self.service, limit=self.limit)
        return payload


class _JaegerQueryBuilder(cog_builder.Builder[cog_variants.Dataquery]):
    def __init__(self, query: JaegerQuery) -> None:
        self._query = query

    def build(self) -> cog_variants.Dataquery:
        return self._query


# --------------------------------------------------------------------------- panels


def _legend() -> common_builder.VizLegendOptions:
    return (
        common_builder.VizLegendOptions()
        .show_legend(True)
        .display_mode(common_model.LegendDisplayMode.TABLE)
        .placement(common_model.LegendPlacement.BOTTOM)
        .calcs(["mean", "max", "lastNotNull"])
    )


def _tooltip() -> common_builder.VizTooltipOptions:
    return (
        common_builder.VizTooltipOptions()
        .mode(common_model.TooltipDisplayMode.MULTI)
        .sort(common_model.SortOrder.DESCENDING)
    )


def _timeseries(title: str, description: str, unit: str, *, width: int = 8) -> timeseries_builder.Panel:
    return (
        timeseries_builder.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .span(width)
        .height(8)
        .line_width(1)
        .fill_opacity(8)
        .show_points(common_model.VisibilityMode.NEVER)
        .legend(_legend())
        .tooltip(_tooltip())
    )


def _color_by_mode(panel: timeseries_builder.Panel) -> timeseries_builder.Panel:
    """One hue per mode, for panels whose series are one per mode (and quantile)."""
    for mode, color in MODE_COLORS.items():
        panel = panel.override_by_regexp(
            f"^{mode} .*|^{mode}$",
            [
                dashboard_model.DynamicConfigValue(
                    id_val="color", value={"mode": "fixed", "fixedColor": color}
                )
            ],
        )
    return panel.override_by_regexp(".* p50$", [DASHED])


def _quantile_targets(
    histogram: str, by: str, legend: str, extra: str = ""
) -> list[cog_builder.Builder[cog_variants.Dataquery]]:
    return [
        _target(ref, _quantile(q, histogram, by, extra), f"{legend} {label}", exemplar=True)
        for ref, q, label in (("A", 0.5, "p50"), ("B", 0.99, "p99"))
    ]


def _row_comparison() -> list[cog_builder.Builder[dashboard_model.Panel]]:
    http_count = f"{HTTP_DURATION}_count"
    requests = _color_by_mode(
        _timeseries(
            "Request rate",
            "HTTP requests per second served by each mode, and those answered with a 5xx.",
            "reqps",
            width=6,
        )
    ).targets(
        [
            _target("A", _sum_rate(http_count, "mode"), "{{mode}}"),
            _target("B", _sum_rate(http_count, "mode", 'http_response_status_code=~"5.."'), "{{mode}} 5xx"),
        ]
    )
    latency = _color_by_mode(
        _timeseries(
            "HTTP latency p50 / p99",
            "Server-side request duration (http.server.request.duration). "
            "Exemplars (with source=collector) link to the trace in Jaeger.",
            "s",
            width=6,
        )
    ).targets(_quantile_targets(HTTP_DURATION, "mode", "{{mode}}"))
    lag = _color_by_mode(
        _timeseries(
            "Event-loop lag p99 and max",
            "How late the EventLoopMonitor's sleeps woke up: the p99 of the lag histogram and the "
            "longest lag of each collection interval. The sync mode blocks the loop on the L1 lock.",
            "s",
            width=6,
        )
    ).targets(
        [
            _target("A", _quantile(0.99, _name(METRICS.LOOP_LAG), "mode"), "{{mode}} p99", exemplar=True),
            _target("B", f"max by (mode) ({_selector(_name(METRICS.LOOP_LAG_MAX))})", "{{mode}} max"),
        ]
    )
    blocks = _color_by_mode(
        _timeseries(
            "Event-loop blocks per minute",
            "Times the watchdog saw the loop blocked past its threshold; each is an "
            "event_loop.blocked span in Jaeger, with the blocking stack.",
            "short",
            width=6,
        ).draw_style(common_model.GraphDrawStyle.BARS)
    ).targets([_target("A", f"60 * {_sum_rate(_name(METRICS.LOOP_BLOCKS), 'mode')}", "{{mode}}")])
    return [requests, latency, lag, blocks]


def _row_l1() -> list[cog_builder.Builder[dashboard_model.Panel]]:
    requests = _name(METRICS.REQUESTS)
    by = "mode, otel_cache_level"
    hit_ratio = (
        _timeseries(
            "Hit ratio per level",
            "Hits over lookups at each level (l1: in-process LRU, l2: Redis).",
            "percentunit",
        )
        .min(0)
        .max(1)
        .targets(
            [
                _target(
                    "A",
                    _sum_rate(requests, by, 'otel_cache_result="hit"') + " / " + _sum_rate(requests, by),
                    "{{mode}} {{otel_cache_level}}",
                )
            ]
        )
    )
    evictions = _timeseries(
        "Evictions by reason", "Entries leaving L1 per second: size, expired, deleted, rejected.", "short"
    ).targets(
        [
            _target(
                "A",
                _sum_rate(_name(METRICS.EVICTIONS), "mode, otel_cache_eviction_reason"),
                "{{mode}} {{otel_cache_eviction_reason}}",
            )
        ]
    )
    size = (
        _timeseries(
            "L1 entries and bytes", "Entries held in L1 (left axis) and their bytes (right axis).", "short"
        )
        .targets(
            [
                _target("A", f"sum by (mode) ({_selector(_name(METRICS.ENTRIES))})", "{{mode}} entries"),
                _target("B", f"sum by (mode) ({_selector(_name(METRICS.MEMORY))})", "{{mode}} bytes"),
            ]
        )
        .override_by_query(
            "B",
            [
                dashboard_model.DynamicConfigValue(id_val="unit", value="bytes"),
                dashboard_model.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
            ],
        )
    )
    return [hit_ratio, evictions, size]


def _row_locks() -> list[cog_builder.Builder[dashboard_model.Panel]]:
    lock_wait = _name(METRICS.LOCK_WAIT)
    heatmap = (
        heatmap_builder.Panel()
        .title("Lock wait: $mode")
        .description(
            "Distribution of contended lock waits (uncontended acquisitions are not recorded), "
            "one panel per mode."
        )
        .datasource(PROMETHEUS)
        .repeat("mode")
        .repeat_direction("h")
        .max_per_row(2)
        .span(24)
        .height(9)
        .calculate(False)
        .y_axis(heatmap_builder.YAxisConfig().unit("s"))
        .color(
            heatmap_builder.HeatmapColorOptions()
            .mode(heatmap_model.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .scale(heatmap_model.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(64)
        )
        .show_legend()
        .mode(common_model.TooltipDisplayMode.SINGLE)
        .show_y_histogram()
        .exemplars_color("rgba(255,0,255,0.7)")
        .with_target(
            _target("A", f"sum by (le) ({_rate(f'{lock_wait}_bucket')})", "{{le}}", exemplar=True).format(
                prometheus_model.PromQueryFormat.HEATMAP
            )
        )
    )
    p99 = _timeseries(
        "Lock wait p99 by lock type",
        "threading.Lock / threading.RLock: the L1 lock; single-flight: a caller waiting for another's load.",
        "s",
        width=12,
    ).targets(
        [
            _target(
                "A",
                _quantile(0.99, lock_wait, "mode, otel_cache_lock_type"),
                "{{mode}} {{otel_cache_lock_type}}",
                exemplar=True,
            )
        ]
    )
    contended = _timeseries(
        "Contended lock acquisitions",
        "Acquisitions per second that had to wait, by lock type.",
        "short",
        width=12,
    ).targets(
        [
            _target(
                "A",
                _sum_rate(_name(METRICS.LOCK_CONTENDED), "mode, otel_cache_lock_type"),
                "{{mode}} {{otel_cache_lock_type}}",
            )
        ]
    )
    return [heatmap, p99, contended]


def _row_redis() -> list[cog_builder.Builder[dashboard_model.Panel]]:
    latency = _timeseries(
        "Redis latency p50 / p99 by operation",
        "Duration of L2 calls (otel_cache.operation.duration). Exemplars link to the otel_cache.l2 span.",
        "s",
    ).targets(
        _quantile_targets(
            _name(METRICS.OPERATION_DURATION),
            "mode, otel_cache_operation",
            "{{mode}} {{otel_cache_operation}}",
            'otel_cache_level="l2"',
        )
    )
    latency = latency.override_by_regexp(".* p50$", [DASHED])
    errors = _timeseries(
        "Redis errors by type, stale copies",
        "Failed L2 calls per second, by the Redis exception class; keys whose L2 copy may be stale "
        "after such a failure (never served: a read deletes the copy), and those repairs per second.",
        "short",
    ).targets(
        [
            _target("A", _sum_rate(_name(METRICS.L2_ERRORS), "mode, error_type"), "{{mode}} {{error_type}}"),
            _target("B", f"sum by (mode) ({_selector(_name(METRICS.L2_UNSYNCED))})", "{{mode}} unsynced"),
            _target("C", _sum_rate(_name(METRICS.L2_REPAIRS), "mode"), "{{mode}} repairs/s"),
        ]
    )
    states = {"0": ("closed", "green"), "1": ("open", "red"), "2": ("half-open", "orange")}
    breaker = (
        statetimeline_builder.Panel()
        .title("Circuit breaker state")
        .description(
            "0 closed: Redis is used; 1 open: Redis calls are skipped; 2 half-open: probing. "
            "One line for reads and one for writes (a Redis that refuses writes, out of memory or "
            "read-only, still serves reads); on a Redis Cluster one per node "
            "(server_address:server_port) beside the line of the calls that span the cluster."
        )
        .datasource(PROMETHEUS)
        .span(8)
        .height(8)
        .mappings(
            [
                dashboard_model.ValueMap(
                    options={
                        value: dashboard_model.ValueMappingResult(text=text, color=color, index=index)
                        for index, (value, (text, color)) in enumerate(states.items())
                    }
                )
            ]
        )
        .with_target(
            _target(
                "A",
                # A series per state (1 for the current one), folded into 0 closed, 1 open, 2 half-open.
                f"{_breaker_in('open')} + 2 * {_breaker_in('half_open')}",
                "{{mode}} {{otel_cache_circuit_breaker_side}} {{server_address}} {{server_port}}",
            )
        )
    )
    return [latency, errors, breaker]


def _row_loads() -> list[cog_builder.Builder[dashboard_model.Panel]]:
    loads = _timeseries(
        "Loads and coalesced callers",
        "Loader calls per second, and callers that waited for another caller's flight (its Redis read"
        " and load).",
        "short",
        width=6,
    ).targets(
        [
            _target("A", _sum_rate(_name(METRICS.LOADS), "mode"), "{{mode}} loads"),
            _target("B", _sum_rate(_name(METRICS.COALESCED), "mode"), "{{mode}} coalesced"),
        ]
    )
    load_duration = _timeseries(
        "Load duration p99 by result", "Loader duration (otel_cache.load.duration).", "s", width=6
    ).targets(
        [
            _target(
                "A",
                _quantile(0.99, _name(METRICS.LOAD_DURATION), "mode, otel_cache_result"),
                "{{mode}} {{otel_cache_result}}",
                exemplar=True,
            )
        ]
    )
    by = "mode, otel_cache_warmer_name"
    warmer = _timeseries(
        "Warmer runs and failures per minute",
        "Warmer runs, and keys the warmer failed to load or store.",
        "short",
        width=6,
    ).targets(
        [
            _target(
                "A",
                f"60 * {_sum_rate(_name(METRICS.WARMER_RUNS), by)}",
                "{{mode}} {{otel_cache_warmer_name}} runs",
            ),
            _target(
                "B",
                f"60 * {_sum_rate(_name(METRICS.WARMER_FAILURES), by)}",
                "{{mode}} {{otel_cache_warmer_name}} failures",
            ),
        ]
    )
    warmer_duration = _timeseries(
        "Warmer run duration p99", "Duration of warmer runs (otel_cache.warmer.run.duration).", "s", width=6
    ).targets(
        [
            _target(
                "A",
                _quantile(0.99, _name(METRICS.WARMER_DURATION), by),
                "{{mode}} {{otel_cache_warmer_name}}",
                exemplar=True,
            )
        ]
    )
    return [loads, load_duration, warmer, warmer_duration]


def _row_instances() -> list[cog_builder.Builder[dashboard_model.Panel]]:
    messages = _timeseries(
        "Invalidation messages and L1 flushes",
        "Messages this process published to, and applied from, the other processes on its Redis and "
        "namespace; messages ignored (garbage, a newer version); L1 emptied because the channel was lost.",
        "short",
    ).targets(
        [
            _target("A", _sum_rate(_name(METRICS.INVALIDATIONS_SENT), "mode"), "{{mode}} sent/s"),
            _target("B", _sum_rate(_name(METRICS.INVALIDATIONS_RECEIVED), "mode"), "{{mode}} received/s"),
            _target(
                "C",
                _sum_rate(_name(METRICS.INVALIDATIONS_IGNORED), "mode, otel_cache_invalidation_reason"),
                "{{mode}} ignored ({{otel_cache_invalidation_reason}})/s",
            ),
            _target("D", _sum_rate(_name(METRICS.L1_FLUSHES), "mode"), "{{mode}} L1 flushes/s"),
        ]
    )
    lag = _timeseries(
        "Invalidation lag p50 / p99",
        "From the sender's clock at publishing to receipt here (otel_cache.invalidation.lag): how long "
        "another process's write may still be served from this one's L1. Clocks of two hosts may differ.",
        "s",
    ).targets(_quantile_targets(_name(METRICS.INVALIDATION_LAG), "mode", "{{mode}}"))
    lag = lag.override_by_regexp(".* p50$", [DASHED])
    leadership = _timeseries(
        "Invalidation channel up, warmer leaders",
        "1 while the invalidation channel is subscribed (0: L1 is bypassed until it is back). Warmer "
        "leaders: processes warming on schedule, per warmer name; 1 in a healthy deployment.",
        "short",
    ).targets(
        [
            _target("A", f"min by (mode) ({_selector(_name(METRICS.CHANNEL_UP))})", "{{mode}} channel up"),
            _target(
                "B",
                f"sum by (mode, otel_cache_warmer_name) ({_selector(_name(METRICS.WARMER_LEADER))})",
                "{{mode}} {{otel_cache_warmer_name}} leaders",
            ),
        ]
    )
    return [messages, lag, leadership]


def _trace_link() -> str:
    """A link to this dashboard showing one trace, keeping the time range and variables."""
    return f"/d/{DASHBOARD_UID}/?${{__url_time_range}}&${{source:queryparam}}&var-trace_id=${{__value.raw}}"


def _row_traces() -> list[cog_builder.Builder[dashboard_model.Panel]]:
    trace_links = [
        {"title": "Show in the trace panel below", "url": _trace_link()},
        {
            "title": "Open in Explore",
            "url": "",
            "internal": {
                "datasourceUid": JAEGER_UID,
                "datasourceName": "Jaeger",
                "query": {"query": "${__value.raw}"},
            },
        },
        {
            "title": "Open in the Jaeger UI",
            "url": "http://localhost:16686/trace/${__value.raw}",
            "targetBlank": True,
        },
    ]
    recent = (
        table_builder.Panel()
        .title("Recent traces: $mode")
        .description(
            "The last traces of the service (Jaeger search, service otel-cache-demo-<mode>). "
            "Click a trace ID to show it below."
        )
        .datasource(JAEGER)
        .repeat("mode")
        .repeat_direction("h")
        .max_per_row(2)
        .span(24)
        .height(9)
        .with_target(_JaegerQueryBuilder(JaegerQuery("A", service=SERVICE_NAME.format(mode="$mode"))))
        # The search frame's traceID field, displayed as "Trace ID" (Grafana matches display names).
        .override_by_regexp(
            "^(Trace ID|traceID)$", [dashboard_model.DynamicConfigValue(id_val="links", value=trace_links)]
        )
    )
    trace = (
        dashboard_builder.Panel()
        .type("traces")
        .title("Trace $trace_id")
        .description(
            "The trace whose ID is in the trace_id variable: click a trace ID above, or paste one "
            "(from an exemplar of a latency panel, for instance)."
        )
        .datasource(JAEGER)
        .span(24)
        .height(16)
        .with_target(_JaegerQueryBuilder(JaegerQuery("A", trace_id="$trace_id")))
    )
    return [recent, trace]


# --------------------------------------------------------------------------- dashboard


def _variables() -> list[cog_builder.Builder[dashboard_model.VariableModel]]:
    source = (
        dashboard_builder.CustomVariable("source")
        .label("Metrics via")
        .description(
            "collector: the service's OTLP export through the OpenTelemetry Collector (with exemplars); "
            "scrape: the service's own /metrics (no exemplars)."
        )
        .values(",".join(SOURCES))
        .current(dashboard_model.VariableOption(selected=True, text=SOURCES[0], value=SOURCES[0]))
        .options(
            [
                dashboard_model.VariableOption(selected=index == 0, text=value, value=value)
                for index, value in enumerate(SOURCES)
            ]
        )
    )
    mode = (
        dashboard_builder.CustomVariable("mode")
        .label("Mode")
        .values(",".join(MODES))
        .multi(True)
        .include_all(True)
        .current(dashboard_model.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .options(
            [dashboard_model.VariableOption(selected=True, text="All", value="$__all")]
            + [dashboard_model.VariableOption(selected=False, text=value, value=value) for value in MODES]
        )
    )
    trace_id = (
        dashboard_builder.TextBoxVariable("trace_id")
        .label("Trace ID")
        .description("The trace shown in the trace panel.")
        .default_value("")
    )
    return [source, mode, trace_id]


def build_dashboard() -> dashboard_model.Dashboard:
    """The comparison dashboard, as the SDK's model."""
    builder = (
        dashboard_builder.Dashboard("otel_cache: sync vs async")
        .uid(DASHBOARD_UID)
        .description(
            "The otel_cache demo service in sync mode (threading lock on the event loop) and in async "
            "mode, side by side. Generated by dashboards/generate.py: edit that, not this."
        )
        .tags(["otel-cache", "generated"])
        .editable()
        .tooltip(dashboard_model.DashboardCursorSync.CROSSHAIR)
        .time("now-15m", "now")
        .refresh("10s")
        .timezone("browser")
        .variables(_variables())
        .link(
            dashboard_builder.DashboardLink("Jaeger")
            .type(dashboard_model.DashboardLinkType.LINK)
            .url("http://localhost:16686/search")
            .target_blank(True)
            .icon("external link")
        )
        .link(
            dashboard_builder.DashboardLink("Prometheus")
            .type(dashboard_model.DashboardLinkType.LINK)
            .url("http://localhost:9090/targets")
            .target_blank(True)
            .icon("external link")
        )
    )
    rows = (
        ("Sync vs async: HTTP and the event loop", _row_comparison()),
        ("Hit ratio and L1", _row_l1()),
        ("Locks", _row_locks()),
        ("Redis (L2)", _row_redis()),
        ("Loads and warmer", _row_loads()),
        ("Many instances", _row_instances()),
        ("Traces", _row_traces()),
    )
    for title, panels in rows:
        # An expanded row's panels follow it at the top level (Grafana's model); the SDK's
        # Row.with_panel nests them, which only a collapsed row shows.
        builder = builder.with_row(dashboard_builder.Row(title).collapsed(False))
        for panel in panels:
            builder = builder.with_panel(panel)
    dashboard = builder.build()
    for panel_id, built in enumerate(dashboard.panels or [], start=1):
        built.id_val = panel_id
    return dashboard


def render() -> str:
    """The dashboard's JSON, exactly as committed."""
    return json.dumps(build_dashboard(), cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashboards.generate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed JSON is not current")
    parser.add_argument("--output", type=Path, default=DASHBOARD_PATH, help="default: %(default)s")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is not current: run python -m dashboards.generate", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
