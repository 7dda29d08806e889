"""streams.frames: messages cut into frames and joined again, whatever the reader's starting point;
signatures that refuse a message not signed with the key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.frames import FrameError, Joiner, frames, seal, unseal

messages = st.lists(st.binary(max_size=300), min_size=1, max_size=8)


@given(messages, st.integers(1, 64))
def test_every_message_joined_once_from_its_frames(data: list[bytes], size: int) -> None:
    joiner = Joiner()
    records = [f for n, d in enumerate(data) for f in frames(n, d, size)]
    assert all(len(f) <= 16 + size for f in records)
    assert [m for f in records if (m := joiner.add(f)) is not None] == data


@given(messages, st.integers(1, 64), st.data())
def test_a_reader_starting_anywhere_gets_every_whole_message_after_it(
    data: list[bytes], size: int, draw: st.DataObject
) -> None:
    """A reader that begins (or goes back to) any record skips the message it landed in the middle of."""
    records = [(n, i, f) for n, d in enumerate(data) for i, f in enumerate(frames(n, d, size))]
    start = draw.draw(st.integers(0, len(records) - 1))
    joiner = Joiner()
    got = [m for _, _, f in records[start:] if (m := joiner.add(f)) is not None]
    first = records[start][0] if records[start][1] == 0 else records[start][0] + 1
    assert got == data[first:]


def test_a_lost_frame_loses_its_message_only() -> None:
    joiner = Joiner()
    first, second = frames(1, b"a" * 10, 4), frames(2, b"b" * 3, 4)
    assert [joiner.add(f) for f in [first[0], first[2], *second]] == [None, None, b"bbb"]


def test_malformed_frames_are_refused() -> None:
    with pytest.raises(FrameError, match="shorter than its header"):
        Joiner().add(b"\x00" * 15)
    with pytest.raises(FrameError, match="frame 0 of a message of 0 frames"):
        Joiner().add(b"\x00" * 16)
    with pytest.raises(ValueError, match="at least 1 byte"):
        frames(1, b"x", 0)


def test_a_message_larger_than_the_bound_is_refused_before_it_is_whole() -> None:
    joiner = Joiner(max_bytes=10)
    assert joiner.add(frames(1, b"x" * 10, 4)[0]) is None
    assert [joiner.add(f) for f in frames(2, b"y" * 10, 4)] == [None, None, b"y" * 10]  # 10 bytes: whole
    first, second, _ = frames(3, b"z" * 11, 4)
    assert joiner.add(first) is None and joiner.add(second) is None
    with pytest.raises(FrameError, match="more than 10 bytes"):
        joiner.add(frames(3, b"z" * 11, 4)[2])
    assert joiner.add(frames(4, b"ok", 4)[0]) == b"ok"  # the next message joins again


def test_only_messages_signed_with_the_key_are_opened() -> None:
    sealed = seal(b"key", b"message")
    assert unseal(b"key", sealed) == b"message"
    for forged in (seal(b"other", b"message"), sealed[:-1] + b"!", b"", sealed[:10]):
        with pytest.raises(FrameError, match="not signed with this namespace's key"):
            unseal(b"key", forged)
