"""``segstream basket rules``: the live association rules, as a table.

``segstream basket rules --level category|sku --min-support S [--min-confidence C]
[--format csv|parquet] [--output PATH|-]`` writes one row per rule, columns
``antecedent, consequent, support, confidence, lift`` (``state.analytics.baskets``), and says on stderr
how many baskets they come from and whether the pair counts are exact.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING, Any

from agents.settings import Settings

if TYPE_CHECKING:
    import pandas as pd


__all__ = ["RULE_COLUMNS", "add_basket_parser", "rules_frame", "run_basket"]
# pandas is imported where a table is built: the CLI's other commands start without it

RULE_COLUMNS = ["antecedent", "consequent", "support", "confidence", "lift"]


def _share(text: str, *, zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share like 0.01, got {text!r}") from None
    low_ok = value >= 0 if zero else value > 0
    if not math.isfinite(value) or not low_ok or value > 1:
        interval = "[0, 1]" if zero else "(0, 1]"
        raise argparse.ArgumentTypeError(f"expected a share in {interval} (0.01 = 1%), got {text!r}")
    return value


def _support(text: str) -> float:
    return _share(text, zero=False)


def _confidence(text: str) -> float:
    return _share(text, zero=True)


def add_basket_parser(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """The ``basket`` command and its actions, on the CLI's subparsers."""
    basket = commands.add_parser("basket", help="frequently bought together, from the live basket counts")
    actions = basket.add_subparsers(dest="action", required=True, parser_class=parser_class, metavar="ACTION")
    rules = actions.add_parser(
        "rules", help="association rules a -> b with support, confidence and lift (one item to one item)"
    )
    rules.add_argument("--level", choices=["category", "sku"], required=True, help="category or sku")
    rules.add_argument(
        "--min-support", type=_support, required=True, help="least share of baskets with both, in (0, 1]"
    )
    rules.add_argument(
        "--min-confidence", type=_confidence, default=0.0, help="least confidence, in [0, 1] (default 0)"
    )
    rules.add_argument("--format", choices=["csv", "parquet"], default="csv")
    rules.add_argument("--output", default="-", help="file path, or - for stdout (default)")


def rules_frame(found: list[Any]) -> pd.DataFrame:
    """``state.analytics.baskets.Rule`` objects as the command's table."""
    import pandas as pd

    return pd.DataFrame(
        {
            "antecedent": pd.Series([r.antecedent for r in found], dtype=str),
            "consequent": pd.Series([r.consequent for r in found], dtype=str),
            "support": pd.Series([r.support for r in found], dtype="float64"),
            "confidence": pd.Series([r.confidence for r in found], dtype="float64"),
            "lift": pd.Series([r.lift for r in found], dtype="float64"),
        }
    )[RULE_COLUMNS]


async def run_basket(settings: Settings, args: argparse.Namespace) -> int:
    from segstream.export import write_frame
    from state.analytics.baskets import BasketCounts, rules
    from state.adapters.redis_baskets import RedisBaskets

    baskets = RedisBaskets.connect(settings.redis_access, settings.redis_prefix)
    try:
        tables = await baskets.tables(args.level)
    finally:
        await baskets.close()
    counts = BasketCounts.from_tables(tables.items, tables.pairs, tables.threshold)
    found = rules(counts, args.min_support, args.min_confidence)
    write_frame(rules_frame(found), "parquet" if args.format == "parquet" else "csv", args.output)
    exact = (
        "pair counts exact"
        if counts.max_undercount == 0
        else f"pair counts may be up to {counts.max_undercount:,} baskets below the truth (the pair table "
        "outgrew SEGSTREAM_BASKET_MAX_PAIRS and its rarest pairs were pruned)"
    )
    print(
        f"{len(found):,} rules at {args.level} level from {counts.baskets:,} baskets; {exact}",
        file=sys.stderr,
    )
    return 0
