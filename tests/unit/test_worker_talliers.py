"""Which analytics counters a worker folds: all of them on one Redis, no basket counts on a cluster."""

from __future__ import annotations

import asyncio

from agents.settings import Settings
from agents.tallies import build_talliers
from state.customer.tally import combine
from streams.contract import Item, Purchase


def tables(settings: Settings) -> set[str]:
    purchase = Purchase(
        "e1",
        "c1",
        1_700_000_000_000,
        1_250,
        items=(Item("sku1", 1, 500, "fruit"), Item("sku2", 1, 750, "veg")),
    )
    tallies = asyncio.run(combine(*build_talliers(settings))([purchase]))
    return {t.table for per_event in tallies for t in per_event}


def test_a_cluster_worker_folds_every_counter_but_the_shared_basket_tables() -> None:
    single = tables(Settings())
    cluster = tables(Settings(redis_cluster=True))
    shared = {t for t in single if t.startswith("basket")}
    assert shared, single  # one Redis: the basket counts are kept
    assert "cust:category" in single  # the basket tallier's own per-customer counter
    assert cluster == single - shared  # a cluster: everything else, per-customer mixes included
