"""Helpers shared by the test suite: a real throwaway redis-server and a manual clock."""

from tests.support.clock import ManualClock
from tests.support.redis_server import RedisServer, RedisServerError

__all__ = ["ManualClock", "RedisServer", "RedisServerError"]
