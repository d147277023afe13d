"""The pure HTTP caching decisions behind ``@cached`` (``otel_cache.integrations.fastapi.policy``)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

import otel_cache.integrations.fastapi as integration
from otel_cache.integrations.fastapi import policy
from otel_cache.integrations.fastapi.policy import Action, CachedResponse, Directives


@pytest.mark.parametrize(
    ("cache_control", "pragma", "expected"),
    [
        (None, None, Directives()),
        ("no-store", None, Directives(no_store=True)),
        ("No-Cache, max-age=10", None, Directives(no_cache=True, max_age=10)),
        ('max-age="7"', None, Directives(max_age=7)),
        ("max-age=soon", None, Directives()),  # malformed: ignored
        ("max-age=-1", None, Directives()),
        ("private, community=UCI", None, Directives()),
        (None, "no-cache", Directives(no_cache=True)),
        ("max-age=5", "no-cache", Directives(max_age=5)),  # Pragma only counts without Cache-Control
    ],
)
def test_request_directives(cache_control: str | None, pragma: str | None, expected: Directives) -> None:
    assert policy.request_directives(cache_control, pragma) == expected


@pytest.mark.parametrize(
    ("method", "directives", "action"),
    [
        ("GET", Directives(), Action.LOOKUP),
        ("head", Directives(), Action.LOOKUP),
        ("GET", Directives(max_age=3), Action.LOOKUP),
        ("GET", Directives(no_cache=True), Action.REFRESH),
        ("GET", Directives(max_age=0), Action.REFRESH),
        ("GET", Directives(no_store=True, no_cache=True), Action.BYPASS),
        ("POST", Directives(), Action.BYPASS),
        ("DELETE", Directives(), Action.BYPASS),
    ],
)
def test_choose_action(method: str, directives: Directives, action: Action) -> None:
    assert policy.choose_action(method, directives) is action


def _key(**changes: object) -> str:
    args: dict[str, object] = {
        "namespace": "http",
        "endpoint": "app.items",
        "method": "GET",
        "path": "/items/1",
        "query": [("b", "2"), ("a", "1")],
        "headers": {"accept-language": ["en"]},
    }
    args.update(changes)
    return policy.request_key(**args)  # type: ignore[arg-type]


def test_request_key_is_stable_and_sensitive() -> None:
    key = _key()
    assert key.startswith("http:RequestKey:")
    assert _key(query=[("a", "1"), ("b", "2")]) == key
    assert _key(method="HEAD") == key
    assert _key(method="get") == key
    for change in (
        {"namespace": "other"},
        {"endpoint": "app.other"},
        {"method": "POST"},
        {"path": "/items/2"},
        {"query": [("a", "1")]},
        {"headers": {"accept-language": ["fr"]}},
        {"headers": {"accept-language": []}},
        {"headers": {"accept-language": [""]}},
    ):
        assert _key(**change) != key, change
    assert _key(headers={"accept-language": []}) != _key(headers={"accept-language": [""]})
    # Repeated parameters keep their order: ?t=1&t=2 is another list than ?t=2&t=1.
    assert _key(query=[("t", "1"), ("t", "2")]) != _key(query=[("t", "2"), ("t", "1")])


def test_normalise_vary() -> None:
    assert policy.normalise_vary(["Accept-Language", "accept-language", " X-Tenant "]) == (
        "accept-language",
        "x-tenant",
    )
    with pytest.raises(ValueError, match="vary_headers"):
        policy.normalise_vary([" "])


def test_entries_round_trip_and_garbage_is_refused() -> None:
    entry = CachedResponse.create({"b": [1, 2], "a": None}, ttl=60, now=1000.0)
    assert policy.parse_entry(entry.to_data()) == entry
    assert entry.remaining(1030.0) == 30.0
    assert entry.remaining(2000.0) == 0.0
    assert entry.age(1012.5) == 12.5
    forever = CachedResponse.create("x", ttl=math.inf, now=0.0)
    assert forever.expires_at is None
    assert policy.parse_entry(forever.to_data()) == forever
    for garbage in (
        None,
        "text",
        {"v": 99},
        {**entry.to_data(), "etag": 1},
        {**entry.to_data(), "stored_at": True},
    ):
        assert policy.parse_entry(garbage) is None


def test_etag_ignores_key_order_but_not_values() -> None:
    assert policy.etag_for({"a": 1, "b": 2}) == policy.etag_for({"b": 2, "a": 1})
    assert policy.etag_for({"a": 1}) != policy.etag_for({"a": 2})
    assert policy.etag_for([1, 2]) != policy.etag_for([2, 1])


@pytest.mark.parametrize(
    ("header", "method", "matches"),
    [
        (None, "GET", False),
        ('W/"abc"', "GET", True),
        ('"abc"', "GET", True),  # If-None-Match uses the weak comparison
        ('"x", W/"abc"', "HEAD", True),
        ("*", "GET", True),
        ('W/"abd"', "GET", False),
        ('W/"abc"', "POST", False),
    ],
)
def test_not_modified(header: str | None, method: str, matches: bool) -> None:
    assert policy.not_modified(header, 'W/"abc"', method) is matches


def test_max_age() -> None:
    assert policy.max_age(59.99) == 59  # never longer than we keep it
    assert policy.max_age(0.0) == 0
    assert policy.max_age(None) == policy.max_age(1e12) == 365 * 24 * 3600


def test_response_headers() -> None:
    entry = CachedResponse.create({"a": 1}, ttl=60, now=0.0)
    assert policy.response_headers(entry, now=10.0, hit=True, vary=("accept-language", "x-tenant")) == {
        "cache-control": "max-age=50",
        "etag": entry.etag,
        "x-cache": "HIT",
        "vary": "accept-language, x-tenant",
    }
    assert "vary" not in policy.response_headers(entry, now=0.0, hit=False)


def test_public_api() -> None:
    assert set(integration.__all__) == {
        "AsyncCacheManagerDep",
        "AsyncService",
        "CacheManagerDep",
        "SyncService",
        "WarmerSpec",
        "ainvalidate_cached",
        "async_cache_manager",
        "cache_manager",
        "cached",
        "cached_key",
        "instrument_app",
        "invalidate_cached",
        "otel_cache_lifespan",
        "uninstrument_app",
    }
    for name in integration.__all__:
        assert hasattr(integration, name)


def test_the_package_does_not_need_fastapi() -> None:
    code = "import sys, otel_cache, otel_cache.integrations; assert 'fastapi' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
