"""Shelf depletion: ground truth and features on a hand-made pick stream, and the model against the
linear extrapolation of the last hour on simulator ground truth it never saw."""

from __future__ import annotations

import numpy as np
import pytest

from models.shelf import (
    HORIZON_MINUTES,
    PickStream,
    S,
    depletion_from_log_minutes,
    linear_baseline_minutes,
    shelf_features,
    true_minutes_to_empty,
)

from .conftest import Trained

DAY = 19_723 * 1440  # a Monday, in minutes since 1970


def _stream() -> PickStream:
    # Shelf 0: 2 items at 09:00 yesterday, 1 at 09:30 yesterday; today 1 item at 08:10, 08:40, 08:55,
    # then 3 at 09:20 and 2 at 10:00. Shelf 1: nothing.
    minutes = [DAY - 1440 + 540, DAY - 1440 + 570, DAY + 490, DAY + 520, DAY + 535, DAY + 560, DAY + 600]
    counts = [2, 1, 1, 1, 1, 3, 2]
    return PickStream.build(("A1-1", "A1-2"), [0] * len(minutes), minutes, counts)


def test_ground_truth_minutes_to_empty() -> None:
    stream = _stream()
    now = DAY + 540  # 09:00
    assert true_minutes_to_empty(stream, [0], now, [3]).tolist() == [20]  # 3 items at 09:20
    assert true_minutes_to_empty(stream, [0], now, [4]).tolist() == [60]  # then 2 more at 10:00
    assert true_minutes_to_empty(stream, [0], now, [6]).tolist() == [np.inf]  # never, in this data
    assert true_minutes_to_empty(stream, [1], now, [1]).tolist() == [np.inf]
    assert true_minutes_to_empty(stream, [0], now, [0]).tolist() == [0]


def test_features_by_hand() -> None:
    stream = _stream()
    x = shelf_features(stream, [0], DAY + 540, [3])[0]
    f = {name: float(x[i]) for name, i in S.items()}
    assert f["stock"] == 3
    assert f["picks_15m"] == 1  # 08:55
    assert f["picks_60m"] == 3  # 08:10, 08:40, 08:55
    assert f["picks_24h"] == 6  # also yesterday 09:00 (2) and 09:30 (1)
    assert f["picks_180m"] == 3
    assert f["minutes_since_last_pick"] == 5
    assert f["linear_minutes"] == pytest.approx(3 / (3 / 60))
    # Yesterday from 09:00: 2 items at 09:00 and 1 at 09:30 -> 3 items sold after 30 minutes.
    assert f["yesterday_minutes"] == 30
    assert f["last_week_minutes"] == HORIZON_MINUTES  # no data a week ago: capped
    assert f["hour_of_day"] == 9
    assert f["weekday"] == 0
    assert linear_baseline_minutes(x[None, :]).tolist() == [60]


def test_an_empty_shelf_is_empty_now() -> None:
    x = shelf_features(_stream(), [0, 0], DAY + 540, [0, 2])
    scores = depletion_from_log_minutes(np.array([3.0, 3.0]), x)
    assert scores.minutes[0] == 0
    assert scores.minutes[1] == pytest.approx(np.expm1(3.0))


def test_model_beats_linear_extrapolation_on_simulator_ground_truth(trained: Trained) -> None:
    report = trained.report["shelf_depletion"]
    assert report["model"]["samples"] > 1000
    assert report["model"]["mae_minutes"] < report["baseline"]["mae_minutes"]
    assert report["model"]["within_30min"] > report["baseline"]["within_30min"]
