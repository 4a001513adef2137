"""The shopper-facing HTTP routes (docs/customers.md): kiosk sessions, consent, predictions, the smart
shopping list, offers, the in-store route, feedback and "forget me".

Who may call what is decided before a handler runs (`edge.api.authorize` with `edge.access`); a handler
only sees a household its caller may read. Every read of a household's data writes an `access_log` row,
committed alongside the read (the two run concurrently, so the audit costs no extra latency).
The predictions engine is anything with the `PredictionSource` shape (`edge.predictions`).
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

import msgspec
from aiohttp import web

from edge import customers
from edge.access import SessionSigner
from edge.api import CONTEXT, PRINCIPAL, Handler, error_response, json_response, plan_for
from edge.customers import ConsentUpdate, FeedbackVote
from edge.db import ReadThread
from edge.errors import ConfigError, field_error
from edge.offers import Promotion, load_promotions, offers_for
from edge.prediction_store import has_consent
from edge.privacy import Pseudonymiser
from edge.writer import StoreWriter

log = logging.getLogger(__name__)
T = TypeVar("T")
CARD_MAX = 64


class ListItem(Protocol):
    @property
    def category(self) -> str: ...


class ShoppingList(Protocol):
    @property
    def personalised(self) -> bool: ...
    @property
    def model_version(self) -> str | None: ...
    @property
    def urgent(self) -> Sequence[ListItem]: ...
    @property
    def upcoming(self) -> Sequence[ListItem]: ...
    @property
    def usual(self) -> Sequence[ListItem]: ...


class PredictionSource(Protocol):
    """What the customer routes need from the predictions engine (`edge.predictions`)."""

    async def predictions(self, household: str) -> Any: ...  # a msgspec Struct, or None: nothing scored
    async def shopping_list(self, household: str, now_ms: int | None = None) -> ShoppingList: ...
    async def shelf_forecast(self, shelf: str) -> Any: ...  # a msgspec Struct, or None: unknown shelf
    def request_rescore(self, household: str) -> None: ...


class SessionRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    card: str


class SessionOpened(msgspec.Struct, frozen=True):
    customer: str
    token: str
    expires_ms: int
    known: bool
    first_name: str | None
    consent: customers.ConsentView


class KioskInfo(msgspec.Struct, frozen=True):
    store: str
    name: str
    idle_s: float
    countdown_s: float
    session_s: float
    categories: list[str]


@dataclass(frozen=True, slots=True)
class CustomerSettings:
    store_id: str
    store_name: str
    idle_s: float
    countdown_s: float
    session_s: float
    categories: tuple[str, ...]
    timezone: dt.tzinfo
    promotion_paths: tuple[Path, ...]  # first existing wins (central's bundle, then [store] promotions)
    layout_text: Callable[[], str]  # the served layout's TOML, for kiosks' route maps (routing.parse_layout)


class PromotionsSource:
    """The promotions file, re-read when it changes (a new bundle), keeping the last good one."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._paths = tuple(paths)
        self._loaded: tuple[Path, float] | None = None
        self._promotions: tuple[Promotion, ...] = ()

    def current(self) -> tuple[Promotion, ...]:
        for path in self._paths:
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if self._loaded != (path, mtime):
                self._loaded = (path, mtime)
                problem = self._load(path)
                if problem is not None:
                    log.error("promotions_invalid", extra={"error": problem})
            return self._promotions
        return ()

    def _load(self, path: Path) -> str | None:
        try:
            self._promotions = load_promotions(path)
        except ConfigError as exc:
            return str(exc)
        return None


