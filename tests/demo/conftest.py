"""Fixtures of the demo tests: every test starts and ends with no managers and no cache telemetry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from otel_cache import areset_cache_managers
from otel_cache.telemetry.instrumentor import OtelCacheInstrumentor


def _uninstrument() -> None:
    instrumentor = OtelCacheInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


@pytest.fixture(autouse=True)
async def _fresh_process_state() -> AsyncIterator[None]:
    await areset_cache_managers()
    _uninstrument()
    yield
    await areset_cache_managers()
    _uninstrument()
