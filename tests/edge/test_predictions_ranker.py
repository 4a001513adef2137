"""Serving the next-basket ranker in the prediction service: a real SQLite store seeded with simulated
weeks of loyalty purchases (every household consenting), the real service with its read threads, writer
and executor, real onnxruntime on the shipped models. The ranker's scores in a nightly run equal the
offline `models` path's on the same purchases read straight from the tables; the neighbour refresh equals
a brute-force full matrix; the lists follow the ranker; without the ranker's bundle the pointwise model
orders them, and the log says which one serves."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.config import load_config
from edge.customers.privacy import Pseudonymiser
from edge.demo.service import seed_demo_history
from edge.metrics import IngestMetrics
from edge.predictions.clock import StoreClock
from edge.predictions.ranker import read_store_lines
from edge.predictions.scoring import RankedCandidates, lines_history, local_day, rank_candidates
from edge.predictions.service import PredictionService
from edge.predictions.store_read import StoreRead, read_store
from edge.predictions.tables import MS_PER_DAY, PREDICTION_COLUMNS, HouseholdLines, load_lines_cached
from edge.store.apply import BatchApplier
from edge.store.db import ReadThread, open_store
from edge.store.writer import StoreWriter
from models.basket_baselines import tifu_vectors
from models.basket_protocol import basket_sequences
from models.features import summarise
from models.history import PurchaseHistory, make_history
from models.inference import RANKER_DIR, TRAINED_DIR, StoreModels, load_models
from models.next_basket import candidates
from models.ranker_features import ranker_groups
from sensors.planogram import load_planogram
from tests.conftest import PSEUDONYM_KEY, write_config

HOUSEHOLDS, WEEKS = 160, 30
LIST_LIMIT = 10


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded store database, every linked household consenting to personalisation."""
    directory = tmp_path_factory.mktemp("ranker-store")
    config = load_config(write_config(directory, None, store={"timezone": "UTC"}))
    seed_demo_history(config, households=HOUSEHOLDS, weeks=WEEKS, seed=5)
    db = directory / "store.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO consents (household, purpose, granted, updated_ms) SELECT DISTINCT household,"
            " 'personalisation', 1, 0 FROM purchases WHERE household IS NOT NULL"
        )
    conn.close()
    return db


@asynccontextmanager
async def service(
    tmp_path: Path,
    seeded: Path,
    models: StoreModels,
    clock: StoreClock | None = None,
    **settings: object,
) -> AsyncIterator[PredictionService]:
    """The prediction service on a copy of the seeded store, with its writer running."""
    db = tmp_path / "store.db"
    shutil.copy(seeded, db)
    config = load_config(write_config(tmp_path, None, store={"timezone": "UTC"}, models=settings))
    applier = BatchApplier(
        load_planogram(config.path(config.store.planogram)), Pseudonymiser(PSEUDONYM_KEY.encode())
    )
    writer = StoreWriter(db, applier, IngestMetrics())
    await writer.open()
    task = asyncio.create_task(writer.run())
    svc = PredictionService(config, db, writer, IngestMetrics(), models, clock or StoreClock("UTC"))
    try:
        yield svc
    finally:
        await svc.close()
        await writer.stop()
        await task
        await writer.close()


