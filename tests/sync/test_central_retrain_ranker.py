"""The next-basket ranker in a retrain at central (`sync.central_retrain_ranker`): the candidate's own, and
the honest fallback when the chain's purchases cannot train one. The published path, end to end on
PostgreSQL, is in test_central_retrain.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from models.history import PurchaseHistory, load_history
from models.inference import RANKER_DIR, TRAINED_DIR, load_models
from simulators.household_history import HouseholdSimConfig, simulate_households, write_history
from sync.central_retrain_ranker import candidate_ranker, current_list_order


def short_history(days: int, path: Path) -> PurchaseHistory:
    write_history(simulate_households(HouseholdSimConfig(seed=1, households=30, days=days)), path)
    return load_history(path)


def test_a_chain_too_young_for_a_ranker_gets_none_and_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = short_history(60, tmp_path / "history.npz")
    order, reason = candidate_ranker(history, history.first_day + 40, tmp_path, seed=0, source="chain")
    assert order is None
    assert "need more than 56 days before the cutoff" in reason
    assert not (tmp_path / RANKER_DIR).exists()  # nothing half-written beside the candidate's models
    assert "central_retrain_no_ranker" in caplog.text


def test_the_current_sets_list_order_is_its_rankers_or_none(tmp_path: Path) -> None:
    history = short_history(120, tmp_path / "history.npz")
    cutoff = history.first_day + 100
    shipped = load_models(TRAINED_DIR)
    order = current_list_order(history, cutoff, shipped)
    assert order is not None
    assert shipped.next_basket_ranker is not None
    assert order.version == shipped.next_basket_ranker.card.version
    assert 0 < order.recall_at_10 <= 1
    assert 0 < order.rolling_recall_at_10 <= 1
    pointwise_only = dataclasses.replace(shipped, next_basket_ranker=None)
    assert current_list_order(history, cutoff, pointwise_only) is None
