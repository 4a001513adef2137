"""Till receipts: after commit a POS transaction gets `stored`, a copy `duplicate`, a bad one `rejected`.

Real mosquitto, the real daemon in process, a test till subscribed to its receipt topic.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec
import pytest

from edge.demo.broker import MosquittoBroker
from edge.ingest.receipts import scrub
from sensors.receipts import PosReceipt, ReceiptStatus, receipt_topic, transaction_lane
from tests.conftest import run_daemon

REPO = Path(__file__).resolve().parents[2]
CARD = "4929123456781234"


class Till:
    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.receipts: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def collect(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            await self.receipts.put((str(message.topic), message.payload))

    async def send(self, lane: str, payload: dict[str, Any] | bytes) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        await self.client.publish(f"store/demo/pos/{lane}/transaction", body, qos=1)

    async def receipt(self, timeout: float = 10.0) -> tuple[str, bytes, PosReceipt]:
        topic, raw = await asyncio.wait_for(self.receipts.get(), timeout)
        return topic, raw, msgspec.json.decode(raw, type=PosReceipt)


@pytest.fixture
async def till(broker: MosquittoBroker) -> AsyncIterator[Till]:
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="test-till") as client:
        await client.subscribe("store/demo/pos/+/receipt", qos=1)
        till = Till(client)
        task = asyncio.create_task(till.collect())
        yield till
        task.cancel()


def basket(seq: int, ts: int, **changes: Any) -> dict[str, Any]:
    return {
        "ts": ts,
        "seq": seq,
        "basket_id": f"L2-{seq:06d}",
        "items": [{"sku": "1001", "qty": 2, "unit_price": 1.29}],
        "total": 2.58,
        "loyalty_id": CARD,
    } | changes


@pytest.mark.integration
async def test_stored_then_duplicate_then_rejected_without_the_card(config_path: Path, till: Till) -> None:
    ts = int(time.time() * 1000)
    async with run_daemon(config_path):
        await till.send("2", basket(1, ts))
        topic, raw, receipt = await till.receipt()
        assert topic == receipt_topic("demo", "2") == "store/demo/pos/2/receipt"
        assert receipt == PosReceipt(basket_id="L2-000001", seq=1, ts=ts, status=ReceiptStatus.STORED)
        assert CARD.encode() not in raw

        # The till did not hear back and sends the very same message again.
        await till.send("2", basket(1, ts))
        _, _, receipt = await till.receipt()
        assert receipt.status is ReceiptStatus.DUPLICATE
        assert (receipt.basket_id, receipt.seq, receipt.ts) == ("L2-000001", 1, ts)

        # Wrong type for total; the card number must not come back in the reason or anywhere else.
        await till.send("2", basket(2, ts + 1, total="lots"))
        topic, raw, receipt = await till.receipt()
        assert topic == "store/demo/pos/2/receipt"
        assert receipt.status is ReceiptStatus.REJECTED
        assert receipt.reason == "bad_schema"
        assert (receipt.basket_id, receipt.seq) == ("L2-000002", 2)
        assert CARD.encode() not in raw
        assert CARD[-4:].encode() not in raw

        # Not JSON at all, with the card in it: rejected, nothing to echo but the reason.
        await till.send("3", f'{{"seq": 3, "loyalty_id": "{CARD}", '.encode())
        topic, raw, receipt = await till.receipt()
        assert topic == "store/demo/pos/3/receipt"
        assert (receipt.status, receipt.reason, receipt.basket_id) == (
            ReceiptStatus.REJECTED,
            "bad_json",
            None,
        )
        assert CARD.encode() not in raw

        # A lane the planogram does not know still hears why.
        await till.send("9", basket(1, ts))
        topic, _, receipt = await till.receipt()
        assert topic == "store/demo/pos/9/receipt"
        assert (receipt.status, receipt.reason) == (ReceiptStatus.REJECTED, "unknown_device")

        # Sensors get no receipts.
        await till.client.publish("store/demo/shelf/A1-1/weight", b'{"ts": 1, "seq": 1, "grams": 1}', qos=1)
        await till.send("1", basket(7, ts, basket_id="L1-000007"))
        _, _, receipt = await till.receipt()
        assert (receipt.basket_id, receipt.status) == ("L1-000007", ReceiptStatus.STORED)
        assert till.receipts.empty()


@pytest.mark.integration
async def test_copies_in_one_batch_get_one_stored_and_duplicates(config_path: Path, till: Till) -> None:
    ts = int(time.time() * 1000)
    async with run_daemon(config_path):
        for _ in range(3):
            await till.send("4", basket(5, ts, basket_id="L4-000005"))
        statuses = sorted([(await till.receipt())[2].status.value for _ in range(3)])
    assert statuses == ["duplicate", "duplicate", "stored"]


def test_receipt_helpers() -> None:
    assert transaction_lane("demo", "store/demo/pos/7/transaction") == "7"
    assert transaction_lane("demo", "store/demo/pos/7/receipt") is None
    assert transaction_lane("demo", "store/other/pos/7/transaction") is None
    assert transaction_lane("demo", "store/demo/shelf/A1-1/weight") is None
    assert scrub(f"loyalty_id {CARD} is odd", []) == "loyalty_id *** is odd"
    assert scrub("id 4929 1234 5678 1234 is odd", []) == "id *** is odd"
    assert scrub("loyalty LOY-42 unknown", ["LOY-42"]) == "loyalty *** unknown"
    assert scrub("Expected `float` - at `$.total`", []) == "Expected `float` - at `$.total`"


def test_receipt_topic_and_payload_are_documented() -> None:
    protocols = (REPO / "docs" / "protocols.md").read_text()
    assert "`store/{store}/pos/{lane}/receipt`" in protocols
    for field in ("basket_id", "seq", "ts", "status", "reason", "detail"):
        assert f'"{field}"' in protocols.split("### Till receipts", 1)[1], field
