"""The bookkeeping of one refresh ahead of expiry, for both shells (the refresh itself is a flow).

A refresh leads the key's single flight, so that a cold caller arriving meanwhile waits
for it rather than loading again; if a load of the key is running already, the refresh
is skipped (that load's value is as fresh). A failure keeps the old value and is
counted and logged (:mod:`otel_cache.core.refresh`).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from otel_cache.core.refresh import RefreshSchedule
from otel_cache.multilevel.flight_table import Flight, FlightTable

__all__ = ["RefreshRun"]

log = logging.getLogger("otel_cache")


class RefreshRun:
    """``begin()`` (False: skip it), then exactly one of ``succeeded``, ``failed`` or ``gone``."""

    __slots__ = ("_flight", "_key", "_name", "_schedule", "_table")

    def __init__(self, table: FlightTable, schedule: RefreshSchedule, name: str, key: Hashable) -> None:
        self._table, self._schedule, self._name, self._key = table, schedule, name, key
        self._flight: Flight | None = None

    def begin(self) -> bool:
        flight, leader = self._table.join(self._key)
        if not leader:
            return False
        self._flight = flight
        self._schedule.started_one()
        return True

    def succeeded(self, value: Any) -> None:
        assert self._flight is not None
        self._table.finish(self._key, self._flight, value)
        self._schedule.finished(ok=True)

    def failed(self, error: Exception) -> None:
        assert self._flight is not None
        self._table.finish(self._key, self._flight, error=error)
        log.warning("refresh ahead of expiry of a key of %s failed: %r", self._name, error)
        self._schedule.finished(ok=False)  # last: a reader of the counters sees the log line too

    def gone(self) -> None:
        """Cancelled or interrupted: waiters lead instead."""
        assert self._flight is not None
        self._table.finish(self._key, self._flight)
