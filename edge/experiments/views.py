"""The experiments' HTTP response types (docs/experiments.md, "APIs")."""

from __future__ import annotations

import msgspec

from edge.experiments.tables import ExperimentRow
from models.experiments.analysis import WeightedScore
from models.experiments.rollout import STEPS
from models.experiments.spec import Experiment, decode_experiment


class ExperimentView(msgspec.Struct, frozen=True):
    id: str
    name: str
    state: str  # scheduled, running, promoted, rolled_back, stopped, ended
    step: int
    challenger_share: float  # of the traffic now (1 after a promotion, 0 after a rollback or stop)
    started_ms: int
    step_started_ms: int
    updated_ms: int
    reason: str  # the last decision's reason
    winner: str | None
    bundle_version: int | None
    definition: Experiment


class AssignmentView(msgspec.Struct, frozen=True):
    household: str
    experiment: str | None
    arm: str | None  # None: the store's own models, in no arm
    reason: str


class MetricSummary(msgspec.Struct, frozen=True):
    metric: str
    n: int  # households (scored steps for the scoring guardrails)
    mean: float
    ci_low: float
    ci_high: float
    higher_is_better: bool


class ArmMetrics(msgspec.Struct, frozen=True):
    arm: str
    metrics: list[MetricSummary]
    weighted_score: WeightedScore  # beside the metrics, never instead of them (docs/experiments.md)


class MetricsView(msgspec.Struct, frozen=True):
    experiment: str
    primary_metric: str
    from_ms: int
    to_ms: int
    arms: list[ArmMetrics]


def experiment_view(row: ExperimentRow) -> ExperimentView:
    spec = decode_experiment(row.definition.encode(), f"experiments[{row.id}]")
    if row.state == "promoted":
        share = 1.0
    elif row.state in ("running", "scheduled"):
        share = STEPS[row.step] if spec.rollout else sum(a.weight for a in spec.arms[1:])
    else:
        share = 0.0
    return ExperimentView(
        row.id, spec.name, row.state, row.step, share, row.started_ms, row.step_started_ms, row.updated_ms,
        row.reason, row.winner, row.bundle_version, spec,
    )  # fmt: skip
