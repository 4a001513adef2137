"""Retraining at central on a real PostgreSQL: simulated households' baskets go into the warehouse as
purchase changes (two stores), most with analytics consent; `retrain` trains on them, measures the
candidate against the current models and publishes a signed experiment the store accepts, or publishes
nothing and says why."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from edge.uplink.bundle_checks import check_experiment
from models.cards import read_card
from models.experiments.spec import read_experiment
from models.inference import TRAINED_DIR, load_models
from simulators.household_history import HouseholdSimConfig, HouseholdSimulation, simulate_households
from sync import central_db, cli
from sync.bundle_signing import generate_key, latest_bundles, load_private_key, public_key_hex, publish_bundle
from sync.bundle_verify import load_public_key, safe_extract, verify_manifest
from sync.central_history import read_chain_history
from sync.central_pool import CentralDb
from sync.central_retrain import RetrainPolicy, RetrainReport, retrain
from sync.central_schema import migrate
from sync.schemas import Change, ChangesPage

pytestmark = pytest.mark.integration

START = date(2026, 5, 4)  # a Monday; 150 days of baskets, to 2026-09-30
DAYS = 150
CUTOFF = date(2026, 9, 7)  # 126 days before it, 24 after
NOW_MS = int(datetime(2026, 10, 1, 9, 0, tzinfo=UTC).timestamp() * 1000)
START_MS = int(datetime(2026, 5, 4, tzinfo=UTC).timestamp() * 1000)
HOUSEHOLDS = 110
NO_CONSENT_EVERY = 10  # every tenth household never gave analytics consent
PAGE = 2000


@pytest.fixture(scope="module")
def simulation() -> HouseholdSimulation:
    # Seed 3: on some small simulated chains (2 of 4 seeds tried) the export's ONNX parity check fails
    # and the run is "failed" (docs/experiments.md, "Retraining at central").
    return simulate_households(HouseholdSimConfig(seed=3, households=HOUSEHOLDS, days=DAYS, start=START))


def purchase_changes(sim: HouseholdSimulation) -> dict[str, list[dict[str, Any]]]:
    """Each basket as a store's purchase body; odd baskets in store s2. Every 25th basket is anonymous."""
    bodies: dict[str, list[dict[str, Any]]] = {"s1": [], "s2": []}
    baskets: dict[int, dict[str, Any]] = {}
    for i in range(sim.n_lines):
        basket = int(sim.basket[i])
        c = int(sim.category[i])
        body = baskets.get(basket)
        if body is None:
            ts_ms = ((sim.start_epoch_day + int(sim.day[i])) * 86_400 + int(sim.minute[i]) * 60) * 1000
            household = sim.population.households[int(sim.household[i])].household_id
            body = baskets[basket] = {
                "basket_id": f"b{basket // 2}",  # the same ids in both stores
                "ts_ms": ts_ms,
                "household": None if basket % 25 == 0 else household,
                "items": [],
            }
            bodies["s2" if basket % 2 else "s1"].append(body)
        body["items"].append(
            {
                "sku": sim.profiles[c].skus[int(sim.sku[i])],
                "qty": float(sim.qty[i]),
                "unit_price": round(float(sim.price[i]), 2),
                "category": sim.profiles[c].name,
            }
        )
    for store_bodies in bodies.values():
        for body in store_bodies:
            body["total"] = round(sum(item["qty"] * item["unit_price"] for item in body["items"]), 2)
    return bodies


def consent_bodies(sim: HouseholdSimulation, granted: int | None = None) -> list[dict[str, Any]]:
    """Analytics consent for all but every tenth household (or for the first ``granted`` only)."""
    out = []
    for index, household in enumerate(sim.population.households):
        on = index < granted if granted is not None else index % NO_CONSENT_EVERY != 0
        out.append(
            {
                "household": household.household_id,
                "personalisation": True,
                "analytics": on,
                "ts_ms": START_MS,
            }
        )
    return out


async def load_warehouse(dsn: str, sim: HouseholdSimulation, *, granted: int | None = None) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        stores = purchase_changes(sim)
        stores["s1"] = [*consent_bodies(sim, granted), *stores["s1"]]
        for store, bodies in stores.items():
            changes = [
                Change(
                    seq,
                    NOW_MS,
                    "consent" if "analytics" in body else "purchase",
                    body["household"] or "",
                    msgspec.Raw(json.dumps(body).encode()),
                )
                for seq, body in enumerate(bodies, start=1)
            ]
            for start in range(0, len(changes), PAGE):
                chunk = changes[start : start + PAGE]
                page = ChangesPage(
                    store, "feed", chunk, next=chunk[-1].seq, more=True, head=len(changes), acked=0
                )
                result = await central_db.apply_page(conn, store, page, NOW_MS)
                assert result.quarantined == 0
    finally:
        await conn.close()


