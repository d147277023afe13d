"""Tags: invalidate every entry that carries a tag, in L1, in Redis and in every other process.

::

    put(k, v, tags=["user:42"])    SET ns:k v PX ttl ; SADD ns:\\x1f#tag:user:42 ns:k ;
                                   the tag set's expiry set (NX) or extended (GT) to the entry's
    invalidate_tags(["user:42"])   SMEMBERS the tag set ─> UNLINK the members ; SREM what was read
                                   ─> L1 drops them here; the invalidation channel, everywhere else

Each Redis command names one key (the entry, or one tag set), so tags need no
cross-slot command on a cluster. A tag set lives under ``{namespace}:\\x1f#tag:``,
which no rendered cache key can start with, and ``clear`` removes it with the rest
of the namespace. A set may name keys that expired or were overwritten without the
tag since: invalidating the tag then deletes those too (an extra miss, never a
stale value).

In the process, :class:`TagIndex` remembers which L1 keys carry which tag, so an
L1-only cache (or a write whose Redis half failed) is invalidated as well. It is
bounded: past ``max_keys`` remembered keys, the oldest tags are forgotten (counted)
and their entries then leave L1 only through Redis's tag sets, their TTL or an
invalidation from elsewhere.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from otel_cache.errors import CacheKeyError

__all__ = ["MAX_TAGGED_KEYS", "TagIndex", "tag_names"]

MAX_TAGGED_KEYS = 100_000
TAG_MARK = "\x1f#tag:"


def tag_names(tags: Iterable[str] | str) -> tuple[str, ...]:
    """The tags, validated: non-empty strings (one string is one tag)."""
    names = (tags,) if isinstance(tags, str) else tuple(tags)
    for name in names:
        if not isinstance(name, str) or not name:
            raise CacheKeyError(f"a tag must be a non-empty str, got {name!r}")
    return names


class TagIndex:
    """Which keys of this process carry which tag (not thread-safe: the tier core locks)."""

    def __init__(self, max_keys: int = MAX_TAGGED_KEYS) -> None:
        self._keys: dict[str, set[Hashable]] = {}
        self._size = 0
        self._max_keys = max_keys
        self.forgotten = 0

    def add(self, tags: tuple[str, ...], keys: Iterable[Hashable]) -> None:
        keys = list(keys)
        for tag in tags:
            tagged = self._keys.get(tag)
            if tagged is None:
                tagged = self._keys[tag] = set()
            before = len(tagged)
            tagged.update(keys)
            self._size += len(tagged) - before
        while self._size > self._max_keys and self._keys:
            oldest = next(iter(self._keys))
            dropped = self._keys.pop(oldest)
            self._size -= len(dropped)
            self.forgotten += len(dropped)

    def pop(self, tags: tuple[str, ...]) -> set[Hashable]:
        """The keys carrying any of ``tags``; the tags are forgotten."""
        keys: set[Hashable] = set()
        for tag in tags:
            tagged = self._keys.pop(tag, None)
            if tagged:
                self._size -= len(tagged)
                keys |= tagged
        return keys

    def __len__(self) -> int:
        return self._size
