"""The A/B readout: Wilson and Newcombe intervals against published values, edge cases, verdicts."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from state.campaigns.abtest import READOUT_COLUMNS, exposure_outcomes, newcombe_interval, readout, wilson_interval

# Newcombe RG (1998a) "Two-sided confidence intervals for the single proportion: comparison of
# seven methods", Statistics in Medicine 17:857-872, Table I, method 3 (score, no continuity correction).
WILSON_PUBLISHED = [
    ((81, 263), (0.2553, 0.3662)),
    ((15, 148), (0.0624, 0.1605)),
    ((0, 20), (0.0, 0.1611)),
    ((1, 29), (0.0061, 0.1718)),
]

# Newcombe RG (1998) "Interval estimation for the difference between independent proportions:
# comparison of eleven methods", Statistics in Medicine 17:873-890, Table II, method 10.
NEWCOMBE_PUBLISHED = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),  # (a), the worked example: difference 0.2000
    ((9, 10, 3, 10), (0.1705, 0.8090)),  # (b)
    ((5, 56, 0, 29), (-0.0381, 0.1926)),  # (d)
    ((0, 10, 0, 20), (-0.1611, 0.2775)),  # (e)
    ((0, 10, 0, 10), (-0.2775, 0.2775)),  # (f)
    ((10, 10, 0, 20), (0.6791, 1.0)),  # (g)
]


@pytest.mark.parametrize(("counts", "expected"), WILSON_PUBLISHED, ids=str)
def test_wilson_matches_newcombe_1998a(counts: tuple[int, int], expected: tuple[float, float]) -> None:
    assert wilson_interval(*counts) == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE_PUBLISHED, ids=str)
def test_newcombe_method_10_matches_newcombe_1998(
    counts: tuple[int, int, int, int], expected: tuple[float, float]
) -> None:
    assert newcombe_interval(*counts) == pytest.approx(expected, abs=5e-5)


def test_the_worked_example_through_the_readout() -> None:
    outcomes = _arms("8", control=(48, 80), treatment=(56, 70))
    row = readout(outcomes).set_index("variant").loc["treatment"]
    assert row["uplift"] == pytest.approx(0.2)
    assert (row["uplift_lower"], row["uplift_upper"]) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    assert row["verdict"] == "better than control"


def test_edges_no_response_and_everyone_responds() -> None:
    lower, upper = wilson_interval(0, 50)
    assert lower == 0.0 and 0 < upper < 0.1
    lower, upper = wilson_interval(50, 50)
    assert upper == 1.0 and 0.9 < lower < 1
    lower, upper = newcombe_interval(0, 50, 50, 50)
    assert lower >= -1.0 and upper < 0 and lower < -0.9
    lower, upper = newcombe_interval(50, 50, 50, 50)
    assert lower < 0 < upper
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    assert all(math.isnan(v) for v in newcombe_interval(3, 10, 0, 0))


def test_intervals_contain_the_estimate_and_stay_in_range() -> None:
    for x1, n1, x2, n2 in [(1, 3, 2, 3), (0, 1, 1, 1), (7, 1000, 5, 40), (39, 40, 1, 40)]:
        lower, upper = newcombe_interval(x1, n1, x2, n2)
        assert -1 <= lower <= x1 / n1 - x2 / n2 <= upper <= 1
        wider = newcombe_interval(x1, n1, x2, n2, confidence=0.99)
        assert wider[0] <= lower and upper <= wider[1]


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda: wilson_interval(5, 3), "successes <= trials"),
        (lambda: wilson_interval(-1, 3), "successes <= trials"),
        (lambda: newcombe_interval(1, 2, 3, 2), "successes <= trials"),
        (lambda: wilson_interval(1, 2, confidence=1.0), "confidence"),
    ],
)
def test_bad_counts_are_refused(call: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        call()  # type: ignore[operator]


def _arms(campaign: str, segment: str | None = None, **variants: tuple[int, int]) -> pd.DataFrame:
    """Outcomes with ``responses`` of ``exposures`` per variant: ``treatment=(56, 70)``."""
    rows = [
        {"campaign_id": campaign, "variant": variant, "responded": i < responses}
        for variant, (responses, exposures) in variants.items()
        for i in range(exposures)
    ]
    frame = pd.DataFrame(rows)
    if segment is not None:
        frame["segment"] = segment
    return frame


def test_verdicts() -> None:
    outcomes = pd.concat(
        [
            _arms("better", control=(10, 100), treatment=(30, 100)),
            _arms("worse", control=(30, 100), treatment=(10, 100)),
            _arms("unclear", control=(20, 100), treatment=(22, 100)),
            _arms("small arm", control=(10, 100), treatment=(29, 29)),
            _arms("small control", control=(0, 29), treatment=(30, 100)),
            _arms("no control", treatment=(30, 100)),
        ]
    )
    table = readout(outcomes)
    assert list(table.columns) == READOUT_COLUMNS
    verdicts = dict(zip(table["campaign_id"] + "/" + table["variant"], table["verdict"], strict=True))
    assert verdicts == {
        "better/control": "control",
        "better/treatment": "better than control",
        "worse/control": "control",
        "worse/treatment": "worse than control",
        "unclear/control": "control",
        "unclear/treatment": "no detectable difference",
        "small arm/control": "control",
        "small arm/treatment": "too few exposures",
        "small control/control": "control",
        "small control/treatment": "too few exposures",
        "no control/treatment": "too few exposures",
    }
    control = table[table["variant"] == "control"]
    assert control[["uplift", "uplift_lower", "uplift_upper"]].isna().all().all()
    assert table.loc[table["campaign_id"] == "no control", "uplift"].isna().all()
    small = table[(table["campaign_id"] == "small arm") & (table["variant"] == "treatment")].iloc[0]
    assert small["uplift"] == pytest.approx(0.9) and small["uplift_lower"] > 0  # shown, but not judged


def test_min_exposures_is_a_parameter() -> None:
    outcomes = _arms("c", control=(1, 10), treatment=(9, 10))
    assert readout(outcomes)["verdict"].tolist() == ["control", "too few exposures"]
    assert readout(outcomes, min_exposures=10)["verdict"].tolist() == ["control", "better than control"]


def test_segments_and_all_with_several_variants() -> None:
    outcomes = pd.concat(
        [
            _arms("c", "Champions", control=(20, 40), A=(35, 40), B=(20, 40)),
            _arms("c", "Hibernating", control=(2, 40), A=(3, 40), B=(1, 40)),
        ]
    )
    table = readout(outcomes)
    assert list(zip(table["segment"], table["variant"], strict=True)) == [
        ("all", "control"),
        ("all", "A"),
        ("all", "B"),
        ("Champions", "control"),
        ("Champions", "A"),
        ("Champions", "B"),
        ("Hibernating", "control"),
        ("Hibernating", "A"),
        ("Hibernating", "B"),
    ]
    rows = table.set_index(["segment", "variant"])
    assert rows.loc[("all", "A"), ["exposures", "responses"]].tolist() == [80, 38]
    assert rows.loc[("all", "A"), "uplift"] == pytest.approx(38 / 80 - 22 / 80)
    assert rows.loc[("Champions", "A"), "uplift"] == pytest.approx(35 / 40 - 20 / 40)
    assert rows.loc[("Champions", "A"), "verdict"] == "better than control"
    assert rows.loc[("Hibernating", "B"), "verdict"] == "no detectable difference"


def test_missing_segments_are_unknown_and_all_is_reserved() -> None:
    outcomes = _arms("c", "Champions", control=(1, 2), treatment=(1, 2))
    outcomes.loc[0, "segment"] = None
    assert set(readout(outcomes)["segment"]) == {"all", "Champions", "unknown"}
    with pytest.raises(ValueError, match="reserved"):
        readout(_arms("c", "all", control=(1, 2)))


def test_exposure_outcomes_count_only_responses_after_an_exposure() -> None:
    events = pd.DataFrame(
        [
            ("x1", "a", "exposure", "treatment", 10),
            ("r1", "a", "response", "treatment", 20),
            ("r2", "a", "response", "treatment", 25),  # a second response counts once
            ("x2", "b", "exposure", "control", 10),
            ("r3", "b", "response", "control", 5),  # before the exposure: no response
            ("r4", "c", "response", "treatment", 30),  # never exposed: ignored
            ("x3", "d", "exposure", "control", 10),
            ("x4", "d", "exposure", "treatment", 12),  # the first exposure decides the variant
            ("r5", "d", "response", "treatment", 12),
            ("x5", "e", "exposure", "treatment", 10),
            ("r6", "e", "response", "treatment", 10),  # at the exposure instant: counts
        ],
        columns=["event_id", "customer_id", "type", "variant", "occurred_at"],
    ).assign(campaign_id="8")
    outcomes = exposure_outcomes(events).set_index("customer_id")
    assert outcomes["variant"].to_dict() == {
        "a": "treatment",
        "b": "control",
        "d": "control",
        "e": "treatment",
    }
    assert outcomes["responded"].to_dict() == {"a": True, "b": False, "d": True, "e": True}
    assert outcomes["responded"].dtype == bool


def test_exposure_outcomes_keep_campaigns_apart() -> None:
    events = pd.DataFrame(
        [
            ("x1", "a", "1", "exposure", 10),
            ("x2", "a", "2", "exposure", 10),
            ("r1", "a", "2", "response", 11),
        ],
        columns=["event_id", "customer_id", "campaign_id", "type", "occurred_at"],
    ).assign(variant="treatment")
    outcomes = exposure_outcomes(events)
    assert outcomes.set_index("campaign_id")["responded"].to_dict() == {"1": False, "2": True}
