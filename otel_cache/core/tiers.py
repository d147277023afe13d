"""The decisions of the multi-level cache, shared by its sync and async shells.

::

    get(key)
      L1 hit ──────────────────────────────────────────────> value
      L1 miss ─ L2 enabled? ─ breaker allows? ─ GET ─ decode ─ hit ─ fill L1 (if no write raced) ─> value
                    │ no            │ no          │ error   │ garbage
                    └───────────────┴─────────────┴─────────┴──> miss (counted; raise under policy "raise")

    put(key, value)   L1 first, then L2 (write-through); encode error: L1 kept, L2 key deleted, raised

Fill guard: an L2 read races with writes of the same key in this process (read
v1 from Redis, a writer stores v2, the read then fills L1 with v1: stale until the
L1 TTL). Every write brackets itself with :meth:`TierCore.write_started` and
:meth:`TierCore.write_finished`, which bump a generation in one of
``_STRIPES`` stripes chosen by the key's hash; a read notes the stripe's
generation before its GET and fills L1 only if no write on that stripe started or
ran meanwhile, and checks again after the fill (undoing it if one did). An
invalidation from another process, or the loss of the invalidation channel, bumps
the generations too (:mod:`otel_cache.core.coherence`).

Concurrent writers of one key: two writes of one key that overlap in time (threads,
coroutines, or both) reach L1 in one order and Redis perhaps in the other. The rule:
Redis's order of arrival decides; a write that overlapped another one drops the key
from L1 when it finishes, so the last of them to finish leaves L1 empty and the next
read fills it from Redis. Afterwards L1 and Redis never disagree.

Stale-copy guard: a write or delete whose L2 half failed or was skipped (Redis down,
breaker open) leaves Redis holding an older value than L1, or a value the caller
deleted. Once L1 drops the key that old value would be served again (a deleted key
would come back). So such keys are remembered as *unsynced* (up to ``max_unsynced``,
oldest forgotten first, counted): a read of one skips L2 and first deletes the L2
copy (a *repair*); a later successful write or delete of the key syncs it. A failed
``clear`` is remembered the same way: L2 reads are skipped, and the clear retried,
until one succeeds. With the invalidation channel on, the publisher does not wait
for reads: once Redis answers it deletes every unsynced key's L2 copy
(:meth:`Flows.repair <otel_cache.multilevel.flows.Flows.repair>`) and announces the
keys, so other processes drop their L1 copies too. A process that dies before Redis
returns cannot repair: its stale L2 copies live until their Redis TTL.

Counters here are plain integers changed under ``lock`` (a lock that the shell
injects; the core itself imports no threading), on the L2 path only.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Hashable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from otel_cache.core import fail_safe
from otel_cache.core.breaker import BreakerSet, BreakerState
from otel_cache.core.coherence import Coherence
from otel_cache.core.compression import Compression
from otel_cache.core.keys import L2KeyBuilder
from otel_cache.core.serialization import Serializer, make_serializer
from otel_cache.core.tags import TAG_MARK, TagIndex
from otel_cache.core.ttl import NO_EXPIRY, resolve_ttl
from otel_cache.errors import (
    BackendBusyError,
    BackendDataError,
    BackendError,
    BackendWriteRefusedError,
    CacheKeyError,
    CircuitOpenError,
    PartialBackendError,
    SerializationError,
)

__all__ = ["MISSING", "L2Stats", "TierCore"]

_Stored = tuple[bytes, int | None]  # as the backends return it (backends.protocol.Stored)

_STRIPES = 256
MAX_UNSYNCED = 100_000


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Marks a miss where ``None`` is a valid cached value."""


