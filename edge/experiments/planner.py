"""Which models serve which household while an experiment runs (the `edge.predictions.arms.ArmPlanner`).

A household is in an arm by `models.experiments.bucketing.assign` (GrowthBook's hash of the experiment
id and the household pseudonym), so it keeps its arm across restarts and stores; the weights are the
rollout step's (control 1 - share, challenger share) or the experiment's own. Households outside the
coverage get the store's own models and are in no arm. Only households with personalisation consent are
ever scored, so a household without it is in no experiment.

After a promotion every household gets the challenger's models and is in no arm (the challenger is the
store's model now); after a rollback, a stop or the end, the store's own models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from edge.predictions.arms import ArmGroup
from models.experiments.bucketing import assign
from models.experiments.rollout import challenger_weights
from models.experiments.spec import Experiment
from models.inference import StoreModels


class ExperimentState(Enum):
    SCHEDULED = "scheduled"  # before start_ms
    RUNNING = "running"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    STOPPED = "stopped"  # by staff
    ENDED = "ended"  # end_ms passed without a verdict


@dataclass(frozen=True, slots=True)
class LiveExperiment:
    """An experiment as the store serves it now: its arms' models (None: the store's own) and weights."""

    spec: Experiment
    bundle_version: int | None
    arm_models: tuple[StoreModels | None, ...]  # per arm, in the spec's order
    state: ExperimentState
    step: int
    weights: tuple[float, ...]

    @property
    def challenger_share(self) -> float:
        return sum(self.weights[1:])


def weights_for(spec: Experiment, step_share: float | None) -> tuple[float, ...]:
    """The assignment weights: the rollout step's share for the challenger, or the spec's own weights."""
    if spec.rollout and step_share is not None:
        return challenger_weights(step_share)
    return tuple(a.weight for a in spec.arms)


def arm_index(live: LiveExperiment, household: str) -> int | None:
    """The household's arm in a running experiment (index into the spec's arms), None if in none."""
    if live.state is not ExperimentState.RUNNING:
        return None
    return assign(live.spec.id, household, live.weights, live.spec.coverage)


class ExperimentPlanner:
    """The live experiment, swapped as one reference (read from executor threads, set on the loop)."""

    def __init__(self) -> None:
        self.live: LiveExperiment | None = None

    def plan(self, households: Sequence[str], served: StoreModels) -> list[ArmGroup]:
        live = self.live
        everyone = tuple(households)
        if live is None:
            return [ArmGroup(None, None, served, everyone)]
        if live.state is ExperimentState.PROMOTED:
            return [ArmGroup(None, None, _models(live, 1, served), everyone)]
        if live.state is not ExperimentState.RUNNING:
            return [ArmGroup(None, None, served, everyone)]
        members: list[list[str]] = [[] for _ in live.spec.arms]
        outside: list[str] = []
        for household in everyone:
            index = arm_index(live, household)
            (outside if index is None else members[index]).append(household)
        groups = [ArmGroup(None, None, served, tuple(outside))] if outside else []
        for index, arm in enumerate(live.spec.arms):
            if members[index]:
                groups.append(
                    ArmGroup(live.spec.id, arm.key, _models(live, index, served), tuple(members[index]))
                )
        return groups


def _models(live: LiveExperiment, index: int, served: StoreModels) -> StoreModels:
    models = live.arm_models[index]
    return served if models is None else models
