"""The four alert rules as pure functions: the arrays in, a :class:`RuleOutcome` out.

Each rule is documented where it is written (the kinds and their hysteresis are summed up in
:mod:`state.models.alerts`). A rule reads the rows it judges, column by column (``id_of`` names the customer at a position), and returns the new
values of the flag columns it keeps (``overdue``, ``band``, ``alerted_band``, ``responder``) for the
rows whose value moves, the alerts it raises in customer-id order, and how many crossings a shut
model gate held back. The evaluator (``state.evaluator.evaluate``) writes the columns and keeps the
alerts; nothing here touches it, so each rule is tested on its own arrays.

>>> cfg = AlertConfig()
>>> out = overdue_rule(
...     at_ms=100 * DAY_MS, id_of=["a", "b"].__getitem__, flag=np.array([0, 0]), bought=np.array([False, False]),
...     purchase_days=np.array([5, 5]), first_ms=np.array([0, 0]),
...     last_ms=np.array([40 * DAY_MS, 90 * DAY_MS]), cfg=cfg)
>>> [a.customer_id for a in out.alerts], out.columns["overdue"][0].tolist(), out.alerts[0].figures["ratio"]
(['a'], [0], 6.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from state.customer.rfm import DAY_MS
from state.models.alerts import MEDIUM, Alert, AlertConfig, AlertKind, Figure, band_name, next_band
from state.models.model_health import ModelHealth, gate_open
from state.segments.drift import DriftEvent

__all__ = ["RuleOutcome", "churn_band_rule", "drift_alert", "model_figures", "overdue_rule", "responder_rule"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class RuleOutcome:
    """What one rule decided at an instant.

    ``columns``: per flag column, the positions (into the rows the rule was given) whose value
    moves and their new values; ``alerts`` in customer-id order; ``held_back``: crossings a shut
    model gate used up silently (opening the gate later releases no backlog)."""

    columns: dict[str, tuple[IntArray, IntArray]] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    held_back: int = 0


def model_figures(health: ModelHealth) -> dict[str, Figure]:
    """What an alert says about the model behind it: version, recent prequential AUC and ECE."""
    return {
        "model_version": float(health.version),
        "model_auc": None if health.auc is None else round(health.auc, 4),
        "model_ece": None if health.ece is None else round(health.ece, 4),
    }


def _moved(name: str, old: IntArray, new: IntArray) -> tuple[str, tuple[IntArray, IntArray]]:
    at = np.flatnonzero(old != new).astype(np.int64)
    return name, (at, new[at].astype(np.int64))


def _raised(
    kind: AlertKind,
    at_ms: int,
    id_of: Callable[[int], str],
    due: IntArray,
    figures: Callable[[int], dict[str, Figure]],
) -> list[Alert]:
    """One ``kind`` alert per position in ``due``, in customer-id order, with ``figures(position)``."""
    return [Alert(id_of(j), at_ms, kind, figures(j)) for j in sorted(due.tolist(), key=id_of)]


def overdue_rule(
    at_ms: int,
    id_of: Callable[[int], str],
    flag: IntArray,
    bought: BoolArray,
    purchase_days: IntArray,
    first_ms: IntArray,
    last_ms: IntArray,
    cfg: AlertConfig,
) -> RuleOutcome:
    """``overdue``: a customer with at least ``overdue_min_purchase_days`` purchase days whose silence
    exceeds ``overdue_factor`` times their own mean gap between purchase days (and at least
    ``overdue_min_days``). One alert per silence: a purchase (``bought``) re-arms it. A rule, never
    gated."""
    armed = np.where(bought, 0, flag)
    gap = (last_ms - first_ms) / DAY_MS / np.maximum(purchase_days - 1, 1)
    silent = (at_ms - last_ms) / DAY_MS
    due = (
        (purchase_days >= cfg.overdue_min_purchase_days)
        & (armed == 0)
        & (silent > np.maximum(cfg.overdue_factor * gap, cfg.overdue_min_days))
    )
    alerts = _raised(
        "overdue",
        at_ms,
        id_of,
        np.flatnonzero(due),
        lambda j: {
            "silent_days": round(float(silent[j]), 3),
            "usual_gap_days": round(float(gap[j]), 3),
            "ratio": round(float(silent[j] / gap[j]), 3) if gap[j] > 0 else None,
            "purchase_days": float(purchase_days[j]),
        },
    )
    return RuleOutcome(dict([_moved("overdue", flag, np.where(due, 1, armed))]), alerts)


def churn_band_rule(
    at_ms: int,
    id_of: Callable[[int], str],
    cols: Mapping[str, IntArray],
    probability: FloatArray,
    alive: FloatArray,
    health: ModelHealth,
    cfg: AlertConfig,
) -> RuleOutcome:
    """``churn_risk``: churn bands move with hysteresis (``state.models.alerts.next_band``); a
    *valuable* customer (M score at least ``valuable_min_m_score``), silent for at least
    ``churn_alert_min_silent_days``, whose band is Medium or High and above the band they were last
    alerted at, is alerted. A band that falls re-arms the alert at its new level. Fires only while
    the churn model's gate is open (``state.models.model_health.gate_open``)."""
    previous, alerted = cols["band"], cols["alerted_band"]
    band = next_band(previous, probability, cfg.bands)
    rearmed = np.minimum(alerted, band)
    silent = (at_ms - cols["last_ms"]) / DAY_MS
    due = (
        (cols["m"] >= cfg.valuable_min_m_score)
        & (silent >= cfg.churn_alert_min_silent_days)
        & (band >= MEDIUM)
        & (band > rearmed)
    )
    now_alerted = np.where(due, band, rearmed).astype(np.int64)
    columns = dict([_moved("band", previous, band), _moved("alerted_band", alerted, now_alerted)])
    if not gate_open(health, cfg.min_auc, cfg.max_ece):
        return RuleOutcome(columns, [], int(due.sum()))
    alerts = _raised(
        "churn_risk",
        at_ms,
        id_of,
        np.flatnonzero(due),
        lambda j: {
            "churn_probability": round(float(probability[j]), 6),
            "band": band_name(int(band[j])),
            "previous_band": band_name(int(rearmed[j])),
            "p_alive": round(float(alive[j]), 6),
            "m_score": float(cols["m"][j]),
            "monetary": float(cols["monetary_cents"][j] / 100),
            "silent_days": float(silent[j]),
            **model_figures(health),
        },
    )
    return RuleOutcome(columns, alerts)


