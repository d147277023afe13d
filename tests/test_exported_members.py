"""The public API is what we mean to export (after httpx's ``tests/test_exported_members.py``)."""

from __future__ import annotations

import builtins
import importlib

import pytest

import otel_cache
import otel_cache.errors
from otel_cache.errors import CacheError

EXPECTED = {
    "NO_EXPIRY",
    "AsyncCacheManager",
    "AsyncCachedFunction",
    "AsyncLRUCache",
    "BackendBusyError",
    "BackendDataError",
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "BackendWriteRefusedError",
    "CacheClosedError",
    "CacheConfig",
    "CacheConfigError",
    "CacheError",
    "CacheKeyError",
    "CacheManager",
    "CacheStats",
    "CachedFunction",
    "CircuitOpenError",
    "EvictionReason",
    "FailSafe",
    "FlightStats",
    "InvalidTTLError",
    "L2Stats",
    "LoadTimeoutError",
    "LoadTimeouts",
    "LockWaitStats",
    "MultiLevelCache",
    "MultiLevelStats",
    "PartialBackendError",
    "SerializationError",
    "__version__",
    "areset_cache_managers",
    "cached",
    "configure_cache_managers",
    "get_async_cache_manager",
    "get_cache_manager",
    "reset_cache_managers",
}


def test_all_is_exactly_the_intended_set() -> None:
    assert set(otel_cache.__all__) == EXPECTED
    assert len(otel_cache.__all__) == len(EXPECTED), "a name is listed twice"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_name_is_importable(name: str) -> None:
    module = importlib.import_module("otel_cache")
    assert hasattr(module, name)


def test_public_objects_say_where_they_live() -> None:
    for name in EXPECTED - {"__version__", "NO_EXPIRY"}:
        assert getattr(otel_cache, name).__module__.startswith("otel_cache."), name


def test_version() -> None:
    assert isinstance(otel_cache.__version__, str)
    assert otel_cache.__version__.count(".") == 2


def test_every_error_is_exported_at_the_top() -> None:
    assert set(otel_cache.errors.__all__) <= set(otel_cache.__all__)


@pytest.mark.parametrize("name", otel_cache.errors.__all__)
def test_errors_derive_from_cache_error(name: str) -> None:
    error = getattr(otel_cache.errors, name)
    assert isinstance(error, type)
    assert issubclass(error, CacheError)
    assert name.endswith("Error")


@pytest.mark.parametrize("name", otel_cache.errors.__all__)
def test_errors_do_not_shadow_builtins(name: str) -> None:
    assert not hasattr(builtins, name)
