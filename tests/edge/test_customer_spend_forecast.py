"""The edge serves the bundle's direct 90-day spend forecast (`edge.customers.spend_forecast`): the same
figure the models path computes on the same purchases (`models.customers.spend_forecast.spend_features`
with the bundle's trip and spend models), feature by feature; a bundle without one serves expected trips
x spend per trip; a forecast over a feature this code does not compute is refused at load; the insights
say which one produced the figure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgspec
import numpy as np
import pytest

from edge.customers.insights_data import InsightInputs
from edge.customers.insights_document import lifetime_value
from edge.customers.insights_routes import _spend_source
from edge.customers.score_tables import CustomerScore
from edge.customers.scores import HORIZON_DAYS, CustomerModels, Trips, load_customer_models, score_trips
from edge.customers.spend_forecast import BTYD
from models.cards import CUSTOMER_PARAMS_FILE, CUSTOMERS_DIR, read_json_model
from models.customers.btyd_selection import Fitted
from models.customers.forecast import FEATURES, INTERCEPT, SpendForecast
from models.customers.rfm import Purchases
from models.customers.scoring import CustomerModelParams
from models.customers.spend import SpendVariant, per_trip
from models.customers.spend_forecast import spend_features
from models.errors import ModelLoadError
from models.inference import TRAINED_DIR

SHIPPED = read_json_model(TRAINED_DIR / CUSTOMERS_DIR / CUSTOMER_PARAMS_FILE, CustomerModelParams)
TODAY = 2_000
# Every feature weighed, so that any one computed differently moves the figure.
EVERY = SpendForecast(
    name="test_every",
    coef={
        INTERCEPT: 3.0, "own90": 0.4, "s30x3": 0.2, "s180h": 0.1, "btyd": 0.3, "trips": 1.5,
        "per_trip": 0.2, "p_alive": 10.0, "recency_days": -0.05, "trips90": 0.5,
    },
)  # fmt: skip
# Trip window and spend window as the bundle may ship them: whole/whole, 91/91, 91-day trips/whole spend.
WINDOWS = {"whole": (None, None), "91d": (91, 91), "91d-whole-spend": (91, None)}


def purchases(seed: int = 3, households: int = 80) -> Trips:
    """A store's year and a half: regulars, households born in the last 90 days (the first-trip rule),
    some gone quiet for months, and two tills on one day (one trip)."""
    rng = np.random.default_rng(seed)
    owner: list[int] = []
    day: list[int] = []
    for h in range(households):
        first = TODAY - int(rng.choice([500, 300, 150, 80, 40, 10]))
        last = TODAY - int(rng.choice([0, 5, 20, 45, 100, 200]))
        gap = int(rng.integers(3, 30))
        days = list(range(first, max(first, last) + 1, gap))
        owner += [h] * (len(days) + 1)
        day += [*days, days[-1]]  # a second till on the last trip's day
    total = rng.gamma(2.0, 20.0, len(owner))
    names = tuple(f"hh{h:03d}" for h in range(households))
    return Trips(names, np.asarray(owner, dtype=np.int64), np.asarray(day, dtype=np.int64), total, None)


def bundle(forecast: SpendForecast | None, window: str) -> CustomerModelParams:
    trips_days, spend_days = WINDOWS[window]
    return msgspec.structs.replace(
        SHIPPED, window_days=trips_days, spend_window_days=spend_days, spend_forecast=forecast
    )


def edge_spend(params: CustomerModelParams, trips: Trips) -> dict[str, float]:
    """The served 90-day spend of every household the edge scores."""
    scored = score_trips(CustomerModels(params, "test", None, Path(".")), trips, TODAY, 0, 365)
    return {s.household: s.expected_spend_90d for s in scored}


def models_features(params: CustomerModelParams, trips: Trips) -> tuple[list[str], dict[str, np.ndarray]]:
    """The models path's features at the edge's cutoff (the day after today) on the same purchases."""
    names = np.asarray(trips.households, dtype=str)[trips.owner]
    p = Purchases("test", names, trips.day, trips.total)
    end = TODAY + 1
    full = p.summary(end, 0.0, HORIZON_DAYS)
    window = params.window_days
    fitted = Fitted(params.trips, (p.since(end - window) if window else p).summary(end), window)
    variant = SpendVariant(params.spend_window_days, params.spend_window_days)
    spend = per_trip(params.spend, p, end, variant, full)
    features = spend_features(p, end, full, fitted, spend, HORIZON_DAYS, long=True)
    return full.customers.tolist(), features


def models_spend(forecast: SpendForecast, params: CustomerModelParams, trips: Trips) -> dict[str, float]:
    customers, features = models_features(params, trips)
    return dict(zip(customers, forecast.predict(features).tolist(), strict=True))


@pytest.mark.parametrize("window", list(WINDOWS))
def test_the_served_spend_is_the_models_paths_forecast_on_the_same_history(window: str) -> None:
    trips = purchases()
    params = bundle(EVERY, window)
    served = edge_spend(params, trips)
    expected = models_spend(EVERY, params, trips)
    assert len(served) >= 40  # a window drops the households without a trip in it
    assert all(served[h] == pytest.approx(round(expected[h], 2), abs=0.006) for h in served), window
    btyd = edge_spend(bundle(None, window), trips)
    assert sum(abs(served[h] - btyd[h]) > 1 for h in served) > len(served) // 2  # it is not BTYD


@pytest.mark.parametrize("feature", FEATURES)
def test_each_feature_is_the_models_paths(feature: str) -> None:
    """One coefficient at a time: the edge's figure is that feature exactly as the models compute it."""
    trips = purchases(seed=5)
    alone = SpendForecast(name="one", coef={feature: 1.0})
    for window in WINDOWS:
        params = bundle(alone, window)
        served = edge_spend(params, trips)
        customers, features = models_features(params, trips)
        values = dict(zip(customers, features[feature].tolist(), strict=True))
        assert np.ptp([values[h] for h in served]) > 0.5, feature  # varies: the check can tell
        wrong = [h for h in served if served[h] != pytest.approx(round(max(values[h], 0.0), 2), abs=0.006)]
        assert not wrong, (feature, window, wrong[:3])


