"""The segment evaluator on its own: determinism, decay, cut-points, dwell, restore (pure, no I/O)."""

from __future__ import annotations

import dataclasses
import itertools
import pickle
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import cache

import msgspec
import numpy as np
import pandas as pd
import pytest

from segstream.sources import load_cdnow, occurred_at_ms
from state.campaigns.abtest import exposure_outcomes, readout
from state.campaigns.campaign_book import CampaignBook
from state.campaigns.response import ResponseModel, response_feature_names
from state.customer import snapshots
from state.customer.profiles import Change, LogEntry, Profile, fold_changes, state_from_log
from state.customer.rfm import DAY_MS
from state.evaluator.candidates import decayed
from state.evaluator.config import NEVER, EvaluatorConfig
from state.evaluator.evaluate import Evaluator
from state.evaluator.instants import evaluation_instants
from state.evaluator.predict import LifetimeModel, lifetime_scores
from state.evaluator.read_model import summary_record
from state.evaluator.saved import read_population
from state.models.alerts import AlertConfig
from state.models.btyd import p_alive
from state.models.clusters import ClusterConfig
from state.segments.cutpoints import scores_at
from state.segments.population import summarize
from state.segments.segments import load_preset, score_customers
from streams.campaign_contract import CampaignEvent
from tests.summary_oracle import assert_same_groups, population_rows

PRESET = load_preset("rfm11")
# a lighter cluster learner than the worker's (fewer points per day, shorter warm-up): same code paths
CONFIG = EvaluatorConfig(PRESET, ClusterConfig(k_max=4, warmup=300, publish_every=NEVER), learn_per_step=20)
UNGATED = dataclasses.replace(CONFIG, alerts=AlertConfig(min_auc=0.0, max_ece=1.0))  # every model earns
Log = dict[str, list[LogEntry]]


CUSTOMERS = 1000


@cache
def cdnow_sample() -> tuple[tuple[str, LogEntry], ...]:
    """The events of the first CUSTOMERS customers of the CDNOW sample (kept small: unit tests)."""
    frame = load_cdnow(sample=True)
    frame = frame[frame["customer_id"].isin(sorted(frame["customer_id"].unique())[:CUSTOMERS])]
    times = occurred_at_ms(frame)
    cents = (frame["amount"] * 100).round().astype(int).tolist()
    return tuple(
        (c, LogEntry(t, e, "purchase", a))
        for c, t, e, a in zip(frame["customer_id"], times, frame["event_id"], cents, strict=True)
    )


def run(
    entries: Sequence[tuple[str, LogEntry]], ticks: Iterable[int], evaluator: Evaluator | None = None
) -> tuple[Evaluator, list[Change]]:
    """Feed entries in the given arrival order; before each tick, every entry that occurred before it."""
    evaluator = evaluator or Evaluator(CONFIG)
    logs: Log = defaultdict(list)
    pending = list(entries)
    changes: list[Change] = []
    for tick in ticks:
        due = {c for c, e in pending if e.occurred_at_ms < tick}
        for c, e in [p for p in pending if p[1].occurred_at_ms < tick]:
            logs[c].append(e)
        pending = [p for p in pending if p[1].occurred_at_ms >= tick]
        changes += evaluator.advance(tick, {c: logs[c] for c in due})
    return evaluator, changes


def key(change: Change) -> tuple[object, ...]:
    return (
        change.customer_id,
        change.at_ms,
        change.reason,
        change.before,
        change.after,
        change.cutpoint_version,
        change.model_version,
    )


