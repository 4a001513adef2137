"""The weekly cumulative repeat-purchase curve of CDNOW, models vs actual (Fader, Hardie & Lee's Figure 1):
`python -m models.customers.figures` writes docs/figures/cdnow_repeat_purchases.png.

Each model's curve is the sum over customers of E[X(t - s_i)], the expected repeat trips of a customer
whose first trip was at s_i, with parameters fitted on the 39 calibration weeks only; the actual curve
counts every trip after each customer's first, per week since 1997-01-01.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.customers import btyd
from models.customers.btyd_selection import fit_candidates, select_model
from models.customers.cdnow import CALIBRATION_END, CDNOW, HOLDOUT_DAYS, REPO
from models.customers.rfm import load_purchases
from models.history import epoch_day

F64 = npt.NDArray[np.float64]
FIGURE = REPO / "docs" / "figures" / "cdnow_repeat_purchases.png"


def repeat_purchase_curve(
    customer: npt.ArrayLike,
    day: npt.ArrayLike,
    *,
    start_day: int,
    weeks: int,
    models: Mapping[str, tuple[btyd.TripModel, F64 | None]],
) -> tuple[F64, F64, dict[str, F64]]:
    """(week ends 1..weeks, actual cumulative repeat trips, each model's expected cumulative repeat
    trips). ``models`` maps a label to (model, covariate value per customer in sorted-id order or None)."""
    names, code = np.unique(np.asarray(customer), return_inverse=True)
    trips = np.unique(np.stack([code.astype(np.int64), np.asarray(day, dtype=np.int64)], axis=1), axis=0)
    first = np.full(names.size, np.iinfo(np.int64).max)
    np.minimum.at(first, trips[:, 0], trips[:, 1])
    repeat_day = trips[:, 1][trips[:, 1] > first[trips[:, 0]]]
    week_ends = np.arange(1, weeks + 1, dtype=np.float64)
    per_week = np.bincount(((repeat_day - start_day) // 7).astype(np.int64), minlength=weeks)[:weeks]
    actual = np.cumsum(per_week).astype(np.float64)
    born = (first - start_day) / 7.0
    age = np.maximum(week_ends[:, None] - born[None, :], 0.0)
    expected = {
        label: np.asarray(btyd.expected(model, age, z).sum(axis=1), dtype=np.float64)
        for label, (model, z) in models.items()
    }
    return week_ends, actual, expected


def plot_repeat_purchases(
    path: Path, week_ends: F64, actual: F64, expected: dict[str, F64], calibration_weeks: float
) -> Path:
    """Draw the curves (matplotlib, Agg) into ``path`` (PNG)."""
    import matplotlib  # noqa: PLC0415 - only the figure needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    ax.plot(week_ends, actual, color="black", linewidth=2, label="actual")
    for (label, curve), style in zip(expected.items(), ("--", ":", "-.", "-"), strict=False):
        ax.plot(week_ends, curve, linestyle=style, label=label)
    ax.axvline(calibration_weeks, color="grey", linewidth=1)
    ax.text(calibration_weeks + 0.5, 0.05 * actual.max(), "holdout", color="grey")
    ax.set_xlabel("week since 1997-01-01")
    ax.set_ylabel("cumulative repeat trips")
    ax.set_title("CDNOW (2,357 customers): cumulative repeat trips, models fitted on weeks 1-39")
    ax.legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def cdnow_repeat_purchase_figure(path: Path = FIGURE) -> tuple[Path, dict[str, float]]:
    """Fit on CDNOW's calibration weeks, draw the 78-week curve; returns the path and each model's mean
    absolute gap to the actual cumulative curve over the holdout weeks."""
    p = load_purchases(CDNOW)
    start, end = int(p.day.min()), epoch_day(CALIBRATION_END)
    selected, _ = select_model(p, start, end)
    fitted = fit_candidates(p, end, 0.0)
    chosen = {"bgnbd": "BG/NBD", "pareto_nbd": "Pareto/NBD", selected: f"selected: {selected}"}
    # A model fitted on a recent window only describes that window's customers: not drawn.
    models = {
        label: (fitted[name].model, np.log1p(fitted[name].summary.first_spend))
        for name, label in chosen.items()
        if fitted[name].window is None
    }
    weeks = (end - start + HOLDOUT_DAYS) // 7
    week_ends, actual, expected = repeat_purchase_curve(
        p.customer, p.day, start_day=start, weeks=weeks, models=models
    )
    holdout = week_ends > (end - start) / 7
    gaps = {label: float(np.mean(np.abs(curve - actual)[holdout])) for label, curve in expected.items()}
    return plot_repeat_purchases(path, week_ends, actual, expected, (end - start) / 7), gaps


if __name__ == "__main__":
    written, gap = cdnow_repeat_purchase_figure()
    print(written, {k: round(v, 1) for k, v in gap.items()})