class CustomerApi:
    def __init__(
        self,
        settings: CustomerSettings,
        db_path: Path,
        writer: StoreWriter,
        pseudonymiser: Pseudonymiser,
        sessions: SessionSigner,
        predictions: PredictionSource | None,
    ) -> None:
        self.settings = settings
        self._writer = writer
        self._pseudonymiser = pseudonymiser
        self._sessions = sessions
        self._predictions = predictions
        self._reads = ReadThread(db_path, "sqlite-customers")
        self._promotions = PromotionsSource(settings.promotion_paths)

    async def close(self) -> None:
        await self._reads.close()

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/api/v1/kiosk/info", self.kiosk_info),
            ("GET", "/api/v1/kiosk/layout", self.kiosk_layout),
            ("POST", "/api/v1/kiosk/sessions", self.open_session),
            ("DELETE", "/api/v1/kiosk/sessions/current", self.end_session),
            ("GET", "/api/v1/customers/{id}/consent", self.get_consent),
            ("PUT", "/api/v1/customers/{id}/consent", self.put_consent),
            ("GET", "/api/v1/customers/{id}/predictions", self.get_predictions),
            ("GET", "/api/v1/customers/{id}/offers", self.get_offers),
            ("DELETE", "/api/v1/customers/{id}", self.erase),
            ("GET", "/api/v1/recommendations/shopping-list/{id}", self.get_shopping_list),
            ("POST", "/api/v1/recommendations/shopping-list/{id}/feedback", self.post_feedback),
            ("GET", "/api/v1/in-store/{id}/optimal-route", self.get_optimal_route),
            ("GET", "/api/v1/shelves/{id}/forecast", self.get_shelf_forecast),
        ]

    # -- sessions -----------------------------------------------------------------------------------
    async def kiosk_info(self, _request: web.Request) -> web.Response:
        s = self.settings
        return json_response(
            KioskInfo(s.store_id, s.store_name, s.idle_s, s.countdown_s, s.session_s, list(s.categories))
        )

    async def kiosk_layout(self, _request: web.Request) -> web.Response:
        return web.Response(
            text=self.settings.layout_text(), content_type="application/toml", charset="utf-8"
        )

    async def open_session(self, request: web.Request) -> web.Response:
        body = await _body(request, SessionRequest, '{"card": "<loyalty card number>"}')
        if isinstance(body, web.Response):
            return body
        card = body.card.strip()
        if not 1 <= len(card) <= CARD_MAX or not card.isprintable():
            return error_response(400, f"card: expected 1 to {CARD_MAX} printable characters")
        household = self._pseudonymiser.household_id(card)
        session = self._sessions.issue(household)

        def read(conn: sqlite3.Connection) -> tuple[bool, customers.ConsentView]:
            return customers.is_known(conn, household), customers.consent_of(conn, household)

        known, consent = await self._audited(request, household, read)
        opened = SessionOpened(household, session.token, session.expires_ms, known, None, consent)
        return json_response(opened, 201)

    async def end_session(self, request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        session = self._sessions.verify(principal.token or "")
        if session is not None:
            self._sessions.revoke(session)
        return json_response({"revoked": session is not None})

    # -- consent ------------------------------------------------------------------------------------
    async def get_consent(self, request: web.Request) -> web.Response:
        household = request.match_info["id"]
        return json_response(
            await self._audited(request, household, lambda c: customers.consent_of(c, household))
        )

    async def put_consent(self, request: web.Request) -> web.Response:
        household = request.match_info["id"]
        body = await _body(request, ConsentUpdate, '{"personalisation": true, "analytics": false}')
        if isinstance(body, web.Response):
            return body
        now = _now_ms()
        view = await self._writer.run_job(
            lambda conn: customers.set_consent(conn, household, body, now), urgent=True
        )
        if view.personalisation and self._predictions is not None:
            self._predictions.request_rescore(household)
        return json_response(view)

    # -- predictions, list, offers, route -------------------------------------------------------------
    async def get_predictions(self, request: web.Request) -> web.Response:
        household = request.match_info["id"]
        if self._predictions is None:
            return error_response(503, "predictions: no models loaded")
        if not await self._audited(request, household, lambda c: has_consent(c, household)):
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
        now = dt.datetime.now(self.settings.timezone)
        promotions = await asyncio.to_thread(self._promotions.current)  # stat (and a re-read) off the loop
        if not shopping.personalised:
            return json_response(offers_for(promotions, now, None))
        due = [i.category for i in (*shopping.urgent, *shopping.upcoming)]
        return json_response(offers_for(promotions, now, due, [i.category for i in shopping.usual]))

    async def get_optimal_route(self, request: web.Request) -> web.Response:
        household = request.match_info["id"]
        accessible = request.query.get("accessible", "false").lower()
        if accessible not in ("true", "false", "1", "0"):
            return error_response(400, "accessible: expected true or false")
        shopping = await self._shopping_list(request, household)
        if isinstance(shopping, web.Response):
            return shopping
        items = [i.category for i in (*shopping.urgent, *shopping.upcoming, *shopping.usual)]
        if not items:
            return error_response(404, "shopping list: empty, nothing to route")
        result = await plan_for(
            request.app[CONTEXT],
            items,
            request.query.get("from") or None,
            request.query.get("to") or None,
            accessible in ("true", "1"),
            True,
        )
        if isinstance(result, web.Response):
            return result
        return json_response({**result, "items": items})

    async def post_feedback(self, request: web.Request) -> web.Response:
        household = request.match_info["id"]
        body = await _body(request, FeedbackVote, '{"category": "milk", "vote": "up"}')
        if isinstance(body, web.Response):
            return body
        if body.category not in self.settings.categories:
            return error_response(400, f"category: {body.category!r} is not sold in this store")
        now = _now_ms()

        def record(conn: sqlite3.Connection) -> None:
            # The list came from the next-basket model: its version is what the vote is about.
            found = conn.execute(
                "SELECT basket_model_version FROM predictions WHERE household = ? LIMIT 1", (household,)
            ).fetchone()
            customers.record_feedback(conn, household, body, found[0] if found else None, now)

        await self._writer.run_job(record, urgent=True)
        return json_response({"recorded": True}, 201)

    # -- forget me ----------------------------------------------------------------------------------
    async def erase(self, request: web.Request) -> web.Response:
        household = request.match_info["id"]
        now = _now_ms()
        touched = await self._writer.run_job(
            lambda conn: customers.erase_household(conn, household, now), urgent=True
        )
        principal = request[PRINCIPAL]
        session = self._sessions.verify(principal.token or "") if principal.role == "session" else None
        if session is not None:
            self._sessions.revoke(session)
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
        return await self._audited_call(request, household, lambda: predictions.shopping_list(household))

    async def _audited(
        self, request: web.Request, household: str, read: Callable[[sqlite3.Connection], T]
    ) -> T:
        return await self._audited_call(request, household, lambda: self._reads.run(read))

    async def _audited_call(
        self, request: web.Request, household: str, read: Callable[[], Awaitable[T]]
    ) -> T:
        """``read()``, with its access_log row committed concurrently; returns once both are done."""
        principal = request[PRINCIPAL]
        resource = request.match_info.route.resource
        route = f"{request.method} {resource.canonical if resource is not None else request.path}"
        now = _now_ms()
        logged = self._writer.run_job(
            lambda c: customers.log_access(c, household, route, principal.role, now), urgent=True
        )
        _, value = await asyncio.gather(logged, read())
        return value


B = TypeVar("B")


async def _body(request: web.Request, kind: type[B], example: str) -> B | web.Response:
    try:
        return msgspec.json.decode(await request.read(), type=kind)
    except msgspec.ValidationError as exc:
        field, problem = field_error(str(exc))
        return error_response(400, f"{field}: {problem}" if field else f"body: {problem}")
    except msgspec.DecodeError:
        return error_response(400, f"body: expected JSON like {example}")


def _now_ms() -> int:
    return int(time.time() * 1000)