def responder_rule(
    at_ms: int,
    id_of: Callable[[int], str],
    cols: Mapping[str, IntArray],
    propensity: FloatArray,
    churn: FloatArray,
    health: ModelHealth,
    cfg: AlertConfig,
) -> RuleOutcome:
    """``likely_responder``: a buyer whose response propensity reached ``responder_enter`` stays a
    likely responder until it falls below ``responder_leave``; only a new crossing alerts. Fires only
    while the response model's gate is open."""
    flag = cols["responder"]
    now = np.where(flag == 1, propensity >= cfg.responder_leave, propensity >= cfg.responder_enter)
    became = np.flatnonzero(now & (flag == 0))
    columns = dict([_moved("responder", flag, now.astype(np.int64))])
    if not gate_open(health, cfg.min_auc, cfg.max_ece):
        return RuleOutcome(columns, [], int(became.size))
    alerts = _raised(
        "likely_responder",
        at_ms,
        id_of,
        became,
        lambda j: {
            "response_propensity": round(float(propensity[j]), 6),
            "churn_probability": round(float(churn[j]), 6),
            "m_score": float(cols["m"][j]),
            "recency_days": float((at_ms - cols["last_ms"][j]) // DAY_MS),
            **model_figures(health),
        },
    )
    return RuleOutcome(columns, alerts)


def drift_alert(event: DriftEvent, group: str, name: str, id_of: Callable[[int], str]) -> Alert:
    """``segment_drift``: a named segment's or cluster's size share, value share or mean R/F/M
    crossed its CUSUM control limit (:mod:`state.segments.drift`). ``customer_id`` names the group,
    ``segment:<name>`` or ``cluster:<id>``; ``id_of`` gives a population row's customer id. A rule,
    never gated."""
    figures: dict[str, Figure] = {"group": group, "name": name, "metrics": list(event.metrics)}
    for metric in event.before:
        before, after = event.before[metric], event.after[metric]
        figures[f"{metric}_before"] = None if before is None else round(before, 6)
        figures[f"{metric}_after"] = None if after is None else round(after, 6)
    figures |= {
        "reference_days": float((event.at_ms - event.since_ms) // DAY_MS),
        "customers": float(event.members),
        "entered": float(event.entered),
        "left": float(event.left),
        "top_movers": [id_of(int(row)) for row in event.movers],
    }
    key = f"{group}:{name}" if group == "segment" else f"cluster:{event.key}"
    return Alert(key, event.at_ms, "segment_drift", figures)
