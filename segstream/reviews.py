"""Generated reviews for the ``reviews`` topic, their replay, and the ``segstream reviews`` table.

**The reviews are generated.** No public review data set with delivery and promised dates is
reachable from this machine (the usual one, Olist's Brazilian e-commerce orders, is distributed
through Kaggle), so the tests and ``segstream replay generated-reviews`` use reviews drawn from
a seeded generator whose answer is known: any pandas group-by of the generated frame. What the generator builds in (so a reader
knows what the figures can and cannot show):

- regions :data:`REGIONS`, each with its own chance of a late delivery (:data:`LATE_CHANCE`);
- a late delivery's score is drawn from :data:`LATE_SCORES`, an on-time or undated one from
  :data:`ON_TIME_SCORES`, so late reviews score lower on average by construction;
- 5% of reviews have no ``delivered_at`` and 5% no ``promised_at`` (lateness unknown);
- the promised date is uniform in the span; a late delivery comes 1 hour to 7 days after it,
  an on-time one up to 5 days before it; the review 1 hour to 14 days after the delivery;
- nothing depends on the customer, so figures per segment differ only by chance.

Event ids are ``gen-review:<seed>:<i>``: generating and replaying twice publishes the same ids.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import msgspec
import numpy as np
import pandas as pd

from agents.settings import Settings
from segstream.kafka_io import Publisher
from segstream.replay import ReplayReport, publish_paced
from streams.outputs import rfc3339
from streams.topics import REVIEWS

__all__ = [
    "LATE_CHANCE",
    "LATE_SCORES",
    "ON_TIME_SCORES",
    "REGIONS",
    "REVIEW_COLUMNS",
    "generate_reviews",
    "replay_reviews",
    "review_wire_events",
    "reviews_table",
]

REVIEW_COLUMNS = [
    "event_id",
    "order_id",
    "customer_id",
    "score",
    "region",
    "occurred_at",
    "delivered_at",
    "promised_at",
]
REGIONS = ("central", "east", "north", "south", "west")
LATE_CHANCE = (0.05, 0.10, 0.15, 0.25, 0.40)  # per region, in REGIONS order
ON_TIME_SCORES = (0.04, 0.04, 0.10, 0.27, 0.55)  # P(score = 1..5)
LATE_SCORES = (0.30, 0.20, 0.20, 0.18, 0.12)
UNDATED_CHANCE = 0.05  # of a missing delivered_at, and (apart) of a missing promised_at
_HOUR = pd.Timedelta(hours=1)


def generate_reviews(
    customer_ids: Sequence[str], n: int, start: pd.Timestamp, end: pd.Timestamp, seed: int = 0
) -> pd.DataFrame:
    """``n`` reviews by customers drawn uniformly from ``customer_ids``, promised dates in
    ``[start, end)`` (UTC), the design in the module docstring; columns :data:`REVIEW_COLUMNS`
    (``delivered_at`` / ``promised_at`` NaT where missing), in generation order.

    >>> frame = generate_reviews(["a", "b"], 4, pd.Timestamp("2017-01-01", tz="UTC"),
    ...                          pd.Timestamp("2017-02-01", tz="UTC"), seed=1)
    >>> frame["event_id"].tolist(), frame["score"].between(1, 5).all()
    (['gen-review:1:0', 'gen-review:1:1', 'gen-review:1:2', 'gen-review:1:3'], np.True_)
    """
    rng = np.random.default_rng(seed)
    region = rng.integers(0, len(REGIONS), n)
    late = rng.random(n) < np.asarray(LATE_CHANCE)[region]
    scores = np.where(
        late, rng.choice(5, n, p=LATE_SCORES) + 1, rng.choice(5, n, p=ON_TIME_SCORES) + 1
    ).astype(np.int64)
    span = (end - start) / _HOUR
    promised = start + pd.to_timedelta(rng.random(n) * span, unit="h")
    shift = np.where(late, 1 + rng.random(n) * 167, -rng.random(n) * 120)
    delivered = promised + pd.to_timedelta(shift, unit="h")
    occurred = delivered + pd.to_timedelta(1 + rng.random(n) * 335, unit="h")
    no_delivery, no_promise = rng.random(n) < UNDATED_CHANCE, rng.random(n) < UNDATED_CHANCE
    customers = np.asarray(customer_ids, dtype=object)[rng.integers(0, len(customer_ids), n)]
    return pd.DataFrame(
        {
            "event_id": [f"gen-review:{seed}:{i}" for i in range(n)],
            "order_id": [f"gen-order:{seed}:{i}" for i in range(n)],
            "customer_id": customers.astype(str),
            "score": scores,
            "region": np.asarray(REGIONS, dtype=object)[region].astype(str),
            "occurred_at": occurred.round("ms"),
            "delivered_at": delivered.round("ms").where(~no_delivery),
            "promised_at": promised.round("ms").where(~no_promise),
        }
    )[REVIEW_COLUMNS]


def _ms(column: pd.Series) -> list[int | None]:
    """Epoch ms of a UTC datetime column, None where missing."""
    epoch = pd.Timestamp(0, tz="UTC")
    return [None if pd.isna(t) else (t - epoch) // pd.Timedelta(milliseconds=1) for t in column]


def review_wire_events(reviews: pd.DataFrame) -> Iterator[tuple[str, bytes]]:
    """``(customer_id, JSON value)`` per review row, in frame order; times as RFC 3339, except
    ``promised_at`` in epoch ms (the contract takes both); a missing date is left out."""
    encoder = msgspec.json.Encoder()
    columns = zip(
        reviews["event_id"].astype(str),
        reviews["order_id"].astype(str),
        reviews["customer_id"].astype(str),
        reviews["score"].astype("int64").tolist(),
        reviews["region"].astype(str),
        _ms(reviews["occurred_at"]),
        _ms(reviews["delivered_at"]),
        _ms(reviews["promised_at"]),
        strict=True,
    )
    for event_id, order_id, customer, score, region, occurred, delivered, promised in columns:
        event: dict[str, Any] = {
            "event_id": event_id,
            "order_id": order_id,
            "customer_id": customer,
            "score": score,
            "region": region,
            "occurred_at": rfc3339(int(occurred or 0)),
        }
        if delivered is not None:
            event["delivered_at"] = rfc3339(delivered)
        if promised is not None:
            event["promised_at"] = promised
        yield customer, encoder.encode(event)


def replay_reviews(
    reviews: pd.DataFrame,
    settings: Settings,
    *,
    speed: float | None = None,
    progress: bool = True,
    stop: threading.Event | None = None,
) -> ReplayReport:
    """Publish ``reviews`` to ``reviews`` in frame order, keyed by customer (no clock ticks:
    review counters need no clock)."""
    publisher = Publisher(settings)
    try:
        return publish_paced(
            publisher,
            settings.topic(REVIEWS),
            review_wire_events(reviews),
            len(reviews),
            speed=speed,
            progress=progress,
            stop=stop,
        )
    finally:
        publisher.close()


def reviews_table(report: dict[str, Any], by: Literal["region", "segment"]) -> pd.DataFrame:
    """One row per region (or current segment) and a last ``all`` row: reviews, mean score, reviews
    per score, late / on-time / undated counts, late share, mean late and on-time score, late gap."""
    rows = [*report["regions" if by == "region" else "segments"], {by: "all", **report["all"]}]
    flat = []
    for row in rows:
        figures = {k: v for k, v in row.items() if k != "distribution"}
        flat.append(
            {
                by: figures.pop(by),
                "reviews": figures.pop("count"),
                "mean": figures.pop("mean"),
                **{f"score_{s}": n for s, n in row["distribution"].items()},
                **figures,
            }
        )
    return pd.DataFrame(flat)
