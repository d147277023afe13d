"""The value's expiry beside its bytes in Redis: written and read back without Redis."""

from __future__ import annotations

from otel_cache.backends.envelope import HEADER_SIZE, unwrap, wrap

NOW = 1_764_000_000_000  # Unix ms


def test_a_value_carries_its_expiry_and_comes_back_with_the_time_left() -> None:
    raw = wrap(b"j[1]", 30_000, NOW)
    assert raw[:1] == b"e"
    assert len(raw) == HEADER_SIZE + 4
    assert unwrap(raw, NOW) == (b"j[1]", 30_000)
    assert unwrap(raw, NOW + 29_999) == (b"j[1]", 1)


def test_without_a_ttl_it_never_expires() -> None:
    assert unwrap(wrap(b"j1", None, NOW), NOW + 10**9) == (b"j1", None)


def test_past_its_expiry_by_the_readers_clock_it_is_served_but_not_copied() -> None:
    assert unwrap(wrap(b"j1", 1_000, NOW), NOW + 5_000) == (b"j1", 0)


def test_the_format_before_the_header_is_served_but_not_copied() -> None:
    for old in (b"j1", b"m\x01", b"p" + bytes(40), b"e", b"e\x00\x01"):  # short: not a header
        assert unwrap(old, NOW) == (old, 0)


def test_a_miss_is_none() -> None:
    assert unwrap(None, NOW) is None
