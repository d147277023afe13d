"""Redis URLs: one server, a Cluster, a Sentinel set; parsed, refused with a reason, redacted."""

from __future__ import annotations

import pytest

from otel_cache.config import CacheConfig
from otel_cache.core.redis_url import parse_redis_url, redact_redis_url
from otel_cache.errors import CacheConfigError


@pytest.mark.parametrize(
    ("url", "db"),
    [
        ("redis://h:6379", 0),
        ("redis://h:6379/3", 3),
        ("rediss://u:p@h/12?ssl_cert_reqs=required", 12),
        ("unix:///run/redis.sock?db=2", 2),
        ("unix:///run/redis.sock", 0),
    ],
)
def test_the_database_a_standalone_url_selects(url: str, db: int) -> None:
    parsed = parse_redis_url(url)
    assert (parsed.kind, parsed.db, parsed.nodes) == ("standalone", db, ())


def test_a_cluster_url_lists_its_seeds_with_the_default_port() -> None:
    parsed = parse_redis_url("rediss+cluster://app:s%40cret@h1:7000,h2,[::1]:7002?ssl_cert_reqs=none")
    assert parsed.kind == "cluster"
    assert parsed.tls
    assert parsed.nodes == (("h1", 7000), ("h2", 6379), ("::1", 7002))
    assert (parsed.username, parsed.password, parsed.db) == ("app", "s@cret", 0)
    assert parsed.options == (("ssl_cert_reqs", "none"),)
    # What redis-py is given for the options, user and password: the first seed's URL.
    assert parsed.standalone_url == "rediss://app:s%40cret@h1:7000/0?ssl_cert_reqs=none"


def test_a_sentinel_url_names_its_sentinels_service_and_database() -> None:
    parsed = parse_redis_url("redis+sentinel://:pw@s1,s2:26380/my%20master/4?sentinel_password=x")
    assert parsed.kind == "sentinel"
    assert not parsed.tls
    assert parsed.nodes == (("s1", 26379), ("s2", 26380))
    assert (parsed.service, parsed.db, parsed.password, parsed.username) == ("my master", 4, "pw", None)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://h:6379", "must start with one of"),
        ("redis+cluster://h1:7000/2", "database 0 only"),
        ("redis+sentinel://s1:26379", "needs the service name"),
        ("redis+sentinel://s1/mymaster/x", "must be a number"),
        ("redis+cluster://h1:notaport", "is not a port number"),
        ("redis+cluster://:pw@,h2", "a host is missing"),
    ],
)
def test_a_bad_url_is_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(CacheConfigError, match=reason) as caught:
        CacheConfig(redis_url=url)
    assert "pw" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("redis+cluster://u:secret@h1:7000,h2:7001", "redis+cluster://u:***@h1:7000,h2:7001"),
        (
            "redis+sentinel://:secret@s1,s2/mymaster/0?sentinel_password=also",
            "redis+sentinel://:***@s1,s2/mymaster/0?sentinel_password=***",
        ),
        ("rediss+cluster://h1:7000", "rediss+cluster://h1:7000"),
    ],
)
def test_passwords_are_redacted_in_every_kind_of_url(url: str, redacted: str) -> None:
    assert redact_redis_url(url) == redacted
    assert CacheConfig(redis_url=url).redacted_redis_url == redacted
    assert "secret" not in repr(CacheConfig(redis_url=url))


def test_the_environment_variable_takes_a_cluster_url() -> None:
    config = CacheConfig.from_env({"OTEL_CACHE_REDIS_URL": "redis+cluster://h1:7000"})
    assert config.redis_url == "redis+cluster://h1:7000"
    with pytest.raises(CacheConfigError, match="OTEL_CACHE_REDIS_URL"):
        CacheConfig.from_env({"OTEL_CACHE_REDIS_URL": "redis+sentinel://s1"})
