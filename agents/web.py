"""The worker's HTTP pages (Faust web): metrics, health, customer profiles, segment table.

- ``GET /metrics``: Prometheus text;
- ``GET /healthz``: ``{"status": "ok", "watermark_ms": ...}`` once Redis answers;
- ``GET /customers/{customer_id}``: the customer's current profile, state and predictions
  (probability alive, expected purchases and next order, CLV, churn probability and band) as
  of the segment evaluator's clock, and their traits (``customer-traits``); 404 with ``{"error": ...}`` for a customer it has not seen;
- ``GET /segments``: every named segment's and cluster's size and profile (mean R/F/M, value share),
  and their segment profiles computed on request (top categories with lift, channel mix, traits,
  response rate, churn share: ``agents.segment_profiles``);
- ``GET /campaigns``: the A/B readout per campaign x segment x variant (``state.campaigns.abtest``), and the
  uplift model's estimate per segment with a suggested target list (``state.campaigns.uplift``).

Any worker serves them: they read Redis, not the evaluator's memory.

With ``SEGSTREAM_API_TOKEN`` set, every page but ``/healthz`` (Faust's own pages included)
answers 401 ``{"error": ...}`` unless the request carries ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import msgspec
from aiohttp import web as aiohttp_web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

from agents import metrics
from agents.catalogue import traits_document
from agents.segment_profiles import ExposureCache, live_segment_profiles
from state.adapters.redis_store import RedisStore
from state.analytics.catalogue import CatalogueReader
from state.customer.profile_store import ProfileStore
from state.customer.profiles import Profile
from state.customer.rfm import DAY_MS
from state.evaluator.messages import profile_fields
from state.evaluator.predict import predictions_of
from state.evaluator.read_model import Summary, UpliftReport, load_summary, summary_record
from state.segments.playbook import action_json, shipped_preset
from streams.outputs import SCHEMA_VERSION, rfc3339

__all__ = [
    "OPEN_PATHS",
    "bearer_matches",
    "campaigns_document",
    "customer_document",
    "register_pages",
    "segments_document",
    "uplift_document",
    "web_middlewares",
]

OPEN_PATHS = frozenset({"/healthz"})
"""Pages served without the API token (liveness probes carry no secret)."""

_Handler = Callable[[aiohttp_web.Request], Awaitable[aiohttp_web.StreamResponse]]


def bearer_matches(header: str | None, token: str) -> bool:
    """True when an ``Authorization`` header is ``Bearer <token>`` (constant-time comparison).

    >>> bearer_matches("Bearer s3cret", "s3cret"), bearer_matches("bearer s3cret", "s3cret")
    (True, True)
    >>> bearer_matches("Bearer wrong", "s3cret"), bearer_matches(None, "s3cret"), bearer_matches("s3cret", "s3cret")
    (False, False, False)
    """
    scheme, _, given = (header or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def web_middlewares(api_token: SecretStr | None) -> list[Any]:
    """aiohttp middlewares for the worker's web server: the bearer-token check when a token is set."""
    if api_token is None:
        return []
    token = api_token.get_secret_value()

    @aiohttp_web.middleware
    async def require_token(request: aiohttp_web.Request, handler: _Handler) -> aiohttp_web.StreamResponse:
        if request.path.rstrip("/") in OPEN_PATHS or bearer_matches(
            request.headers.get("Authorization"), token
        ):
            return await handler(request)
        given = "Authorization" in request.headers
        return aiohttp_web.json_response(
            {
                "error": "wrong bearer token"
                if given
                else "missing 'Authorization: Bearer <SEGSTREAM_API_TOKEN>'"
            },
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="segstream"'},
        )

    return [require_token]


def customer_document(
    record: dict[str, Any], summary: Summary | None, traits: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON of ``GET /customers/{id}`` from the evaluator's saved row (and the customer's traits,
    the latest ``customer-traits`` value, when there are any)."""
    as_of = summary.as_of_ms if summary else None
    last = record["last_ms"] if record["frequency"] > 0 else None
    first = record["first_ms"] if record["frequency"] > 0 else None
    profile = Profile(*record["profile"]) if record["profile"] is not None else None
    return {
        "schema_version": SCHEMA_VERSION,
        "customer_id": record["customer_id"],
        "as_of": rfc3339(as_of) if as_of is not None else None,
        "profile": profile_fields(profile) if profile else None,
        "cluster_since": rfc3339(record["since_ms"]) if profile and profile.cluster is not None else None,
        "state": {
            "frequency": record["frequency"],
            "purchase_days": record["purchase_days"],
            "monetary": record["monetary_cents"] / 100,
            "refunds": record["refunds"],
            "first_purchase_at": rfc3339(first) if first is not None else None,
            "last_purchase_at": rfc3339(last) if last is not None else None,
            "recency_days": (as_of - last) // DAY_MS if as_of is not None and last is not None else None,
        },
        "predictions": _predictions(record, summary),
        "cutpoint_version": summary.cutpoint_version if summary else 0,
        "model_version": summary.model_version if summary else 0,
        "traits": traits,
        "recommended_action": _recommended(profile, summary),
    }


def _recommended(profile: Profile | None, summary: Summary | None) -> dict[str, Any] | None:
    """The playbook entry of the customer's segment (``state.segments.playbook``), with the preset the evaluator used."""
    if profile is None or summary is None:
        return None
    return action_json(shipped_preset(summary.preset), profile.rfm_segment)


