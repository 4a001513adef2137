"""The staff routes over the store's state: shelves, fridges, zones, devices, quarantine, suspicious
purchases, alerts (list, ack, resolve, live over a WebSocket), restock, footfall, and route planning.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
from aiohttp import web

from edge.http.app import CONTEXT, SOCKETS, ApiContext
from edge.http.responses import Handler, error_response, json_response, parse_row_id, read_json
from edge.state import alerts as alert_store
from routing import RoutingError, plan_route

_json = msgspec.json.Encoder()


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


def _reason_and_limit(request: web.Request) -> tuple[str | None, int] | web.Response:
    """``?reason=&limit=`` of the quarantine and suspicious lists, or the 400 to send."""
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        return error_response(400, "limit: expected an integer")
    if not 1 <= limit <= 1000:
        return error_response(400, "limit: expected 1..1000")
    return request.query.get("reason") or None, limit


async def quarantine(request: web.Request) -> web.Response:
    query = _reason_and_limit(request)
    if isinstance(query, web.Response):
        return query
    return json_response(await request.app[CONTEXT].reader.quarantine(*query))


async def suspicious(request: web.Request) -> web.Response:
    query = _reason_and_limit(request)
    if isinstance(query, web.Response):
        return query
    return json_response(await request.app[CONTEXT].reader.suspicious(*query))


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


# The staff routes the daemon hands to `edge.http.app.build_app` (roles: `edge.http.access`).
ROUTES: list[tuple[str, str, Handler]] = [
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
