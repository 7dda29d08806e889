"""Segment drift: CUSUM false-alarm behaviour, a generated shift found, a stationary stream left alone,
the groups' figures against a mask per group."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from state.segments.drift import Cusum, DriftConfig, DriftMonitor, RowGaps, _Group, group_figures

N = 2000  # share noise about 0.011: the floor (0.01) does not bind


def test_cusum_false_alarm_run_length_on_noise() -> None:
    """Independent normal noise (the floor not binding): one alarm per several thousand instants
    per series with the reference estimated from 56 values (140,000 per side if it were known)."""
    config, alarms, instants = DriftConfig(), 0, 0
    for seed in range(100):
        detector = Cusum()
        for x in np.random.default_rng(seed).normal(0, 1, 3000).tolist():
            instants += 1
            if detector.update(x, config, 1e-9):
                alarms, detector = alarms + 1, Cusum()
    assert 5000 < instants / alarms < 12_000  # measured: 39 false alarms in 300,000 instants (seeds 0-99)
    print(f"{alarms} false alarms in {instants:,} instants")


def test_the_floor_keeps_a_nearly_flat_series_quiet() -> None:
    config, detector = DriftConfig(), Cusum()
    noise = np.random.default_rng(1).normal(0.3, 0.2 * config.share_floor, 20_000)
    assert not any(detector.update(x, config, config.share_floor) for x in noise.tolist())


def population(rng: np.random.Generator, p: float, n: int = N) -> tuple[np.ndarray, ...]:  # type: ignore[type-arg]
    """n customers, each in group 1 with probability p (else 0), drawn afresh every instant."""
    group = (rng.random(n) < p).astype(np.int64)
    money = np.linspace(1, 100, n)
    score = np.where(group == 1, 4, 2).astype(np.int64)
    return group, money, score, score, score


def test_a_shift_of_known_size_fires_with_before_after_and_the_movers() -> None:
    """Group 1's share moves from 0.5 to 0.6 (about 9 of its spreads) at instant 80: found within days."""
    rng, monitor = np.random.default_rng(7), DriftMonitor()
    events = [e for t in range(80) for e in monitor.update(t, *population(rng, 0.5))]
    assert events == []
    after = [e for t in range(80, 110) for e in monitor.update(t, *population(rng, 0.6))]
    first = {e.key: e for e in reversed(after)}  # each group's first alarm
    assert set(first) == {0, 1} and all(80 <= e.at_ms <= 84 for e in first.values())
    grew = first[1]
    assert "size_share" in grew.metrics and "mean_r" not in grew.metrics  # members' scores did not move
    assert grew.before["size_share"] is not None and abs(grew.before["size_share"] - 0.5) < 0.01
    assert grew.after["size_share"] is not None and grew.after["size_share"] > 0.56
    assert grew.since_ms == 55 and grew.entered > 0 and grew.left > 0
    assert 0 < grew.movers.size <= DriftConfig().top_movers
    money = np.linspace(1, 100, N)
    assert np.all(np.diff(money[grew.movers]) <= 0)  # the most valuable movers first


def test_a_stationary_stream_stays_silent() -> None:
    """A population the size of CDNOW's (share noise 0.0035, under the floor) for 1,000 days."""
    rng, monitor = np.random.default_rng(11), DriftMonitor()
    assert [e for t in range(1000) for e in monitor.update(t, *population(rng, 0.5, 20_000))] == []


def masked_figures(group: np.ndarray, money: np.ndarray, r: np.ndarray, f: np.ndarray, m: np.ndarray) -> dict:  # type: ignore[type-arg]
    """The oracle: each group's figures from a mask per group, the plain way (and the way
    ``group_figures`` computed them before its one-pass form)."""
    total = float(np.clip(money, 0, None).sum())
    out = {}
    for key in np.unique(group[group >= 0]).tolist():
        mine = group == key
        out[int(key)] = {
            "size_share": int(mine.sum()) / group.size,
            "value_share": float(np.clip(money[mine], 0, None).sum()) / total if total > 0 else None,
            "mean_r": float(r[mine].mean()),
            "mean_f": float(f[mine].mean()),
            "mean_m": float(m[mine].mean()),
        }
    return out


@given(st.integers(0, 20_000), st.integers(1, 20), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_group_figures_equal_a_mask_per_group_to_the_last_bit(n: int, groups: int, seed: int) -> None:
    """Net spend sums to the same float, bit for bit, as summing each group's rows in row order
    (the drift alerts and the saved detectors must not move when the computation does)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(-1, groups, n)
    money = np.round(rng.lognormal(3, 1.5, n), 2) * rng.choice([1, -1], n, p=[0.9, 0.1])
    r, f, m = (rng.integers(1, 6, n) for _ in range(3))
    assert group_figures(group, money, r, f, m) == masked_figures(group, money, r, f, m)


def test_a_monitor_pickles_its_members_as_narrow_gaps_and_loads_them_back() -> None:
    """The members (a row per customer per monitor, in every snapshot a save writes) go as gaps in
    the narrowest unsigned type and come back as the same int64 rows; a monitor pickled by the
    versions that kept the rows themselves still loads."""
    rng = np.random.default_rng(5)
    monitor = DriftMonitor(DriftConfig(warmup=3))
    group = rng.integers(0, 4, 50_000)
    for t in range(5):
        monitor.update(t, group, np.ones(group.size), group, group, group)
    restored = pickle.loads(pickle.dumps(monitor))
    for key, g in monitor.groups.items():
        assert g.members is not None and restored.groups[key].members is not None
        assert restored.groups[key].members.dtype == np.int64
        assert np.array_equal(restored.groups[key].members, g.members)
        assert np.array_equal(g.members, np.flatnonzero(group == key))
    rows = sum(g.members.size for g in monitor.groups.values() if g.members is not None)
    assert rows == group.size and len(pickle.dumps(monitor)) < 2 * rows  # not 8 bytes a row
    old = copy.copy(monitor.groups[0])
    old_state = dict(old.__dict__)  # as earlier versions pickled it: the rows themselves
    again = _Group.__new__(_Group)
    again.__setstate__(old_state)
    assert again.members is not None and np.array_equal(again.members, monitor.groups[0].members)
    with pytest.raises(ValueError, match="ascending"):
        RowGaps.of(np.array([5, 3]))
