"""The daemon's HTTP API (aiohttp). Built by a factory; shared state through typed `web.AppKey`s.

Open: ``/healthz`` and ``/metrics`` (Prometheus text). Staff: ``/api/v1/*`` with
``Authorization: Bearer <[http] staff_token>``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import msgspec
from aiohttp import WSCloseCode, web

from edge.access import SESSION_ROUTES, AccessPolicy, AuthFailure, AuthThrottle, Principal, token_family
from edge.alert_bus import AlertBus
from edge.customers import log_access
from edge.errors import field_error
from edge.metrics import IngestMetrics
from edge.queries import StoreReader
from edge.state import alerts as alert_store
from edge.writer import StoreWriter
from routing import Layout, RoutingError, plan_route

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BODY_MAX_BYTES = 64 * 1024  # every JSON body the API reads is small
INT64_MAX = 2**63 - 1
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
_json = msgspec.json.Encoder()


def json_response(value: object, status: int = 200) -> web.Response:
    return web.Response(body=_json.encode(value), status=status, content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status)


def presented_token(request: web.Request) -> str:
    """The bearer token as sent (browsers cannot set headers on a WebSocket: ``?token=`` too)."""
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return given or request.query.get("token", "")


@web.middleware
async def authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Routes under /api/ need a bearer token; `edge.access` says which role may call what."""
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


def too_many(message: str, wait_s: float) -> web.Response:
    response = error_response(429, message)
    response.headers["Retry-After"] = str(max(1, math.ceil(wait_s)))
    return response


B = TypeVar("B")


async def read_json(request: web.Request, kind: type[B], example: str) -> B | web.Response:
    """The request's JSON body as ``kind``, or the 4xx to send: every route that reads JSON uses this.

    Bounded: at most `BODY_MAX_BYTES` (413), and nesting deeper than msgspec's recursion limit is a 400,
    not a RecursionError; errors name the field (``personalisation: Expected `bool`...``)."""
    if request.content_length is not None and request.content_length > BODY_MAX_BYTES:
        return error_response(413, f"body: at most {BODY_MAX_BYTES} bytes")
    raw = bytearray()
    while chunk := await request.content.read(BODY_MAX_BYTES + 1 - len(raw)):
        raw += chunk
        if len(raw) > BODY_MAX_BYTES:
            return error_response(413, f"body: at most {BODY_MAX_BYTES} bytes")
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        field, problem = field_error(str(exc))
        return error_response(400, f"{field}: {problem}" if field else f"body: {problem}")
    except msgspec.DecodeError:
        return error_response(400, f"body: expected JSON like {example}")
    except RecursionError:
        return error_response(400, "body: nested too deeply")


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


async def shelves(request: web.Request) -> web.Response:
    return json_response(await request.app[CONTEXT].reader.shelves())


async def fridges(request: web.Request) -> web.Response:
    return json_response(await request.app[CONTEXT].reader.fridges())


async def zones(request: web.Request) -> web.Response:
    return json_response(await request.app[CONTEXT].reader.zones())


async def devices(request: web.Request) -> web.Response:
    return json_response(await request.app[CONTEXT].reader.devices())


async def summary(request: web.Request) -> web.Response:
    return json_response(await request.app[CONTEXT].reader.summary())


async def quarantine(request: web.Request) -> web.Response:
    reason = request.query.get("reason") or None
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        return error_response(400, "limit: expected an integer")
    if not 1 <= limit <= 1000:
        return error_response(400, "limit: expected 1..1000")
    return json_response(await request.app[CONTEXT].reader.quarantine(reason, limit))


async def suspicious(request: web.Request) -> web.Response:
    reason = request.query.get("reason") or None
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        return error_response(400, "limit: expected an integer")
    if not 1 <= limit <= 1000:
        return error_response(400, "limit: expected 1..1000")
    return json_response(await request.app[CONTEXT].reader.suspicious(reason, limit))


async def alerts(request: web.Request) -> web.Response:
    state = request.query.get("state") or None
    if state not in (None, "open", "acked", "resolved", "active"):
        return error_response(400, "state: expected open, acked, resolved or active")
    try:
        limit = int(request.query.get("limit", "200"))
    except ValueError:
        return error_response(400, "limit: expected an integer")
    return json_response(await request.app[CONTEXT].reader.alerts(state, max(1, min(limit, 1000))))


class AlertActor(msgspec.Struct, frozen=True):
    by: str = "staff"


