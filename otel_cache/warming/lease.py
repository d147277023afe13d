"""The warmer's leadership lease: which process of a deployment warms, decided without I/O.

Every process on one Redis and namespace may run a warmer of the same name; only the
one holding the lease warms. The lease is one Redis key (one key, so it works on a
cluster too), holding the holder's token and expiring after ``lease_ttl`` seconds::

    {namespace}:\x1f#lease:warmer:{warmer name} = "{host}:{pid}:{8 hex}"   PX lease_ttl

(no cache key renders to a name starting ``\x1f#``, so no entry can overwrite it;
``clear()`` removes it with the rest of the namespace, and the leader puts it back at
its next renewal).

Every ``lease_ttl / 3`` seconds each process sends one command::

    FOLLOWER --SET key token NX PX ttl: set------------------------> LEADER
    FOLLOWER --SET NX: refused (another holder) or a Redis error---> FOLLOWER
    LEADER   --renew script: our token (PEXPIRE), or none (SET)----> LEADER
    LEADER   --renew script: someone else's token-----------------> FOLLOWER   (lost)
    LEADER   --a Redis error, or no renewal for lease_ttl---------> RECLAIM    (lost)
    RECLAIM  --renew script: still ours, or free--------------------> LEADER
    RECLAIM  --renew script: another's / a Redis error-------------> FOLLOWER / RECLAIM
    LEADER, RECLAIM --release (the warmer stops): delete if ours---> FOLLOWER

A leader stops warming the moment a renewal fails, and at the latest ``lease_ttl``
after the last renewal it *sent*: Redis started the key's TTL after receiving that
command, so the key outlives this deadline and no other process can take the lease
while this one still counts as leader. RECLAIM exists because a Redis blip leaves the
key ours: ``SET NX`` would then be refused until it expired, the renew script takes
it back at once. The renew script also takes a key that is gone (Redis restarted
empty, a ``clear()``): nobody holds it, so nobody else can be leading.

Hand-over: a stopping leader deletes the key, and a follower takes it at its next
attempt (within ``lease_ttl / 3``); a dead leader's key expires, so a follower leads
within ``lease_ttl + lease_ttl / 3`` of the last renewal. Redis errors never end
the warmer: they are counted (``lease_errors``) and the attempt is repeated at the
next tick; while Redis is unreachable no process warms.

No locks and no I/O: one lease thread or task calls :meth:`LeaseCore.attempt` and
:meth:`LeaseCore.answered` / :meth:`LeaseCore.failed`; readers in other threads see
:attr:`LeaseCore.leading` (one float compared with the clock) and
:meth:`LeaseCore.stats` (a frozen snapshot, replaced in one assignment).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, Protocol, runtime_checkable

from otel_cache.config import CacheConfig
from otel_cache.errors import CacheConfigError

__all__ = [
    "DEFAULT_LEASE_TTL",
    "RELEASE_SCRIPT",
    "RENEW_SCRIPT",
    "ConfiguredCache",
    "LeaseAttempt",
    "LeaseCore",
    "LeaseStats",
    "lease_for",
    "lease_key",
    "new_token",
    "validate_lease_ttl",
]

logger = logging.getLogger("otel_cache.warming")

DEFAULT_LEASE_TTL = 10.0
"""Seconds a lease lives without renewal; renewed every third of it."""

# KEYS[1] the lease key, ARGV[1] our token, ARGV[2] the TTL in ms.
# 1: renewed, or taken because nobody held it; 0: another process holds it.
RENEW_SCRIPT = """\
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
if not holder then
    redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""

# KEYS[1] the lease key, ARGV[1] our token. 1: deleted; 0: not ours (left alone).
RELEASE_SCRIPT = """\
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

State = Literal["follower", "leader", "reclaim"]
Command = Literal["acquire", "renew"]


@runtime_checkable
class ConfiguredCache(Protocol):
    """A cache that says how it reaches Redis (``MultiLevelCache`` has it); the lease uses the same."""

    @property
    def config(self) -> CacheConfig: ...

    @property
    def redis(self) -> object | None:
        """How the cache reaches Redis (a ``RedisConnector``); None without Redis."""


@dataclass(frozen=True, slots=True)
class LeaseStats:
    """Counters of one warmer's lease: terms won, terms lost (not by releasing), Redis errors."""

    acquired: int = 0
    lost: int = 0
    errors: int = 0


@dataclass(frozen=True, slots=True)
class LeaseAttempt:
    """One command to send: ``SET NX`` (``acquire``) or the renew script, and when it was sent."""

    command: Command
    sent_at: float


