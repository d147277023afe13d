"""Generate the otel_cache Grafana dashboard: for any app that exports otel_cache's metrics.

    python -m dashboards.generate            # writes dashboards/otel-cache.json
    python -m dashboards.generate --check    # exits 1 if the committed JSON is not current

The JSON is committed so that Grafana provisions it as a plain file, and a test
(``tests/deploy/test_dashboard.py``) fails when it differs from what this module
builds: edit this module, run it, commit both.

Every query reads the library's own labels (``otel_cache_name``, ``otel_cache_mode``,
``otel_cache_*``) and the scrape's (``job``, ``instance``), nothing a particular
Prometheus configuration adds, so it works on any app scraped by any job, or fed by
OTLP through a collector. The sync-vs-async comparison of the demo is the ``mode``
grouping: cache series carry ``otel_cache_mode`` (``sync``, ``async``, ``mixed``), and
legends start with it.

Layout::

    HTTP and the event loop   request rate (5xx) | HTTP latency p50/p99 | event-loop lag | loop blocks
    Hit ratio and L1          hit ratio per level | evictions by reason | entries and bytes
    Locks                     lock-wait heatmap per mode (repeated by $mode)
                              lock wait p99 by lock type | contended acquisitions
    Redis (L2)                Redis latency p50/p99 | Redis errors, stale copies | circuit breaker state
    Loads and warmer          loads, coalesced | load duration p99 | warmer runs, failures | duration
    Many instances            invalidation messages, L1 flushes | invalidation lag | channel up, leaders
    Traces                    recent traces per service (Jaeger search, repeated by $service)
                              the trace in $trace_id (traces panel)

Variables (all but the data sources and the trace ID default to every value):

- ``datasource``, ``jaeger``: the Prometheus and Jaeger data sources (Grafana's default of
  each type unless picked), so the file imports into any Grafana. No ``__inputs``: Grafana's
  provisioning does not substitute them (grafana/grafana#10786), a data source variable
  works for import and provisioning alike.
- ``job``, ``instance``: the scrape's labels (an OTLP path through a collector sets them from
  ``service.name`` and ``service.instance.id``).
- ``cache``: ``otel_cache_name``; ``mode``: ``otel_cache_mode``.
- ``service``: ``service_name`` of ``target_info`` (the resource), for the Jaeger search.
- ``trace_id``: the trace the traces panel shows.

Panels of events that may not have happened yet (errors) fall back to zero per cache, so
they show 0, not "no data"; quantile panels need samples and say so when there are none.

Metric names come from ``otel_cache.telemetry.names`` (``MetricSpec.prometheus_name``);
the only others are the HTTP server metrics of ``opentelemetry-instrumentation-fastapi``
under ``OTEL_SEMCONV_STABILITY_OPT_IN=http`` and the exporter's ``target_info``.
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
    "MODES",
    "VARIABLE_NAMES",
    "build_dashboard",
    "main",
    "render",
]

DASHBOARD_UID = "otel-cache"
DASHBOARD_PATH = Path(__file__).with_name(f"{DASHBOARD_UID}.json")
MODES = ("sync", "async", "mixed")  # otel_cache.mode: a cache's API (mixed: both)

PROMETHEUS = dashboard_model.DataSourceRef(type_val="prometheus", uid="${datasource}")
JAEGER = dashboard_model.DataSourceRef(type_val="jaeger", uid="${jaeger}")

# What a query reads, by what the series carries: every series has the scrape's job and
# instance; the event-loop monitor's and warmers' also otel_cache_mode; a cache's also its name.
HTTP_SCOPE = 'job=~"$job", instance=~"$instance"'
PROCESS_SCOPE = f'{HTTP_SCOPE}, otel_cache_mode=~"$mode"'
CACHE_SCOPE = f'{PROCESS_SCOPE}, otel_cache_name=~"$cache"'
# Series of one cache: grouped by these, legends start with them (mode first: its colour).
CACHE_BY = "otel_cache_mode, otel_cache_name"
CACHE_LEGEND = "{{otel_cache_mode}} {{otel_cache_name}}"
RATE_INTERVAL = "$__rate_interval"

# HTTP server duration from opentelemetry-instrumentation-fastapi (stable HTTP semconv).
HTTP_DURATION = "http_server_request_duration_seconds"

# Both modes on one panel: the same hue per mode everywhere, p50 dashed.
MODE_COLORS = {"sync": "blue", "async": "orange", "mixed": "purple"}
DASHED = dashboard_model.DynamicConfigValue(
    id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
)


# --------------------------------------------------------------------------- PromQL


def _name(spec: MetricSpec) -> str:
    return spec.prometheus_name


def _selector(metric: str, extra: str = "", scope: str = CACHE_SCOPE) -> str:
    matchers = f"{scope}, {extra}" if extra else scope
    return f"{metric}{{{matchers}}}"


def _rate(metric: str, extra: str = "", scope: str = CACHE_SCOPE) -> str:
    return f"rate({_selector(metric, extra, scope)}[{RATE_INTERVAL}])"


def _sum_rate(metric: str, by: str, extra: str = "", scope: str = CACHE_SCOPE) -> str:
    return f"sum by ({by}) ({_rate(metric, extra, scope)})"


def _or_zero(expr: str) -> str:
    """``expr``, or 0 for each cache while it has no series (an event that has not happened)."""
    every_cache = _selector(_name(METRICS.REQUESTS), 'otel_cache_level="l1"')
    return f"{expr} or (0 * max by ({CACHE_BY}) ({every_cache}))"


def _breaker_in(state: str) -> str:
    """1 for each breaker (cache, side, node) in ``state``, else 0."""
    series = _selector(_name(METRICS.BREAKER_STATE), f'otel_cache_circuit_breaker_state="{state}"')
    by = f"{CACHE_BY}, otel_cache_circuit_breaker_side, server_address, server_port"
    return f"max by ({by}) ({series})"


def _quantile(q: float, histogram: str, by: str, extra: str = "", scope: str = CACHE_SCOPE) -> str:
    return f"histogram_quantile({q}, {_sum_rate(f'{histogram}_bucket', f'{by}, le', extra, scope)})"


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
    """One hue per mode, for panels whose legends start with the mode; p50 dashed."""
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
    histogram: str, by: str, legend: str, extra: str = "", scope: str = CACHE_SCOPE
) -> list[cog_builder.Builder[cog_variants.Dataquery]]:
    return [
        _target(ref, _quantile(q, histogram, by, extra, scope), f"{legend} {label}", exemplar=True)
        for ref, q, label in (("A", 0.5, "p50"), ("B", 0.99, "p99"))
    ]


NO_SAMPLES = "no samples in this range"


def _row_http() -> list[cog_builder.Builder[dashboard_model.Panel]]:
    http_count = f"{HTTP_DURATION}_count"
    requests = _timeseries(
        "Request rate", "HTTP requests per second, per job, and those answered with a 5xx.", "reqps", width=6
    ).targets(
        [
            _target("A", _sum_rate(http_count, "job", scope=HTTP_SCOPE), "{{job}}"),
            _target(
                "B",
                _or_zero_http(_sum_rate(http_count, "job", 'http_response_status_code=~"5.."', HTTP_SCOPE)),
                "{{job}} 5xx",
            ),
        ]
    )
    latency = (
        _timeseries(
            "HTTP latency p50 / p99",
            "Server-side request duration (http.server.request.duration), per job. Exemplars (with an "
            "OTLP path to Prometheus) link to the trace.",
            "s",
            width=6,
        )
        .targets(_quantile_targets(HTTP_DURATION, "job", "{{job}}", scope=HTTP_SCOPE))
        .override_by_regexp(".* p50$", [DASHED])
    )
    loop_by = "otel_cache_mode, otel_cache_event_loop_name"
    lag = _color_by_mode(
        _timeseries(
            "Event-loop lag p99 and max",
            "How late the EventLoopMonitor's sleeps woke up: the p99 of the lag histogram and the "
            "longest lag of each collection interval. A loop blocked by sync work shows here.",
            "s",
            width=6,
        )
    ).targets(
        [
            _target(
                "A",
                _quantile(0.99, _name(METRICS.LOOP_LAG), loop_by, scope=PROCESS_SCOPE),
                "{{otel_cache_mode}} {{otel_cache_event_loop_name}} p99",
                exemplar=True,
            ),
            _target(
                "B",
                f"max by ({loop_by}) ({_selector(_name(METRICS.LOOP_LAG_MAX), scope=PROCESS_SCOPE)})",
                "{{otel_cache_mode}} {{otel_cache_event_loop_name}} max",
            ),
        ]
    )
    blocks = _color_by_mode(
        _timeseries(
            "Event-loop blocks per minute",
            "Times the watchdog saw the loop blocked past its threshold; each is an "
            "event_loop.blocked span, with the blocking stack.",
            "short",
            width=6,
        ).draw_style(common_model.GraphDrawStyle.BARS)
    ).targets(
        [
            _target(
                "A",
                f"60 * {_sum_rate(_name(METRICS.LOOP_BLOCKS), loop_by, scope=PROCESS_SCOPE)}",
                "{{otel_cache_mode}} {{otel_cache_event_loop_name}}",
            )
        ]
    )
    return [requests, latency, lag, blocks]


def _or_zero_http(expr: str) -> str:
    """``expr``, or 0 for each job while it has no series (no 5xx yet)."""
    return f"{expr} or (0 * sum by (job) ({_rate(f'{HTTP_DURATION}_count', scope=HTTP_SCOPE)}))"


def _row_l1() -> list[cog_builder.Builder[dashboard_model.Panel]]:
    requests = _name(METRICS.REQUESTS)
    by = f"{CACHE_BY}, otel_cache_level"
    hit_ratio = _color_by_mode(
        _timeseries(
            "Hit ratio per level",
            "Hits over lookups at each level (l1: in-process LRU, l2: Redis, asked after an L1 miss).",
            "percentunit",
        )
        .min(0)
        .max(1)
        .targets(
            [
                _target(
                    "A",
                    _sum_rate(requests, by, 'otel_cache_result="hit"') + " / " + _sum_rate(requests, by),
                    f"{CACHE_LEGEND} {{{{otel_cache_level}}}}",
                )
            ]
        )
    )
    evictions = _color_by_mode(
        _timeseries(
            "Evictions by reason", "Entries leaving L1 per second: size, expired, deleted, rejected.", "ops"
        ).targets(
            [
                _target(
                    "A",
                    _sum_rate(_name(METRICS.EVICTIONS), f"{CACHE_BY}, otel_cache_eviction_reason"),
                    f"{CACHE_LEGEND} {{{{otel_cache_eviction_reason}}}}",
                )
            ]
        )
    )
    size = (
        _color_by_mode(
            _timeseries(
                "L1 entries and bytes",
                "Entries held in L1 (left axis) and their bytes (right axis).",
                "short",
            )
        )
        .targets(
            [
                _target(
                    "A",
                    f"sum by ({CACHE_BY}) ({_selector(_name(METRICS.ENTRIES))})",
                    f"{CACHE_LEGEND} entries",
                ),
                _target(
                    "B", f"sum by ({CACHE_BY}) ({_selector(_name(METRICS.MEMORY))})", f"{CACHE_LEGEND} bytes"
                ),
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
            "one panel per mode; empty until a wait happens."
        )
        .datasource(PROMETHEUS)
        .repeat("mode")
        .repeat_direction("h")
        .max_per_row(3)
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
    p99 = (
        _color_by_mode(
            _timeseries(
                "Lock wait p99 by lock type",
                "threading.Lock: the L1 lock; single-flight: a caller waiting for another's load.",
                "s",
                width=12,
            )
        )
        .no_value(NO_SAMPLES)
        .targets(
            [
                _target(
                    "A",
                    _quantile(0.99, lock_wait, f"{CACHE_BY}, otel_cache_lock_type"),
                    f"{CACHE_LEGEND} {{{{otel_cache_lock_type}}}}",
                    exemplar=True,
                )
            ]
        )
    )
    contended = _color_by_mode(
        _timeseries(
            "Contended lock acquisitions",
            "Acquisitions per second that had to wait, by lock type.",
            "ops",
            width=12,
        )
    ).targets(
        [
            _target(
                "A",
                _sum_rate(_name(METRICS.LOCK_CONTENDED), f"{CACHE_BY}, otel_cache_lock_type"),
                f"{CACHE_LEGEND} {{{{otel_cache_lock_type}}}}",
            )
        ]
    )
    return [heatmap, p99, contended]


def _row_redis() -> list[cog_builder.Builder[dashboard_model.Panel]]:
    latency = (
        _color_by_mode(
            _timeseries(
                "Redis latency p50 / p99 by operation",
                "Duration of L2 calls (otel_cache.operation.duration). Exemplars link to the "
                "otel_cache.l2 span.",
                "s",
            )
        )
        .no_value(NO_SAMPLES)
        .targets(
            _quantile_targets(
                _name(METRICS.OPERATION_DURATION),
                f"{CACHE_BY}, otel_cache_operation",
                f"{CACHE_LEGEND} {{{{otel_cache_operation}}}}",
                'otel_cache_level="l2"',
            )
        )
    )
    errors = _color_by_mode(
        _timeseries(
            "Redis errors by type, stale copies",
            "Failed L2 calls per second, by the Redis exception class (0 while there is none); keys "
            "whose L2 copy may be stale after such a failure (never served: a read deletes the copy), "
            "and those repairs per second.",
            "ops",
        )
    ).targets(
        [
            _target(
                "A",
                _or_zero(_sum_rate(_name(METRICS.L2_ERRORS), f"{CACHE_BY}, error_type")),
                f"{CACHE_LEGEND} {{{{error_type}}}}",
            ),
            _target(
                "B",
                f"sum by ({CACHE_BY}) ({_selector(_name(METRICS.L2_UNSYNCED))})",
                f"{CACHE_LEGEND} unsynced",
            ),
            _target("C", _sum_rate(_name(METRICS.L2_REPAIRS), CACHE_BY), f"{CACHE_LEGEND} repairs/s"),
        ]
    )
    states = {"0": ("closed", "green"), "1": ("open", "red"), "2": ("half-open", "orange")}
    breaker = (
        statetimeline_builder.Panel()
        .title("Circuit breaker state")
        .description(
            "closed: Redis is used; open: Redis calls are skipped; half-open: probing. "
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
                f"{CACHE_LEGEND} {{{{otel_cache_circuit_breaker_side}}}} {{{{server_address}}}} "
                "{{server_port}}",
            )
        )
    )
    return [latency, errors, breaker]


def _row_loads() -> list[cog_builder.Builder[dashboard_model.Panel]]:
    loads = _color_by_mode(
        _timeseries(
            "Loads and coalesced callers",
            "Loader calls per second, and callers that waited for another caller's flight (its Redis read"
            " and load).",
            "ops",
            width=6,
        )
    ).targets(
        [
            _target("A", _sum_rate(_name(METRICS.LOADS), CACHE_BY), f"{CACHE_LEGEND} loads"),
            _target("B", _sum_rate(_name(METRICS.COALESCED), CACHE_BY), f"{CACHE_LEGEND} coalesced"),
        ]
    )
    load_duration = (
        _color_by_mode(
            _timeseries(
                "Load duration p99 by result", "Loader duration (otel_cache.load.duration).", "s", width=6
            )
        )
        .no_value(NO_SAMPLES)
        .targets(
            [
                _target(
                    "A",
                    _quantile(0.99, _name(METRICS.LOAD_DURATION), f"{CACHE_BY}, otel_cache_result"),
                    f"{CACHE_LEGEND} {{{{otel_cache_result}}}}",
                    exemplar=True,
                )
            ]
        )
    )
    by = "otel_cache_mode, otel_cache_warmer_name"
    legend = "{{otel_cache_mode}} {{otel_cache_warmer_name}}"
    warmer = _color_by_mode(
        _timeseries(
            "Warmer runs and failures per minute",
            "Warmer runs, and keys the warmer failed to load or store.",
            "short",
            width=6,
        )
    ).targets(
        [
            _target(
                "A",
                f"60 * {_sum_rate(_name(METRICS.WARMER_RUNS), by, scope=PROCESS_SCOPE)}",
                f"{legend} runs",
            ),
            _target(
                "B",
                f"60 * {_sum_rate(_name(METRICS.WARMER_FAILURES), by, scope=PROCESS_SCOPE)}",
                f"{legend} failures",
            ),
        ]
    )
    warmer_duration = (
        _color_by_mode(
            _timeseries(
                "Warmer run duration p99",
                "Duration of warmer runs (otel_cache.warmer.run.duration).",
                "s",
                width=6,
            )
        )
        .no_value(NO_SAMPLES)
        .targets(
            [
                _target(
                    "A",
                    _quantile(0.99, _name(METRICS.WARMER_DURATION), by, scope=PROCESS_SCOPE),
                    legend,
                    exemplar=True,
                )
            ]
        )
    )
    return [loads, load_duration, warmer, warmer_duration]


def _row_instances() -> list[cog_builder.Builder[dashboard_model.Panel]]:
    messages = _color_by_mode(
        _timeseries(
            "Invalidation messages and L1 flushes",
            "Messages this process published to, and applied from, the other processes on its Redis and "
            "namespace; messages ignored (garbage, a newer version); L1 emptied because the channel was "
            "lost.",
            "ops",
        )
    ).targets(
        [
            _target("A", _sum_rate(_name(METRICS.INVALIDATIONS_SENT), CACHE_BY), f"{CACHE_LEGEND} sent/s"),
            _target(
                "B", _sum_rate(_name(METRICS.INVALIDATIONS_RECEIVED), CACHE_BY), f"{CACHE_LEGEND} received/s"
            ),
            _target(
                "C",
                _sum_rate(
                    _name(METRICS.INVALIDATIONS_IGNORED), f"{CACHE_BY}, otel_cache_invalidation_reason"
                ),
                f"{CACHE_LEGEND} ignored ({{{{otel_cache_invalidation_reason}}}})/s",
            ),
            _target("D", _sum_rate(_name(METRICS.L1_FLUSHES), CACHE_BY), f"{CACHE_LEGEND} L1 flushes/s"),
        ]
    )
    lag = (
        _color_by_mode(
            _timeseries(
                "Invalidation lag p50 / p99",
                "From the sender's clock at publishing to receipt here (otel_cache.invalidation.lag): how "
                "long another process's write may still be served from this one's L1. Clocks of two hosts "
                "may differ.",
                "s",
            )
        )
        .no_value(NO_SAMPLES)
        .targets(_quantile_targets(_name(METRICS.INVALIDATION_LAG), CACHE_BY, CACHE_LEGEND))
    )
    leadership = _color_by_mode(
        _timeseries(
            "Invalidation channel up, warmer leaders",
            "1 while the invalidation channel is subscribed (0: L1 is bypassed until it is back), the "
            "lowest over the instances. Warmer leaders: processes warming on schedule, per warmer name; "
            "1 in a healthy deployment.",
            "short",
        )
    ).targets(
        [
            _target(
                "A",
                f"min by ({CACHE_BY}) ({_selector(_name(METRICS.CHANNEL_UP))})",
                f"{CACHE_LEGEND} channel up",
            ),
            _target(
                "B",
                "sum by (otel_cache_mode, otel_cache_warmer_name) "
                f"({_selector(_name(METRICS.WARMER_LEADER), scope=PROCESS_SCOPE)})",
                "{{otel_cache_mode}} {{otel_cache_warmer_name}} leaders",
            ),
        ]
    )
    return [messages, lag, leadership]


def _trace_link() -> str:
    """A link to this dashboard showing one trace, keeping the time range and variables."""
    return f"/d/{DASHBOARD_UID}/?${{__url_time_range}}&${{__all_variables}}&var-trace_id=${{__value.raw}}"


def _row_traces() -> list[cog_builder.Builder[dashboard_model.Panel]]:
    trace_links = [
        {"title": "Show in the trace panel below", "url": _trace_link()},
        {
            "title": "Open in Explore",
            "url": "",
            "internal": {
                "datasourceUid": "${jaeger}",
                "datasourceName": "Jaeger",
                "query": {"query": "${__value.raw}"},
            },
        },
    ]
    recent = (
        table_builder.Panel()
        .title("Recent traces: $service")
        .description(
            "The last traces of each service (Jaeger search by service.name, from target_info). "
            "Click a trace ID to show it below."
        )
        .datasource(JAEGER)
        .repeat("service")
        .repeat_direction("h")
        .max_per_row(2)
        .span(24)
        .height(9)
        .with_target(_JaegerQueryBuilder(JaegerQuery("A", service="$service")))
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

ALL = dashboard_model.VariableOption(selected=True, text=["All"], value=["$__all"])
# Every variable, in the order of the dashboard's top bar.
VARIABLE_NAMES = ("datasource", "jaeger", "job", "instance", "cache", "mode", "service", "trace_id")


def _label_variable(name: str, label: str, query: str, description: str) -> dashboard_builder.QueryVariable:
    """A multi-value variable of a label's values (``All``: any value, ``.*``), refreshed with the
    time range."""
    return (
        dashboard_builder.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(PROMETHEUS)
        .query({"query": query, "refId": f"{name}-values", "qryType": 1})
        .refresh(dashboard_model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(ALL)
    )


def _variables() -> list[cog_builder.Builder[dashboard_model.VariableModel]]:
    requests = _name(METRICS.REQUESTS)
    datasource = (
        dashboard_builder.DatasourceVariable("datasource")
        .label("Prometheus")
        .type("prometheus")
        .description("Where otel_cache's metrics are (default: Grafana's default Prometheus data source).")
    )
    jaeger = (
        dashboard_builder.DatasourceVariable("jaeger")
        .label("Jaeger")
        .type("jaeger")
        .description("Where the traces are, for the trace panels.")
    )
    job = _label_variable("job", "Job", f"label_values({requests}, job)", "The scrape job (or service.name).")
    instance = _label_variable(
        "instance",
        "Instance",
        f'label_values({requests}{{job=~"$job"}}, instance)',
        "The process (scrape target, or service.instance.id).",
    )
    cache = _label_variable(
        "cache",
        "Cache",
        f"label_values({requests}{{{HTTP_SCOPE}}}, otel_cache_name)",
        "otel_cache.name: a cache's name (CacheConfig.name, OTEL_CACHE_NAME).",
    )
    mode = _label_variable(
        "mode",
        "Mode",
        f"label_values({requests}{{{HTTP_SCOPE}}}, otel_cache_mode)",
        "otel_cache.mode: the API a cache serves (sync, async, mixed); the demo's two services differ by it.",
    )
    service = _label_variable(
        "service",
        "Service",
        'label_values(target_info{job=~"$job", instance=~"$instance"}, service_name)',
        "service.name of the processes (from target_info), for the Jaeger search.",
    )
    trace_id = (
        dashboard_builder.TextBoxVariable("trace_id")
        .label("Trace ID")
        .description("The trace shown in the trace panel.")
        .default_value("")
    )
    return [datasource, jaeger, job, instance, cache, mode, service, trace_id]


def build_dashboard() -> dashboard_model.Dashboard:
    """The dashboard, as the SDK's model."""
    builder = (
        dashboard_builder.Dashboard("otel_cache")
        .uid(DASHBOARD_UID)
        .description(
            "otel_cache's caches in any app: hit ratios, L1, locks, Redis, loads, warmers, many "
            "instances, the event loop; caches of different modes (the demo's sync and async "
            "services) side by side. Generated by dashboards/generate.py: edit that, not this."
        )
        .tags(["otel-cache", "generated"])
        .editable()
        .tooltip(dashboard_model.DashboardCursorSync.CROSSHAIR)
        .time("now-15m", "now")
        .refresh("10s")
        .timezone("browser")
        .variables(_variables())
    )
    rows = (
        ("HTTP and the event loop", _row_http()),
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
