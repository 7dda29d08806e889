"""Power of the uplift target at the held-out campaigns' volume, on randomised simulated arms.

``.venv/bin/python bench/uplift_power.py`` (about 2 minutes: 124 s on 2026-11-29; writes ``bench/uplift_power.json``;
not part of ``make eval``). The stream of ``tests/uplift_sim.py`` (The Complete Journey's 27
campaigns' sizes, treated counts, control rates and windows; randomised assignment; the effect
adds ``effect`` to the response probability of the top third of customers by ``frequency``) is fed
to the live :class:`state.campaigns.uplift.UpliftModel` for each effect in :data:`EFFECTS` and each
seed in :data:`SEEDS`. On the 8 held-out campaigns (17,812 exposures, 2,421 treated), the bench's
own instrument (``bench/uplift_checks.py``: Qini within a campaign, 95% interval from 200
resamples drawn inside each campaign, seed 7) scores two rankings: the live model's stored uplift
and the **oracle** (the true uplift's order). Reported per effect: in how many seeds the interval
lies above 0, and the range of the Qini. The smallest effect on the grid at which the interval
lies above 0 in every seed is the effect the target can resolve at this volume, for each ranking.
With effect 0 an interval above 0 is a false claim of a gain.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.uplift_checks import within, within_interval
from tests.uplift_sim import simulate

RESULTS = Path(__file__).with_name("uplift_power.json")
EFFECTS = (0.0, 0.03, 0.05, 0.075, 0.10, 0.125, 0.15)
SEEDS = tuple(range(1, 7))
RESAMPLES = 200
BOOTSTRAP_SEED = 7


def run(effect: float, seed: int) -> dict[str, Any]:
    """Qini within a campaign and its interval, live model and oracle, for one simulated stream."""
    s = simulate(effect, seed)
    row: dict[str, Any] = {"seed": seed}
    for name, ranking in (("live", s.uplift), ("oracle", s.oracle)):
        low, high = within_interval(
            s.campaign, ranking, s.treated, s.responded, None, RESAMPLES, BOOTSTRAP_SEED
        )
        row[name] = {
            "qini_within_campaign": round(within(s.campaign, ranking, s.treated, s.responded), 5),
            "interval": [round(low, 5), round(high, 5)],
        }
    return row


def summary(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    q = [r[name]["qini_within_campaign"] for r in rows]
    return {
        "seeds_interval_above_0": sum(r[name]["interval"][0] > 0 for r in rows),
        "seeds_interval_below_0": sum(r[name]["interval"][1] < 0 for r in rows),
        "qini_min": min(q),
        "qini_max": max(q),
        "lowest_lower_end": min(r[name]["interval"][0] for r in rows),
    }


def main() -> None:
    began = time.perf_counter()
    by_effect: dict[str, Any] = {}
    for effect in EFFECTS:
        rows = [run(effect, seed) for seed in SEEDS]
        by_effect[f"{effect:g}"] = {
            "live": summary(rows, "live"),
            "oracle": summary(rows, "oracle"),
            "runs": rows,
        }
        live, oracle = by_effect[f"{effect:g}"]["live"], by_effect[f"{effect:g}"]["oracle"]
        print(
            f"effect +{effect:.3f} for a third: interval above 0 in {live['seeds_interval_above_0']}/"
            f"{len(SEEDS)} seeds (live), {oracle['seeds_interval_above_0']}/{len(SEEDS)} (oracle); "
            f"live Qini {live['qini_min']:+.4f} to {live['qini_max']:+.4f}",
            flush=True,
        )
    smallest = {
        name: next(
            (
                float(e)
                for e, v in by_effect.items()
                if float(e) > 0 and v[name]["seeds_interval_above_0"] == len(SEEDS)
            ),
            None,
        )
        for name in ("live", "oracle")
    }
    out: dict[str, Any] = {
        "meta": {
            "command": ".venv/bin/python bench/uplift_power.py",
            "date": time.strftime("%Y-%m-%d"),
            "runtime_seconds": round(time.perf_counter() - began, 1),
            "held_out": {"campaigns": 8, "exposures": 17_812, "treated": 2_421},
            "effect": "added to the response probability of the top third of customers by frequency",
            "seeds": list(SEEDS),
            "resamples": RESAMPLES,
            "bootstrap_seed": BOOTSTRAP_SEED,
        },
        "smallest_effect_interval_above_0_in_every_seed": smallest,
        "by_effect": by_effect,
    }
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"smallest effect with the interval above 0 in every seed: {smallest}")
    print(f"runtime {out['meta']['runtime_seconds']}s")


if __name__ == "__main__":
    main()
