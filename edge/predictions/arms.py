"""Scoring households with more than one set of models: the seam experiments plug into.

The prediction service scores a step of households by asking an `ArmPlanner` which models serve whom
(`edge.experiments` implements it: a running experiment splits households into arms); without one,
every household gets the store's own models. Each group is scored on its own and its rows are tagged
with (experiment, arm); what each arm cost (wall and CPU time per household, errors) is measured here, in
the executor thread that scores, for the experiment's latency and error guardrails.

A challenger whose models fail to score a group is not allowed to take the store down with it: the
error is counted against its arm and those households get the store's own models, untagged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge.predictions.scoring import ScoredHouseholds, ScoringContext, score_households
from edge.predictions.tables import HouseholdLines
from models.history import PurchaseHistory
from models.inference import StoreModels

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ArmGroup:
    """Households served by ``models``, tagged (experiment, arm); (None, None): in no experiment."""

    experiment: str | None
    arm: str | None
    models: StoreModels
    households: tuple[str, ...]


class ArmPlanner(Protocol):
    def plan(self, households: Sequence[str], served: StoreModels) -> list[ArmGroup]:
        """Split ``households`` (all with personalisation consent) into groups; ``served``: the store's own
        models. Runs in an executor thread."""
        ...


@dataclass(frozen=True, slots=True)
class ArmCost:
    """What scoring one group of an experiment's arm cost."""

    experiment: str
    arm: str
    households: int
    wall_ms: float
    cpu_ms: float
    errors: int


def subset_lines(lines: HouseholdLines, keep: Sequence[str]) -> HouseholdLines:
    """The lines (and queue entries) of the households in ``keep`` only, re-coded."""
    wanted = set(keep)
    names = tuple(h for h in lines.households if h in wanted)
    remap = np.full(len(lines.households), -1, dtype=np.int32)
    for new, old in enumerate(i for i, h in enumerate(lines.households) if h in wanted):
        remap[old] = new
    codes = remap[lines.household]
    mask = codes >= 0
    return HouseholdLines(
        names,
        codes[mask],
        lines.category[mask],
        lines.ts_ms[mask],
        lines.basket[mask],
        lines.qty[mask],
        lines.price[mask],
        {h: ms for h, ms in lines.queued.items() if h in wanted},
    )


def score_arms(
    planner: ArmPlanner | None,
    served: StoreModels,
    lines: HouseholdLines,
    ctx: ScoringContext,
    history: PurchaseHistory | None = None,
) -> tuple[ScoredHouseholds, list[ArmCost]]:
    """Score ``lines`` group by group as ``planner`` says (everyone with ``served`` without one);
    ``history``: theirs, when already built (used when one group serves everyone)."""
    groups = (
        planner.plan(lines.households, served)
        if planner is not None and lines.households
        else [ArmGroup(None, None, served, lines.households)]
    )
    if len(groups) == 1 and groups[0].experiment is None and groups[0].models is served:
        return score_households(served, lines, ctx, history=history), []
    rows = []
    costs = []
    for group in groups:
        if not group.households:
            continue
        part = subset_lines(lines, group.households)
        wall, cpu = time.perf_counter(), time.thread_time()
        errors = 0
        try:
            scored = score_households(group.models, part, ctx, (group.experiment, group.arm))
        except Exception:  # a challenger's model failing must not stop the store's own lists
            if group.models is served:
                raise
            log.exception("arm_scoring_failed", extra={"experiment": group.experiment, "arm": group.arm})
            errors = len(part.households)
            scored = score_households(served, part, ctx)
        if group.experiment is not None and group.arm is not None:
            costs.append(
                ArmCost(
                    group.experiment,
                    group.arm,
                    len(part.households),
                    (time.perf_counter() - wall) * 1000,
                    (time.thread_time() - cpu) * 1000,
                    errors,
                )
            )
        rows += scored.rows
    return ScoredHouseholds(lines.households, rows), costs
