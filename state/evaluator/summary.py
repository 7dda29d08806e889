"""What the evaluator reports (``GET /segments``): segments, clusters, models, gates and versions.

Read-only views of the evaluator's state, kept apart from the evaluator (``state.evaluator.evaluate``),
which moves that state, so that the document's shape is in one place and the coordinator stays short.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

import msgspec

from state.campaigns.campaign_book import CampaignBook
from state.customer.rfm import DAY_MS
from state.evaluator.config import EvaluatorConfig
from state.evaluator.predict import LifetimeModel
from state.evaluator.read_model import (
    AlertGate,
    AlertGates,
    ChurnReport,
    ClusterGroup,
    LifetimeParams,
    QualityVersion,
    ResponseReport,
    SegmentGroup,
    Summary,
    UpliftReport,
)
from state.models.alerts import AlertConfig
from state.models.churn import ChurnModel
from state.models.clusters import SegmentModel
from state.models.model_health import gate_open
from state.segments.cutpoints import CutPoints
from state.segments.population import Population, summarize

__all__ = ["alert_gates", "evaluator_summary"]


def alert_gates(
    cfg: AlertConfig, churn: ChurnModel, book: CampaignBook, held_back: Counter[str]
) -> dict[str, AlertGate]:
    """Each model-backed alert kind's gate: the model's recent figures, open or shut, alerts held back."""
    gates: dict[str, AlertGate] = {}
    for kind, health in (
        ("churn_risk", churn.health()),
        ("likely_responder", book.response.health()),
    ):
        gates[kind] = msgspec.convert(
            {
                **health.to_json(),
                "open": gate_open(health, cfg.min_auc, cfg.max_ece),
                "held_back": held_back[kind],
            },
            AlertGate,
        )
    return gates


def evaluator_summary(
    config: EvaluatorConfig,
    *,
    clock_ms: int | None,
    cutpoints: CutPoints | None,
    model: SegmentModel,
    churn: ChurnModel,
    lifetime: LifetimeModel | None,
    book: CampaignBook,
    cluster_quality: list[dict[str, object]],
    held_back: Counter[str],
    population: Population,
) -> Summary:
    """Every named segment's and cluster's size and profile, with the versions and the models' figures.

    ``held_back`` counts, per alert kind, the crossings a shut model gate kept from alerting. The
    models' reports are plain dicts (their rooms are below this one): each is converted to its
    typed part here, so a report that lost or retyped a field fails on the first summary built.
    """
    gates = alert_gates(config.alerts, churn, book, held_back)
    groups = summarize(population, clock_ms or 0, config.preset.segments, model.cluster_names())
    return Summary(
        as_of_ms=clock_ms or 0,
        cutpoint_version=cutpoints.version if cutpoints else 0,
        model_version=model.version,
        preset=config.preset.name,
        churn=msgspec.convert(
            {
                "horizon_days": config.churn_horizon_ms / DAY_MS,
                "every_days": config.churn_every_ms / DAY_MS,
                **churn.report(),
                "scorer": churn.scorer(),
                "bands": asdict(config.alerts.bands),
            },
            ChurnReport,
        ),
        lifetime=None if lifetime is None else msgspec.convert(lifetime.to_json(), LifetimeParams),
        response=msgspec.convert(
            {
                "window_days": config.response_window_ms / DAY_MS,
                "exposures": len(book.exposures),
                **book.response.report(),
                "scorer": book.response.scorer(),
                "reference_campaign": book.reference,
                "likely_enter": config.alerts.responder_enter,
                "likely_leave": config.alerts.responder_leave,
            },
            ResponseReport,
        ),
        campaigns=book.readout(),
        uplift=msgspec.convert(book.uplift_report(), UpliftReport),
        cluster_quality=msgspec.convert(cluster_quality, list[QualityVersion]),
        alert_gates=AlertGates(
            min_auc=config.alerts.min_auc,
            max_ece=config.alerts.max_ece,
            churn_risk=gates["churn_risk"],
            likely_responder=gates["likely_responder"],
        ),
        customers=groups["customers"],
        segments=msgspec.convert(groups["segments"], list[SegmentGroup]),
        clusters=msgspec.convert(groups["clusters"], list[ClusterGroup]),
    )
