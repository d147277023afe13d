"""``instrument_app(app)``: OpenTelemetry for a FastAPI app and for otel_cache, in one call.

::

    app = FastAPI(lifespan=otel_cache_lifespan())
    instrument_app(app)            # before the app serves its first request

It calls ``FastAPIInstrumentor.instrument_app`` without the per-message
``http receive`` / ``http send`` spans (two or more children per request that say
little and cost much), and ``OtelCacheInstrumentor().instrument()``, so cache
spans (L2 calls, loads, single-flight waits) nest under the request's server span.
Both use the given providers, or the global ones. Idempotent, like the
instrumentors; :func:`uninstrument_app` undoes both.

Under ``opentelemetry-instrument`` there is no need to call it: the CLI instruments every
FastAPI app (with its own options, ``OTEL_PYTHON_FASTAPI_*``) and otel_cache. Calling it
anyway is harmless: an app the CLI instrumented is left as it is (no second middleware, no
"already instrumented" warning), and otel_cache's instrumentation is already on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["instrument_app", "uninstrument_app"]

log = logging.getLogger("otel_cache.integrations.fastapi")


def instrument_app(
    app: FastAPI,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    excluded_urls: str | None = None,
) -> None:
    """Instrument ``app`` (server spans and HTTP metrics) and otel_cache.

    Args:
        app: the app; call before it starts (FastAPI builds its middleware stack then).
        tracer_provider: default: the global one.
        meter_provider: default: the global one.
        excluded_urls: comma-separated regexes of URLs not to trace (e.g. ``"healthz,metrics"``);
            default: ``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS``.

    Raises:
        ImportError: ``opentelemetry-instrumentation-fastapi`` is not installed.
    """
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # The flag FastAPIInstrumentor itself sets on an app it instrumented (also on every app
    # made after the CLI's instrument()); it warns when asked again.
    if not getattr(app, "_is_instrumented_by_opentelemetry", False):
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            excluded_urls=excluded_urls,
            exclude_spans=["receive", "send"],
        )
    try:
        from otel_cache.telemetry.instrumentor import OtelCacheInstrumentor
    except ImportError:  # pragma: no cover - the telemetry module ships with the package
        log.debug("instrument_app: otel_cache telemetry is not available; only the app is instrumented")
        return
    instrumentor = OtelCacheInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)


def uninstrument_app(app: FastAPI) -> None:
    """Undo :func:`instrument_app`: the app's instrumentation and otel_cache's (which is process-wide)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.uninstrument_app(app)
    try:
        from otel_cache.telemetry.instrumentor import OtelCacheInstrumentor
    except ImportError:  # pragma: no cover
        return
    instrumentor = OtelCacheInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
