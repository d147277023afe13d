"""The seam between caches and OpenTelemetry; imports no OpenTelemetry.

Caches and warmers *register* here when they are created (a weak reference: a
registered cache can still be garbage collected). Instrumentation *installs* a
:class:`Handler` here. The caches then ask :func:`current` on their slow paths
only (an L2 call, a load, a contended lock wait, a warmer run): an L1 hit never
comes here; its counters are read by observable instruments at collection time.

::

    MultiLevelCache.__init__ ──register──> _registered (WeakSet) <──reads── observable callbacks
    L2 call / load / warmer run ──current()──> Handler (CacheTelemetry) ──> spans, histograms
    OtelCacheInstrumentor.instrument() ──install──> Handler; uninstrument() ──uninstall──
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

__all__ = ["Handler", "current", "install", "isolated_registry", "register", "registered", "uninstall"]


class Handler(Protocol):
    """What instrumentation provides to the caches."""

    def attach(self, item: Any) -> None:
        """Start observing a registered cache or warmer (lock-wait listeners...)."""

    def detach(self, item: Any) -> None:
        """Stop observing it."""

    def invalidation_received(self, cache: Any, lag: float, keys: int, flush: bool) -> None:
        """Another process's invalidation was applied, ``lag`` seconds after it was sent."""

    def fail_safe_served(self, cache: Any, error: BaseException) -> None:
        """A fail-safe copy answered a ``get_or_set`` whose load raised ``error``."""

    def load_timed_out(self, cache: Any, kind: str) -> None:
        """A ``get_or_set`` caller stopped waiting for a load (``soft``, ``hard``, ``waiter``)."""

    def l2_call(self, cache: Any, operation: str, node: str | None = None) -> AbstractContextManager[Any]:
        """Around one L2 backend call: a span and the operation-duration histogram."""

    def load(self, cache: Any, key: Hashable) -> AbstractContextManager[Any]:
        """Around a single-flight leader's loader call."""

    def load_wait(self, cache: Any, key: Hashable) -> AbstractContextManager[Any]:
        """Around a waiter's wait for another caller's load."""

    def warmer_run_started(self, warmer: Any) -> Any:
        """A warmer run began; returns a token for :meth:`warmer_run_finished`."""

    def warmer_run_finished(self, warmer: Any, token: Any, duration: float, failures: int) -> None:
        """The run ended."""


_lock = threading.Lock()
_registered: weakref.WeakSet[Any] = weakref.WeakSet()
_current: Handler | None = None


def register(item: Any) -> None:
    """Make ``item`` (a cache or a warmer) visible to instrumentation, now and later."""
    with _lock:
        _registered.add(item)
        handler = _current
    if handler is not None:
        handler.attach(item)


def registered() -> list[Any]:
    """The live registered caches and warmers."""
    with _lock:
        return list(_registered)


@contextmanager
def isolated_registry() -> Iterator[None]:
    """A fresh, empty registry for the block (for tests); the previous one comes back after.

    Items registered inside the block are forgotten when it ends; items registered
    before it are invisible inside it, even if something still holds them alive.
    """
    global _registered
    with _lock:
        previous, _registered = _registered, weakref.WeakSet()
    try:
        yield
    finally:
        with _lock:
            _registered = previous


def current() -> Handler | None:
    """The installed handler, or None when otel_cache is not instrumented."""
    return _current


def install(handler: Handler) -> None:
    """Make ``handler`` the instrumentation of every registered and future item."""
    global _current
    with _lock:
        previous, _current = _current, handler
        items = list(_registered)
    for item in items:
        if previous is not None:
            previous.detach(item)
        handler.attach(item)


def uninstall() -> Handler | None:
    """Remove the installed handler; return it."""
    global _current
    with _lock:
        handler, _current = _current, None
        items = list(_registered)
    if handler is not None:
        for item in items:
            handler.detach(item)
    return handler
