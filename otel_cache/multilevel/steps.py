"""The steps a flow yields: typed L2 calls, L1 calls that may wait for the lock, the load.

A flow (:mod:`otel_cache.multilevel.flows`) never calls Redis, and never calls an L1
method that may wait for the L1 lock: it yields a step, and its driver runs it. The
sync driver runs ``step.run(...)``, the async driver awaits ``step.arun(...)``, so
the async API waits for the lock through ``AsyncLRUCache``'s async path and never
blocks the event loop on it. Each step is an iterable that yields itself once and
returns its typed result, so a flow writes ``stored = yield from L2Get(key)``.

L1 reads that never wait (``AsyncLRUCache.peek``) are plain calls in the flows.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar

from otel_cache.backends.protocol import AsyncBackend, Stored, SyncBackend
from otel_cache.l1.cache import AsyncLRUCache

__all__ = [
    "Flow",
    "L1Clear",
    "L1Delete",
    "L1DeleteMany",
    "L1GetMany",
    "L1Put",
    "L1PutEntries",
    "L1PutMany",
    "L1Step",
    "L2Clear",
    "L2Delete",
    "L2DeleteMany",
    "L2Get",
    "L2GetMany",
    "L2InvalidateTags",
    "L2Set",
    "L2SetMany",
    "L2Step",
    "Load",
    "Step",
]

T = TypeVar("T")
L1: TypeAlias = AsyncLRUCache[Any, Any]


class Step(Generic[T]):
    """One thing a flow needs done by its driver; ``yield from step`` gives its result."""

    __slots__ = ()

    def __iter__(self) -> Generator[Step[Any], Any, T]:
        result: T = yield self
        return result


Flow: TypeAlias = Generator[Step[Any], Any, T]
"""An operation: yields steps, returns its result."""


class L2Step(Step[T]):
    """A call of the L2 backend; ``op`` names it in spans and metrics."""

    __slots__ = ()
    op: ClassVar[str]

    def routed_key(self) -> str | None:
        """The one L2 key the call touches (its node names it in telemetry); None for a batch."""
        return None

    def run(self, backend: SyncBackend) -> T:
        raise NotImplementedError

    async def arun(self, backend: AsyncBackend) -> T:
        raise NotImplementedError


class L1Step(Step[T]):
    """A call of L1 that takes its lock (and so may wait for it)."""

    __slots__ = ()

    def run(self, l1: L1) -> T:
        raise NotImplementedError

    async def arun(self, l1: L1) -> T:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Load(Step[Any]):
    """Call the caller's loader (awaited if it returns an awaitable, in the async API).

    With ``timeout``, the caller waits that long at most and gets :class:`LoadTimeoutError`
    thrown into the flow; the load goes on and ``late(value)``, a flow, stores what it
    returns when it ends (a sync loader then runs in a thread of the cache's).
    """

    key: Hashable
    loader: Callable[[], Any]
    timeout: float | None = None
    late: Callable[[Any], Flow[Any]] | None = None


# -- L2 ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class L2Get(L2Step[Stored | None]):
    key: str
    op: ClassVar[str] = "get"

    def routed_key(self) -> str | None:
        return self.key

    def run(self, backend: SyncBackend) -> Stored | None:
        return backend.get(self.key)

    async def arun(self, backend: AsyncBackend) -> Stored | None:
        return await backend.get(self.key)


@dataclass(frozen=True, slots=True)
class L2GetMany(L2Step[list[Stored | None]]):
    keys: Sequence[str]
    op: ClassVar[str] = "get_many"

    def run(self, backend: SyncBackend) -> list[Stored | None]:
        return backend.get_many(self.keys)

    async def arun(self, backend: AsyncBackend) -> list[Stored | None]:
        return await backend.get_many(self.keys)


@dataclass(frozen=True, slots=True)
class L2Set(L2Step[None]):
    key: str
    data: bytes
    ttl_ms: int | None
    tag_keys: Sequence[str] = ()
    op: ClassVar[str] = "set"

    def routed_key(self) -> str | None:
        return self.key

    def run(self, backend: SyncBackend) -> None:
        backend.set(self.key, self.data, self.ttl_ms, self.tag_keys)

    async def arun(self, backend: AsyncBackend) -> None:
        await backend.set(self.key, self.data, self.ttl_ms, self.tag_keys)


@dataclass(frozen=True, slots=True)
class L2SetMany(L2Step[None]):
    items: Sequence[tuple[str, bytes]]
    ttl_ms: int | None
    tag_keys: Sequence[str] = ()
    op: ClassVar[str] = "set_many"

    def run(self, backend: SyncBackend) -> None:
        backend.set_many(self.items, self.ttl_ms, self.tag_keys)

    async def arun(self, backend: AsyncBackend) -> None:
        await backend.set_many(self.items, self.ttl_ms, self.tag_keys)


@dataclass(frozen=True, slots=True)
class L2Delete(L2Step[bool]):
    key: str
    op: ClassVar[str] = "delete"

    def routed_key(self) -> str | None:
        return self.key

    def run(self, backend: SyncBackend) -> bool:
        return backend.delete(self.key)

    async def arun(self, backend: AsyncBackend) -> bool:
        return await backend.delete(self.key)


@dataclass(frozen=True, slots=True)
class L2DeleteMany(L2Step[int]):
    keys: Sequence[str]
    op: ClassVar[str] = "delete_many"

    def run(self, backend: SyncBackend) -> int:
        return backend.delete_many(self.keys)

    async def arun(self, backend: AsyncBackend) -> int:
        return await backend.delete_many(self.keys)


@dataclass(frozen=True, slots=True)
class L2InvalidateTags(L2Step[list[str]]):
    tag_keys: Sequence[str]
    op: ClassVar[str] = "invalidate_tags"

    def run(self, backend: SyncBackend) -> list[str]:
        return backend.invalidate_tags(self.tag_keys)

    async def arun(self, backend: AsyncBackend) -> list[str]:
        return await backend.invalidate_tags(self.tag_keys)


@dataclass(frozen=True, slots=True)
class L2Clear(L2Step[int]):
    prefix: str
    op: ClassVar[str] = "clear"

    def run(self, backend: SyncBackend) -> int:
        return backend.clear(self.prefix)

    async def arun(self, backend: AsyncBackend) -> int:
        return await backend.clear(self.prefix)


# -- L1 ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class L1Put(L1Step[bool]):
    key: Hashable
    value: Any
    ttl: float | None

    def run(self, l1: L1) -> bool:
        return l1.put(self.key, self.value, self.ttl)

    async def arun(self, l1: L1) -> bool:
        return await l1.aput(self.key, self.value, self.ttl)


@dataclass(frozen=True, slots=True)
class L1PutMany(L1Step[int]):
    items: Sequence[tuple[Hashable, Any]]
    ttl: float | None

    def run(self, l1: L1) -> int:
        return l1.put_many(self.items, self.ttl)

    async def arun(self, l1: L1) -> int:
        return await l1.aput_many(self.items, self.ttl)


@dataclass(frozen=True, slots=True)
class L1PutEntries(L1Step[int]):
    """Store (key, value, ttl) triples, each with its own TTL (the fills of a batch read)."""

    entries: Sequence[tuple[Hashable, Any, float | None]]

    def run(self, l1: L1) -> int:
        return l1.put_entries(self.entries)

    async def arun(self, l1: L1) -> int:
        return await l1.aput_entries(self.entries)


@dataclass(frozen=True, slots=True)
class L1GetMany(L1Step[dict[Hashable, Any]]):
    keys: Sequence[Hashable]

    def run(self, l1: L1) -> dict[Hashable, Any]:
        return l1.get_many(self.keys)

    async def arun(self, l1: L1) -> dict[Hashable, Any]:
        return await l1.aget_many(self.keys)


@dataclass(frozen=True, slots=True)
class L1Delete(L1Step[bool]):
    key: Hashable

    def run(self, l1: L1) -> bool:
        return l1.delete(self.key)

    async def arun(self, l1: L1) -> bool:
        return await l1.adelete(self.key)


@dataclass(frozen=True, slots=True)
class L1DeleteMany(L1Step[int]):
    """Delete each key; how many were there (one lock round per key, never one long hold)."""

    keys: Iterable[Hashable]

    def run(self, l1: L1) -> int:
        return sum(l1.delete(key) for key in self.keys)

    async def arun(self, l1: L1) -> int:
        removed = 0
        for key in self.keys:
            removed += await l1.adelete(key)
        return removed


@dataclass(frozen=True, slots=True)
class L1Clear(L1Step[None]):
    def run(self, l1: L1) -> None:
        l1.clear()

    async def arun(self, l1: L1) -> None:
        await l1.aclear()
