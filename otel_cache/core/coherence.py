"""Coherence between processes: the invalidation messages and what a process does with them.

Every process on one Redis, database and namespace subscribes to one pub/sub
channel, ``{namespace}:__invalidate__`` (``:{db}`` appended for a database other
than 0). After its write, delete or clear reached Redis, a process announces the
L2 keys; the others drop their L1 copies and read Redis next time::

    process A                       Redis                         process B
    put(k, v2) ─ SET k ──────────>  k = v2
               └ announce(k) ─ PUBLISH {src: A, ts, keys: [k]} ─>  listener: not from B?
                                                                  ─ L1.delete(k), fill guard bumped
    (A's listener skips its own message: a process never evicts its own fresh write)

Why pub/sub rather than client tracking (``CLIENT TRACKING ... BCAST``): it runs on
Redis 7.0 with RESP2 or RESP3 and in both redis-py clients (redis.asyncio has no
tracking support), it carries what tracking cannot (the sender, so a process skips
its own writes; the send time, for the propagation lag; a flush for ``clear``), and
on a cluster one sharded channel (``SSUBSCRIBE``, one slot) replaces one tracking
connection per primary. Its limit: a write that does not go through this cache
(another program's ``SET``) is not announced; the L1 TTL bounds such copies.

The rules a process keeps:

- **Batches.** Writes append their keys to a pending queue; one publisher drains
  it, so a burst of writes becomes a few messages (at most ``max_batch`` keys each).
  The first write after a quiet spell is published at once; after that, messages
  are at least ``message_gap`` apart (:meth:`Coherence.send_delay`), so a stream of
  writes shares messages and the publishing costs less the more writes there are.
  Keys that could not be published (Redis down) are sent again once it is back;
  past ``max_pending`` keys they are replaced by a flush, counted.
- **Copies only while listening.** L1 copies are made and served only while the
  channel is up. Until the first subscription, and from a loss until the
  resubscription, L1 is empty and takes nothing (:attr:`Coherence.up` is false): the
  listener clears L1 when it notices the loss (counted as an L1 flush), and the fill
  guard refuses the fills of reads that started before.
- **Garbage is ignored.** A message that does not decode, or comes from a newer
  protocol version, is counted and dropped; it never stops the listener.

The wire format is JSON: ``{"v": 1, "src": id, "ts": unix seconds, "keys": [...],
"flush": bool}``. Counters are plain integers on the listener's and publisher's
paths, never on an L1 hit.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import uuid
from collections import deque
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["PROTOCOL_VERSION", "Coherence", "CoherenceStats", "Invalidation", "channel_name", "instance_id"]

PROTOCOL_VERSION = 1
MAX_BATCH = 1_000
MAX_PENDING = 100_000
MESSAGE_GAP_S = 0.002


def channel_name(namespace: str, db: int = 0) -> str:
    """The invalidation channel of a namespace in database ``db`` (a channel is not a key:
    ``clear`` leaves it). Pub/sub ignores databases, so the number is part of the name."""
    return f"{namespace}:__invalidate__" if db == 0 else f"{namespace}:__invalidate__:{db}"


def instance_id() -> str:
    """An id for one cache in one process: host, pid and a random part."""
    return f"{platform.node()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True, slots=True)
class Invalidation:
    """One message: these L2 keys changed (or, ``flush``, the whole namespace did)."""

    source: str
    sent_at: float
    keys: tuple[str, ...] = ()
    flush: bool = False

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "v": PROTOCOL_VERSION,
                "src": self.source,
                "ts": self.sent_at,
                "keys": self.keys,
                "flush": self.flush,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> Invalidation | str:
        """The message in ``data``, or why it is ignored: ``"garbage"`` or ``"version"``."""
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            return "garbage"
        if not isinstance(body, dict):
            return "garbage"
        version = body.get("v")
        if isinstance(version, int) and not isinstance(version, bool) and version > PROTOCOL_VERSION:
            return "version"
        source, sent_at, keys, flush = body.get("src"), body.get("ts"), body.get("keys"), body.get("flush")
        if (
            version != PROTOCOL_VERSION
            or not isinstance(source, str)
            or not isinstance(sent_at, int | float)
            or isinstance(sent_at, bool)
            or not isinstance(keys, list)
            or not all(isinstance(key, str) for key in keys)
            or not isinstance(flush, bool)
        ):
            return "garbage"
        return cls(source, float(sent_at), tuple(keys), flush)


@dataclass(frozen=True, slots=True)
class CoherenceStats:
    """Counters of the invalidation channel of one cache."""

    enabled: bool
    up: bool
    sent_messages: int
    sent_keys: int
    received_messages: int
    received_keys: int
    own_skipped: int  # this cache's own messages, come back and skipped
    ignored: dict[str, int]
    l1_flushes: int
    channel_losses: int
    pending: int
    pending_dropped: int


class Coherence:
    """The state of one cache's invalidation channel; the listener and publisher drive it.

    ``lock`` guards the counters (injected: the core imports no threading). Appends
    to the pending queue take no lock: ``deque.append`` and ``popleft`` are atomic.
    """

    def __init__(
        self,
        *,
        source: str | None = None,
        lock: AbstractContextManager[Any] | None = None,
        max_batch: int = MAX_BATCH,
        max_pending: int = MAX_PENDING,
        message_gap: float = MESSAGE_GAP_S,
    ) -> None:
        self.source = source or instance_id()
        self.up = False
        self._lock: AbstractContextManager[Any] = lock or contextlib.nullcontext()
        self._pending: deque[str] = deque()
        self._flush_pending = False
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._message_gap = message_gap
        self._last_sent_at = -math.inf  # the publisher's clock (monotonic) at its latest message
        self.wake: Any = None  # set by the publisher: called after keys are queued
        self.sent_messages = self.sent_keys = self.received_messages = self.received_keys = 0
        self.l1_flushes = self.channel_losses = self.pending_dropped = self.own_skipped = 0
        self.ignored: dict[str, int] = {}
        self.lags: deque[float] = deque(maxlen=10_000)  # seconds from send to receipt, latest

    # -- sending -----------------------------------------------------------------------

    def announce(self, l2_keys: Iterable[str]) -> None:
        """These keys' new state reached Redis: tell the other processes (soon, batched)."""
        self._pending.extend(l2_keys)
        if len(self._pending) > self._max_pending:
            with self._lock:
                self.pending_dropped += len(self._pending)
            self._pending.clear()
            self._flush_pending = True
        wake = self.wake
        if wake is not None:
            wake()

    def announce_flush(self) -> None:
        """The namespace was cleared: every other process drops all its L1 copies."""
        self._flush_pending = True
        self._pending.clear()
        wake = self.wake
        if wake is not None:
            wake()

    def kick(self) -> None:
        """Wake the publisher: keys became unsynced, a repair is due once Redis answers."""
        wake = self.wake
        if wake is not None:
            wake()

    def has_pending(self) -> bool:
        return self._flush_pending or bool(self._pending)

    def take_batch(self, now: float) -> Invalidation | None:
        """The next message to publish, or None when nothing is pending."""
        if self._flush_pending:
            self._flush_pending = False
            self._pending.clear()
            return Invalidation(self.source, now, flush=True)
        pending = self._pending
        keys: list[str] = []
        with contextlib.suppress(IndexError):  # drained by another taker meanwhile
            while pending and len(keys) < self._max_batch:
                keys.append(pending.popleft())
        if not keys:
            return None
        return Invalidation(self.source, now, tuple(dict.fromkeys(keys)))

    def send_delay(self, now: float) -> float:
        """Seconds the publisher waits before its next message: 0 after a quiet spell.

        ``now`` is the publisher's monotonic clock, as given to :meth:`sent`.
        """
        return max(0.0, self._last_sent_at + self._message_gap - now)

    def sent(self, message: Invalidation, now: float) -> None:
        """``message`` was published at ``now`` (the publisher's monotonic clock)."""
        self._last_sent_at = now
        with self._lock:
            self.sent_messages += 1
            self.sent_keys += len(message.keys)

    def unsent(self, message: Invalidation) -> None:
        """Publishing ``message`` failed: queue it again (front), to send once Redis is back."""
        if message.flush:
            self._flush_pending = True
        else:
            self._pending.extendleft(reversed(message.keys))

    # -- receiving ---------------------------------------------------------------------

    def receive(self, data: bytes) -> Invalidation | None:
        """The message to apply, or None (our own, or ignored and counted)."""
        message = Invalidation.decode(data)
        with self._lock:
            if isinstance(message, str):
                self.ignored[message] = self.ignored.get(message, 0) + 1
                return None
            if message.source == self.source:
                self.own_skipped += 1
                return None
            self.received_messages += 1
            self.received_keys += len(message.keys)
        return message

    # -- the channel's state -------------------------------------------------------------

    def channel_up(self) -> None:
        self.up = True

    def channel_down(self) -> bool:
        """The channel is lost: True if it was up (the caller flushes L1, counted here)."""
        with self._lock:
            was_up, self.up = self.up, False
            if was_up:
                self.channel_losses += 1
                self.l1_flushes += 1
        return was_up

    def stats(self, *, enabled: bool = True) -> CoherenceStats:
        with self._lock:
            return CoherenceStats(
                enabled=enabled,
                up=self.up,
                sent_messages=self.sent_messages,
                sent_keys=self.sent_keys,
                received_messages=self.received_messages,
                received_keys=self.received_keys,
                own_skipped=self.own_skipped,
                ignored=dict(self.ignored),
                l1_flushes=self.l1_flushes,
                channel_losses=self.channel_losses,
                pending=len(self._pending),
                pending_dropped=self.pending_dropped,
            )
