"""The error hierarchy: one ``CacheError`` root, builtin bases where they name the mistake."""

from __future__ import annotations

import pytest

from otel_cache.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    CacheClosedError,
    CacheConfigError,
    CacheError,
    CacheKeyError,
    CircuitOpenError,
    InvalidTTLError,
    SerializationError,
)


def test_cache_error_is_an_exception() -> None:
    assert issubclass(CacheError, Exception)
    assert not issubclass(CacheError, (ValueError, TypeError, RuntimeError))


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (CacheKeyError, TypeError),
        (InvalidTTLError, ValueError),
        (CacheConfigError, ValueError),
        (SerializationError, ValueError),
        (CacheClosedError, RuntimeError),
    ],
)
def test_builtin_bases_keep_existing_except_clauses_working(error: type[CacheError], builtin: type) -> None:
    assert issubclass(error, CacheError)
    assert issubclass(error, builtin)
    with pytest.raises(builtin):
        raise error("boom")


def test_backend_errors() -> None:
    assert issubclass(BackendUnavailableError, BackendError)
    assert issubclass(BackendTimeoutError, BackendError)
    assert issubclass(CircuitOpenError, BackendUnavailableError)
    # A timeout is not mistaken for an unavailable backend, and neither for a builtin OSError.
    assert not issubclass(BackendTimeoutError, BackendUnavailableError)
    for error in (BackendError, BackendUnavailableError, BackendTimeoutError, CircuitOpenError):
        assert not issubclass(error, (OSError, TimeoutError, ConnectionError))


def test_cause_is_kept() -> None:
    cause = OSError("connection reset")
    with pytest.raises(CacheError, match="redis went away") as info:
        raise BackendUnavailableError("redis went away") from cause
    assert info.value.__cause__ is cause
