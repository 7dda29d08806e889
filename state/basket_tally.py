"""Basket counts as tallies: what one purchase adds to the "frequently bought together" tables.

A purchase with ``items`` is one *basket*. At each level (``sku``: the item's sku;
``category``: its own ``category``, else the catalogue's) the basket adds, exactly once
(the tallies ride on the fold, see ``state.customer.tally``):

- ``basket:<level>:n``: field :data:`TOTAL` (``""``) +1 (baskets with an item at that level),
  and +1 for each distinct name in the basket (a basket counts each name once);
- ``basket:<level>:pair``: +1 for each unordered pair of distinct names, field
  ``pair_field(a, b)`` = the two names sorted and joined by :data:`SEP` (U+001F, the ASCII unit
  separator). A name containing U+001F, or an empty one, is not counted at all, so a pair field
  always splits back into its two names and ``""`` never collides with a name;
- per customer, ``cust:category``: +1 per basket for each category in it (what the customer buys:
  bundles and segment profiles read it).

Pairs are bounded per basket: only the ``pair_items`` distinct names with the smallest BLAKE2b
hash take part in pairs (a stable choice, the same whatever the order of the lines), so a basket
adds at most ``pair_items * (pair_items - 1) / 2`` pair counters (a 1,000-line basket would
otherwise add 499,500). A batch is bounded too: when its purchases would add more than
``batch_tallies`` counters in all, each basket of that batch counts only its ``k`` names with the
smallest hash, ``k`` the largest that fits (only the batch's largest baskets lose names; logged),
so a batch of hostile 1,000-line purchases costs a bounded amount of memory and Redis time.
Counts are exact for baskets with at most ``pair_items`` distinct names in batches within the
budget (singles: any basket in such a batch). Refunds add nothing: a basket is a purchase.

Items without a category (neither their own nor the catalogue's) count at sku level only.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal, TypeGuard

from state.customer.store import Tally
from state.customer.tally import Tallier
from streams.contract import Purchase

__all__ = [
    "CUSTOMER_TABLE",
    "LEVELS",
    "SEP",
    "TOTAL",
    "BasketConfig",
    "CategoryLookup",
    "Level",
    "basket_names",
    "basket_tallier",
    "basket_tallies",
    "batch_cap",
    "missing_categories",
    "pair_field",
    "pair_members",
    "split_pair",
    "table",
    "usable",
]

Level = Literal["category", "sku"]
LEVELS: tuple[Level, ...] = ("category", "sku")
SEP = "\x1f"
TOTAL = ""
CUSTOMER_TABLE = "cust:category"

log = logging.getLogger(__name__)

CategoryLookup = Callable[[Sequence[str]], Awaitable[Mapping[str, str]]]
"""The catalogue: skus -> their category (skus it does not know are left out)."""


@dataclass(frozen=True, slots=True)
class BasketConfig:
    """How a basket is tallied: ``pair_items`` bounds the names per basket that form pairs;
    ``batch_tallies`` the counters one batch adds (see :func:`batch_cap`); ``levels`` are the
    levels counted (both by default)."""

    pair_items: int = 100
    batch_tallies: int = 500_000
    levels: tuple[Level, ...] = LEVELS

    def __post_init__(self) -> None:
        if self.pair_items < 2:
            raise ValueError(f"pair_items must be at least 2, got {self.pair_items}")


def table(level: Level, kind: Literal["n", "pair"]) -> str:
    """Name of a level's shared table: ``basket:<level>:n`` or ``basket:<level>:pair``."""
    return f"basket:{level}:{kind}"


def usable(name: str | None) -> TypeGuard[str]:
    """True for a name basket counts can hold: non-empty and without :data:`SEP`.

    >>> usable("BEEF"), usable(""), usable(None), usable("a\\x1fb")
    (True, False, False, False)
    """
    return name is not None and name != "" and SEP not in name


def pair_field(a: str, b: str) -> str:
    """The field of the unordered pair ``{a, b}``.

    >>> pair_field("milk", "bread") == pair_field("bread", "milk") == "bread\\x1fmilk"
    True
    """
    return f"{a}{SEP}{b}" if a < b else f"{b}{SEP}{a}"


def split_pair(field: str) -> tuple[str, str]:
    """The two names of a pair field (sorted), inverse of :func:`pair_field`."""
    a, sep, b = field.partition(SEP)
    if not sep or not a or not b or SEP in b:
        raise ValueError(f"not a pair field: {field!r}")
    return a, b


def _rank(name: str) -> bytes:
    return hashlib.blake2b(name.encode(), digest_size=8).digest()


def pair_members(names: Iterable[str], limit: int) -> list[str]:
    """The names that form pairs: all if at most ``limit``, else the ``limit`` with the smallest
    BLAKE2b-64 hash (ties impossible in practice, broken by name); sorted by name.

    >>> pair_members(["c", "a", "b"], 5)
    ['a', 'b', 'c']
    >>> len(pair_members(map(str, range(50)), 10))
    10
    """
    distinct = set(names)
    if len(distinct) <= limit:
        return sorted(distinct)
    return sorted(sorted(distinct, key=lambda n: (_rank(n), n))[:limit])


def _level_tallies(level: Level, names: set[str], pair_items: int) -> list[Tally]:
    n, pair = table(level, "n"), table(level, "pair")
    out = [Tally(n, TOTAL)]
    out += [Tally(n, name) for name in sorted(names)]
    out += [Tally(pair, f"{a}{SEP}{b}") for a, b in combinations(pair_members(names, pair_items), 2)]
    return out


