"""``CacheConfig``: defaults, ``OTEL_CACHE_*`` variables, validation and secrets kept out of logs."""

from __future__ import annotations

import dataclasses

import pytest

from otel_cache.config import CacheConfig
from otel_cache.errors import CacheConfigError, CacheError

_SECRET_URL = "redis://user:secret@host:6379/0"


def test_defaults() -> None:
    config = CacheConfig()
    assert config.name == "default"
    assert config.redis_url is None
    assert config.l2_enabled is False
    assert config.redacted_redis_url is None
    assert config.l1_max_entries == 10_000
    assert config.l1_max_bytes is None
    assert config.default_ttl == 300.0
    assert config.l1_ttl is None
    assert config.namespace == "otel-cache"
    assert config.serializer == "json"
    assert config.pickle_hmac_key is None
    assert config.redis_timeout == 0.25
    assert config.redis_connect_timeout == 0.5
    assert config.redis_max_connections == 64
    assert config.on_backend_error == "degrade"
    assert config.breaker_threshold == 5
    assert config.breaker_reset == 1.0
    assert config.max_key_length == 1024


def test_from_env_with_nothing_set_is_the_default() -> None:
    assert CacheConfig.from_env(environ={}) == CacheConfig()


def test_from_env_reads_every_variable() -> None:
    environ = {
        "OTEL_CACHE_NAME": "orders",
        "OTEL_CACHE_REDIS_URL": "rediss://cache.internal:6380/2?ssl_cert_reqs=required",
        "OTEL_CACHE_L1_MAX_ENTRIES": "500",
        "OTEL_CACHE_L1_MAX_BYTES": "1048576",
        "OTEL_CACHE_DEFAULT_TTL": "60",
        "OTEL_CACHE_L1_TTL": "2.5",
        "OTEL_CACHE_NAMESPACE": "orders-v2",
        "OTEL_CACHE_SERIALIZER": "pickle",
        "OTEL_CACHE_PICKLE_HMAC_KEY": "s3cr3t-key",
        "OTEL_CACHE_REDIS_TIMEOUT": "0.1",
        "OTEL_CACHE_REDIS_CONNECT_TIMEOUT": "1.5",
        "OTEL_CACHE_REDIS_MAX_CONNECTIONS": "8",
        "OTEL_CACHE_ON_BACKEND_ERROR": "raise",
        "OTEL_CACHE_BREAKER_THRESHOLD": "3",
        "OTEL_CACHE_BREAKER_RESET": "30",
        "OTEL_CACHE_MAX_KEY_LENGTH": "256",
        "UNRELATED": "ignored",
    }
    config = CacheConfig.from_env(environ=environ)
    assert config == CacheConfig(
        name="orders",
        redis_url="rediss://cache.internal:6380/2?ssl_cert_reqs=required",
        l1_max_entries=500,
        l1_max_bytes=1_048_576,
        default_ttl=60.0,
        l1_ttl=2.5,
        namespace="orders-v2",
        serializer="pickle",
        pickle_hmac_key=b"s3cr3t-key",
        redis_timeout=0.1,
        redis_connect_timeout=1.5,
        redis_max_connections=8,
        on_backend_error="raise",
        breaker_threshold=3,
        breaker_reset=30.0,
        max_key_length=256,
    )
    assert type(config.l1_max_entries) is int
    assert type(config.pickle_hmac_key) is bytes
    assert config.l2_enabled


def test_every_field_has_a_documented_variable() -> None:
    """The module docstring is the manual: it must list the variable of every field."""
    import otel_cache.config as module

    assert module.__doc__ is not None
    for f in dataclasses.fields(CacheConfig):
        assert f"``OTEL_CACHE_{f.name.upper()}``" in module.__doc__


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("OTEL_CACHE_L1_MAX_ENTRIES", "l1_max_entries"),
        ("OTEL_CACHE_L1_MAX_BYTES", "l1_max_bytes"),
        ("OTEL_CACHE_DEFAULT_TTL", "default_ttl"),
        ("OTEL_CACHE_L1_TTL", "l1_ttl"),
    ],
)
@pytest.mark.parametrize("spelling", ["none", "None", "NONE"])
def test_none_unsets_optional_numbers(variable: str, field: str, spelling: str) -> None:
    config = CacheConfig.from_env(environ={variable: spelling})
    assert getattr(config, field) is None


def test_inf_ttl_means_no_expiry() -> None:
    assert CacheConfig.from_env(environ={"OTEL_CACHE_DEFAULT_TTL": "inf"}).default_ttl is None


@pytest.mark.parametrize("blank", ["", "   "])
def test_empty_variables_keep_the_default(blank: str) -> None:
    environ = {"OTEL_CACHE_" + f.name.upper(): blank for f in dataclasses.fields(CacheConfig)}
    assert CacheConfig.from_env(environ=environ) == CacheConfig()


def test_values_are_stripped() -> None:
    config = CacheConfig.from_env(environ={"OTEL_CACHE_BREAKER_THRESHOLD": " 7\n", "OTEL_CACHE_NAME": " a "})
    assert config.breaker_threshold == 7
    assert config.name == "a"


