"""The shopper-facing HTTP routes (docs/customers.md): consent, predictions, the smart shopping list,
offers, the in-store route, feedback and "forget me" (kiosk sessions: `edge.customers.session_routes`).

Who may call what is decided before a handler runs (`edge.http.app.authorize` with `edge.http.access`); a handler
only sees a household its caller may read, and an unverified session (a typed card number) only the
generic list, offers and route. Every read of a household's data writes an `access_log` row,
committed alongside the read (the two run concurrently, so the audit costs no extra latency).
The predictions engine is anything with the `PredictionSource` shape (`edge.predictions.service`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiohttp import web

from edge.customers import tables
from edge.customers.offers import OffersView, Promotion, load_promotions, offers_for
from edge.customers.tables import ConsentUpdate, FeedbackVote
from edge.customers.visit import ListEntry, VisitPlan, parse_items, visit_plan
from edge.http.access import log_access
from edge.http.app import CONTEXT, PRINCIPAL
from edge.http.responses import Handler, error_response, json_response, read_json
from edge.http.sessions import SessionSigner, is_revoked, record_revocation
from edge.http.staff_routes import plan_for
from edge.live_file import LiveFile
from edge.store.db import ReadThread
from edge.store.hooks import HouseholdHooks
from edge.store.writer import StoreWriter
from routing import RoutingError, plan_route

log = logging.getLogger(__name__)
T = TypeVar("T")
# What a write job reports instead of raising (a raise would roll back the writer's whole batch).
ENDED, LIMITED = "ended", "limited"


class ShoppingList(Protocol):
    @property
    def personalised(self) -> bool: ...
    @property
    def model_version(self) -> str | None: ...
    @property
    def urgent(self) -> Sequence[ListEntry]: ...
    @property
    def upcoming(self) -> Sequence[ListEntry]: ...
    @property
    def usual(self) -> Sequence[ListEntry]: ...


class PredictionSource(Protocol):
    """What the customer routes need from the predictions engine (`edge.predictions.service`)."""

    async def predictions(self, household: str) -> Any: ...  # a msgspec Struct, or None: nothing scored
    async def shopping_list(self, household: str, now_ms: int | None = None) -> ShoppingList: ...
    async def generic_list(self, household: str, now_ms: int | None = None) -> ShoppingList: ...
    async def shelf_forecast(self, shelf: str) -> Any: ...  # a msgspec Struct, or None: unknown shelf
    def request_rescore(self, household: str) -> None: ...


@dataclass(frozen=True, slots=True)
class CustomerSettings:
    store_id: str
    store_name: str
    idle_s: float
    countdown_s: float
    session_s: float
    categories: tuple[str, ...]
    timezone: dt.tzinfo
    unknown_households_per_day: int
    promotion_paths: tuple[Path, ...]  # first existing wins (central's bundle, then [store] promotions)
    layout_text: Callable[[], str]  # the served layout's TOML, for kiosks' route maps (routing.parse_layout)
    currency: str = "EUR"  # [store] currency: the kiosk shows prices in it


def promotions_source(paths: Sequence[Path]) -> LiveFile[tuple[Promotion, ...]]:
    """The promotions file, re-read when it changes (a new bundle), keeping the last good one."""
    return LiveFile(paths, load_promotions, (), "promotions_invalid")


class AuditedReads:
    """Reads of a household's data, each with its access_log row committed concurrently."""

    def __init__(self, db_path: Path, writer: StoreWriter, name: str) -> None:
        self.writer = writer
        self.reads = ReadThread(db_path, name)

    async def close(self) -> None:
        await self.reads.close()

    async def read(self, request: web.Request, household: str, read: Callable[[sqlite3.Connection], T]) -> T:
        return await self.call(request, household, lambda: self.reads.run(read))

    async def call(self, request: web.Request, household: str, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``, with its access_log row committed concurrently; returns once both are done."""
        principal = request[PRINCIPAL]
        resource = request.match_info.route.resource
        route = f"{request.method} {resource.canonical if resource is not None else request.path}"
        now = _now_ms()
        logged = self.writer.run_job(
            lambda c: log_access(c, household, route, principal.role, now), urgent=True
        )
        _, value = await asyncio.gather(logged, read())
        return value


class CustomerApi:
    def __init__(
        self,
        settings: CustomerSettings,
        db_path: Path,
        writer: StoreWriter,
        sessions: SessionSigner,
        predictions: PredictionSource | None,
        hooks: HouseholdHooks,
    ) -> None:
        self.settings = settings
        self._hooks = hooks  # what other capabilities do on a consent change or an erasure
        self._writer = writer
        self._sessions = sessions
        self._predictions = predictions
        self._audit = AuditedReads(db_path, writer, "sqlite-customers")
        self.promotions = promotions_source(settings.promotion_paths)  # also the catalog's (edge.catalog)

    async def close(self) -> None:
        await self._audit.close()

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/api/v1/customers/{id}/consent", self.get_consent),
            ("PUT", "/api/v1/customers/{id}/consent", self.put_consent),
            ("GET", "/api/v1/customers/{id}/predictions", self.get_predictions),
            ("GET", "/api/v1/customers/{id}/offers", self.get_offers),
            ("DELETE", "/api/v1/customers/{id}", self.erase),
            ("GET", "/api/v1/recommendations/shopping-list/{id}", self.get_shopping_list),
            ("POST", "/api/v1/recommendations/shopping-list/{id}/feedback", self.post_feedback),
            ("GET", "/api/v1/in-store/{id}/optimal-route", self.get_optimal_route),
            ("GET", "/api/v1/in-store/{id}/personalization", self.get_personalization),
            ("GET", "/api/v1/shelves/{id}/forecast", self.get_shelf_forecast),
        ]

    # -- consent ------------------------------------------------------------------------------------
    async def get_consent(self, request: web.Request) -> web.Response:
        household = request.match_info["id"]
        return json_response(
            await self._audit.read(request, household, lambda c: tables.consent_of(c, household))
        )

    async def put_consent(self, request: web.Request) -> web.Response:
        household = request.match_info["id"]
        body = await read_json(request, ConsentUpdate, '{"personalisation": true, "analytics": false}')
        if isinstance(body, web.Response):
            return body
        now, session = _now_ms(), request[PRINCIPAL].session
        day_start, per_day = self._day_start_ms(now), self.settings.unknown_households_per_day

        def job(conn: sqlite3.Connection) -> tables.ConsentView | str:
            if session is not None and is_revoked(conn, session):
                return ENDED
            if not tables.unknown_consent_allowed(conn, household, day_start, per_day):
                return LIMITED
            return tables.set_consent(conn, household, body, now, self._hooks)

        view = await self._writer.run_job(job, urgent=True)
        if view == ENDED:
            return error_response(401, "session ended")
        if not isinstance(view, tables.ConsentView):
            return error_response(
                429,
                f"consent: this store took consent from {per_day} households that never bought here today;"
                " try again tomorrow ([privacy] unknown_households_per_day)",
            )
        if view.personalisation and self._predictions is not None:
            self._predictions.request_rescore(household)
        return json_response(view)

    # -- predictions, list, offers, route -------------------------------------------------------------
    async def get_predictions(self, request: web.Request) -> web.Response:
        household = request.match_info["id"]
        if self._predictions is None:
            return error_response(503, "predictions: no models loaded")
        if not await self._audit.read(request, household, lambda c: tables.has_consent(c, household)):
            return error_response(403, "consent: the household has not consented to personalisation")
        predictions = await self._predictions.predictions(household)
        if predictions is None:  # consent withdrawn since the check above
            return error_response(403, "consent: the household has not consented to personalisation")
        return json_response(predictions)

    async def get_shopping_list(self, request: web.Request) -> web.Response:
        household = request.match_info["id"]
        shopping = await self._shopping_list(request, household)
        if isinstance(shopping, web.Response):
            return shopping
        return json_response(shopping)

    async def get_offers(self, request: web.Request) -> web.Response:
        household = request.match_info["id"]
        shopping = await self._shopping_list(request, household)
        if isinstance(shopping, web.Response):
            return shopping
        return json_response(await self._offers(shopping))

    async def _offers(self, shopping: ShoppingList) -> OffersView:
        now = dt.datetime.now(self.settings.timezone)
        promotions = await asyncio.to_thread(self.promotions.current)  # stat (and a re-read) off the loop
        if not shopping.personalised:
            return offers_for(promotions, now, None)
        due = [i.category for i in (*shopping.urgent, *shopping.upcoming)]
        return offers_for(promotions, now, due, [i.category for i in shopping.usual])

    async def _list_to_route(
        self, request: web.Request
    ) -> tuple[ShoppingList, list[str], bool] | web.Response:
        """The household's list, its items and ``?accessible=`` for a route over it, or the error to send.

        ``?items=milk,bread`` routes those entries instead of the whole list (what is left after the
        shopper ticked some off; empty: nothing left, walk to the checkout), and ``?from=`` re-plans
        from where the shopper stands (a layout node, e.g. the last ticked item's)."""
        accessible = request.query.get("accessible", "false").lower()
        if accessible not in ("true", "false", "1", "0"):
            return error_response(400, "accessible: expected true or false")
        try:  # the list as the shopper has it now (edited, items ticked off), if given
            chosen = parse_items(request.query["items"]) if "items" in request.query else None
        except ValueError as exc:
            return error_response(400, str(exc))
        shopping = await self._shopping_list(request, request.match_info["id"])
        if isinstance(shopping, web.Response):
            return shopping
        if chosen is not None:
            return shopping, chosen, accessible in ("true", "1")
        items = [i.category for i in (*shopping.urgent, *shopping.upcoming, *shopping.usual)]
        if not items:
            return error_response(404, "shopping list: empty, nothing to route")
        return shopping, items, accessible in ("true", "1")

    async def get_optimal_route(self, request: web.Request) -> web.Response:
        found = await self._list_to_route(request)
        if isinstance(found, web.Response):
            return found
        _shopping, items, accessible = found
        result = await plan_for(
            request.app[CONTEXT],
            items,
            request.query.get("from") or None,
            request.query.get("to") or None,
            accessible,
            True,
        )
        if isinstance(result, web.Response):
            return result
        return json_response({**result, "items": items})

    async def get_personalization(self, request: web.Request) -> web.Response:
        """The visit in one document (`edge.customers.visit`): route by section, skips, cold chain,
        offers, reminders."""
        found = await self._list_to_route(request)
        if isinstance(found, web.Response):
            return found
        shopping, items, step_free = found
        household = request.match_info["id"]
        ctx = request.app[CONTEXT]
        if ctx.layout is None:
            return error_response(503, "no store layout loaded: set [store] layout")
        layout = ctx.layout()
        congestion = {z.id: z.occupancy / z.capacity for z in await ctx.reader.zones() if z.capacity}
        start, end = request.query.get("from") or None, request.query.get("to") or None
        offers = (await self._offers(shopping)).offers
        groups = {"urgent": shopping.urgent, "upcoming": shopping.upcoming, "usual": shopping.usual}

        def plan() -> VisitPlan:  # shortest paths: CPU work, off the event loop
            route = plan_route(layout, items, start, end, step_free, True, congestion)
            return visit_plan(
                layout, route, groups, offers, household=household, personalised=shopping.personalised,
                accessible=step_free,
            )  # fmt: skip

        try:
            return json_response(await asyncio.get_running_loop().run_in_executor(None, plan))
        except RoutingError as exc:
            return error_response(422, str(exc))

    async def post_feedback(self, request: web.Request) -> web.Response:
        household = request.match_info["id"]
        body = await read_json(request, FeedbackVote, '{"category": "milk", "vote": "up"}')
        if isinstance(body, web.Response):
            return body
        if body.category not in self.settings.categories:
            return error_response(400, f"category: {body.category!r} is not sold in this store")
        now, session = _now_ms(), request[PRINCIPAL].session
        day_start = self._day_start_ms(now)

        def record(conn: sqlite3.Connection) -> str | None:
            if session is not None and is_revoked(conn, session):
                return ENDED
            if not tables.feedback_allowed(conn, household, day_start):
                return LIMITED
            # The list came from the next-basket model: its version is what the vote is about.
            found = conn.execute(
                "SELECT basket_model_version, experiment, arm FROM predictions WHERE household = ? LIMIT 1",
                (household,),
            ).fetchone()
            served_by = (found[0], found[1], found[2]) if found else (None, None, None)
            tables.record_feedback(conn, household, body, served_by, now)
            return None

        refused = await self._writer.run_job(record, urgent=True)
        if refused == ENDED:
            return error_response(401, "session ended")
        if refused == LIMITED:
            limit = tables.FEEDBACK_PER_DAY
            return error_response(429, f"feedback: at most {limit} votes per household a day")
        return json_response({"recorded": True}, 201)

    # -- forget me ----------------------------------------------------------------------------------
    async def erase(self, request: web.Request) -> web.Response:
        """Erase the household and end every session of it, here and after a restart. The revocation
        is in memory first (no request is let in from now), then persisted with the erasure itself."""
        household = request.match_info["id"]
        principal = request[PRINCIPAL]
        now = _now_ms()
        revocation = self._sessions.revoke_household(household, now)

        def job(conn: sqlite3.Connection) -> dict[str, int]:
            record_revocation(conn, revocation)
            return tables.erase_household(conn, household, now, self._hooks)

        touched = await self._writer.run_job(job, urgent=True)
        log.info("household_erased", extra={"rows": sum(touched.values()), "by": principal.role})
        return json_response({"erased": True, "customer": household})

    # -- staff --------------------------------------------------------------------------------------
    async def get_shelf_forecast(self, request: web.Request) -> web.Response:
        if self._predictions is None:
            return error_response(503, "forecast: no models loaded")
        forecast = await self._predictions.shelf_forecast(request.match_info["id"])
        if forecast is None:
            return error_response(404, f"shelf {request.match_info['id']!r}: not in the planogram")
        return json_response(forecast)

    # -- helpers ------------------------------------------------------------------------------------
    async def _shopping_list(self, request: web.Request, household: str) -> ShoppingList | web.Response:
        if self._predictions is None:
            return error_response(503, "shopping list: no models loaded")
        predictions = self._predictions
        if not request[PRINCIPAL].personal:  # an unverified session: the store's list, nothing read
            return await predictions.generic_list(household)
        return await self._audit.call(request, household, lambda: predictions.shopping_list(household))

    def _day_start_ms(self, now_ms: int) -> int:
        local = dt.datetime.fromtimestamp(now_ms / 1000, self.settings.timezone)
        return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)


def _now_ms() -> int:
    return int(time.time() * 1000)