def basket_names(
    purchase: Purchase, catalogue: Mapping[str, str], config: BasketConfig
) -> dict[Level, set[str]]:
    """The distinct usable names of a purchase's basket per level (none for a refund); categories
    always (the customer's table needs them), skus when that level is counted."""
    if purchase.type != "purchase" or not purchase.items:
        return {}
    categories = {c for c in (i.category or catalogue.get(i.sku) for i in purchase.items) if usable(c)}
    named: dict[Level, set[str]] = {"category": categories}
    if "sku" in config.levels:
        named["sku"] = {i.sku for i in purchase.items if usable(i.sku)}
    return named


def _tallies_of(named: Mapping[Level, set[str]], config: BasketConfig, cap: int | None) -> tuple[Tally, ...]:
    """The tallies of a basket's names, each level cut to its ``cap`` names with the smallest hash."""
    kept = {level: set(pair_members(names, cap)) if cap else names for level, names in named.items()}
    out: list[Tally] = []
    for level in LEVELS:
        if level in config.levels and kept.get(level):
            out += _level_tallies(level, kept[level], config.pair_items)
    out += [Tally(CUSTOMER_TABLE, c, per_customer=True) for c in sorted(kept.get("category", ()))]
    return tuple(out)


def _counters(sizes: Sequence[tuple[int, int]], pair_items: int, cap: int | None) -> int:
    """Counters a batch adds; ``sizes``: (names, 1 if the level is counted else 0) per basket level,
    the customer's categories counted as an uncounted category level's names."""
    total = 0
    for n, counted in sizes:
        m = n if cap is None else min(n, cap)
        p = min(m, pair_items)
        total += (1 + m + p * (p - 1) // 2) if counted else m
    return total


def batch_cap(baskets: Sequence[Mapping[Level, set[str]]], config: BasketConfig) -> int | None:
    """How many names per basket and level this batch counts: all (None), unless the batch would
    then add more than ``batch_tallies`` counters; then the largest cap that fits (at least 2), which
    cuts only the batch's largest baskets. A batch then adds at most ``max(batch_tallies, purchases x
    9)`` counters, whatever its baskets hold.

    >>> big = {"sku": {str(i) for i in range(40)}, "category": set()}
    >>> batch_cap([big] * 10, BasketConfig(batch_tallies=10_000))  # 10 x (1 + 40 + 780) counters fit
    >>> batch_cap([big] * 10, BasketConfig(batch_tallies=2_500))  # 10 x (1 + 21 + 210) = 2,320
    21
    """
    sizes: list[tuple[int, int]] = []
    for named in baskets:
        for level, names in named.items():
            if names:
                sizes.append((len(names), int(level in config.levels)))
                if level == "category" and level in config.levels:
                    sizes.append((len(names), 0))  # the customer's own table
    if _counters(sizes, config.pair_items, None) <= config.batch_tallies:
        return None
    low, high = 2, max(n for n, _ in sizes)  # counters(low) fits or is the floor; counters(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (
            (middle, high)
            if _counters(sizes, config.pair_items, middle) <= config.batch_tallies
            else (low, middle)
        )
    return low


def basket_tallies(
    purchase: Purchase, catalogue: Mapping[str, str], config: BasketConfig = BasketConfig()
) -> tuple[Tally, ...]:
    """The tallies one purchase adds (none for a refund or a purchase without usable items).

    ``catalogue`` gives the category of skus whose line carries none.

    >>> from streams.contract import Item
    >>> p = Purchase("e1", "c1", 0, 500, items=(Item("1", 1, 2.0, "BEEF"), Item("2", 2, 1.5)))
    >>> [(t.table, t.field.replace(SEP, "|")) for t in basket_tallies(p, {"2": "MILK"})]  # doctest: +NORMALIZE_WHITESPACE
    [('basket:category:n', ''), ('basket:category:n', 'BEEF'), ('basket:category:n', 'MILK'),
     ('basket:category:pair', 'BEEF|MILK'), ('basket:sku:n', ''), ('basket:sku:n', '1'),
     ('basket:sku:n', '2'), ('basket:sku:pair', '1|2'), ('cust:category', 'BEEF'), ('cust:category', 'MILK')]
    """
    return _tallies_of(basket_names(purchase, catalogue, config), config, None)


def missing_categories(purchases: Iterable[Purchase]) -> list[str]:
    """Skus of purchase lines without a category of their own (what the catalogue must tell), sorted."""
    return sorted(
        {
            i.sku
            for p in purchases
            if p.type == "purchase"
            for i in p.items or ()
            if i.category is None and usable(i.sku)
        }
    )


def basket_tallier(
    config: BasketConfig = BasketConfig(), categories: CategoryLookup | None = None
) -> Tallier:
    """The worker's basket :data:`state.customer.tally.Tallier`: one catalogue look-up per batch (for the
    lines without a category of their own), then each purchase's tallies as
    :func:`basket_tallies`, under the batch's :func:`batch_cap` (logged when it bites)."""

    async def tally(purchases: Sequence[Purchase]) -> list[tuple[Tally, ...]]:
        wanted = missing_categories(purchases) if categories is not None else []
        catalogue = await categories(wanted) if categories is not None and wanted else {}
        named = [basket_names(p, catalogue, config) for p in purchases]
        cap = batch_cap(named, config)
        if cap is not None:
            log.warning(
                "a batch of %d purchases would add more than %d basket counters (SEGSTREAM_BASKET_BATCH_TALLIES): "
                "each of its baskets counts only its %d names with the smallest hash per level",
                len(purchases),
                config.batch_tallies,
                cap,
            )
        return [_tallies_of(n, config, cap) for n in named]

    return tally