def test_overrides_win_over_the_environment() -> None:
    environ = {"OTEL_CACHE_NAME": "from-env", "OTEL_CACHE_DEFAULT_TTL": "10", "OTEL_CACHE_NAMESPACE": "ns"}
    config = CacheConfig.from_env(environ=environ, name="override", default_ttl=None)
    assert config.name == "override"
    assert config.default_ttl is None
    assert config.namespace == "ns"


def test_overrides_also_rescue_a_setting_the_environment_lacks() -> None:
    config = CacheConfig.from_env(
        environ={"OTEL_CACHE_SERIALIZER": "pickle"}, pickle_hmac_key=b"from-a-secret-store"
    )
    assert config.serializer == "pickle"


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_CACHE_NAMESPACE", "from-process-env")
    monkeypatch.setenv("OTEL_CACHE_L1_MAX_ENTRIES", "3")
    config = CacheConfig.from_env()
    assert config.namespace == "from-process-env"
    assert config.l1_max_entries == 3


# -- invalid values ------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"OTEL_CACHE_L1_MAX_ENTRIES": "many"}, "OTEL_CACHE_L1_MAX_ENTRIES"),
        ({"OTEL_CACHE_L1_MAX_ENTRIES": "1.5"}, "OTEL_CACHE_L1_MAX_ENTRIES"),
        ({"OTEL_CACHE_REDIS_TIMEOUT": "fast"}, "OTEL_CACHE_REDIS_TIMEOUT"),
        ({"OTEL_CACHE_DEFAULT_TTL": "5m"}, "OTEL_CACHE_DEFAULT_TTL"),
        ({"OTEL_CACHE_BREAKER_RESET": "none"}, "OTEL_CACHE_BREAKER_RESET"),
        ({"OTEL_CACHE_SERIALIZER": "pickle"}, "OTEL_CACHE_PICKLE_HMAC_KEY"),
    ],
)
def test_invalid_variables_name_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(CacheConfigError) as info:
        CacheConfig.from_env(environ=environ)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, CacheError)
    assert variable in str(info.value)


_REJECTED_BY_VALIDATION = [
    ({"OTEL_CACHE_SERIALIZER": "yaml"}, "serializer"),
    ({"OTEL_CACHE_REDIS_TIMEOUT": "0"}, "redis_timeout"),
    ({"OTEL_CACHE_REDIS_TIMEOUT": "-1"}, "redis_timeout"),
    ({"OTEL_CACHE_REDIS_CONNECT_TIMEOUT": "0"}, "redis_connect_timeout"),
    ({"OTEL_CACHE_BREAKER_RESET": "nan"}, "breaker_reset"),
    ({"OTEL_CACHE_DEFAULT_TTL": "-5"}, "default_ttl"),
    ({"OTEL_CACHE_L1_MAX_ENTRIES": "0"}, "l1_max_entries"),
    ({"OTEL_CACHE_BREAKER_THRESHOLD": "0"}, "breaker_threshold"),
    ({"OTEL_CACHE_REDIS_MAX_CONNECTIONS": "none"}, "redis_max_connections"),
    ({"OTEL_CACHE_ON_BACKEND_ERROR": "ignore"}, "on_backend_error"),
    ({"OTEL_CACHE_REDIS_URL": "http://cache.internal:6379/0"}, "redis_url"),
]


@pytest.mark.parametrize(("environ", "field"), _REJECTED_BY_VALIDATION)
def test_values_rejected_by_validation_name_the_variable_and_the_field(
    environ: dict[str, str], field: str
) -> None:
    (variable,) = environ
    with pytest.raises(CacheConfigError) as info:
        CacheConfig.from_env(environ=environ)
    assert isinstance(info.value, ValueError)
    assert variable in str(info.value)
    assert field in str(info.value)


def test_an_invalid_override_is_not_blamed_on_the_environment() -> None:
    with pytest.raises(CacheConfigError) as info:
        CacheConfig.from_env(environ={"OTEL_CACHE_REDIS_TIMEOUT": "0"}, redis_timeout=-1)
    assert "OTEL_CACHE_REDIS_TIMEOUT" not in str(info.value)
    assert "redis_timeout" in str(info.value)


def test_a_valid_override_rescues_an_invalid_variable() -> None:
    config = CacheConfig.from_env(environ={"OTEL_CACHE_REDIS_TIMEOUT": "0"}, redis_timeout=1)
    assert config.redis_timeout == 1


