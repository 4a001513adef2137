"""The pieces of experiments on the store, without a daemon: the experiment file and its checks, the
planner's split, scoring by arm (a failing challenger never costs a household its list), and the
bundle health check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.experiments.planner import ExperimentPlanner, ExperimentState, LiveExperiment, weights_for
from edge.predictions.arms import ArmGroup, score_arms, subset_lines
from edge.predictions.scoring import ScoringContext
from edge.predictions.tables import PREDICTION_COLUMNS, CategoryAggregates, HouseholdLines
from edge.uplink.bundle_checks import check_experiment
from models import load_models
from models.experiments.bucketing import assign
from models.experiments.spec import Experiment, ExperimentArm, decode_experiment
from sync.errors import BundleError
from tests.edge.test_experiments import experiment_bundle

MODELS = load_models()
EXP, ARM = PREDICTION_COLUMNS.index("experiment"), PREDICTION_COLUMNS.index("arm")
DAY_MS = 86_400_000
NOW_MS = 1_780_000_000_000


def spec(**changes: object) -> Experiment:
    raw: dict[str, object] = {
        "id": "exp-1",
        "name": "test",
        "arms": [{"key": "control"}, {"key": "challenger", "models": "arms/challenger"}],
        "start_ms": 0,
        "end_ms": 10,
    }
    raw.update(changes)
    return decode_experiment(json.dumps(raw).encode())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"arms": [{"key": "control"}]}, "arms"),
        ({"arms": [{"key": "a"}, {"key": "a"}]}, "keys must differ"),
        ({"end_ms": 0}, "end_ms"),
        ({"rollout": False}, "weights must sum to 1"),
        ({"primary_metric": "revenue"}, "primary_metric"),
        ({"arms": [{"key": "control"}, {"key": "x", "models": "../etc"}]}, "models"),
        ({"surprise": 1}, "surprise"),
        ({"rollout": True, "arms": [{"key": "a"}, {"key": "b"}, {"key": "c"}]}, "exactly two arms"),
        ({"min_days": 3}, "min_days"),
    ],
)
def test_a_bad_experiment_is_refused_naming_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec(**changes)


def live(experiment: Experiment, state: ExperimentState, share: float | None = 0.5) -> LiveExperiment:
    return LiveExperiment(experiment, 1, (None, MODELS), state, 0, weights_for(experiment, share))


def test_the_planner_splits_by_the_hash_and_serves_each_arm_its_models() -> None:
    served = load_models()
    planner = ExperimentPlanner()
    households = [f"hh-{i}" for i in range(400)]
    (everyone,) = planner.plan(households, served)  # no experiment
    assert (everyone.experiment, everyone.models is served, len(everyone.households)) == (None, True, 400)
    experiment = spec(coverage=0.8)
    planner.live = live(experiment, ExperimentState.RUNNING)
    groups = {g.arm: g for g in planner.plan(households, served)}
    assert groups[None].models is served
    assert groups[None].experiment is None
    assert groups["control"].models is served
    assert groups["challenger"].models is MODELS
    for arm, group in groups.items():
        for household in group.households:
            index = assign("exp-1", household, (0.5, 0.5), 0.8)
            assert arm == (None if index is None else ("control", "challenger")[index])
    assert 40 <= len(groups[None].households) <= 120  # about 20% outside the coverage
    # Scheduled, stopped or rolled back: the store's models; promoted: the challenger's, in no arm.
    for state in (ExperimentState.SCHEDULED, ExperimentState.STOPPED, ExperimentState.ROLLED_BACK):
        planner.live = live(experiment, state)
        assert [(g.arm, g.models is served) for g in planner.plan(households, served)] == [(None, True)]
    planner.live = live(experiment, ExperimentState.PROMOTED)
    assert [(g.arm, g.models is MODELS) for g in planner.plan(households, served)] == [(None, True)]


def lines() -> HouseholdLines:
    """Three households, each buying milk (0) and eggs (1) every 4 days for 8 weeks."""
    rows = [(h, c, NOW_MS - d * DAY_MS) for h in range(3) for c in range(2) for d in range(4, 60, 4)]
    household, category, ts = (np.asarray(col) for col in zip(*rows, strict=True))
    return HouseholdLines(
        ("a", "b", "c"),
        household.astype(np.int32),
        category.astype(np.int32),
        ts.astype(np.int64),
        (household * 1000 + ts // DAY_MS).astype(np.int64),
        np.ones(len(rows), np.float32),
        np.full(len(rows), 1.5, np.float32),
        {"a": 1, "c": 3},
    )


def context() -> ScoringContext:
    return ScoringContext(NOW_MS, 0, 10, ("eggs", "milk"), CategoryAggregates({"eggs": 3, "milk": 3}, 3))


def test_subset_lines_keeps_only_the_chosen_households() -> None:
    part = subset_lines(lines(), ["c", "a"])
    assert part.households == ("a", "c")
    assert set(part.household.tolist()) == {0, 1}
    assert part.queued == {"a": 1, "c": 3}
    assert len(part.ts_ms) == 2 * len(lines().ts_ms) // 3


class Split:
    def __init__(self, challenger: object) -> None:
        self.challenger = challenger

    def plan(self, households: object, served: object) -> list[ArmGroup]:
        return [
            ArmGroup("exp-1", "control", served, ("a",)),  # type: ignore[arg-type]
            ArmGroup("exp-1", "challenger", self.challenger, ("b", "c")),  # type: ignore[arg-type]
        ]


class Broken:
    """A challenger whose models raise on scoring."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError("onnxruntime: bad model")


def test_scoring_by_arm_tags_rows_and_a_failing_challenger_falls_back_to_the_store_models() -> None:
    served = load_models()
    scored, costs = score_arms(Split(MODELS), served, lines(), context())
    tags = {(r[0], r[EXP], r[ARM]) for r in scored.rows}
    assert tags == {("a", "exp-1", "control"), ("b", "exp-1", "challenger"), ("c", "exp-1", "challenger")}
    assert [(c.arm, c.households, c.errors) for c in costs] == [("control", 1, 0), ("challenger", 2, 0)]
    assert all(c.cpu_ms >= 0 and c.wall_ms > 0 for c in costs)
    scored, costs = score_arms(Split(Broken()), served, lines(), context())
    tags = {(r[0], r[EXP], r[ARM]) for r in scored.rows}
    assert tags == {("a", "exp-1", "control"), ("b", None, None), ("c", None, None)}
    assert [(c.arm, c.errors) for c in costs] == [("control", 0), ("challenger", 2)]
    # No planner: the store's models, untagged, and no cost rows.
    plain, none = score_arms(None, served, lines(), context())
    assert {(r[EXP], r[ARM]) for r in plain.rows} == {(None, None)}
    assert none == []


def test_the_bundle_check_loads_every_challenger(tmp_path: Path) -> None:
    root = experiment_bundle(tmp_path / "bundles", 1)
    check_experiment(root)
    (root / "arms" / "challenger" / "next_basket" / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(BundleError):
        check_experiment(root)
    (root / "experiment.json").write_text('{"id": "x"}')
    with pytest.raises(BundleError, match="experiment bundle"):
        check_experiment(root)


def test_an_arm_struct_refuses_a_weight_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="weight"):
        spec(arms=[{"key": "a", "weight": 2}, {"key": "b"}])
    assert ExperimentArm("a").models is None