@pytest.fixture
async def db(central_dsn: str) -> AsyncIterator[CentralDb]:
    central = CentralDb(central_dsn)
    await central.open()
    yield central
    await central.close()


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "chain.key"
    generate_key(path)
    return path


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` (hidden ones too) with its sha256: "byte for byte"."""
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file()
        else "dir"
        for p in sorted(directory.rglob("*"))
    }


async def test_a_retrain_publishes_an_experiment_the_store_accepts(
    central_dsn: str, db: CentralDb, simulation: HouseholdSimulation, key: Path, tmp_path: Path
) -> None:
    await load_warehouse(central_dsn, simulation)
    bundles, models = tmp_path / "bundles", tmp_path / "candidates"
    private = load_private_key(key)
    # The chain's current models: the shipped ones, published as model v1.
    publish_bundle(private, "model", 1, TRAINED_DIR, bundles)
    before = snapshot(bundles)
    # Not worse within wide tolerances: a candidate from ~100 simulated households is a little worse
    # than models trained on 2,000 (the next test); this one checks the publishing path.
    policy = RetrainPolicy(recall_tolerance=0.2, brier_tolerance=0.1)

    report = await retrain(db.run, bundles, private, CUTOFF, models_dir=models, policy=policy, now_ms=NOW_MS)

    assert report.decision == "published", report.reason
    assert report.current == "model bundle v1"
    assert report.households == pytest.approx(HOUSEHOLDS * 0.9, abs=12)
    assert report.anonymous_baskets > 0
    assert report.households_without_consent >= HOUSEHOLDS // 10 - 2
    assert report.test_days == 24
    assert report.test_baskets > 0
    assert report.candidate_figures is not None
    assert report.current_figures is not None
    assert 0 < report.candidate_figures.recall_at_10 <= 1
    assert 0 < report.current_figures.brier_7d < 1
    assert report.experiment_id is not None
    assert report.experiment_id.startswith("retrain-2026-09-07-")
    assert report.bundle_version == 1
    # Central's bundle directory: model v1 as it was, plus experiment v1, signed by the chain's key.
    after = snapshot(bundles)
    assert {k: v for k, v in after.items() if not k.startswith("experiment")} == before
    manifest = next(m for m in latest_bundles(bundles) if m.kind == "experiment")
    verify_manifest(manifest, load_public_key(public_key_hex(private)))
    blob = bundles / "experiment" / "1" / "bundle.tar.gz"
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == manifest.sha256
    unpacked = tmp_path / "unpacked"
    safe_extract(blob, unpacked, max_bytes=1 << 26)
    check_experiment(unpacked)  # what the store checks before it activates the bundle
    spec = read_experiment(unpacked)
    assert spec.id == report.experiment_id
    assert spec.rollout
    assert spec.primary_metric == "list_hit_rate"
    assert [(a.key, a.models) for a in spec.arms] == [("control", None), ("challenger", "arms/challenger")]
    assert (spec.start_ms, spec.end_ms) == (NOW_MS, NOW_MS + 42 * 86_400_000)
    card = read_card(unpacked / "arms" / "challenger" / "next_basket" / "card.json")
    assert "chain" in card.source
    assert card.cutoff == "2026-09-07"
    assert card.params["training_households"] == report.households
    assert card.metrics["against_current"]["current"] == "model bundle v1"  # type: ignore[index]
    # What orders the lists on each side is what was measured: the shipped ranker (model v1) and the
    # candidate's own, trained on the chain's purchases and loaded by the store like any model set.
    assert report.no_ranker == ""
    assert report.current_figures.next_basket_ranker_version == load_models().next_basket_ranker.card.version  # type: ignore[union-attr]
    challenger = load_models(unpacked / "arms" / "challenger")
    assert challenger.next_basket_ranker is not None
    ranker_card = challenger.next_basket_ranker.card
    assert report.candidate_figures.next_basket_ranker_version == ranker_card.version
    assert "chain" in ranker_card.source
    assert ranker_card.params["training_households"] == report.households
    frozen = ranker_card.metrics["model"]["recall@10"]  # type: ignore[index]
    assert report.candidate_figures.recall_at_10 == round(frozen, 4)
    assert report.candidate_figures.recall_at_10 != card.metrics["model"]["recall@10"]  # type: ignore[index]
    # The candidate's models stay at central for the promotion, the same as the challenger's.
    assert report.models_dir == str(models / report.experiment_id)
    assert snapshot(Path(report.models_dir)) == snapshot(unpacked / "arms" / "challenger")
    assert sorted(p.name for p in models.iterdir()) == [report.experiment_id]
    # Tomorrow's nightly run leaves the running experiment alone, before training anything.
    published = snapshot(bundles)
    again = await retrain(db.run, bundles, private, CUTOFF, models_dir=models, now_ms=NOW_MS + 86_400_000)
    assert again.decision == "failed"
    assert f"experiment {report.experiment_id} (experiment v1) runs until 2026-11-12" in again.reason
    assert snapshot(bundles) == published


@pytest.mark.slow  # a second training (~30 s on a busy 2-core box)
async def test_a_worse_candidate_publishes_nothing(
    central_dsn: str, db: CentralDb, simulation: HouseholdSimulation, key: Path, tmp_path: Path
) -> None:
    await load_warehouse(central_dsn, simulation)
    bundles, models = tmp_path / "bundles", tmp_path / "candidates"
    publish_bundle(load_private_key(key), "layout", 4, TRAINED_DIR / "next_basket", bundles)
    before = snapshot(bundles)

    report = await retrain(db.run, bundles, load_private_key(key), CUTOFF, models_dir=models, now_ms=NOW_MS)

    assert report.decision == "worse", report.reason
    assert report.current == "shipped models"  # no model bundle: the models shipped in the package
    assert "Recall@10" in report.reason or "Brier" in report.reason
    assert report.experiment_id is None
    assert report.bundle_version is None
    assert report.models_dir is None
    assert snapshot(bundles) == before
    assert not models.exists()


FAILURES = [
    (date(2026, 3, 1), "UTC", "--cutoff 2026-03-01: no purchases of consenting households before it"),
    (date(2026, 7, 1), "UTC", "--cutoff 2026-07-01: need 112 days of purchases before it, found 58"),
    (
        date(2026, 9, 25),
        "UTC",
        "--cutoff 2026-09-25: need 14 days of purchases after it to evaluate on, found 6",
    ),
    (CUTOFF, "Mars/Olympus", "--timezone 'Mars/Olympus': not an IANA time zone"),
]


async def test_a_failed_run_leaves_the_bundle_directory_as_it_was(
    central_dsn: str, db: CentralDb, simulation: HouseholdSimulation, key: Path, tmp_path: Path
) -> None:
    await load_warehouse(central_dsn, simulation)
    bundles = tmp_path / "bundles"
    publish_bundle(load_private_key(key), "model", 2, TRAINED_DIR, bundles)
    before = snapshot(bundles)
    for cutoff, timezone, reason in FAILURES:
        report = await retrain(
            db.run,
            bundles,
            load_private_key(key),
            cutoff,
            models_dir=tmp_path / "m",
            timezone=timezone,
            now_ms=NOW_MS,
        )
        assert report.decision == "failed"
        assert reason in report.reason
        assert snapshot(bundles) == before
        assert not (tmp_path / "m").exists()


async def test_too_few_consenting_households_publish_nothing(
    central_dsn: str, db: CentralDb, simulation: HouseholdSimulation, key: Path, tmp_path: Path
) -> None:
    await load_warehouse(central_dsn, simulation, granted=20)
    bundles = tmp_path / "bundles"
    publish_bundle(load_private_key(key), "experiment", 3, TRAINED_DIR, bundles)
    before = snapshot(bundles)

    report = await retrain(
        db.run, bundles, load_private_key(key), CUTOFF, models_dir=tmp_path / "m", now_ms=NOW_MS
    )

    assert report.decision == "failed"
    assert report.households <= 20
    assert f"only {report.households} households with analytics consent bought before it" in report.reason
    assert snapshot(bundles) == before


async def test_only_households_with_analytics_consent_are_read(
    central_dsn: str, db: CentralDb, simulation: HouseholdSimulation
) -> None:
    await load_warehouse(central_dsn, simulation)
    chain = await db.run(lambda conn: read_chain_history(conn, date(2026, 10, 1)))
    consenting = {
        h.household_id for i, h in enumerate(simulation.population.households) if i % NO_CONSENT_EVERY != 0
    }
    assert set(chain.history.households) <= consenting
    assert len(chain.history.households) >= len(consenting) - 12  # late joiners and early churn
    assert chain.households_without_consent >= HOUSEHOLDS // NO_CONSENT_EVERY - 2
    assert chain.anonymous_baskets > 0
    # Two stores' baskets stay two baskets even with the same id; days are UTC days.
    read = {
        int(b)
        for h, b in zip(simulation.household, simulation.basket, strict=True)
        if h % NO_CONSENT_EVERY != 0 and b % 25 != 0
    }
    assert chain.baskets == len(read)
    assert len(set(chain.history.basket.tolist())) == len(read)
    assert 0 <= chain.history.first_day - (START - date(1970, 1, 1)).days < 7
    madrid = await db.run(lambda conn: read_chain_history(conn, date(2026, 10, 1), timezone="Europe/Madrid"))
    assert madrid.history.n_lines == chain.history.n_lines
    assert not (madrid.history.minute == chain.history.minute).all()


def test_the_cli_reports_a_failed_run_as_json_and_exits_2(
    tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str], central_dsn: str
) -> None:
    config = tmp_path / "central.toml"
    config.write_text(f'[central]\ndsn = "{central_dsn}"\nbundle_dir = "bundles"\n')
    code = cli.main(
        ["retrain", "--config", str(config), "--key", str(key), "--cutoff", "2026-09-07", "--json"]
    )
    assert code == 2
    report = msgspec.json.decode(capsys.readouterr().out, type=RetrainReport)
    assert report.decision == "failed"
    assert "no purchases" in report.reason
    assert not (tmp_path / "bundles").exists()


def test_the_cli_names_a_missing_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "central.toml"
    config.write_text('[central]\nbundle_dir = "bundles"\n')
    missing = tmp_path / "nope.key"
    code = cli.main(["retrain", "--config", str(config), "--key", str(missing), "--cutoff", "2026-09-07"])
    assert code == 2
    assert str(missing) in capsys.readouterr().err
