"""The pure core: validation, the key source, the tally and the schedule (no thread, no loop)."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterator

import pytest

from otel_cache.errors import CacheConfigError, InvalidTTLError
from otel_cache.warming.core import WarmerCore, WarmerStats, validate_positive_int
from tests.support import ManualClock


@pytest.mark.parametrize("interval", [0, -1, 0.0, math.nan, math.inf, True, "1", None])
def test_invalid_interval_is_a_config_error(interval: object) -> None:
    with pytest.raises(CacheConfigError, match="interval"):
        WarmerCore(["a"], interval=interval)  # type: ignore[arg-type]


def test_interval_and_ttl_are_seconds() -> None:
    core = WarmerCore(["a"], interval=2, ttl=30)
    assert (core.interval, core.ttl) == (2.0, 30.0)
    assert WarmerCore(["a"], interval=0.05).ttl is None


@pytest.mark.parametrize("ttl", [0, -5, math.nan, "10"])
def test_invalid_ttl(ttl: object) -> None:
    with pytest.raises(InvalidTTLError):
        WarmerCore(["a"], interval=1, ttl=ttl)  # type: ignore[arg-type]


@pytest.mark.parametrize("keys", ["abc", b"abc", 42, None])
def test_keys_must_be_a_collection_or_callable(keys: object) -> None:
    with pytest.raises(CacheConfigError, match="keys"):
        WarmerCore(keys, interval=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "8"])
def test_validate_positive_int(value: object) -> None:
    with pytest.raises(CacheConfigError, match="concurrency"):
        validate_positive_int(value, "concurrency")
    assert validate_positive_int(8, "concurrency") == 8


def test_static_keys_are_copied_once_so_a_generator_serves_every_run() -> None:
    core = WarmerCore((k for k in ["a", "b"]), interval=1)
    assert list(core.keys_to_warm(core.begin())) == ["a", "b"]
    assert list(core.keys_to_warm(core.begin())) == ["a", "b"]


def test_key_callable_is_asked_at_every_run() -> None:
    answers: Iterator[list[str]] = iter([["a"], ["b", "c"]])
    core = WarmerCore(lambda: next(answers), interval=1)
    assert list(core.keys_to_warm(core.begin())) == ["a"]
    assert list(core.keys_to_warm(core.begin())) == ["b", "c"]


def test_failing_key_callable_is_a_failure_of_that_run_only(caplog: pytest.LogCaptureFixture) -> None:
    def keys() -> list[str]:
        raise ConnectionError("db down")

    core = WarmerCore(keys, interval=1, name="users")
    run = core.begin()
    with caplog.at_level(logging.WARNING, logger="otel_cache.warming"):
        assert list(core.keys_to_warm(run)) == []
    stats = core.finish(run)
    assert (stats.runs, stats.failures, stats.last_error) == (1, 1, "ConnectionError")
    [record] = caplog.records
    assert "'users'" in record.getMessage()
    assert "listing the keys" in record.getMessage()
    assert record.exc_info is not None


def test_tally_is_committed_at_finish_and_accumulates() -> None:
    clock = ManualClock()
    core = WarmerCore(["a", "b", "c"], interval=10, clock=clock)
    assert core.stats() == WarmerStats()

    run = core.begin()
    core.stored(run, True)
    core.stored(run, None)  # a put that returns nothing counts as stored
    core.stored(run, False)  # the cache refused the value
    core.failed(run, "c", KeyError("c"), "load")
    assert core.stats() == WarmerStats(), "nothing is visible before the run finishes"
    clock.advance(1.5)
    first = core.finish(run)
    assert first == WarmerStats(
        runs=1, keys_warmed=2, keys_rejected=1, failures=1, last_run_duration_s=1.5, last_error="KeyError"
    )

    run = core.begin()
    core.stored(run, True)
    second = core.finish(run)
    assert second == dataclasses.replace(first, runs=2, keys_warmed=3, last_run_duration_s=0.0)
    assert second.last_error == "KeyError", "last_error is the latest failure, kept across clean runs"
    assert core.stats() is second


def test_stats_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        WarmerStats().runs = 1  # type: ignore[misc]


def test_failure_log_names_the_stage_and_key(caplog: pytest.LogCaptureFixture) -> None:
    core = WarmerCore(["k"], interval=1, name="w")
    run = core.begin()
    with caplog.at_level(logging.WARNING, logger="otel_cache.warming"):
        core.failed(run, "k1", ValueError("bad"), "load")
        core.failed(run, "k2", RuntimeError("closed"), "store")
    assert [r.getMessage() for r in caplog.records] == [
        "cache warmer 'w': load of key 'k1' failed: ValueError('bad')",
        "cache warmer 'w': store of key 'k2' failed: RuntimeError('closed')",
    ]
    assert all(r.levelno == logging.WARNING and r.exc_info for r in caplog.records)


@pytest.mark.parametrize(
    ("duration", "delay"),
    [
        (0.0, 10.0),  # an instant run (or a clock that did not move): one full interval
        (2.5, 7.5),  # runs start every interval: the run's time is taken off the wait
        (10.0, 10.0),  # exactly one interval: the next start is one interval away
        (12.5, 7.5),  # an overrun skips the missed start instead of running back to back
        (-1.0, 10.0),
    ],
)
def test_next_delay_keeps_a_fixed_cadence(duration: float, delay: float) -> None:
    assert WarmerCore(["a"], interval=10).next_delay(duration) == pytest.approx(delay)


def test_label_names_the_thread_or_task() -> None:
    assert WarmerCore(["a"], interval=1, name="users").label == "otel-cache-warmer-users"
