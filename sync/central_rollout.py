"""The chain's rollout of a challenger, decided at central over every store's households
(docs/experiments.md, "At central"): for an experiment published with ``decided_by = "central"``,
central analyses the current step's trips at every store (`sync.central_experiments`), applies
`models.experiments.rollout.decide`, and publishes each change as a new signed version of the
`experiment` bundle carrying the step or the verdict, so every store serves the same weights and a
household is in the same arm everywhere. A promotion also publishes the challenger's models as the next
`model` bundle: every store then serves the winner, to everyone.

Needs the chain's signing key (``[central] signing_key_file``); runs every ``[central] experiment_check_s``.
Each step is a row in ``experiment_rollouts`` (schema v4) and a log line ``central_experiment_step``.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from models.errors import ModelsError
from models.experiments.experiment import analyse
from models.experiments.rollout import Action, RolloutDecision, RolloutPolicy, RolloutState, decide
from models.experiments.spec import EXPERIMENT_FILE, Experiment, encode_experiment
from models.inference import load_models
from sync.bundle_signing import publish_bundle
from sync.bundle_verify import safe_extract
from sync.central_experiment_data import PublishedExperiment, experiment_data, newest_experiments
from sync.central_pool import DB_ERRORS, RunDb

log = logging.getLogger(__name__)
MAX_BUNDLE_BYTES = 512 * 1024 * 1024


def next_version(bundle_dir: Path, kind: str) -> int:
    kind_dir = bundle_dir / kind
    versions = [int(v.name) for v in kind_dir.iterdir() if v.name.isdigit()] if kind_dir.is_dir() else []
    return max(versions, default=0) + 1


def _policy(spec: Experiment) -> RolloutPolicy:
    return RolloutPolicy(min_n_per_arm=spec.min_households_per_arm, min_experiment_days=float(spec.min_days))


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class CentralRollout:
    def __init__(self, run: RunDb[Any], bundle_dir: Path, key: Ed25519PrivateKey) -> None:
        self._run = run
        self._bundle_dir = bundle_dir
        self._key = key

    async def once(self, now_ms: int) -> list[RolloutDecision]:
        """Decide every running experiment that central manages; returns the decisions taken."""
        published = await asyncio.to_thread(newest_experiments, self._bundle_dir)
        decisions = []
        for found in published.values():
            spec = found.spec
            if spec.decided_by != "central" or spec.decision != "running" or not spec.start_ms <= now_ms:
                continue
            if now_ms >= spec.end_ms:
                continue  # the stores end it themselves at end_ms
            decisions.append(await self._decide(found, now_ms))
        return decisions

    async def create(self, spec: Experiment, candidate: Path | None) -> int:
        """Publish a new experiment: ``spec`` with the candidate's models as its challenger's
        (``arms/challenger``); `ValueError` naming what is wrong. Returns the bundle version."""
        if spec.id in await asyncio.to_thread(newest_experiments, self._bundle_dir):
            raise ValueError(f"id: experiment {spec.id!r} exists already; stop it or choose another id")
        return await asyncio.to_thread(self._publish_new, spec, candidate)

    def _publish_new(self, spec: Experiment, candidate: Path | None) -> int:
        with tempfile.TemporaryDirectory(prefix="experiment-") as tmp:
            staged = Path(tmp) / "bundle"
            staged.mkdir()
            for arm in spec.arms:
                if arm.models is None:
                    continue
                if candidate is None:
                    raise ValueError(f"arms[{arm.key}].models: name the candidate whose models it serves")
                try:
                    load_models(candidate)
                except ModelsError as exc:
                    raise ValueError(f"candidate: {exc}") from exc
                shutil.copytree(candidate, staged / arm.models)
            (staged / EXPERIMENT_FILE).write_bytes(encode_experiment(spec))
            version = next_version(self._bundle_dir, "experiment")
            publish_bundle(
                self._key, "experiment", version, staged, self._bundle_dir, notes=f"created {spec.id}"
            )
        log.info("central_experiment_created", extra={"experiment": spec.id, "bundle_version": version})
        return version

    async def stop(self, experiment_id: str, reason: str, now_ms: int) -> int | None:
        """Stop an experiment at every store: publish it again ending now (each store ends it and serves
        its own models). Returns the bundle version, None when no published bundle carries it."""
        found = (await asyncio.to_thread(newest_experiments, self._bundle_dir)).get(experiment_id)
        if found is None:
            return None
        changed: dict[str, object] = {
            "end_ms": max(now_ms, found.spec.start_ms + 1),
            "decision_reason": f"stopped at central: {reason}"[:500],
        }
        version = await asyncio.to_thread(self._republish, found, changed, False)
        await self._run(lambda c: _record_stop(c, experiment_id, reason, now_ms))
        log.info("central_experiment_stopped", extra={"experiment": experiment_id, "bundle_version": version})
        return version

    async def _decide(self, found: PublishedExperiment, now_ms: int) -> RolloutDecision:
        spec = found.spec
        row = await self._run(lambda c: _state(c, spec, now_ms))
        started, step, step_started = row
        data = await self._run(lambda c: experiment_data(c, spec, step_started, now_ms))
        result = await asyncio.to_thread(analyse, data)
        state = RolloutState(
            experiment_id=spec.id,
            step=step,
            started_at=_moment(started),
            step_started_at=_moment(step_started),
        )
        decision = decide(state, result, _moment(now_ms), _policy(spec))
        if decision.action is Action.HOLD:
            await self._run(
                lambda c: _record(c, spec.id, step, step_started, "running", decision.reason, now_ms)
            )
            return decision
        changed = {"decision_reason": decision.reason[:500], "step": decision.step}
        if decision.action is Action.PROMOTE:
            changed["decision"] = "promoted"
        elif decision.action is Action.ROLLBACK:
            changed["decision"] = "rolled_back"
        version = await asyncio.to_thread(self._republish, found, changed, decision.action is Action.PROMOTE)
        status = str(changed.get("decision", "running"))
        await self._run(lambda c: _record(c, spec.id, decision.step, now_ms, status, decision.reason, now_ms))
        log.info(
            "central_experiment_step",
            extra={"experiment": spec.id, "action": decision.action.value, "step": decision.step,
                   "bundle_version": version, "reason": decision.reason},
        )  # fmt: skip
        return decision

    def _republish(self, found: PublishedExperiment, changed: dict[str, object], promote: bool) -> int:
        """The experiment's bundle again with ``changed`` in its definition, as the next version; with
        ``promote`` the challenger's models also as the next `model` bundle. Built in a temporary folder,
        published atomically (a failure publishes nothing)."""
        with tempfile.TemporaryDirectory(prefix="experiment-") as tmp:
            staged = Path(tmp) / "bundle"
            safe_extract(found.blob, staged, max_bytes=MAX_BUNDLE_BYTES)
            spec = msgspec.structs.replace(found.spec, **changed)
            spec.check()
            (staged / EXPERIMENT_FILE).write_bytes(encode_experiment(spec))
            version = next_version(self._bundle_dir, "experiment")
            if promote:
                challenger = spec.arms[1].models
                if challenger is not None:
                    model_version = next_version(self._bundle_dir, "model")
                    publish_bundle(
                        self._key, "model", model_version, staged / challenger, self._bundle_dir,
                        notes=f"promoted by experiment {spec.id}",
                    )  # fmt: skip
            publish_bundle(self._key, "experiment", version, staged, self._bundle_dir, notes=str(changed))
        return version


async def _state(c: asyncpg.Connection, spec: Experiment, now_ms: int) -> tuple[int, int, int]:
    """(started, step, step started) of central's rollout of ``spec``, created at its first look."""
    row = await c.fetchrow(
        "SELECT started_ms, step, step_started_ms FROM experiment_rollouts WHERE id = $1", spec.id
    )
    if row is not None:
        return int(row[0]), int(row[1]), int(row[2])
    first = await c.fetchval("SELECT min(ts_ms) FROM experiment_events WHERE experiment = $1", spec.id)
    started = int(first) if first is not None else now_ms
    await c.execute(
        "INSERT INTO experiment_rollouts (id, started_ms, step, step_started_ms, status, reason, updated_ms)"
        " VALUES ($1, $2, $3, $2, 'running', '', $4) ON CONFLICT (id) DO NOTHING",
        spec.id,
        started,
        spec.step,
        now_ms,
    )
    return started, spec.step, started


