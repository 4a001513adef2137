"""Central decides a rollout over every store (real PostgreSQL, real signed bundles): with a better
challenger it walks the steps 10% -> 25% -> 50% -> 90%, each published as a new version of the experiment
bundle, then promotes it, publishing the challenger's models as the chain's next `model` bundle; a worse
one is rolled back and nothing else is published. Each published bundle verifies with the chain's key."""

from __future__ import annotations

import json
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import numpy as np
import pytest
from aiohttp import web

from models.experiments.bucketing import assign
from models.experiments.rollout import STEPS, challenger_weights
from sync import central_db
from sync.bundle_signing import (
    generate_key,
    load_private_key,
    public_key_hex,
    publish_bundle,
    read_published,
)
from sync.bundle_verify import load_public_key, verify_manifest
from sync.central_experiments import CentralExperimentRoutes
from sync.central_pool import CentralDb
from sync.central_rollout import CentralRollout
from tests.conftest import free_port
from tests.edge.test_predictions_model_swap import model_set
from tests.sync.test_central_warehouse import change, page

pytestmark = pytest.mark.integration

DAY = 86_400_000
T0 = 1_764_547_200_000  # 2025-12-01 00:00 UTC
EXPERIMENT = "exp-central"


class Chain:
    """Two stores reporting their steps and their households' trips to central."""

    def __init__(self, db: CentralDb) -> None:
        self.db = db
        self.seq = {"s1": 0, "s2": 0}
        self.rng = np.random.default_rng(11)

    async def report(self, step: int, at_ms: int, hit_rate: dict[str, float], households: int = 600) -> None:
        share = STEPS[step]
        for store in ("s1", "s2"):
            event = "started" if step == 0 else "advanced"
            body = {"experiment": EXPERIMENT, "event": event, "ts_ms": at_ms, "step": step, "traffic": share,
                    "reason": "decided at central"}  # fmt: skip
            changes = [self._change(store, "experiment", EXPERIMENT, body)]
            for i in range(households):
                household = f"hh-{store}-{step}-{i:04d}"
                arm = ("control", "challenger")[assign(EXPERIMENT, household, challenger_weights(share)) or 0]
                bought = at_ms + 3_600_000 + i
                trip = {"household": household, "purchased_ms": bought, "categories": 10,
                        "on_list": int(self.rng.binomial(10, hit_rate[arm])), "listed": 10,
                        "experiment": EXPERIMENT, "arm": arm}  # fmt: skip
                changes.append(self._change(store, "list_outcome", f"{household}:{bought}", trip))
            await self.db.run(
                lambda c, s=store, ch=changes: central_db.apply_page(c, s, page(ch, store=s), at_ms)
            )

    def _change(self, store: str, kind: str, entity: str, body: dict[str, Any]) -> Any:
        self.seq[store] += 1
        return change(self.seq[store], kind, entity, body)


@pytest.fixture
async def central(central_dsn: str, tmp_path: Path) -> AsyncIterator[tuple[CentralRollout, Chain, Path, str]]:
    db = CentralDb(central_dsn)
    await db.open()
    bundles = tmp_path / "bundles"
    public = generate_key(tmp_path / "chain.key")
    key = load_private_key(tmp_path / "chain.key")
    source = tmp_path / "experiment"
    model_set(source / "arms" / "challenger", "challenger")
    spec = {"id": EXPERIMENT, "name": "central decides", "start_ms": T0, "end_ms": T0 + 90 * DAY,
            "arms": [{"key": "control"}, {"key": "challenger", "models": "arms/challenger"}],
            "decided_by": "central"}  # fmt: skip
    (source / "experiment.json").write_text(json.dumps(spec))
    publish_bundle(key, "experiment", 1, source, bundles)
    assert public == public_key_hex(key)
    try:
        yield CentralRollout(db.run, bundles, key), Chain(db), bundles, public
    finally:
        await db.close()


def published_spec(bundles: Path, version: int, public: str) -> dict[str, Any]:
    manifest = read_published(bundles, "experiment", version)
    verify_manifest(manifest, load_public_key(public))
    with tarfile.open(bundles / "experiment" / str(version) / "bundle.tar.gz") as archive:
        member = archive.extractfile("experiment.json")
        assert member is not None
        return dict(msgspec.json.decode(member.read()))