def _predictions(record: dict[str, Any], summary: Summary | None) -> dict[str, Any] | None:
    """The customer's predictions as of the evaluator's clock, with the saved models (closed form)."""
    (found,) = predictions_of([record], summary) if summary else [None]
    if found is None:
        return None
    next_ms = found.pop("expected_next_order_ms")
    return {**found, "expected_next_order_at": rfc3339(next_ms) if next_ms is not None else None}


def segments_document(summary: Summary, profiles: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON of ``GET /segments`` from the summary the evaluator saved (without the churn weights),
    with the segment profiles computed on request (``agents.segment_profiles``; None: not computed)."""
    saved = summary_record(summary)
    churn = {k: v for k, v in saved["churn"].items() if k != "scorer"}
    response = {k: v for k, v in saved["response"].items() if k not in ("scorer", "reference_campaign")}
    body = {k: v for k, v in saved.items() if k not in ("campaigns", "uplift")}
    return {
        "schema_version": SCHEMA_VERSION,
        **body,
        "churn": churn,
        "response": response,
        "as_of": rfc3339(summary.as_of_ms),
        "profiles": profiles,
    }


def campaigns_document(summary: Summary) -> dict[str, Any]:
    """The JSON of ``GET /campaigns``: the A/B readout per campaign x segment x variant, and the
    uplift model's estimate per segment with a suggested target list (null before it learned)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "as_of": rfc3339(summary.as_of_ms),
        "exposures": summary.response.exposures,
        "readout": summary.campaigns,
        "uplift": uplift_document(summary.uplift),
    }


def uplift_document(uplift: UpliftReport | None) -> dict[str, Any] | None:
    """The ``uplift`` object of ``GET /campaigns`` from the summary's (without the scorers)."""
    if uplift is None or not uplift.version or uplift.population is None:
        return None
    population: dict[str, Any] = msgspec.to_builtins(uplift.population)
    as_of = rfc3339(population.pop("as_of_ms"))
    return {
        "model_version": uplift.version,
        "treatment_auc": uplift.treatment.auc,
        "control_auc": uplift.control.auc,
        "propensity_auc": uplift.propensity.auc,
        "treated_share": uplift.propensity.treated_share,
        "propensity_clip": uplift.clip,
        **population,
        "as_of": as_of,
    }


def register_pages(
    app: faust.App, store: RedisStore, profiles: ProfileStore, catalogue: CatalogueReader | None = None
) -> None:
    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def health(web: Any, request: Any) -> Any:
        await store.ping()
        return web.json({"status": "ok", "watermark_ms": await store.watermark()})

    @app.page("/customers/{customer_id}")
    async def customer(web: Any, request: Any, customer_id: str) -> Any:
        record = await profiles.profile(customer_id)
        if record is None:
            return web.json({"error": f"unknown customer {customer_id!r}"}, status=404)
        traits = (await catalogue.traits_of([customer_id])).get(customer_id) if catalogue else None
        return web.json(customer_document(record, await load_summary(profiles), traits_document(traits)))

    @app.page("/campaigns")
    async def campaigns(web: Any, request: Any) -> Any:
        summary = await load_summary(profiles)
        if summary is None:
            return web.json({"error": "no campaigns yet: the evaluator has not had a clock tick"}, status=404)
        return web.json(campaigns_document(summary))

    exposures: ExposureCache = {}  # the segment profiles' exposures, until the evaluator saves again

    @app.page("/segments")
    async def segments(web: Any, request: Any) -> Any:
        summary = await load_summary(profiles)
        if summary is None:
            return web.json({"error": "no segments yet: the evaluator has not had a clock tick"}, status=404)
        found = (
            await live_segment_profiles(store, profiles, catalogue, cache=exposures)
            if catalogue is not None
            else None
        )
        return web.json(segments_document(summary, found))
