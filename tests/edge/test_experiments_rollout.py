"""The rollout on the store, step by step, on a real SQLite database behind the real writer, with the
store's clock moved by the test: a challenger that does no harm advances 10% -> 25%; a clearly worse one
is rolled back before its week is up; a clearly better one at the last step is promoted and then serves
every household; the arms' split is what the hash says, so the SRM check stays quiet; each step is an
outbox event. The scoring itself is covered by tests/edge/test_experiments.py."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from edge.config import parse_config
from edge.experiments.planner import ExperimentState
from edge.experiments.service import ExperimentService
from edge.metrics import IngestMetrics
from edge.predictions.clock import StoreClock
from edge.predictions.model_set import load_store_models
from edge.predictions.service import PredictionService
from edge.store.writer import StoreWriter
from models.experiments.bucketing import assign
from models.experiments.rollout import STEPS
from tests.edge.test_experiments import EXPERIMENT, experiment_bundle
from tests.sync.test_sync_erasure_feed import store_writer

DAY_MS = 86_400_000


class Clock:
    def __init__(self) -> None:
        self.ms = int(time.time() * 1000)

    def __call__(self) -> float:
        return self.ms / 1000


@contextlib.asynccontextmanager
async def experiment_service(
    tmp_path: Path, clock: Clock
) -> AsyncIterator[tuple[ExperimentService, StoreWriter]]:
    bundles = tmp_path / "bundles"
    db = tmp_path / "store.db"
    config = parse_config({"database": {"path": str(db)}, "sync": {"bundle_dir": str(bundles)}})
    experiment_bundle(bundles, 1)
    async with store_writer(db) as writer:
        predictions = PredictionService(
            config, db, writer, IngestMetrics(), load_store_models(config), clock=StoreClock("UTC", clock)
        )
        service = ExperimentService(config, db, writer, predictions)
        try:
            yield service, writer
        finally:
            await service.close()
            await predictions.close()


async def shoppers(writer: StoreWriter, n: int, step: int, hit_rate: dict[str, float], now_ms: int) -> None:
    """``n`` households, each in the arm the hash gives at ``step``, each with a cached list and one trip
    per day for a week whose share of listed categories is its arm's rate (plus noise). The households
    of earlier steps are re-tagged with their arm at this step, as the rescore after an advance does."""
    rng = np.random.default_rng(step)
    weights = (1 - STEPS[step], STEPS[step])

    def job(c: sqlite3.Connection) -> None:
        for (household,) in c.execute("SELECT household FROM predictions").fetchall():
            arm = ("control", "challenger")[assign(EXPERIMENT, household, weights) or 0]
            c.execute("UPDATE predictions SET arm = ? WHERE household = ?", (arm, household))
        for i in range(n):
            household = f"hh-{step}-{i:05d}"
            arm = ("control", "challenger")[assign(EXPERIMENT, household, weights) or 0]
            c.execute(
                "INSERT INTO predictions (household, category, purchases, basket_probability, urgency, reason,"
                " model_version, basket_model_version, scored_ms, origin_day, utc_offset_min, experiment, arm)"
                " VALUES (?, 'milk', 3, 0.5, 'usual', 'r', 'np', 'nb', ?, 0, 0, ?, ?)",
                (household, now_ms, EXPERIMENT, arm),
            )
            for day in range(7):
                on_list = int(rng.binomial(10, hit_rate[arm]))
                c.execute(
                    "INSERT INTO list_outcomes (household, purchased_ms, categories, on_list, listed,"
                    " experiment, arm, scored_ms, recorded_ms) VALUES (?, ?, 10, ?, 10, ?, ?, ?, ?)",
                    (household, now_ms + day * 3_600_000, on_list, EXPERIMENT, arm, now_ms, now_ms),
                )

    await writer.run_job(job)


def events(db: Path) -> list[tuple[str, float]]:
    conn = sqlite3.connect(db)
    try:
        bodies = conn.execute("SELECT body FROM outbox WHERE kind = 'experiment' ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [(json.loads(b)["event"], json.loads(b)["traffic"]) for (b,) in bodies]


async def test_no_harm_advances_and_a_better_challenger_is_promoted(tmp_path: Path) -> None:
    clock = Clock()
    async with experiment_service(tmp_path, clock) as (service, writer):
        assert await service.load()
        assert (await service.check_once()).action.value == "hold"  # type: ignore[union-attr]
        await shoppers(writer, 400, 0, {"control": 0.5, "challenger": 0.5}, clock.ms)
        clock.ms += 8 * DAY_MS  # past the week every experiment runs before it moves
        decision = await service.check_once()
        assert decision is not None
        assert (decision.action.value, decision.challenger_share) == ("advance", STEPS[1]), decision.reason
        assert service.planner.live is not None
        assert service.planner.live.weights == (1 - STEPS[1], STEPS[1])
        # On to the last step with a clearly better challenger in every step.
        for step in (1, 2, 3):
            await shoppers(writer, 600, step, {"control": 0.4, "challenger": 0.6}, clock.ms + 1)
            clock.ms += 2 * DAY_MS
            decision = await service.check_once()
            assert decision is not None
            expected = "advance" if step < 3 else "promote"
            assert decision.action.value == expected, decision.reason
        assert service.planner.live.state is ExperimentState.PROMOTED
        challenger_models = service.planner.live.arm_models[1]
        groups = service.planner.plan(["a", "b", "c"], load_store_models(parse_config({})))
        assert [(g.experiment, g.models is challenger_models, len(g.households)) for g in groups] == [
            (None, True, 3)
        ]
    assert events(tmp_path / "store.db") == [
        ("started", STEPS[0]),
        ("advanced", STEPS[1]),
        ("advanced", STEPS[2]),
        ("advanced", STEPS[3]),
        ("promoted", 1.0),
    ]


async def test_a_worse_challenger_is_rolled_back_before_its_week_is_up(tmp_path: Path) -> None:
    clock = Clock()
    async with experiment_service(tmp_path, clock) as (service, writer):
        assert await service.load()
        await shoppers(writer, 2000, 0, {"control": 0.5, "challenger": 0.3}, clock.ms)
        clock.ms += DAY_MS
        decision = await service.check_once()
        assert decision is not None
        assert decision.action.value == "rollback", decision.reason
        assert "list_hit_rate" in decision.reason
        assert service.planner.live is not None
        assert service.planner.live.state is ExperimentState.ROLLED_BACK
        served = load_store_models(parse_config({}))
        (group,) = service.planner.plan(["a", "b"], served)
        assert (group.experiment, group.models is served) == (None, True)
        assert await service.check_once() is None  # a finished experiment is left alone
    assert events(tmp_path / "store.db") == [("started", STEPS[0]), ("rolled_back", 0.0)]


async def test_a_newer_bundle_of_the_same_experiment_can_end_it(tmp_path: Path) -> None:
    """Central ends a test by publishing it again with an end in the past: the store keeps its state and
    history, takes the new definition, and ends it (everyone back on the store's own models)."""
    clock = Clock()
    async with experiment_service(tmp_path, clock) as (service, _writer):
        assert await service.load()
        root = experiment_bundle(tmp_path / "bundles", 2)
        spec = json.loads((root / "experiment.json").read_text())
        (root / "experiment.json").write_text(json.dumps(spec | {"end_ms": clock.ms - 1}))
        assert await service.load()
        assert await service.check_once() is None
        assert service.planner.live is not None
        assert service.planner.live.state is ExperimentState.ENDED
        assert service.planner.live.bundle_version == 2
    assert events(tmp_path / "store.db") == [("started", STEPS[0]), ("ended", 0.0)]


def central_bundle(tmp_path: Path, version: int, **fields: object) -> None:
    root = experiment_bundle(tmp_path / "bundles", version)
    spec = json.loads((root / "experiment.json").read_text())
    (root / "experiment.json").write_text(json.dumps(spec | {"decided_by": "central"} | fields))


async def test_when_central_decides_the_store_follows_its_steps_and_verdict(tmp_path: Path) -> None:
    clock = Clock()
    async with experiment_service(tmp_path, clock) as (service, writer):
        central_bundle(tmp_path, 2)  # version 1 is the store-decided bundle experiment_service made
        assert await service.load()
        await shoppers(writer, 400, 0, {"control": 0.4, "challenger": 0.6}, clock.ms)
        clock.ms += 8 * DAY_MS
        assert await service.check_once() is None  # a better challenger, but the step is central's call
        assert service.planner.live is not None
        assert service.planner.live.weights == (1 - STEPS[0], STEPS[0])
        central_bundle(tmp_path, 3, step=2, decision_reason="no harm over 9 stores")
        assert await service.load()
        assert service.planner.live.weights == (1 - STEPS[2], STEPS[2])
        central_bundle(tmp_path, 4, step=3, decision="promoted", decision_reason="better over 9 stores")
        assert await service.load()
        assert service.planner.live.state is ExperimentState.PROMOTED
    assert events(tmp_path / "store.db") == [("started", STEPS[0]), ("advanced", STEPS[2]), ("promoted", 1.0)]


async def test_under_central_a_store_still_rolls_back_on_its_own_scoring_guardrail(tmp_path: Path) -> None:
    clock = Clock()
    async with experiment_service(tmp_path, clock) as (service, writer):
        central_bundle(tmp_path, 2)
        assert await service.load()
        rng = np.random.default_rng(9)
        rows = [
            (EXPERIMENT, arm, clock.ms + i, 100, float(rng.normal(mean, 20)), 0)
            for i in range(60)
            for arm, mean in (("control", 400.0), ("challenger", 900.0))
        ]
        await writer.run_job(
            lambda c: c.executemany(
                "INSERT INTO experiment_scoring (experiment, arm, ts_ms, households, cpu_ms, errors, wall_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, 0)",
                rows,
            )
        )
        clock.ms += DAY_MS
        assert await service.check_once() is None
        assert service.planner.live is not None
        assert service.planner.live.state is ExperimentState.ROLLED_BACK
    assert [e[0] for e in events(tmp_path / "store.db")] == ["started", "rolled_back"]
    conn = sqlite3.connect(tmp_path / "store.db")
    try:
        (reason,) = conn.execute("SELECT reason FROM experiments").fetchone()
    finally:
        conn.close()
    assert "scoring_ms" in reason
