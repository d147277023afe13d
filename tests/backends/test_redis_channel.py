"""The invalidation channel's connections: closing a cache leaves no socket open."""

from __future__ import annotations

import gc
import os
from pathlib import Path

from otel_cache import MultiLevelCache
from tests.support.config import patient_config


def _sockets() -> int:
    fds = Path(f"/proc/{os.getpid()}/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:  # closed meanwhile
            continue
    return count


def test_closing_caches_whose_listener_is_reading_leaves_no_socket(redis_url: str) -> None:
    """``close()`` interrupts the listener thread's read; redis-py reconnects that read, and the
    listener's own close must disconnect the new socket too (it once leaked one per cache)."""
    config = patient_config(redis_url=redis_url, namespace="channel-close")
    warm: MultiLevelCache[str, int] = MultiLevelCache(config)
    warm.put("k", 0)  # imports and first connections, outside the count
    warm.close()
    gc.collect()
    before = _sockets()
    for n in range(10):
        cache: MultiLevelCache[str, int] = MultiLevelCache(config)
        cache.put("k", n)  # opens the channel: the listener reads until close()
        assert cache.get("k") == n
        cache.close()
    gc.collect()
    assert _sockets() <= before  # other tests' garbage may close sockets meanwhile, never open one
