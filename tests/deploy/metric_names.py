"""The Prometheus names a dashboard or rule may use: otel_cache's (from ``names.py``, as the
OpenTelemetry Prometheus exporter writes them) and the few it relies on from elsewhere."""

from __future__ import annotations

from otel_cache.telemetry.names import ATTR, METRICS

EXTERNAL_HISTOGRAMS = frozenset(
    {
        # opentelemetry-instrumentation-fastapi with OTEL_SEMCONV_STABILITY_OPT_IN=http:
        # http.server.request.duration, unit s
        "http_server_request_duration_seconds",
    }
)
EXTERNAL_METRICS = frozenset(
    {
        "http_server_active_requests",  # opentelemetry-instrumentation-fastapi (stable semconv)
        "target_info",  # the OpenTelemetry Prometheus exporters' resource
        "up",  # Prometheus, per target
    }
)
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

#: otel_cache's attributes as Prometheus labels.
LIBRARY_LABELS = frozenset({value.replace(".", "_") for key, value in vars(ATTR).items() if key.isupper()})
#: What Prometheus adds to every series (job, instance) and a histogram's bucket bound.
SCRAPE_LABELS = frozenset({"job", "instance", "le"})


def allowed_metric_names() -> frozenset[str]:
    """Every series name that exists: a histogram's as its ``_bucket``/``_sum``/``_count``."""
    names = set(EXTERNAL_METRICS)
    for spec in METRICS.all():
        if spec.kind == "histogram":
            names.update(spec.prometheus_name + suffix for suffix in HISTOGRAM_SUFFIXES)
        else:
            names.add(spec.prometheus_name)
    for histogram in EXTERNAL_HISTOGRAMS:
        names.update(histogram + suffix for suffix in HISTOGRAM_SUFFIXES)
    return frozenset(names)
