"""The ``campaign-events`` wire contract and its validation (``schemas/campaign-event.schema.json``).

A campaign event says that a customer was *exposed* to one variant of a campaign, or
*responded* to it. An exposure may describe its campaign (optional fields, all or some:
``campaign_type``, ``campaign_days``, ``coupons``, ``covered_products``, ``discount_depth``):
the :class:`CampaignDescriptor` the response and uplift models use as features
(``state.campaigns.descriptors``); and it may say what the customer bought of the campaign's covered
products *before* the exposure (optional ``prior_days``, ``prior_covered_products``,
``prior_covered_spend``): the :class:`PriorPurchases` behind the models' covered-product
features (``state.campaigns.prior_features``); an event without them is as valid as before. The variant named ``"control"`` is the hold-out every other variant of
the campaign is compared with (``state.campaigns.abtest``). ``decode_campaign_event`` turns raw
message bytes into a :class:`CampaignEvent` or raises :class:`~streams.limits.InvalidEvent`
whose ``reason`` names the field and the rule broken, as for purchases.

>>> e = decode_campaign_event(b'{"event_id":"x1","customer_id":"42","campaign_id":"8",'
...                           b'"variant":"control","type":"exposure","occurred_at":"2017-05-08T00:00:00Z"}')
>>> e.type, e.variant, e.occurred_at_ms
('exposure', 'control', 1494201600000)
>>> d = decode_campaign_event(b'{"event_id":"x2","customer_id":"42","campaign_id":"8","variant":"treatment",'
...     b'"type":"exposure","occurred_at":1494201600000,"campaign_type":"Type A","campaign_days":49,"covered_products":17178}')
>>> d.descriptor
CampaignDescriptor(campaign_type='Type A', campaign_days=49, coupons=None, covered_products=17178, discount_depth=None)
>>> p = decode_campaign_event(b'{"event_id":"x3","customer_id":"42","campaign_id":"8","variant":"control",'
...     b'"type":"exposure","occurred_at":1494201600000,"prior_days":56,"prior_covered_products":3,"prior_covered_spend":7.5}')
>>> p.prior
PriorPurchases(prior_days=56, prior_covered_products=3, prior_covered_spend=7.5)
>>> decode_campaign_event(b'{"event_id":"x1","customer_id":"42","campaign_id":"8","variant":"a",'
...                       b'"type":"click","occurred_at":0}')
Traceback (most recent call last):
...
streams.limits.InvalidEvent: type: expected 'exposure' or 'response', got 'click'
"""

from __future__ import annotations

from typing import Literal

import msgspec

from streams.contract import DEFAULT_LIMITS, _check_id, _epoch_ms, decode_wire
from streams.limits import InputLimits, InvalidEvent, brief, wall_clock_ms

__all__ = [
    "CAMPAIGN_EVENT_TYPES",
    "CONTROL",
    "CampaignDescriptor",
    "CampaignEvent",
    "CampaignEventType",
    "PriorPurchases",
    "decode_campaign_event",
]

CampaignEventType = Literal["exposure", "response"]
CAMPAIGN_EVENT_TYPES: tuple[CampaignEventType, ...] = ("exposure", "response")
CONTROL = "control"
"""The variant every other variant of a campaign is compared with."""


class _WireCampaignEvent(msgspec.Struct, forbid_unknown_fields=False):
    event_id: str
    customer_id: str
    campaign_id: str
    variant: str
    type: str
    occurred_at: str | int | float
    campaign_type: str | None = None
    campaign_days: int | None = None
    coupons: int | None = None
    covered_products: int | None = None
    discount_depth: float | None = None
    prior_days: int | None = None
    prior_covered_products: int | None = None
    prior_covered_spend: float | None = None


MAX_CAMPAIGN_DAYS = 3660
MAX_COUNT = 10_000_000
MAX_SPEND = 1e11  # the purchases contract's largest amount


class CampaignDescriptor(msgspec.Struct, frozen=True):
    """What an exposure says about its campaign (each field optional): its type, its length in
    days (start to end date, both included), the coupons it offers, the products they cover and
    the discount depth (coupon discount over shelf price, 0..1)."""

    campaign_type: str | None = None
    campaign_days: int | None = None
    coupons: int | None = None
    covered_products: int | None = None
    discount_depth: float | None = None