# Made-up trips (day, spend) before the edge's cutoff (day TODAY + 1) whose features are known by hand.
BY_HAND = {
    # an old household, trips on each side of the 180-, 90- and 30-day boundaries (the window of the
    # last N days before the cutoff TODAY + 1 starts on TODAY + 1 - N); two tills on TODAY - 29: one trip
    "a": [
        (-299, 50.0), (-180, 3.0), (-179, 4.0), (-149, 20.0), (-90, 6.0), (-89, 30.0), (-30, 7.0),
        (-29, 10.0), (-29, 5.0), (0, 40.0),
    ],
    # young households: the first trip left out of own90, which is scaled by 90 / max(age, 7)
    "b": [(-39, 40.0), (-29, 20.0)],
    "c": [(-90, 11.0), (-10, 9.0)],  # exactly 90 days old: not young, its first trip outside the window
    "d": [(-3, 12.0), (0, 8.0)],
}  # fmt: skip
BY_HAND_FEATURES = {
    "a": {"own90": 92.0, "s30x3": 3 * 55.0, "s180h": 122.0 / 2, "recency_days": 1.0, "trips90": 4.0},
    "b": {
        "own90": 20.0 * 90 / 39,
        "s30x3": 3 * 20.0,
        "s180h": 60.0 / 2,
        "recency_days": 30.0,
        "trips90": 2.0,
    },
    "c": {"own90": 9.0, "s30x3": 3 * 9.0, "s180h": 20.0 / 2, "recency_days": 11.0, "trips90": 1.0},
    "d": {"own90": 8.0 * 90 / 7, "s30x3": 3 * 20.0, "s180h": 20.0 / 2, "recency_days": 1.0, "trips90": 2.0},
}


