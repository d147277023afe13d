"""The data every cache in the L1 benchmark is measured on.

Each cache holds ``CAPACITY`` entries and is full before timing starts:

* a *hit* looks up ``HIT_KEY``, always the same present key (so the LRU move is of
  the youngest entry, as in a hot loop);
* an *update* puts ``VALUE`` again under ``HIT_KEY``;
* an *insert with eviction* puts the next key of ``insert_keys()``, a cycle over
  ``2 * CAPACITY`` keys never put before: each put adds a key and evicts the oldest.
  Drawing the key costs one ``next()`` (the "next(cycle)" row).

Keys are short strings (their hash is cached, as for real cache keys); the value is
a short string, the cheapest case for a cache that measures entry sizes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from otel_cache.l1.cache import AsyncLRUCache

__all__ = ["CAPACITY", "HIT_KEY", "KEYS", "TTL_S", "VALUE", "full_cache", "insert_keys"]

CAPACITY = 1_000
KEYS: tuple[str, ...] = tuple(f"key:{i:06d}" for i in range(CAPACITY))
HIT_KEY = KEYS[CAPACITY // 2]
VALUE = "value:0123456789"
TTL_S = 600.0
"""The default TTL of the "ttl=600" rows: long enough that nothing expires while timing."""


def insert_keys() -> Iterator[str]:
    """An endless cycle of keys none of which is in a cache filled with ``KEYS``."""
    return itertools.cycle([f"new:{i:06d}" for i in range(2 * CAPACITY)])


def full_cache(default_ttl: float | None = None) -> AsyncLRUCache[str, str]:
    """An ``AsyncLRUCache`` with its defaults but these, holding ``VALUE`` under every key of ``KEYS``."""
    cache: AsyncLRUCache[str, str] = AsyncLRUCache(max_entries=CAPACITY, default_ttl=default_ttl)
    for key in KEYS:
        cache.put(key, VALUE)
    return cache
