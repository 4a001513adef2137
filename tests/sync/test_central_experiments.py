"""Central's view of an A/B test over every store, on a real PostgreSQL and real HTTP: two stores at
different rollout steps report their trips and steps; central lists the test with each store's state,
analyses all stores' households together (the SRM check follows each store's own weights), says which arm
a household is in at each store, and compares model versions; without the admin token nothing is shown."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from models.experiments.bucketing import assign
from models.experiments.rollout import challenger_weights
from sync import central_db
from sync.bundle_signing import generate_key, load_private_key, publish_bundle
from sync.central_experiments import CentralExperimentRoutes
from sync.central_pool import CentralDb
from tests.conftest import free_port
from tests.sync.test_central_warehouse import change, page

pytestmark = pytest.mark.integration

DAY = 86_400_000
T0 = 1_764_547_200_000  # 2025-12-01 00:00 UTC
NOW = T0 + 20 * DAY
TOKEN = "admin-token"
EXPERIMENT = "exp-chain"
SPEC = {
    "id": EXPERIMENT,
    "name": "chain test",
    "arms": [{"key": "control"}, {"key": "challenger", "models": "arms/challenger"}],
    "start_ms": T0,
    "end_ms": T0 + 60 * DAY,
}
STEPS = {"s1": 0.25, "s2": 0.10}  # each store at its own rollout step


def store_changes(store: str, households: int, rng: np.random.Generator) -> list[Any]:
    share = STEPS[store]
    started = T0 + DAY
    event = {"experiment": EXPERIMENT, "event": "started", "ts_ms": started - DAY, "step": 0, "traffic": 0.1,
             "reason": "loaded"}  # fmt: skip
    changes = [change(1, "experiment", EXPERIMENT, event)]
    if share > 0.1:
        step = event | {
            "event": "advanced",
            "ts_ms": started,
            "step": 1,
            "traffic": share,
            "reason": "no harm",
        }
        changes.append(change(2, "experiment", EXPERIMENT, step))
    seq = len(changes)
    for i in range(households):
        household = f"hh-{store}-{i:04d}"
        arm = ("control", "challenger")[assign(EXPERIMENT, household, challenger_weights(share)) or 0]
        for trip in range(3):
            seq += 1
            bought = started + DAY + trip * DAY + i
            body = {"household": household, "purchased_ms": bought, "categories": 10,
                    "on_list": int(rng.binomial(10, 0.5)), "listed": 10, "basket_model_version": f"nb-{arm}",
                    "experiment": EXPERIMENT, "arm": arm}  # fmt: skip
            changes.append(change(seq, "list_outcome", f"{household}:{bought}", body))
        seq += 1
        outcome = {"household": household, "category": "milk", "model_version": f"np-{arm}",
                   "scored_ms": started, "expected_days": 4.0, "p7": 0.7, "purchased_ms": started + 3 * DAY,
                   "actual_days": 3.0, "experiment": EXPERIMENT, "arm": arm}  # fmt: skip
        changes.append(change(seq, "prediction_outcome", f"{household}:milk", outcome))
    return changes


@pytest.fixture
async def central(central_dsn: str, tmp_path: Path) -> AsyncIterator[str]:
    db = CentralDb(central_dsn)
    await db.open()
    rng = np.random.default_rng(4)
    for store, n in (("s1", 500), ("s2", 700)):
        await db.run(
            lambda c, s=store, n=n: central_db.apply_page(c, s, page(store_changes(s, n, rng), store=s), NOW)
        )
    bundles = tmp_path / "bundles"
    source = tmp_path / "experiment"
    (source / "arms" / "challenger").mkdir(parents=True)
    (source / "experiment.json").write_text(json.dumps(SPEC))
    generate_key(tmp_path / "chain.key")
    publish_bundle(load_private_key(tmp_path / "chain.key"), "experiment", 1, source, bundles)
    app = web.Application()
    routes = CentralExperimentRoutes(
        db.run, bundles, lambda r: r.headers.get("Authorization") == f"Bearer {TOKEN}"
    )
    routes.add_to(app)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await db.close()


async def get(url: str, token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        return resp.status, json.loads(await resp.read())


async def test_central_analyses_every_stores_households_together(central: str) -> None:
    assert (await get(f"{central}/api/v1/ab-tests", token=None))[0] == 401
    status, tests = await get(f"{central}/api/v1/ab-tests")
    assert status == 200
    (test,) = tests
    states = {s["store"]: (s["event"], s["traffic"]) for s in test["stores"]}
    assert states == {"s1": ("advanced", 0.25), "s2": ("started", 0.1)}
    assert test["definition"]["id"] == EXPERIMENT

    status, result = await get(f"{central}/api/v1/ab-tests/{EXPERIMENT}/results?scope=whole")
    assert status == 200, result
    assert sum(result["analysed"]) == 1200  # both stores' households
    # the split follows each store's own weights: no sample ratio mismatch
    assert not result["srm"]["mismatch"], result["srm"]
    expected = (500 * 0.25 + 700 * 0.10) / 1200
    assert result["srm"]["expected"][1] == pytest.approx(expected * sum(result["srm"]["observed"]), rel=1e-6)
    (primary,) = [m for m in result["metrics"] if m["role"] == "primary"]
    assert primary["metric"] == "list_hit_rate"
    assert primary["effect"] == "none"  # both arms were drawn at 0.5

    household = "hh-s1-0007"
    status, found = await get(f"{central}/api/v1/ab-tests/assignments/{household}?test={EXPERIMENT}")
    assert status == 200
    arms = {s["store"]: s["arm"] for s in found["stores"]}
    for store, share in STEPS.items():
        index = assign(EXPERIMENT, household, challenger_weights(share))
        assert arms[store] == ("control", "challenger")[index or 0]

    status, metrics = await get(f"{central}/api/v1/ab-tests/{EXPERIMENT}/metrics")
    assert {(m["arm"], m["metric"]) for m in metrics} == {
        ("control", "list_hit_rate"),
        ("challenger", "list_hit_rate"),
    }
    assert (await get(f"{central}/api/v1/ab-tests/nope/results"))[0] == 404

    status, comparison = await get(f"{central}/api/v1/ab-tests/performance/comparison?days=3660")
    assert status == 200
    assert {v["model_version"] for v in comparison["next_basket"]} == {"nb-control", "nb-challenger"}
    assert sum(v["trips"] for v in comparison["next_basket"]) == 3600
    (by_version,) = [v for v in comparison["next_purchase"] if v["model_version"] == "np-control"]
    assert by_version["within_7d"] == 1.0
    assert by_version["mean_abs_deviation_days"] == pytest.approx(1.0)
    status, performance = await get(f"{central}/api/v1/analytics/performance?days=3660")
    assert status == 200
    assert {(p["category"], p["predictions"] > 0) for p in performance} == {("milk", True)}
    assert (await get(f"{central}/api/v1/analytics/performance?days=zero"))[0] == 400
    # without the chain's signing key central cannot publish, so it cannot stop a test
    async with aiohttp.ClientSession() as session:
        url = f"{central}/api/v1/ab-tests/{EXPERIMENT}/stop"
        async with session.post(url, headers={"Authorization": f"Bearer {TOKEN}"}, json={}) as resp:
            assert resp.status == 409
        async with session.post(url, json={}) as resp:
            assert resp.status == 401
