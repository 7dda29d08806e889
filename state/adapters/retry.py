"""How long and how often a store retries an operation that failed for a transient reason.

Pure: the Redis adapters (``state/adapters/``) decide which errors are transient and
sleep; this module only says how long to wait before the next attempt, and when to stop.

>>> policy = RetryPolicy(budget_s=1.0, base_s=0.1, cap_s=0.3)
>>> [policy.delay(n) for n in (1, 2, 3, 4)]
[0.1, 0.2, 0.3, 0.3]
>>> policy.next_delay(failures=1, elapsed_s=0.0), policy.next_delay(failures=3, elapsed_s=0.8)
(0.1, None)
>>> RetryPolicy.none().next_delay(failures=1, elapsed_s=0.0) is None
True
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RetryPolicy", "StoreRestarted", "StoreUnavailable"]


class StoreUnavailable(RuntimeError):
    """A store operation kept failing for a transient reason until the retry budget ran out."""


class StoreRestarted(RuntimeError):
    """The store restarted and lost writes it had acknowledged: the worker must resume from what it holds."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff inside a total time budget.

    ``budget_s``: time from the first failure after which no attempt is started any more
    (0: never retry); ``base_s``: delay after the first failure, doubled after each further
    one up to ``cap_s``.
    """

    budget_s: float = 60.0
    base_s: float = 0.05
    cap_s: float = 2.0

    @classmethod
    def none(cls) -> RetryPolicy:
        """Fail on the first error (command-line tools: say what is wrong at once)."""
        return cls(budget_s=0.0)

    def delay(self, failures: int) -> float:
        """Wait after the ``failures``-th consecutive failure (1-based)."""
        return float(min(self.cap_s, self.base_s * 2 ** (failures - 1)))

    def next_delay(self, failures: int, elapsed_s: float) -> float | None:
        """The wait before the next attempt, or ``None`` when it would end beyond the budget."""
        wait = self.delay(failures)
        return wait if elapsed_s + wait <= self.budget_s else None
