"""Every multi-level operation, written once, for the sync and the async API.

An operation is a generator that does all the deciding (through
:class:`~otel_cache.core.tiers.TierCore`) and *yields* each L2 call and each L1
call that takes the L1 lock as a typed step (:mod:`otel_cache.multilevel.steps`).
A driver runs it: the sync driver calls the sync Redis backend and the sync L1, the
async driver awaits ``redis.asyncio`` and the L1's async path (so it never blocks
the loop on the lock), and each sends the result back in (or throws the
:class:`~otel_cache.errors.BackendError` in). This is httpx's ``Auth.auth_flow``
pattern: one flow, two thin drivers, no drift.

Clean-up in ``finally`` blocks calls L1 directly rather than as a step: a flow closed
by a cancellation cannot yield there (one lock round, held for O(1)).

The L1 hit path does not come here: the shells answer L1 hits before any
generator is made. ``get_or_set`` runs :meth:`Flows.get_or_load` inside the key's
single flight, so N concurrent cold callers make one Redis read and one load.

Every write whose L2 half fails or is skipped marks its keys *unsynced* in the tier
core (their L2 copies may be stale), and every read of such a key deletes the L2
copy instead of trusting it: see the stale-copy guard in :mod:`otel_cache.core.tiers`.

Ordering of concurrent writers of one key (threads and coroutines alike): Redis's
order of arrival decides the winner; each write that overlapped another drops the
key from L1 when it finishes, so L1 never keeps a value Redis does not hold.

Every successful L2 write, delete, repair and clear is announced on the
invalidation channel (:mod:`otel_cache.core.coherence`); while the channel is down
L1 takes no copy (``Flows._store``, ``Flows._fill``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar, cast

from otel_cache.backends.protocol import Stored
from otel_cache.core.fail_safe import FailSafe, FailSafeKey
from otel_cache.core.fail_safe import now_ms as fail_safe_now_ms
from otel_cache.core.fail_safe import wrap as fail_safe_header
from otel_cache.core.load_options import PLAIN, LoadOptions
from otel_cache.core.refresh import RefreshSchedule
from otel_cache.core.tiers import MISSING, TierCore
from otel_cache.errors import (
    BackendError,
    CircuitOpenError,
    LoadTimeoutError,
    PartialBackendError,
    SerializationError,
)
from otel_cache.l1.cache import AsyncLRUCache
from otel_cache.multilevel.steps import (
    Flow,
    L1Clear,
    L1Delete,
    L1DeleteMany,
    L1GetMany,
    L1Put,
    L1PutEntries,
    L1PutMany,
    L2Clear,
    L2Delete,
    L2DeleteMany,
    L2Get,
    L2GetMany,
    L2InvalidateTags,
    L2Set,
    L2SetMany,
    Load,
)

__all__ = ["Flow", "Flows"]

_T = TypeVar("_T")
log = logging.getLogger("otel_cache")


class Flows:
    """The operations of one multi-level cache, over its L1 and its tier core."""

    def __init__(
        self,
        l1: AsyncLRUCache[Any, Any],
        tiers: TierCore,
        refresh: RefreshSchedule | None = None,
        on_fail_safe: Callable[[Hashable, BaseException], None] | None = None,
    ) -> None:
        self.l1 = l1
        self.tiers = tiers
        self.refresh = refresh if refresh is not None else RefreshSchedule()
        self.on_fail_safe = on_fail_safe  # told when a fail-safe copy is served (telemetry)
        self.on_timeout: Callable[[str], None] | None = None  # told when a caller stops waiting

    def timed_out(self, kind: str) -> None:
        """A caller stopped waiting for a load (``soft``, ``hard`` or ``waiter``): counted, told."""
        self.tiers.load_timed_out(kind)
        if self.on_timeout is not None:
            self.on_timeout(kind)

    def get_l2(self, key: Hashable, default: Any) -> Flow[Any]:
        """After an L1 miss: read L2 and fill L1 on a hit."""
        return (yield from self._get_l2(key, self.tiers.l2_key(key), default))

    def get_or_load(
        self,
        key: Hashable,
        loader: Callable[[], Any],
        ttl: float | None,
        tags: tuple[str, ...],
        options: LoadOptions = PLAIN,
    ) -> Flow[Any]:
        """``get_or_set`` after the caller's L1 miss, run by the key's single-flight leader:
        L1 again (a flight that just ended may have stored it; counted nowhere), then L2, then
        the loader, whose value is stored in both levels (if ``options.condition`` holds for it).
        With ``refresh_ahead``, what it stores or reads from L2 is scheduled for a refresh;
        with ``fail_safe``, a loader that raises (or passes a timeout) is answered by a
        fail-safe copy if one exists; ``timeouts`` bound the wait for the loader."""
        value = self.l1.peek(key, MISSING)
        if value is not MISSING:
            return value
        fail_safe, timeouts = options.fail_safe, options.timeouts
        l2_key = self.tiers.l2_key(key)  # rendered once for the read and the write
        stale: list[Any] = []
        if self.tiers.l2_enabled:
            left: list[float | None] = []
            value = yield from self._get_l2(
                key, l2_key, MISSING, left, stale if fail_safe is not None else None
            )
            if value is not MISSING:
                if options.refresh_ahead is not None and left:
                    self._schedule(key, ttl, options.refresh_ahead, left=left[0])
                return value
        copy = MISSING
        if fail_safe is not None:
            copy = stale[0] if stale else self.l1.peek(FailSafeKey(key), MISSING)
        wait = None if timeouts is None else timeouts.wait(copy is not MISSING)
        late = None
        if wait is not None:

            def late(loaded: Any) -> Flow[Any]:  # the load ended after its caller stopped waiting
                return self._keep(key, l2_key, loaded, ttl, tags, options)

        try:
            value = yield from Load(key, loader, wait, late)
        except Exception as exc:  # the loader's, or its timeout: Redis's errors never reach here
            if isinstance(exc, LoadTimeoutError) and timeouts is not None:
                self.timed_out(timeouts.kind(copy is not MISSING))
            if fail_safe is None or copy is MISSING:
                raise
            # Served for the throttle: the failing loader is not called by every caller meanwhile
            # (in L1 only while it may take copies: core.coherence).
            if self.tiers.l1_usable:
                yield from L1Put(key, copy, fail_safe.throttle)
            self.tiers.fail_safe_activated()
            if self.on_fail_safe is not None:
                self.on_fail_safe(key, exc)
            return copy
        return (yield from self._keep(key, l2_key, value, ttl, tags, options))

    def load(
        self,
        key: Hashable,
        loader: Callable[[], Any],
        ttl: float | None,
        tags: tuple[str, ...],
        options: LoadOptions,
    ) -> Flow[Any]:
        """A refresh ahead of expiry: call the loader and store its value in both levels (if
        ``options.condition`` holds for it), reading neither level first."""
        value = yield from Load(key, loader)
        return (yield from self._keep(key, self.tiers.l2_key(key), value, ttl, tags, options))

    def _keep(
        self,
        key: Hashable,
        l2_key: str,
        value: Any,
        ttl: float | None,
        tags: tuple[str, ...],
        options: LoadOptions,
    ) -> Flow[Any]:
        """Store a loaded value (if ``options.condition`` holds for it) and schedule its refresh."""
        if options.condition is not None and not options.condition(value):
            return value
        yield from self._put(key, l2_key, value, ttl, strict=False, tags=tags, fail_safe=options.fail_safe)
        if options.refresh_ahead is not None:
            self._schedule(key, ttl, options.refresh_ahead)
        return value

    def _schedule(self, key: Hashable, ttl: float | None, share: float, *, left: float | None = None) -> None:
        _, ttl_ms = self.tiers.ttls(ttl)
        self.refresh.schedule(
            key, self.tiers.now(), None if ttl_ms is None else ttl_ms / 1000, share, left=left
        )

    def _get_l2(
        self,
        key: Hashable,
        l2_key: str,
        default: Any,
        left: list[float | None] | None = None,
        stale: list[Any] | None = None,
    ) -> Flow[Any]:
        # ``left``: on a hit, the seconds Redis keeps the value is appended (None: no expiry).
        # ``stale``: a stale fail-safe copy found (a miss) is appended.
        tiers = self.tiers
        if not tiers.l2_allowed(l2_key):
            return default
        # Allowed one call (a half-open breaker allows one probe): the repair is that call.
        if tiers.clear_pending:
            yield from self._clear_l2(allowed=True)
            if tiers.clear_pending:
                return default
        if tiers.is_unsynced(l2_key):
            yield from self._delete_l2(l2_key, repair=True)  # never serve the stale copy
            return default
        token = tiers.read_started(key)
        sent_at = tiers.now()
        try:
            stored = yield from L2Get(l2_key)
        except BackendError as exc:
            tiers.l2_failed(exc, l2_key)
            return default
        tiers.l2_succeeded(l2_key)
        expired = False
        if stored is not None:
            stored, expired = tiers.open_stored(stored)
        value = tiers.decode(stored[0] if stored else None)
        if expired:
            if stale is not None and value is not MISSING:
                stale.append(value)
            value = MISSING
        if not tiers.read_finished(value):  # counts the hit or the miss
            return default
        assert stored is not None  # a value was decoded from it
        if left is not None:
            left.append(None if stored[1] is None else stored[1] / 1000)
        yield from self._fill(key, value, tiers.fill_ttl(stored[1], sent_at), token)
        return value

    def put(
        self, key: Hashable, value: Any, ttl: float | None, *, strict: bool = True, tags: tuple[str, ...] = ()
    ) -> Flow[bool]:
        """Write-through: L1, then L2. Returns whether L1 took the value.

        A value that cannot be stored as it is (see :mod:`otel_cache.core.value_tree`)
        raises :class:`SerializationError` before anything is written, with or without
        L2 (``strict``); otherwise (a loaded value) it stays in L1 only, its stale L2
        copy is deleted, and the refusal is logged.
        """
        return (yield from self._put(key, self.tiers.l2_key(key), value, ttl, strict=strict, tags=tags))

    def _put(
        self,
        key: Hashable,
        l2_key: str,
        value: Any,
        ttl: float | None,
        *,
        strict: bool = True,
        tags: tuple[str, ...] = (),
        fail_safe: FailSafe | None = None,
    ) -> Flow[bool]:
        tiers = self.tiers
        l1_ttl, ttl_ms = tiers.ttls(ttl)
        if fail_safe is not None:
            tiers.fail_safe_used = True
        if fail_safe is not None and ttl_ms is not None and tiers.l1_usable:
            # The L1 copy, beside the entry: for as long as the Redis copy (TTL + max_age). Not
            # while the invalidation channel is down (L1 takes no copies then: core.coherence).
            yield from L1Put(FailSafeKey(key), value, ttl_ms / 1000 + fail_safe.max_age)
        elif tiers.fail_safe_used:
            yield from L1Delete(FailSafeKey(key))  # a copy older than this value must not be served
        if not tiers.l2_enabled:
            if strict:
                tiers.check(value)
            tiers.tagged(tags, (key,))
            return (yield from L1Put(key, value, l1_ttl))
        data: bytes | None = None
        try:
            data = tiers.encode(value)
        except SerializationError:
            if strict:
                raise
        l2_ttl_ms = ttl_ms
        if data is not None and fail_safe is not None and ttl_ms is not None:
            data = fail_safe_header(data, ttl_ms, fail_safe_now_ms())
            l2_ttl_ms = ttl_ms + round(fail_safe.max_age * 1000)
        tiers.write_started(key)
        written = False
        try:
            tiers.tagged(tags, (key,))
            stored = yield from self._store(key, value, l1_ttl)
            if data is None:
                yield from self._delete_l2(l2_key)
                log.warning("value for a key of %s not cached in L2: cannot encode it", tiers.l2_key.prefix)
                return stored
            if self._l2_writable(l2_key):
                try:
                    yield from L2Set(l2_key, data, l2_ttl_ms, tiers.tag_keys(tags))
                except BackendError as exc:
                    tiers.l2_write_failed((l2_key,), exc, l2_key)
                else:
                    tiers.l2_succeeded(l2_key, write=True)
                    tiers.mark_synced((l2_key,))
                    written = True
            return stored
        finally:
            # Not a step: a flow closed by a cancellation cannot yield in its clean-up.
            if tiers.write_finished(key, l2_written=written):
                self.l1.delete(key)  # concurrent writers: Redis's order decides, L1 re-reads it

    def delete(self, key: Hashable) -> Flow[bool]:
        """Remove from both levels; True if either held the key."""
        tiers = self.tiers
        l2_key = tiers.l2_key(key)
        if tiers.fail_safe_used:
            yield from L1Delete(FailSafeKey(key))
        if not tiers.l2_enabled:
            return (yield from L1Delete(key))
        tiers.write_started(key)
        removed = False
        try:
            in_l1 = yield from L1Delete(key)
            removed = yield from self._delete_l2(l2_key)
            return in_l1 or removed
        finally:
            if tiers.write_finished(key, deleted=True, l2_written=removed):
                self.l1.delete(key)  # a concurrent put may have stored it meanwhile

    def get_many(self, keys: Iterable[Hashable]) -> Flow[dict[Hashable, Any]]:
        """Hits from L1, the rest with one MGET; L2 hits fill L1."""
        tiers = self.tiers
        l2_key_of = {key: tiers.l2_key(key) for key in list(keys)}  # validates every key first
        wanted = list(l2_key_of)
        l2_keys = list(l2_key_of.values())
        found = yield from L1GetMany(wanted)
        missing = [(key, l2_key) for key, l2_key in zip(wanted, l2_keys, strict=True) if key not in found]
        if not missing:
            return found
        if tiers.clear_pending:
            if not tiers.l2_allowed():
                return found
            yield from self._clear_l2(allowed=True)
            if tiers.clear_pending:
                return found
        # Keys whose L2 copy may be stale are misses here (a single get repairs them), and so
        # are keys on a node whose breaker is open (a cluster's other nodes still answer).
        missing = [(key, l2_key) for key, l2_key in missing if not tiers.is_unsynced(l2_key)]
        allowed = tiers.l2_allowed_many([l2_key for _, l2_key in missing])
        missing = [pair for pair, ok in zip(missing, allowed, strict=True) if ok]
        if not missing:
            return found
        # The whole batch at once: one lock round per bookkeeping step, one L1 fill.
        keys = [key for key, _ in missing]
        asked = [l2_key for _, l2_key in missing]
        tokens = tiers.reads_started(keys)
        sent_at = tiers.now()
        try:
            replies = yield from L2GetMany(asked)
        except PartialBackendError as exc:  # some nodes of a cluster failed: the rest answered
            replies = cast("list[Stored | None]", exc.results)
            tiers.l2_batch_finished(asked, exc)
        except BackendError as exc:
            tiers.l2_batch_finished(asked, exc)
            return found
        else:
            tiers.l2_batch_finished(asked)
        opened = [None if stored is None else tiers.open_stored(stored) for stored in replies]
        replies = [None if item is None or item[1] else item[0] for item in opened]  # stale copies: misses
        values = tiers.decode_many([None if stored is None else stored[0] for stored in replies])
        tiers.reads_finished(values)
        hits = [
            (key, value, stored[1], token)
            for key, value, stored, token in zip(keys, values, replies, tokens, strict=True)
            if value is not MISSING and stored is not None
        ]
        if not hits:
            return found
        ttls = tiers.fill_ttls([remaining for _, _, remaining, _ in hits], sent_at)
        fills = [(key, value, ttl, token) for (key, value, _, token), ttl in zip(hits, ttls, strict=True)]
        found.update((key, value) for key, value, _, _ in hits)
        fills = [fill for fill in fills if fill[2] is not None]
        allowed = tiers.may_fill_many([key for key, _, _, _ in fills], [token for _, _, _, token in fills])
        fills = [fill for fill, ok in zip(fills, allowed, strict=True) if ok]
        if fills:
            yield from L1PutEntries([(key, value, ttl) for key, value, ttl, _ in fills])
            # Raced after the check: the racer may have missed these copies.
            raced = tiers.raced([key for key, _, _, _ in fills], [token for _, _, _, token in fills])
            if raced:
                yield from L1DeleteMany(raced)
        return found

    def put_many(
        self, items: Sequence[tuple[Hashable, Any]], ttl: float | None, *, tags: tuple[str, ...] = ()
    ) -> Flow[int]:
        """Write-through of many pairs with one pipeline; returns how many L1 took.

        If a value cannot be stored as it is, :class:`SerializationError` (naming how
        many) is raised before anything is written.
        """
        tiers = self.tiers
        l1_ttl, ttl_ms = tiers.ttls(ttl)
        pairs = [(key, tiers.l2_key(key), value) for key, value in items]
        if tiers.fail_safe_used:  # copies older than these values must not be served
            yield from L1DeleteMany([FailSafeKey(key) for key, _, _ in pairs])
        if not tiers.l2_enabled:
            _refuse_unstorable(tiers.check, [value for _, _, value in pairs])
            tiers.tagged(tags, [key for key, _, _ in pairs])
            return (yield from L1PutMany([(key, value) for key, _, value in pairs], l1_ttl))
        encoded = [
            (l2_key, data)
            for (_, l2_key, _), data in zip(
                pairs, _refuse_unstorable(tiers.encode, [value for _, _, value in pairs]), strict=True
            )
        ]
        tiers.tagged(tags, [key for key, _, _ in pairs])
        for key, _, _ in pairs:
            tiers.write_started(key)
        try:
            stored = 0
            if tiers.l1_usable:
                stored = yield from L1PutMany([(key, value) for key, _, value in pairs], l1_ttl)
            if not tiers.l1_usable:  # down, or went down meanwhile: L1 takes nothing
                yield from L1DeleteMany([key for key, _, _ in pairs])
                stored = 0
            if encoded:
                yield from self._set_many_l2(encoded, ttl_ms, tiers.tag_keys(tags))
            return stored
        finally:
            overlapped = [key for key, _, _ in pairs if tiers.write_finished(key)]
            for key in overlapped:  # not a step: see the module docstring
                self.l1.delete(key)

    def clear(self) -> Flow[int]:
        """Empty L1 and delete this cache's namespace from L2 (never FLUSHDB)."""
        yield from L1Clear()
        return (yield from self._clear_l2())

    def _clear_l2(self, *, allowed: bool = False) -> Flow[int]:
        # A clear that fails leaves every L2 copy stale: L2 reads wait until a retry succeeds.
        # ``allowed``: the caller already has the breaker's permission for this call.
        tiers = self.tiers
        if not tiers.l2_enabled:
            return 0
        if not allowed:
            try:
                allowed = tiers.l2_allowed(write=True)
            except CircuitOpenError:
                tiers.clear_finished(ok=False)
                raise
        if not allowed:
            tiers.clear_finished(ok=False)
            return 0
        try:
            removed = yield from L2Clear(tiers.l2_key.prefix)
        except BackendError as exc:
            tiers.clear_finished(ok=False)
            tiers.l2_failed(exc, write=True)
            return 0
        tiers.l2_succeeded(write=True)
        tiers.clear_finished(ok=True)
        return removed

    def invalidate_tags(self, tags: tuple[str, ...]) -> Flow[int]:
        """Remove every entry carrying one of ``tags`` from L1 and L2; the other processes are told.

        Returns how many entries were removed (from this process's L1 or from Redis). If
        Redis refuses, this process's L1 is cleaned and the Redis half is retried by the repair.
        """
        tiers = self.tiers
        local = set()
        for key in tiers.untag(tags):
            if (yield from L1Delete(key)) and not isinstance(key, FailSafeKey):
                local.add(key)
        if not tiers.l2_enabled or not tags:
            return len(local)
        try:
            allowed = tiers.l2_allowed(write=True)
        except CircuitOpenError:
            tiers.tags_failed(tags)
            raise
        if not allowed:
            tiers.tags_failed(tags)
            return len(local)
        try:
            removed = yield from L2InvalidateTags(tiers.tag_keys(tags))
        except BackendError as exc:
            tiers.tags_failed(tags)
            tiers.l2_failed(exc, write=True)
            return len(local)
        tiers.l2_succeeded(write=True)
        keys = tiers.remote_invalidated(removed)  # reads in flight do not fill these
        yield from L1DeleteMany(keys)
        tiers.mark_synced(removed)  # announced: every other process drops them
        return len(local | {key for key in keys if not isinstance(key, FailSafeKey)})

    def repair(self, limit: int = 500) -> Flow[int]:
        """Outage repair, without waiting for reads: retry a failed clear, then delete the L2
        copies of up to ``limit`` unsynced keys (the tier core announces them). Returns how many."""
        tiers = self.tiers
        if not tiers.has_unsynced():
            return 0
        try:
            if not tiers.l2_allowed(write=True):
                return 0
        except CircuitOpenError:
            return 0
        if tiers.clear_pending:
            yield from self._clear_l2(allowed=True)
            return 0
        pending_tags = tiers.take_pending_tags()
        if pending_tags:
            try:
                removed = yield from L2InvalidateTags(tiers.tag_keys(pending_tags))
            except BackendError as exc:
                tiers.tags_failed(pending_tags)
                tiers.l2_failed(exc, write=True)
                return 0
            tiers.l2_succeeded(write=True)
            yield from L1DeleteMany(tiers.remote_invalidated(removed))
            tiers.mark_synced(removed)
            return len(pending_tags)
        marks = tiers.unsynced_batch(limit)
        if not marks:
            return 0
        try:
            yield from L2DeleteMany([l2_key for l2_key, _ in marks])
        except BackendError as exc:
            tiers.l2_failed(exc, write=True)
            return 0
        tiers.l2_succeeded(write=True)
        tiers.repaired(marks)
        return len(marks)

    def _store(self, key: Hashable, value: Any, ttl: float | None) -> Flow[bool]:
        """Put in L1 while L1 may take copies (see :mod:`otel_cache.core.coherence`)."""
        tiers = self.tiers
        if not tiers.l1_usable:
            yield from L1Delete(key)
            return False
        stored = yield from L1Put(key, value, ttl)
        if not tiers.l1_usable:  # the channel went down meanwhile; its flush may have run
            yield from L1Delete(key)
            return False
        return stored

    def _fill(self, key: Hashable, value: Any, ttl: float | None, token: int) -> Flow[None]:
        """Fill L1 after an L2 hit, unless a write or an invalidation of the key raced with the read."""
        tiers = self.tiers
        if ttl is None or not tiers.may_fill(key, token):
            return
        yield from L1Put(key, value, ttl)
        if not tiers.still_fillable(key, token):  # raced after the check: the racer may have missed it
            yield from L1Delete(key)

    def _l2_writable(self, l2_key: str) -> bool:
        """Whether to write ``l2_key`` to L2 now; if not, its L2 copy may be stale from here on."""
        tiers = self.tiers
        try:
            allowed = tiers.l2_allowed(l2_key, write=True)
        except CircuitOpenError:  # policy "raise"
            tiers.mark_unsynced((l2_key,))
            raise
        if not allowed:
            tiers.mark_unsynced((l2_key,))
        return allowed

    def _set_many_l2(
        self, encoded: list[tuple[str, bytes]], ttl_ms: int | None, tag_keys: list[str]
    ) -> Flow[None]:
        """Write the pairs whose node's breaker allows it (the others' L2 copies may be stale
        from here on); a cluster node that fails loses only its own share."""
        tiers = self.tiers
        try:
            allowed = tiers.l2_allowed_many([l2_key for l2_key, _ in encoded], write=True)
        except CircuitOpenError:  # policy "raise"
            tiers.mark_unsynced([l2_key for l2_key, _ in encoded])
            raise
        tiers.mark_unsynced([l2_key for (l2_key, _), ok in zip(encoded, allowed, strict=True) if not ok])
        encoded = [pair for pair, ok in zip(encoded, allowed, strict=True) if ok]
        if not encoded:
            return
        written = [l2_key for l2_key, _ in encoded]
        try:
            yield from L2SetMany(encoded, ttl_ms, tag_keys)
        except BackendError as exc:
            failed = exc.failed_keys if isinstance(exc, PartialBackendError) else written
            tiers.mark_unsynced(failed)
            lost = set(failed)
            written = [l2_key for l2_key in written if l2_key not in lost]
            tiers.mark_synced(written)
            tiers.count_l2_writes(len(written))
            tiers.l2_batch_finished([l2_key for l2_key, _ in encoded], exc, write=True)
            return
        tiers.l2_batch_finished(written, write=True)
        tiers.mark_synced(written)
        tiers.count_l2_writes(len(written))

    def _delete_l2(self, l2_key: str, *, repair: bool = False) -> Flow[bool]:
        # ``repair``: a read found the key unsynced, and has the breaker's permission already.
        tiers = self.tiers
        if not repair and not self._l2_writable(l2_key):
            return False
        try:
            removed = yield from L2Delete(l2_key)
        except BackendError as exc:
            tiers.l2_write_failed((l2_key,), exc, l2_key)
            return False
        tiers.l2_succeeded(l2_key, write=True)
        tiers.mark_synced((l2_key,), repaired=repair)
        return bool(removed)


def _refuse_unstorable(encode: Callable[[Any], _T], values: list[Any]) -> list[_T]:
    """``encode`` of each value, or one :class:`SerializationError` if any is refused."""
    results: list[_T] = []
    refused: list[SerializationError] = []
    for value in values:
        try:
            results.append(encode(value))
        except SerializationError as exc:
            refused.append(exc)
    if refused:
        raise SerializationError(f"{len(refused)} of {len(values)} value(s) cannot be stored: {refused[0]}")
    return results
