"""A/B tests of model versions in a real daemon: a real broker, real SQLite seeded with simulated weeks
of loyalty purchases, real onnxruntime sessions for both arms, real HTTP. An `experiment` bundle goes
live without a restart; every consenting household is scored by its arm's models, exactly as the
GrowthBook-compatible hash assigns it; its list, outcomes and votes carry the arm; staff see and stop
the test; the state survives a restart."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge.config import load_config
from edge.demo.broker import MosquittoBroker
from edge.demo.seed import store_pseudonymiser
from edge.demo.service import seed_demo_history
from edge.experiments.planner import ExperimentState
from edge.experiments.service import ExperimentService
from models import load_models
from models.experiments.bucketing import assign
from models.experiments.rollout import STEPS
from tests.conftest import STAFF_TOKEN, aget, ajson, run_daemon, write_config
from tests.edge.test_predictions_model_swap import model_set
from tests.edge.test_predictions_serving import query, till, wait_for

pytestmark = pytest.mark.integration
DAY_MS = 86_400_000
MODELS = load_models()
EXPERIMENT = "basket-v2-vs-v1"


def experiment_bundle(bundles: Path, version: int, experiment_id: str = EXPERIMENT) -> Path:
    """A live `experiment` bundle: the store's own models against a challenger (the shipped models
    under another version, so every row shows which set scored it)."""
    root = bundles / "experiment" / "versions" / str(version)
    model_set(root / "arms" / "challenger", "challenger")
    now = int(time.time() * 1000)
    spec = {
        "id": experiment_id,
        "name": "next basket v2 against v1",
        "arms": [{"key": "control"}, {"key": "challenger", "models": "arms/challenger"}],
        "start_ms": now - DAY_MS,
        "end_ms": now + 30 * DAY_MS,
        "primary_metric": "list_hit_rate",
        "secondary_metrics": ["mae_days"],
    }
    (root / "experiment.json").write_text(json.dumps(spec))
    current = bundles / "experiment" / "current"
    if current.is_symlink():
        current.unlink()
    current.symlink_to(root.relative_to(current.parent))
    return root


def grant_everyone(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        households = [
            h for (h,) in conn.execute("SELECT DISTINCT household FROM purchases WHERE household IS NOT NULL")
        ]
        conn.executemany(
            "INSERT INTO consents (household, purpose, granted, updated_ms) VALUES (?, 'personalisation', 1, 0)",
            [(h,) for h in households],
        )
        conn.commit()
    finally:
        conn.close()
    return sorted(households)


async def apost(url: str, body: object) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {STAFF_TOKEN}"}
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as resp:
        return resp.status, json.loads(await resp.read())


def experiments(running: Any) -> ExperimentService:
    service = running.daemon.experiments
    assert isinstance(service, ExperimentService)
    return service


async def test_households_are_served_by_their_arm_and_staff_can_stop_the_test(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    bundles = tmp_path / "bundles"
    config = write_config(
        tmp_path,
        broker,
        store={"timezone": "UTC"},
        models={"rescore_interval_s": 0.2, "shelf_forecast_interval_s": 3600.0, "experiment_check_s": 3600.0},
        sync={"bundle_dir": str(bundles), "bundle_poll_s": 0.2},
    )
    seeded = seed_demo_history(load_config(config), households=80, weeks=10, seed=5)
    db = tmp_path / "store.db"
    async with run_daemon(config) as running:
        households = grant_everyone(db)
        assert len(households) >= 60
        await running.daemon.predictions.full_rescore()
        assert query(db, "SELECT count(*) FROM predictions WHERE experiment IS NOT NULL") == [(0,)]
        experiment_bundle(bundles, 1)
        # Loaded without a restart, then everyone is rescored with their arm's models.
        await wait_for(lambda: query(db, "SELECT count(DISTINCT arm) FROM predictions") == [(2,)], 30)
        await wait_for(
            lambda: query(db, "SELECT count(*) FROM predictions WHERE experiment IS NULL") == [(0,)], 30
        )
        (row,) = query(db, "SELECT state, step FROM experiments WHERE id = ?", EXPERIMENT)
        assert row == ("running", 0)
        events = [json.loads(b) for (b,) in query(db, "SELECT body FROM outbox WHERE kind = 'experiment'")]
        assert [(e["event"], e["traffic"]) for e in events] == [("started", STEPS[0])]

        # Each household's rows come from exactly the arm the hash gives it, scored by that arm's models.
        weights = (1 - STEPS[0], STEPS[0])
        expected = {h: ("control", "challenger")[assign(EXPERIMENT, h, weights) or 0] for h in households}
        served = dict(query(db, "SELECT DISTINCT household, arm FROM predictions"))
        assert served == {h: expected[h] for h in served}
        assert set(served.values()) == {"control", "challenger"}
        versions = dict(query(db, "SELECT DISTINCT arm, basket_model_version FROM predictions"))
        assert versions == {
            "control": MODELS.next_basket.card.version,
            "challenger": "next_basket-challenger",
        }
        costs = query(
            db, "SELECT arm, sum(households), sum(errors), min(cpu_ms) FROM experiment_scoring GROUP BY arm"
        )
        assert {a for a, *_ in costs} == {"control", "challenger"}
        assert all(n > 0 and errors == 0 and cpu >= 0 for _, n, errors, cpu in costs)

        # Staff: the test, a household's arm, and a household without consent in no arm.
        url = running.url
        (listed,) = await ajson(f"{url}/api/v1/ab-tests")
        assert (listed["id"], listed["state"], listed["challenger_share"]) == (
            EXPERIMENT,
            "running",
            STEPS[0],
        )
        challenger = next(h for h in sorted(served) if served[h] == "challenger")
        found = await ajson(f"{url}/api/v1/ab-tests/assignments/{challenger}")
        assert (found["experiment"], found["arm"]) == (EXPERIMENT, "challenger")
        assert query(db, "SELECT count(*) FROM access_log WHERE household = ?", challenger) != [(0,)]
        stranger = await ajson(f"{url}/api/v1/ab-tests/assignments/hh-never-seen")
        assert stranger["arm"] is None, stranger
        assert "consent" in stranger["reason"]
        results = await ajson(f"{url}/api/v1/ab-tests/{EXPERIMENT}/results")
        assert results["arms"] == ["control", "challenger"]
        assert results["verdict"] == "collecting"
        metrics = await ajson(f"{url}/api/v1/ab-tests/{EXPERIMENT}/metrics")
        assert [a["arm"] for a in metrics["arms"]] == ["control", "challenger"]
        assert (await aget(f"{url}/api/v1/ab-tests/nope/results"))[0] == 404

        # A trip of a challenger household: its outcome and its trip against the list carry the arm.
        pseudonyms = store_pseudonymiser(load_config(config))
        # The simulated population's cards are LOY-000001 onwards (simulators.household_population).
        every_card = [f"LOY-{i:06d}" for i in range(1, seeded.households + 1)]
        cards = {pseudonyms.household_id(c): c for c in every_card}
        shopper = next((h for h in sorted(cards) if served.get(h) == "challenger"), None)
        assert shopper is not None, f"no challenger among the {len(cards)} cards"
        (category,) = next(
            iter(query(db, "SELECT category FROM predictions WHERE household = ? AND list_rank = 1", shopper))
        )
        sku = {s.category: s.sku for s in running.daemon.planogram.shelves.values()}
        await till(broker.port, 1, int(time.time() * 1000), cards[shopper], sku[category], 1)
        await wait_for(lambda: query(db, "SELECT count(*) FROM list_outcomes") == [(1,)])
        assert query(db, "SELECT household, on_list, experiment, arm FROM list_outcomes") == [
            (shopper, 1, EXPERIMENT, "challenger")
        ]
        assert query(db, "SELECT DISTINCT arm FROM prediction_outcomes") == [("challenger",)]
        compared = await ajson(f"{url}/api/v1/ab-tests/performance/comparison?days=7")
        assert [(v["model_version"], v["trips"]) for v in compared["next_basket"]] == [
            ("next_basket-challenger", 1)
        ]
        assert [v["model_version"] for v in compared["next_purchase"]] == ["next_purchase-challenger"]
        performance = await ajson(f"{url}/api/v1/analytics/performance")
        assert [(p["category"], p["predictions"]) for p in performance] == [(category, 1)]
        assert (await aget(f"{url}/api/v1/analytics/performance?days=0"))[0] == 400

        # Stopped by staff: an event, and everyone back on the store's own models.
        status, stopped = await apost(f"{url}/api/v1/ab-tests/{EXPERIMENT}/stop", {"reason": "shelf reset"})
        assert status == 200, stopped
        assert stopped["state"] == "stopped"
        await wait_for(
            lambda: query(db, "SELECT count(*) FROM predictions WHERE experiment IS NOT NULL") == [(0,)], 30
        )
        assert query(db, "SELECT DISTINCT basket_model_version FROM predictions") == [
            (MODELS.next_basket.card.version,)
        ]
        assert (await apost(f"{url}/api/v1/ab-tests/{EXPERIMENT}/stop", {}))[0] == 409
        kinds = [
            json.loads(b)["event"] for (b,) in query(db, "SELECT body FROM outbox WHERE kind = 'experiment'")
        ]
        assert kinds == ["started", "stopped"]

    # A restart resumes the experiment where it was: stopped stays stopped.
    async with run_daemon(config) as running:
        service = experiments(running)
        await wait_for(lambda: service.planner.live is not None, 10)
        assert service.planner.live is not None
        assert service.planner.live.state is ExperimentState.STOPPED
