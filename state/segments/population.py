"""The evaluated population, column by column: what the segment evaluator knows at its clock.

One row per customer ever evaluated, in first-seen order, holding their RFM state as of the
evaluator's clock and the profile last published for them. Columns are numpy arrays so that a
new cut-point version or cluster model re-scores everyone in a few vector operations.

The summary's per-segment and per-cluster figures (:func:`summarize`) come from exact running
sums (:class:`~state.segments.group_sums.GroupSums`) that every write of a row's state or profile
moves, so they cost O(groups), not O(population). To keep them right, the columns they read
(``frequency``, ``monetary_cents``, ``last_ms``, ``cluster``) are written only through
:meth:`Population.upsert`, :meth:`Population.set_profile` and :meth:`Population.load_record`:
:meth:`Population.column` hands them out read-only.

>>> pop = Population()
>>> pop.upsert(CustomerState("c1", frequency=2, monetary_cents=900, first_purchase_ms=0, last_purchase_ms=5))
(0, True)
>>> pop.upsert(CustomerState("c1", frequency=2, monetary_cents=900, first_purchase_ms=0, last_purchase_ms=5))
(0, False)
>>> pop.state(0).frequency, pop.buyers().tolist()
(2, [0])
>>> pop.set_profile(0, Profile(5, 2, 3, "Champions", None, None), since_ms=5)
>>> summarize(pop, 5, ["Champions"], {})["segments"][0]["customers"]
1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from state.customer.profiles import Profile
from state.customer.rfm import DAY_MS, CustomerState
from state.segments.features import FEATURE_NAMES
from state.segments.group_sums import Contribution, GroupSums

__all__ = ["ALERT_COLUMNS", "NO_CLUSTER", "NO_TIME", "Population", "feature_matrix", "summarize"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
NO_TIME = np.iinfo(np.int64).min  # no purchase yet (first / last purchase columns)
NO_CLUSTER = -1
_STATE_COLUMNS = ("frequency", "monetary_cents", "refunds", "first_ms", "last_ms", "purchase_days")
_PROFILE_COLUMNS = ("r", "f", "m", "cluster", "since_ms")
# churn band (state.models.alerts), the band last alerted, "overdue alert sent this silence", likely responder
ALERT_COLUMNS = ("band", "alerted_band", "overdue", "responder")
# the columns the summary's running sums follow: read-only through Population.column
_SUMMED_COLUMNS = frozenset(("frequency", "monetary_cents", "last_ms", "cluster"))


class Population:
    """Columnar customer rows; ``profiles[i]`` is the last profile published for row ``i``."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.profiles: list[Profile | None] = []
        self._columns: dict[str, IntArray] = {
            name: np.zeros(0, dtype=np.int64) for name in (*_STATE_COLUMNS, *_PROFILE_COLUMNS, *ALERT_COLUMNS)
        }
        self.sums = GroupSums()  # of the profiled rows, moved by every write below

    def __len__(self) -> int:
        return len(self.ids)

    def column(self, name: str) -> IntArray:
        """A live view of one column over the used rows (writes go through, except to the summed
        columns, which are read-only here: they change only with the running sums)."""
        view = self._columns[name][: len(self.ids)]
        if name in _SUMMED_COLUMNS:
            view.flags.writeable = False
        return view

    def columns(self, rows: IntArray) -> dict[str, IntArray]:
        """Every column at ``rows`` (copies), by name."""
        return {name: col[: len(self.ids)][rows] for name, col in self._columns.items()}

    # ------------------------------------------------------------------ rows

    def _row_for(self, customer_id: str) -> int:
        row = self.index.get(customer_id)
        if row is not None:
            return row
        row = len(self.ids)
        if row == len(self._columns["frequency"]):
            for name, col in self._columns.items():
                grown = np.zeros(max(1024, 2 * len(col)), dtype=np.int64)
                grown[: len(col)] = col
                self._columns[name] = grown
        self.ids.append(customer_id)
        self.index[customer_id] = row
        self.profiles.append(None)
        for name in ("first_ms", "last_ms", "since_ms"):
            self._columns[name][row] = NO_TIME
        self._columns["cluster"][row] = NO_CLUSTER
        return row

    def upsert(self, state: CustomerState) -> tuple[int, bool]:
        """Store ``state`` in its customer's row; return ``(row, whether the state changed)``."""
        row = self._row_for(state.customer_id)
        values = (
            state.frequency,
            state.monetary_cents,
            state.refunds,
            NO_TIME if state.first_purchase_ms is None else state.first_purchase_ms,
            NO_TIME if state.last_purchase_ms is None else state.last_purchase_ms,
            state.purchase_days,
        )
        self._sum(row, -1)
        changed = False
        for name, value in zip(_STATE_COLUMNS, values, strict=True):
            if self._columns[name][row] != value:
                self._columns[name][row] = value
                changed = True
        self._sum(row, +1)
        return row, changed

    def _contribution(self, row: int) -> Contribution | None:
        """What row ``row`` adds to the summary's sums, as its columns and profile are now (None: no
        profile, nothing)."""
        profile = self.profiles[row]
        if profile is None:
            return None
        cols = self._columns
        return Contribution(
            profile.rfm_segment,
            int(cols["cluster"][row]),
            int(cols["last_ms"][row]),
            int(cols["frequency"][row]),
            int(cols["monetary_cents"][row]),
        )

    def _sum(self, row: int, sign: int) -> None:
        """Add (+1) or remove (-1) row ``row``'s contribution: writers remove it before, add it after."""
        contribution = self._contribution(row)
        if contribution is not None:
            self.sums.add(contribution, sign)

    def state(self, row: int) -> CustomerState:
        c = {name: int(self._columns[name][row]) for name in _STATE_COLUMNS}
        return CustomerState(
            self.ids[row],
            frequency=c["frequency"],
            monetary_cents=c["monetary_cents"],
            refunds=c["refunds"],
            first_purchase_ms=None if c["first_ms"] == NO_TIME else c["first_ms"],
            last_purchase_ms=None if c["last_ms"] == NO_TIME else c["last_ms"],
            purchase_days=c["purchase_days"],
        )

    def buyers(self) -> IntArray:
        """Rows of customers with at least one purchase (the scored population)."""
        return np.flatnonzero(self.column("frequency") > 0).astype(np.int64)

    def set_profile(self, row: int, profile: Profile, since_ms: int) -> None:
        before = self._contribution(row)
        self.profiles[row] = profile
        cols = self._columns
        cols["r"][row], cols["f"][row], cols["m"][row] = profile.r_score, profile.f_score, profile.m_score
        cols["cluster"][row] = cluster = NO_CLUSTER if profile.cluster is None else profile.cluster
        cols["since_ms"][row] = since_ms
        if before is None:
            self._sum(row, +1)
        else:  # the state columns are as they were: only the groups can change
            self.sums.move(before, profile.rfm_segment, cluster)

    # ------------------------------------------------------------------ persistence

    def record(self, row: int) -> dict[str, Any]:
        """Row ``row`` as plain data (for the store); :meth:`load_record` reads it back."""
        profile = self.profiles[row]
        return {
            "row": row,
            "customer_id": self.ids[row],
            **{name: int(self._columns[name][row]) for name in _STATE_COLUMNS},
            "since_ms": int(self._columns["since_ms"][row]),
            **{name: int(self._columns[name][row]) for name in ALERT_COLUMNS},
            "profile": None if profile is None else list(profile),
        }

    def load_record(self, record: dict[str, Any]) -> None:
        """Load one record; load them in ``row`` order to get the same rows back."""
        row = self._row_for(str(record["customer_id"]))
        if row != record["row"]:
            raise ValueError(
                f"record of {record['customer_id']!r} is row {record['row']}, loaded as row {row}"
            )
        self._sum(row, -1)
        for name in (*_STATE_COLUMNS, *ALERT_COLUMNS):
            self._columns[name][row] = int(record[name])
        self._sum(row, +1)
        if record["profile"] is not None:
            self.set_profile(row, Profile(*record["profile"]), int(record["since_ms"]))


