"""The text of `storeedge models evaluate|train` reports (`models.cli`): each model beside its baselines
from the same run, one table per task and protocol; `--json` prints the report itself instead."""

from __future__ import annotations

from datetime import date
from typing import Any


def format_report(report: dict[str, Any], source: str, cutoff: date) -> str:
    """The metrics table: each model next to its baselines from the same run, one section per task."""
    lines = [
        f"source {source}, cutoff {cutoff}: trained on everything before it, tested on the days after it",
    ]
    for section in (next_purchase_lines, next_basket_lines, shelf_lines):
        lines += ["", *section(report)]
    timing = report.get("timing_seconds", {})
    lines.append("")
    lines.append("seconds: " + ", ".join(f"{k} {v}" for k, v in timing.items()))
    return "\n".join(lines)


def next_purchase_lines(report: dict[str, Any]) -> list[str]:
    np_report = report["next_purchase"]
    return [
        f"next purchase: {np_report['model']['pairs']} pairs with >= 3 purchases, "
        f"{np_report['censored_share']:.1%} not bought again in the {np_report['test_days']} test days",
        *table(
            ("mae_days", "within_7d", "within_2d", "within_1d", "ece_7d", "ece_14d"),
            [
                ("model (median date)", np_report["model"]),
                ("model (likeliest week)", np_report["model_best_week"]),
                ("median interval", np_report["baseline"]),
            ],
        ),
        *probability_lines(np_report),
    ]


BASKET_KEYS = ("recall@10", "ndcg@10", "recall_repeat@10", "recall_new@10", "ece", "recall_vs_gp")


def basket_rows(part: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Model, GP-TopFreq and (when evaluated) tuned TIFU-KNN, with Recall@10 relative to GP-TopFreq."""
    rows = [("model", part["model"]), ("GP-TopFreq", part["baseline"])]
    if "baseline_tifu_knn" in part:
        rows.append(("TIFU-KNN (tuned)", part["baseline_tifu_knn"]))
    gp = part["baseline"].get("recall@10") or float("nan")
    return [(name, values | {"recall_vs_gp": values["recall@10"] / gp}) for name, values in rows]


def next_basket_lines(report: dict[str, Any]) -> list[str]:
    nb = report["next_basket"]
    lines = [
        f"next basket: {nb['model']['baskets']} test baskets of {nb['model']['households']} households "
        f"({nb['new_item_share']:.1%} of basket items never bought before; recall_new@10: explore items)",
        *table(BASKET_KEYS, basket_rows(nb)),
    ]
    tuning = nb.get("tifu_knn_tuning")
    if tuning:
        params = ", ".join(f"{key} {value}" for key, value in tuning["params"].items())
        lines.append(
            f"TIFU-KNN tuned on the {tuning['validation_days']} days before the cutoff "
            f"({tuning['validation_baskets']} baskets, {tuning['combinations']} combinations): {params}; "
            f"validation recall@10 {tuning['validation_recall@10_tifu_knn']:.3f} "
            f"(GP-TopFreq {tuning['validation_recall@10_gp_top_freq']:.3f})"
        )
    rolling = report["next_basket_rolling"]
    return [
        *lines,
        "",
        "next basket, rolling (each day's baskets ranked from the history before that day, as the daemon "
        "serves; same model, same TIFU-KNN parameters)",
        *table(BASKET_KEYS, basket_rows(rolling)),
    ]


SHELF_KEYS = ("mae_minutes", "median_error_minutes", "within_30min", "within_20pct", "samples")
SHELF_METHODS = (
    ("model", "model"),
    ("last-hour linear", "baseline"),
    ("same hours last week", "baseline_last_week"),
    ("same hours yesterday", "baseline_yesterday"),
)


def shelf_lines(report: dict[str, Any]) -> list[str]:
    """The shelf model next to its baselines: all samples, shelf moving, and by kind of day."""
    shelf = report.get("shelf_depletion", {})
    if not shelf.get("model"):
        return [f"shelf depletion: {shelf.get('note', 'not trained')}"]
    holdout = shelf.get("holdout", {})
    lines = [
        "shelf depletion (simulator ground truth; samples that empty within 24 h; "
        f"held out {holdout.get('first_day', '?')} to {holdout.get('last_day', '?')}, "
        f"country {holdout.get('country') or '-'}, holidays {', '.join(holdout.get('holidays', [])) or 'none'})",
    ]
    parts = [("", shelf), ("shelf moving (picks in the last hour)", shelf.get("active_last_hour", {}))]
    parts += [(f"on {kind} days", values) for kind, values in shelf.get("by_day", {}).items()]
    for title, part in parts:
        rows = [(name, part[key]) for name, key in SHELF_METHODS if key in part]
        if rows:
            lines += ([title] if title else []) + table(SHELF_KEYS, rows)
    return lines


def probability_lines(np_report: dict[str, Any]) -> list[str]:
    """P(T < 7) and P(T < 14) judged as probabilities, next to the pair's empirical gap distribution."""
    if "baseline_empirical" not in np_report:
        return []
    keys = ("brier_7d", "brier_14d", "log_loss_7d", "log_loss_14d", "ece_7d", "ece_14d")
    better = np_report["improvement_over_empirical"]
    return [
        "",
        "next purchase, P(T < 7) and P(T < 14) as probabilities (all pairs, censored included)",
        *table(
            keys,
            [
                ("model", np_report["model"]),
                ("empirical intervals", np_report["baseline_empirical"]),
                ("median interval (0/1)", np_report["baseline"]),
            ],
        ),
        "model vs empirical intervals, (baseline - model) / baseline: "
        + ", ".join(f"{key} {better[key]:+.1%}" for key in keys[:4]),
    ]


def table(keys: tuple[str, ...], rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    width = max(len(name) for name, _ in rows) + 2
    header = "".ljust(width) + "".join(k.rjust(max(12, len(k) + 2)) for k in keys)
    out = [header]
    for name, values in rows:
        cells = []
        for k in keys:
            v = values.get(k)
            cell = f"{v:.3f}" if isinstance(v, float) else "-" if v is None else str(v)
            cells.append(cell.rjust(max(12, len(k) + 2)))
        out.append(name.ljust(width) + "".join(cells))
    return out
