"""The single writer: batching, ack-after-commit, poisoned items, drain on stop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from edge.customers.privacy import Pseudonymiser
from edge.metrics import IngestMetrics
from edge.store.apply import BatchApplier, Fate, load_planogram_job
from edge.store.writer import StoreWriter
from sensors.planogram import load_planogram
from sensors.schemas import PosItem, PosTransaction, ShelfWeight

PLANOGRAM = load_planogram(
    Path(__file__).resolve().parents[2] / "simulators" / "demo_store" / "planogram.toml"
)
T0 = 1_795_514_400_000


class ExplodingApplier(BatchApplier):
    """Fails on one specific reading, like a bug triggered by one odd message."""

    def _shelf_weight(self, conn: sqlite3.Connection, r: ShelfWeight) -> None:
        if r.seq == 13:
            raise ValueError("unlucky reading")
        super()._shelf_weight(conn, r)


async def start(
    tmp_path: Path, applier_cls: type[BatchApplier] = BatchApplier, **kwargs: float
) -> tuple[StoreWriter, asyncio.Task[None], IngestMetrics]:
    metrics = IngestMetrics()
    writer = StoreWriter(
        tmp_path / "w.db", applier_cls(PLANOGRAM, Pseudonymiser(b"k" * 32)), metrics, **kwargs
    )  # type: ignore[arg-type]
    await writer.open()
    task = asyncio.create_task(writer.run())
    await writer.run_job(load_planogram_job(PLANOGRAM), urgent=True)
    return writer, task, metrics


async def test_acks_run_only_after_the_batch_is_visible_to_other_connections(tmp_path: Path) -> None:
    writer, task, metrics = await start(tmp_path, batch_max=50, batch_wait_s=0.05)
    observer = sqlite3.connect(tmp_path / "w.db")
    seen_at_ack: list[int] = []

    def ack_for(seq: int):
        def ack(_fate: Fate) -> None:
            (count,) = observer.execute("SELECT count(*) FROM readings WHERE seq = ?", (seq,)).fetchone()
            seen_at_ack.append(count)

        return ack

    for seq in range(1, 201):
        await writer.submit(ShelfWeight("shelf-A1-1", "A1-1", seq, T0 + seq, 500.0), ack_for(seq))
    await writer.stop()
    await task
    assert seen_at_ack == [1] * 200
    assert metrics.batch_size.count < 200  # batched, not one commit per message
    assert metrics.stored.value("shelf_weight") == 200
    await writer.close()


async def test_a_poisoned_item_is_quarantined_and_its_batch_mates_commit(tmp_path: Path) -> None:
    writer, task, metrics = await start(tmp_path, ExplodingApplier, batch_max=100, batch_wait_s=0.05)
    acked: list[tuple[int, Fate]] = []
    for seq in (*range(10, 17), 11):  # the last one is a copy of seq 11
        await writer.submit(
            ShelfWeight("shelf-A1-1", "A1-1", seq, T0 + seq, 500.0),
            lambda fate, s=seq: acked.append((s, fate)),
        )
    await writer.stop()
    await task
    await writer.close()
    conn = sqlite3.connect(tmp_path / "w.db")
    stored = [s for (s,) in conn.execute("SELECT seq FROM readings ORDER BY seq")]
    assert stored == [10, 11, 12, 14, 15, 16]
    reason, detail, payload = conn.execute("SELECT reason, detail, payload FROM quarantine").fetchone()
    assert reason == "internal_error"
    assert "unlucky reading" in detail
    assert b'"seq":13' in payload
    # Every item is acked once durable (the poisoned one in quarantine), told what became of it.
    assert sorted(acked) == [
        (10, Fate.STORED),
        (11, Fate.DUPLICATE),
        (11, Fate.STORED),
        (12, Fate.STORED),
        (13, Fate.QUARANTINED),
        *((s, Fate.STORED) for s in (14, 15, 16)),
    ]
    assert metrics.rejected.value("internal_error") == 1


class ExplodingTill(BatchApplier):
    """Fails on a till's basket with an error that quotes the card (as a careless bug would)."""

    def _purchase(self, conn: sqlite3.Connection, r: PosTransaction, *args: object) -> None:
        raise ValueError(f"cannot store basket of {r.loyalty_id}")


async def test_a_poisoned_basket_is_quarantined_without_its_card_number(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer, task, metrics = await start(tmp_path, ExplodingTill, batch_max=100, batch_wait_s=0.05)
    basket = PosTransaction("pos-1", "1", 5, T0, "b-5", (PosItem("1031", 1, 1.5),), 1.5, "LOY-000082")
    await writer.submit(basket)
    await writer.stop()
    await task
    await writer.close()
    conn = sqlite3.connect(tmp_path / "w.db")
    reason, detail, payload = conn.execute("SELECT reason, detail, payload FROM quarantine").fetchone()
    assert reason == "internal_error"
    household = Pseudonymiser(b"k" * 32).household_id("LOY-000082")
    assert detail == f"ValueError: cannot store basket of {household}"
    assert b'"basket_id":"b-5"' in payload
    assert household.encode() in payload
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert not [p.name for p in tmp_path.glob("w.db*") if b"LOY-000082" in p.read_bytes()]
    assert metrics.rejected.value("internal_error") == 1
    (logged,) = [r for r in caplog.records if r.getMessage() == "batch_failed_isolating"]
    assert "ValueError: cannot store basket of hh_" in logged.exc  # type: ignore[attr-defined]
    assert "LOY-000082" not in caplog.text
    assert "LOY-000082" not in str(logged.__dict__)


async def test_stop_commits_everything_still_queued(tmp_path: Path) -> None:
    writer, task, _ = await start(tmp_path, batch_max=7, batch_wait_s=0.0)
    for seq in range(1, 101):
        await writer.submit(ShelfWeight("shelf-A1-1", "A1-1", seq, T0 + seq, 500.0))
    await writer.stop()
    await asyncio.wait_for(task, 10)
    await writer.close()
    (count,) = sqlite3.connect(tmp_path / "w.db").execute("SELECT count(*) FROM readings").fetchone()
    assert count == 100


async def test_every_job_gets_its_own_result_when_batched_with_others(tmp_path: Path) -> None:
    writer, task, _ = await start(tmp_path, batch_max=100, batch_wait_s=0.05)
    await writer.submit(ShelfWeight("shelf-A1-1", "A1-1", 1, T0, 500.0))
    futures = [asyncio.ensure_future(writer.run_job(lambda _conn, n=n: n * 10)) for n in range(5)]
    results = await asyncio.gather(*futures)
    assert results == [0, 10, 20, 30, 40]
    await writer.stop()
    await task
    await writer.close()


async def test_an_urgent_job_does_not_wait_for_the_batch_to_fill(tmp_path: Path) -> None:
    # A batch normally waits up to batch_wait for company; a job someone is waiting on does not.
    writer, task, _ = await start(tmp_path, batch_max=100, batch_wait_s=30.0)
    await writer.submit(ShelfWeight("shelf-A1-1", "A1-1", 1, T0, 500.0))
    ordinary = asyncio.ensure_future(writer.run_job(lambda _conn: "ordinary"))
    await asyncio.sleep(0.3)
    assert not ordinary.done()  # still waiting for the 30 s batch window
    # The urgent job joins that batch and commits it, with the reading and the ordinary job.
    assert await asyncio.wait_for(writer.run_job(lambda _conn: "urgent", urgent=True), 10) == "urgent"
    assert ordinary.result() == "ordinary"
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (1,)
    await writer.stop()
    await task
    await writer.close()
