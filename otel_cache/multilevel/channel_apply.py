"""What a listener does with a message and with a lost channel, for both listeners.

A message from another process drops the named L1 copies (a flush: all of them)
after the tier core has bumped the fill guard, so that a read in flight does not
put an older value back. A lost channel stops L1 from taking copies, then empties
it: from then until the listener is subscribed again, every read goes to Redis.
"""

from __future__ import annotations

import time
from typing import Any

from otel_cache.core.tiers import TierCore
from otel_cache.l1.cache import AsyncLRUCache
from otel_cache.telemetry import hooks

__all__ = ["apply_message", "lose_channel"]


def apply_message(owner: object, tiers: TierCore, l1: AsyncLRUCache[Any, Any], data: bytes) -> None:
    coherence = tiers.coherence
    assert coherence is not None
    message = coherence.receive(data)
    if message is None:
        return
    lag = max(0.0, time.time() - message.sent_at)
    coherence.lags.append(lag)
    if message.flush:
        tiers.remote_flushed()
        l1.clear()
    else:
        for key in tiers.remote_invalidated(message.keys):
            l1.delete(key)
    handler = hooks.current()
    if handler is not None:
        handler.invalidation_received(owner, lag, len(message.keys), message.flush)


def lose_channel(tiers: TierCore, l1: AsyncLRUCache[Any, Any]) -> None:
    if tiers.channel_lost():
        l1.clear()
