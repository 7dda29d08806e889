"""What an input may be: sizes, lengths, counts and the accepted event-time window.

Every input is hostile until validated. These bounds are settings (``agents.settings``),
each with a sane default and a reason that says which setting bit when it bites:

- a message value larger than ``max_message_bytes`` is not even parsed;
- a string field longer than ``max_string_length``, or more than ``max_items`` basket lines,
  is refused;
- an event time earlier than ``floor_ms`` (default 1990-01-01, before any real history: an
  epoch in *seconds* read as milliseconds lands in January 1970 and is caught here) or later
  than the wall clock at receipt plus ``max_skew_ms`` (default one hour: one event dated 2099
  must never move anyone's recency) is refused;
- a clock tick must lie in the same window.

>>> limits = InputLimits()
>>> now = 1_764_000_000_000  # 2025-11-24
>>> limits.check_event_time("occurred_at", 1_700_000_000_000, now)
>>> limits.check_event_time("occurred_at", 1_700_000_000, now)
Traceback (most recent call last):
...
streams.limits.InvalidEvent: occurred_at: 1970-01-20T16:13:20.000Z is before the accepted floor 1990-01-01T00:00:00.000Z (SEGSTREAM_EVENT_TIME_FLOOR); 1700000000 looks like epoch seconds, send milliseconds
>>> limits.check_event_time("occurred_at", 4_070_908_800_000, now)
Traceback (most recent call last):
...
streams.limits.InvalidEvent: occurred_at: 2099-01-01T00:00:00.000Z is later than the wall clock at receipt plus the allowed skew of 3600 s (SEGSTREAM_MAX_CLOCK_SKEW_S)
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["DEFAULT_FLOOR_MS", "InputLimits", "InvalidEvent", "brief", "wall_clock_ms"]

DEFAULT_FLOOR_MS = 631_152_000_000  # 1990-01-01T00:00:00Z
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')  # a JSON string, escapes included: its brackets do not nest
_BRACKET = re.compile(rb"[\[\]{}]")


class InvalidEvent(ValueError):
    """An input that breaks its wire contract; ``reason`` is safe to publish (values in it are cut short)."""

    @property
    def reason(self) -> str:
        return str(self.args[0])


def wall_clock_ms() -> int:
    """The wall clock in epoch milliseconds (receipt time: only the window check uses it)."""
    return time.time_ns() // 1_000_000


def brief(value: object, width: int = 40) -> str:
    """``repr(value)`` cut to ``width`` characters, so a reason never carries a huge value.

    >>> brief("x" * 100, 10)
    "'xxxxxxxx…"
    """
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _iso(ms: int) -> str:
    """RFC 3339 for ``ms``, or the plain number where no calendar date fits (years past 9999).

    >>> _iso(0), _iso(10**30)
    ('1970-01-01T00:00:00.000Z', '1000000000000000000000000000000 ms since the epoch')
    """
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, ValueError, OSError):
        return f"{ms} ms since the epoch"
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class InputLimits:
    """Bounds on one input message; the defaults are the settings' defaults."""

    max_message_bytes: int = 256 * 1024
    max_string_length: int = 200
    max_items: int = 1000
    floor_ms: int = DEFAULT_FLOOR_MS
    max_skew_ms: int = 3_600_000
    dlq_payload_bytes: int = 4096
    max_depth: int = 32

    def check_depth(self, raw: bytes) -> None:
        """Refuse JSON nested deeper than ``max_depth`` (a purchase needs 3 levels).

        Decided by the bytes alone, never by how deep the caller's stack happens to be (a decoder's
        recursion limit would accept a payload in one process and refuse it in another).

        >>> InputLimits(max_depth=2).check_depth(b'{"a": [1, "[[[["]}')
        >>> InputLimits(max_depth=2).check_depth(b'{"a": [[1]]}')
        Traceback (most recent call last):
        ...
        streams.limits.InvalidEvent: payload: nested deeper than 2 levels (SEGSTREAM_MAX_NESTING_DEPTH)
        """
        if raw.count(b"[") + raw.count(b"{") <= self.max_depth:
            return  # too few brackets to nest that deep: the common case costs two C scans
        depth = 0
        for bracket in _BRACKET.findall(_STRING.sub(b"", raw)):
            depth += 1 if bracket in b"[{" else -1
            if depth > self.max_depth:
                raise InvalidEvent(
                    f"payload: nested deeper than {self.max_depth} levels (SEGSTREAM_MAX_NESTING_DEPTH)"
                )

    def check_size(self, raw: bytes) -> None:
        if len(raw) > self.max_message_bytes:
            raise InvalidEvent(
                f"payload: {len(raw):,} bytes is over the limit of {self.max_message_bytes:,} "
                "(SEGSTREAM_MAX_MESSAGE_BYTES)"
            )

    def check_string(self, field: str, value: str) -> None:
        if len(value) > self.max_string_length:
            raise InvalidEvent(
                f"{field}: {len(value):,} characters is over the limit of {self.max_string_length} "
                "(SEGSTREAM_MAX_STRING_LENGTH)"
            )

    def check_count(self, field: str, count: int) -> None:
        if count > self.max_items:
            raise InvalidEvent(
                f"{field}: {count:,} entries is over the limit of {self.max_items:,} (SEGSTREAM_MAX_ITEMS)"
            )

    def check_event_time(self, field: str, at_ms: int, now_ms: int) -> None:
        """Raise unless ``floor_ms <= at_ms <= now_ms + max_skew_ms``."""
        if at_ms < self.floor_ms:
            hint = ""
            if self.floor_ms <= at_ms * 1000 <= now_ms + self.max_skew_ms:
                hint = f"; {at_ms} looks like epoch seconds, send milliseconds"
            raise InvalidEvent(
                f"{field}: {_iso(at_ms)} is before the accepted floor {_iso(self.floor_ms)} "
                f"(SEGSTREAM_EVENT_TIME_FLOOR){hint}"
            )
        if at_ms > now_ms + self.max_skew_ms:
            raise InvalidEvent(
                f"{field}: {_iso(at_ms)} is later than the wall clock at receipt plus the allowed skew "
                f"of {self.max_skew_ms // 1000} s (SEGSTREAM_MAX_CLOCK_SKEW_S)"
            )
