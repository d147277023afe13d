"""Fixtures shared by the whole suite.

Redis
-----
``redis_server``        session-wide ``RedisServer``; treat it as shared: no stop/pause.
``redis_url``           its URL, after FLUSHALL, so every test starts from an empty server.
``fresh_redis_server``  a server of the test's own, on its own port, for fault tests
                        (stop, restart, pause, kill_clients); closed after the test.
``redis_cluster``       session-wide ``RedisClusterServers`` (3 primaries, 3 replicas);
                        shared: never kill, stop or pause its nodes.
``redis_cluster_url``   its ``redis+cluster://`` URL, after FLUSHALL on every primary.
``fresh_redis_cluster`` a cluster of the test's own, free to kill nodes and fail over;
                        closed after the test.
``fresh_redis_sentinel``
                        a ``RedisSentinelSet`` of the test's own (a primary, a replica,
                        three sentinels, service ``mymaster``); free to kill and fail over.

A test that uses any of them is marked ``redis`` automatically (``-m "not redis"``
deselects them); the cluster fixtures add ``cluster``, the Sentinel one ``sentinel``.
If redis-server is missing or does not start, those tests fail with
``RedisServerError`` (the cluster and Sentinel errors are subclasses): they are never
skipped.

Clocks
------
``manual_clock``        a ``ManualClock`` at 0.0, to inject instead of sleeping.

Managers
--------
``fresh_managers``      no cache managers, no configured config and no ``OTEL_CACHE_*``
                        variables before and after the test.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from otel_cache import areset_cache_managers
from tests.support import ManualClock, RedisClusterServers, RedisSentinelSet, RedisServer

_CLUSTER_FIXTURES = frozenset({"redis_cluster", "redis_cluster_url", "fresh_redis_cluster"})
_SENTINEL_FIXTURES = frozenset({"fresh_redis_sentinel"})
_REDIS_FIXTURES = frozenset(
    {"redis_server", "redis_url", "fresh_redis_server", *_CLUSTER_FIXTURES, *_SENTINEL_FIXTURES}
)


_SLOW_TIERS = ("e2e", "demo", "deploy", "benchmarks")  # folders of tests/: minutes, not seconds
_ROOT = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = item.path.resolve().relative_to(_ROOT).parts[0] if item.path.is_relative_to(_ROOT) else ""
        if tier in _SLOW_TIERS:
            item.add_marker(pytest.mark.slow)
        fixtures = set(getattr(item, "fixturenames", ()))
        if _REDIS_FIXTURES & fixtures:
            item.add_marker(pytest.mark.redis)
        if _CLUSTER_FIXTURES & fixtures:
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.slow)
        if _SENTINEL_FIXTURES & fixtures:
            item.add_marker(pytest.mark.sentinel)
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """One Redis Cluster for the whole session."""
    cluster = RedisClusterServers()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def redis_cluster_url(redis_cluster: RedisClusterServers) -> str:
    """The session cluster's URL, emptied with FLUSHALL on every primary before the test."""
    # As for redis_url: a test that stopped or paused a shared node must not fail every
    # test after it.
    for node in redis_cluster.nodes:
        if node.paused:
            node.resume()
        node.start()
    redis_cluster.wait_healthy()
    redis_cluster.flushall()
    return redis_cluster.url


@pytest.fixture
def fresh_redis_cluster() -> Iterator[RedisClusterServers]:
    """A Redis Cluster of the test's own, free to kill nodes or fail over."""
    cluster = RedisClusterServers()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def fresh_redis_sentinel() -> Iterator[RedisSentinelSet]:
    """A Sentinel set of the test's own, free to kill its primary or fail over."""
    sentinels = RedisSentinelSet()
    try:
        sentinels.start()
        yield sentinels
    finally:
        sentinels.close()


@pytest.fixture
def manual_clock() -> ManualClock:
    """A ``ManualClock`` starting at 0.0."""
    return ManualClock()


@pytest.fixture
async def fresh_managers(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """No managers and no configured config before and after the test; no OTEL_CACHE_* variables."""
    for name in list(os.environ):
        if name.startswith("OTEL_CACHE_"):
            monkeypatch.delenv(name)
    await areset_cache_managers()
    yield
    await areset_cache_managers()
