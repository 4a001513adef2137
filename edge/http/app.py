"""The daemon's HTTP app (aiohttp): the factory, the shared context, authorization, health and metrics.

Open: ``/healthz`` and ``/metrics`` (Prometheus text). Everything under ``/api/`` needs a bearer token;
`edge.http.access` says which role may call what. Each capability hands its routes to `build_app`
(the daemon collects them): the staff routes over the store's state (`edge.http.staff_routes`), the
shopper routes (`edge.customers`), the sync feed (`edge.uplink`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import WSCloseCode, web

from edge.http.access import (
    SESSION_ROUTES,
    AccessPolicy,
    AuthFailure,
    AuthThrottle,
    Principal,
    log_access,
    token_family,
)
from edge.http.responses import Handler, error_response, json_response, too_many
from edge.metrics import IngestMetrics
from edge.state.bus import AlertBus
from edge.store.reader import StoreReader
from edge.store.writer import StoreWriter
from routing import Layout

HOUSEHOLD_ID_MAX = 64  # what an audit row keeps of a requested household id


HOUSEHOLD_PATTERNS = frozenset(pattern for _, pattern in SESSION_ROUTES if "{id}" in pattern)


@dataclass(frozen=True, slots=True)
class ApiContext:
    reader: StoreReader
    metrics: IngestMetrics
    staff_token: str | None
    mqtt_connected: Callable[[], bool]
    writer: StoreWriter | None = None
    bus: AlertBus | None = None
    layout: Callable[[], Layout] | None = None  # the layout being served (it can change while running)
    access: AccessPolicy | None = None  # None: staff token only


CONTEXT = web.AppKey("context", ApiContext)


PRINCIPAL = web.RequestKey("principal", Principal)  # who is calling; set by `authorize`


SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("sockets")


THROTTLE = web.AppKey("auth_throttle", AuthThrottle)


def presented_token(request: web.Request) -> str:
    """The bearer token as sent (browsers cannot set headers on a WebSocket: ``?token=`` too)."""
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return given or request.query.get("token", "")


@web.middleware
async def authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Routes under /api/ need a bearer token; `edge.http.access` says which role may call what."""
    if request.path.startswith("/api/"):
        ctx = request.app[CONTEXT]
        policy = ctx.access or AccessPolicy(ctx.staff_token, None, None)
        if policy.staff_token is None and policy.kiosk_token is None:
            return error_response(403, "staff API disabled: set [http] staff_token in the config")
        given = presented_token(request)
        client, family = request.remote or "?", token_family(given)
        throttle = request.app[THROTTLE]
        wait_s = throttle.retry_after(client, family)
        if wait_s is not None:
            return too_many(f"too many wrong tokens from {client}: try again in {wait_s:.0f} s", wait_s)
        found = policy.identify(given)
        if isinstance(found, AuthFailure):
            if found.guess:
                throttle.failed(client, family)
            return error_response(401, found.reason)
        resource = request.match_info.route.resource
        pattern = resource.canonical if resource is not None else request.path
        household = request.match_info.get("id") if "{id}" in pattern else None
        refusal = policy.refusal(found, request.method, pattern, household)
        if refusal is not None:
            if household is not None and pattern in HOUSEHOLD_PATTERNS and ctx.writer is not None:
                await _audit_refusal(ctx.writer, household, f"{request.method} {pattern}", found, refusal)
            return error_response(403, refusal)
        request[PRINCIPAL] = found
    return await handler(request)


async def _audit_refusal(writer: StoreWriter, household: str, route: str, who: Principal, why: str) -> None:
    """A refused read of a household's data is in access_log too (who tried, and why it was refused)."""
    now = int(time.time() * 1000)
    await writer.run_job(
        lambda c: log_access(c, household[:HOUSEHOLD_ID_MAX], route, who.role, now, refused=why), urgent=True
    )


async def healthz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    db_ok = await ctx.reader.ping()
    body = {
        "status": "ok" if db_ok else "degraded",
        "database": db_ok,
        "mqtt_connected": ctx.mqtt_connected(),
        "queue_depth": int(ctx.metrics.queue_depth.value()),
    }
    return json_response(body, 200 if db_ok else 503)


async def metrics(request: web.Request) -> web.Response:
    text = request.app[CONTEXT].metrics.registry.render()
    return web.Response(text=text, content_type="text/plain", charset="utf-8", headers={"X-Format": "0.0.4"})


async def _close_sockets(app: web.Application) -> None:
    sockets: set[web.WebSocketResponse] = app[SOCKETS]
    for socket in list(sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"store daemon stopping")


# Open to anyone: how the daemon is, for load balancers and Prometheus.
ROUTES: list[tuple[str, str, Handler]] = [("GET", "/healthz", healthz), ("GET", "/metrics", metrics)]


def build_app(context: ApiContext, routes: list[tuple[str, str, Handler]]) -> web.Application:
    """The app with `ROUTES` and every capability's ``routes`` (the daemon collects them)."""
    app = web.Application(middlewares=[authorize])
    app[CONTEXT] = context
    app[THROTTLE] = AuthThrottle()
    sockets: set[web.WebSocketResponse] = set()
    app[SOCKETS] = sockets
    app.on_shutdown.append(_close_sockets)
    for method, path, handler in [*ROUTES, *routes]:
        app.router.add_route(method, path, handler)
    return app
