"""The typed read model of the evaluator's summary (state/evaluator/read_model.py).

A summary built from a real evaluator run (the CDNOW sample through ``Evaluator(rfm11)``, and the
synthetic campaigns that give the response and uplift models their figures) is encoded, sent
through JSON and decoded back to an equal object; the saved JSON is byte for byte the document the
untyped builder produced (its code is kept below as the oracle) and ``GET /segments`` built from
the decoded summary still matches its schema, keys in the same order. A document saved by an older
version, without the parts added since, still decodes with their defaults. Pure tests: no services.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import cache
from typing import Any

import msgspec
import pytest

from agents.web import campaigns_document, segments_document
from segstream.model_lines import alert_gate_lines, churn_calibration_lines
from state.campaigns.descriptors import descriptor_json
from state.customer.rfm import DAY_MS
from state.evaluator.evaluate import Evaluator
from state.evaluator.read_model import Summary, read_summary, summary_record
from state.evaluator.summary import alert_gates
from state.segments.population import summarize
from tests.schema_helpers import load_schema, validate
from tests.unit.test_evaluate import UNGATED, campaign_events, eager_book, sorted_run, synthetic_logs


def legacy_summary(ev: Evaluator) -> dict[str, object]:
    """The summary as the untyped builder made it before the read model (the oracle: plain dicts)."""
    config, book, clock_ms = ev.config, ev.campaigns, ev.clock_ms
    gates = {
        k: msgspec.to_builtins(g) for k, g in alert_gates(config.alerts, ev.churn, book, ev.held_back).items()
    }
    return {
        "as_of_ms": clock_ms or 0,
        "cutpoint_version": ev.cutpoints.version if ev.cutpoints else 0,
        "model_version": ev.model.version,
        "preset": config.preset.name,
        "churn": {
            "horizon_days": config.churn_horizon_ms / DAY_MS,
            "every_days": config.churn_every_ms / DAY_MS,
            **ev.churn.report(),
            "scorer": ev.churn.scorer(),
            "bands": asdict(config.alerts.bands),
        },
        "lifetime": None if ev.lifetime is None else ev.lifetime.to_json(),
        "response": {
            "window_days": config.response_window_ms / DAY_MS,
            "exposures": len(book.exposures),
            **book.response.report(),
            "scorer": book.response.scorer(),
            "reference_campaign": descriptor_json(book.reference),
            "likely_enter": config.alerts.responder_enter,
            "likely_leave": config.alerts.responder_leave,
        },
        "campaigns": book.readout(),
        "uplift": book.uplift_report(),
        "cluster_quality": ev.cluster_quality,
        "alert_gates": {"min_auc": config.alerts.min_auc, "max_ece": config.alerts.max_ece, **gates},
        **summarize(ev.population, clock_ms or 0, config.preset.segments, ev.model.cluster_names()),
    }


@cache
def campaign_run() -> Evaluator:
    """Synthetic customers with two A/B campaigns: response and uplift models learned, a population uplift."""
    day0 = 28 * 400 * DAY_MS
    ev = Evaluator(UNGATED, campaigns=eager_book())
    ev.advance(day0 + 300 * DAY_MS, synthetic_logs(day0), campaign_events(day0))
    return ev


def runs() -> dict[str, Evaluator]:
    return {"cdnow": sorted_run()[0], "campaigns": campaign_run()}


@pytest.mark.parametrize("name", ["cdnow", "campaigns"])
def test_the_saved_json_is_the_untyped_builders_and_decodes_to_an_equal_summary(name: str) -> None:
    ev = runs()[name]
    summary = ev.summary()
    saved = json.dumps(summary_record(summary))  # what RedisProfileStore.save writes
    assert saved == json.dumps(legacy_summary(ev))  # same keys, order, numbers
    assert read_summary(saved.encode()) == summary == read_summary(json.loads(saved))
    assert json.dumps(summary_record(read_summary(saved))) == saved


def test_the_runs_fill_every_optional_part() -> None:
    """So the equalities above cover each part, not only its default."""
    cdnow, campaigns = sorted_run()[0].summary(), campaign_run().summary()
    assert cdnow.lifetime is not None and cdnow.clusters and cdnow.cluster_quality
    assert cdnow.churn.calibration is not None and cdnow.churn.band_outcomes is not None
    assert campaigns.campaigns and campaigns.uplift is not None and campaigns.uplift.population is not None
    assert campaigns.response.by_variant and campaigns.response.scorer is not None


@pytest.mark.parametrize("name", ["cdnow", "campaigns"])
def test_the_pages_from_the_decoded_summary_match_their_schemas_in_the_old_key_order(name: str) -> None:
    ev = runs()[name]
    decoded = read_summary(json.dumps(summary_record(ev.summary())))
    body = json.loads(json.dumps(segments_document(decoded)))
    validate("http-segments", body)
    legacy = json.loads(json.dumps(legacy_summary(ev)))
    assert list(body) == [
        "schema_version",
        *(k for k in legacy if k not in ("campaigns", "uplift")),
        "as_of",
        "profiles",
    ]
    assert set(body) == set(load_schema("http-segments")["properties"])
    assert list(body["churn"]) == [k for k in legacy["churn"] if k != "scorer"]
    validate("http-campaigns", json.loads(json.dumps(campaigns_document(decoded))))


def _older(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` as a version before the uplift, cluster quality, alert gates, campaigns and the
    churn calibration saved it."""
    old = {
        k: v
        for k, v in document.items()
        if k not in ("uplift", "cluster_quality", "alert_gates", "campaigns")
    }
    old["churn"] = {
        k: v for k, v in document["churn"].items() if k not in ("calibration", "recent", "band_outcomes")
    }
    return old


def test_an_older_document_decodes_with_defaults_and_the_readers_skip_what_it_lacks() -> None:
    document = summary_record(campaign_run().summary())
    old = read_summary(json.dumps(_older(document)))
    assert (old.uplift, old.cluster_quality, old.alert_gates, old.campaigns) == (None, [], None, [])
    assert (old.churn.calibration, old.churn.recent, old.churn.band_outcomes) == (None, None, None)
    assert old.segments == campaign_run().summary().segments
    assert churn_calibration_lines(old.churn) == [] and alert_gate_lines(old.alert_gates) == []
    assert campaigns_document(old)["uplift"] is None
    newer = {**document, "a_later_part": {"x": 1}}  # a newer writer's field is ignored
    assert read_summary(json.dumps(newer)) == campaign_run().summary()


def test_a_missing_or_mistyped_field_is_refused_with_its_path() -> None:
    document = summary_record(campaign_run().summary())
    with pytest.raises(msgspec.ValidationError, match=r"\$\.churn\.auc"):
        read_summary({**document, "churn": {**document["churn"], "auc": "high"}})
    with pytest.raises(msgspec.ValidationError, match="as_of_ms"):
        read_summary({k: v for k, v in document.items() if k != "as_of_ms"})
    assert isinstance(read_summary(document), Summary)