def test_an_invalid_url_variable_does_not_leak_the_password() -> None:
    with pytest.raises(CacheConfigError, match="OTEL_CACHE_REDIS_URL") as info:
        CacheConfig.from_env(environ={"OTEL_CACHE_REDIS_URL": "http://user:secret@host/0"})
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": ""},
        {"redis_url": "http://host:6379/0"},
        {"redis_url": "host:6379"},
        {"l1_max_entries": 0},
        {"l1_max_entries": True},
        {"l1_max_bytes": -1},
        {"l1_max_bytes": 1.5},
        {"default_ttl": 0},
        {"l1_ttl": -1.0},
        {"serializer": "yaml"},
        {"serializer": "pickle"},
        {"serializer": "pickle", "pickle_hmac_key": b""},
        {"on_backend_error": "ignore"},
        {"redis_timeout": 0},
        {"redis_timeout": float("inf")},
        {"redis_connect_timeout": -0.5},
        {"breaker_reset": 0.0},
        {"redis_max_connections": 0},
        {"breaker_threshold": 0},
        {"max_key_length": 0},
        {"max_key_length": 1.0},
    ],
    ids=repr,
)
def test_invalid_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(CacheConfigError):
        CacheConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "redis://user:pw@localhost:6379/0",
        "rediss://host:6380/0?ssl_cert_reqs=required",
        "REDIS://localhost",
        "unix:///run/redis.sock",
    ],
)
def test_redis_url_schemes_accepted(url: str) -> None:
    config = CacheConfig(redis_url=url)
    assert config.l2_enabled


# -- secrets --------------------------------------------------------------------


def test_repr_hides_the_password_and_the_pickle_key() -> None:
    config = CacheConfig(redis_url=_SECRET_URL, serializer="pickle", pickle_hmac_key=b"hmac-key-material")
    for text in (repr(config), str(config), f"{config}"):
        assert "secret" not in text
        assert "hmac-key-material" not in text
        assert "CacheConfig(" in text


def test_redacted_redis_url_masks_the_password() -> None:
    config = CacheConfig(redis_url=_SECRET_URL)
    assert config.redacted_redis_url == "redis://user:***@host:6379/0"
    assert config.redis_url == _SECRET_URL  # the real URL is still there for the client


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("redis://:secret@host/0", "redis://:***@host/0"),
        (
            "rediss://user:secret@host:6380/0?ssl_cert_reqs=required",
            "rediss://user:***@host:6380/0?ssl_cert_reqs=required",
        ),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("redis://user@host:6379/0", "redis://user@host:6379/0"),
    ],
)
def test_redacted_redis_url(url: str, redacted: str) -> None:
    assert CacheConfig(redis_url=url).redacted_redis_url == redacted


@pytest.mark.parametrize(
    "url",
    [
        "redis://host:6379/0?password=secret",
        "redis://host:6379/0?db=1&password=secret",
        "rediss://user:secret@host:6380/0?password=secret&ssl_cert_reqs=required",
    ],
)
def test_redacted_redis_url_masks_a_password_in_the_query(url: str) -> None:
    from redis.connection import parse_url

    assert parse_url(url)["password"] == "secret"  # redis-py does log in with it
    redacted = CacheConfig(redis_url=url).redacted_redis_url
    assert redacted is not None
    assert "secret" not in redacted
    assert "***" in redacted


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("redis://user:secret@[::1]:6379/0", "redis://user:***@[::1]:6379/0"),
        ("redis://user:p@ss:w0rd@host/0", "redis://user:***@host/0"),
    ],
)
def test_redacted_redis_url_keeps_the_host_as_written(url: str, redacted: str) -> None:
    assert CacheConfig(redis_url=url).redacted_redis_url == redacted


@pytest.mark.parametrize(
    "url",
    [
        "unix:///run/redis.sock",
        "unix:///run/redis.sock?db=1",
        "rediss://host:6380/0?ssl_ca_certs=/etc/ca.pem",
    ],
)
def test_a_url_without_secrets_is_not_changed(url: str) -> None:
    assert CacheConfig(redis_url=url).redacted_redis_url == url


def test_invalid_url_message_does_not_leak_the_password() -> None:
    with pytest.raises(CacheConfigError) as info:
        CacheConfig(redis_url="http://user:secret@host/0")
    assert "secret" not in str(info.value)


# -- with_changes -------------------------------------------------------------


def test_with_changes_returns_a_changed_copy() -> None:
    config = CacheConfig(name="a")
    changed = config.with_changes(name="b", default_ttl=5)
    assert (changed.name, changed.default_ttl) == ("b", 5)
    assert config.name == "a"
    assert changed.namespace == config.namespace


@pytest.mark.parametrize(
    "changes",
    [{"serializer": "pickle"}, {"redis_timeout": 0}, {"redis_url": "http://host"}, {"name": ""}],
    ids=repr,
)
def test_with_changes_validates(changes: dict[str, object]) -> None:
    with pytest.raises(CacheConfigError):
        CacheConfig().with_changes(**changes)


def test_config_is_frozen() -> None:
    config = CacheConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "other"  # type: ignore[misc]


def test_from_env_defaults_sit_between_the_fields_defaults_and_the_environment() -> None:
    defaults = {"name": "app-default", "default_ttl": 60}
    assert CacheConfig.from_env(environ={}, defaults=defaults).name == "app-default"
    config = CacheConfig.from_env(environ={"OTEL_CACHE_NAME": "from-env"}, defaults=defaults)
    assert (config.name, config.default_ttl) == ("from-env", 60)
    overridden = CacheConfig.from_env(environ={"OTEL_CACHE_NAME": "from-env"}, defaults=defaults, name="x")
    assert overridden.name == "x"
    with pytest.raises(CacheConfigError, match="default_ttl"):
        CacheConfig.from_env(environ={}, defaults={"default_ttl": -1})
