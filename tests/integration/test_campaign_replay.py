"""``segstream replay completejourney-campaigns`` on a real Kafka: the events arrive as the contract says."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict

import pytest

from agents.settings import Settings
from segstream.campaigns import load_completejourney_campaigns
from segstream.kafka_io import read_topic
from streams.campaign_contract import PriorPurchases, decode_campaign_event
from streams.topics import CAMPAIGN_EVENTS
from tests.schema_helpers import validate_json

pytestmark = pytest.mark.integration

LIMIT = 3000  # the first events in time order: campaigns 24-27, both arms, exposures and responses


def test_replay_publishes_valid_campaign_events_keyed_by_customer(settings: Settings) -> None:
    command = ["replay", "completejourney-campaigns", "--limit", str(LIMIT), "--no-progress"]
    result = subprocess.run(
        [sys.executable, "-m", "segstream", *command],
        env=settings.to_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"published {LIMIT} events to campaign-events")

    expected = load_completejourney_campaigns().head(LIMIT)
    messages = list(read_topic(settings, settings.topic(CAMPAIGN_EVENTS)))
    assert len(messages) == LIMIT
    partitions: dict[bytes, set[int]] = defaultdict(set)
    decoded = []
    for message in messages:
        value = validate_json("campaign-event", message.value)
        event = decode_campaign_event(message.value)
        assert message.key == event.customer_id.encode() == value["customer_id"].encode()
        partitions[message.key].add(message.partition)
        decoded.append(event)
    assert all(len(p) == 1 for p in partitions.values()), "one customer, one partition"
    assert len({m.partition for m in messages}) > 1
    assert sorted(e.event_id for e in decoded) == sorted(expected["event_id"])
    assert {(e.type, e.variant) for e in decoded} == {
        (kind, variant) for kind in ("exposure", "response") for variant in ("treatment", "control")
    }
    by_id = {e.event_id: e for e in decoded}
    for row in expected.sample(200, random_state=3).itertuples():
        event = by_id[row.event_id]
        assert (event.campaign_id, event.variant, event.type) == (row.campaign_id, row.variant, row.type)
        assert event.occurred_at_ms == row.occurred_at.value // 1_000_000
    exposed = expected[expected["type"] == "exposure"]
    for row in exposed.itertuples():  # campaigns 24-26 start before the transactions: no prior purchases
        prior = by_id[row.event_id].prior
        if row.campaign_id in ("24", "25", "26"):
            assert prior is None
        else:
            assert prior == PriorPurchases(
                int(row.prior_days), int(row.prior_covered_products), row.prior_covered_spend
            )
    assert set(exposed["campaign_id"]) >= {"24", "27"} and (exposed["prior_covered_products"] > 0).any()
