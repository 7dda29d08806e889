"""The lifetime model's warm refits on analytic gradients vs finite differences, same run.

The evaluator refits BG/NBD and Gamma-Gamma every 28 days of event time from the previous version's
parameters (one L-BFGS-B run each). This replays that schedule on CDNOW master's calibration
summaries at each 28-day cut (``segstream.btyd_data.calibration_summary``) twice, alternating per
cut: with the models' analytic gradients (what the evaluator runs) and with L-BFGS-B's own
finite-difference gradients (what it ran before 2026-11-30). Prints the total time of each, their
ratio and the largest difference of the optimum's log-likelihood; writes ``bench/refit_cost.json``.

    .venv/bin/python bench/refit_cost.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segstream.btyd_data import calibration_summary
from segstream.sources import load_cdnow
from state.models import btyd

OUT = Path(__file__).with_name("refit_cost.json")


def main() -> None:
    history = load_cdnow()
    first = pd.Timestamp(history["occurred_at"].min()).tz_convert("UTC").floor("D")
    cuts = pd.date_range(first + pd.Timedelta(days=56), history["occurred_at"].max(), freq="28D")
    summaries = [calibration_summary(history, calibration_end=cut) for cut in cuts]
    start = btyd.fit_bgnbd(summaries[0]["x"], summaries[0]["t_x"], summaries[0]["T"])
    seconds = {"analytic": 0.0, "differences": 0.0}
    lls: dict[str, list[float]] = {"analytic": [], "differences": []}
    previous = dict.fromkeys(seconds, start)
    for s in summaries[1:]:
        for way in ("analytic", "differences"):
            p = previous[way]
            began = time.perf_counter()
            fitted = btyd.fit_bgnbd(
                s["x"],
                s["t_x"],
                s["T"],
                initial=(p.r, p.alpha, p.a, p.b),
                quick=True,
                analytic_gradient=way == "analytic",
            )
            seconds[way] += time.perf_counter() - began
            lls[way].append(fitted.log_likelihood)
            previous[way] = fitted
    result = {
        "command": "python bench/refit_cost.py",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "refits": len(summaries) - 1,
        "customers_at_last_cut": len(summaries[-1]),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "speedup": round(seconds["differences"] / seconds["analytic"], 2),
        "max_log_likelihood_difference": float(
            np.max(np.abs(np.subtract(lls["analytic"], lls["differences"])))
        ),
        "analytic_minus_differences_sum": float(np.sum(np.subtract(lls["analytic"], lls["differences"]))),
    }
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