class LeaseCore:
    """The state, the timing and the counters of one warmer's lease.

    Args:
        config: the cache's settings: the Redis URL and timeouts, and the namespace.
        name: the warmer's name (part of the key).
        ttl: seconds the lease lives without renewal; renewed every ``ttl / 3``.
        token: what this process stores in the key; unique per process and warmer.
        clock: monotonic seconds, for the local deadline of a term.
    """

    __slots__ = (
        "_clock",
        "_errors_in_a_row",
        "_state",
        "_stats",
        "_valid_until",
        "config",
        "key",
        "name",
        "renew_interval",
        "token",
        "ttl",
        "ttl_ms",
    )

    def __init__(
        self,
        config: CacheConfig,
        name: str,
        *,
        ttl: float = DEFAULT_LEASE_TTL,
        token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.name = name
        self.ttl = validate_lease_ttl(ttl)
        self.ttl_ms = max(1, round(self.ttl * 1000))
        self.renew_interval = self.ttl / 3
        self.key = lease_key(config.namespace, name)
        self.token = token if token is not None else new_token()
        self._clock = clock
        self._state: State = "follower"
        self._valid_until = -math.inf  # leading while the clock is below this
        self._stats = LeaseStats()
        self._errors_in_a_row = 0

    @property
    def leading(self) -> bool:
        """Whether this process may warm now: it holds the lease and its term has not run out."""
        return self._clock() < self._valid_until

    @property
    def state(self) -> State:
        return self._state

    def stats(self) -> LeaseStats:
        return self._stats

    def attempt(self) -> LeaseAttempt:
        """The command to send now: acquire as a follower, renew as a leader or to reclaim."""
        now = self._clock()
        if self._state == "leader" and now >= self._valid_until:
            # The lease thread or task was held up past the term (a blocked loop, a long
            # pause): another process may lead already, so this term is over.
            self._lose("reclaim", "not renewed in time")
        return LeaseAttempt("acquire" if self._state == "follower" else "renew", now)

    def answered(self, attempt: LeaseAttempt, ok: bool) -> None:
        """Redis answered ``attempt``: ``ok`` if the key is ours now (set, or renewed)."""
        if self._errors_in_a_row:
            logger.info("cache warmer %r: Redis answers the lease again", self.name)
            self._errors_in_a_row = 0
        if ok:
            if self._state != "leader":
                self._stats = replace(self._stats, acquired=self._stats.acquired + 1)
                logger.info("cache warmer %r: leads (lease %s, token %s)", self.name, self.key, self.token)
            self._state = "leader"
            self._valid_until = attempt.sent_at + self.ttl
        elif self._state == "leader":
            self._lose("follower", "another process holds the lease")
        else:
            self._state = "follower"  # a reclaim that found the key taken

    def failed(self, attempt: LeaseAttempt | None, exc: BaseException) -> None:
        """``attempt`` (``None``: the release) raised a ``BackendError``; counted, never raised."""
        self._stats = replace(self._stats, errors=self._stats.errors + 1)
        self._errors_in_a_row += 1
        if self._errors_in_a_row == 1:
            logger.warning("cache warmer %r: lease command failed: %r", self.name, exc)
        else:  # one warning an outage, not one a tick
            logger.debug("cache warmer %r: lease command failed again: %r", self.name, exc)
        if attempt is not None and self._state == "leader":
            # Whether the renewal reached Redis is unknown: stop warming, take it back if still ours.
            self._lose("reclaim", f"renewal failed ({type(exc).__name__})")

    def release(self) -> bool:
        """The warmer stops: stop leading; True if the key may still be ours (delete it then)."""
        holds = self._state != "follower"
        if self._state == "leader":
            logger.info("cache warmer %r: releases the lease", self.name)
        self._state = "follower"
        self._valid_until = -math.inf
        return holds

    def _lose(self, state: State, why: str) -> None:
        self._state = state
        self._valid_until = -math.inf
        self._stats = replace(self._stats, lost=self._stats.lost + 1)
        logger.warning("cache warmer %r: lost the lease (%s); stops warming", self.name, why)


def lease_key(namespace: str, name: str) -> str:
    """The Redis key of the lease of the warmer ``name``."""
    return f"{namespace}:\x1f#lease:warmer:{name}"


def new_token() -> str:
    """A token unique to this process and warmer, readable in ``redis-cli GET``: host, pid, random."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def validate_lease_ttl(ttl: object) -> float:
    """``ttl`` as seconds, or :class:`CacheConfigError` unless a finite number of at least 0.01 s."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise CacheConfigError(f"lease_ttl must be a number of seconds, not {type(ttl).__name__}")
    seconds = float(ttl)
    if not math.isfinite(seconds) or seconds < 0.01:
        raise CacheConfigError(f"lease_ttl must be a finite number of seconds >= 0.01, got {ttl!r}")
    return seconds


def lease_for(
    cache: object, name: str, *, leader_election: bool | None, lease_ttl: float = DEFAULT_LEASE_TTL
) -> LeaseCore | None:
    """The lease a warmer of ``cache`` holds, or ``None`` for a warmer in every process.

    ``leader_election=None`` means a lease whenever the cache has Redis configured (a
    :class:`ConfiguredCache` whose ``redis`` is set); ``False`` never;
    ``True`` always, and a cache without Redis is then a :class:`CacheConfigError`.
    """
    if leader_election is not None and not isinstance(leader_election, bool):
        raise CacheConfigError(f"leader_election must be True, False or None, got {leader_election!r}")
    ttl = validate_lease_ttl(lease_ttl)
    config: CacheConfig | None = None
    with_redis = False
    if isinstance(cache, ConfiguredCache) and isinstance(cache.config, CacheConfig):
        config, with_redis = cache.config, cache.redis is not None
    if leader_election is True and not with_redis:
        raise CacheConfigError(
            "leader_election=True needs a cache with Redis configured (config.redis_url), "
            f"and {type(cache).__name__} has none"
        )
    if leader_election is False or not with_redis:
        return None
    assert isinstance(config, CacheConfig)
    return LeaseCore(config, name, ttl=ttl)
