"""Helpers of the telemetry tests: in-memory providers and readers of what they got.

``Telemetry``              a TracerProvider (InMemorySpanExporter) and a MeterProvider (InMemoryMetricReader),
                           with ``instrument()`` / ``uninstrument()`` of ``OtelCacheInstrumentor``.
``points`` / ``point``     the data points of one metric whose attributes match.
``all_attribute_values``   every name, status, attribute and event/link attribute of spans, as text.
``call``                   ``cache.<method>(...)`` or ``await cache.a<method>(...)`` by API.
``hold_lock``              a thread that holds a ``TimedLock`` for a while (contention on demand).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_cache.telemetry.instrumentor import OtelCacheInstrumentor
from otel_cache.telemetry.names import INSTRUMENTATION_NAME

__all__ = ["Telemetry", "all_attribute_values", "call", "hold_lock", "point", "points"]


class Telemetry:
    """The providers of one test and helpers to read what they got."""

    def __init__(self, **options: Any) -> None:
        self.exporter = InMemorySpanExporter()
        sampler = options.pop("sampler", None)
        self.tracer_provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        # record_key_hashes is passed only when given: without it the environment decides.
        self.options = {"instrument_redis": False, **options}
        self.tracer = self.tracer_provider.get_tracer("tests")

    def instrument(self) -> None:
        OtelCacheInstrumentor().instrument(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **self.options
        )

    def uninstrument(self) -> None:
        instrumentor = OtelCacheInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

    # -- spans -----------------------------------------------------------------

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans, all or those called ``name``."""
        spans = list(self.exporter.get_finished_spans())
        return spans if name is None else [span for span in spans if span.name == name]

    def cache_spans(self) -> list[ReadableSpan]:
        """The spans otel_cache made (its instrumentation scope)."""
        spans = self.exporter.get_finished_spans()
        return [span for span in spans if _scope_name(span) == INSTRUMENTATION_NAME]

    # -- metrics ---------------------------------------------------------------

    def metrics(self) -> dict[str, Metric]:
        """Collect now; otel_cache's metrics by name."""
        data = self.reader.get_metrics_data()
        found: dict[str, Metric] = {}
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                if scope_metrics.scope.name != INSTRUMENTATION_NAME:
                    continue
                for metric in scope_metrics.metrics:
                    assert metric.name not in found, f"{metric.name} reported twice"
                    found[metric.name] = metric
        return found


def _scope_name(span: ReadableSpan) -> str | None:
    scope = span.instrumentation_scope
    return None if scope is None else scope.name


def points(metrics: Mapping[str, Metric], name: str, **match: str) -> list[Any]:
    """Data points of metric ``name`` whose attributes include ``match``.

    ``match`` keys are attribute keys with ``.`` written as ``__`` (``otel_cache__name="x"``);
    ``error__type`` gives ``error.type``.
    """
    wanted = {key.replace("__", "."): value for key, value in match.items()}
    metric = metrics.get(name)
    if metric is None:
        return []
    return [
        point
        for point in metric.data.data_points
        if all(point.attributes.get(key) == value for key, value in wanted.items())
    ]


def point(metrics: Mapping[str, Metric], name: str, **match: str) -> Any:
    """The one data point of ``name`` matching ``match``."""
    found = points(metrics, name, **match)
    assert len(found) == 1, f"{name} {match}: {len(found)} points: {[dict(p.attributes) for p in found]}"
    return found[0]


def all_attribute_values(spans: Sequence[ReadableSpan]) -> list[str]:
    """Every attribute value (spans, their events, their links) as text, plus names and status."""
    texts: list[str] = []
    for span in spans:
        texts.append(span.name)
        texts.append(str(span.status.description))
        texts.extend(str(value) for value in (span.attributes or {}).values())
        for event in span.events:
            texts.append(event.name)
            texts.extend(str(value) for value in (event.attributes or {}).values())
        for link in span.links:
            texts.extend(str(value) for value in (link.attributes or {}).values())
    return texts


async def call(cache: Any, api: str, method: str, *args: Any) -> Any:
    """``cache.<method>(*args)`` through the sync API, or ``await cache.a<method>(*args)``."""
    if api == "sync":
        return getattr(cache, method)(*args)
    return await getattr(cache, "a" + method)(*args)


HOLD_FLOOR_S = 0.2


def hold_lock(lock: Any, seconds: float) -> threading.Thread:
    """Start a thread that takes ``lock`` (raw, non-blocking), holds it ``seconds`` (at least
    0.2 s) and releases it.

    Returns once the lock is held; join the thread afterwards. The floor is what makes the
    caller's next acquisition wait on a busy machine: after this returns, the caller's
    thread must first be scheduled again (milliseconds when the cores are taken).
    """
    held = threading.Event()

    def run() -> None:
        assert lock.try_acquire(False)
        held.set()
        time.sleep(max(seconds, HOLD_FLOOR_S))
        lock.release()

    thread = threading.Thread(target=run, name="test-lock-holder")
    thread.start()
    assert held.wait(5)
    return thread
