"""``docs/telemetry.md`` lists every name of ``otel_cache/telemetry/names.py``, and its Prometheus
names are the ones the real OpenTelemetry Prometheus exporter produces."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, generate_latest

from otel_cache.telemetry.instrumentor import OtelCacheInstrumentor
from otel_cache.telemetry.names import ATTR, DURATION_BUCKETS, METRICS, SPAN, MetricSpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "telemetry.md"
LOOP_METRICS = {METRICS.LOOP_LAG.name, METRICS.LOOP_LAG_MAX.name, METRICS.LOOP_BLOCKS.name}
UNRECORDED: set[str] = set()
PROMETHEUS_TYPE = {
    "counter": "counter",
    "observable_counter": "counter",
    "observable_up_down_counter": "gauge",
    "observable_gauge": "gauge",
    "histogram": "histogram",
}


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The body rows of the first table after ``## heading``, as lists of cells."""
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:]  # without the header row


def code(cell: str) -> str:
    match = re.fullmatch(r"`([^`]*)`", cell)
    assert match, f"expected one `code` span, got {cell!r}"
    return match.group(1)


def exposition_types(registry: CollectorRegistry) -> dict[str, str]:
    """``{metric family: type}`` from the ``# TYPE`` lines of the Prometheus text format."""
    text = generate_latest(registry).decode()
    return {line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE ")}


# -- the page lists every name ---------------------------------------------------


def test_metric_table_matches_names_py() -> None:
    rows = table_rows(doc_text(), "Metrics")
    documented = {code(row[0]): row for row in rows}
    assert len(documented) == len(rows), "a metric is listed twice"
    specs = {spec.name: spec for spec in METRICS.all()}
    assert set(documented) == set(specs)
    for name, (_, kind, unit, attributes, prometheus_name, description) in documented.items():
        spec = specs[name]
        assert kind == spec.kind.replace("_", " ").replace("up down", "up-down"), name
        assert code(unit) == spec.unit, name
        assert code(prometheus_name) == spec.prometheus_name, name
        assert description.startswith(spec.description), name
        assert attributes, name


def test_every_metric_and_prometheus_name_is_on_the_page() -> None:
    text = doc_text()
    for spec in METRICS.all():
        assert f"`{spec.name}`" in text
        assert f"`{spec.prometheus_name}`" in text


def test_every_span_event_and_attribute_is_on_the_page() -> None:
    text = doc_text()
    span_names = {value for key, value in vars(SPAN).items() if key.isupper()}
    for name in span_names:
        assert f"`{name}`" in text, name
    for operation in ("get", "set", "delete", "get_many", "set_many", "clear"):
        assert f"`{SPAN.L2.format(operation=operation)}`" in text
    attribute_rows = table_rows(text, "Attributes")
    documented_keys = {key for row in attribute_rows for key in re.findall(r"`([^`]*)`", row[0])}
    attribute_keys = {value for key, value in vars(ATTR).items() if key.isupper()}
    assert attribute_keys <= documented_keys
    assert documented_keys <= attribute_keys, "the page lists a key names.py does not have"
    for row in attribute_rows:
        (key, *_), label = re.findall(r"`([^`]*)`", row[0]), row[1]
        if label != "-":
            assert code(label) == re.sub(r"[^A-Za-z0-9_]", "_", key), key


def test_duration_buckets_on_the_page_are_the_real_ones() -> None:
    text = " ".join(doc_text().split())
    listed = re.search(r"explicit buckets `DURATION_BUCKETS` \(1 µs … 10 s: `([^`]*)`\)", text)
    assert listed, "the bucket list is gone from the page"
    assert tuple(float(value) for value in listed.group(1).split(",")) == DURATION_BUCKETS


def test_the_page_documents_how_to_enable_it() -> None:
    text = doc_text()
    for needle in (
        "OtelCacheInstrumentor().instrument(",
        "opentelemetry-instrument",
        "opentelemetry_instrumentor",
        "OTEL_SEMCONV_STABILITY_OPT_IN=database",
        "OTEL_CACHE_RECORD_KEY_HASHES",
        "suppress_instrumentation",
        "observable instruments",
    ):
        assert needle in text, needle


# -- the Prometheus names are the exporter's -----------------------------------------


async def test_prometheus_exporter_exposes_every_cache_metric_under_its_documented_name(
    exercise_everything: Callable[[str], Any], cache_name: str
) -> None:
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider = TracerProvider()
    instrumentor = OtelCacheInstrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider, instrument_redis=False
    )
    try:
        await exercise_everything(cache_name)
        types = exposition_types(registry)
        text = generate_latest(registry).decode()
    finally:
        instrumentor.uninstrument()
        meter_provider.shutdown()
        tracer_provider.shutdown()

    emitted = [spec for spec in METRICS.all() if spec.name not in LOOP_METRICS | UNRECORDED]
    ours = {name for name in types if name.startswith("otel_cache_")}
    assert ours == {spec.prometheus_name for spec in emitted}
    for spec in emitted:
        assert types[spec.prometheus_name] == PROMETHEUS_TYPE[spec.kind], spec.name
    # Labels are the documented attribute keys with "." -> "_".
    assert f'otel_cache_name="{cache_name}"' in text
    for label in ("otel_cache_mode", "otel_cache_level", "otel_cache_result", "otel_cache_eviction_reason"):
        assert f'{label}="' in text, label
    assert 'otel_cache_lock_type="threading.Lock"' in text
    assert 'error_type="ConnectionError"' in text
    assert f'otel_cache_warmer_name="{cache_name}-thread"' in text
    assert 'le="2.5e-06"' in text  # our buckets, not the SDK's default


def test_prometheus_name_rule_holds_for_every_spec() -> None:
    """Every spec, also those no cache operation produces here (the event-loop monitor's,
    lock.hold), through an instrument of its kind and unit."""
    registry = CollectorRegistry()
    meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    meter = meter_provider.get_meter("otel_cache.tests")

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(1, {ATTR.MODE: "async"})]

    create: dict[str, Callable[[MetricSpec], None]] = {
        "counter": lambda spec: meter.create_counter(spec.name, unit=spec.unit).add(1),
        "histogram": lambda spec: meter.create_histogram(spec.name, unit=spec.unit).record(0.5),
        "observable_counter": lambda spec: (
            meter.create_observable_counter(spec.name, [observe], unit=spec.unit) and None
        ),
        "observable_up_down_counter": lambda spec: (
            meter.create_observable_up_down_counter(spec.name, [observe], unit=spec.unit) and None
        ),
        "observable_gauge": lambda spec: (
            meter.create_observable_gauge(spec.name, [observe], unit=spec.unit) and None
        ),
    }
    try:
        for spec in METRICS.all():
            create[spec.kind](spec)
        types = exposition_types(registry)
    finally:
        meter_provider.shutdown()
    for spec in METRICS.all():
        assert spec.prometheus_name in types, (spec.name, sorted(types))
        assert types[spec.prometheus_name] == PROMETHEUS_TYPE[spec.kind], spec.name
