"""The alert rules on their own arrays, against the rules as the README states them (written out here)."""

from __future__ import annotations

import numpy as np

from state.customer.rfm import DAY_MS
from state.models.alert_rules import churn_band_rule, overdue_rule, responder_rule
from state.models.alerts import HIGH, LOW, MEDIUM, NO_BAND, AlertConfig
from state.models.model_health import ModelHealth

CFG = AlertConfig()
IDS = ["d", "a", "c", "b", "e"]
GOOD = ModelHealth(version=3, examples=5000.0, auc=0.8, ece=0.02)
SHUT = ModelHealth(version=3, examples=5000.0, auc=0.6, ece=0.02)


def test_overdue_fires_once_per_silence_and_a_purchase_rearms_it() -> None:
    at = 200 * DAY_MS
    days = np.array([5, 5, 2, 5, 5])
    first = np.zeros(5, dtype=np.int64)
    last = np.array([40, 190, 10, 40, 40]) * DAY_MS
    flag = np.array([0, 0, 0, 1, 1])
    bought = np.array([False, False, False, False, True])
    out = overdue_rule(at, IDS.__getitem__, flag, bought, days, first, last, CFG)
    # by hand: gap = last / (days - 1); overdue when silent > max(2 gap, 14) with >= 3 days, not yet flagged
    expected = [
        j
        for j in range(5)
        if days[j] >= 3
        and (flag[j] == 0 or bought[j])
        and (at - last[j]) / DAY_MS > max(2 * last[j] / DAY_MS / (days[j] - 1), 14)
    ]
    assert [a.customer_id for a in out.alerts] == sorted(IDS[j] for j in expected) == ["d", "e"]
    positions, values = out.columns["overdue"]
    assert dict(zip(positions.tolist(), values.tolist(), strict=True)) == {0: 1}  # e: 1 -> re-armed -> 1
    assert out.held_back == 0


def test_churn_bands_move_with_hysteresis_and_alert_valuable_silent_customers_only() -> None:
    at = 100 * DAY_MS
    cols = {
        "band": np.array([NO_BAND, LOW, MEDIUM, MEDIUM, HIGH]),
        "alerted_band": np.array([NO_BAND, NO_BAND, MEDIUM, NO_BAND, HIGH]),
        "m": np.array([5, 5, 5, 2, 5]),
        "last_ms": np.array([0, 0, 0, 0, 95]) * DAY_MS,
        "monetary_cents": np.full(5, 10_000),
    }
    p = np.array([0.8, 0.55, 0.45, 0.9, 0.3])
    out = churn_band_rule(at, IDS.__getitem__, cols, p, np.full(5, 0.5), GOOD, CFG)
    # bands: d enters High; a rises to Medium; c holds Medium (0.45 >= leave 0.4); b High; e falls to Low
    bands = dict(zip(*out.columns["band"], strict=True))
    assert {IDS[int(k)]: int(v) for k, v in bands.items()} == {"d": HIGH, "a": MEDIUM, "b": HIGH, "e": LOW}
    # alerts: valuable (m >= 4), silent >= 14 days, band >= Medium and above the alerted band:
    # d (High > none), a (Medium > none); c already alerted at Medium; b not valuable; e silent 5 days
    assert [a.customer_id for a in out.alerts] == ["a", "d"]
    assert out.alerts[0].figures["model_auc"] == 0.8 and out.alerts[1].figures["band"] == "High"
    shut = churn_band_rule(at, IDS.__getitem__, cols, p, np.full(5, 0.5), SHUT, CFG)
    assert shut.alerts == [] and shut.held_back == 2  # used up silently: the alerted band still moves
    assert np.array_equal(shut.columns["alerted_band"][1], out.columns["alerted_band"][1])


def test_a_responder_alerts_on_a_new_crossing_only() -> None:
    cols = {
        "responder": np.array([0, 0, 1, 1, 0]),
        "m": np.full(5, 3),
        "last_ms": np.zeros(5, dtype=np.int64),
    }
    propensity = np.array([0.75, 0.65, 0.65, 0.5, 0.69])  # enter at 0.7, leave below 0.6
    out = responder_rule(10 * DAY_MS, IDS.__getitem__, cols, propensity, np.zeros(5), GOOD, CFG)
    assert [a.customer_id for a in out.alerts] == ["d"]
    moved = dict(zip(*out.columns["responder"], strict=True))
    assert {IDS[int(k)]: int(v) for k, v in moved.items()} == {"d": 1, "b": 0}
    assert (
        responder_rule(10 * DAY_MS, IDS.__getitem__, cols, propensity, np.zeros(5), SHUT, CFG).held_back == 1
    )
