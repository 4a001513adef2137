"""What an experiment is, on the wire: the ``experiment.json`` of a signed `experiment` bundle, and the
body of ``POST /api/v1/ab-tests`` at central. One place for the shape, used by the store and by central.

An experiment compares two or more *arms*, each a set of models; the first arm is the control. An arm
with ``models = null`` serves the store's own models (the live `model` bundle); an arm with
``models = "arms/challenger"`` serves the three models in that folder of the bundle. Households are
assigned by `models.experiments.bucketing` (GrowthBook's hash, seed = the experiment id), within
``coverage`` of the traffic; everyone else, and every household without personalisation consent, gets
the store's own models and is in no arm.

With ``rollout`` the challenger's share of the traffic follows the rollout steps (10% -> 25% -> 50% ->
90%) instead of ``weights``, and the store promotes or rolls it back on evidence
(`models.experiments.rollout`); without it the weights hold until ``end_ms`` and the analysis only
reports.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import msgspec

ExperimentId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
ArmKey = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
ArmFolder = Annotated[str, msgspec.Meta(pattern=r"^arms/[a-z][a-z0-9_-]{0,31}$")]
Metric = Literal[
    "list_hit_rate", "brier_7d", "log_loss_7d", "mae_days", "thumbs_up_share", "suggestion_acceptance"
]
Guardrail = Literal["scoring_ms", "scoring_errors"]
EXPERIMENT_FILE = "experiment.json"

# The direction of each metric: +1 when a higher value is better.
HIGHER_IS_BETTER: dict[str, int] = {
    "list_hit_rate": 1,
    "thumbs_up_share": 1,
    "suggestion_acceptance": 1,
    "brier_7d": -1,
    "log_loss_7d": -1,
    "mae_days": -1,
    "scoring_ms": -1,
    "scoring_errors": -1,
}


class ExperimentArm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: ArmKey
    weight: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    models: ArmFolder | None = None  # None: the store's own models


class Experiment(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    id: ExperimentId
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    arms: Annotated[list[ExperimentArm], msgspec.Meta(min_length=2, max_length=8)]
    start_ms: Annotated[int, msgspec.Meta(ge=0)]
    end_ms: Annotated[int, msgspec.Meta(ge=0)]
    primary_metric: Metric = "list_hit_rate"
    secondary_metrics: list[Metric] = msgspec.field(default_factory=list)
    guardrails: list[Guardrail] = msgspec.field(default_factory=lambda: ["scoring_ms", "scoring_errors"])
    coverage: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 1.0
    rollout: bool = True
    min_households_per_arm: Annotated[int, msgspec.Meta(ge=30)] = 30
    min_days: Annotated[int, msgspec.Meta(ge=7)] = 7
    # Who decides the rollout: each store on its own households ("store"), or central over every store's
    # ("central"): then the step and the decision come in the bundle (central publishes a new version at
    # each step), so a household is in the same arm at every store, and a store only rolls back on its
    # own scoring guardrails.
    decided_by: Literal["store", "central"] = "store"
    step: Annotated[int, msgspec.Meta(ge=0, le=3)] = 0  # central's rollout step (index into the steps)
    decision: Literal["running", "promoted", "rolled_back"] = "running"  # central's verdict so far
    decision_reason: Annotated[str, msgspec.Meta(max_length=500)] = ""

    @property
    def control(self) -> ExperimentArm:
        return self.arms[0]

    def check(self) -> None:
        """What msgspec's types cannot say; raises `ValueError` naming the field."""
        keys = [a.key for a in self.arms]
        if len(set(keys)) != len(keys):
            raise ValueError(f"arms: keys must differ, got {keys}")
        if self.end_ms <= self.start_ms:
            raise ValueError("end_ms: must be after start_ms")
        if self.rollout and len(self.arms) != 2:
            raise ValueError("rollout: a gradual rollout needs exactly two arms (control, challenger)")
        if not self.rollout and not math.isclose(sum(a.weight for a in self.arms), 1.0, abs_tol=1e-6):
            raise ValueError(
                f"arms: weights must sum to 1 without rollout, got {sum(a.weight for a in self.arms)}"
            )
        if self.decided_by == "central" and not self.rollout:
            raise ValueError("decided_by: central decides a rollout; set rollout = true")
        if self.primary_metric in self.secondary_metrics:
            raise ValueError("secondary_metrics: must not repeat primary_metric")

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.primary_metric, *self.secondary_metrics)


_decoder = msgspec.json.Decoder(Experiment)


def decode_experiment(raw: bytes, where: str = EXPERIMENT_FILE) -> Experiment:
    """An experiment from JSON, checked; `ValueError` naming ``where`` and the field at fault."""
    try:
        experiment = _decoder.decode(raw)
        experiment.check()
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc
    return experiment


def read_experiment(directory: Path) -> Experiment:
    """The experiment of a bundle directory (``experiment.json``), checked, with every arm's folder present."""
    path = directory / EXPERIMENT_FILE
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    experiment = decode_experiment(raw, str(path))
    for arm in experiment.arms:
        if arm.models is not None and not (directory / arm.models).is_dir():
            raise ValueError(f"{path}: arms[{arm.key}].models: no folder {arm.models} in the bundle")
    return experiment


def encode_experiment(experiment: Experiment) -> bytes:
    return msgspec.json.encode(experiment)
