"""The pure side of cross-process invalidation: the wire format, batching, the channel's state."""

from __future__ import annotations

import pytest

from otel_cache.core.coherence import PROTOCOL_VERSION, Coherence, Invalidation, channel_name
from otel_cache.core.keys import L2KeyBuilder, parse_key, render_key
from otel_cache.errors import CacheKeyError


def test_a_message_round_trips() -> None:
    message = Invalidation("a:1:x", 12.5, ("ns:k", "ns:\x1f[]"), flush=False)
    assert Invalidation.decode(message.encode()) == message
    flush = Invalidation("a:1:x", 1.0, flush=True)
    assert Invalidation.decode(flush.encode()) == flush


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe", "garbage"),
        (b"[1, 2]", "garbage"),
        (b'{"v": 1, "src": 3, "ts": 0, "keys": [], "flush": false}', "garbage"),
        (b'{"v": 1, "src": "s", "ts": true, "keys": [], "flush": false}', "garbage"),
        (b'{"v": 1, "src": "s", "ts": 0, "keys": [1], "flush": false}', "garbage"),
        (b'{"v": 1, "src": "s", "ts": 0, "keys": []}', "garbage"),
        (b'{"v": 0, "src": "s", "ts": 0, "keys": [], "flush": false}', "garbage"),
        (b'{"v": %d, "src": "s", "ts": 0, "keys": [], "flush": false}' % (PROTOCOL_VERSION + 1), "version"),
    ],
)
def test_what_does_not_decode_says_why(data: bytes, reason: str) -> None:
    assert Invalidation.decode(data) == reason


def test_receive_skips_its_own_messages_and_counts_what_it_ignores() -> None:
    coherence = Coherence(source="me")
    assert coherence.receive(Invalidation("me", 0.0, ("k",)).encode()) is None
    assert coherence.receive(b"nonsense") is None
    other = coherence.receive(Invalidation("other", 0.0, ("k", "j")).encode())
    assert other is not None
    assert other.keys == ("k", "j")
    stats = coherence.stats()
    assert (stats.received_messages, stats.received_keys, stats.ignored) == (1, 2, {"garbage": 1})
    assert stats.own_skipped == 1


def test_announced_keys_leave_in_batches_of_at_most_max_batch() -> None:
    coherence = Coherence(source="me", max_batch=3)
    woken: list[int] = []
    coherence.wake = lambda: woken.append(1)
    coherence.announce(["a", "b", "a", "c", "d"])
    first = coherence.take_batch(1.0)
    second = coherence.take_batch(2.0)
    assert first is not None
    assert second is not None
    assert first.keys == ("a", "b")  # a batch names each key once
    assert second.keys == ("c", "d")
    assert coherence.take_batch(3.0) is None
    assert woken == [1]


def test_the_first_message_after_a_quiet_spell_goes_at_once_then_they_keep_a_gap() -> None:
    coherence = Coherence(source="me", message_gap=0.002)
    assert coherence.send_delay(100.0) == 0.0, "nothing sent yet"
    coherence.announce(["a"])
    message = coherence.take_batch(1.0)
    assert message is not None
    coherence.sent(message, 100.0)
    assert coherence.send_delay(100.0) == pytest.approx(0.002)
    assert coherence.send_delay(100.0015) == pytest.approx(0.0005)
    assert coherence.send_delay(100.002) == 0.0
    assert coherence.send_delay(105.0) == 0.0, "a quiet spell: at once again"


def test_an_unsent_batch_goes_out_first_next_time() -> None:
    coherence = Coherence(source="me")
    coherence.announce(["a", "b"])
    batch = coherence.take_batch(1.0)
    assert batch is not None
    coherence.announce(["c"])
    coherence.unsent(batch)
    again = coherence.take_batch(2.0)
    assert again is not None
    assert again.keys == ("a", "b", "c")


def test_too_many_pending_keys_become_one_flush() -> None:
    coherence = Coherence(source="me", max_pending=3)
    coherence.announce(["a", "b", "c", "d"])
    batch = coherence.take_batch(1.0)
    assert batch is not None
    assert batch.flush
    assert batch.keys == ()
    assert coherence.stats().pending_dropped == 4
    assert coherence.take_batch(2.0) is None


def test_a_lost_channel_counts_one_flush_per_loss() -> None:
    coherence = Coherence(source="me")
    assert not coherence.channel_down()  # never up: nothing to flush
    coherence.channel_up()
    assert coherence.channel_down()
    assert not coherence.channel_down()
    stats = coherence.stats()
    assert (stats.up, stats.channel_losses, stats.l1_flushes) == (False, 1, 1)


def test_the_channel_is_named_after_the_namespace() -> None:
    assert channel_name("svc") == "svc:__invalidate__"
    assert channel_name("svc", 3) == "svc:__invalidate__:3"  # pub/sub ignores databases


@pytest.mark.parametrize(
    "key", ["a", "\x1fx", 0, -7, 1.5, None, b"\x00\xff", ("u", 42, (None, b"x", 2.5)), ()]
)
def test_a_rendered_key_parses_back_to_an_equal_key(key: object) -> None:
    assert parse_key(render_key(key)) == key  # type: ignore[arg-type]


def test_parse_refuses_what_is_not_a_key_of_the_namespace() -> None:
    builder = L2KeyBuilder("ns", 100)
    assert builder.parse(builder(("t", 1))) == ("t", 1)
    with pytest.raises(CacheKeyError):
        builder.parse("other:k")
    with pytest.raises(CacheKeyError):
        builder.parse("ns:\x1f[not json")
