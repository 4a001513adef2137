"""Suspicious purchases: a till total that disagrees with its lines is stored, synced and flagged."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from edge.customers.privacy import Pseudonymiser
from edge.metrics import IngestMetrics
from edge.store.apply import BatchApplier, Received, load_planogram_job
from edge.store.db import open_store
from edge.store.housekeeping import RetentionJob
from edge.store.quarantine import check_pos_total
from edge.store.reader import StoreReader
from edge.store.writer import StoreWriter
from sensors.planogram import load_planogram
from sensors.schemas import PosItem, PosTransaction

PLANOGRAM = load_planogram(
    Path(__file__).resolve().parents[2] / "simulators" / "demo_store" / "planogram.toml"
)
PSEUDONYMS = Pseudonymiser(b"k" * 32)
T0 = 1_795_514_400_000


def till(total: float, *items: tuple[float, float], seq: int = 1) -> PosTransaction:
    lines = tuple(PosItem(f"10{i:02d}", qty, price) for i, (qty, price) in enumerate(items, start=1))
    return PosTransaction("pos-1", "1", seq, T0 + seq, f"b-{seq}", lines, total, "LOY-000082")


@pytest.mark.parametrize(
    ("total", "items", "flagged"),
    [
        (1.50, [(1, 1.50)], False),
        (999.0, [(1, 1.50)], True),  # the till's total for one item at 1.50
        (0.0, [(1, 1.50)], True),
        (1.55, [(1, 1.50)], False),  # 0.05 of rounding is fine
        (1.57, [(1, 1.50)], True),
        (3.13, [(0.437, 2.99), (1, 1.82)], False),  # a weighed line: 1.30663 + 1.82
        (101.0, [(40, 2.5)], False),  # within 0.05 + 1% of 100
        (102.0, [(40, 2.5)], True),
    ],
)
def test_tolerance_is_rounding_not_more(
    total: float, items: list[tuple[float, float]], flagged: bool
) -> None:
    suspicion = check_pos_total(till(total, *items))
    assert (suspicion is not None) is flagged
    if suspicion is not None:
        assert suspicion.reason == "total_mismatch"
        assert f"{total:.2f}" in suspicion.detail


@pytest.fixture
def store(tmp_path: Path) -> sqlite3.Connection:
    conn = open_store(tmp_path / "store.db")
    BatchApplier(PLANOGRAM, PSEUDONYMS).apply(conn, [Received(load_planogram_job(PLANOGRAM), T0)], T0)
    return conn


def test_a_suspicious_purchase_is_stored_synced_and_flagged_in_its_transaction(
    store: sqlite3.Connection,
) -> None:
    applier = BatchApplier(PLANOGRAM, PSEUDONYMS)
    outcome = applier.apply(
        store, [Received(till(999.0, (1, 1.5), seq=1), T0), Received(till(1.5, (1, 1.5), seq=2), T0)], T0
    )
    assert outcome.stored["pos_transaction"] == 2
    assert outcome.suspicious == {"total_mismatch": 1}
    purchase_id, total = store.execute("SELECT id, total FROM purchases WHERE basket_id = 'b-1'").fetchone()
    assert total == 999.0  # stored as the till sent it
    row = store.execute("SELECT device, kind, reason, detail, purchase_id FROM suspicious").fetchone()
    assert row[:3] == ("pos-1", "pos_transaction", "total_mismatch")
    assert "999.00" in row[3]
    assert "1.50" in row[3]
    assert row[4] == purchase_id
    bodies = [json.loads(b) for (b,) in store.execute("SELECT body FROM outbox WHERE kind = 'purchase'")]
    assert sorted(b["basket_id"] for b in bodies) == ["b-1", "b-2"]  # both still sync
    # A redelivery is a duplicate: no second flag.
    again = applier.apply(store, [Received(till(999.0, (1, 1.5), seq=1), T0)], T0)
    assert again.duplicates == 1
    assert not again.suspicious
    assert store.execute("SELECT count(*) FROM suspicious").fetchone() == (1,)


def test_suspicious_rows_are_bounded(store: sqlite3.Connection) -> None:
    applier = BatchApplier(PLANOGRAM, PSEUDONYMS, quarantine_max_rows=5)
    applier.apply(store, [Received(till(999.0, (1, 1.5), seq=s), T0) for s in range(1, 13)], T0)
    assert store.execute("SELECT count(*) FROM suspicious").fetchone() == (5,)
    store.execute("BEGIN IMMEDIATE")
    deleted = RetentionJob(0, 2)(store)
    store.execute("COMMIT")
    assert deleted["suspicious"] == 3
    assert store.execute("SELECT count(*) FROM purchases").fetchone() == (12,)  # purchases stay


async def test_the_writer_counts_them_and_staff_can_read_them(tmp_path: Path) -> None:
    metrics = IngestMetrics()
    writer = StoreWriter(tmp_path / "w.db", BatchApplier(PLANOGRAM, PSEUDONYMS), metrics)
    await writer.open()
    task = asyncio.create_task(writer.run())
    await writer.run_job(load_planogram_job(PLANOGRAM), urgent=True)
    for seq, total in enumerate((999.0, 1.5, 0.1), start=1):
        await writer.submit(till(total, (1, 1.5), seq=seq))
    await writer.stop()
    await task
    await writer.close()
    assert metrics.suspicious.value("total_mismatch") == 2
    assert 'storeedge_suspicious_total{reason="total_mismatch"} 2' in metrics.registry.render()
    reader = StoreReader(tmp_path / "w.db", "demo", 3)
    try:
        summary = await reader.suspicious()
        assert summary.total == 2
        assert summary.by_reason == {"total_mismatch": 2}
        newest = summary.rows[0]
        assert (newest.lane, newest.basket_id, newest.total) == ("1", "b-3", 0.1)
        assert [r.basket_id for r in (await reader.suspicious("total_mismatch", limit=1)).rows] == ["b-3"]
        assert (await reader.suspicious("other")).rows == []
    finally:
        await reader.close()
