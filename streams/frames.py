"""segstream's own messages between its processes on Kafka: signed, and cut into frames that fit a record.

The partitioned evaluation's owner and partition hosts (``agents/partition_link.py``) exchange
messages that may be larger than a Kafka record may be (the broker's ``message.max.bytes`` is
1 MiB by default): at an instant of a catch-up the states of a partition's customers, or the rows
it wrote, run to megabytes. A message is cut into frames of at most ``size`` bytes of payload,
each with a header (the sender's message number, the frame's index, the frame count), written to
one partition; a reader joins the frames of one partition in the order it reads them
(:class:`Joiner`). A reader that starts, or goes back, in the middle of a message skips the
frames of that message until the next message's first frame.

The messages are pickles, and unpickling runs code: so every message is signed with the
namespace's key (HMAC-SHA256, :func:`seal`) and a reader opens only messages with a valid
signature (:func:`unseal`); a message written by anyone without the key is refused with
:class:`FrameError`, never unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

__all__ = ["FRAME_BYTES", "MESSAGE_BYTES", "FrameError", "Joiner", "frames", "seal", "unseal"]

FRAME_BYTES = 512 * 1024
"""Payload of a frame: half the broker's default ``message.max.bytes`` (1 MiB), room for headers."""

MESSAGE_BYTES = 256 * 1024 * 1024
"""The largest message a :class:`Joiner` joins: the signature is checked once a message is whole,
so without a bound anyone who can write to the topic could make a reader hold any amount."""

_HEADER = struct.Struct(">QII")  # message number, frame index, frame count
_SIGNATURE = hashlib.sha256().digest_size


class FrameError(ValueError):
    """A frame or message that is not one of segstream's (malformed, or not signed with the key)."""


def seal(key: bytes, data: bytes) -> bytes:
    """``data`` preceded by its HMAC-SHA256 under ``key``."""
    return hmac.new(key, data, hashlib.sha256).digest() + data


def unseal(key: bytes, sealed: bytes) -> bytes:
    """The data :func:`seal` signed with ``key``; :class:`FrameError` if the signature does not match.

    >>> unseal(b"k", seal(b"k", b"data"))
    b'data'
    """
    signature, data = sealed[:_SIGNATURE], sealed[_SIGNATURE:]
    if len(signature) < _SIGNATURE or not hmac.compare_digest(
        signature, hmac.new(key, data, hashlib.sha256).digest()
    ):
        raise FrameError("a message not signed with this namespace's key (refused, not read)")
    return data


def frames(number: int, data: bytes, size: int = FRAME_BYTES) -> list[bytes]:
    """Message ``number``'s ``data`` cut into frames of at most ``size`` bytes of payload (one at least).

    >>> [len(f) for f in frames(7, b"x" * 10, size=4)]
    [20, 20, 18]
    """
    if size < 1:
        raise ValueError(f"a frame holds at least 1 byte, got {size}")
    count = max(1, -(-len(data) // size))
    view = memoryview(data)
    return [_HEADER.pack(number, i, count) + view[i * size : (i + 1) * size] for i in range(count)]


class Joiner:
    """Joins the frames one sender wrote to one partition, read in the order they were written."""

    def __init__(self, max_bytes: int = MESSAGE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._number: int | None = None  # the message being joined
        self._count = 0
        self._parts: list[bytes] = []
        self._bytes = 0

    def add(self, frame: bytes) -> bytes | None:
        """The whole message when ``frame`` is its last; None while frames are missing. A frame of
        a message whose first frame this joiner did not see is skipped (None)."""
        if len(frame) < _HEADER.size:
            raise FrameError(f"a frame of {len(frame)} bytes, shorter than its header")
        number, index, count = _HEADER.unpack_from(frame)
        if index >= count:
            raise FrameError(f"frame {index} of a message of {count} frames")
        if index == 0:
            self._number, self._count, self._parts, self._bytes = number, count, [], 0
        elif (number, count, index) != (self._number, self._count, len(self._parts)):
            self._number, self._parts = None, []  # began or went back mid-message: wait for a first frame
            return None
        self._bytes += len(frame) - _HEADER.size
        if self._bytes > self._max_bytes:
            self._number, self._parts = None, []
            raise FrameError(
                f"a message of more than {self._max_bytes:,} bytes (refused before it was whole)"
            )
        self._parts.append(frame[_HEADER.size :])
        if len(self._parts) < count:
            return None
        data = b"".join(self._parts)
        self._number, self._parts = None, []
        return data
