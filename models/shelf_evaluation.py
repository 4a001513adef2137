"""Shelf depletion on held-out weeks: the model next to its baselines from the same run.

Samples are random (shelf, time, stock) after the split; the truth is when the shelf's actual picks
exhaust the stock. Every method is judged on the same samples (those that empty within the horizon):

- ``model``: the gradient-boosted model;
- ``baseline``: linear extrapolation of the last hour's pick rate (what the daemon did before a model);
- ``baseline_last_week``: seasonal-naive, the same hours 7 days earlier (`last_week_minutes`);
- ``baseline_yesterday``: the same hours the day before (`yesterday_minutes`).

Broken out by the kind of day the sample falls on (``by_day``: a public holiday of the stream's country,
the eve of one, or an ordinary day) and by whether the shelf moved in the last hour.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from models.holiday_calendar import holiday_columns, holiday_days
from models.shelf import (
    HORIZON_MINUTES,
    PickStream,
    S,
    depletion_from_log_minutes,
    linear_baseline_minutes,
    shelf_errors,
)
from models.training import shelf_rows

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
EPOCH = date(1970, 1, 1)
METHODS = ("model", "baseline", "baseline_last_week", "baseline_yesterday")
DAY_KINDS = ("holiday", "eve", "ordinary")


def method_minutes(features: F32, log_minutes: F64) -> dict[str, F64]:
    """Each method's minutes to empty for feature rows (the model's from its log1p output)."""
    return {
        "model": depletion_from_log_minutes(log_minutes, features).minutes,
        "baseline": linear_baseline_minutes(features),
        "baseline_last_week": features[:, S["last_week_minutes"]].astype(np.float64),
        "baseline_yesterday": features[:, S["yesterday_minutes"]].astype(np.float64),
    }


def day_kinds(features: F32) -> dict[str, npt.NDArray[np.bool_]]:
    """Which samples fall on a public holiday, on the eve of one, or on an ordinary day."""
    holiday = features[:, S["holiday_today"]] > 0
    eve = features[:, S["holiday_eve"]] > 0
    return {"holiday": holiday, "eve": eve, "ordinary": ~holiday & ~eve}


def errors_by_method(
    minutes: dict[str, F64], actual: F64, mask: npt.NDArray[np.bool_] | None = None
) -> dict[str, dict[str, float]]:
    keep = np.ones(actual.shape, dtype=bool) if mask is None else mask
    return {name: shelf_errors(minutes[name][keep], actual[keep]) for name in METHODS}


def evaluate_shelf_depletion(
    stream: PickStream,
    split: int,
    log_minutes: Callable[[F32], F64],
    *,
    samples: int,
    max_stock: int,
    seed: int,
) -> dict[str, Any]:
    """The report of `storeedge models evaluate` for shelves: held-out samples from ``split`` to the last
    minute that still has a full horizon of picks after it."""
    end = int(stream.minute.max()) - HORIZON_MINUTES
    if end <= split:
        return {"model": {}, "baseline": {}, "note": "no full horizon of picks after the split"}
    x, actual = shelf_rows(stream, split, end, samples=samples, max_stock=max_stock, seed=seed)
    minutes = method_minutes(x, log_minutes(x))
    # Where the last hour had picks, the linear baseline has a rate to extrapolate (shelf moving).
    active = x[:, S["picks_60m"]] > 0
    first_day, last_day = split // 1440, end // 1440
    report: dict[str, Any] = {
        "holdout": {
            "first_day": _iso(first_day),
            "last_day": _iso(last_day),
            "country": stream.country,
            "holidays": [_iso(int(d)) for d in holiday_days(stream.country, first_day, last_day)],
            "eves": [
                _iso(d)
                for d in range(first_day, last_day + 1)
                if holiday_columns(np.asarray([d]), stream.country)["holiday_eve"][0] > 0
            ],
        },
        **errors_by_method(minutes, actual),
        "active_last_hour": errors_by_method(minutes, actual, active),
        "by_day": {kind: errors_by_method(minutes, actual, mask) for kind, mask in day_kinds(x).items()},
        "empty_within_horizon_share": float(np.mean(actual < HORIZON_MINUTES)),
    }
    return report


def _iso(day: int) -> str:
    return (EPOCH + timedelta(days=day)).isoformat()
