"""The customer models' held-out reports for people and machines: `format_clv` and `format_churn`
print the tables `storeedge models evaluate --task clv|churn` shows, `report_json` the JSON (`--json`)."""

from __future__ import annotations

import msgspec

from models.customers.evaluate import ChurnReport, ClvReport, Estimate


def _ci(e: Estimate | None, digits: int = 3) -> str:
    if e is None:
        return "-"
    return f"{e.value:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def format_clv(report: ClvReport) -> str:
    """The CLV report as a text table."""
    lines = [
        f"CLV on {report.source}: {report.customers} customers, calibration to {report.calibration_end}, "
        f"holdout {report.horizon_days:g} days ({report.holdout_trips:g} trips); bootstrap {report.bootstrap}, "
        f"seed {report.seed}; selected by pseudo-holdout: {report.selected}",
        f"{'predictor':<30} {'role':<9} {'trips MAE':<22} {'trips RMSE':<22} {'correlation':<22} {'spend MAE':<28}",
    ]
    for r in report.rows:
        lines.append(
            f"{r.name:<30} {r.role:<9} {_ci(r.mae):<22} {_ci(r.rmse):<22} {_ci(r.corr):<22} {_ci(r.spend_mae, 2):<28}"
        )
    lines.append(f"spend MAE, selected minus own recent spend: {_ci(report.spend_mae_vs_baseline, 2)}")
    lines.append("goals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in report.goals.items()))
    lines.append(f"took {report.seconds:g} s")
    return "\n".join(lines)


def format_churn(report: ChurnReport) -> str:
    """The churn report as a text table."""
    lines = [
        f"Churn on {report.source}: no trip in the {report.window_days:g} days after {report.cutoff}; "
        f"{report.churners} of {report.households} households churned ({_ci(report.churn_rate, 4)}); "
        f"bootstrap {report.bootstrap}, seed {report.seed}; selected model {report.selected}",
        f"{'score':<42} {'AUC':<22} {'ECE':>6} {'Brier':>7}  AUC minus baselines",
    ]
    for r in report.rows:
        ece_text = "-" if r.ece is None else f"{r.ece:.3f}"
        brier = "-" if r.brier is None else f"{r.brier:.4f}"
        gaps = "; ".join(f"{_ci(g)}" for g in r.auc_minus_baseline.values())
        lines.append(f"{r.name:<42} {_ci(r.auc):<22} {ece_text:>6} {brier:>7}  {gaps}")
    lines.append(f"goal (beat every baseline outside its CI): {'met' if report.goal_met else 'NOT met'}")
    lines.append(f"took {report.seconds:g} s")
    return "\n".join(lines)


def report_json(report: ClvReport | ChurnReport) -> bytes:
    """The report as indented JSON."""
    return msgspec.json.format(msgspec.json.encode(report), indent=2)
