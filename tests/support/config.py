"""``patient_config``: a :class:`~otel_cache.CacheConfig` for tests that are not about timeouts.

The library's defaults (a 0.25 s command timeout, 0.5 s to connect) suit a service; on a
busy CI machine a first call (connect, HELLO, subscribe) or a starved event loop can pass
them, and a test about levels, tags or single flight would then see a miss it did not
cause. Tests that exercise timeouts set their own (and say so).
"""

from __future__ import annotations

from typing import Any

from otel_cache import CacheConfig

#: Seconds; long enough for a loaded 2-core machine, short enough to end a hung test.
PATIENT_TIMEOUT = 2.0


def patient_config(**fields: Any) -> CacheConfig:
    """``CacheConfig(**fields)`` with :data:`PATIENT_TIMEOUT` for the Redis command and connect
    timeouts unless ``fields`` names them."""
    fields.setdefault("redis_timeout", PATIENT_TIMEOUT)
    fields.setdefault("redis_connect_timeout", PATIENT_TIMEOUT)
    return CacheConfig(**fields)
