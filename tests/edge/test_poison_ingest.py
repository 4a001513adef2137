"""Poison messages through a real broker: every malformed input is quarantined and acked, ingest goes on.

Before the decoder was total, one of the four reproductions below raised out of `decode_mqtt`, the MQTT
ingest task died before acking, mosquitto redelivered the message to the restarted task, and ingest
stopped for good. Here each is published with QoS 1 together with a deterministic corpus of byte-mutated
payloads (the default run: a few hundred, a few seconds; `make test-long` runs the big corpus), then one
valid reading. Every malformed input must be quarantined with the reason the decoder gives it, the
valid reading stored, and the MQTT task never restarted nor reconnected.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import sqlite3
import time
from pathlib import Path

import aiomqtt
import pytest

from edge.demo.broker import MosquittoBroker
from sensors.decode import Decoder
from sensors.planogram import load_planogram
from sensors.schemas import Rejection, RejectReason
from tests.conftest import DEMO_PLANOGRAM, aget, ajson, run_daemon, write_config
from tests.sensors.test_decode import POISON
from tests.sensors.test_decode_fuzz import NASTY, mutate

pytestmark = pytest.mark.integration

# The four reproductions of the hardening issue and the deep nesting one, with the reason each must get
# (the decoder's own test has them first in its POISON list).
REPRODUCTIONS: list[tuple[str, bytes, RejectReason]] = POISON[:5]
DEFAULT_CORPUS = 300
LONG_CORPUS = 5000


def _seeds(now_ms: int) -> list[tuple[str, bytes]]:
    def body(value: object) -> bytes:
        return json.dumps(value, ensure_ascii=False).encode()

    basket = {
        "ts": now_ms,
        "seq": 9,
        "basket_id": "L1-caf\u00e9",
        "items": [{"sku": "1031", "qty": 2, "unit_price": 1.09}],
        "total": 2.18,
    }
    return [
        ("store/demo/shelf/A1-1/weight", body({"ts": now_ms, "seq": 41, "grams": 5124.5})),
        ("store/demo/shelf/A1-1/event", body({"ts": now_ms, "seq": 42, "action": "pick", "count": 2})),
        ("store/demo/fridge/F1/temperature", body({"ts": now_ms, "seq": 7, "celsius": 3.8})),
        (
            "store/demo/footfall/entrance",
            body({"ts": now_ms, "seq": 3, "in": 12, "out": 9, "interval_s": 10}),
        ),
        ("store/demo/pos/1/transaction", body(basket)),
        ("store/demo/device/pos-1/status", body({"status": "online", "ts": now_ms})),
        ("store/demo/device/shelf-A1-1/status", b"offline"),
    ]


def _random_ops(rng: random.Random) -> list[tuple[str, int, object]]:
    ops: list[tuple[str, int, object]] = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["flip", "insert", "replace", "delete", "repeat"])
        where = rng.randrange(1 << 16)
        arg: object
        if kind == "flip":
            arg = rng.randrange(1, 256)
        elif kind in ("insert", "replace"):
            arg = rng.choice(NASTY) if rng.random() < 0.6 else rng.randbytes(rng.randint(1, 4))
        else:
            arg = rng.randint(1, 8)
        ops.append((kind, where, arg))
    return ops


def poison_corpus(size: int, now_ms: int, seed: int = 20261204) -> list[tuple[str, bytes, RejectReason]]:
    """The reproductions, then ``size`` byte-mutated payloads the decoder rejects, each with its reason
    (by a decoder with the daemon's limits, at ``now_ms``; mutations that stay valid are dropped)."""
    decoder = Decoder("demo", load_planogram(DEMO_PLANOGRAM), clock=lambda: now_ms / 1000)
    rng = random.Random(seed)
    seeds = _seeds(now_ms)
    corpus = list(REPRODUCTIONS)
    while len(corpus) < len(REPRODUCTIONS) + size:
        topic, payload = rng.choice(seeds)
        mutated = mutate(payload, _random_ops(rng))
        result = decoder.decode_mqtt(topic, mutated)
        if isinstance(result, Rejection):
            corpus.append((topic, mutated, result.reason))
    return corpus


def count(db: Path, sql: str, *args: object) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


async def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.1)


async def _poison_then_valid(tmp_path: Path, broker: MosquittoBroker, size: int) -> None:
    corpus = poison_corpus(size, int(time.time() * 1000))
    expected = collections.Counter(reason.value for _, _, reason in corpus)
    assert expected.get("decode_error", 0) == 0, "the corpus reached the decoder's catch-all: a decoder bug"
    config = write_config(tmp_path, broker, retention={"quarantine_max_rows": 100_000})
    db = tmp_path / "store.db"
    async with run_daemon(config) as running:
        assert running.config.path(running.config.database.path) == db
        metrics = running.daemon.metrics
        valid_seq = 1_000_000
        async with aiomqtt.Client("127.0.0.1", broker.port) as device:
            for topic, payload, _ in corpus:
                await device.publish(topic, payload, qos=1)
            valid = {"ts": int(time.time() * 1000), "seq": valid_seq, "grams": 4100.0}
            await device.publish("store/demo/shelf/A2-1/weight", json.dumps(valid), qos=1)
        await wait_for(
            lambda: (
                count(db, "SELECT count(*) FROM readings WHERE device = 'shelf-A2-1' AND seq = ?", valid_seq)
                == 1
            )
        )
        await wait_for(lambda: count(db, "SELECT count(*) FROM quarantine") >= len(corpus))
        quarantine = await ajson(f"{running.url}/api/v1/quarantine?limit=10")
        assert quarantine["total"] == len(corpus)
        assert quarantine["by_reason"] == dict(expected)
        assert all(row["detail"] for row in quarantine["rows"])
        # The MQTT task never died: no supervisor restart, still the first connection.
        assert metrics.task_restarts.value("mqtt") == 0
        assert metrics.mqtt_connects.value() == 1
        text = (await aget(f"{running.url}/metrics", None))[1].decode()
        assert 'storeedge_task_restarts_total{task="mqtt"}' not in text
        for reason, n in expected.items():
            assert f'storeedge_messages_rejected_total{{reason="{reason}"}} {n}' in text
        await asyncio.sleep(0.5)  # the acks of the last batch leave after its commit
    # Everything was acked: the daemon's persistent session gets nothing redelivered after a restart
    # (a redelivered message would be quarantined again).
    async with run_daemon(config) as restarted:
        await asyncio.sleep(1.5)
        assert restarted.daemon.metrics.received.value("mqtt") == 0
    assert count(db, "SELECT count(*) FROM quarantine") == len(corpus)


async def test_poison_messages_are_quarantined_and_ingest_goes_on(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    await _poison_then_valid(tmp_path, broker, DEFAULT_CORPUS)


@pytest.mark.slow
async def test_a_large_poison_corpus_is_quarantined_and_ingest_goes_on(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    await _poison_then_valid(tmp_path, broker, LONG_CORPUS)


def test_the_corpus_is_deterministic_and_varied() -> None:
    now_ms = int(time.time() * 1000)
    first, second = poison_corpus(DEFAULT_CORPUS, now_ms), poison_corpus(DEFAULT_CORPUS, now_ms)
    assert first == second
    reasons = collections.Counter(reason for _, _, reason in first)
    assert {RejectReason.BAD_JSON, RejectReason.BAD_SCHEMA, RejectReason.BAD_TIMESTAMP} <= set(reasons)
    assert RejectReason.DECODE_ERROR not in reasons
