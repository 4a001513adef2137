"""``POST /api/v1/models/retrain`` and ``GET /api/v1/models/retrain`` on central (admin token): start a
retrain in the background (`sync.central_retrain.retrain`: minutes of training) and read how the runs
went. Needs the chain's signing key (``[central] signing_key_file``); one run at a time.

    POST {"cutoff": "2026-11-02", "timezone"?: "Europe/Berlin"}  -> 202 {"run": n, "state": "running"}
    GET                                                            -> every run since start, newest first
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import msgspec
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.central_experiments import json_reply
from sync.central_pool import RunDb

Cutoff = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class RetrainRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    cutoff: Cutoff
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "UTC"


class RetrainRun(msgspec.Struct, frozen=True):
    run: int
    cutoff: str
    started_ms: int
    state: str  # running, published, worse, failed
    report: Any | None = None  # sync.central_retrain.RetrainReport once finished


class RetrainRoutes:
    def __init__(
        self,
        run: RunDb[Any],
        bundle_dir: Path,
        key: Ed25519PrivateKey | None,
        candidates_dir: Path,
        authorised: Callable[[web.Request], bool],
    ) -> None:
        self._run = run
        self._bundle_dir = bundle_dir
        self._key = key
        self._candidates = candidates_dir
        self._authorised = authorised
        self.runs: list[RetrainRun] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/models/retrain", self._guarded(self.start))
        app.router.add_get("/api/v1/models/retrain", self._guarded(self.list_runs))

    def _guarded(
        self, handler: Callable[[web.Request], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def guarded(request: web.Request) -> web.Response:
            if not self._authorised(request):
                return json_reply({"error": "missing or wrong admin token"}, 401)
            return await handler(request)

        return guarded

    async def start(self, request: web.Request) -> web.Response:
        if self._key is None:
            return json_reply(
                {"error": "central has no signing key ([central] signing_key_file): it cannot publish"}, 409
            )
        try:
            body = msgspec.json.decode(await request.read(), type=RetrainRequest)
            cutoff = dt.date.fromisoformat(body.cutoff)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return json_reply({"error": f"body: {exc}"}, 400)
        if any(r.state == "running" for r in self.runs):
            return json_reply(
                {"error": "a retrain is running; wait for it (GET /api/v1/models/retrain)"}, 409
            )
        number = len(self.runs) + 1
        self.runs.append(RetrainRun(number, body.cutoff, int(time.time() * 1000), "running"))
        task = asyncio.create_task(self._retrain(number, cutoff, body.timezone, self._key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return json_reply(self.runs[-1], 202)

    async def _retrain(self, number: int, cutoff: dt.date, timezone: str, key: Ed25519PrivateKey) -> None:
        from sync.central_retrain import retrain  # noqa: PLC0415 - the training stack, only when asked

        report = await retrain(
            self._run, self._bundle_dir, key, cutoff, models_dir=self._candidates, timezone=timezone
        )
        index = number - 1
        self.runs[index] = msgspec.structs.replace(self.runs[index], state=report.decision, report=report)

    async def list_runs(self, _request: web.Request) -> web.Response:
        return json_reply(list(reversed(self.runs)))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