def offline_history(db: Path) -> PurchaseHistory:
    """The store's loyalty purchases straight from the tables (not the packed history), as `models` reads
    a history: store-local (UTC) days and minutes, a basket per purchase."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT p.household, i.category, p.ts_ms, p.id, i.qty, i.unit_price FROM purchases p"
            " JOIN purchase_items i ON i.purchase_id = p.id WHERE p.household IS NOT NULL"
            " AND i.category IS NOT NULL AND i.qty > 0 AND i.unit_price >= 0"
        ).fetchall()
    conn.close()
    names, cats = sorted({r[0] for r in rows}), sorted({r[1] for r in rows})
    h_code, c_code = {h: i for i, h in enumerate(names)}, {c: i for i, c in enumerate(cats)}
    ts = np.array([r[2] for r in rows], dtype=np.int64)
    columns = {
        "household": np.array([h_code[r[0]] for r in rows]),
        "category": np.array([c_code[r[1]] for r in rows]),
        "day": ts // MS_PER_DAY,
        "minute": (ts % MS_PER_DAY) // 60_000,
        "basket": np.array([r[3] for r in rows]),
        "qty": np.array([r[4] for r in rows], dtype=np.float64),
        "price": np.array([r[5] for r in rows], dtype=np.float64),
        "promo": np.zeros(len(rows), dtype=bool),
    }
    return make_history(names, cats, columns)


async def served_ranking(svc: PredictionService, db: Path) -> tuple[PurchaseHistory, RankedCandidates]:
    """What a nightly scoring step computes for every household (the service's own context, with the
    ranker's state it refreshed), through `edge.predictions.scoring.rank_candidates`."""
    now = svc.clock.now_ms()
    reads = ReadThread(db, "test-reader")
    try:
        categories, lines = await reads.run(lambda c: read_store_lines(c, now - 365 * MS_PER_DAY))
    finally:
        await reads.close()
    ctx = await svc._context(now)
    assert ctx.categories == categories
    history = lines_history(lines, categories, 0)
    today = local_day(now, 0)
    assert history.day.max() < today  # seeded until yesterday: every origin is today
    return history, rank_candidates(svc.models, history, today, ctx)


def keyed(
    history: PurchaseHistory, household: np.ndarray, category: np.ndarray, values: np.ndarray
) -> dict[tuple[str, str], float]:
    return {
        (history.households[h], history.categories[c]): float(v)
        for h, c, v in zip(household.tolist(), category.tolist(), values.tolist(), strict=True)
    }


async def test_served_ranker_scores_equal_the_offline_path(
    tmp_path: Path, seeded: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models = load_models(TRAINED_DIR)
    ranker = models.next_basket_ranker
    assert ranker is not None
    caplog.set_level(logging.INFO, logger="edge.predictions.ranker")
    async with service(tmp_path, seeded, models) as svc:
        report = await svc.full_rescore()
        assert report.households > 100
        state = svc.ranker.state
        assert state is not None
        served_history, served = await served_ranking(svc, tmp_path / "store.db")
    today = state.until_day
    # Offline: the models package on the purchases read from the tables, as `models evaluate` would.
    history = offline_history(tmp_path / "store.db")
    stats = summarise(history, today)
    cands = candidates(stats, np.arange(len(history.households)))
    groups = ranker_groups(history, stats, cands, float(today), ranker.tifu, ranker.groups)
    offline = ranker.score(np.hstack([groups[g] for g in ranker.groups]).astype(np.float32))
    theirs = groups["base"][:, 0] > 0  # n_purchases: the household's own categories
    expected = keyed(history, cands.household[theirs], cands.category[theirs], offline[theirs])
    mine = served.features[:, 0] > 0  # the ranker scores only those (the lists hold nothing else)
    got = keyed(served_history, served.cands.household[mine], served.cands.category[mine], served.order[mine])
    assert np.all(served.order[~mine] == -np.inf)
    assert len(got) > 1000
    assert got.keys() == expected.keys()
    difference = max(abs(got[key] - expected[key]) for key in expected)
    assert difference <= 1e-6
    assert len(set(np.round(offline, 6))) > 100  # scores that order, not a constant
    assert not np.allclose(served.order, served.probability)  # the ranker, not the pointwise P
    served_logs = [r for r in caplog.records if r.getMessage() == "next_basket_served"]
    assert [getattr(r, "model", None) for r in served_logs][-1:] == ["ranker"]
    assert getattr(served_logs[-1], "version", None) == ranker.card.version


async def test_neighbour_refresh_equals_a_brute_force_full_matrix(tmp_path: Path, seeded: Path) -> None:
    models = load_models(TRAINED_DIR)
    ranker = models.next_basket_ranker
    assert ranker is not None
    assert ranker.tifu.neighbours < HOUSEHOLDS - 1
    async with service(tmp_path, seeded, models) as svc:
        state = await svc.ranker.refresh(models, svc.clock.now_ms())
        again = await svc.ranker.refresh(models, svc.clock.now_ms())
    assert state is not None
    assert again is state
    history = offline_history(tmp_path / "store.db")
    assert state.households == history.households
    t = ranker.tifu
    columns = [state.categories.index(c) for c in history.categories]
    vectors = tifu_vectors(
        basket_sequences(history, state.until_day), t.group_size, t.within_decay, t.group_decay, t.grouping
    )
    np.testing.assert_allclose(state.vectors[:, columns], vectors, rtol=0, atol=1e-12)
    # Brute force: the whole households x households float64 cosine matrix at once.
    norm = np.linalg.norm(vectors, axis=1)
    unit = vectors / np.maximum(norm, 1e-12)[:, None]
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    similarity[:, norm == 0] = -np.inf
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, : t.neighbours]
    means = vectors[nearest].mean(axis=1)
    has = norm > 0
    np.testing.assert_allclose(state.neighbour_mean[:, columns][has], means[has], rtol=0, atol=1e-12)


def listed(db: Path) -> dict[str, set[str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT household, category FROM predictions WHERE list_rank IS NOT NULL"
        ).fetchall()
    conn.close()
    out: dict[str, set[str]] = {}
    for household, category in rows:
        out.setdefault(household, set()).add(category)
    return out


def top_own(ranked: RankedCandidates, history: PurchaseHistory, by: np.ndarray) -> dict[str, set[str]]:
    """Per household: its own categories (bought before) with the `LIST_LIMIT` highest ``by``."""
    own = ranked.features[:, 0] > 0
    out: dict[str, set[str]] = {}
    for q in np.unique(ranked.cands.query):
        rows = np.flatnonzero((ranked.cands.query == q) & own)
        best = rows[np.argsort(-by[rows], kind="stable")[:LIST_LIMIT]]
        name = history.households[int(ranked.cands.household[rows[0]])]
        out[name] = {history.categories[int(c)] for c in ranked.cands.category[best]}
    return out


@pytest.mark.parametrize("with_ranker", [True, False])
async def test_the_lists_follow_the_served_model(
    tmp_path: Path, seeded: Path, caplog: pytest.LogCaptureFixture, with_ranker: bool
) -> None:
    """With the ranker's bundle the lists hold each household's top own categories by the ranker; without
    it (a model set of the three models only) by the pointwise P, as before; the log says which."""
    directory = tmp_path / "models"
    ignore = shutil.ignore_patterns("__pycache__", *(() if with_ranker else (RANKER_DIR,)))
    shutil.copytree(TRAINED_DIR, directory, ignore=ignore)
    models = load_models(directory)
    assert (models.next_basket_ranker is not None) == with_ranker
    caplog.set_level(logging.INFO, logger="edge.predictions.ranker")
    async with service(tmp_path, seeded, models) as svc:
        await svc.full_rescore()
        assert (svc.ranker.state is not None) == with_ranker
        history, ranked = await served_ranking(svc, tmp_path / "store.db")
    by_ranker = top_own(ranked, history, ranked.order)
    by_probability = top_own(ranked, history, ranked.probability)
    assert listed(tmp_path / "store.db") == (by_ranker if with_ranker else by_probability)
    # With the ranker the two orders differ (so the check above tells them apart); without, one order.
    assert (by_ranker != by_probability) == with_ranker
    served = [getattr(r, "model", None) for r in caplog.records if r.getMessage() == "next_basket_served"]
    assert served[-1:] == (["ranker"] if with_ranker else ["pointwise"])


async def test_the_state_is_recomputed_when_ranker_refresh_days_old(tmp_path: Path, seeded: Path) -> None:
    models = load_models(TRAINED_DIR)
    now_s = [time.time()]
    clock = StoreClock("UTC", now=lambda: now_s[0])
    async with service(tmp_path, seeded, models, clock, ranker_refresh_days=3) as svc:
        first = await svc.ranker.refresh(models, clock.now_ms())
        assert first is not None
        now_s[0] += 2 * 86_400
        assert await svc.ranker.refresh(models, clock.now_ms()) is first  # two days old: kept
        await svc.full_rescore()
        assert svc.ranker.state is first
        now_s[0] += 86_400
        await svc.full_rescore()  # three days old: recomputed before the rescore
        third = svc.ranker.state
    assert third is not None
    assert third is not first
    assert third.until_day == first.until_day + 3


def predictions(db: Path) -> dict[tuple[str, str], tuple[object, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(f"SELECT {', '.join(PREDICTION_COLUMNS)} FROM predictions").fetchall()
    conn.close()
    return {(str(r[0]), str(r[1])): tuple(r) for r in rows}


async def test_the_full_rescore_scores_from_the_refresh_read_as_from_its_own(
    tmp_path: Path, seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after a neighbour refresh the full rescore's steps take their lines and history from the
    refresh's read (they read nothing but their queue entries) and write the same rows as steps that read
    their own (the refresh's read withheld), for several steps."""

    models = load_models(TRAINED_DIR)
    fixed = time.time()
    clock = StoreClock("UTC", now=lambda: fixed)
    step_reads: list[int] = []

    def counted(*args: Any) -> HouseholdLines:
        step_reads.append(1)
        return load_lines_cached(*args)

    monkeypatch.setattr("edge.predictions.service.load_lines_cached", counted)  # the steps' reads
    got: dict[str, dict[tuple[str, str], tuple[object, ...]]] = {}
    reads: dict[str, int] = {}
    for kept in (True, False):
        name = "kept" if kept else "read"
        directory = tmp_path / name
        directory.mkdir()
        async with service(directory, seeded, models, clock, batch_households=40) as svc:
            if not kept:
                monkeypatch.setattr(svc.ranker, "take_read", lambda: None)
            step_reads.clear()
            report = await svc.full_rescore()
            assert report.households > 100
            assert svc.ranker.state is not None
            reads[name] = len(step_reads)
        got[name] = predictions(directory / "store.db")
    assert reads == {"kept": 0, "read": -(-report.households // 40)}
    assert len(got["kept"]) > 1000
    assert got["kept"] == got["read"]


async def test_a_step_reads_its_own_once_the_store_changed(tmp_path: Path, seeded: Path) -> None:
    """`StoreRead.step` equals `load_lines_cached` (and `lines_history`) for a run of households, drops
    lines that left a later window (then builds no history), and is None for households not a run of the
    read's, for another category table and once a purchase landed after the read."""
    db = tmp_path / "store.db"
    shutil.copy(seeded, db)
    now = int(time.time() * 1000)
    since = now - 365 * MS_PER_DAY
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        categories, lines, token = read_store(conn, since)
        assert token is not None
        store = StoreRead.build(token, since, 0, categories, lines, lines_history(lines, categories, 0))
        names = list(lines.households[10:50])
        step = store.step(conn, names, categories, since, 0)
        assert step is not None
        mine, history = step
        expected = load_lines_cached(conn, names, categories, since)
        assert history is not None
        assert_same_lines(mine, expected)
        assert history.sha256() == lines_history(expected, categories, 0).sha256()  # tables and columns
        later = int(np.sort(mine.ts_ms)[mine.ts_ms.size // 2])  # half of the step's lines left the window
        step = store.step(conn, names, categories, later, 0)
        assert step is not None
        assert step[1] is None
        assert_same_lines(step[0], load_lines_cached(conn, names, categories, later))
        assert store.step(conn, [*names[:5], *names[6:]], categories, since, 0) is None
        assert store.step(conn, names, categories[1:], since, 0) is None
        conn.execute(
            "INSERT INTO purchases (reading_id, lane, basket_id, household, ts_ms, total, lines)"
            " SELECT max(reading_id) + 1, 'lane-1', 'new', ?, ?, 1.0, 1 FROM purchases",
            (names[0], now),
        )
        assert store.step(conn, names, categories, since, 0) is None
    finally:
        conn.close()


def assert_same_lines(got: HouseholdLines, expected: HouseholdLines) -> None:
    assert got.households == expected.households
    assert got.queued == expected.queued
    for column in ("household", "category", "ts_ms", "basket", "qty", "price"):
        np.testing.assert_array_equal(getattr(got, column), getattr(expected, column), err_msg=column)
        assert getattr(got, column).dtype == getattr(expected, column).dtype, column


async def test_a_store_without_purchases_serves_the_pointwise_model_without_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A new store (no purchase yet) has nothing for the neighbours: not an error, the pointwise model
    serves, and the first refresh after purchases arrive computes the state."""
    empty = tmp_path / "empty" / "store.db"
    empty.parent.mkdir()
    open_store(empty).close()
    models = load_models(TRAINED_DIR)
    assert models.next_basket_ranker is not None
    caplog.set_level(logging.INFO, logger="edge.predictions.ranker")
    async with service(tmp_path, empty, models) as svc:
        assert await svc.ranker.refresh(models, StoreClock("UTC").now_ms()) is None
        await svc.full_rescore()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    messages = [r.getMessage() for r in caplog.records]
    assert "ranker_waiting_for_purchases" in messages
    served = [r for r in caplog.records if r.getMessage() == "next_basket_served"]
    assert served
    assert served[-1].model == "pointwise"  # type: ignore[attr-defined]
