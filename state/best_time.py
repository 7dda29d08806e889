"""Best time to promote: hour-of-week purchase profiles and their named peak windows.

Each purchase adds one to its customer's counter for its **hour of week** (0..167, Monday 00h = 0)
in the customer's local time: the event's own UTC offset when its ``occurred_at`` carried one
(``streams.contract.Purchase.utc_offset_min``), UTC otherwise. Refunds do not count.

Profiles are read in **blocks** of 3 hours (56 a week, block 0 = Monday 00-03), named like
``Saturday 09-12``. A customer's profile is shrunk toward their segment's (the sum of the
counters of every customer now in their named segment), itself shrunk toward the population's,
so a customer with few purchases gets mostly their segment's peaks and one with many their own:

    share(b) = (n(b) + k * segment_share(b)) / (n + k)
    segment_share(b) = (N_s(b) + k * population_share(b)) / (N_s + k)

with ``n`` the customer's purchases (``n(b)`` in block b), ``N_s`` the segment's and ``k`` the
prior weight in purchases (``SEGSTREAM_BEST_TIME_PRIOR``). The best windows are the blocks with
the highest shares; ties go to the population's busier block, then the earlier one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from state.customer.rfm import DAY_MS
from state.customer.store import Tally
from streams.contract import Purchase

__all__ = [
    "BLOCKS",
    "BLOCK_HOURS",
    "HOURS",
    "HOW_TABLE",
    "Window",
    "add_counts",
    "best_time_tallies",
    "block_counts",
    "block_name",
    "customer_shares",
    "hour_of_week",
    "shrink",
    "top_windows",
    "uniform",
]

HOW_TABLE = "besttime:how"
"""Per customer: hour of week ``0``..``167`` -> purchases in that local hour."""
HOURS = 168
BLOCK_HOURS = 3
BLOCKS = HOURS // BLOCK_HOURS
_HOUR_MS = 3_600_000
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def hour_of_week(occurred_at_ms: int, utc_offset_min: int | None = None) -> int:
    """The local hour of week (Monday 00h = 0) of an event time, UTC when no offset is known.

    >>> hour_of_week(0), hour_of_week(0, utc_offset_min=-60)  # Thursday 00h UTC; Wednesday 23h at -01:00
    (72, 71)
    >>> hour_of_week(4 * DAY_MS + 9 * 3_600_000)  # 1970-01-05, a Monday, 09h
    9
    """
    local_ms = occurred_at_ms + (utc_offset_min or 0) * 60_000
    weekday = (local_ms // DAY_MS + _EPOCH_WEEKDAY) % 7
    return int(weekday * 24 + (local_ms % DAY_MS) // _HOUR_MS)


def best_time_tallies(event: Purchase) -> tuple[Tally, ...]:
    """The counter a purchase adds to its customer's hour-of-week profile (refunds add none).

    >>> best_time_tallies(Purchase("e", "c", 0, 100, utc_offset_min=540))
    (Tally(table='besttime:how', field='81', delta=1, per_customer=True),)
    """
    if event.type != "purchase":
        return ()
    how = hour_of_week(event.occurred_at_ms, event.utc_offset_min)
    return (Tally(HOW_TABLE, str(how), 1, per_customer=True),)


def block_name(block: int) -> str:
    """``Saturday 09-12`` for block 43 (Monday 00-03 is block 0).

    >>> block_name(0), block_name(43), block_name(55)
    ('Monday 00-03', 'Saturday 09-12', 'Sunday 21-24')
    """
    day, start = divmod(block * BLOCK_HOURS, 24)
    return f"{_DAYS[day]} {start:02d}-{start + BLOCK_HOURS:02d}"


def block_counts(hours: Mapping[str, int]) -> list[int]:
    """A customer's hour-of-week counters (as stored: field ``"0"``..``"167"``) as 56 block counts.

    Fields that are not an hour of week are ignored (they cannot come from :func:`best_time_tallies`).

    >>> block_counts({"0": 2, "2": 1, "167": 4, "x": 9})[:2], block_counts({"167": 4})[-1]
    ([3, 0], 4)
    """
    blocks = [0] * BLOCKS
    for field, n in hours.items():
        if field.isdigit() and int(field) < HOURS:
            blocks[int(field) // BLOCK_HOURS] += n
    return blocks


def add_counts(profiles: Iterable[Sequence[int]]) -> list[int]:
    """The block-wise sum of several profiles (a segment's or the population's)."""
    total = [0] * BLOCKS
    for profile in profiles:
        for b, n in enumerate(profile):
            total[b] += n
    return total


def shrink(counts: Sequence[int], prior: Sequence[float], weight: float) -> list[float]:
    """Block shares of ``counts`` pulled toward ``prior`` (shares summing to 1) by ``weight`` purchases.

    No purchases and no weight: the prior itself.

    >>> shrink([3, 1] + [0] * 54, [0.5, 0.5] + [0.0] * 54, 4)[:2]
    [0.625, 0.375]
    """
    n = sum(counts)
    if n + weight <= 0:
        return list(prior)
    return [(c + weight * p) / (n + weight) for c, p in zip(counts, prior, strict=True)]


def uniform() -> list[float]:
    """Every block equally likely (the profile of nobody)."""
    return [1 / BLOCKS] * BLOCKS


def customer_shares(
    own: Sequence[int], segment: Sequence[int], population: Sequence[int], weight: float
) -> list[float]:
    """A customer's block shares: their counts shrunk toward their segment's, shrunk toward the population's.

    An empty population gives the uniform profile; ``segment`` may be empty (no segment yet).

    >>> shares = customer_shares([0] * 56, [0] * 56, [1] + [0] * 55, 5)
    >>> shares[0], sum(shares)
    (1.0, 1.0)
    """
    everyone = shrink(population, uniform(), 0)
    return shrink(own, shrink(segment, everyone, weight), weight)


@dataclass(frozen=True, slots=True)
class Window:
    """One 3-hour block of the week with the customer's (or segment's) share of purchases in it."""

    block: int
    share: float

    @property
    def name(self) -> str:
        return block_name(self.block)

    @property
    def day(self) -> str:
        return _DAYS[self.block * BLOCK_HOURS // 24]

    @property
    def start_hour(self) -> int:
        return self.block * BLOCK_HOURS % 24


def top_windows(shares: Sequence[float], tie_break: Sequence[float], n: int = 3) -> list[Window]:
    """The ``n`` blocks with the highest shares; ties: higher ``tie_break`` share, then earlier block.

    >>> [w.name for w in top_windows([0.1, 0.3, 0.3] + [0.0] * 53, [0.0, 0.1, 0.2] + [0.0] * 53, 2)]
    ['Monday 06-09', 'Monday 03-06']
    """
    order = sorted(range(BLOCKS), key=lambda b: (-shares[b], -tie_break[b], b))
    return [Window(b, shares[b]) for b in order[:n]]
