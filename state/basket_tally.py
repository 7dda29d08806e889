"""Basket counts as tallies: what one purchase adds to the "frequently bought together" tables.

A purchase with ``items`` is one *basket*. At each level (``sku``: the item's sku;
``category``: its own ``category``, else the catalogue's) the basket adds, exactly once
(the tallies ride on the fold, see ``state.tally``):

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
otherwise add 499,500). A batch is bounded too: when its baskets would add more than
``batch_pairs`` pair counters, the cap is lowered for that batch until they fit (its largest
baskets lose pairs; logged), so a batch of hostile 1,000-line purchases stays bounded. Pair
counts are exact for baskets with at most ``pair_items`` distinct names in batches within the
budget; single counts are always exact. Refunds add nothing: a basket is a purchase.

Items without a category (neither their own nor the catalogue's) count at sku level only.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal, TypeGuard

from state.store import Tally
from state.tally import Tallier
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
    "missing_categories",
    "pair_cap",
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
    ``batch_pairs`` the pair counters one batch adds (see :func:`pair_cap`); ``levels`` are the
    levels counted (both by default)."""

    pair_items: int = 100
    batch_pairs: int = 500_000
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
    """The distinct usable names of a purchase's basket per counted level (none for a refund)."""
    if purchase.type != "purchase" or not purchase.items:
        return {}
    skus = {i.sku for i in purchase.items if usable(i.sku)}
    categories = {c for c in (i.category or catalogue.get(i.sku) for i in purchase.items) if usable(c)}
    named: dict[Level, set[str]] = {"category": categories, "sku": skus}
    return {level: named[level] for level in LEVELS if level in config.levels or level == "category"}


def _tallies_of(named: Mapping[Level, set[str]], config: BasketConfig, pair_items: int) -> tuple[Tally, ...]:
    out: list[Tally] = []
    for level in LEVELS:
        if level in config.levels and named.get(level):
            out += _level_tallies(level, named[level], pair_items)
    out += [Tally(CUSTOMER_TABLE, c, per_customer=True) for c in sorted(named.get("category", ()))]
    return tuple(out)


def pair_cap(baskets: Sequence[Mapping[Level, set[str]]], config: BasketConfig) -> int:
    """How many names per basket form pairs in this batch: ``pair_items``, unless the batch would
    then add more than ``batch_pairs`` pair counters; then the largest cap that keeps it within
    (at least 2), which cuts only the batch's largest baskets. So one batch adds at most
    ``max(batch_pairs, purchases x levels)`` pair counters, whatever its baskets hold.

    >>> big = {"sku": {str(i) for i in range(40)}}
    >>> pair_cap([big] * 10, BasketConfig(pair_items=100, batch_pairs=10_000))  # 10 x 780 pairs fit
    100
    >>> pair_cap([big] * 10, BasketConfig(pair_items=100, batch_pairs=2_000))  # 10 x 190 = 1,900
    20
    """
    sizes = [len(names) for named in baskets for level, names in named.items() if level in config.levels]

    def pairs(cap: int) -> int:
        return sum(min(n, cap) * (min(n, cap) - 1) // 2 for n in sizes)

    if pairs(config.pair_items) <= config.batch_pairs:
        return config.pair_items
    low, high = 2, config.pair_items  # pairs(low) fits or is the floor; pairs(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if pairs(middle) <= config.batch_pairs else (low, middle)
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
    return _tallies_of(basket_names(purchase, catalogue, config), config, config.pair_items)


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
    """The worker's basket :data:`state.tally.Tallier`: one catalogue look-up per batch (for the
    lines without a category of their own), then each purchase's tallies as
    :func:`basket_tallies`, under the batch's :func:`pair_cap` (logged when it bites)."""

    async def tally(purchases: Sequence[Purchase]) -> list[tuple[Tally, ...]]:
        wanted = missing_categories(purchases) if categories is not None else []
        catalogue = await categories(wanted) if categories is not None and wanted else {}
        named = [basket_names(p, catalogue, config) for p in purchases]
        cap = pair_cap(named, config)
        if cap < config.pair_items:
            log.warning(
                "a batch of %d purchases would add more than %d basket pair counters "
                "(SEGSTREAM_BASKET_BATCH_PAIRS): its baskets' pairs are counted among their %d names with "
                "the smallest hash, not %d (SEGSTREAM_BASKET_PAIR_ITEMS)",
                len(purchases),
                config.batch_pairs,
                cap,
                config.pair_items,
            )
        return [_tallies_of(n, config, cap) for n in named]

    return tally
