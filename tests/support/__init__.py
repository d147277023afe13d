"""Helpers shared by the test suite: real throwaway redis-servers (one, a Cluster, a Sentinel
set) and a manual clock."""

from tests.support.clock import ManualClock
from tests.support.redis_cluster import RedisClusterError, RedisClusterServers
from tests.support.redis_sentinel import RedisSentinelError, RedisSentinelSet
from tests.support.redis_server import RedisServer, RedisServerError

__all__ = [
    "ManualClock",
    "RedisClusterError",
    "RedisClusterServers",
    "RedisSentinelError",
    "RedisSentinelSet",
    "RedisServer",
    "RedisServerError",
]
