"""Behavioural features of one customer at an event time, and the online scaler they go through.

Every feature is a float computed from a :class:`~state.customer.rfm.CustomerState` and the as-of
time (event time, never the wall clock inside the core):

============== =====================================================================
log_frequency  ``log1p(frequency)``
log_net_spend  ``log1p(max(net spend, 0))``, net spend in currency units (refunds included)
recency_days   days from the last purchase to ``as_of`` (fractional, never negative)
avg_order_value  ``max(net spend, 0) / frequency`` in currency units
tenure_days    days from the first purchase to ``as_of`` (fractional, never negative)
mean_gap_days  ``(last - first) / (frequency - 1)`` in days; 0 for a single purchase
============== =====================================================================

>>> s = CustomerState("c1", frequency=3, monetary_cents=6000, first_purchase_ms=0, last_purchase_ms=10 * DAY_MS)
>>> f = features(s, as_of_ms=15 * DAY_MS)
>>> [round(f[name], 4) for name in FEATURE_NAMES]
[1.3863, 4.1109, 5.0, 20.0, 15.0, 5.0]

:class:`OnlineScaler` standardises features with Welford's running mean and variance
(population variance, like sklearn's ``StandardScaler``). It is plain arithmetic in
arrival order, so the same event order always gives the same scaling.

>>> scaler = OnlineScaler(("a",))
>>> for v in (1.0, 2.0, 3.0):
...     scaler.learn({"a": v})
>>> scaler.transform({"a": 3.0})
{'a': 1.224744871391589}
>>> scaler.inverse(scaler.transform({"a": 3.0}))
{'a': 3.0}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from state.customer.rfm import DAY_MS, CustomerState

__all__ = ["FEATURE_NAMES", "OnlineScaler", "features"]

FEATURE_NAMES: tuple[str, ...] = (
    "log_frequency",
    "log_net_spend",
    "recency_days",
    "avg_order_value",
    "tenure_days",
    "mean_gap_days",
)


def features(state: CustomerState, as_of_ms: int) -> dict[str, float]:
    """The feature dict of ``state`` as of ``as_of_ms`` (keys in :data:`FEATURE_NAMES` order).

    Raises ``ValueError`` for a customer with no purchase yet (refunds only): they have no
    recency or tenure, so callers should skip them until their first purchase.
    """
    first, last = state.first_purchase_ms, state.last_purchase_ms
    if state.frequency <= 0 or first is None or last is None:
        raise ValueError(
            f"customer {state.customer_id!r} has no purchase yet (frequency={state.frequency}); "
            "features need at least one purchase: skip them until then"
        )
    net_spend = max(state.monetary_cents, 0) / 100
    return {
        "log_frequency": math.log1p(state.frequency),
        "log_net_spend": math.log1p(net_spend),
        "recency_days": max(as_of_ms - last, 0) / DAY_MS,
        "avg_order_value": net_spend / state.frequency,
        "tenure_days": max(as_of_ms - first, 0) / DAY_MS,
        "mean_gap_days": (last - first) / DAY_MS / (state.frequency - 1) if state.frequency > 1 else 0.0,
    }


class OnlineScaler:
    """Welford standardisation over a fixed list of feature names.

    A feature with no spread yet (fewer than two values, or all equal) is only centred.
    """

    __slots__ = ("_m2", "_mean", "count", "names")

    def __init__(self, names: Sequence[str] = FEATURE_NAMES) -> None:
        self.names: tuple[str, ...] = tuple(names)
        self.count = 0
        self._mean = [0.0] * len(self.names)
        self._m2 = [0.0] * len(self.names)

    def learn(self, x: Mapping[str, float]) -> None:
        """Update the running mean and variance with one observation (all names required)."""
        self.count += 1
        for i, name in enumerate(self.names):
            delta = x[name] - self._mean[i]
            self._mean[i] += delta / self.count
            self._m2[i] += delta * (x[name] - self._mean[i])

    def mean(self) -> dict[str, float]:
        """The running mean of each feature."""
        return dict(zip(self.names, self._mean, strict=True))

    def std(self) -> dict[str, float]:
        """The running population standard deviation; 1.0 while a feature has no spread."""
        return dict(zip(self.names, self._stds(), strict=True))

    def transform(self, x: Mapping[str, float]) -> dict[str, float]:
        """``(x - mean) / std`` for every name."""
        stds = self._stds()
        return {name: (x[name] - self._mean[i]) / stds[i] for i, name in enumerate(self.names)}

    def inverse(self, z: Mapping[str, float]) -> dict[str, float]:
        """Back from scaled to original units: ``z * std + mean``."""
        stds = self._stds()
        return {name: z[name] * stds[i] + self._mean[i] for i, name in enumerate(self.names)}

    def _stds(self) -> list[float]:
        if self.count < 2:
            return [1.0] * len(self.names)
        return [math.sqrt(m2 / self.count) or 1.0 for m2 in self._m2]
