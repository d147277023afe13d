"""Fixtures shared by the whole suite.

Redis
-----
``redis_server``        session-wide ``RedisServer``; treat it as shared: no stop/pause.
``redis_url``           its URL, after FLUSHALL, so every test starts from an empty server.
``fresh_redis_server``  a server of the test's own, on its own port, for fault tests
                        (stop, restart, pause, kill_clients); closed after the test.

A test that uses any of them is marked ``redis`` automatically (``-m "not redis"``
deselects them). If redis-server is missing or does not start, those tests fail with
``RedisServerError``: they are never skipped.

Clocks
------
``manual_clock``        a ``ManualClock`` at 0.0, to inject instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import ManualClock, RedisServer

_REDIS_FIXTURES = frozenset({"redis_server", "redis_url", "fresh_redis_server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _REDIS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, emptied with FLUSHALL before the test."""
    # A test that broke the rule and left the shared server stopped or paused must not
    # fail every test after it.
    if redis_server.paused:
        redis_server.resume()
    redis_server.start()
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def fresh_redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own, free to stop, pause or restart."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def manual_clock() -> ManualClock:
    """A ``ManualClock`` starting at 0.0."""
    return ManualClock()
