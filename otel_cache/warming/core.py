"""The warmer's pure core: what to warm, when, and the tally of what happened.

Both shells (:mod:`otel_cache.warming.thread`, :mod:`otel_cache.warming.tasks`) drive
one :class:`WarmerCore` the same way and add only the waiting and the I/O::

    run = core.begin()                   # start the run's timer
    for key in core.keys_to_warm(run):   # static keys, or the key callable's answer
        value = loader(key)              #   shell I/O; an exception -> core.failed(run, key, exc, "load")
        ok = cache.put(key, value, ttl)  #   shell I/O; an exception -> core.failed(run, key, exc, "store")
        core.stored(run, ok)
    stats = core.finish(run)             # commit the run's tally in one step
    wait(core.next_delay(stats.last_run_duration_s))

Failures are decided, counted and logged here, once, on the ``otel_cache.warming``
logger: a failing key never ends a run and a failing run never ends the warmer.

No locks and no awaits: a run's tally lives in its own :class:`WarmRun` until
:meth:`WarmerCore.finish` replaces the frozen :class:`WarmerStats` snapshot with one
reference assignment, so a reader in another thread sees the old or the new snapshot,
never a torn one. Two runs must not finish at once (the shells serialise runs).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, Literal, Protocol, TypeAlias, TypeVar

from otel_cache.core.lru import Clock
from otel_cache.core.ttl import validate_ttl
from otel_cache.errors import CacheConfigError
from otel_cache.telemetry import hooks
from otel_cache.warming.lease import LeaseCore, LeaseStats

__all__ = [
    "AsyncPutCache",
    "DualPutCache",
    "KeySource",
    "PutCache",
    "WarmRun",
    "WarmerCore",
    "WarmerStats",
    "logger",
    "validate_interval",
    "validate_loader",
    "validate_positive_int",
]

K = TypeVar("K")
K_contra = TypeVar("K_contra", contravariant=True)
V_contra = TypeVar("V_contra", contravariant=True)

logger = logging.getLogger("otel_cache.warming")

KeySource: TypeAlias = Iterable[K] | Callable[[], Iterable[K]]
"""The keys to warm: a fixed collection, or a callable asked for them at every run."""

Stage = Literal["keys", "load", "store"]
_NO_LEASE = LeaseStats()


class PutCache(Protocol[K_contra, V_contra]):
    """What :class:`~otel_cache.warming.ThreadWarmer` needs of a cache (``AsyncLRUCache`` has it)."""

    def put(self, key: K_contra, value: V_contra, ttl: float | None, /) -> object: ...


class AsyncPutCache(Protocol[K_contra, V_contra]):
    """What :class:`~otel_cache.warming.AsyncWarmer` needs of a cache (``AsyncLRUCache`` has it)."""

    async def aput(self, key: K_contra, value: V_contra, ttl: float | None, /) -> object: ...


class DualPutCache(PutCache[K_contra, V_contra], AsyncPutCache[K_contra, V_contra], Protocol):
    """A cache either warmer can fill, for ``CacheWarmer(async_mode=<a bool known at run time>)``."""


@dataclass(frozen=True, slots=True)
class WarmerStats:
    """Counters of one warmer since it was created.

    ``failures`` counts keys whose load or store raised, plus runs whose key callable
    raised; ``keys_rejected`` counts puts the cache refused without raising (a value
    larger than its byte bound). ``last_error`` is the type name of the latest failure.

    ``leader`` says whether this process warms on schedule now: with a lease (leader
    election), while it holds the lease; without, while the warmer is started.
    ``lease_acquired`` counts the terms this process won, ``lease_lost`` the terms that
    ended other than by stopping (a failed renewal, another holder), ``lease_errors`` the
    lease commands that Redis failed; all stay 0 without a lease.
    """

    runs: int = 0
    keys_warmed: int = 0
    keys_rejected: int = 0
    failures: int = 0
    last_run_duration_s: float = 0.0
    last_error: str | None = None
    leader: bool = False
    lease_acquired: int = 0
    lease_lost: int = 0
    lease_errors: int = 0


class WarmRun:
    """The tally of one run in progress; only the shell performing the run touches it."""

    __slots__ = ("error", "failures", "rejected", "started", "token", "warmed")

    def __init__(self, started: float, token: object = None) -> None:
        self.started = started
        self.token = token  # the telemetry handler's, for the run's span
        self.warmed = 0
        self.rejected = 0
        self.failures = 0
        self.error: str | None = None


class WarmerCore(Generic[K]):
    """The plan (keys, interval, TTL) and the counters of one warmer.

    Args:
        keys: the keys to warm, or a callable returning them (called once per run).
        interval: seconds from the start of one run to the start of the next.
        ttl: TTL of the warmed entries (``None``: the cache's default).
        name: the warmer's name, in thread/task names and log lines.
        clock: seconds, for run durations and the schedule.
        lease: the leadership lease of this warmer, or ``None`` to warm in every process.

    Raises:
        CacheConfigError: ``interval`` is not a positive finite number, ``keys`` is a
            string, or not an iterable or callable.
        InvalidTTLError: ``ttl`` is not ``None`` or a positive number.
    """

    __slots__ = (
        "__weakref__",
        "_clock",
        "_key_source",
        "_keys",
        "_stats",
        "interval",
        "lease",
        "mode",
        "name",
        "scheduled",
        "ttl",
    )

    def __init__(
        self,
        keys: KeySource[K],
        *,
        interval: float,
        ttl: float | None = None,
        name: str = "warmer",
        clock: Clock = time.perf_counter,
        mode: str = "sync",
        lease: LeaseCore | None = None,
    ) -> None:
        self.interval = validate_interval(interval)
        self.mode = mode
        self.lease = lease
        self.scheduled = False  # set by the shell while its scheduler runs
        self.ttl = validate_ttl(ttl)
        self.name = name
        self._clock = clock
        self._stats = WarmerStats()
        self._keys: tuple[K, ...] = ()
        self._key_source: Callable[[], Iterable[K]] | None = None
        if isinstance(keys, str | bytes):
            # A string is an iterable of characters: warming "abc" as "a", "b", "c" is a bug.
            raise CacheConfigError(f"keys must be a collection of keys or a callable, not {keys!r}")
        if callable(keys):
            self._key_source = keys
        elif isinstance(keys, Iterable):
            # Copied once, so a generator is not used up by the first run.
            self._keys = tuple(keys)
        else:
            raise CacheConfigError(f"keys must be an iterable or a callable, not {type(keys).__name__}")
        hooks.register(self)

    @property
    def interval_s(self) -> float:
        return self.interval

    @property
    def label(self) -> str:
        """The name of the warmer's thread or scheduler task."""
        return f"otel-cache-warmer-{self.name}"

    def stats(self) -> WarmerStats:
        """The counters as of the last finished run, and the lease's as of now."""
        stats, lease = self._stats, self.lease
        if lease is None:
            leader, counters = self.scheduled, _NO_LEASE
        else:
            leader, counters = lease.leading, lease.stats()
        lease_fields = (leader, counters.acquired, counters.lost, counters.errors)
        if lease_fields == (stats.leader, stats.lease_acquired, stats.lease_lost, stats.lease_errors):
            return stats  # unchanged: the snapshot itself
        return replace(
            stats,
            leader=leader,
            lease_acquired=counters.acquired,
            lease_lost=counters.lost,
            lease_errors=counters.errors,
        )

    def may_warm(self) -> bool:
        """Whether a scheduled run may go on to its next key: no lease, or this process leads."""
        lease = self.lease
        return lease is None or lease.leading

    def begin(self) -> WarmRun:
        """Start a run's timer and tally."""
        handler = hooks.current()
        return WarmRun(self._clock(), handler.warmer_run_started(self) if handler is not None else None)

    def keys_to_warm(self, run: WarmRun) -> Sequence[K]:
        """The keys of this run; a key callable that raises counts as a failure and warms nothing."""
        source = self._key_source
        if source is None:
            return self._keys
        try:
            return list(source())
        except Exception as exc:
            self.failed(run, None, exc, "keys")
            return []

    def stored(self, run: WarmRun, accepted: object) -> None:
        """A put finished; ``accepted is False`` means the cache refused the value."""
        if accepted is False:
            run.rejected += 1
        else:
            run.warmed += 1

    def failed(self, run: WarmRun, key: object, exc: BaseException, stage: Stage) -> None:
        """Count and log a failure; the run goes on with the next key."""
        run.failures += 1
        run.error = type(exc).__name__
        if stage == "keys":
            logger.warning("cache warmer %r: listing the keys failed: %r", self.name, exc, exc_info=exc)
        else:
            logger.warning(
                "cache warmer %r: %s of key %r failed: %r", self.name, stage, key, exc, exc_info=exc
            )

    def finish(self, run: WarmRun) -> WarmerStats:
        """Add the run's tally to the counters and return the new snapshot."""
        duration = max(0.0, self._clock() - run.started)
        handler = hooks.current()
        if handler is not None:
            handler.warmer_run_finished(self, run.token, duration, run.failures)
        old = self._stats
        self._stats = stats = replace(
            old,
            runs=old.runs + 1,
            keys_warmed=old.keys_warmed + run.warmed,
            keys_rejected=old.keys_rejected + run.rejected,
            failures=old.failures + run.failures,
            last_run_duration_s=duration,
            last_error=run.error or old.last_error,
        )
        logger.debug(
            "cache warmer %r: run %d warmed %d keys in %.3f s (%d rejected, %d failed)",
            self.name,
            stats.runs,
            run.warmed,
            duration,
            run.rejected,
            run.failures,
        )
        return self.stats()

    def next_delay(self, duration: float) -> float:
        """Seconds to wait after a run that took ``duration`` seconds.

        Runs start every ``interval`` seconds; a run that overran skips the starts it
        missed rather than starting the next run at once, so a slow loader is not
        called back to back.
        """
        if duration <= 0:
            return self.interval
        return self.interval - math.fmod(duration, self.interval)


def validate_interval(interval: object) -> float:
    """``interval`` as seconds, or :class:`CacheConfigError` if not a positive finite number."""
    if isinstance(interval, bool) or not isinstance(interval, int | float):
        raise CacheConfigError(f"interval must be a number of seconds, not {type(interval).__name__}")
    seconds = float(interval)
    if not math.isfinite(seconds) or seconds <= 0:
        raise CacheConfigError(f"interval must be a positive finite number of seconds, got {interval!r}")
    return seconds


def validate_loader(loader: object) -> None:
    """:class:`CacheConfigError` unless ``loader`` is callable."""
    if not callable(loader):
        raise CacheConfigError(f"loader must be callable, not {type(loader).__name__}")


def validate_positive_int(value: object, name: str) -> int:
    """``value`` if it is an ``int`` >= 1, else :class:`CacheConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CacheConfigError(f"{name} must be a positive integer, got {value!r}")
    return value
