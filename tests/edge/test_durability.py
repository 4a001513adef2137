"""Nothing acknowledged is lost: kill -9 the daemon mid-stream, restart the broker mid-stream.

Every message below is published QoS 1 and acknowledged by the broker to the publisher. The daemon acks
to the broker only after its batch commits, so after any crash the broker redelivers what was not
committed, and idempotent ingest stores each reading exactly once (and its effects once: the outbox).
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from edge.demo.broker import MosquittoBroker
from tests.conftest import DaemonProcess

pytestmark = pytest.mark.integration
SHELVES = [f"A{a}-{s}" for a in (1, 2, 3, 4, 5, 7, 8) for s in range(1, 6)]


class Publisher(threading.Thread):
    """Publishes `total` weight readings (unique seq per shelf), QoS 1, waiting for every PUBACK."""

    def __init__(
        self, port: int, total: int, rate_per_s: float, first: int = 0, base_ts: int | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.port, self.total, self.interval, self.first = port, total, 1.0 / rate_per_s, first
        self.base_ts = base_ts or int(time.time() * 1000)
        self.acked = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="durability-publisher")
            client.max_inflight_messages_set(100)
            client.connect("127.0.0.1", self.port)
            client.loop_start()
            base_ts = self.base_ts
            pending = []
            next_at = time.monotonic()
            for n in range(self.first, self.first + self.total):
                shelf = SHELVES[n % len(SHELVES)]
                seq = n // len(SHELVES) + 1
                payload = json.dumps({"ts": base_ts + n, "seq": seq, "grams": 1000.0})
                pending.append(client.publish(f"store/demo/shelf/{shelf}/weight", payload, qos=1))
                next_at += self.interval
                time.sleep(max(0.0, next_at - time.monotonic()))
            for info in pending:
                info.wait_for_publish(timeout=60)
                self.acked += int(info.is_published())
            client.loop_stop()
            client.disconnect()
        except BaseException as exc:
            self.error = exc


def stored(db: Path) -> tuple[int, int, int]:
    with sqlite3.connect(db) as conn:
        readings = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
        distinct = conn.execute("SELECT count(DISTINCT device || ':' || seq) FROM readings").fetchone()[0]
        outbox = conn.execute("SELECT count(*) FROM outbox WHERE kind = 'reading'").fetchone()[0]
    return readings, distinct, outbox


def wait_until_stored(db: Path, total: int, timeout: float = 60.0) -> tuple[int, int, int]:
    deadline = time.monotonic() + timeout
    counts = stored(db)
    while counts[0] < total and time.monotonic() < deadline:
        time.sleep(0.2)
        counts = stored(db)
    return counts


def run_kill_cycles(
    daemon: DaemonProcess, broker: MosquittoBroker, total: int, kills: int, seed: int
) -> None:
    rng = random.Random(seed)
    daemon.start()
    publisher = Publisher(broker.port, total, rate_per_s=800)
    publisher.start()
    for _ in range(kills):
        time.sleep(rng.uniform(0.2, total / 800 / kills))
        daemon.kill()
        time.sleep(rng.uniform(0.0, 0.3))
        daemon.start()
    publisher.join(timeout=120)
    assert publisher.error is None, publisher.error
    assert publisher.acked == total
    db = daemon.config.path(daemon.config.database.path)
    readings, distinct, outbox = wait_until_stored(db, total)
    assert (readings, distinct, outbox) == (total, total, total)
    code, _ = daemon.terminate()
    assert code == 0


def test_kill_9_mid_stream_loses_nothing_and_doubles_nothing(
    daemon_process: DaemonProcess, broker: MosquittoBroker
) -> None:
    run_kill_cycles(daemon_process, broker, total=4000, kills=3, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_kill_9_soak(daemon_process: DaemonProcess, broker: MosquittoBroker, seed: int) -> None:
    run_kill_cycles(daemon_process, broker, total=20_000, kills=10, seed=seed)


def test_broker_restart_mid_stream_then_ingestion_resumes(
    daemon_process: DaemonProcess, broker: MosquittoBroker
) -> None:
    daemon_process.start()
    base_ts = int(time.time() * 1000)
    first = Publisher(broker.port, 1500, rate_per_s=1000, base_ts=base_ts)
    first.start()
    first.join(timeout=60)
    assert first.acked == 1500
    broker.stop()
    time.sleep(0.5)
    broker.start()  # same port, same persistence: the daemon's session and queued messages survive
    second = Publisher(broker.port, 1500, rate_per_s=1000, first=1500, base_ts=base_ts)
    second.start()
    second.join(timeout=60)
    assert second.error is None, second.error
    db = daemon_process.config.path(daemon_process.config.database.path)
    readings, distinct, _ = wait_until_stored(db, 3000)
    assert (readings, distinct) == (3000, 3000)
    assert second.acked == 1500
    assert "mqtt_disconnected" in daemon_process.log_path.read_text()
