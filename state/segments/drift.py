"""Drift of named segments and clusters: a two-sided CUSUM per figure, on the per-day series.

At every UTC-midnight instant the evaluator hands :class:`DriftMonitor` every buyer's group
(named segment, or cluster) with their net spend and R/F/M scores. Per group it forms five
figures (:data:`METRICS`): size share (members / buyers), value share (members' net spend /
everyone's), and the mean R, F and M score of the members. Each figure's series runs through
a two-sided tabular CUSUM (Page 1954; Montgomery, *Statistical Quality Control*, ch. 9):

- the first ``warmup`` values after a (re)start set the reference mean ``mu0`` and spread
  ``s = max(sd, floor)`` (``floor``: the smallest move worth an alert, 1 percentage point of
  share or 0.1 score points, so a nearly flat series does not alarm on noise);
- then ``z = (x - mu0) / s``, ``S+ = max(0, S+ + z - k)``, ``S- = max(0, S- - z - k)`` with
  ``k = 0.5``; the control limit is ``h = 10``: a group drifts when ``S+`` or ``S-`` exceeds it.
  A sustained shift of one ``s`` alarms after about 22 instants, of two after about 7.

On an alarm the group reports every figure before (the reference mean) and after (today), the
customers who entered or left it since the reference was set (the most valuable few first,
``top_movers``), and its detectors restart with a fresh warmup. Under independent normal
noise with a known reference the false-alarm run length of one side at ``k = 0.5, h = 10`` is
about 140,000 instants (Siegmund's approximation); the reference estimated from 56 values
shortens it to several thousand for both sides (``tests/unit/test_drift.py`` measures it).

>>> monitor = DriftMonitor(DriftConfig(warmup=5))
>>> group = np.zeros(100, dtype=np.int64)
>>> group[:50] = 1  # two groups of 50
>>> money, score = np.ones(100), np.full(100, 3)
>>> quiet = [monitor.update(t, group, money, score, score, score) for t in range(20)]
>>> group[:80] = 1  # 30 customers move to group 1
>>> events = [e for t in range(20, 30) for e in monitor.update(t, group, money, score, score, score)]
>>> [(e.key, e.metrics, e.before["size_share"], e.after["size_share"], e.entered) for e in events]
[(0, ('size_share', 'value_share'), 0.5, 0.2, 0), (1, ('size_share', 'value_share'), 0.5, 0.8, 30)]
>>> sum(map(len, quiet))
0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["METRICS", "Cusum", "DriftConfig", "DriftEvent", "DriftMonitor", "RowGaps", "group_figures"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
METRICS = ("size_share", "value_share", "mean_r", "mean_f", "mean_m")


@dataclass(frozen=True)
class DriftConfig:
    warmup: int = 56  # instants that set a reference after a (re)start
    k: float = 0.5  # allowance, in reference spreads
    h: float = 10.0  # control limit, in reference spreads
    share_floor: float = 0.01  # smallest spread of a share: 1 percentage point
    score_floor: float = 0.1  # smallest spread of a mean score
    top_movers: int = 5  # customer ids named per alert, the most valuable first

    def floor(self, metric: str) -> float:
        return self.share_floor if metric.endswith("share") else self.score_floor


@dataclass
class Cusum:
    """Two-sided tabular CUSUM of one series against a reference from its first values."""

    seen: int = 0
    total: float = 0.0
    squares: float = 0.0
    high: float = 0.0
    low: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / self.seen if self.seen else float("nan")

    def spread(self, floor: float) -> float:
        if self.seen < 2:
            return floor
        variance = max(self.squares / self.seen - self.mean**2, 0.0) * self.seen / (self.seen - 1)
        return max(math.sqrt(variance), floor)

    def update(self, x: float, config: DriftConfig, floor: float) -> bool:
        """Add one value; True when the series moved beyond the control limit (either side)."""
        if self.seen < config.warmup:
            self.seen += 1
            self.total += x
            self.squares += x * x
            return False
        z = (x - self.mean) / self.spread(floor)
        self.high = max(0.0, self.high + z - config.k)
        self.low = max(0.0, self.low - z - config.k)
        return self.high > config.h or self.low > config.h


class DriftEvent(NamedTuple):
    """A group that drifted at ``at_ms``: the figures that alarmed, every figure before and after,
    and who moved since the reference (``movers``: rows, the most valuable first)."""

    key: int
    at_ms: int
    metrics: tuple[str, ...]
    before: dict[str, float | None]
    after: dict[str, float | None]
    since_ms: int
    members: int
    entered: int
    left: int
    movers: IntArray


def group_figures(
    group: IntArray, money: FloatArray, r: IntArray, f: IntArray, m: IntArray
) -> dict[int, dict[str, float | None]]:
    """Each group's five figures (:data:`METRICS`) over the rows given (negative group: none).

    >>> group_figures(np.array([0, 0, 1, -1]), np.array([1.0, 3.0, 4.0, 2.0]), *[np.array([5, 3, 1, 2])] * 3)[0]
    {'size_share': 0.5, 'value_share': 0.4, 'mean_r': 4.0, 'mean_f': 4.0, 'mean_m': 4.0}
    """
    n = group.size
    clipped = np.clip(money, 0, None)
    total = float(clipped.sum())
    if n == 0:
        return {}
    # one pass, not a mask per group: the rows in group order (stable, so each group's rows keep
    # their order and its net spend sums exactly as ``clipped[group == key].sum()`` does), and the
    # integer scores summed by bincount (exact)
    shift = -min(int(group.min()), 0)
    counts = np.bincount(group + shift)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    in_order = clipped[np.argsort(group, kind="stable")]
    sums = [np.bincount(group + shift, weights=column, minlength=counts.size) for column in (r, f, m)]
    out: dict[int, dict[str, float | None]] = {}
    for at in np.flatnonzero(counts[shift:]).tolist():
        i = at + shift
        count, start = int(counts[i]), int(starts[i])
        out[at] = {
            "size_share": count / n,
            "value_share": float(in_order[start : start + count].sum()) / total if total > 0 else None,
            "mean_r": float(sums[0][i]) / count,
            "mean_f": float(sums[1][i]) / count,
            "mean_m": float(sums[2][i]) / count,
        }
    return out


@dataclass
class _Group:
    detectors: dict[str, Cusum] = field(default_factory=lambda: {m: Cusum() for m in METRICS})
    members: IntArray | None = None  # rows when the reference was set (the warmup's end), ascending
    since_ms: int | None = None

    def __getstate__(self) -> dict[str, object]:
        """Pickled with ``members`` as :class:`RowGaps`: the members are a row set per group, about
        a row per customer per monitor, in the evaluator's snapshot that every save rewrites, so
        they are kept as the gaps between rows in the narrowest unsigned type (1-2 bytes, not 8)."""
        state = dict(self.__dict__)
        if self.members is not None:
            state["members"] = RowGaps.of(self.members)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        members = state.get("members")
        if isinstance(members, RowGaps):  # snapshots from before kept the int64 rows themselves
            state["members"] = members.rows()
        self.__dict__.update(state)


class RowGaps(NamedTuple):
    """Ascending rows as the first row and the gaps after it, in the narrowest unsigned type.

    >>> packed = RowGaps.of(np.array([3, 4, 9, 300]))
    >>> packed.gaps.dtype, packed.rows().tolist()
    (dtype('uint16'), [3, 4, 9, 300])
    """

    gaps: npt.NDArray[np.unsignedinteger[Any]]

    @classmethod
    def of(cls, rows: IntArray) -> RowGaps:
        gaps = np.diff(rows, prepend=0)
        if gaps.size and int(gaps.min()) < 0:
            raise ValueError("drift members must be ascending rows")
        return cls(gaps.astype(np.min_scalar_type(int(gaps.max()) if gaps.size else 0)))

    def rows(self) -> IntArray:
        return np.cumsum(self.gaps, dtype=np.int64)


@dataclass
class DriftMonitor:
    """Per group, a CUSUM per figure (module docstring); O(groups) detectors and O(rows) members."""

    config: DriftConfig = field(default_factory=DriftConfig)
    groups: dict[int, _Group] = field(default_factory=dict)

    def update(
        self, at_ms: int, group: IntArray, money: FloatArray, r: IntArray, f: IntArray, m: IntArray
    ) -> list[DriftEvent]:
        """One instant's rows (``group[i]`` is row ``i``'s group, negative: none); the groups that drifted."""
        cfg = self.config
        figures = group_figures(group, money, r, f, m)
        events: list[DriftEvent] = []
        for key in sorted(figures):
            state = self.groups.setdefault(key, _Group())
            now = figures[key]
            alarmed = tuple(
                metric
                for metric in METRICS
                if now[metric] is not None
                and state.detectors[metric].update(float(now[metric] or 0.0), cfg, cfg.floor(metric))
            )
            warmed = state.members is None and all(d.seen >= cfg.warmup for d in state.detectors.values())
            if not (warmed or alarmed):  # the members are needed only at these two moments
                continue
            members = np.flatnonzero(group == key).astype(np.int64)
            if warmed:
                state.members, state.since_ms = members, at_ms
            if alarmed:
                before = {metric: _mean_or_none(state.detectors[metric]) for metric in METRICS}
                reference = state.members if state.members is not None else members
                entered = np.setdiff1d(members, reference, assume_unique=True)
                left = np.setdiff1d(reference, members, assume_unique=True)
                moved = np.concatenate([entered, left])
                moved = moved[np.argsort(-money[moved], kind="stable")][: cfg.top_movers]
                events.append(
                    DriftEvent(
                        key,
                        at_ms,
                        alarmed,
                        before,
                        now,
                        state.since_ms if state.since_ms is not None else at_ms,
                        members.size,
                        entered.size,
                        left.size,
                        moved.astype(np.int64),
                    )
                )
                self.groups[key] = _Group()  # a fresh reference from the next instants
        return events


def _mean_or_none(c: Cusum) -> float | None:
    return c.mean if c.seen else None
