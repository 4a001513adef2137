"""A real daemon for the kiosk's integration tests: config, POS purchases and shelf levels over MQTT."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiomqtt

from edge.customers.privacy import CardCheck
from edge.demo.broker import MosquittoBroker
from tests.conftest import PSEUDONYM_KEY, write_config

KIOSK_TOKEN = "test-kiosk-token"
CARD = "LOY-424242"
SCANNED = CardCheck(PSEUDONYM_KEY.encode()).barcode(CARD)  # what the card's barcode holds
# Demo planogram SKUs: fruit, vegetables, bread.
BASKET = [{"sku": "1001", "qty": 1, "unit_price": 2.0}, {"sku": "1006", "qty": 1, "unit_price": 1.5}]


def kiosk_config(tmp_path: Path, broker: MosquittoBroker, **sections: dict[str, Any]) -> Path:
    return write_config(
        tmp_path,
        broker,
        http={"kiosk_token": KIOSK_TOKEN},
        kiosk={"idle_s": 60, "countdown_s": 30},
        **sections,
    )


async def publish_purchases(port: int, card: str, baskets: int, days_apart: float = 2.0) -> None:
    """`baskets` tills transactions for `card`, the last one an hour ago."""
    now_ms = int(time.time() * 1000)
    async with aiomqtt.Client("127.0.0.1", port) as till:
        for n in range(baskets):
            ts = now_ms - 3_600_000 - int((baskets - 1 - n) * days_apart * 86_400_000)
            total = sum(i["qty"] * i["unit_price"] for i in BASKET)
            body = {
                "ts": ts,
                "seq": n + 1,
                "basket_id": f"K-{n}",
                "items": BASKET,
                "total": total,
                "loyalty_id": card,
            }
            await till.publish("store/demo/pos/1/transaction", json.dumps(body), qos=1)


async def publish_shelf_levels(port: int, shelf: str, unit: float, levels: list[int]) -> None:
    """Settled shelf weights (three readings 0.5 s apart per level), like tests/state do."""
    start_ms = int(time.time() * 1000) - 60_000
    async with aiomqtt.Client("127.0.0.1", port) as device:
        seq = 0
        for items in levels:
            for _ in range(3):
                seq += 1
                body = {"ts": start_ms + seq * 500, "seq": seq, "grams": items * unit}
                await device.publish(f"store/demo/shelf/{shelf}/weight", json.dumps(body), qos=1)
