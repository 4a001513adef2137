"""The daemon's HTTP API (aiohttp). Built by a factory; shared state through typed `web.AppKey`s.

Open: ``/healthz`` and ``/metrics`` (Prometheus text). Staff: ``/api/v1/*`` with
``Authorization: Bearer <[http] staff_token>``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
from aiohttp import web

from edge.metrics import IngestMetrics
from edge.queries import StoreReader

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class ApiContext:
    reader: StoreReader
    metrics: IngestMetrics
    staff_token: str | None
    mqtt_connected: Callable[[], bool]


CONTEXT = web.AppKey("context", ApiContext)
_json = msgspec.json.Encoder()


def _ok(value: object, status: int = 200) -> web.Response:
    return web.Response(body=_json.encode(value), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _ok({"error": message}, status)


@web.middleware
async def staff_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        token = request.app[CONTEXT].staff_token
        if token is None:
            return _error(403, "staff API disabled: set [http] staff_token in the config")
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return _error(401, "missing or wrong bearer token")
    return await handler(request)


async def healthz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    db_ok = await ctx.reader.ping()
    body = {
        "status": "ok" if db_ok else "degraded",
        "database": db_ok,
        "mqtt_connected": ctx.mqtt_connected(),
        "queue_depth": int(ctx.metrics.queue_depth.value()),
    }
    return _ok(body, 200 if db_ok else 503)


async def metrics(request: web.Request) -> web.Response:
    text = request.app[CONTEXT].metrics.registry.render()
    return web.Response(text=text, content_type="text/plain", charset="utf-8", headers={"X-Format": "0.0.4"})


async def shelves(request: web.Request) -> web.Response:
    return _ok(await request.app[CONTEXT].reader.shelves())


async def fridges(request: web.Request) -> web.Response:
    return _ok(await request.app[CONTEXT].reader.fridges())


async def zones(request: web.Request) -> web.Response:
    return _ok(await request.app[CONTEXT].reader.zones())


async def devices(request: web.Request) -> web.Response:
    return _ok(await request.app[CONTEXT].reader.devices())


async def summary(request: web.Request) -> web.Response:
    return _ok(await request.app[CONTEXT].reader.summary())


async def quarantine(request: web.Request) -> web.Response:
    reason = request.query.get("reason") or None
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        return _error(400, "limit: expected an integer")
    if not 1 <= limit <= 1000:
        return _error(400, "limit: expected 1..1000")
    return _ok(await request.app[CONTEXT].reader.quarantine(reason, limit))


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/healthz", healthz),
    ("GET", "/metrics", metrics),
    ("GET", "/api/v1/summary", summary),
    ("GET", "/api/v1/shelves", shelves),
    ("GET", "/api/v1/fridges", fridges),
    ("GET", "/api/v1/zones", zones),
    ("GET", "/api/v1/devices", devices),
    ("GET", "/api/v1/quarantine", quarantine),
]


def build_app(
    context: ApiContext, extra_routes: list[tuple[str, str, Handler]] | None = None
) -> web.Application:
    app = web.Application(middlewares=[staff_auth])
    app[CONTEXT] = context
    for method, path, handler in [*ROUTES, *(extra_routes or [])]:
        app.router.add_route(method, path, handler)
    return app
