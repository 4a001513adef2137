"""The store's side of an A/B test of model versions (docs/experiments.md, "On the store").

An experiment arrives as the live `experiment` bundle (``experiment.json`` and the challenger's models;
checked by `edge.uplink.bundle_checks.check_experiment` before activation). `ExperimentService`:

- **loads** it (every arm's models, off the loop) and hands the prediction service the planner that
  scores each household with its arm's models (`edge.experiments.planner`); a new bundle is picked up
  without a restart;
- **keeps its state** in ``experiments`` (scheduled, running at a rollout step, promoted, rolled back,
  stopped, ended), so a restart resumes where it was;
- **decides** every ``[models] experiment_check_s``: it analyses the current step's households
  (`models.experiments.experiment`) and applies the rollout's decision (`models.experiments.rollout`);
  every change of step is an outbox event (kind ``experiment``) and a log line, and rescores everyone so
  each household's list comes from its arm's models at once. When central decides the rollout
  (``decided_by = "central"``), the step and the verdict come in each new version of the bundle and the
  store acts by itself only on harm to its own scoring guardrails.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from edge.config import Config
from edge.experiments import tables
from edge.experiments.planner import ExperimentPlanner, ExperimentState, LiveExperiment, weights_for
from edge.predictions.service import PredictionService
from edge.store.db import ReadThread
from edge.store.writer import StoreWriter
from models.errors import ModelsError
from models.experiments.experiment import Direction, ExperimentData, ExperimentResult, MetricData, analyse
from models.experiments.rollout import (
    STEPS,
    Action,
    RolloutDecision,
    RolloutPolicy,
    RolloutState,
    decide,
    harmed_guardrails,
)
from models.experiments.spec import HIGHER_IS_BETTER, Experiment, decode_experiment, read_experiment
from models.inference import StoreModels, load_models
from sync.change_bodies import ExperimentEventBody

log = logging.getLogger(__name__)
MS_PER_DAY = 86_400_000
PRE_PERIOD_DAYS = 56  # CUPED: each household's metric over the 8 weeks before the experiment


def experiment_directory(config: Config) -> Path:
    return config.path(config.sync.bundle_dir) / "experiment" / "current"


def policy_of(spec: Experiment) -> RolloutPolicy:
    return RolloutPolicy(min_n_per_arm=spec.min_households_per_arm, min_experiment_days=float(spec.min_days))


class ExperimentService:
    def __init__(
        self, config: Config, db_path: Path, writer: StoreWriter, predictions: PredictionService
    ) -> None:
        self._config = config
        self._writer = writer
        self._predictions = predictions
        self.reads = ReadThread(db_path, "experiments-reader")
        self.planner = ExperimentPlanner()
        predictions.arms = self.planner
        self._loaded: Path | None = None
        self._rescore = asyncio.Event()

    def tasks(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        return [("experiments", self.run)]

    async def close(self) -> None:
        await self.reads.close()

    def now_ms(self) -> int:
        return self._predictions.clock.now_ms()

    # -- loading -------------------------------------------------------------------------------------------
    async def load(self) -> bool:
        """Serve the live `experiment` bundle if it is not the one served; True if a new one was loaded."""
        live_dir = experiment_directory(self._config)
        if not (live_dir / "experiment.json").is_file():
            return False
        directory = live_dir.resolve()
        if directory == self._loaded:
            return False
        self._loaded = directory
        loop = asyncio.get_running_loop()
        try:
            spec, arm_models = await loop.run_in_executor(None, self._read_bundle, directory)
        except (ValueError, ModelsError) as exc:
            log.error("experiment_not_loaded", extra={"dir": str(directory), "error": str(exc)})  # noqa: TRY400
            return False
        version = int(directory.name) if directory.name.isdigit() else None
        now = self.now_ms()
        first = ExperimentState.RUNNING if now >= spec.start_ms else ExperimentState.SCHEDULED
        row = await self._writer.run_job(lambda c: self._begin(c, spec, version, first.value, now))
        self.planner.live = _live(spec, version, arm_models, row)
        log.info("experiment_loaded", extra={"experiment": spec.id, "state": row.state, "step": row.step})
        if spec.decided_by == "central":
            await self._follow_central(self.planner.live, row)
        return True

    async def _follow_central(self, live: LiveExperiment, row: tables.ExperimentRow) -> None:
        """Take central's step or verdict from the bundle (an event, and everyone rescored); an experiment
        this store has ended by itself (stopped, rolled back on a guardrail, past its end) stays ended."""
        spec = live.spec
        if ExperimentState(row.state) not in (ExperimentState.RUNNING, ExperimentState.SCHEDULED):
            return
        why = f"decided at central: {spec.decision_reason}" if spec.decision_reason else "decided at central"
        if spec.decision == "promoted":
            await self._transition(
                live, ExperimentState.PROMOTED, spec.step, "promoted", why, spec.arms[1].key
            )
        elif spec.decision == "rolled_back":
            await self._transition(
                live, ExperimentState.ROLLED_BACK, spec.step, "rolled_back", why, spec.arms[0].key
            )
        elif spec.step != row.step and ExperimentState(row.state) is ExperimentState.RUNNING:
            await self._transition(live, ExperimentState.RUNNING, spec.step, "advanced", why, None)

    def _read_bundle(self, directory: Path) -> tuple[Experiment, tuple[StoreModels | None, ...]]:
        spec = read_experiment(directory)
        threads = self._config.models.threads
        models = tuple(
            None if arm.models is None else load_models(directory / arm.models, threads=threads)
            for arm in spec.arms
        )
        return spec, models

    @staticmethod
    def _begin(
        c: sqlite3.Connection, spec: Experiment, version: int | None, state: str, now: int
    ) -> tables.ExperimentRow:
        known = tables.experiment_row(c, spec.id) is not None
        row = tables.begin_experiment(c, spec, version, state, now)
        if not known and state == ExperimentState.RUNNING.value:
            tables.record_event(c, _event(spec, "started", row.step, now, "experiment bundle loaded"))
        return row

    # -- deciding ------------------------------------------------------------------------------------------
    async def check_once(self) -> RolloutDecision | None:
        """Move the live experiment along its life (start, end) and, with a rollout, decide the next step."""
        live = self.planner.live
        if live is None:
            return None
        spec, now = live.spec, self.now_ms()
        row = await self.reads.run(lambda c: tables.experiment_row(c, spec.id))
        if row is None:
            return None
        state = ExperimentState(row.state)
        if state is ExperimentState.SCHEDULED and now >= spec.start_ms:
            await self._transition(live, ExperimentState.RUNNING, 0, "started", "start time reached", None)
            return None
        if state is not ExperimentState.RUNNING:
            return None
        if now >= spec.end_ms:
            await self._transition(live, ExperimentState.ENDED, row.step, "ended", "end time reached", None)
            return None
        if not spec.rollout:
            return None
        result = await self.results(spec.id)
        if result is None:
            return None
        if spec.decided_by == "central":
            harmed = harmed_guardrails(result)
            if harmed:
                reason = f"a scoring guardrail at this store: {'; '.join(harmed)}"
                await self._transition(
                    live, ExperimentState.ROLLED_BACK, row.step, "rolled_back", reason, spec.arms[0].key
                )
            return None
        rollout = RolloutState(
            experiment_id=spec.id,
            step=row.step,
            started_at=_moment(row.started_ms),
            step_started_at=_moment(row.step_started_ms),
        )
        decision = decide(rollout, result, _moment(now), policy_of(spec))
        log.info(
            "experiment_checked",
            extra={"experiment": spec.id, "action": decision.action.value, "reason": decision.reason},
        )
        if decision.action is Action.ADVANCE:
            await self._transition(
                live, ExperimentState.RUNNING, decision.step, "advanced", decision.reason, None
            )
        elif decision.action is Action.PROMOTE:
            winner = spec.arms[1].key
            await self._transition(
                live, ExperimentState.PROMOTED, row.step, "promoted", decision.reason, winner
            )
        elif decision.action is Action.ROLLBACK:
            await self._transition(
                live, ExperimentState.ROLLED_BACK, row.step, "rolled_back", decision.reason, spec.arms[0].key
            )
        else:
            await self._writer.run_job(
                lambda c: c.execute(
                    "UPDATE experiments SET reason = ? WHERE id = ?", (decision.reason, spec.id)
                )
            )
        return decision

    async def stop(self, experiment_id: str, reason: str) -> bool:
        """Staff stop a running experiment: everyone goes back to the store's own models. False if it is
        not the live, running or scheduled experiment."""
        live = self.planner.live
        if (
            live is None
            or live.spec.id != experiment_id
            or live.state
            not in (
                ExperimentState.RUNNING,
                ExperimentState.SCHEDULED,
            )
        ):
            return False
        await self._transition(live, ExperimentState.STOPPED, live.step, "stopped", reason, None)
        return True

    async def _transition(
        self,
        live: LiveExperiment,
        state: ExperimentState,
        step: int,
        event: str,
        reason: str,
        winner: str | None,
    ) -> None:
        spec, now = live.spec, self.now_ms()

        def job(c: sqlite3.Connection) -> tables.ExperimentRow | None:
            tables.update_experiment(
                c, spec.id, state=state.value, step=step, step_started_ms=now, reason=reason, winner=winner,
                now_ms=now,
            )  # fmt: skip
            body = _event(spec, event, step, now, reason, winner, state)
            tables.record_event(c, body)
            return tables.experiment_row(c, spec.id)

        row = await self._writer.run_job(job)
        assert row is not None
        self.planner.live = _live(spec, live.bundle_version, live.arm_models, row)
        log.info(
            "experiment_step",
            extra={
                "experiment": spec.id,
                "event": event,
                "state": state.value,
                "step": step,
                "reason": reason,
            },
        )
        self._rescore.set()

    # -- analysis ------------------------------------------------------------------------------------------
    async def results(self, experiment_id: str, *, whole: bool = False) -> ExperimentResult | None:
        """The analysis of the experiment's current step (with ``whole``: since it started); None for an
        experiment this store never ran."""
        now = self.now_ms()
        row = await self.reads.run(lambda c: tables.experiment_row(c, experiment_id))
        if row is None:
            return None
        spec = _spec(row)
        window = results_window(spec, row, now, whole=whole)
        data = await self.reads.run(lambda c: _experiment_data(c, spec, row, window, now))
        return await asyncio.to_thread(analyse, data)

    # -- the task ------------------------------------------------------------------------------------------
    async def run(self) -> None:
        interval = self._config.models.experiment_check_s
        poll = min(self._config.sync.bundle_poll_s, 60.0, interval)
        next_check = 0.0
        loop = asyncio.get_running_loop()
        while True:
            if await self.load():
                self._rescore.set()
            if loop.time() >= next_check:
                await self.check_once()
                next_check = loop.time() + interval
            if self._rescore.is_set():
                self._rescore.clear()
                await self._predictions.full_rescore()
            await asyncio.sleep(poll)


def results_window(
    spec: Experiment, row: tables.ExperimentRow, now: int, *, whole: bool = False
) -> tuple[int, int]:
    """The outcomes an analysis reads (ms, half-open): the current rollout step's, because the split
    changes between steps; the whole experiment's without a rollout or with ``whole``."""
    since = row.started_ms if whole or not spec.rollout else row.step_started_ms
    return since, now + 1