def parse_row_id(text: str) -> int | None:
    """A database row id from a path: ASCII digits within SQLite's int64; None for anything else."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if value <= INT64_MAX else None


async def _alert_action(request: web.Request, action: str) -> web.Response:
    ctx = request.app[CONTEXT]
    text = request.match_info["id"]
    alert_id = parse_row_id(text)
    if alert_id is None:
        if text.isascii() and text.isdigit():
            return error_response(404, f"alert {text[:32]}: no such alert")
        return error_response(400, "alert id: expected a non-negative integer")
    by = "staff"
    if request.can_read_body:
        body = await read_json(request, AlertActor, '{"by": "name"}')
        if isinstance(body, web.Response):
            return body
        by = body.by[:64]
    if ctx.writer is None:
        return error_response(503, "store is read-only")
    fn = alert_store.acknowledge if action == "ack" else alert_store.resolve
    now = int(time.time() * 1000)
    event = await ctx.writer.run_job(lambda conn: fn(conn, alert_id, by, now), urgent=True)
    if event is None:
        return error_response(
            409,
            f"alert {alert_id} does not exist or cannot be {'acknowledged' if action == 'ack' else 'resolved'} now",
        )
    if ctx.bus is not None and isinstance(event, alert_store.AlertEvent):
        ctx.bus.publish([event])
    return json_response(event)


async def ack_alert(request: web.Request) -> web.Response:
    return await _alert_action(request, "ack")


async def resolve_alert(request: web.Request) -> web.Response:
    return await _alert_action(request, "resolve")


class RouteRequest(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename={"start": "from", "end": "to"}
):
    items: list[str]
    start: str | None = None
    end: str | None = None
    accessible: bool = False
    precedence: bool = True


async def routes(request: web.Request) -> web.Response:
    """Plan a walk for any list, with congestion from the zones' live occupancy."""
    body = await read_json(request, RouteRequest, '{"items": ["milk", "bread"]}')
    if isinstance(body, web.Response):
        return body
    result = await plan_for(
        request.app[CONTEXT], body.items, body.start, body.end, body.accessible, body.precedence
    )
    return result if isinstance(result, web.Response) else json_response(result)


async def plan_for(
    ctx: ApiContext,
    items: list[str],
    start: str | None,
    end: str | None,
    accessible: bool,
    precedence: bool,
) -> dict[str, object] | web.Response:
    """The route's JSON for ``items`` (solved in an executor), or the error response to send."""
    if ctx.layout is None:
        return error_response(503, "no store layout loaded: set [store] layout")
    if not 1 <= len(items) <= 200:
        return error_response(400, "items: expected 1 to 200 entries")
    congestion = {z.id: z.occupancy / z.capacity for z in await ctx.reader.zones() if z.capacity}
    layout = ctx.layout()  # one layout for the whole plan, even if a new one goes live meanwhile
    try:
        route = await asyncio.get_running_loop().run_in_executor(
            None, lambda: plan_route(layout, items, start, end, accessible, precedence, congestion)
        )
    except RoutingError as exc:
        return error_response(422, str(exc))
    return route.to_dict()


async def footfall(request: web.Request) -> web.Response:
    try:
        hours = float(request.query.get("hours", "24"))
    except ValueError:
        return error_response(400, "hours: expected a number")
    if not 0 < hours <= 24 * 90:
        return error_response(400, "hours: expected 0 < hours <= 2160")
    since_ms = int((time.time() - hours * 3600) * 1000)
    return json_response(await request.app[CONTEXT].reader.footfall(since_ms - since_ms % 3_600_000))


async def restock(request: web.Request) -> web.Response:
    return json_response(await request.app[CONTEXT].reader.restock())


async def events(request: web.Request) -> web.StreamResponse:
    """WebSocket: every alert change as JSON, live. Sends the active alerts first."""
    ctx = request.app[CONTEXT]
    socket = web.WebSocketResponse(heartbeat=30)
    await socket.prepare(request)
    if ctx.bus is None:
        await socket.close()
        return socket
    queue = ctx.bus.subscribe()
    request.app[SOCKETS].add(socket)

    async def send() -> None:
        for event in reversed(await ctx.reader.alerts("active", 1000)):
            await socket.send_str(_json.encode({"type": "alert", "alert": event}).decode())
        while True:
            event = await queue.get()
            await socket.send_str(_json.encode({"type": "alert", "alert": event}).decode())

    sender = asyncio.create_task(send())
    try:
        async for _message in socket:  # ends when the client (or shutdown) closes the socket
            pass
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        ctx.bus.unsubscribe(queue)
        request.app[SOCKETS].discard(socket)
    return socket


async def _close_sockets(app: web.Application) -> None:
    sockets: set[web.WebSocketResponse] = app[SOCKETS]
    for socket in list(sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"store daemon stopping")


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/healthz", healthz),
    ("GET", "/metrics", metrics),
    ("GET", "/api/v1/summary", summary),
    ("GET", "/api/v1/shelves", shelves),
    ("GET", "/api/v1/fridges", fridges),
    ("GET", "/api/v1/zones", zones),
    ("GET", "/api/v1/devices", devices),
    ("GET", "/api/v1/quarantine", quarantine),
    ("GET", "/api/v1/suspicious", suspicious),
    ("GET", "/api/v1/alerts", alerts),
    ("POST", "/api/v1/alerts/{id}/ack", ack_alert),
    ("POST", "/api/v1/alerts/{id}/resolve", resolve_alert),
    ("GET", "/api/v1/restock", restock),
    ("GET", "/api/v1/analytics/footfall", footfall),
    ("POST", "/api/v1/routes", routes),
    ("GET", "/api/v1/events", events),
]


def build_app(
    context: ApiContext, extra_routes: list[tuple[str, str, Handler]] | None = None
) -> web.Application:
    app = web.Application(middlewares=[authorize])
    app[CONTEXT] = context
    app[THROTTLE] = AuthThrottle()
    sockets: set[web.WebSocketResponse] = set()
    app[SOCKETS] = sockets
    app.on_shutdown.append(_close_sockets)
    for method, path, handler in [*ROUTES, *(extra_routes or [])]:
        app.router.add_route(method, path, handler)
    return app
