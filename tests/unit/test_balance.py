"""Balance (SMD), inverse-propensity weights and the weighted Qini, against pandas and loop oracles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from state.campaigns.balance import inverse_propensity_weights, standardized_mean_difference
from state.campaigns.qini import bootstrap_qini, qini_coefficient, qini_curve, uplift_at


def _data(n: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    return pd.DataFrame(
        {
            "x": x,
            "e": 0.1 + 0.7 * x,
            "t": rng.random(n) < 0.1 + 0.7 * x,
            "y": rng.random(n) < 0.2 + 0.5 * x,
            "u": rng.normal(size=n),
            "g": rng.integers(0, 3, n),
        }
    )


def test_weights_match_a_pandas_groupby() -> None:
    d = _data()
    raw = np.where(d["t"], 1 / d["e"].clip(0.2, 0.8), 1 / (1 - d["e"].clip(0.2, 0.8)))
    d = d.assign(raw=raw)
    expected = (
        d["raw"]
        / d.groupby(["g", "t"])["raw"].transform("sum")
        * d.groupby(["g", "t"])["raw"].transform("size")
    )
    got = inverse_propensity_weights(d["e"].to_numpy(), d["t"].to_numpy(), d["g"].to_numpy(), clip=0.2)
    np.testing.assert_allclose(got, expected)


def test_smd_matches_pandas_and_weighting_with_the_true_propensity_balances() -> None:
    d = _data(20_000, seed=2)
    w = inverse_propensity_weights(d["e"].to_numpy(), d["t"].to_numpy(), np.zeros(len(d), np.int64))
    arms = d.assign(w=w, wx=d["x"] * w).groupby("t")
    spread = np.sqrt(arms["x"].var(ddof=0).mean())
    before = (arms["x"].mean()[True] - arms["x"].mean()[False]) / spread
    after = (
        (arms["wx"].sum() / arms["w"].sum())[True] - (arms["wx"].sum() / arms["w"].sum())[False]
    ) / spread
    t = d["t"].to_numpy()
    assert standardized_mean_difference(d["x"].to_numpy(), t) == pytest.approx(before)
    assert standardized_mean_difference(d["x"].to_numpy(), t, w) == pytest.approx(after)
    assert before > 0.5 and abs(after) < 0.05
    assert np.isnan(standardized_mean_difference(np.ones(4), np.array([True, False, True, False])))
    assert np.isnan(standardized_mean_difference(np.arange(3.0), np.ones(3, np.bool_)))


def _loop_qini(u: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """The weighted Qini coefficient by its definition, one prefix at a time."""
    order = sorted(range(len(u)), key=lambda i: -u[i])  # sorted() is stable, as the ranking is
    n = len(u)
    curve = []
    for k in range(1, n + 1):
        top = order[:k]
        wt = sum(w[i] for i in top if t[i])
        wc = sum(w[i] for i in top if not t[i])
        rt = sum(w[i] for i in top if t[i] and y[i])
        rc = sum(w[i] for i in top if not t[i] and y[i])
        curve.append(rt - (rc * wt / wc if wc > 0 else 0.0))
    return sum(q - (k + 1) * curve[-1] / n for k, q in enumerate(curve)) / n**2


def test_weighted_qini_matches_its_definition_and_all_ones_is_the_plain_one() -> None:
    d = _data(150, seed=4)
    u, t, y = d["u"].to_numpy(), d["t"].to_numpy(), d["y"].to_numpy()
    w = inverse_propensity_weights(d["e"].to_numpy(), t, np.zeros(len(d), np.int64))
    assert qini_coefficient(u, t, y, w) == pytest.approx(_loop_qini(u, t, y, w))
    assert qini_coefficient(u, t, y, np.ones(len(d))) == qini_coefficient(u, t, y)
    np.testing.assert_array_equal(qini_curve(u, t, y, np.ones(len(d))), qini_curve(u, t, y))
    top = d.assign(w=w).iloc[np.argsort(-u, kind="stable")[:45]]  # 30%
    rate = {arm: np.average(g["y"], weights=g["w"]) for arm, g in top.groupby("t")}
    assert uplift_at(u, t, y, 0.3, w) == pytest.approx(rate[True] - rate[False])
    low, high = bootstrap_qini(u, t, y, weights=w, resamples=50)
    assert low < qini_coefficient(u, t, y, w) < high


def test_without_an_effect_weighting_removes_what_the_plain_qini_reads_into_a_ranking() -> None:
    """Targeting and response both follow ``x``, the campaign does nothing: the plain Qini of a
    ranking by ``x`` still moves far from 0, the inverse-propensity-weighted one stays near it."""
    rng = np.random.default_rng(3)
    n = 20_000
    x = rng.random(n)
    e = 0.05 + 0.6 * x
    t, y = rng.random(n) < e, rng.random(n) < 0.1 + 0.7 * x**2
    w = inverse_propensity_weights(e, t, np.zeros(n, np.int64))
    for ranking in (x, -x, (x - 0.5) ** 2):
        assert abs(qini_coefficient(ranking, t, y)) > 0.006
        assert abs(qini_coefficient(ranking, t, y, w)) < 0.002
