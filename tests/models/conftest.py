"""Shared fixtures for the models tests: small simulated histories (the simulator is the test bed; the
full Complete Journey is only used by `@pytest.mark.slow` tests and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from models.history import PurchaseHistory, load_history
from models.pipeline import (
    Provenance,
    TrainedModels,
    TrainOptions,
    evaluate_models,
    export_models,
    train_models,
)
from models.shelf import PickStream, pick_stream_from_history
from models.training import BoostingParams
from simulators.household_history import (
    HouseholdSimConfig,
    HouseholdSimulation,
    simulate_households,
    write_history,
)

SMALL = HouseholdSimConfig(seed=11, households=300, days=240, start=date(2024, 1, 1))


@pytest.fixture(scope="session")
def small_sim() -> HouseholdSimulation:
    return simulate_households(SMALL)


@pytest.fixture(scope="session")
def small_history(
    small_sim: HouseholdSimulation, tmp_path_factory: pytest.TempPathFactory
) -> PurchaseHistory:
    path: Path = tmp_path_factory.mktemp("history") / "small.npz"
    write_history(small_sim, path)
    return load_history(path)


@dataclass(frozen=True)
class Trained:
    """The small simulated history, its cutoff, the models trained before it, their held-out report and
    their exported directory."""

    history: PurchaseHistory
    cutoff: int
    models: TrainedModels
    report: dict[str, Any]
    directory: Path
    stream: PickStream


FAST = TrainOptions(
    seed=0,
    params=BoostingParams(max_iter=60),
    pairs_per_snapshot=None,
    baskets_per_household=2,
    shelf_samples=20_000,
)


@pytest.fixture(scope="session")
def trained(small_history: PurchaseHistory, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    cutoff = small_history.first_day + 180
    stream = pick_stream_from_history(small_history)
    models = train_models(small_history, cutoff, FAST, stream)
    report = evaluate_models(small_history, cutoff, models, stream)
    directory = tmp_path_factory.mktemp("trained")
    export_models(
        models,
        report,
        directory,
        Provenance("small.npz", cutoff, 0, small_history.sha256(), "small.npz", small_history.sha256()),
        small_history,
        stream,
    )
    return Trained(small_history, cutoff, models, report, directory, stream)