@pytest.mark.parametrize("feature", sorted(BY_HAND_FEATURES["a"]))
def test_the_history_features_mean_what_training_meant(feature: str) -> None:
    """The definitions themselves (shared by training and the edge), pinned by hand."""
    rows = [(h, TODAY + d, v) for h, trips in BY_HAND.items() for d, v in trips]
    names = tuple(BY_HAND)
    owner = np.asarray([names.index(h) for h, _, _ in rows], dtype=np.int64)
    day = np.asarray([d for _, d, _ in rows], dtype=np.int64)
    trips = Trips(names, owner, day, np.asarray([v for _, _, v in rows]), None)
    served = edge_spend(bundle(SpendForecast(name="one", coef={feature: 1.0}), "whole"), trips)
    assert served == {h: round(BY_HAND_FEATURES[h][feature], 2) for h in names}


def test_the_shipped_bundle_serves_its_forecast() -> None:
    assert SHIPPED.spend_forecast is not None
    entry = SHIPPED.card["spend_forecast"]
    assert isinstance(entry, dict)
    assert SHIPPED.spend_forecast.coef == entry["coef"]
    assert SHIPPED.spend_forecast.name == entry["selected"]
    trips = purchases()
    served = edge_spend(SHIPPED, trips)
    expected = models_spend(SHIPPED.spend_forecast, SHIPPED, trips)
    assert all(served[h] == pytest.approx(round(expected[h], 2), abs=0.006) for h in served)


def test_without_a_forecast_or_for_another_horizon_it_is_trips_times_spend_per_trip() -> None:
    trips = purchases()
    for forecast in (None, msgspec.structs.replace(EVERY, horizon_days=30.0)):
        scored = score_trips(
            CustomerModels(bundle(forecast, "whole"), "t", None, Path(".")), trips, TODAY, 0, 365
        )
        customers, features = models_features(bundle(None, "whole"), trips)
        btyd = dict(zip(customers, features["btyd"].tolist(), strict=True))
        assert all(
            s.expected_spend_90d == pytest.approx(round(btyd[s.household], 2), abs=0.006) for s in scored
        )


def test_a_forecast_over_an_unknown_feature_is_refused_at_load(tmp_path: Path) -> None:
    shutil.copytree(TRAINED_DIR / CUSTOMERS_DIR, tmp_path / CUSTOMERS_DIR)
    path = tmp_path / CUSTOMERS_DIR / CUSTOMER_PARAMS_FILE
    raw = json.loads(path.read_text())
    raw["spend_forecast"] = {"name": "l1_full", "coef": {"1": 2.0, "moon_phase": 1.0}}
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelLoadError, match=r"spend_forecast.*moon_phase"):
        load_customer_models(tmp_path)
    del raw["spend_forecast"]  # an older bundle: loads, without a forecast
    path.write_text(json.dumps(raw))
    models = load_customer_models(tmp_path)
    assert models is not None
    assert models.params.spend_forecast is None


def test_the_insights_say_which_model_produced_the_spend() -> None:
    score = CustomerScore(
        household="hh", expected_trips_90d=12.5, expected_spend_90d=60.0, p_alive=0.97, p_churn=0.02,
        churn_band="active", churn_reason="-", clv=220.5, clv_horizon_days=365, segment=None,
        model_version="v1", segments_version=None, scored_ms=0,
    )  # fmt: skip
    data = InsightInputs(
        household="hh", now_ms=0, offset_ms=0, history_days=365, lines=(), baskets=(), category_price={},
        skus_per_category={}, store_basket_mean=None, promotions=(), store_promoted_share={}, score=score,
        peer_categories=(), peers=0, peer_group="store", catalogue_has_brand=False,
    )  # fmt: skip
    with_forecast = CustomerModels(bundle(EVERY, "whole"), "v1", None, Path("."))
    reasoning = lifetime_value(data, 12, 365, "EUR", _spend_source(with_forecast, data)).reasoning
    assert (
        "60.00 EUR expected in the next 90 days (the spend from the direct spend forecast 'test_every'"
        in reasoning
    )
    assert f"over 365 days from {BTYD}" in reasoning
    for models in (CustomerModels(bundle(None, "whole"), "v1", None, Path(".")), None):
        assert _spend_source(models, data) == BTYD
    other_set = CustomerModels(bundle(EVERY, "whole"), "v2", None, Path("."))  # scored by an older set
    assert _spend_source(other_set, data) == BTYD
