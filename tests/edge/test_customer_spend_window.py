"""The edge scores spend per trip over the days the spend model was chosen on, which may differ from
the trip model's window (`models.customers.scoring.spend_inputs`; docs/customer_models.md)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np

from edge.customers.scores import CustomerModels, Trips, score_trips
from models.cards import read_json_model
from models.customers.btyd import expected_spend
from models.customers.scoring import CustomerModelParams

PARAMS = msgspec.structs.replace(  # without the direct forecast: the served spend is trips x spend per trip
    read_json_model(
        Path(__file__).resolve().parents[2] / "models" / "trained" / "customers" / "params.json",
        CustomerModelParams,
    ),
    spend_forecast=None,
)
TODAY = 1_000


def trips() -> Trips:
    """Household "a": a year of weekly trips, big baskets long ago and small ones in the last 91 days."""
    days = np.arange(TODAY - 364, TODAY + 1, 7, dtype=np.int64)
    total = np.where(days >= TODAY + 1 - 91, 20.0, 80.0)
    return Trips(("a",), np.zeros(days.size, dtype=np.int64), days, total, None)


def spend_per_trip(params: CustomerModelParams) -> tuple[float, float]:
    """The served spend / trips and how far the rounding of both to 2 digits may move it (per trip x)."""
    models = CustomerModels(params, "test", None, Path("."))
    (score,) = score_trips(models, trips(), TODAY, 0, 365)
    ratio = score.expected_spend_90d / score.expected_trips_90d
    return ratio, 0.005 * (1.0 + ratio) / score.expected_trips_90d + 1e-9


def test_a_window_trip_model_with_a_whole_history_spend_model_uses_the_whole_history_spend() -> None:
    t = trips()
    repeat = t.total[1:]  # the spend model sees repeat trips only, as in training
    whole = float(expected_spend(PARAMS.spend, np.array([repeat.size]), np.array([repeat.mean()]))[0])
    recent = t.total[t.day >= TODAY + 1 - 91][1:]
    window = float(expected_spend(PARAMS.spend, np.array([recent.size]), np.array([recent.mean()]))[0])
    assert window < 30 < 60 < whole  # the two inputs are far apart here

    both_window = msgspec.structs.replace(PARAMS, window_days=91, spend_window_days=91)
    split = msgspec.structs.replace(PARAMS, window_days=91, spend_window_days=None)
    for params, expected in ((both_window, window), (split, whole)):
        served, rounding = spend_per_trip(params)
        assert abs(served - expected) <= rounding < 0.1