def _spec(row: tables.ExperimentRow) -> Experiment:
    return decode_experiment(row.definition.encode(), f"experiments[{row.id}]")


def _experiment_data(
    c: sqlite3.Connection, spec: Experiment, row: tables.ExperimentRow, window: tuple[int, int], now: int
) -> ExperimentData:
    arms = tuple(a.key for a in spec.arms)
    pre_from = row.started_ms - PRE_PERIOD_DAYS * MS_PER_DAY

    def metric(name: str) -> MetricData:
        if name in ("scoring_ms", "scoring_errors"):
            found = tables.guardrail_metric(c, name, spec.id, arms, window)
        else:
            found = tables.household_metric(c, name, spec.id, arms, window, pre_from)
        direction = Direction.HIGHER_IS_BETTER if HIGHER_IS_BETTER[name] > 0 else Direction.LOWER_IS_BETTER
        return MetricData(name, direction, found.values, found.covariates)

    share = STEPS[row.step] if spec.rollout and row.step < len(STEPS) else None
    return ExperimentData(
        experiment_id=spec.id,
        arms=arms,
        weights=weights_for(spec, share),
        assigned=tables.assigned_counts(c, spec.id, arms),
        days_running=(now - row.started_ms) / MS_PER_DAY,
        primary=metric(spec.primary_metric),
        guardrails=tuple(metric(g) for g in spec.guardrails),
        secondary=tuple(metric(m) for m in spec.secondary_metrics),
        min_n=spec.min_households_per_arm,
        min_days=float(spec.min_days),
    )


def _live(
    spec: Experiment,
    version: int | None,
    arm_models: tuple[StoreModels | None, ...],
    row: tables.ExperimentRow,
) -> LiveExperiment:
    state = ExperimentState(row.state)
    share = STEPS[row.step] if spec.rollout and row.step < len(STEPS) else None
    return LiveExperiment(spec, version, arm_models, state, row.step, weights_for(spec, share))


def _event(
    spec: Experiment,
    event: str,
    step: int,
    now: int,
    reason: str,
    winner: str | None = None,
    state: ExperimentState = ExperimentState.RUNNING,
) -> ExperimentEventBody:
    if state is ExperimentState.PROMOTED:
        traffic = 1.0
    elif state is not ExperimentState.RUNNING:
        traffic = 0.0
    else:
        traffic = sum(weights_for(spec, STEPS[step] if spec.rollout else None)[1:])
    return ExperimentEventBody(spec.id, event, now, step, traffic, reason, winner)


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


__all__ = ["ExperimentService", "experiment_directory"]
