"""Compaction keeps the outbox bounded without losing anything that matters: raw sensor readings become
per-device per-minute aggregates with new seqs; purchases and everything else are never touched; central,
even holding some of the raw rows already, ends with exact totals."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from edge.demo.broker import MosquittoBroker
from sync.central import Central
from sync.client import StoreClient
from sync.compaction import CompactionPolicy, compact_chunk
from sync.errors import TransportError
from sync.outbox import OutboxEntry, status
from tests.conftest import run_daemon
from tests.sync.sync_helpers import (
    Message,
    add_changes,
    apublish_all,
    central_totals,
    count,
    day_of_traffic,
    pg_count,
    purchase_entry,
    reading_entry,
    store_db,
    wait_for,
)
from tests.sync.test_sync_central import central_config, edge_status, store_config

MINUTE = 60_000


def compact_all(
    conn: sqlite3.Connection, policy: CompactionPolicy, now_ms: int, *, for_size: bool = False
) -> int:
    folded = 0
    conn.execute("BEGIN IMMEDIATE")
    while not (step := compact_chunk(conn, policy, now_ms, for_size=for_size)).done:
        folded += step.folded
    conn.execute("COMMIT")
    return folded


def rows(conn: sqlite3.Connection) -> list[tuple[int, str, dict[str, Any]]]:
    return [
        (s, k, json.loads(b)) for s, k, b in conn.execute("SELECT seq, kind, body FROM outbox ORDER BY seq")
    ]


def test_old_raw_readings_become_minute_aggregates_and_nothing_else_is_touched(tmp_path: Path) -> None:
    conn = store_db(tmp_path / "s.db")
    old = [
        reading_entry(
            "shelf_event", "shelf-A1-1", 10 * MINUTE + 5_000, 1, shelf="A1-1", action="pick", count=2
        ),
        reading_entry(
            "shelf_event", "shelf-A1-1", 10 * MINUTE + 9_000, 2, shelf="A1-1", action="put", count=1
        ),
        reading_entry(
            "shelf_event", "shelf-A1-1", 10 * MINUTE + 50_000, 3, shelf="A1-1", action="pick", count=3
        ),
        reading_entry("shelf_weight", "shelf-A1-1", 10 * MINUTE + 1_000, 4, shelf="A1-1", grams=900.0),
        reading_entry("shelf_weight", "shelf-A1-1", 10 * MINUTE + 30_000, 5, shelf="A1-1", grams=700.0),
        reading_entry("shelf_weight", "shelf-A1-1", 11 * MINUTE + 1_000, 6, shelf="A1-1", grams=650.0),
        reading_entry(
            "footfall",
            "footfall-entrance",
            10 * MINUTE,
            1,
            zone="entrance",
            entered=4,
            exited=1,
            interval_s=60.0,
        ),
        reading_entry(
            "footfall",
            "footfall-entrance",
            10 * MINUTE + 59_999,
            2,
            zone="entrance",
            entered=3,
            exited=5,
            interval_s=60.0,
        ),
        reading_entry("fridge_temperature", "fridge-F1", 10 * MINUTE + 2_000, 1, unit="F1", celsius=4.0),
    ]
    add_changes(conn, old[:5], created_ms=1_000)
    add_changes(
        conn,
        [purchase_entry("b1", 12.5), OutboxEntry("device_status", "shelf-A1-1", '{"online":true}')],
        created_ms=1_000,
    )
    add_changes(conn, old[5:], created_ms=2_000)
    add_changes(
        conn, [OutboxEntry("consent", "hh-1", '{"purpose":"analytics","granted":false}')], created_ms=2_000
    )
    add_changes(
        conn,
        [reading_entry("shelf_weight", "shelf-A1-2", 99 * MINUTE, 1, shelf="A1-2", grams=1.0)],
        created_ms=50_000,
    )
    before = status(conn)
    head_before = before.last_seq

    folded = compact_all(conn, CompactionPolicy(max_bytes=1 << 30, max_age_ms=10_000), now_ms=30_000)

    assert folded == 9  # every raw reading created before the cutoff (20 s), not the young one
    after = rows(conn)
    kinds = Counter(k for _, k, _ in after)
    assert kinds == Counter(
        {"reading_aggregate": 5, "purchase": 1, "device_status": 1, "consent": 1, "reading": 1}
    )
    aggregates = [(s, b) for s, k, b in after if k == "reading_aggregate"]
    assert all(s > head_before for s, _ in aggregates)  # new seqs: central's cursor only moves forward
    by_key = {(b["type"], b["minute_ms"]): b for _, b in aggregates}
    events = by_key[("shelf_event", 10 * MINUTE)]
    assert (events["picks"], events["puts"], events["n"], sorted(events["replaces"])) == (5, 1, 3, [1, 2, 3])
    weight = by_key[("shelf_weight", 10 * MINUTE)]
    assert (weight["n"], weight["min"], weight["max"], weight["sum"], weight["last"]) == (
        2,
        700.0,
        900.0,
        1600.0,
        700.0,
    )
    assert by_key[("shelf_weight", 11 * MINUTE)]["n"] == 1
    people = by_key[("footfall", 10 * MINUTE)]
    assert (people["entered"], people["exited"], people["subject"]) == (7, 6, "entrance")
    assert by_key[("fridge_temperature", 10 * MINUTE)]["last"] == 4.0
    replaced = sorted(seq for _, b in aggregates for seq in b["replaces"])
    assert len(replaced) == 9
    assert not set(replaced) & {s for s, _, _ in after}
    current = status(conn)
    assert (current.compacted_rows, current.aggregates_written, current.rows) == (9, 5, 9)
    assert current.pending_bytes < before.pending_bytes + 2000  # totals still exact (kept in bulk)
    # nothing more to do: a second pass is a no-op
    assert compact_all(conn, CompactionPolicy(max_bytes=1 << 30, max_age_ms=10_000), now_ms=30_000) == 0
    conn.close()


def test_past_the_size_bound_young_readings_are_compacted_but_purchases_never(tmp_path: Path) -> None:
    conn = store_db(tmp_path / "s.db")
    add_changes(conn, [purchase_entry(f"b{i}", float(i)) for i in range(200)], created_ms=100)
    add_changes(
        conn,
        [
            reading_entry("shelf_weight", f"shelf-A1-{i % 5}", MINUTE + i, i, shelf="A1-1", grams=float(i))
            for i in range(3000)
        ],
        created_ms=1_000,
    )
    before = status(conn)
    policy = CompactionPolicy(max_bytes=before.pending_bytes // 2, max_age_ms=10**12)
    assert policy.over_bound(before, 1_000)
    assert compact_all(conn, policy, now_ms=1_000, for_size=True) == 3000
    after = status(conn)
    assert after.pending_bytes < policy.max_bytes * policy.low_water
    assert count(tmp_path / "s.db", "SELECT count(*) FROM outbox WHERE kind = 'purchase'") == 200

    # only purchases left over the bound: nothing is dropped, the outbox stays over its bound
    only = store_db(tmp_path / "p.db")
    add_changes(only, [purchase_entry(f"b{i}", 1.0) for i in range(500)], created_ms=100)
    tiny = CompactionPolicy(max_bytes=1000, max_age_ms=1)
    assert compact_all(only, tiny, now_ms=10**9, for_size=True) == 0
    assert status(only).rows == 500
    assert tiny.over_bound(status(only), 10**9)
    only.close()
    conn.close()


def truth(messages: list[Message]) -> Counter[str]:
    out: Counter[str] = Counter()
    for m in messages:
        body = json.loads(m.payload)
        if "/pos/" in m.topic:
            out["purchases"] += 1
            continue
        out["sensor_readings"] += 1
        if m.topic.endswith("/event"):
            out["picks" if body["action"] == "pick" else "puts"] += body["count"]
        elif "/footfall/" in m.topic:
            out["people_in"] += body["in"]
            out["people_out"] += body["out"]
    return out


@pytest.mark.integration
async def test_central_stays_exact_when_the_store_compacts_rows_it_already_pulled(
    tmp_path: Path, broker: MosquittoBroker, monkeypatch: pytest.MonkeyPatch, central_dsn: str
) -> None:
    messages = day_of_traffic(1500, seed=31, store="s1")
    acks = {"allowed": False}
    real_ack = StoreClient.ack

    async def gated_ack(self: StoreClient, through: int, feed: str | None) -> Any:
        if not acks["allowed"]:
            raise TransportError("ack lost (simulated)")
        return await real_ack(self, through, feed)

    monkeypatch.setattr(StoreClient, "ack", gated_ack)
    config = store_config(tmp_path, broker, "s1")
    text = config.read_text().replace(
        "[sync]\n", "[sync]\noutbox_max_age_s = 1.0\ncompact_interval_s = 0.2\n"
    )
    config.write_text(text)
    async with run_daemon(config) as edge:
        db = edge.config.path(edge.config.database.path)
        await apublish_all(broker.port, messages[:700])
        await wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 700, what="first part stored")
        async with Central(
            central_config(tmp_path, central_dsn, {"s1": edge.url}, page_limit=100)
        ) as central:
            # central commits everything it can see, but no ack gets through
            await wait_for(lambda: central.pullers["s1"].applied >= 700, what="central pulled the first part")
            await apublish_all(broker.port, messages[700:])
            await wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 1500, what="all stored")
            # ... and the store, whose outbox is over its age bound, compacts what central already has
            await wait_for(
                lambda: count(db, "SELECT compacted_rows FROM sync_state") >= 1000, what="compacted"
            )
            acks["allowed"] = True
            await wait_for(
                lambda: (
                    count(db, "SELECT acked_seq FROM sync_state")
                    == count(db, "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'")
                ),
                what="central caught up",
            )
            status_now = await edge_status(edge.url)
            assert status_now["compacted_rows"] > 0
            assert status_now["aggregates_written"] > 0
    totals = central_totals(central_dsn, "s1")
    superseded = pg_count(
        central_dsn, "SELECT count(*) FROM changes WHERE kind = 'superseded' AND body IS NULL"
    )
    expected = truth(messages)
    assert {k: totals.get(k, 0) for k in expected} == dict(expected)
    assert superseded > 0  # some raw rows central held were replaced by their aggregates, not counted twice