@dataclass(frozen=True, slots=True)
class L2Stats:
    """Counters of the L2 (Redis) level."""

    enabled: bool
    hits: int
    misses: int
    writes: int
    deletes: int
    errors: dict[str, int]
    decode_errors: int  # values that do not decode, and keys of another type (type_errors)
    encode_errors: int
    skipped: int
    fills: int
    fills_skipped: int
    breaker_state: str  # of reads (the least healthy node's)
    breaker_opens: int  # of reads
    write_breaker_state: str = "closed"  # of writes: opened also by refused writes (OOM, READONLY)
    write_breaker_opens: int = 0
    type_errors: int = 0  # reads of a key that holds another type (WRONGTYPE); in decode_errors too
    unsynced: int = 0  # keys whose L2 copy may be stale, now
    repairs: int = 0  # stale L2 copies deleted
    unsynced_dropped: int = 0  # unsynced keys forgotten (over max_unsynced)
    clear_pending: bool = False  # a clear failed and is retried before the next L2 read
    nodes: dict[str, str] = field(default_factory=dict)  # breaker state per cluster node in use
    fail_safe_served: int = 0  # fail-safe copies served after a failed load
    load_timeouts: dict[str, int] = field(default_factory=dict)  # soft | hard | waiter
    compressed: int = 0  # values written compressed
    compressed_input_bytes: int = 0  # their serialized size
    compressed_output_bytes: int = 0  # their size as written (ratio: output / input)


