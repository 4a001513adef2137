"""Shelf depletion on held-out weeks that include a public holiday: the model next to the last-hour and
seasonal-naive baselines in one report, broken out by kind of day; the shipped model's card; and a
model trained before the holiday features still loads and serves."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import msgspec
import numpy as np
import pytest

from edge.predictions.scoring import forecast_shelves
from edge.predictions.tables import ShelfPicks
from models.cards import CARD_FILE, ModelCard, write_model
from models.cli import configure_parser, run
from models.errors import ModelLoadError
from models.export import onnx_bytes
from models.history import epoch_day, load_history
from models.holiday_calendar import DEFAULT_COUNTRY
from models.inference import TRAINED_DIR, ShelfDepletionModel, StoreModels, load_models
from models.report_text import shelf_lines
from models.shelf import (
    HORIZON_MINUTES,
    LEGACY_SHELF_FEATURES,
    SHELF_FEATURE_SET,
    SHELF_FEATURES,
    PickStream,
    depletion_from_log_minutes,
    pick_stream_from_history,
)
from models.shelf_evaluation import METHODS, evaluate_shelf_depletion
from models.training import BoostingParams, ShelfModel, fit_shelf, shelf_rows
from simulators.household_history import (
    HouseholdSimConfig,
    simulate_households,
    write_history,
    write_simulated_history,
)

SPLIT_DAY = date(2024, 9, 30)  # the held-out days include German Unity Day (3 October) and its eve
PARAMS = BoostingParams(max_iter=40)


@pytest.fixture(scope="module")
def autumn_stream(tmp_path_factory: pytest.TempPathFactory) -> PickStream:
    sim = simulate_households(HouseholdSimConfig(seed=9, households=400, days=84, start=date(2024, 8, 12)))
    path = tmp_path_factory.mktemp("autumn") / "history.npz"
    write_history(sim, path)
    return pick_stream_from_history(load_history(path), country=DEFAULT_COUNTRY)


@pytest.fixture(scope="module")
def fitted(autumn_stream: PickStream) -> tuple[ShelfModel, np.ndarray, np.ndarray]:
    split = epoch_day(SPLIT_DAY) * 1440
    start = int(autumn_stream.minute.min()) + 7 * 1440
    x, minutes = shelf_rows(autumn_stream, start, split - HORIZON_MINUTES, samples=8000, max_stock=40, seed=0)
    return fit_shelf(x, minutes, PARAMS, 0), x, minutes


def test_the_report_has_the_model_and_both_baselines_by_kind_of_day(
    autumn_stream: PickStream, fitted: tuple[ShelfModel, np.ndarray, np.ndarray]
) -> None:
    model = fitted[0]
    split = epoch_day(SPLIT_DAY) * 1440
    report = evaluate_shelf_depletion(
        autumn_stream, split, model.log_minutes, samples=6000, max_stock=40, seed=1
    )
    assert report["holdout"]["country"] == "DE"
    assert report["holdout"]["holidays"] == ["2024-10-03"]
    assert report["holdout"]["eves"] == ["2024-10-02"]
    samples = report["model"]["samples"]
    assert samples > 1000
    for method in METHODS:
        assert report[method]["samples"] == samples  # every method judged on the same samples
        assert np.isfinite(report[method]["mae_minutes"])
    by_day = report["by_day"]
    assert sum(by_day[kind]["model"]["samples"] for kind in ("holiday", "eve", "ordinary")) == samples
    assert by_day["holiday"]["model"]["samples"] > 0
    assert by_day["eve"]["model"]["samples"] > 0
    # The model learned something the last hour alone does not know.
    assert report["model"]["mae_minutes"] < report["baseline"]["mae_minutes"]

    text = "\n".join(shelf_lines({"shelf_depletion": report}))
    for row in ("model", "last-hour linear", "same hours last week", "same hours yesterday"):
        assert row in text
    assert "on holiday days" in text
    assert "on eve days" in text
    assert "holidays 2024-10-03" in text


def _legacy_model(directory: Path, fitted: tuple[ShelfModel, np.ndarray, np.ndarray]) -> ShelfModel:
    """A model as trained before the holiday features: the first 13 columns only."""
    _, x, minutes = fitted
    legacy = fit_shelf(x[:, : len(LEGACY_SHELF_FEATURES)], minutes, PARAMS, 0)
    card = ModelCard(
        name="shelf_depletion",
        version="-",
        kind="regressor",
        features=LEGACY_SHELF_FEATURES,
        output="log1p(minutes until the shelf is empty), capped at the horizon",
        training_data_sha256="0" * 64,
        source="test",
        cutoff=SPLIT_DAY.isoformat(),
        seed=0,
    )
    model = onnx_bytes(legacy.regressor, len(LEGACY_SHELF_FEATURES), classifier=False, doc="legacy")
    write_model(directory, card, model)
    return legacy


def test_a_model_without_holiday_features_still_loads_and_scores(
    tmp_path: Path, fitted: tuple[ShelfModel, np.ndarray, np.ndarray]
) -> None:
    legacy = _legacy_model(tmp_path / "shelf_depletion", fitted)
    served = ShelfDepletionModel(tmp_path / "shelf_depletion")
    assert served.card.features == LEGACY_SHELF_FEATURES
    x = fitted[1][:500]
    assert x.shape[1] == len(SHELF_FEATURES)
    expected = depletion_from_log_minutes(legacy.log_minutes(x[:, : len(LEGACY_SHELF_FEATURES)]), x)
    np.testing.assert_allclose(served.score(x).minutes, expected.minutes, rtol=1e-4, atol=1e-2)

    # The daemon's shelf forecast runs with it (it builds every column and hands the model its own).
    shipped = load_models()
    models = StoreModels(shipped.next_purchase, shipped.next_basket, served)
    now_ms = epoch_day(date(2024, 10, 2)) * 86_400_000 + 15 * 3_600_000
    picks = ShelfPicks(
        ("A1-1",),
        (6,),
        np.zeros(3, dtype=np.int64),
        np.asarray([now_ms // 60_000 - m for m in (50, 20, 5)], dtype=np.int64),
        np.asarray([1.0, 2.0, 1.0]),
    )
    (forecast,) = forecast_shelves(models, picks, now_ms, 0, "DE")
    assert forecast.items == 6
    assert forecast.baseline_minutes == pytest.approx(90.0)  # 6 items at 4 per hour


def test_a_card_with_unknown_shelf_features_is_refused(
    tmp_path: Path, fitted: tuple[ShelfModel, np.ndarray, np.ndarray]
) -> None:
    directory = tmp_path / "shelf_depletion"
    _legacy_model(directory, fitted)
    card = json.loads((directory / CARD_FILE).read_text())
    card["features"] = [*LEGACY_SHELF_FEATURES[:-1], "moon_phase"]
    (directory / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="moon_phase"):
        ShelfDepletionModel(directory)


def test_the_shipped_model_has_the_holiday_features_and_beats_both_baselines() -> None:
    card = msgspec.json.decode((TRAINED_DIR / "shelf_depletion" / CARD_FILE).read_bytes())
    assert tuple(card["features"]) == SHELF_FEATURES
    assert card["params"]["feature_set"] == SHELF_FEATURE_SET
    assert card["params"]["country"] == DEFAULT_COUNTRY
    assert card["onnx_bytes"] <= 1_000_000
    metrics = card["metrics"]
    assert metrics["holdout"]["holidays"]  # the held-out weeks include a public holiday
    mae = {method: metrics[method]["mae_minutes"] for method in METHODS}
    assert mae["model"] < min(mae["baseline"], mae["baseline_last_week"], mae["baseline_yesterday"])


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="storeedge models")
    configure_parser(parser, simulate=write_simulated_history)
    code = run(parser.parse_args(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_shelf_task_names_what_is_at_fault(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(["evaluate", "--task", "shelf", "--source", "completejourney"], capsys)
    assert code == 2
    assert "--source: --task shelf trains on the household simulator" in err
    code, _, err = _cli(["evaluate", "--task", "shelf", "--source", "simulated"], capsys)
    assert code == 2
    assert "--cutoff: required" in err


def test_train_task_shelf_writes_only_the_shelf_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--task", "shelf", "--source", "simulated", "--cutoff", "2024-04-29"]
    argv += ["--sim-households", "120", "--sim-days", "180", "--out", str(tmp_path), "--quiet"]
    code, out, err = _cli(argv, capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shelf_depletion"]
    served = ShelfDepletionModel(tmp_path / "shelf_depletion")
    assert served.card.features == SHELF_FEATURES
    assert served.card.params["country"] == DEFAULT_COUNTRY
    assert served.card.metrics["holdout"]["first_day"] == "2024-04-29"
    # The held-out weeks hold Labour Day, Ascension and Whit Monday; the table names them.
    assert "holidays 2024-05-01, 2024-05-09, 2024-05-20" in out
    for row in ("last-hour linear", "same hours last week", "on holiday days", "on eve days"):
        assert row in out
