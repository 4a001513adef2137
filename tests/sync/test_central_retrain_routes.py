"""Retraining over HTTP at central (real PostgreSQL, real HTTP): a run starts in the background, one at a
time, and its report is read back; without the signing key nothing can be started."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sync.bundle_signing import generate_key, load_private_key
from sync.central_pool import CentralDb
from sync.central_retrain_routes import RetrainRoutes
from tests.conftest import free_port

pytestmark = pytest.mark.integration


async def test_a_retrain_runs_in_the_background_and_reports(central_dsn: str, tmp_path: Path) -> None:
    db = CentralDb(central_dsn)
    await db.open()
    generate_key(tmp_path / "chain.key")
    key = load_private_key(tmp_path / "chain.key")
    bundles = tmp_path / "bundles"
    routes = RetrainRoutes(
        db.run, bundles, key, tmp_path / "candidates", lambda r: "Authorization" in r.headers
    )
    keyless = RetrainRoutes(db.run, bundles, None, tmp_path / "candidates", lambda r: True)
    app, other = web.Application(), web.Application()
    routes.add_to(app)
    keyless.add_to(other)
    runners = [web.AppRunner(app), web.AppRunner(other)]
    ports = [free_port(), free_port()]
    for runner, port in zip(runners, ports, strict=True):
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    url, keyless_url = (f"http://127.0.0.1:{p}/api/v1/models/retrain" for p in ports)
    try:
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer admin"}) as http:

            async def call(method: str, where: str, body: object | None = None) -> tuple[int, Any]:
                async with http.request(method, where, json=body) as resp:
                    return resp.status, json.loads(await resp.read())

            assert (await call("POST", keyless_url, {"cutoff": "2026-11-02"}))[0] == 409
            assert (await call("POST", url, {"cutoff": "last tuesday"}))[0] == 400
            assert (await call("POST", url, {"cutoff": "2026-02-30"}))[0] == 400
            status, started = await call("POST", url, {"cutoff": "2026-11-02"})
            assert (status, started["state"]) == (202, "running")
            for _ in range(600):  # an empty warehouse: it fails fast, with the reason
                _, runs = await call("GET", url)
                if runs[0]["state"] != "running":
                    break
                await asyncio.sleep(0.1)
            (run,) = runs
            assert run["state"] == "failed"
            assert run["report"]["reason"]
            assert not bundles.exists()  # a failed run publishes nothing
        async with aiohttp.ClientSession() as anonymous, anonymous.get(url) as resp:
            assert resp.status == 401
    finally:
        for runner in runners:
            await runner.cleanup()
        await routes.close()
        await db.close()