class TierCore:
    """Key building, encoding, TTLs, breaker, fill guard and L2 counters."""

    def __init__(
        self,
        *,
        namespace: str,
        max_key_length: int,
        default_ttl: float | None,
        l1_ttl: float | None,
        serializer: Serializer | None = None,
        compression: Compression | None = None,
        raise_errors: bool,
        breaker_threshold: int,
        breaker_reset: float,
        clock: Callable[[], float],
        lock: AbstractContextManager[Any] | None = None,
        l2_enabled: bool = True,
        max_unsynced: int = MAX_UNSYNCED,
        coherence: Coherence | None = None,
    ) -> None:
        self.l2_key = L2KeyBuilder(namespace, max_key_length)
        self.serializer = serializer or make_serializer("json")
        self.compression = compression
        self.fail_safe_used = False  # a put kept fail-safe copies: L1 removals take their twins too
        self.fail_safe_served = 0
        self.load_timeouts: dict[str, int] = {}
        self.compressed = self.compressed_input_bytes = self.compressed_output_bytes = 0
        self.default_ttl = default_ttl
        self.l1_fill_ttl = l1_ttl if l1_ttl is not None else default_ttl
        self.raise_errors = raise_errors
        self.l2_enabled = l2_enabled
        # Reads and writes are judged apart: a server that refuses writes (out of memory,
        # read-only) still serves reads. A server failure (unreachable, no answer) feeds both.
        self.breakers = BreakerSet(threshold=breaker_threshold, reset=breaker_reset, clock=clock)
        self.write_breakers = BreakerSet(threshold=breaker_threshold, reset=breaker_reset, clock=clock)
        self.route: Callable[[str], str | None] = _one_server  # the node of an L2 key (set by a driver)
        self._clock = clock
        self._lock: AbstractContextManager[Any] = lock or contextlib.nullcontext()
        self._generation = [0] * _STRIPES
        self._writing = [0] * _STRIPES
        self.hits = self.misses = self.writes = self.deletes = 0
        self.decode_errors = self.type_errors = self.encode_errors = self.fills = self.fills_skipped = 0
        self.errors: dict[str, int] = {}
        self._unsynced: dict[str, int] = {}  # L2 key -> its mark, oldest first
        self._unsynced_seq = 0
        self._inflight: dict[Hashable, list[Any]] = {}  # key -> [writes running, overlapped]
        self.coherence = coherence
        self._tags = TagIndex()
        self._pending_tags: set[str] = set()  # tag invalidations Redis refused, retried by the repair
        self._max_unsynced = max_unsynced
        self.repairs = self.unsynced_dropped = 0
        self.clear_pending = False

    # -- TTLs --------------------------------------------------------------------

    def ttls(self, ttl: float | None) -> tuple[float | None, int | None]:
        """(L1 TTL in seconds, L2 TTL in milliseconds) of a put; validates ``ttl``.

        L1 keeps an entry no longer than ``l1_ttl`` when that is set, so that writes
        by other processes show within that time.
        """
        seconds = resolve_ttl(ttl, self.default_ttl)
        l1 = seconds
        if self.l1_fill_ttl is not None and self.l1_fill_ttl != self.default_ttl:
            l1 = self.l1_fill_ttl if seconds is None else min(seconds, self.l1_fill_ttl)
        millis = None if seconds is None else max(1, round(seconds * 1000))
        return (NO_EXPIRY if l1 is None else l1), millis

    def now(self) -> float:
        return self._clock()

    def fill_ttl(self, remaining_ms: int | None, sent_at: float) -> float | None:
        """L1 TTL of a value read from L2 that Redis keeps ``remaining_ms`` more (None: forever).

        L1 never outlives the Redis entry, and keeps it at most ``l1_ttl`` (or the default
        TTL). Redis measured ``remaining_ms`` at some point after ``sent_at``, so the time
        since then is taken off; ``None`` when nothing is left (do not fill).
        """
        remaining = None
        if remaining_ms is not None:
            remaining = remaining_ms / 1000 - (self._clock() - sent_at)
            if remaining <= 0:
                return None
        cap = self.l1_fill_ttl
        if remaining is None:
            return NO_EXPIRY if cap is None else cap
        return remaining if cap is None else min(remaining, cap)

    def fill_ttls(self, remaining: list[int | None], sent_at: float) -> list[float | None]:
        """:meth:`fill_ttl` of each of a batch read at once (one clock read)."""
        elapsed = self._clock() - sent_at
        cap = self.l1_fill_ttl
        forever = NO_EXPIRY if cap is None else cap
        ttls: list[float | None] = []
        for ms in remaining:
            if ms is None:
                ttls.append(forever)
                continue
            left = ms / 1000 - elapsed
            ttls.append(None if left <= 0 else left if cap is None or left < cap else cap)
        return ttls

    # -- encoding ----------------------------------------------------------------

    def encode(self, value: object) -> bytes:
        """Bytes for L2, compressed if configured and worth it; :class:`SerializationError` is
        counted and raised."""
        try:
            data = self.serializer.dumps(value)
        except SerializationError:
            with self._lock:
                self.encode_errors += 1
            raise
        compression = self.compression
        if compression is None:
            return data
        packed = compression.pack(data)
        if packed is None:
            return data
        with self._lock:
            self.compressed += 1
            self.compressed_input_bytes += len(data)
            self.compressed_output_bytes += len(packed)
        return packed

    def check(self, value: object) -> None:
        """What :meth:`encode` would refuse, refused without encoding (L2 off)."""
        try:
            self.serializer.check(value)
        except SerializationError:
            with self._lock:
                self.encode_errors += 1
            raise

    def decode(self, raw: bytes | None) -> Any:
        """The value behind ``raw``, or :data:`MISSING` for an absent or unreadable value."""
        if raw is None:
            return MISSING
        try:
            return self.serializer.loads(raw)
        except SerializationError:
            with self._lock:
                self.decode_errors += 1
            return MISSING

    def decode_many(self, raws: list[bytes | None]) -> list[Any]:
        """:meth:`decode` of each; the errors counted once for the batch."""
        loads, values, errors = self.serializer.loads, [], 0
        for raw in raws:
            if raw is None:
                values.append(MISSING)
                continue
            try:
                values.append(loads(raw))
            except SerializationError:
                values.append(MISSING)
                errors += 1
        if errors:
            with self._lock:
                self.decode_errors += errors
        return values

    # -- breaker and errors --------------------------------------------------------

    def _sides(self, write: bool) -> BreakerSet:
        return self.write_breakers if write else self.breakers

    def l2_allowed(self, l2_key: str | None = None, *, write: bool = False) -> bool:
        """Whether to call L2 now for ``l2_key`` (its node's breaker for reads, or for writes,
        decides; without a key, the breaker of the whole). Under policy "raise", a refusal
        raises CircuitOpenError."""
        if not self.l2_enabled:
            return False
        node = None if l2_key is None else self.route(l2_key)
        with self._lock:
            allowed = self._sides(write).get(node).allow()
        if not allowed and self.raise_errors:
            where = "Redis" if node is None else f"Redis node {node}"
            side = "writes to" if write else "reads from"
            raise CircuitOpenError(f"{side} {where} are stopped by the circuit breaker; next probe pending")
        return allowed

    def l2_succeeded(self, l2_key: str | None = None, *, write: bool = False) -> None:
        """A call answered: its side's breaker closes (a write that succeeds closes both)."""
        node = None if l2_key is None else self.route(l2_key)
        breakers = (
            (self.breakers.get(node), self.write_breakers.get(node)) if write else (self.breakers.get(node),)
        )
        if any(breaker.state is not BreakerState.CLOSED or breaker.failures for breaker in breakers):
            with self._lock:
                for breaker in breakers:
                    breaker.succeeded()

    def l2_failed(self, error: BackendError, l2_key: str | None = None, *, write: bool = False) -> None:
        """Count ``error`` and feed the breakers of ``l2_key``'s node (without a key, of the
        whole) as :meth:`_count_failure` says; re-raise it under policy "raise" (not a reply
        about one key, which is a miss)."""
        self._count_failure(error, None if l2_key is None else self.route(l2_key))
        if self.raise_errors and not isinstance(error, BackendDataError):
            raise error

    def _count_failure(self, error: BackendError, node: str | None) -> None:
        """Count ``error``; a server failure feeds both breakers of ``node``, a refused write the
        write side only, a saturated pool neither; a reply about one key (WRONGTYPE) is a miss
        and a decode error, not an L2 error."""
        with self._lock:
            if isinstance(error, BackendDataError):  # a miss, like a value that does not decode
                self.misses += 1
                self.decode_errors += 1
                self.type_errors += 1
                return
            name = _error_type(error)
            self.errors[name] = self.errors.get(name, 0) + 1
            if isinstance(error, BackendWriteRefusedError):
                self.write_breakers.get(node).failed()
            elif not isinstance(error, BackendBusyError):
                self.breakers.get(node).failed()
                self.write_breakers.get(node).failed()

    def l2_allowed_many(self, l2_keys: Sequence[str], *, write: bool = False) -> list[bool]:
        """:meth:`l2_allowed` of each key, each node's breaker asked once. Under policy "raise",
        CircuitOpenError when no key's node is allowed."""
        if not self.l2_enabled:
            return [False] * len(l2_keys)
        route = self.route
        nodes = [route(l2_key) for l2_key in l2_keys]
        side = self._sides(write)
        with self._lock:
            verdicts = {node: side.get(node).allow() for node in set(nodes)}
        allowed = [verdicts[node] for node in nodes]
        if self.raise_errors and l2_keys and not any(allowed):
            raise CircuitOpenError("Redis is marked down by the circuit breaker; next probe pending")
        return allowed

    def l2_batch_finished(
        self, l2_keys: Sequence[str], error: BackendError | None = None, *, write: bool = False
    ) -> None:
        """A call over ``l2_keys`` ended: feed each node's breakers with its outcome. ``error``: what
        failed, a :class:`PartialBackendError` naming the nodes, or another error for all of them.
        Re-raises ``error`` under policy "raise"."""
        route = self.route
        nodes = {route(l2_key) for l2_key in l2_keys}
        failures: dict[str | None, BackendError] = {}
        if isinstance(error, PartialBackendError):
            failures = {self._known(node, nodes): failure for node, failure in error.failures.items()}
        elif error is not None:
            failures = dict.fromkeys(nodes, error)
        for node, failure in failures.items():
            self._count_failure(failure, node)
        healthy = [self.breakers.get(node) for node in nodes - set(failures)]
        if write:
            healthy += [self.write_breakers.get(node) for node in nodes - set(failures)]
        if any(breaker.state is not BreakerState.CLOSED or breaker.failures for breaker in healthy):
            with self._lock:
                for breaker in healthy:
                    breaker.succeeded()
        if error is not None and self.raise_errors:
            raise error

    @staticmethod
    def _known(node: str, nodes: set[str | None]) -> str | None:
        """``node`` as the routes name it (a one-server cache has one breaker: None)."""
        return node if node in nodes else None

    # -- reads -------------------------------------------------------------------

    def read_started(self, key: Hashable) -> int:
        """Token for :meth:`may_fill`: the key's stripe generation, or -1 if a write is running."""
        stripe = hash(key) % _STRIPES
        with self._lock:
            return -1 if self._writing[stripe] else self._generation[stripe]

    def reads_started(self, keys: list[Hashable]) -> list[int]:
        """:meth:`read_started` of each key, under one lock round."""
        stripes = [hash(key) % _STRIPES for key in keys]
        writing, generation = self._writing, self._generation
        with self._lock:
            return [-1 if writing[stripe] else generation[stripe] for stripe in stripes]

    def reads_finished(self, values: list[Any]) -> None:
        """:meth:`read_finished` of each value of a batch, counted under one lock round."""
        misses = sum(1 for value in values if value is MISSING)
        with self._lock:
            self.misses += misses
            self.hits += len(values) - misses

    def may_fill_many(self, keys: list[Hashable], tokens: list[int]) -> list[bool]:
        """:meth:`may_fill` of each (key, token), under one lock round."""
        stripes = [hash(key) % _STRIPES for key in keys]
        writing, generation = self._writing, self._generation
        with self._lock:
            usable = self.l1_usable
            allowed = [
                usable and token >= 0 and not writing[stripe] and generation[stripe] == token
                for stripe, token in zip(stripes, tokens, strict=True)
            ]
            filled = sum(allowed)
            self.fills += filled
            self.fills_skipped += len(allowed) - filled
        return allowed

    def open_stored(self, stored: _Stored) -> tuple[_Stored, bool]:
        """``stored`` without its fail-safe header (if any), its time left the value's own, and
        whether it is a stale fail-safe copy (a miss, but for a failed load)."""
        if stored[0][:1] != fail_safe.MARK:  # the common case: no copy kept, no clock read
            return stored, False
        data, left = fail_safe.unwrap(stored[0], fail_safe.now_ms())
        if left is None:
            return stored, False
        if left <= 0:
            return (data, 0), True
        remaining = stored[1]
        return (data, left if remaining is None or left < remaining else remaining), False

    def with_fail_safe_twins(self, keys: Iterable[Hashable]) -> list[Hashable]:
        """``keys``, and the L1 keys of their fail-safe copies once any were kept."""
        keys = list(keys)
        if self.fail_safe_used:
            keys += [fail_safe.FailSafeKey(key) for key in keys]
        return keys

    def load_timed_out(self, kind: str) -> None:
        with self._lock:
            self.load_timeouts[kind] = self.load_timeouts.get(kind, 0) + 1

    def fail_safe_activated(self) -> None:
        with self._lock:
            self.fail_safe_served += 1

    def read_finished(self, value: Any) -> bool:
        """Count a finished L2 read of ``value`` (hit or miss); True on a hit."""
        with self._lock:
            if value is MISSING:
                self.misses += 1
                return False
            self.hits += 1
            return True

    def may_fill(self, key: Hashable, token: int) -> bool:
        stripe = hash(key) % _STRIPES
        with self._lock:
            ok = (
                token >= 0
                and not self._writing[stripe]
                and self._generation[stripe] == token
                and self.l1_usable
            )
            if ok:
                self.fills += 1
            else:
                self.fills_skipped += 1
            return ok

    def raced(self, keys: list[Hashable], tokens: list[int]) -> list[Hashable]:
        """The keys (just filled) whose :meth:`still_fillable` is false: undo those fills."""
        writing, generation, usable = self._writing, self._generation, self.l1_usable
        return [
            key
            for key, token in zip(keys, tokens, strict=True)
            if not usable or writing[hash(key) % _STRIPES] or generation[hash(key) % _STRIPES] != token
        ]

    def still_fillable(self, key: Hashable, token: int) -> bool:
        """After a fill: whether no write or invalidation started since ``token`` (else undo it)."""
        stripe = hash(key) % _STRIPES
        return not self._writing[stripe] and self._generation[stripe] == token and self.l1_usable

    # -- writes ------------------------------------------------------------------

    def write_started(self, key: Hashable) -> None:
        stripe = hash(key) % _STRIPES
        with self._lock:
            self._writing[stripe] += 1
            self._generation[stripe] += 1
            overlap = self._inflight.get(key)
            if overlap is None:
                self._inflight[key] = [1, False]
            else:
                overlap[0] += 1
                overlap[1] = True

    def write_finished(self, key: Hashable, *, deleted: bool = False, l2_written: bool = False) -> bool:
        """End a write; True if it overlapped another write of ``key`` (drop the L1 copy then)."""
        stripe = hash(key) % _STRIPES
        with self._lock:
            self._writing[stripe] -= 1
            self._generation[stripe] += 1
            if l2_written:
                if deleted:
                    self.deletes += 1
                else:
                    self.writes += 1
            overlap = self._inflight[key]
            overlap[0] -= 1
            if not overlap[0]:
                del self._inflight[key]
            return bool(overlap[1])

    # -- tags ----------------------------------------------------------------------------

    def tag_keys(self, tags: tuple[str, ...]) -> list[str]:
        """The Redis keys of the tag sets of ``tags``."""
        prefix = self.l2_key.prefix + TAG_MARK
        return [prefix + tag for tag in tags]

    def tagged(self, tags: tuple[str, ...], keys: Iterable[Hashable]) -> None:
        """These keys were written with ``tags`` (remembered for this process's L1)."""
        if tags:
            with self._lock:
                self._tags.add(tags, keys)

    def untag(self, tags: tuple[str, ...]) -> set[Hashable]:
        """The L1 keys of this process that carried ``tags`` (and their fail-safe copies); the tags
        are forgotten here."""
        with self._lock:
            keys = self._tags.pop(tags)
        return set(self.with_fail_safe_twins(keys)) if self.fail_safe_used else keys

    def tags_failed(self, tags: tuple[str, ...]) -> None:
        """Redis did not take the invalidation of ``tags``: the repair retries it."""
        with self._lock:
            self._pending_tags.update(tags)
        if self.coherence is not None:
            self.coherence.kick()

    def take_pending_tags(self) -> tuple[str, ...]:
        with self._lock:
            tags, self._pending_tags = tuple(self._pending_tags), set()
        return tags

    # -- other processes ----------------------------------------------------------------

    @property
    def l1_usable(self) -> bool:
        """Whether L1 may take copies now: always without a channel, else only while it is up."""
        coherence = self.coherence
        return coherence is None or coherence.up

    def channel_lost(self) -> bool:
        """The invalidation channel went down: no read in flight may fill L1 (True: was up)."""
        assert self.coherence is not None
        was_up = self.coherence.channel_down()
        self.remote_flushed()
        return was_up

    def remote_flushed(self) -> None:
        """Every L1 copy is to go: no read in flight may fill L1."""
        with self._lock:
            generation = self._generation
            for stripe in range(_STRIPES):
                generation[stripe] += 1

    def remote_invalidated(self, l2_keys: Iterable[str]) -> list[Hashable]:
        """Another process changed ``l2_keys``: the L1 keys to drop; reads in flight do not fill."""
        keys: list[Hashable] = []
        parse = self.l2_key.parse
        for l2_key in l2_keys:
            try:
                keys.append(parse(l2_key))
            except CacheKeyError:
                continue
        with self._lock:
            for key in keys:
                self._generation[hash(key) % _STRIPES] += 1
        return self.with_fail_safe_twins(keys)

    # -- stale L2 copies --------------------------------------------------------------

    def mark_unsynced(self, l2_keys: Iterable[str]) -> None:
        """The L2 halves of writes to ``l2_keys`` failed or were skipped: their copies may be stale."""
        with self._lock:
            unsynced = self._unsynced
            for l2_key in l2_keys:
                self._unsynced_seq += 1
                unsynced.pop(l2_key, None)  # re-insert as the newest
                unsynced[l2_key] = self._unsynced_seq
            while len(unsynced) > self._max_unsynced:
                del unsynced[next(iter(unsynced))]
                self.unsynced_dropped += 1
        if self.coherence is not None:
            self.coherence.kick()  # the publisher retries the repair until Redis answers

    def l2_write_failed(self, l2_keys: Iterable[str], error: BackendError, l2_key: str | None = None) -> None:
        """A write or delete of ``l2_keys`` failed: mark them unsynced, then count ``error`` as
        :meth:`l2_failed` does for ``l2_key``'s node (which re-raises it under policy "raise")."""
        self.mark_unsynced(l2_keys)
        self.l2_failed(error, l2_key, write=True)

    def mark_synced(self, l2_keys: Sequence[str], *, repaired: bool = False) -> None:
        """L2 now holds the current value (or nothing) for ``l2_keys``; other processes are told."""
        if self.coherence is not None:
            self.coherence.announce(l2_keys)
        if not self._unsynced:  # the common case, without the lock (a racing mark only adds a repair)
            return
        with self._lock:
            for l2_key in l2_keys:
                if self._unsynced.pop(l2_key, None) is not None and repaired:
                    self.repairs += 1

    def unsynced_batch(self, limit: int) -> list[tuple[str, int]]:
        """Up to ``limit`` unsynced keys with their marks, oldest first, for a repair."""
        with self._lock:
            return list(itertools.islice(self._unsynced.items(), limit))

    def repaired(self, marks: Iterable[tuple[str, int]]) -> None:
        """The L2 copies of these keys were deleted; keys marked again since stay unsynced."""
        synced: list[str] = []
        with self._lock:
            for l2_key, mark in marks:
                if self._unsynced.get(l2_key) == mark:
                    del self._unsynced[l2_key]
                    self.repairs += 1
                    synced.append(l2_key)
        if self.coherence is not None:
            self.coherence.announce(synced)

    def has_unsynced(self) -> bool:
        """Whether a repair is due: unsynced keys, a failed clear or a failed tag invalidation."""
        return self.clear_pending or bool(self._unsynced) or bool(self._pending_tags)

    def is_unsynced(self, l2_key: str) -> bool:
        """Whether L2 may hold a stale copy of ``l2_key`` (read it: no; repair it first)."""
        return bool(self._unsynced) and l2_key in self._unsynced

    def clear_finished(self, *, ok: bool) -> None:
        """A clear of the namespace succeeded (every copy is gone) or failed (all may be stale)."""
        with self._lock:
            self.clear_pending = not ok
            if ok:
                self._unsynced.clear()
        if self.coherence is not None:
            if ok:
                self.coherence.announce_flush()
            else:
                self.coherence.kick()

    def count_l2_writes(self, count: int) -> None:
        with self._lock:
            self.writes += count

    def stats(self) -> L2Stats:
        with self._lock:
            return L2Stats(
                enabled=self.l2_enabled,
                hits=self.hits,
                misses=self.misses,
                writes=self.writes,
                deletes=self.deletes,
                errors=dict(self.errors),
                decode_errors=self.decode_errors,
                type_errors=self.type_errors,
                encode_errors=self.encode_errors,
                skipped=self.breakers.short_circuits + self.write_breakers.short_circuits,
                fills=self.fills,
                fills_skipped=self.fills_skipped,
                breaker_state=self.breakers.worst().name.lower(),
                write_breaker_state=self.write_breakers.worst().name.lower(),
                breaker_opens=self.breakers.opens,
                write_breaker_opens=self.write_breakers.opens,
                nodes={
                    node: breaker.state.name.lower()
                    for node, breaker in self.breakers.reported().items()
                    if node is not None
                },
                unsynced=len(self._unsynced),
                repairs=self.repairs,
                unsynced_dropped=self.unsynced_dropped,
                clear_pending=self.clear_pending,
                fail_safe_served=self.fail_safe_served,
                load_timeouts=dict(self.load_timeouts),
                compressed=self.compressed,
                compressed_input_bytes=self.compressed_input_bytes,
                compressed_output_bytes=self.compressed_output_bytes,
            )


def _one_server(l2_key: str) -> str | None:
    return None


def _error_type(error: BaseException) -> str:
    cause = error.__cause__
    return type(cause).__qualname__ if cause is not None else type(error).__qualname__
