"""agents.evaluated_output: what a tick's changes and alerts become on the wire, checked by decoding
the messages (each validated against its schema) and recounting them from the changes with plain
dictionaries and sets, never through the code under test."""

from __future__ import annotations

import json
import random

from agents.evaluated_output import OutputTopics, evaluated_messages
from state.customer.profiles import REASONS, Change, Profile
from state.models.alerts import Alert
from state.segments.segments import load_preset
from tests.schema_helpers import validate_json

PRESET = load_preset("rfm11")
TOPICS = OutputTopics("ns.segment-changes", "ns.customer-segments", "ns.alerts", "ns.segment-moves")


def _changes(seed: int, customers: int = 60, steps: int = 5) -> list[Change]:
    """Random walks, customers interleaved as a tick publishes them (by instant, then customer)."""
    rng = random.Random(seed)
    current: dict[str, Profile | None] = {f"c{c}": None for c in range(customers)}
    changes = []
    for step in range(steps):
        for customer, before in current.items():
            if rng.random() < 0.6:
                r, f, m = (rng.randint(1, 5) for _ in range(3))
                cluster = rng.choice([None, 0, 1])
                after = Profile(
                    r,
                    f,
                    m,
                    PRESET.segment_for(r, f, m).segment,
                    cluster,
                    None if cluster is None else f"k{cluster}",
                )
                if after != before:
                    changes.append(
                        Change(
                            customer,
                            step * 86_400_000,
                            rng.choice(REASONS),
                            before,
                            after,
                            step + 1,
                            step + 1,
                        )
                    )
                    current[customer] = after
    return changes


def test_every_change_each_latest_profile_every_alert_and_the_moves_in_that_order() -> None:
    changes = _changes(seed=3)
    alerts = [
        Alert("c1", 5, "overdue", {"silent_days": 30.0, "ratio": 3.0, "usual_gap_days": 10.0}),
        Alert("c2", 6, "overdue", {"silent_days": 45.0, "ratio": 1.5, "usual_gap_days": 30.0}),
    ]
    messages, moves = evaluated_messages(changes, alerts, PRESET, TOPICS)

    order = [topic for topic, _, _ in messages]
    assert order == sorted(order, key=[TOPICS.changes, TOPICS.profiles, TOPICS.alerts, TOPICS.moves].index)
    by_topic: dict[str, list[tuple[bytes, dict[str, object]]]] = {}
    for topic, key, value in messages:
        by_topic.setdefault(topic, []).append((key, json.loads(value)))

    sent = by_topic[TOPICS.changes]
    assert [(k.decode(), v["change_id"]) for k, v in sent] == [(c.customer_id, c.change_id) for c in changes]
    for _, value in sent:
        validate_json("segment-change", json.dumps(value).encode())

    last: dict[str, Change] = {}
    for c in changes:
        last[c.customer_id] = c
    profiles = {k.decode(): v for k, v in by_topic[TOPICS.profiles]}
    assert len(profiles) == len(by_topic[TOPICS.profiles]) == len(last)  # one per customer
    for customer, value in profiles.items():
        validate_json("customer-segment", json.dumps(value).encode())
        assert value["rfm_segment"] == last[customer].after.rfm_segment
        assert value["r_score"] == last[customer].after.r_score

    assert [k.decode() for k, _ in by_topic[TOPICS.alerts]] == ["c1", "c2"]

    expected_moves = 0  # audiences a profile is in: its segment and its cluster id
    for c in changes:
        before = set() if c.before is None else {("s", c.before.rfm_segment), ("c", c.before.cluster)}
        after = {("s", c.after.rfm_segment), ("c", c.after.cluster)}
        before.discard(("c", None))
        after.discard(("c", None))
        expected_moves += len(before ^ after)
    assert len(moves) == len(by_topic.get(TOPICS.moves, [])) == expected_moves
    assert [k.decode() for k, _ in by_topic[TOPICS.moves]] == [m.customer_id for m in moves]


def test_nothing_in_nothing_out() -> None:
    assert evaluated_messages([], [], PRESET, TOPICS) == ([], [])
