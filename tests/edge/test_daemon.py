"""The daemon end to end on real parts: mosquitto, a PTY serial link, SQLite, HTTP over loopback."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
import tty
from pathlib import Path

import aiohttp
import aiomqtt
import pytest

from edge.demo.broker import MosquittoBroker
from sensors.frames import FrameError, decode_frame, encode_frame
from sensors.schemas import RejectReason
from tests.conftest import STAFF_TOKEN, DaemonProcess, aget, ajson, run_daemon, write_config
from tests.sensors.test_decode import BAD_MQTT, BAD_SERIAL

pytestmark = pytest.mark.integration


def now_ms() -> int:
    return int(time.time() * 1000)


async def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1) -> None:
    """Poll until ``predicate`` holds; the timeout is generous because a loaded 2-core box once needed
    more than 15 s here (the call returns as soon as the condition holds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def retimed(payload: object) -> object:
    """The corpus uses a fixed clock; the daemon uses the real one. Shift fixed timestamps to now."""
    if isinstance(payload, dict) and isinstance(payload.get("ts"), int) and payload["ts"] > 10**12:
        return {**payload, "ts": payload["ts"] - 1_795_514_400_000 + now_ms()}
    return payload


def retimed_line(line: bytes) -> bytes:
    """Serial frames of the corpus carry the fixed clock's ts too (older than `max_reading_age_s` by the
    real one): shift it to now and re-checksum. Lines that are not well-formed frames stay as they are."""
    try:
        frame = decode_frame(line)
    except FrameError:
        return line
    fixed = str(1_795_514_400_000)
    return encode_frame(frame.type, [str(now_ms()) if f == fixed else f for f in frame.fields])


async def test_bad_input_is_quarantined_with_reasons_and_valid_traffic_is_all_stored(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    master, slave = os.openpty()
    tty.setraw(master)
    link = tmp_path / "tty-legacy"
    link.symlink_to(os.ttyname(slave))
    config = write_config(tmp_path, broker, serial={"ports": [{"path": str(link), "name": "legacy"}]})
    async with run_daemon(config) as running:
        db = running.config.path(running.config.database.path)
        expected_reasons: dict[str, int] = {}
        # Topics outside the store's subscriptions never reach the daemon, so they cannot be quarantined.
        delivered = [case for case in BAD_MQTT if case[2] is not RejectReason.UNKNOWN_TOPIC]
        base_ms = now_ms() - 60_000  # valid readings 0.5 s apart, so the shelf is seen still and counted
        async with aiomqtt.Client("127.0.0.1", broker.port) as device:
            for index, (topic, payload, reason) in enumerate(delivered):
                body = retimed(payload)
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                await device.publish(topic, raw, qos=1)
                expected_reasons[reason.value] = expected_reasons.get(reason.value, 0) + 1
                # a valid reading between every bad one
                await device.publish(
                    "store/demo/shelf/A2-1/weight",
                    json.dumps({"ts": base_ms + index * 500, "seq": index + 1, "grams": 820.0 * 5}),
                    qos=1,
                )
        await wait_for(lambda: running.daemon.metrics.serial_open.value("legacy") == 1)
        for index, (line, reason) in enumerate(BAD_SERIAL):
            os.write(master, retimed_line(line))
            os.write(
                master,
                encode_frame("WGT", ["A6-3", str(index + 1), str(base_ms + index * 500), str(280.0 * 4)]),
            )
            expected_reasons[reason.value] = expected_reasons.get(reason.value, 0) + 1
        total_bad = len(delivered) + len(BAD_SERIAL)
        await wait_for(lambda: count(db, "SELECT count(*) FROM quarantine") >= total_bad)
        await wait_for(lambda: count(db, "SELECT count(*) FROM readings") >= len(delivered) + len(BAD_SERIAL))
        quarantine = await ajson(f"{running.url}/api/v1/quarantine?limit=1000")
        assert quarantine["by_reason"] == expected_reasons
        assert quarantine["total"] == total_bad
        assert all(row["detail"] for row in quarantine["rows"])
        assert count(db, "SELECT count(*) FROM readings WHERE device = 'shelf-A2-1'") == len(delivered)
        assert count(db, "SELECT count(*) FROM readings WHERE device = 'shelf-A6-3'") == len(BAD_SERIAL)
        shelves = {s["id"]: s for s in await ajson(f"{running.url}/api/v1/shelves")}
        assert shelves["A2-1"]["items"] == 5
        assert shelves["A6-3"]["items"] == 4
        metrics = (await aget(f"{running.url}/metrics", None))[1].decode()
        for reason, n in expected_reasons.items():
            assert f'storeedge_messages_rejected_total{{reason="{reason}"}} {n}' in metrics
        assert 'storeedge_serial_port_open{port="legacy"} 1' in metrics
    os.close(master)
    os.close(slave)


async def test_api_requires_the_staff_token_and_serves_state(config_path: Path) -> None:
    async with run_daemon(config_path) as running:
        assert (await aget(f"{running.url}/api/v1/shelves", None))[0] == 401
        assert (await aget(f"{running.url}/api/v1/shelves", "wrong"))[0] == 401
        assert (await aget(f"{running.url}/healthz", None))[0] == 200
        assert len(await ajson(f"{running.url}/api/v1/shelves")) == 40
        assert len(await ajson(f"{running.url}/api/v1/fridges")) == 4
        assert len(await ajson(f"{running.url}/api/v1/zones")) == 6
        assert len(await ajson(f"{running.url}/api/v1/devices")) == 54
        assert (await aget(f"{running.url}/api/v1/quarantine?limit=abc"))[0] == 400
        status, body = await aget(f"{running.url}/metrics", None)
        text = body.decode()
        assert status == 200
        assert "# TYPE storeedge_batch_commit_seconds histogram" in text
        assert 'storeedge_batch_commit_seconds_bucket{le="+Inf"}' in text
        assert "storeedge_ingest_queue_depth 0" in text
        assert await ajson(f"{running.url}/api/v1/analytics/footfall?hours=2") == []
        assert (await aget(f"{running.url}/api/v1/analytics/footfall?hours=-1"))[0] == 400
        headers = {"Authorization": f"Bearer {STAFF_TOKEN}"}
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{running.url}/api/v1/routes",
                json={"items": ["milk", "bread", "ice-cream"], "from": "kiosk-2"},
                headers=headers,
            ) as resp:
                route = await resp.json()
                assert resp.status == 200, route
            assert [s["items"] for s in route["stops"]][-1] == ["ice-cream"]  # frozen last
            assert route["path"][0] == "kiosk-2"
            assert route["distance_m"] > 0
            async with http.post(
                f"{running.url}/api/v1/routes", json={"items": ["milk"], "from": "nowhere"}, headers=headers
            ) as resp:
                assert resp.status == 422
                assert "nowhere" in (await resp.json())["error"]
            async with http.post(
                f"{running.url}/api/v1/routes", json={"things": []}, headers=headers
            ) as resp:
                assert resp.status == 400


async def test_staff_api_is_disabled_without_a_token(tmp_path: Path, broker: MosquittoBroker) -> None:
    config = write_config(tmp_path, broker, http={"staff_token": None})
    async with run_daemon(config) as running:
        status, body = await aget(f"{running.url}/api/v1/shelves", STAFF_TOKEN)
        assert status == 403
        assert b"staff_token" in body


def test_sigterm_stops_within_5s_and_announces_offline(
    daemon_process: DaemonProcess, broker: MosquittoBroker
) -> None:
    async def edge_status() -> bytes:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe("store/demo/edge/status", qos=1)
            async for message in client.messages:
                return bytes(message.payload)  # type: ignore[arg-type]
        raise AssertionError("no status")

    daemon_process.start()
    assert asyncio.run(asyncio.wait_for(edge_status(), 5)) == b"online"
    code, seconds = daemon_process.terminate()
    assert code == 0
    assert seconds < 5.0
    assert asyncio.run(asyncio.wait_for(edge_status(), 5)) == b"offline"
    assert "daemon_stopped" in daemon_process.log_path.read_text()


def test_last_will_says_offline_after_a_crash(daemon_process: DaemonProcess, broker: MosquittoBroker) -> None:
    async def edge_status() -> bytes:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe("store/demo/edge/status", qos=1)
            async for message in client.messages:
                return bytes(message.payload)  # type: ignore[arg-type]
        raise AssertionError("no status")

    daemon_process.start()
    daemon_process.kill()
    # mosquitto publishes the will when it notices the dead socket (immediately, for a closed one)
    assert asyncio.run(asyncio.wait_for(edge_status(), 5)) == b"offline"
