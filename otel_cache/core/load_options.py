"""What a ``get_or_set`` asks of its load, validated once: one object for both APIs and ``@cached``.

``condition`` (store the value only if it holds), ``refresh_ahead``
(:mod:`otel_cache.core.refresh`), ``fail_safe`` and the load timeouts
(:mod:`otel_cache.core.fail_safe`). :data:`PLAIN` is a call that asks none of them:
the shells test for it with ``is``, so a plain ``get_or_set`` hit pays nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otel_cache.core.fail_safe import FailSafe, LoadTimeouts
from otel_cache.core.refresh import validate_refresh_ahead

__all__ = ["PLAIN", "LoadOptions"]


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """The options of a load; build with :meth:`of`, which validates them."""

    condition: Callable[[Any], bool] | None = None
    refresh_ahead: float | None = None
    fail_safe: FailSafe | None = None
    timeouts: LoadTimeouts | None = None

    @staticmethod
    def of(
        *,
        condition: Callable[[Any], bool] | None = None,
        refresh_ahead: float | None = None,
        fail_safe: FailSafe | None = None,
        soft_timeout: float | None = None,
        hard_timeout: float | None = None,
    ) -> LoadOptions:
        """The options (:data:`PLAIN` when none is given); CacheConfigError or TypeError if one is bad."""
        if (
            condition is None
            and refresh_ahead is None
            and fail_safe is None
            and soft_timeout is None
            and hard_timeout is None
        ):
            return PLAIN
        if condition is not None and not callable(condition):
            raise TypeError(f"condition must be callable, not {type(condition).__name__}")
        if fail_safe is not None and not isinstance(fail_safe, FailSafe):
            raise TypeError(f"fail_safe must be a FailSafe, not {type(fail_safe).__name__}")
        timeouts = None
        if soft_timeout is not None or hard_timeout is not None:
            timeouts = LoadTimeouts(soft=soft_timeout, hard=hard_timeout)
        return LoadOptions(condition, validate_refresh_ahead(refresh_ahead), fail_safe, timeouts)

    @property
    def hard_timeout(self) -> float | None:
        """How long a caller waits for another caller's load of the key at most."""
        return None if self.timeouts is None else self.timeouts.hard


PLAIN = LoadOptions()