@cache
def sorted_run() -> tuple[Evaluator, list[Change], int]:
    entries = sorted(cdnow_sample(), key=lambda p: p[1].occurred_at_ms)
    end = max(e.occurred_at_ms for _, e in entries) + 1
    evaluator, changes = run(
        entries,
        [*range(entries[0][1].occurred_at_ms // DAY_MS * DAY_MS + 10 * DAY_MS, end, 10 * DAY_MS), end],
    )
    return evaluator, changes, end


def test_shuffled_arrival_and_other_ticks_give_the_same_changes_and_profiles() -> None:
    evaluator, changes, end = sorted_run()
    shuffled = list(cdnow_sample())
    random.Random(3).shuffle(shuffled)
    other, other_changes = run(shuffled, [end])  # one tick at the end, everything out of order
    assert len(changes) > 3 * CUSTOMERS
    assert Counter(map(key, changes)) == Counter(map(key, other_changes))
    assert dict(zip(evaluator.population.ids, evaluator.population.profiles, strict=True)) == dict(
        zip(other.population.ids, other.population.profiles, strict=True)
    )
    assert {c.reason for c in changes} == {"purchase", "recency_decay", "cutpoint_update", "model_update"}


def test_folding_each_customers_changes_reproduces_the_final_profile() -> None:
    evaluator, changes, _ = sorted_run()
    folded = fold_changes(changes)
    final = {c: p for c, p in zip(evaluator.population.ids, evaluator.population.profiles, strict=True) if p}
    assert folded == final
    assert len(final) == CUSTOMERS


def test_final_scores_are_the_exact_rank_formula_and_the_preset_segment() -> None:
    evaluator, _, end = sorted_run()
    pop = evaluator.population
    exact = score_customers(pop.state(i) for i in range(len(pop)))
    for i, customer in enumerate(pop.ids):
        profile = pop.profiles[i]
        assert profile is not None
        assert profile[:3] == exact[customer], customer
        assert profile.rfm_segment == PRESET.segment_for(*exact[customer]).segment
    assert evaluator.clock_ms == end


def test_a_silent_year_moves_customers_down_by_recency_decay_only() -> None:
    evaluator, _, end = sorted_run()
    restored = Evaluator.restore(
        CONFIG,
        evaluator.clock_ms,
        evaluator.cutpoints.to_json() if evaluator.cutpoints else None,
        evaluator.snapshot(),
        [evaluator.record(i) for i in range(len(evaluator.population))],
    )
    everything = restored.advance(end + 365 * DAY_MS, {})
    # no purchases and no new cut-points; the cluster model keeps learning the ageing population
    assert {c.reason for c in everything} == {"recency_decay", "model_update"}
    assert all(c.after[:4] == c.before[:4] for c in everything if c.reason == "model_update" and c.before)
    changes = [c for c in everything if c.reason == "recency_decay"]
    assert all(c.before is not None and c.after.r_score < c.before.r_score for c in changes)
    assert all(c.after[1:3] == c.before[1:3] for c in changes if c.before)  # F and M stay
    landed = Counter(c.after.rfm_segment for c in changes)
    assert landed["At Risk"] + landed["Hibernating"] + landed["Lost"] > len(changes) / 2
    assert restored.cutpoints is not None and evaluator.cutpoints is not None
    assert restored.cutpoints.version == evaluator.cutpoints.version  # time alone never re-versions


def test_restore_then_continue_equals_running_straight_through() -> None:
    entries = sorted(cdnow_sample(), key=lambda p: p[1].occurred_at_ms)
    end = max(e.occurred_at_ms for _, e in entries) + 1
    middle = entries[len(entries) // 2][1].occurred_at_ms // DAY_MS * DAY_MS
    straight, straight_changes = run(entries, [middle, end])
    first, first_changes = run(entries, [middle])
    records = first.take_dirty()
    assert len(records) == len(first.population)
    restored = Evaluator.restore(
        CONFIG,
        first.clock_ms,
        first.cutpoints.to_json() if first.cutpoints else None,
        first.snapshot(),
        records,
        first.batch_entries(),
    )
    logs: Log = defaultdict(list)
    for c, e in entries:
        logs[c].append(e)
    due = {c for c, e in entries if e.occurred_at_ms >= middle}
    rest = restored.advance(end, {c: logs[c] for c in due})
    assert Counter(map(key, first_changes + rest)) == Counter(map(key, straight_changes))
    assert restored.summary().churn == straight.summary().churn  # pending predictions restored


def test_decay_range_query_finds_exactly_the_customers_whose_r_falls() -> None:
    evaluator, _, end = sorted_run()
    cp = evaluator.cutpoints
    assert cp is not None
    pop = evaluator.population
    for later in (end + DAY_MS, end + 30 * DAY_MS, end + 200 * DAY_MS):
        found = set(decayed(evaluator._sorted_columns(), cp.max_age_ms, end, later).tolist())
        brute = {
            i
            for i in pop.buyers().tolist()
            if scores_at(cp, int(pop.column("last_ms")[i]), 1, 0, later)[0]
            != scores_at(cp, int(pop.column("last_ms")[i]), 1, 0, end)[0]
        }
        assert found == brute and (later == end + DAY_MS or found)


def test_a_late_event_is_evaluated_at_the_next_tick_as_a_purchase() -> None:
    day = 10_000 * DAY_MS
    a, b = LogEntry(day + 5, "a1", "purchase", 1000), LogEntry(day + 7, "b1", "purchase", 500)
    evaluator = Evaluator(CONFIG)
    first = evaluator.advance(day + DAY_MS, {"a": [a]})
    assert [(c.customer_id, c.reason) for c in first] == [("a", "purchase")]
    late = evaluator.advance(day + 2 * DAY_MS, {"b": [b]})  # b occurred before the clock, arrived after
    assert ("b", "purchase") in [(c.customer_id, c.reason) for c in late]
    assert all(c.at_ms == day + 2 * DAY_MS for c in late)


def test_refund_only_customers_get_no_profile_and_refunds_move_m() -> None:
    day = 10_000 * DAY_MS
    logs = {
        "a": [LogEntry(day, "a1", "purchase", 10_000)],
        "b": [LogEntry(day, "b1", "purchase", 5_000)],
        "r": [LogEntry(day, "r1", "refund", -500)],
    }
    evaluator = Evaluator(CONFIG)
    changes = evaluator.advance(day + DAY_MS, logs)
    assert {c.customer_id for c in changes} == {"a", "b"}
    logs["a"].append(LogEntry(day + DAY_MS + 1, "a2", "refund", -9_000))
    after = evaluator.advance(day + 3 * DAY_MS, {"a": logs["a"]})
    by_customer = {c.customer_id: c for c in after}
    assert (
        by_customer["a"].reason == "purchase"
        and by_customer["a"].after.m_score < by_customer["a"].before.m_score
    )  # type: ignore[union-attr]


def test_dwell_holds_a_customer_in_their_cluster() -> None:
    config = EvaluatorConfig(
        PRESET, ClusterConfig(k_max=4, warmup=40, publish_every=40), min_dwell_ms=30 * DAY_MS
    )
    rng = random.Random(1)
    logs: Log = defaultdict(list)
    for i in range(80):  # two kinds of customers: small spenders and big spenders
        logs[f"c{i:02}"].append(
            LogEntry(
                10_000 * DAY_MS + i, f"e{i}", "purchase", 1_000 if i % 2 else 90_000 + rng.randint(0, 99)
            )
        )
    evaluator = Evaluator(config)
    evaluator.advance(10_001 * DAY_MS, logs)
    evaluator.advance(10_002 * DAY_MS, {c: log for c, log in logs.items()})
    row = evaluator.population.index["c01"]
    cluster, since = (
        int(evaluator.population.column("cluster")[row]),
        int(evaluator.population.column("since_ms")[row]),
    )
    assert evaluator.model.is_ready and cluster >= 0
    # c01 turns into a big spender: the model proposes the big spenders' cluster, the dwell says wait
    logs["c01"].append(LogEntry(10_003 * DAY_MS, "big", "purchase", 500_000))
    evaluator.advance(10_004 * DAY_MS, {"c01": logs["c01"]})
    assert int(evaluator.population.column("cluster")[row]) == cluster
    features_now = np.asarray([[np.log1p(2), np.log1p(5010), 1.0, 2505.0, 4.0, 3.0]])
    proposed = int(evaluator.model.assign_rows(features_now)[0])
    assert proposed != cluster
    logs["c01"].append(LogEntry(since + 40 * DAY_MS, "big2", "purchase", 500_000))
    changes = evaluator.advance(since + 41 * DAY_MS, {"c01": logs["c01"]})
    moved = [c for c in changes if c.customer_id == "c01"]
    assert moved and moved[-1].after.cluster != cluster


def test_state_from_log_is_the_rfm_fold() -> None:
    entries = [e for c, e in cdnow_sample() if c == "00004"]
    state = state_from_log("00004", entries, 10**15)
    assert state is not None and state.frequency == len(entries)
    assert state.monetary_cents == sum(e.amount_cents for e in entries)


def test_evaluation_instants_cover_the_grid_and_the_tick() -> None:
    assert evaluation_instants(DAY_MS - 1, 3 * DAY_MS + 5, DAY_MS) == [
        DAY_MS,
        2 * DAY_MS,
        3 * DAY_MS,
        3 * DAY_MS + 5,
    ]
    assert evaluation_instants(DAY_MS, DAY_MS, DAY_MS) == []


def test_fold_changes_rejects_a_broken_chain() -> None:
    p = Profile(1, 1, 1, "Lost", None, None)
    q = Profile(2, 1, 1, "Hibernating", None, None)
    with pytest.raises(ValueError, match="missing or out of order"):
        fold_changes([Change("c", 1, "purchase", None, p, 1, 0), Change("c", 2, "purchase", q, p, 1, 0)])


def test_summary_sizes_and_shares_add_up_by_segment_and_cluster() -> None:
    evaluator, _, _ = sorted_run()
    summary = evaluator.summary()
    segments, clusters = summary.segments, summary.clusters
    assert [s.segment for s in segments] == list(PRESET.segments)
    assert sum(s.customers for s in segments) == summary.customers == CUSTOMERS
    assert sum(s.value_share for s in segments) == pytest.approx(1, abs=1e-3)
    sizes = Counter(p.rfm_segment for p in evaluator.population.profiles if p)
    assert {s.segment: s.customers for s in segments if s.customers} == dict(sizes)
    champions = next(s for s in segments if s.segment == "Champions")
    lost = next(s for s in segments if s.segment == "Lost")
    assert champions.mean_recency_days is not None and lost.mean_recency_days is not None
    assert champions.mean_recency_days < lost.mean_recency_days
    assert sum(c.customers for c in clusters) == sum(
        1 for p in evaluator.population.profiles if p and p.cluster is not None
    )


def test_summary_groups_equal_a_pandas_groupby_over_the_evaluated_rows_and_their_reload() -> None:
    evaluator, _, _ = sorted_run()
    pop, names = evaluator.population, evaluator.model.cluster_names()
    at = evaluator.clock_ms or 0
    assert names and min(pop.column("cluster")) >= 0  # clusters to check, every row in one
    assert_same_groups(summary_record(evaluator.summary()), population_rows(pop), at, names)
    reloaded = read_population([pop.record(row) for row in range(len(pop))])
    assert summarize(reloaded, at, PRESET.segments, names) == summarize(pop, at, PRESET.segments, names)


def synthetic_logs(day0: int) -> Log:
    """150 customers from ``day0``: 100 buying every 3 to 30 days for 300 days, 50 buying twice then never."""
    rng = random.Random(3)
    logs: Log = {}
    for i in range(100):
        days = [rng.randrange(10)]
        while days[-1] < 300:
            days.append(days[-1] + rng.randrange(3, 31))
        logs[f"r{i:03}"] = [
            LogEntry(day0 + d * DAY_MS, f"r{i}-{d}", "purchase", 1_000 + 10 * i) for d in days
        ]
    for i in range(50):
        logs[f"s{i:03}"] = [
            LogEntry(day0 + (d + i % 5) * DAY_MS, f"s{i}-{d}", "purchase", 5_000) for d in (0, 20)
        ]
    return logs


def test_churn_batches_are_labelled_at_their_horizon_from_what_happened_after() -> None:
    day0 = 28 * 400 * DAY_MS  # a checkpoint instant (every 28 days of epoch time)
    logs, end = synthetic_logs(day0), day0 + 420 * DAY_MS
    evaluator = Evaluator(CONFIG)
    evaluator.advance(day0 + 80 * DAY_MS, logs)
    assert evaluator.lifetime is not None and evaluator.batches  # none labelled yet: 80 < 90 days
    first = evaluator.batches[0].made_at_ms
    later = day0 + 80 * DAY_MS
    evaluator.advance(end, {c: log for c, log in logs.items() if log[-1].occurred_at_ms >= later})
    # independently: every checkpoint from the first whose horizon ended scored every buyer;
    # positive = no purchase in [t, t + 90 days)
    examples = positives = 0
    checkpoints = range(first, end - 90 * DAY_MS + 1, 28 * DAY_MS)
    for t in checkpoints:
        for log in logs.values():
            times = [e.occurred_at_ms for e in log]
            if min(times) < t:
                examples += 1
                positives += not any(t <= m < t + 90 * DAY_MS for m in times)
    churn = evaluator.summary().churn
    assert churn.version == len(checkpoints)
    assert (churn.examples, churn.positives) == (examples, positives) and 0 < positives < examples
    assert [b.made_at_ms for b in evaluator.batches] == list(range(end - 84 * DAY_MS, end + 1, 28 * DAY_MS))
    assert (
        churn.auc is not None and churn.auc > 0.7
    )  # above chance, the first batches scored by an untrained model included
    assert churn.horizon_days == 90


def test_lifetime_model_is_refitted_on_its_schedule_and_scores_in_closed_form() -> None:
    day0 = 28 * 400 * DAY_MS
    logs, at = synthetic_logs(day0), day0 + 200 * DAY_MS
    evaluator = Evaluator(CONFIG)
    evaluator.advance(at, logs)
    model = evaluator.lifetime
    assert (
        model is not None and model.version >= 2 and model.fitted_at_ms == day0 + 196 * DAY_MS
    )  # every 28 days
    summary = evaluator.summary().lifetime
    assert summary is not None and LifetimeModel.from_params(summary) == model
    pop = evaluator.population
    rows = np.array([pop.index[c] for c in sorted(logs)])
    alive = lifetime_scores(model, pop.columns(rows), at)["p_alive"]
    # the closed form from each customer's own (x, t_x, T), in weeks, worked out from the log
    x, t_x, T = [], [], []
    for c in sorted(logs):
        days = sorted({e.occurred_at_ms // DAY_MS for e in logs[c] if e.occurred_at_ms < at})
        x.append(len(days) - 1)
        t_x.append((days[-1] - days[0]) / 7)
        T.append((at / DAY_MS - days[0]) / 7)
    assert np.allclose(alive, p_alive(model.bgnbd, x, t_x, T), rtol=1e-12)
    assert alive[:100].mean() > alive[100:].mean()  # the ones silent for six months are less alive


def test_alerts_fire_for_silent_valuable_customers_and_never_repeat_without_a_crossing() -> None:
    """Each alert carries its figures; a second churn alert needs a higher band or a fall in between."""
    evaluator, _, _ = sorted_run()
    alerts = evaluator.alerts
    kinds = Counter(a.kind for a in alerts)
    assert kinds["churn_risk"] > 100 and kinds["overdue"] > 100
    assert len({a.alert_id for a in alerts}) == len(alerts)
    rank = {None: 0, "Low": 1, "Medium": 2, "High": 3}
    last: dict[str, str | float | None] = {}
    for alert in (a for a in alerts if a.kind == "churn_risk"):
        f = alert.figures
        assert f["m_score"] in (4.0, 5.0) and isinstance(f["silent_days"], float) and f["silent_days"] >= 14
        assert f["band"] in ("Medium", "High") and rank[f["band"]] > rank[f["previous_band"]]  # type: ignore[index]
        assert isinstance(f["churn_probability"], float) and f["churn_probability"] >= 0.4  # held down to 0.4
        if (
            alert.customer_id in last
        ):  # again: a higher band, or the band fell below the last alert in between
            before = rank[last[alert.customer_id]]  # type: ignore[index]
            assert rank[f["band"]] > before or rank[f["previous_band"]] < before  # type: ignore[index]
        last[alert.customer_id] = f["band"]
    overdue: dict[str, list[int]] = defaultdict(list)
    for alert in (a for a in alerts if a.kind == "overdue"):
        f = alert.figures
        assert isinstance(f["silent_days"], float) and isinstance(f["usual_gap_days"], float)
        assert f["silent_days"] > max(2 * f["usual_gap_days"], 14) - 0.01 and f["purchase_days"] >= 3  # type: ignore[operator]
        overdue[alert.customer_id].append(alert.at_ms)
    logs: Log = defaultdict(list)
    for c, e in cdnow_sample():
        logs[c].append(e)
    for customer, times in overdue.items():  # one alert per silence: a purchase between two alerts
        for a, b in itertools.pairwise(times):
            assert any(a <= e.occurred_at_ms < b for e in logs[customer])


def test_churn_model_learns_from_cdnow_and_is_the_same_whatever_the_arrival_order() -> None:
    evaluator, _, end = sorted_run()
    shuffled = list(cdnow_sample())
    random.Random(9).shuffle(shuffled)
    other, _ = run(shuffled, [end])
    report, other_report = evaluator.summary().churn, other.summary().churn
    assert report == other_report
    assert [a.alert_id for a in evaluator.alerts] == [a.alert_id for a in other.alerts]
    assert report.examples > 10_000
    assert report.auc is not None and report.auc > 0.6
    assert sum(s.examples for s in report.by_segment.values()) == report.examples


def test_the_evaluators_fold_counts_purchase_days_like_the_store() -> None:
    """A refund earlier on the same day must not use up the day of a later purchase."""
    day = 10_000 * DAY_MS
    log = [LogEntry(day + 100, "r1", "refund", -500), LogEntry(day + 200, "p1", "purchase", 1_000)]
    evaluator = Evaluator(CONFIG)
    evaluator.advance(day + DAY_MS, {"c": log})
    state = evaluator.population.state(evaluator.population.index["c"])
    assert (state.frequency, state.purchase_days, state.monetary_cents, state.refunds) == (1, 1, 500, 1)


def campaign_events(day0: int) -> list[CampaignEvent]:
    """Two campaigns over the synthetic customers: half of each arm responds (treatment more)."""
    events: list[CampaignEvent] = []
    for campaign, start in (("A", day0 + 60 * DAY_MS), ("B", day0 + 150 * DAY_MS)):
        for i, customer in enumerate([f"r{i:03}" for i in range(100)] + [f"s{i:03}" for i in range(50)]):
            variant = "treatment" if i % 2 == 0 else "control"
            events.append(
                CampaignEvent(f"{campaign}:{customer}:x", customer, campaign, variant, "exposure", start)
            )
            if (variant == "treatment" and i % 3 != 0) or (variant == "control" and i % 5 == 0):
                at = start + (1 + i % 20) * DAY_MS
                events.append(
                    CampaignEvent(f"{campaign}:{customer}:r", customer, campaign, variant, "response", at)
                )
    return events


def eager_book() -> CampaignBook:
    """The response model at learning rate 0.01: two synthetic campaigns are too few for the
    default (0.003) to reach the likely-responder threshold."""
    segments = tuple(CONFIG.preset.segments)
    names = response_feature_names(segments)
    return CampaignBook(ResponseModel(names=names, segments=segments, learning_rate=0.01))


def test_campaign_events_give_the_batch_readout_and_train_the_response_model() -> None:
    day0 = 28 * 400 * DAY_MS
    logs, events = synthetic_logs(day0), campaign_events(day0)
    end = day0 + 300 * DAY_MS
    straight = Evaluator(
        UNGATED, campaigns=eager_book()
    )  # the response model's mechanics, whatever its figures
    straight.advance(end, logs, events)
    table = pd.DataFrame([{**msgspec.structs.asdict(e)} for e in events]).rename(
        columns={"occurred_at_ms": "occurred_at"}
    )
    expected = readout(exposure_outcomes(table))
    live = straight.campaigns.readout()
    as_rows = expected.astype(object).where(expected.notna(), None).to_dict("records")
    assert [r for r in live if r["segment"] == "all"] == as_rows
    assert {r["segment"] for r in live} > {"all"}  # and per named segment at the exposure
    response = straight.summary().response
    assert response.exposures == 300
    assert response.version == 2 and response.examples == 300  # both windows ended and were learned
    assert response.positives == int(exposure_outcomes(table)["responded"].sum())
    responders = [a for a in straight.alerts if a.kind == "likely_responder"]
    assert responders and all(a.figures["response_propensity"] >= 0.7 for a in responders)  # type: ignore[operator]
    assert all(a.at_ms > day0 + 90 * DAY_MS for a in responders)  # only once campaign A's window ended
    # late delivery: the responses arrive a tick after everything else, the exposures of B even later
    late = Evaluator(CONFIG)
    early = [e for e in events if e.type == "exposure" and e.campaign_id == "A"]
    late.advance(day0 + 100 * DAY_MS, logs, early)
    late.advance(day0 + 200 * DAY_MS, logs, [e for e in events if e.type == "response"])
    late.advance(end, logs, [e for e in events if e.type == "exposure" and e.campaign_id == "B"])
    # the same outcomes (B's responses came before its exposures and still count); B's late
    # exposures take the segment of the instant they were applied at, so only "all" must match
    assert [r for r in late.campaigns.readout() if r["segment"] == "all"] == as_rows
    # and the book survives a save and restore
    restored = Evaluator.restore(
        CONFIG,
        straight.clock_ms,
        straight.cutpoints.to_json() if straight.cutpoints else None,
        straight.snapshot(),
        [straight.record(r) for r in range(len(straight.population))],
    )
    assert restored.summary().response == straight.summary().response
    assert restored.summary().uplift == straight.summary().uplift
    assert restored.campaigns.readout() == straight.campaigns.readout()
    uplift = straight.summary().uplift
    assert uplift is not None and uplift.version == 2  # both arms learned both campaigns
    assert uplift.treatment.examples == 150 and uplift.control.examples == 150
    population = uplift.population
    assert population is not None
    assert population.customers > 0 and population.suggested_target <= population.customers
    assert sum(r.customers for r in population.by_segment) == population.customers


def test_alerts_fire_only_while_their_model_earns_them() -> None:
    """Model-backed alerts carry the model's version, recent AUC and ECE, all within the gate; a
    gate no model can pass holds every one back (counted), and overdue, a rule, is never gated."""
    evaluator, _, end = sorted_run()
    churn = [a for a in evaluator.alerts if a.kind == "churn_risk"]
    assert churn
    for alert in churn:
        f = alert.figures
        assert isinstance(f["model_auc"], float) and f["model_auc"] > 0.65
        assert isinstance(f["model_ece"], float) and f["model_ece"] < 0.1
        assert isinstance(f["model_version"], float) and f["model_version"] >= 1
    gates = evaluator.summary().alert_gates
    assert gates is not None and gates.min_auc == 0.65 and gates.max_ece == 0.1
    strict = Evaluator(dataclasses.replace(CONFIG, alerts=AlertConfig(min_auc=0.999)))
    shut, _ = run(sorted(cdnow_sample(), key=lambda p: p[1].occurred_at_ms), [end], strict)
    kinds = Counter(a.kind for a in shut.alerts)
    assert kinds["churn_risk"] == 0 and shut.held_back["churn_risk"] > 0
    assert kinds["overdue"] == Counter(a.kind for a in evaluator.alerts)["overdue"]  # ungated
    shut_gates = shut.summary().alert_gates
    assert shut_gates is not None and shut_gates.churn_risk.open is False


def test_band_outcomes_rise_from_low_to_high_and_calibration_is_reported() -> None:
    """Each band's observed churn rate (labels of predictions made while the customer was in it)."""
    evaluator, _, _ = sorted_run()
    churn = evaluator.summary().churn
    assert churn.band_outcomes is not None and churn.calibration is not None and churn.recent is not None
    rates = [row.observed_churn_rate for row in churn.band_outcomes.by_band().values()]
    assert list(churn.band_outcomes.by_band()) == ["Low", "Medium", "High"]
    assert None not in rates and rates == sorted(rates) and rates[0] < rates[2]  # type: ignore[type-var]
    served, raw = churn.calibration.served, churn.calibration.raw
    assert served.examples == raw.examples == churn.examples
    assert served.ece is not None and served.brier is not None
    assert len(served.reliability) == 10 and 0 <= served.ece <= 1 and 0 <= served.brier <= 1
    assert churn.recent.version == churn.version


def _before_the_split(blob: bytes) -> bytes:
    """A protocol 2 pickle with the objects that left ``state.models.churn`` (``snapshots.MOVED``) named there."""
    for (module, name), today in snapshots.MOVED.items():
        blob = blob.replace(f"{today}\n{name}\n".encode(), f"{module}\n{name}\n".encode())
    return blob


def _as_before_the_split(data: bytes) -> bytes:
    """``data`` re-pickled as a segstream of before the churn model's learner, batches and AUC
    counters left ``state.models.churn`` wrote it (rooms already there)."""
    old = _before_the_split(pickle.dumps(snapshots.load(data), protocol=2))
    assert (
        b"state.models.online_logistic" not in old and b"state.models.prequential" not in old
    )  # the premise
    for name in ("PendingBatch", "Prequential", "clip_standardised"):  # what a snapshot holds of them
        assert f"state.models.churn\n{name}\n".encode() in old
    return old


def _as_before_the_rooms(data: bytes) -> bytes:
    """``data`` re-pickled as a segstream of before ``state`` had rooms wrote it (``state.churn``, ...).

    Protocol 2 names each class as ``module\\nname\\n`` text, so the old names can be written in."""

    def old_names(blob: bytes) -> bytes:
        blob = _before_the_split(blob)  # the rooms came first: those objects were in ``state.churn``
        for module, room in snapshots.ROOMS.items():
            blob = blob.replace(f"state.{room}.{module}\n".encode(), f"state.{module}\n".encode())
        return blob

    models = snapshots.load(data)
    models["segment_model"] = old_names(pickle.dumps(snapshots.load(models["segment_model"]), protocol=2))
    old = old_names(pickle.dumps(models, protocol=2))
    assert b"state.models.churn" not in old and b"state.churn\n" in old  # the test's premise
    assert b"state.models.online_logistic" not in old and b"state.churn\nPrequential\n" in old
    return old


def old_models_blob(evaluator: Evaluator) -> bytes:
    """The snapshot as segstream wrote it while the open batches were kept inside (that version's
    ``models_blob``: one pickled dict, the batches under ``"churn_batches"``)."""
    return pickle.dumps(
        {
            "segment_model": evaluator.model.snapshot(),
            "churn_model": evaluator.churn,
            "churn_batches": evaluator.batches,
            "lifetime": evaluator.lifetime,
            "campaigns": evaluator.campaigns,
            "held_back": dict(evaluator.held_back),
            "drift": evaluator.drift,
            "cluster_quality": evaluator.cluster_quality,
        }
    )


@cache
def _halfway() -> tuple[Evaluator, list[Change], Evaluator, list[Change], bytes, list[dict[str, object]]]:
    """The CDNOW sample run straight through, and run to its middle: changes, snapshot (in the format
    of the versions that kept the open batches inside) and rows saved there."""
    entries = sorted(cdnow_sample(), key=lambda p: p[1].occurred_at_ms)
    end = max(e.occurred_at_ms for _, e in entries) + 1
    middle = entries[len(entries) // 2][1].occurred_at_ms // DAY_MS * DAY_MS
    straight, straight_changes = run(entries, [middle, end])
    first, first_changes = run(entries, [middle])
    assert first.batches  # open churn batches (PendingBatch) are in it, beside the model and its AUC counters
    return straight, straight_changes, first, first_changes, old_models_blob(first), first.take_dirty()


@pytest.mark.parametrize("as_old", [_as_before_the_rooms, _as_before_the_split])
def test_a_snapshot_saved_before_the_rooms_or_the_churn_split_restores_and_continues_the_same(
    as_old: Callable[[bytes], bytes],
) -> None:
    straight, straight_changes, first, first_changes, snapshot, rows = _halfway()
    cutpoints = first.cutpoints.to_json() if first.cutpoints else None
    restored = Evaluator.restore(CONFIG, first.clock_ms, cutpoints, as_old(snapshot), rows)
    assert restored.summary().churn == first.summary().churn
    assert [b.made_at_ms for b in restored.batches] == [b.made_at_ms for b in first.batches]
    entries = sorted(cdnow_sample(), key=lambda p: p[1].occurred_at_ms)
    assert straight.clock_ms is not None and first.clock_ms is not None
    logs: Log = defaultdict(list)
    for c, e in entries:
        logs[c].append(e)
    rest = restored.advance(
        straight.clock_ms, {c: logs[c] for c, e in entries if e.occurred_at_ms >= first.clock_ms}
    )
    assert Counter(map(key, first_changes + rest)) == Counter(map(key, straight_changes))
    assert restored.summary().churn == straight.summary().churn  # the old batches were labelled as before