async def test_central_walks_a_better_challenger_up_the_steps_and_promotes_it(
    central: tuple[CentralRollout, Chain, Path, str],
) -> None:
    rollout, chain, bundles, public = central
    better = {"control": 0.4, "challenger": 0.6}
    now = T0
    await chain.report(0, now, better)
    (first,) = await rollout.once(now + DAY)
    assert first.action.value == "hold"  # the week every experiment runs first
    now += 8 * DAY
    for step in (1, 2, 3):
        (decision,) = await rollout.once(now)
        assert (decision.action.value, decision.step) == ("advance", step), decision.reason
        spec = published_spec(bundles, step + 1, public)
        assert (spec["step"], spec["decision"], spec["decided_by"]) == (step, "running", "central")
        await chain.report(step, now, better)
        now += 2 * DAY
    (decision,) = await rollout.once(now)
    assert decision.action.value == "promote", decision.reason
    final = published_spec(bundles, 5, public)
    assert final["decision"] == "promoted"
    assert "better" in final["decision_reason"]
    # The winner is the chain's model now: the challenger's models as the next `model` bundle.
    model = read_published(bundles, "model", 1)
    verify_manifest(model, load_public_key(public))
    with tarfile.open(bundles / "model" / "1" / "bundle.tar.gz") as archive:
        member = archive.extractfile("next_basket/card.json")
        assert member is not None
        assert json.loads(member.read())["version"] == "next_basket-challenger"
    assert await rollout.once(now + DAY) == []  # decided: nothing more to do


async def test_central_rolls_a_worse_challenger_back_and_publishes_no_model(
    central: tuple[CentralRollout, Chain, Path, str],
) -> None:
    rollout, chain, bundles, public = central
    await chain.report(0, T0, {"control": 0.5, "challenger": 0.3}, households=1500)
    (decision,) = await rollout.once(T0 + DAY)
    assert decision.action.value == "rollback", decision.reason
    assert published_spec(bundles, 2, public)["decision"] == "rolled_back"
    assert not (bundles / "model").exists()


async def test_stopping_at_central_publishes_the_experiment_again_ending_now(
    central: tuple[CentralRollout, Chain, Path, str],
) -> None:
    rollout, _chain, bundles, public = central
    now = T0 + 3 * DAY
    assert await rollout.stop(EXPERIMENT, "a price war distorts baskets", now) == 2
    spec = published_spec(bundles, 2, public)
    assert spec["end_ms"] == now
    assert spec["decision_reason"] == "stopped at central: a price war distorts baskets"
    assert await rollout.stop("no-such-test", "x", now) is None
    assert await rollout.once(now + DAY) == []  # past its end: the stores end it, central leaves it


async def test_central_creates_an_experiment_from_a_candidate_over_http(
    central: tuple[CentralRollout, Chain, Path, str], tmp_path: Path
) -> None:
    rollout, _chain, bundles, public = central
    candidates = tmp_path / "candidates"
    model_set(candidates / "retrain-1", "retrained")
    model_set(candidates / "broken", "broken", drop="next_basket")
    app = web.Application()
    CentralExperimentRoutes(
        rollout._run, bundles, lambda r: r.headers.get("Authorization") == "Bearer admin", rollout, candidates
    ).add_to(app)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    spec = {"id": "exp-new", "name": "retrained", "start_ms": T0, "end_ms": T0 + 60 * DAY,
            "arms": [{"key": "control"}, {"key": "challenger", "models": "arms/challenger"}],
            "decided_by": "central"}  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/v1/ab-tests"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer admin"}) as http:

            async def post(body: dict[str, Any]) -> tuple[int, Any]:
                async with http.post(url, json=body) as resp:
                    return resp.status, json.loads(await resp.read())

            status, made = await post({"experiment": spec, "candidate": "retrain-1"})
            assert (status, made["bundle_version"]) == (201, 2), made
            published = published_spec(bundles, 2, public)
            assert (published["id"], published["decided_by"]) == ("exp-new", "central")
            with tarfile.open(bundles / "experiment" / "2" / "bundle.tar.gz") as archive:
                member = archive.extractfile("arms/challenger/next_basket/card.json")
                assert member is not None
                assert json.loads(member.read())["version"] == "next_basket-retrained"
            again = await post({"experiment": spec, "candidate": "retrain-1"})
            assert again[0] == 400
            assert "exists already" in again[1]["error"]
            other = spec | {"id": "exp-other"}
            assert (await post({"experiment": other}))[0] == 400  # the challenger needs models
            assert (await post({"experiment": other, "candidate": "broken"}))[0] == 400
            assert (await post({"experiment": other, "candidate": "../etc"}))[0] == 400
            assert (await post({"experiment": other | {"end_ms": 0}, "candidate": "retrain-1"}))[0] == 400
            assert not (bundles / "experiment" / "3").exists()  # nothing published by a refused request
    finally:
        await runner.cleanup()
