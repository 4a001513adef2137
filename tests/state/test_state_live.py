"""Alerts live through the daemon: MQTT in, WebSocket and MQTT out, acknowledged over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import aiomqtt
import pytest

from edge.demo.broker import MosquittoBroker
from tests.conftest import STAFF_TOKEN, ajson, run_daemon, write_config

pytestmark = pytest.mark.integration


async def publish_levels(port: int, shelf: str, unit: float, levels: list[int], start_ms: int) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as device:
        seq = 0
        for items in levels:
            for _ in range(3):  # three readings 0.5 s apart: the shelf is still, the level counts
                seq += 1
                ts = start_ms + seq * 500
                await device.publish(
                    f"store/demo/shelf/{shelf}/weight",
                    json.dumps({"ts": ts, "seq": seq, "grams": items * unit}),
                    qos=1,
                )


async def test_empty_shelf_alert_reaches_websocket_and_mqtt_and_can_be_acknowledged(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config = write_config(tmp_path, broker, thresholds={"silent_after_periods": 1000.0})
    async with (
        run_daemon(config) as running,
        aiohttp.ClientSession() as http,
        aiomqtt.Client("127.0.0.1", broker.port) as watcher,
    ):
        await watcher.subscribe("store/demo/alerts/#", qos=1)
        socket = await http.ws_connect(f"{running.url}/api/v1/events?token={STAFF_TOKEN}")
        start_ms = int(time.time() * 1000) - 60_000
        await publish_levels(broker.port, "A3-2", 1020.0, [5, 4, 0], start_ms)

        async def next_ws_alert(kind: str) -> dict:
            while True:
                message = json.loads((await socket.receive(timeout=10)).data)
                if message["alert"]["kind"] == kind:
                    return message["alert"]

        ws_alert = await asyncio.wait_for(next_ws_alert("empty_shelf"), 10)
        assert (ws_alert["subject"], ws_alert["state"], ws_alert["severity"]) == ("A3-2", "open", "critical")

        async def next_mqtt_alert() -> tuple[str, dict]:
            async for message in watcher.messages:
                body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                if body["kind"] == "empty_shelf":
                    return message.topic.value, body
            raise AssertionError

        topic, mqtt_alert = await asyncio.wait_for(next_mqtt_alert(), 10)
        assert topic == "store/demo/alerts/empty_shelf"
        assert mqtt_alert["id"] == ws_alert["id"]

        restock = await ajson(f"{running.url}/api/v1/restock")
        assert restock[0]["shelf"] == "A3-2"
        assert (restock[0]["urgency"], restock[0]["bring"]) == ("empty", 11)

        headers = {"Authorization": f"Bearer {STAFF_TOKEN}"}
        async with http.post(
            f"{running.url}/api/v1/alerts/{ws_alert['id']}/ack", json={"by": "ana"}, headers=headers
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["acked_by"] == "ana"
        async with http.post(f"{running.url}/api/v1/alerts/{ws_alert['id']}/ack", headers=headers) as resp:
            assert resp.status == 409
        acked = await asyncio.wait_for(next_ws_alert("empty_shelf"), 10)
        assert acked["state"] == "acked"
        active = await ajson(f"{running.url}/api/v1/alerts?state=active")
        assert [a["kind"] for a in active if a["subject"] == "A3-2"] == ["empty_shelf"]
        await socket.close()


async def test_silent_sensor_is_flagged_within_two_periods(tmp_path: Path, broker: MosquittoBroker) -> None:
    config = write_config(tmp_path, broker, thresholds={"shelf_period_s": 1.0, "silent_after_periods": 2.0})
    async with run_daemon(config) as running:
        started = time.monotonic()
        while time.monotonic() - started < 10:
            silent = await ajson(f"{running.url}/api/v1/alerts?state=open")
            if any(a["kind"] == "sensor_silent" and a["subject"] == "shelf-A1-1" for a in silent):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("no sensor_silent alert for a shelf that never reported")
