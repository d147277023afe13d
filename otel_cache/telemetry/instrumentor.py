"""``OtelCacheInstrumentor``: turn otel_cache's telemetry on, with code or with none.

Zero code: ``opentelemetry-instrument uvicorn app:app`` finds this instrumentor
through the ``opentelemetry_instrumentor`` entry point and calls ``instrument()``.

Explicit::

    from otel_cache.telemetry.instrumentor import OtelCacheInstrumentor
    OtelCacheInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)

Every cache and warmer, created before or after, is then observed (see
:mod:`otel_cache.telemetry.cache_telemetry` for what is emitted). Options:

``tracer_provider`` / ``meter_provider``
    default: the global ones (which the standard ``OTEL_*`` variables configure).
``record_key_hashes``
    put a hash of the key on load spans (default off; also
    ``OTEL_CACHE_RECORD_KEY_HASHES=true``). Raw keys are never recorded.
``instrument_redis``
    also instrument redis-py with ``opentelemetry-instrumentation-redis`` when it
    is installed, so Redis commands appear as child spans of the L2 spans
    (default on). Set ``OTEL_SEMCONV_STABILITY_OPT_IN=database`` for the stable
    database conventions. This happens when the first cache or warmer is created
    (or at once if one exists), and only if nothing instrumented redis-py before:
    under ``opentelemetry-instrument`` the Redis instrumentor, when installed, is
    loaded like this one and in no set order, and instrumenting it here first would
    make it warn "Attempting to instrument while already instrumented". Not at all
    when ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` names ``redis``.

``instrument()`` is idempotent (BaseInstrumentor is a singleton);
``uninstrument()`` stops all of it.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_cache.telemetry import hooks
from otel_cache.telemetry.cache_telemetry import CacheTelemetry

__all__ = ["OtelCacheInstrumentor"]

_TRUE = ("1", "true", "yes", "on")


class OtelCacheInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every otel_cache cache, warmer and (optionally) redis-py."""

    _redis_instrumented_here = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        record_hashes = kwargs.get("record_key_hashes")
        if record_hashes is None:
            record_hashes = os.environ.get("OTEL_CACHE_RECORD_KEY_HASHES", "").lower() in _TRUE
        tracer_provider = kwargs.get("tracer_provider")
        instrument_redis = kwargs.get("instrument_redis", True)
        handler = CacheTelemetry(
            tracer_provider=tracer_provider,
            meter_provider=kwargs.get("meter_provider"),
            record_key_hashes=bool(record_hashes),
            on_first_attach=(lambda: self._instrument_redis(tracer_provider)) if instrument_redis else None,
        )
        hooks.install(handler)  # attaches the caches that exist: Redis is instrumented now if any

    def _uninstrument(self, **kwargs: Any) -> None:
        handler = hooks.uninstall()
        if isinstance(handler, CacheTelemetry):
            handler.close()
        if self._redis_instrumented_here:
            from opentelemetry.instrumentation.redis import RedisInstrumentor

            RedisInstrumentor().uninstrument()
            type(self)._redis_instrumented_here = False

    def _instrument_redis(self, tracer_provider: Any) -> None:
        disabled = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
        if "redis" in (name.strip() for name in disabled.split(",")):
            return
        try:
            from opentelemetry.instrumentation.redis import RedisInstrumentor
        except ImportError:
            return
        instrumentor = RedisInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=tracer_provider)
            type(self)._redis_instrumented_here = True
