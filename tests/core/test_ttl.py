"""TTL validation and resolution shared by every level."""

from __future__ import annotations

import math

import pytest

from otel_cache.core.ttl import MAX_TTL, NO_EXPIRY, expiry_time, resolve_ttl, validate_ttl
from otel_cache.errors import CacheError, InvalidTTLError


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [(None, None), (5, 5.0), (0.25, 0.25), (1e-9, 1e-9), (MAX_TTL, MAX_TTL), (math.inf, math.inf)],
)
def test_validate_ttl_accepts_positive_numbers(ttl: object, seconds: float | None) -> None:
    result = validate_ttl(ttl)
    assert result == seconds
    if result is not None:
        assert type(result) is float


@pytest.mark.parametrize(
    "ttl",
    [0, -1, -1e-9, -math.inf, math.nan, True, False, "5", b"5", [5], 1j, MAX_TTL * 1.01, 1e308],
    ids=repr,
)
def test_validate_ttl_rejects(ttl: object) -> None:
    with pytest.raises(InvalidTTLError) as info:
        validate_ttl(ttl, name="my_ttl")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, CacheError)
    assert "my_ttl" in str(info.value)


def test_resolve_ttl() -> None:
    assert resolve_ttl(None, None) is None
    assert resolve_ttl(None, 30.0) == 30.0
    assert resolve_ttl(2, 30.0) == 2.0
    assert resolve_ttl(2, None) == 2.0
    assert resolve_ttl(NO_EXPIRY, 30.0) is None
    assert resolve_ttl(None, NO_EXPIRY) is None
    with pytest.raises(InvalidTTLError):
        resolve_ttl(-1, 30.0)


def test_expiry_time() -> None:
    assert expiry_time(None, 123.0) == 0.0
    assert expiry_time(5.0, 123.0) == 128.0
