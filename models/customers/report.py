"""The customer models' held-out reports for people and machines: `format_clv`, `format_churn` and
`format_segments` print the tables `storeedge models evaluate --task clv|churn|segments` shows,
`report_json` the JSON (`--json`)."""

from __future__ import annotations

import msgspec

from models.customers.evaluate import ClvReport
from models.customers.evaluate_churn import ChurnReport
from models.customers.intervals import Estimate
from models.customers.segments_breakdown import SegmentChurnRow, SegmentClvRow
from models.customers.segments_evaluate import SegmentReport, VarianceExplained
from models.history import day_date


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
    lines += _spend_lines(report)
    lines += _forecast_lines(report)
    lines += [
        f"{report.selected} minus {name} (paired): RMSE {_ci(gap.rmse)}, correlation {_ci(gap.corr)}"
        for name, gap in report.versus_published.items()
    ]
    lines.append("goals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in report.goals.items()))
    lines += _clv_segment_lines(report.by_segment, report.selected)
    lines.append(f"took {report.seconds:g} s")
    return "\n".join(lines)


def _spend_lines(report: ClvReport) -> list[str]:
    if not report.spend_rows:
        return []
    lines = [
        f"spend per trip variants ({report.selected} trips x each; chosen by mean pseudo-holdout spend MAE "
        f"on calibration: {report.spend_selected}):",
        f"{'spend variant':<30} {'pseudo MAE':>10} {'p':>7} {'q':>7} {'gamma':>8} {'per trip':>8} "
        f"{'spend MAE':<28} {'minus own recent spend':<28}",
    ]
    for r in report.spend_rows:
        name = r.name + (" (selected)" if r.selected else "")
        lines.append(
            f"{name:<30} {r.selection_mae:>10.2f} {r.params.p:>7.2f} {r.params.q:>7.2f} "
            f"{r.params.gamma:>8.2f} {r.spend_per_trip_mean:>8.2f} {_ci(r.spend_mae, 2):<28} "
            f"{_ci(r.minus_baseline, 2):<28}"
        )
    return lines


def _forecast_lines(report: ClvReport) -> list[str]:
    f = report.spend_forecast
    if f is None:
        return []
    lines = [
        f"direct spend forecasts (fitted on the {f.pseudo_households} households' spend in the horizon after "
        f"the pseudo-cutoff {day_date(f.pseudo_cutoff)}, features {', '.join(f.features)}; chosen by "
        f"5-fold cross-validated MAE there: {f.selected}; beats own recent spend outside its CI: "
        f"{'yes' if f.beats_baseline else 'no'}):",
        f"{'forecast':<20} {'CV MAE':>8} {'spend MAE':<28} {'minus own recent spend':<28} coefficients",
    ]
    for r in f.rows:
        name = r.name + (" (selected)" if r.selected else "")
        coef = " ".join(f"{k}:{v:.4g}" for k, v in r.coef.items())
        lines.append(
            f"{name:<20} {r.cv_mae:>8.2f} {_ci(r.spend_mae, 2):<28} {_ci(r.minus_baseline, 2):<28} {coef}"
        )
    return lines


def _clv_segment_lines(rows: list[SegmentClvRow], selected: str) -> list[str]:
    if not rows:
        return []
    lines = [
        f"by segment ({selected} vs own trips and spend before the cutoff):",
        f"{'segment':<8} {'name':<48} {'customers':>9} {'trips':>6} {'pred':>6} {'MAE':>6} {'base':>6} "
        f"{'spend MAE':>9} {'base':>8}",
    ]
    for r in rows:
        lines.append(
            f"{r.segment:<8} {r.name[:48]:<48} {r.customers:>9} {r.holdout_trips_mean:>6.2f} "
            f"{r.predicted_trips_mean:>6.2f} {r.trips_mae:>6.2f} {r.baseline_trips_mae:>6.2f} "
            f"{r.spend_mae:>9.2f} {r.baseline_spend_mae:>8.2f}"
        )
    return lines


def _auc_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _churn_segment_lines(rows: list[SegmentChurnRow], selected: str) -> list[str]:
    if not rows:
        return []
    baselines = list(rows[0].baseline_auc)
    lines = [
        f"by segment (AUC of {selected} P(no trip), then of the baselines: {'; '.join(baselines)}):",
        f"{'segment':<8} {'name':<48} {'households':>10} {'churners':>8} {'AUC':>6} "
        + " ".join(f"{'base' + str(i + 1):>6}" for i in range(len(baselines))),
    ]
    for r in rows:
        lines.append(
            f"{r.segment:<8} {r.name[:48]:<48} {r.households:>10} {r.churners:>8} {_auc_text(r.auc):>6} "
            + " ".join(f"{_auc_text(r.baseline_auc[b]):>6}" for b in baselines)
        )
    return lines


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
    lines += _churn_segment_lines(report.by_segment, report.selected)
    lines.append(f"took {report.seconds:g} s")
    return "\n".join(lines)


def _variance_text(v: VarianceExplained) -> str:
    return (
        f"eta^2 {v.eta_squared:.4f} vs chance {v.chance_mean:.4f} (95th percentile {v.chance_p95:.4f}, "
        f"p {v.p_value:.4f})"
    )


def format_segments(report: SegmentReport) -> str:
    """The segments report as text: the segments in words, their stability and what they explain."""
    missing = ", ".join(report.missing_features) or "none"
    unused = ", ".join(report.unused_features) or "none"
    lines = [
        f"Segments on {report.source}: {report.households} households, features before {report.cutoff}; "
        f"features the source lacks: {missing}; left out of the fit: {unused}; seed {report.seed}",
        f"k = {report.k} ({report.k_rule}); split-half ARI by k: "
        + ", ".join(f"{k}: {v:.3f}" for k, v in report.stability_by_k.items()),
        f"stability at k = {report.k} (fresh halvings): ARI "
        + ", ".join(f"{v:.3f}" for v in report.stability_rounds)
        + f"; median {report.stability:.3f}",
        f"next {report.horizon_days:g} days' spend explained by segment: {_variance_text(report.spend)}",
        f"  log(1 + spend): {_variance_text(report.log_spend)}; {report.permutations} permutations",
        f"{'segment':<8} {'households':>10} {'share':>6} {'next spend':>10}  name",
    ]
    for r in report.segments:
        lines.append(f"{r.id:<8} {r.households:>10} {r.share:>6.1%} {r.next_spend_mean:>10.2f}  {r.name}")
    lines += [f"  {r.id}: {r.description}" for r in report.segments]
    lines.append("goals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in report.goals.items()))
    lines.append(f"took {report.seconds:g} s")
    return "\n".join(lines)


def report_json(report: ClvReport | ChurnReport | SegmentReport) -> bytes:
    """The report as indented JSON."""
    return msgspec.json.format(msgspec.json.encode(report), indent=2)
