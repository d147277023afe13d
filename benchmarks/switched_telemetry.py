"""``OtelCacheInstrumentor`` on SDK providers, switched on and off between rounds.

For benchmarks that compare the same calls with and without otel_cache's telemetry in
one process: instrumenting once and handing the handler to
:mod:`otel_cache.telemetry.hooks` (and taking it back) costs nothing per call, where
instrumenting and uninstrumenting every round would. Spans go through a
``BatchSpanProcessor`` to an exporter that counts and drops them; metrics to an
``InMemoryMetricReader``.
"""

from __future__ import annotations

from typing import Any

from benchmarks.telemetry_http import dropping_span_exporter

__all__ = ["SwitchedTelemetry"]


class SwitchedTelemetry:
    """Instrumented at construction and on; :meth:`set` switches; :meth:`close` uninstruments."""

    def __init__(self, *, instrument_redis: bool = True) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from otel_cache.telemetry import hooks
        from otel_cache.telemetry.instrumentor import OtelCacheInstrumentor

        if hooks.current() is not None:
            raise RuntimeError("otel_cache is already instrumented in this process")
        self.spans = dropping_span_exporter()
        self.tracer_provider = TracerProvider(shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(BatchSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader], shutdown_on_exit=False)
        self.instrumentor = OtelCacheInstrumentor()
        self.instrumentor.instrument(
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            instrument_redis=instrument_redis,
        )
        handler = hooks.current()
        if handler is None:
            raise RuntimeError("OtelCacheInstrumentor.instrument() installed no handler")
        self.handler: hooks.Handler = handler
        self.on = True

    def set(self, on: bool) -> None:
        from otel_cache.telemetry import hooks

        if on and not self.on:
            hooks.install(self.handler)
        elif not on and self.on:
            hooks.uninstall()
        self.on = on

    def flush(self) -> None:
        """Export the spans still queued (so a timed round pays for its own)."""
        self.tracer_provider.force_flush()

    def metric_points(self, scope_name: str) -> int:
        """Data points of one collection of the instruments of ``scope_name``."""
        data: Any = self.reader.get_metrics_data()
        points = 0
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                if scope.scope.name == scope_name:
                    points += sum(len(metric.data.data_points) for metric in scope.metrics)
        return points

    def close(self) -> None:
        """Uninstrument (leaving no handler behind) and shut the providers down."""
        self.set(True)
        self.instrumentor.uninstrument()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
