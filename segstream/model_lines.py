"""The live models' lines as ``segstream models`` and ``make demo`` print them (calibration, alert gates)."""

from __future__ import annotations

from typing import Any

__all__ = ["alert_gate_lines", "churn_calibration_lines", "figure"]


def figure(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def churn_calibration_lines(churn: dict[str, Any]) -> list[str]:
    """The churn model's calibration (prequential) and each band's observed churn rate, as text."""
    calibration, recent = churn["calibration"], churn["recent"]
    served, raw = calibration["served"], calibration["raw"]
    lines = [
        f"churn calibration, prequential over {served['examples']:,.0f} labelled predictions (ECE: 10 "
        f"equal-width bins): served (Platt a={calibration['platt']['a']:.3f} b={calibration['platt']['b']:.3f}) "
        f"ECE {figure(served['ece'])} Brier {figure(served['brier'])}; raw ECE {figure(raw['ece'])} "
        f"Brier {figure(raw['brier'])}; recent ({recent['half_life_days']:g}-day half-life) "
        f"AUC {figure(recent['auc'])} ECE {figure(recent['ece'])}",
        "observed churn rate by band at prediction (labels the model learned from):",
    ]
    for band, row in churn["band_outcomes"].items():
        lines.append(
            f"  {band:<6} {figure(row['observed_churn_rate'])} ({row['churned']:,} of {row['predictions']:,} churned)"
        )
    return lines


def alert_gate_lines(gates: dict[str, Any]) -> list[str]:
    """Whether each model-backed alert kind may fire now, and why."""
    lines = [
        f"alert gates (fire while recent AUC > {gates['min_auc']:g} and ECE < {gates['max_ece']:g}; "
        "overdue and segment_drift are rules, never gated):"
    ]
    for kind in ("churn_risk", "likely_responder"):
        g = gates[kind]
        lines.append(
            f"  {kind:<16} {'open' if g['open'] else 'shut'}: model v{g['version']} recent AUC "
            f"{figure(g['auc'])} ECE {figure(g['ece'])}; {g['held_back']:,} crossings held back"
        )
    return lines
