"""The feed on the real daemon: MQTT traffic in, pages out over loopback HTTP, acks through the writer."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from edge.demo.broker import MosquittoBroker
from tests.conftest import STAFF_TOKEN, ajson, run_daemon, write_config
from tests.sync.sync_helpers import SYNC_TOKEN, apublish_all, count, day_of_traffic, wait_for

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {SYNC_TOKEN}"}


async def test_feed_serves_gzipped_pages_acks_persist_and_auth_is_enforced(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config = write_config(tmp_path, broker, sync={"token": SYNC_TOKEN, "page_max": 50})
    messages = day_of_traffic(120, seed=3)
    async with run_daemon(config) as running:
        db = running.config.path(running.config.database.path)
        await apublish_all(broker.port, messages)
        await wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 120, what="readings stored")
        async with aiohttp.ClientSession() as http:
            base = f"{running.url}/sync/v1"
            async with http.get(
                f"{base}/changes", params={"after": "0", "limit": "500"}, headers=AUTH
            ) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Encoding"] == "gzip"  # aiohttp asked for it and inflated it
                first = await resp.json()
            assert len(first["changes"]) == 50
            assert first["more"] is True
            assert [c["seq"] for c in first["changes"]] == list(range(1, 51))
            async with http.get(
                f"{base}/changes", params={"after": "0"}, headers={**AUTH, "Accept-Encoding": "identity"}
            ) as resp:
                assert "Content-Encoding" not in resp.headers
                assert json.loads(await resp.read()) == first  # same page whatever the encoding

            # every accepted message has its change: walk the whole feed
            seen, after = [], 0
            while True:
                async with http.get(f"{base}/changes", params={"after": str(after)}, headers=AUTH) as resp:
                    body = await resp.json()
                seen += body["changes"]
                after = body["next"]
                if not body["more"]:
                    break
            kinds = [c["kind"] for c in seen]
            assert kinds.count("reading") + kinds.count("purchase") == 120
            assert [c["seq"] for c in seen] == sorted({c["seq"] for c in seen})

            for headers in (
                {},
                {"Authorization": "Bearer wrong-token-0123456789"},
                {"Authorization": SYNC_TOKEN},
            ):
                async with http.get(f"{base}/changes", params={"after": "0"}, headers=headers) as resp:
                    assert resp.status == 401
                    assert (await resp.json())["error"] == "unauthorized"
            async with http.get(f"{base}/changes", params={"after": "x"}, headers=AUTH) as resp:
                assert resp.status == 400
                assert "after: expected a decimal integer" in (await resp.json())["message"]

            async with http.post(f"{base}/ack", json={"through": 60}, headers=AUTH) as resp:
                assert (resp.status, await resp.json()) == (
                    200,
                    {"acked": 60, "moved": True, "feed": first["feed"]},
                )
            async with http.post(f"{base}/ack", json={"through": 30}, headers=AUTH) as resp:
                assert (resp.status, (await resp.json())["acked"]) == (200, 60)
            async with http.post(f"{base}/ack", json={"through": 10**9}, headers=AUTH) as resp:
                assert (resp.status, (await resp.json())["error"]) == (409, "ack_ahead")
            async with http.post(f"{base}/ack", data=b"{", headers=AUTH) as resp:
                assert resp.status == 400
            async with http.get(f"{base}/changes", params={"after": "59"}, headers=AUTH) as resp:
                assert (resp.status, (await resp.json())["error"]) == (410, "cursor_gone")
            async with http.get(f"{base}/status", headers=AUTH) as resp:
                status = await resp.json()
            assert status["acked"] == 60
            assert status["pending_rows"] == status["head"] - 60
            assert status["pending_bytes"] > 0
            assert status["oldest_pending_age_s"] is not None
        staff = await ajson(f"{running.url}/api/v1/sync", STAFF_TOKEN)
        assert staff["acked"] == 60
        assert staff["feed"] == first["feed"]
    # the ack cursor is durable: a restarted daemon resumes from it
    async with run_daemon(config) as running:
        again = await ajson(f"{running.url}/api/v1/sync", STAFF_TOKEN)
        assert (again["acked"], again["feed"]) == (60, first["feed"])
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{running.url}/sync/v1/changes", params={"after": "60", "limit": "5"}, headers=AUTH
            ) as resp,
        ):
            assert [c["seq"] for c in (await resp.json())["changes"]] == [61, 62, 63, 64, 65]


async def test_without_a_token_the_feed_is_off(tmp_path: Path, broker: MosquittoBroker) -> None:
    async with run_daemon(write_config(tmp_path, broker)) as running, aiohttp.ClientSession() as http:
        for method, path in (
            ("GET", "/sync/v1/changes?after=0"),
            ("POST", "/sync/v1/ack"),
            ("GET", "/sync/v1/status"),
        ):
            async with http.request(method, f"{running.url}{path}", headers=AUTH) as resp:
                assert resp.status == 403
                assert "set [sync] token" in (await resp.json())["message"]
        async with http.get(f"{running.url}/metrics") as resp:
            text = await resp.text()
        assert "storeedge_sync_pending_rows" in text
        assert "storeedge_sync_requests_refused_total" in text