def feature_matrix(pop: Population, rows: IntArray, as_of_ms: int) -> FloatArray:
    """The behavioural features of ``rows`` (buyers) as of ``as_of_ms``, columns in FEATURE_NAMES order.

    The same arithmetic as :func:`state.segments.features.features`, one vector operation per feature.
    """
    freq = pop.column("frequency")[rows].astype(np.float64)
    spend = np.maximum(pop.column("monetary_cents")[rows], 0) / 100
    first, last = pop.column("first_ms")[rows], pop.column("last_ms")[rows]
    repeat = np.maximum(freq - 1, 1)
    columns = {
        "log_frequency": np.log1p(freq),
        "log_net_spend": np.log1p(spend),
        "recency_days": np.maximum(as_of_ms - last, 0) / DAY_MS,
        "avg_order_value": spend / freq,
        "tenure_days": np.maximum(as_of_ms - first, 0) / DAY_MS,
        "mean_gap_days": np.where(freq > 1, (last - first) / DAY_MS / repeat, 0.0),
    }
    return np.column_stack([columns[name] for name in FEATURE_NAMES]).astype(np.float64)


def summarize(
    pop: Population, as_of_ms: int, segments: Sequence[str], cluster_names: Mapping[int, str]
) -> dict[str, Any]:
    """Size, share, mean recency/frequency/monetary and value share of every segment and cluster.

    Over the customers with a profile; ``segments`` in preset order, clusters in id order. From the
    population's running sums: O(groups), whatever the population's size.
    """
    return pop.sums.summary(as_of_ms, segments, cluster_names)
