"""Helpers for the sync tests: store databases, a day of store traffic over MQTT, central configs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import paho.mqtt.client as paho

from edge.store.db import open_store
from sensors.planogram import load_planogram
from sync.outbox import OutboxEntry, append
from tests.conftest import DEMO_PLANOGRAM

SYNC_TOKEN = "test-sync-token-0123456789"
PLANOGRAM = load_planogram(DEMO_PLANOGRAM)
MQTT_SHELVES = sorted(s.id for s in PLANOGRAM.shelves.values() if s.transport == "mqtt")
FRIDGES = sorted(PLANOGRAM.fridges)
ZONES = sorted(PLANOGRAM.zones)
LANES = sorted(PLANOGRAM.tills)
SKUS = sorted({s.sku for s in PLANOGRAM.shelves.values()})


def store_db(path: Path) -> sqlite3.Connection:
    """A migrated store database (the daemon's schema) in autocommit mode."""
    return open_store(path)


def add_changes(conn: sqlite3.Connection, entries: list[OutboxEntry], created_ms: int | None = None) -> None:
    conn.execute("BEGIN IMMEDIATE")
    append(conn, created_ms if created_ms is not None else int(time.time() * 1000), entries)
    conn.execute("COMMIT")


def reading_entry(kind: str, device: str, ts_ms: int, seq: int, **fields: Any) -> OutboxEntry:
    """An outbox row shaped like the daemon's for a raw reading (`sensors.schemas` tagged struct JSON)."""
    body = {"type": kind, "device": device, "seq": seq, "ts_ms": ts_ms, **fields}
    return OutboxEntry("reading", device, json.dumps(body, separators=(",", ":")))


def purchase_entry(basket: str, total: float) -> OutboxEntry:
    body = {"lane": "1", "basket_id": basket, "household": None, "ts_ms": 0, "total": total, "items": []}
    return OutboxEntry("purchase", basket, json.dumps(body))


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes


def day_of_traffic(count: int, *, seed: int, end_ms: int | None = None, store: str = "demo") -> list[Message]:
    """``count`` valid messages of every kind, timestamps spread over the 24 h before ``end_ms`` in order:
    a store's day, compressed. Per-device seqs are unique, so every message is a new reading."""
    rng = random.Random(seed)
    end = end_ms if end_ms is not None else int(time.time() * 1000) - 1000
    start = end - 86_400_000
    seqs: dict[str, int] = {}
    out = []
    for n in range(count):
        ts = start + (end - start) * n // max(1, count)
        roll = rng.random()
        if roll < 0.55:
            shelf = rng.choice(MQTT_SHELVES)
            device, topic = f"shelf-{shelf}", f"store/{store}/shelf/{shelf}/weight"
            body: dict[str, Any] = {"grams": round(rng.uniform(0, 5000), 1)}
        elif roll < 0.70:
            shelf = rng.choice(MQTT_SHELVES)
            device, topic = f"shelf-{shelf}", f"store/{store}/shelf/{shelf}/event"
            body = {"action": rng.choice(["pick", "pick", "put"]), "count": rng.randint(1, 3)}
        elif roll < 0.80:
            unit = rng.choice(FRIDGES)
            device, topic = f"fridge-{unit}", f"store/{store}/fridge/{unit}/temperature"
            body = {"celsius": round(rng.uniform(1, 6), 2)}
        elif roll < 0.90:
            zone = rng.choice(ZONES)
            device, topic = f"footfall-{zone}", f"store/{store}/footfall/{zone}"
            body = {"in": rng.randint(0, 9), "out": rng.randint(0, 9), "interval_s": 60}
        else:
            lane = rng.choice(LANES)
            device, topic = f"pos-{lane}", f"store/{store}/pos/{lane}/transaction"
            items = [
                {
                    "sku": rng.choice(SKUS),
                    "qty": rng.randint(1, 3),
                    "unit_price": round(rng.uniform(0.5, 9), 2),
                }
                for _ in range(rng.randint(1, 6))
            ]
            total = round(sum(i["qty"] * i["unit_price"] for i in items), 2)
            body = {
                "basket_id": f"b-{seed}-{n}",
                "items": items,
                "total": total,
                "loyalty_id": f"card-{rng.randint(1, 300)}" if rng.random() < 0.7 else None,
            }
        seqs[device] = seqs.get(device, 0) + 1
        payload = {"ts": ts, "seq": seqs[device], **body}
        out.append(Message(topic, json.dumps(payload).encode()))
    return out


class Publisher(threading.Thread):
    """Publishes messages QoS 1 (paho, its own thread), optionally paced; counts broker PUBACKs."""

    def __init__(
        self, port: int, messages: list[Message], rate_per_s: float | None = None, name: str = "pub"
    ) -> None:
        super().__init__(daemon=True)
        self.port, self.messages, self.rate = port, messages, rate_per_s
        self.client_id = f"sync-test-{name}-{random.randrange(1 << 30)}"
        self.acked = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id)
            client.max_inflight_messages_set(200)
            client.max_queued_messages_set(0)
            client.connect("127.0.0.1", self.port)
            client.loop_start()
            pending = []
            next_at = time.monotonic()
            for m in self.messages:
                pending.append(client.publish(m.topic, m.payload, qos=1))
                if self.rate:
                    next_at += 1.0 / self.rate
                    time.sleep(max(0.0, next_at - time.monotonic()))
            for info in pending:
                info.wait_for_publish(timeout=60)
                self.acked += int(info.is_published())
            client.loop_stop()
            client.disconnect()
        except BaseException as exc:
            self.error = exc


def publish_all(port: int, messages: list[Message]) -> None:
    publisher = Publisher(port, messages)
    publisher.start()
    publisher.join(timeout=120)
    assert publisher.error is None, publisher.error
    assert publisher.acked == len(messages)


def count(db: Path, sql: str, params: tuple[Any, ...] = ()) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(sql, params).fetchone()[0])
    finally:
        conn.close()


async def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout}s")


def wait_for_sync(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout}s")


def pg_rows(dsn: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of a query on central's PostgreSQL, from sync or async tests (its own loop, in a thread)."""

    async def query() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, query()).result()


def pg_count(dsn: str, sql: str, *args: Any) -> int:
    rows = pg_rows(dsn, sql, *args)
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def central_changes(dsn: str, store: str) -> list[tuple[int, str]]:
    """(seq, kind) of every change central holds for ``store``, in arrival order."""
    return [
        (int(seq), str(kind))
        for seq, kind in pg_rows(dsn, "SELECT seq, kind FROM changes WHERE store = $1 ORDER BY id", store)
    ]


def central_totals(dsn: str, store: str) -> dict[str, int]:
    rows = pg_rows(dsn, "SELECT name, value FROM totals WHERE store = $1 AND value != 0", store)
    return {str(name): int(value) for name, value in rows}


def iter_chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def apublish_all(port: int, messages: list[Message]) -> None:
    """`publish_all` off the event loop, so an in-process daemon keeps ingesting meanwhile."""
    await asyncio.to_thread(publish_all, port, messages)
