"""The Redis Sentinel harness itself, against real servers: it settles and fails over."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from tests.support import RedisSentinelSet, RedisServer

MakeSentinel = Callable[[RedisSentinelSet], Sentinel]
MakeNodeClient = Callable[[RedisServer], redis.Redis]


@pytest.fixture
def sentinel_client() -> Iterator[MakeSentinel]:
    made: list[Sentinel] = []

    def make(sentinels: RedisSentinelSet) -> Sentinel:
        sentinel = Sentinel(
            sentinels.sentinel_addresses,
            socket_timeout=5.0,
            socket_connect_timeout=5.0,
            decode_responses=True,
        )
        made.append(sentinel)
        return sentinel

    yield make
    for sentinel in made:
        for client in sentinel.sentinels:
            client.close()


@pytest.fixture
def node_client() -> Iterator[MakeNodeClient]:
    clients: list[redis.Redis] = []

    def make(server: RedisServer) -> redis.Redis:
        client = redis.Redis(
            host=server.host,
            port=server.port,
            socket_timeout=5.0,
            socket_connect_timeout=5.0,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def write_through_sentinel(sentinel: Sentinel, key: str, value: str) -> None:
    master = sentinel.master_for("mymaster", socket_timeout=5.0, decode_responses=True)
    try:
        assert master.set(key, value)
    finally:
        master.close()


def test_sentinel_set_comes_up(
    fresh_redis_sentinel: RedisSentinelSet, node_client: MakeNodeClient, request: pytest.FixtureRequest
) -> None:
    sentinels = fresh_redis_sentinel
    primary, replica = sentinels.data_nodes
    ports = [port for _, port in sentinels.sentinel_addresses]
    assert len(ports) == 3
    assert sentinels.url == "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in ports) + "/mymaster/0"
    assert sentinels.current_primary() is primary
    assert sentinels.replicas() == [replica]
    for server in sentinels.sentinels:
        client = node_client(server)
        assert client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster") == [
            "127.0.0.1",
            str(primary.port),
        ]
        assert len(client.execute_command("SENTINEL", "SENTINELS", "mymaster")) == 2
        assert len(client.execute_command("SENTINEL", "REPLICAS", "mymaster")) == 1
    assert request.node.get_closest_marker("redis") is not None
    assert request.node.get_closest_marker("sentinel") is not None
    assert request.node.get_closest_marker("cluster") is None


def test_master_for_writes_to_the_primary(
    fresh_redis_sentinel: RedisSentinelSet, sentinel_client: MakeSentinel, node_client: MakeNodeClient
) -> None:
    sentinels = fresh_redis_sentinel
    write_through_sentinel(sentinel_client(sentinels), "k", "v")
    assert node_client(sentinels.current_primary()).get("k") == "v"

    sentinels.flushall()
    assert node_client(sentinels.current_primary()).dbsize() == 0


@pytest.mark.timeout(120)
def test_killing_the_primary_fails_over_to_the_replica(
    fresh_redis_sentinel: RedisSentinelSet, sentinel_client: MakeSentinel, node_client: MakeNodeClient
) -> None:
    sentinels = fresh_redis_sentinel
    primary, replica = sentinels.data_nodes
    sentinel = sentinel_client(sentinels)
    write_through_sentinel(sentinel, "k", "before")

    old = sentinels.kill_primary()
    assert old is primary
    assert not old.running

    new = sentinels.wait_failover(old, timeout=30.0)

    assert new is replica
    assert sentinels.current_primary() is new
    assert sentinels.role(new) == "master"
    assert sentinel.discover_master("mymaster") == ("127.0.0.1", new.port)
    write_through_sentinel(sentinel, "k", "after")
    assert node_client(new).get("k") == "after"


@pytest.mark.timeout(120)
def test_graceful_failover_swaps_roles(
    fresh_redis_sentinel: RedisSentinelSet, sentinel_client: MakeSentinel, node_client: MakeNodeClient
) -> None:
    sentinels = fresh_redis_sentinel
    primary, replica = sentinels.data_nodes

    new = sentinels.failover(timeout=60.0)

    assert new is replica
    assert sentinels.current_primary() is replica
    assert sentinels.role(replica) == "master"
    assert sentinels.role(primary) == "slave"
    assert sentinels.replicas() == [primary]
    write_through_sentinel(sentinel_client(sentinels), "k", "v")
    assert node_client(replica).get("k") == "v"
