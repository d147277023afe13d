"""The demo service's OpenTelemetry SDK: Prometheus always, OTLP when the standard variables ask.

::

    telemetry = DemoTelemetry.from_env("async")
    telemetry.meter_provider      # PrometheusMetricReader (+ OTLP metrics if configured)
    telemetry.tracer_provider     # OTLP spans if configured, else a no-op provider
    telemetry.registry            # what GET /metrics serves (prometheus_client.make_asgi_app)
    telemetry.shutdown()          # flushes and stops the exporters

=========================================  ====================================================
variable                                   effect
=========================================  ====================================================
``OTEL_EXPORTER_OTLP_ENDPOINT``            spans and metrics to ``<endpoint>/v1/traces`` and
                                           ``/v1/metrics`` (OTLP/HTTP, protobuf)
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``     spans only, to this exact URL
``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``    metrics only, to this exact URL
``OTEL_EXPORTER_OTLP_HEADERS``, ...        read by the exporters themselves
``OTEL_METRIC_EXPORT_INTERVAL``            the OTLP metric export period (ms; default 60000)
``OTEL_RESOURCE_ATTRIBUTES``               extra resource attributes
=========================================  ====================================================

The resource is ``service.name = otel-cache-demo-<mode>`` and ``otel_cache.mode = <mode>``,
so the two services sit side by side in one backend. With no traces endpoint the tracer
provider is a no-op: server spans that go nowhere would cost both modes the same
tens of microseconds a request and show nothing. Each ``DemoTelemetry`` has its own
Prometheus registry, so several apps in one process (tests) do not collide.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NoOpTracerProvider, TracerProvider
from prometheus_client import CollectorRegistry

__all__ = ["DemoTelemetry", "otlp_targets"]

log = logging.getLogger("otel_cache_demo")

_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
_METRICS_ENDPOINT = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"


def otlp_targets(environ: Mapping[str, str] | None = None) -> tuple[bool, bool]:
    """Whether the environment asks for OTLP ``(traces, metrics)``."""
    env = os.environ if environ is None else environ

    def is_set(name: str) -> bool:
        return bool(env.get(name, "").strip())

    common = is_set(_ENDPOINT)
    return common or is_set(_TRACES_ENDPOINT), common or is_set(_METRICS_ENDPOINT)


@dataclass
class DemoTelemetry:
    """The providers and the Prometheus registry of one demo app."""

    mode: str
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    registry: CollectorRegistry
    exporting: tuple[bool, bool] = (False, False)  # OTLP (traces, metrics)
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def from_env(cls, mode: str, environ: Mapping[str, str] | None = None) -> DemoTelemetry:
        """Prometheus, plus OTLP/HTTP exporters where ``OTEL_EXPORTER_OTLP_*`` asks for them."""
        env = os.environ if environ is None else environ
        traces, metrics = otlp_targets(env)
        protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").strip()
        if (traces or metrics) and protocol not in ("", "http/protobuf"):
            log.warning(
                "OTEL_EXPORTER_OTLP_PROTOCOL=%s: the demo exports OTLP/HTTP (protobuf) only", protocol
            )
        resource = Resource.create({"service.name": f"otel-cache-demo-{mode}", "otel_cache.mode": mode})
        registry = CollectorRegistry(auto_describe=True)
        readers: list[MetricReader] = [PrometheusMetricReader(registry=registry)]
        if metrics:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        tracer_provider: TracerProvider
        if traces:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            sdk_tracer_provider = SdkTracerProvider(resource=resource)
            sdk_tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            tracer_provider = sdk_tracer_provider
        else:
            tracer_provider = NoOpTracerProvider()
        return cls(mode, tracer_provider, meter_provider, registry, (traces, metrics))

    def shutdown(self) -> None:
        """Flush and stop the exporters; idempotent."""
        if self._closed:
            return
        self._closed = True
        if isinstance(self.tracer_provider, SdkTracerProvider):
            self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
