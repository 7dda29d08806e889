"""The live models' lines as ``segstream models`` and ``make demo`` print them (calibration, alert gates)."""

from __future__ import annotations

from state.evaluator.read_model import AlertGates, ChurnReport

__all__ = ["alert_gate_lines", "churn_calibration_lines", "figure"]


def figure(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def churn_calibration_lines(churn: ChurnReport) -> list[str]:
    """The churn model's calibration (prequential) and each band's observed churn rate, as text
    (none from a summary saved by a version that did not keep them)."""
    calibration, recent, outcomes = churn.calibration, churn.recent, churn.band_outcomes
    if calibration is None or recent is None or outcomes is None:
        return []
    served, raw, platt = calibration.served, calibration.raw, calibration.platt
    lines = [
        f"churn calibration, prequential over {served.examples:,.0f} labelled predictions (ECE: 10 "
        f"equal-width bins): served (Platt a={platt.a:.3f} b={platt.b:.3f}) "
        f"ECE {figure(served.ece)} Brier {figure(served.brier)}; raw ECE {figure(raw.ece)} "
        f"Brier {figure(raw.brier)}; recent ({recent.half_life_days:g}-day half-life) "
        f"AUC {figure(recent.auc)} ECE {figure(recent.ece)}",
        "observed churn rate by band at prediction (labels the model learned from):",
    ]
    for band, row in outcomes.by_band().items():
        lines.append(
            f"  {band:<6} {figure(row.observed_churn_rate)} ({row.churned:,} of {row.predictions:,} churned)"
        )
    return lines


def alert_gate_lines(gates: AlertGates | None) -> list[str]:
    """Whether each model-backed alert kind may fire now, and why (none from a summary saved by a
    version without gates)."""
    if gates is None:
        return []
    lines = [
        f"alert gates (fire while recent AUC > {gates.min_auc:g} and ECE < {gates.max_ece:g}; "
        "overdue and segment_drift are rules, never gated):"
    ]
    for kind, g in (("churn_risk", gates.churn_risk), ("likely_responder", gates.likely_responder)):
        lines.append(
            f"  {kind:<16} {'open' if g.open else 'shut'}: model v{g.version} recent AUC "
            f"{figure(g.auc)} ECE {figure(g.ece)}; {g.held_back:,} crossings held back"
        )
    return lines
