"""The analytics counters a worker folds with each purchase: one :data:`state.tally.Tallier` per feature.

Each analytics feature (basket counts, cohorts, best time, segment profiles' mixes) adds its
tallier here; the worker combines them and hands the result to ``agents.ingest.ingest_batch``,
so their counts are exactly once like the RFM state.
"""

from __future__ import annotations

from agents import metrics
from agents.settings import Settings
from state.analytics_tallies import cohort_and_best_time_tallier
from state.profile_tallies import mix_tallier
from state.redis_catalogue import RedisCatalogue
from state.retry import RetryPolicy
from state.store import CustomerStore
from state.tally import Tallier

__all__ = ["build_talliers"]


def build_talliers(store: CustomerStore, settings: Settings) -> list[Tallier]:
    """The talliers a worker runs on every purchase batch, in a fixed order."""
    del store  # each feature's tallier takes what it reads from these
    talliers: list[Tallier] = []
    talliers.append(cohort_and_best_time_tallier(settings.cohort_split_names))  # cohorts, best time
    talliers.append(mix_tallier(_catalogue(settings)))  # segment profiles: categories, channels
    return talliers


def _catalogue(settings: Settings) -> RedisCatalogue:
    """The catalogue the talliers label items from, retried like the worker's stores."""
    retry = RetryPolicy(settings.redis_retry_s, settings.redis_retry_base_s, settings.redis_retry_cap_s)
    return RedisCatalogue.connect(
        settings.redis_access, settings.redis_prefix, retry=retry, on_retry=metrics.observe_retry
    )
