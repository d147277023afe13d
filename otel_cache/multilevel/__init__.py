"""The multi-level cache: L1 in front of Redis, one set of flows, a sync and an async driver."""

from otel_cache.multilevel.cache import MultiLevelCache
from otel_cache.multilevel.shared import FlightStats, MultiLevelStats

__all__ = ["FlightStats", "MultiLevelCache", "MultiLevelStats"]