async def _record(
    c: asyncpg.Connection, experiment: str, step: int, step_started: int, status: str, reason: str, now: int
) -> None:
    await c.execute(
        "UPDATE experiment_rollouts SET step = $2, step_started_ms = $3, status = $4, reason = $5,"
        " updated_ms = $6 WHERE id = $1",
        experiment,
        step,
        step_started,
        status,
        reason,
        now,
    )


async def _record_stop(c: asyncpg.Connection, experiment: str, reason: str, now: int) -> None:
    await c.execute(
        "INSERT INTO experiment_rollouts (id, started_ms, step, step_started_ms, status, reason, updated_ms)"
        " VALUES ($1, $2, 0, $2, 'stopped', $3, $2) ON CONFLICT (id) DO UPDATE SET status = 'stopped',"
        " reason = excluded.reason, updated_ms = excluded.updated_ms",
        experiment,
        now,
        reason,
    )


async def run_rollouts(rollout: CentralRollout, every_s: float) -> None:
    """The task: decide every ``every_s``; a failed round (database down, a bad bundle) is logged and retried."""
    while True:
        try:
            await rollout.once(int(datetime.now(UTC).timestamp() * 1000))
        except (*DB_ERRORS, ValueError) as exc:
            log.warning("central_rollout_failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        await asyncio.sleep(every_s)
