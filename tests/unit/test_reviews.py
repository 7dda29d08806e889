"""Review counters through ``ingest_review_batch`` with the in-memory stores, against pandas.

The reviews are generated (``segstream.reviews``: no public review data is reachable here), so
the answer is known: pandas group-bys of the generated frame, computed from the timestamps
themselves (not from the contract's lateness). Resends (same event_id, new offset), Kafka
redeliveries (same offsets again) and invalid messages are mixed in; none may change a count.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from agents.ingest import DeadLetter, RawMessage, ingest_review_batch
from segstream.reviews import REGIONS, generate_reviews, review_wire_events, reviews_table
from state.analytics.review_store import MemoryReviewStore, ReviewOutcome, reviews_report
from state.analytics.reviews import COUNTERS, UNKNOWN_SEGMENT
from state.customer.memory_store import MemoryStore
from state.customer.profile_store import MemoryProfileStore
from state.segments.segments import load_preset
from tests.cli_helpers import assert_one_line_usage_error
from tests.schema_helpers import validate

NOW = datetime(2026, 11, 29, tzinfo=UTC)
TOPIC = "t.reviews"
PARTITIONS = 4
START, END = pd.Timestamp("2017-01-01", tz="UTC"), pd.Timestamp("2018-01-01", tz="UTC")
SEGMENTS = load_preset("rfm11").segments


class Letters:
    """Records every dead letter published."""

    def __init__(self) -> None:
        self.sent: list[DeadLetter] = []

    async def __call__(self, letters: Sequence[DeadLetter]) -> None:
        self.sent += letters

    def reasons(self) -> list[str]:
        return [json.loads(value)["reason"] for _, value in self.sent]


def messages_with_faults(frame: pd.DataFrame, seed: int) -> tuple[list[RawMessage], int]:
    """The frame's reviews as Kafka messages (partition by customer), 10% of them resent later at
    new offsets, and 3 invalid messages; returns the messages and how many are invalid."""
    rng = random.Random(seed)
    wire = list(review_wire_events(frame))
    resent = rng.sample(wire, len(wire) // 10)
    bad = [
        ("c-bad", b'{"event_id":"x","customer_id":"c-bad","score":9}'),
        ("c-bad", b"{not json"),
        ("c-bad", json.dumps({**json.loads(wire[0][1]), "score": 0, "event_id": "x2"}).encode()),
    ]
    stream = wire + bad
    rng.shuffle(stream)
    offsets = [0] * PARTITIONS
    messages = []
    for key, value in stream + resent:
        p = sum(key.encode()) % PARTITIONS
        messages.append(RawMessage(TOPIC, p, offsets[p], key.encode(), value))
        offsets[p] += 1
    return messages, len(bad)


async def ingest(
    messages: list[RawMessage], reviews: MemoryReviewStore, store: MemoryStore, letters: Letters
) -> list[ReviewOutcome]:
    outcomes: list[ReviewOutcome] = []
    for start in range(0, len(messages), 500):
        batch = messages[start : start + 500]
        result = await ingest_review_batch(batch, store, reviews, letters, now=lambda: NOW)
        outcomes += result.outcomes
    return outcomes


def pandas_figures(frame: pd.DataFrame, by: str) -> dict[str, dict[str, Any]]:
    """The oracle: per group, count, mean, distribution and the lateness figures, in pandas."""
    dated = frame["delivered_at"].notna() & frame["promised_at"].notna()
    frame = frame.assign(
        late=dated & (frame["delivered_at"] > frame["promised_at"]),
        on_time=dated & (frame["delivered_at"] <= frame["promised_at"]),
    )
    found = {}
    for name, group in frame.groupby(by):
        late, on_time = group.loc[group["late"], "score"], group.loc[group["on_time"], "score"]
        counts = group["score"].value_counts()
        found[str(name)] = {
            "count": len(group),
            "mean": group["score"].mean(),
            "distribution": {str(s): int(counts.get(s, 0)) for s in range(1, 6)},
            "late": len(late),
            "on_time": len(on_time),
            "undated": int((~dated[group.index]).sum()),
            "late_share": len(late) / (len(late) + len(on_time)) if len(late) + len(on_time) else None,
            "mean_late": late.mean() if len(late) else None,
            "mean_on_time": on_time.mean() if len(on_time) else None,
            "late_gap": late.mean() - on_time.mean() if len(late) and len(on_time) else None,
        }
    return found


def assert_rows_equal(rows: list[dict[str, Any]], key: str, expected: dict[str, dict[str, Any]]) -> None:
    assert [r[key] for r in rows if r[key] != UNKNOWN_SEGMENT] == [
        k
        for k in (SEGMENTS if key == "segment" else sorted(expected))
        if k in expected and k != UNKNOWN_SEGMENT
    ]
    assert {r[key] for r in rows} == set(expected)
    for row in rows:
        want = expected[row[key]]
        for field in ("count", "distribution", "late", "on_time", "undated"):
            assert row[field] == want[field], (row[key], field)
        for field in ("mean", "late_share", "mean_late", "mean_on_time", "late_gap"):
            assert (row[field] is None) == (want[field] is None), (row[key], field)
            if want[field] is not None:
                assert row[field] == pytest.approx(want[field], abs=1e-12), (row[key], field)


async def test_counts_equal_pandas_whatever_resends_and_redeliveries() -> None:
    customers = [f"c{i}" for i in range(200)]
    frame = generate_reviews(customers, 3000, START, END, seed=3)
    messages, invalid = messages_with_faults(frame, seed=3)
    reviews, store, letters = MemoryReviewStore(), MemoryStore(), Letters()

    outcomes = await ingest(messages, reviews, store, letters)
    assert outcomes.count(ReviewOutcome.APPLIED) == len(frame)
    assert outcomes.count(ReviewOutcome.DUPLICATE) == len(frame) // 10
    assert len(letters.sent) == invalid
    assert sorted(r.split(":")[0] for r in letters.reasons()) == ["order_id", "payload", "score"]

    again = await ingest(messages[700:1900], reviews, store, letters)  # Kafka redelivers a stretch
    assert set(again) == {ReviewOutcome.REDELIVERED} and len(letters.sent) == invalid

    rng = np.random.default_rng(5)  # 80% of the reviewers have a profile now, in a random segment
    profiled = [c for c in customers if rng.random() < 0.8]
    segment_of = {c: SEGMENTS[int(rng.integers(len(SEGMENTS)))] for c in profiled}
    profiles = MemoryProfileStore()
    for c, segment in segment_of.items():
        profiles.rows[c] = {"customer_id": c, "profile": [3, 3, 3, segment, None, None]}
    report = await reviews_report(reviews, profiles, SEGMENTS)

    assert report["as_of_ms"] is None and report["segment_basis"] == "current"
    validate(
        "http-reviews",
        {"schema_version": 1, "segments_as_of": None, **{k: v for k, v in report.items() if k != "as_of_ms"}},
    )
    assert_rows_equal(report["regions"], "region", pandas_figures(frame, "region"))
    with_segment = frame.assign(segment=frame["customer_id"].map(segment_of).fillna(UNKNOWN_SEGMENT))
    assert_rows_equal(report["segments"], "segment", pandas_figures(with_segment, "segment"))
    assert_rows_equal(
        [{"all": "all", **report["all"]}], "all", pandas_figures(frame.assign(all="all"), "all")
    )
    assert all(set(c) <= set(COUNTERS) for c in (await reviews.customers()).values())  # O(1) per customer


async def test_a_region_over_the_limit_is_dead_lettered_with_the_setting_named() -> None:
    frame = generate_reviews(["a", "b", "c"], 400, START, END, seed=8)
    wire = list(review_wire_events(frame))
    messages = [RawMessage(TOPIC, 0, i, key.encode(), value) for i, (key, value) in enumerate(wire)]
    first_three = list(dict.fromkeys(frame["region"]))[:3]
    reviews, store, letters = MemoryReviewStore(max_regions=3), MemoryStore(), Letters()

    outcomes = await ingest(messages, reviews, store, letters)
    await ingest(messages, reviews, store, letters)  # redelivered: refused again, dead-lettered once

    kept = frame["region"].isin(first_three).to_numpy()
    assert outcomes == [ReviewOutcome.APPLIED if k else ReviewOutcome.REGION_REFUSED for k in kept]
    assert len(letters.sent) == int((~kept).sum()) > 0
    assert all("over the limit of 3 (SEGSTREAM_REVIEW_MAX_REGIONS)" in r for r in letters.reasons())
    assert sorted(await reviews.regions()) == sorted(first_three)
    expected = pandas_figures(frame[kept], "region")
    assert {r: c["n"] for r, c in (await reviews.regions()).items()} == {
        r: f["count"] for r, f in expected.items()
    }


def test_undefined_figures_are_none_and_the_table_has_an_all_row() -> None:
    report = {
        "regions": [
            {
                "region": "north",
                "count": 1,
                "mean": 4.0,
                "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0},
                "late": 0,
                "on_time": 0,
                "undated": 1,
                "late_share": None,
                "mean_late": None,
                "mean_on_time": None,
                "late_gap": None,
            }
        ],
    }
    report["all"] = {k: v for k, v in report["regions"][0].items() if k != "region"}
    table = reviews_table(report, "region")
    assert table["region"].tolist() == ["north", "all"]
    assert table.columns.tolist()[:8] == [
        "region",
        "reviews",
        "mean",
        "score_1",
        "score_2",
        "score_3",
        "score_4",
        "score_5",
    ]


def test_generator_follows_its_design() -> None:
    frame = generate_reviews([f"c{i}" for i in range(50)], 20_000, START, END, seed=1)
    dated = frame["delivered_at"].notna() & frame["promised_at"].notna()
    late = dated & (frame["delivered_at"] > frame["promised_at"])
    share = late[dated].groupby(frame["region"][dated]).mean()
    assert list(share.index) == sorted(REGIONS)
    assert share.is_monotonic_increasing and 0.02 < share.iloc[0] < 0.08 and 0.34 < share.iloc[-1] < 0.46
    assert frame.loc[late, "score"].mean() < frame.loc[dated & ~late, "score"].mean() - 1
    assert (frame["occurred_at"] > frame["delivered_at"].fillna(frame["occurred_at"] - pd.Timedelta(1))).all()
    assert frame["event_id"].is_unique


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["reviews", "--by", "city"], "invalid choice: 'city'"),
        (["reviews", "--format", "xml"], "invalid choice: 'xml'"),
    ],
)
def test_bad_review_arguments_exit_2_with_one_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_one_line_usage_error(argv, says, capsys)