class PriorPurchases(msgspec.Struct, frozen=True):
    """What the customer bought of the campaign's covered products in the ``prior_days`` days
    before the exposure (each field optional): the number of distinct covered products and the
    money spent on them. Only purchases strictly before the exposure count: the shop's targeting
    system knows them when it picks its targets."""

    prior_days: int | None = None
    prior_covered_products: int | None = None
    prior_covered_spend: float | None = None


class CampaignEvent(msgspec.Struct, frozen=True):
    """A validated exposure or response, event time in epoch ms; ``descriptor`` None when the
    event describes nothing of its campaign, ``prior`` None when it says nothing of the
    customer's earlier purchases of the covered products."""

    event_id: str
    customer_id: str
    campaign_id: str
    variant: str
    type: CampaignEventType
    occurred_at_ms: int
    descriptor: CampaignDescriptor | None = None
    prior: PriorPurchases | None = None


_decoder = msgspec.json.Decoder(_WireCampaignEvent)


def decode_campaign_event(
    raw: bytes, limits: InputLimits = DEFAULT_LIMITS, now_ms: int | None = None
) -> CampaignEvent:
    """Validate one ``campaign-events`` message value; raise ``InvalidEvent`` on any breach.

    The same limits and accepted event-time window as purchases (``streams.limits``).
    """
    limits.check_size(raw)
    wire = decode_wire(_decoder, raw, limits)
    for field in ("event_id", "customer_id", "campaign_id", "variant"):
        _check_id(field, getattr(wire, field), limits)
    if wire.type == "exposure":
        kind: CampaignEventType = "exposure"
    elif wire.type == "response":
        kind = "response"
    else:
        raise InvalidEvent(f"type: expected 'exposure' or 'response', got {brief(wire.type)}")
    occurred_at_ms = _epoch_ms(wire.occurred_at)
    limits.check_event_time("occurred_at", occurred_at_ms, wall_clock_ms() if now_ms is None else now_ms)
    return CampaignEvent(
        event_id=wire.event_id,
        customer_id=wire.customer_id,
        campaign_id=wire.campaign_id,
        variant=wire.variant,
        type=kind,
        occurred_at_ms=occurred_at_ms,
        descriptor=_descriptor(wire, limits),
        prior=_prior(wire),
    )


def _descriptor(wire: _WireCampaignEvent, limits: InputLimits) -> CampaignDescriptor | None:
    """The optional campaign fields, checked; None when the event carries none of them."""
    if wire.campaign_type is not None:
        _check_id("campaign_type", wire.campaign_type, limits)
    for name, low, high in (
        ("campaign_days", 1, MAX_CAMPAIGN_DAYS),
        ("coupons", 0, MAX_COUNT),
        ("covered_products", 0, MAX_COUNT),
    ):
        value = getattr(wire, name)
        if value is not None and not low <= value <= high:
            raise InvalidEvent(f"{name}: expected an integer in {low}..{high}, got {value}")
    depth = wire.discount_depth
    if depth is not None and not 0.0 <= depth <= 1.0:  # also rejects NaN
        raise InvalidEvent(f"discount_depth: expected a number in 0..1, got {depth}")
    found = CampaignDescriptor(
        wire.campaign_type, wire.campaign_days, wire.coupons, wire.covered_products, depth
    )
    return None if found == CampaignDescriptor() else found


def _prior(wire: _WireCampaignEvent) -> PriorPurchases | None:
    """The optional prior-purchase fields, checked; None when the event carries none of them."""
    for name, low, high in (("prior_days", 1, MAX_CAMPAIGN_DAYS), ("prior_covered_products", 0, MAX_COUNT)):
        value = getattr(wire, name)
        if value is not None and not low <= value <= high:
            raise InvalidEvent(f"{name}: expected an integer in {low}..{high}, got {value}")
    spend = wire.prior_covered_spend
    if spend is not None and not 0.0 <= spend <= MAX_SPEND:  # also rejects NaN
        raise InvalidEvent(f"prior_covered_spend: expected a number in 0..{MAX_SPEND:.0e}, got {spend}")
    found = PriorPurchases(wire.prior_days, wire.prior_covered_products, spend)
    return None if found == PriorPurchases() else found
