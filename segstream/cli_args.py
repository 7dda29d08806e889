"""What the ``segstream`` command line does with bad input: argument types and one-line failures.

The argument types turn text into values or raise :class:`argparse.ArgumentTypeError` (argparse
then ends with one line and exit status 2); :func:`fail` is the one line for errors found later.
Apart from ``segstream.cli`` so the command modules can report errors the same way without
importing the composition root (which imports them).
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, datetime

__all__ = [
    "EXIT_FAILED",
    "EXIT_USAGE",
    "MAX_ADVANCE_DAYS",
    "days",
    "fail",
    "instant",
    "positive_int",
    "speed",
    "windows",
]

EXIT_USAGE = 2
EXIT_FAILED = 1
MAX_ADVANCE_DAYS = 36_500  # a century: anything longer is a typo, and the tick window refuses it anyway


def speed(text: str) -> float | None:
    """Events per second, or None for ``max``."""
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected events per second or 'max', got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"speed must be a finite number > 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def instant(text: str) -> int:
    """A date (UTC midnight) or an RFC 3339 time with offset, as epoch ms."""
    try:
        if len(text) == 10:
            parsed = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date YYYY-MM-DD or an RFC 3339 time like 1999-06-30T00:00:00Z, got {text!r}"
        ) from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"time {text!r} needs an offset, e.g. Z or +02:00")
    return int(parsed.timestamp() * 1000)


def days(text: str) -> float:
    """A number of days like ``365`` or ``365d``, in (0, :data:`MAX_ADVANCE_DAYS`]."""
    try:
        value = float(text.removesuffix("d"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of days like 365 or 365d, got {text!r}"
        ) from None
    if not math.isfinite(value) or not 0 < value <= MAX_ADVANCE_DAYS:
        raise argparse.ArgumentTypeError(f"days must be a number in (0, {MAX_ADVANCE_DAYS:,}], got {text!r}")
    return value


def windows(text: str) -> int:
    """How many of the week's 56 three-hour windows."""
    value = positive_int(text)
    if value > 56:
        raise argparse.ArgumentTypeError(f"a week has 56 three-hour windows, got {text!r}")
    return value


def fail(message: str, code: int = EXIT_FAILED) -> int:
    """Print ``segstream: error: <first line of message>`` on stderr; return the exit status."""
    print(f"segstream: error: {message.splitlines()[0] if message else 'failed'}", file=sys.stderr)
    return code
