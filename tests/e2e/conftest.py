"""Fixtures of the end-to-end tests: the processes they start, and the clients they open."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from otel_cache_demo.runner import ChildProcess


@pytest.fixture
def closers() -> Iterator[list[Callable[[], None]]]:
    """Clients to close at the end (an unclosed socket is an unraisable warning, an error here)."""
    found: list[Callable[[], None]] = []
    try:
        yield found
    finally:
        for close in reversed(found):
            close()


@pytest.fixture
def children() -> Iterator[list[ChildProcess]]:
    started: list[ChildProcess] = []
    try:
        yield started
    finally:
        for child in reversed(started):
            child.stop()
        assert not [child.name for child in started if child.running]
