"""The Redis Cluster harness itself, against real servers: it forms, routes and fails over."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from tests.support import RedisClusterServers, RedisServer
from tests.support.redis_cluster import SLOTS

MakeClusterClient = Callable[[RedisClusterServers], RedisCluster]
MakeNodeClient = Callable[[RedisServer], redis.Redis]


@pytest.fixture
def cluster_client() -> Iterator[MakeClusterClient]:
    clients: list[RedisCluster] = []

    def make(cluster: RedisClusterServers) -> RedisCluster:
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in cluster.seed_nodes],
            socket_timeout=5.0,
            socket_connect_timeout=5.0,
            decode_responses=True,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def node_client() -> Iterator[MakeNodeClient]:
    """A plain client to one node: it sees only what that node holds (no redirects)."""
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


def covered_slots(cluster: RedisClusterServers) -> int:
    return sum(
        high - low + 1 for node in cluster.cluster_nodes() if node.is_master for low, high in node.slots
    )


# --- the shared session cluster -----------------------------------------------------


def test_cluster_comes_up_with_three_primaries_three_replicas_and_every_slot(
    redis_cluster: RedisClusterServers, redis_cluster_url: str
) -> None:
    primaries = redis_cluster.primaries()
    replicas = redis_cluster.replicas()
    assert len(redis_cluster.nodes) == 6
    assert len(primaries) == 3
    assert len(replicas) == 3
    assert covered_slots(redis_cluster) == SLOTS
    # Every primary has a replica of its own.
    assert {redis_cluster.replica_of(primary).port for primary in primaries} == {r.port for r in replicas}
    assert redis_cluster.seed_nodes == [("127.0.0.1", primary.port) for primary in primaries]
    assert redis_cluster_url == "redis+cluster://" + ",".join(
        f"127.0.0.1:{primary.port}" for primary in primaries
    )
    for node in redis_cluster.nodes:
        assert redis_cluster.cluster_info(node)["cluster_state"] == "ok"


def test_a_key_set_through_redis_py_is_on_primary_for_key(
    redis_cluster: RedisClusterServers,
    redis_cluster_url: str,
    cluster_client: MakeClusterClient,
    node_client: MakeNodeClient,
) -> None:
    client = cluster_client(redis_cluster)
    keys = [f"key-{i}" for i in range(20)]
    for key in keys:
        assert client.set(key, f"value-{key}")

    owners = set()
    for key in keys:
        owner = redis_cluster.primary_for_key(key)
        owners.add(owner.port)
        assert node_client(owner).get(key) == f"value-{key}"
    assert len(owners) > 1  # twenty keys do not all hash to one primary's slots


@pytest.mark.parametrize("round_", [1, 2])
def test_redis_cluster_url_starts_each_test_empty(
    redis_cluster: RedisClusterServers, redis_cluster_url: str, cluster_client: MakeClusterClient, round_: int
) -> None:
    client = cluster_client(redis_cluster)
    assert client.dbsize() == 0
    client.set("left-behind", round_)


def test_cluster_tests_are_marked_redis_and_cluster(
    redis_cluster_url: str, request: pytest.FixtureRequest
) -> None:
    assert request.node.get_closest_marker("redis") is not None
    assert request.node.get_closest_marker("cluster") is not None
    assert request.node.get_closest_marker("sentinel") is None


# --- faults on a cluster of the test's own --------------------------------------------


@pytest.mark.timeout(120)
def test_killing_a_primary_promotes_its_replica(
    redis_cluster: RedisClusterServers,
    fresh_redis_cluster: RedisClusterServers,
    cluster_client: MakeClusterClient,
    node_client: MakeNodeClient,
) -> None:
    cluster = fresh_redis_cluster
    assert {node.port for node in cluster.nodes}.isdisjoint(node.port for node in redis_cluster.nodes)
    old = cluster.primary_for_key("k")
    replica = cluster.replica_of(old)
    cluster_client(cluster).set("k", "before")
    # WAIT: the write has reached the replica before the primary dies.
    assert node_client(old).execute_command("WAIT", 1, 10_000) == 1

    cluster.kill(old)
    assert not old.running
    with pytest.raises(redis.exceptions.ConnectionError):
        node_client(old).ping()

    new = cluster.wait_promoted(old, timeout=30.0)

    assert new is replica
    assert cluster.role(new) == "master"
    assert cluster.primary_for_key("k") is new
    assert len(cluster.primaries()) == 3
    client = cluster_client(cluster)  # one seed is dead: redis-py moves on to the next
    assert client.get("k") == "before"
    assert client.set("k", "after")
    assert node_client(new).get("k") == "after"

    # The crashed node comes back on its port and rejoins as the new primary's replica.
    port = old.port
    old.start()
    assert old.port == port
    cluster.wait_healthy(timeout=30.0)
    assert cluster.role(old) == "slave"
    assert cluster.replica_of(new) is old


@pytest.mark.timeout(120)
def test_graceful_failover_swaps_roles(
    fresh_redis_cluster: RedisClusterServers, cluster_client: MakeClusterClient, node_client: MakeNodeClient
) -> None:
    cluster = fresh_redis_cluster
    old = cluster.primary_for_key("k")
    replica = cluster.replica_of(old)
    cluster_client(cluster).set("k", "v")

    cluster.failover(replica, timeout=30.0)

    assert cluster.role(replica) == "master"
    assert cluster.primary_for_key("k") is replica
    assert node_client(replica).get("k") == "v"  # a graceful failover loses nothing
    cluster.wait_healthy(timeout=30.0)
    assert cluster.role(old) == "slave"
    assert cluster.replica_of(replica) is old
    assert len(cluster.primaries()) == 3
