"""Kiosk routes and shopper sessions (docs/customers.md): the kiosk's info and layout, opening a session
for a card, ending it.

Opening a session is rate-limited per address (`edge.http.access.SessionRateLimit`, ``[kiosk]
sessions_per_minute`` / ``session_burst``). A card read with its check code (`edge.customers.privacy.CardCheck`: a
scanned barcode, or the number and code typed) opens a *verified* session, which may see the household's
own data; a bare number opens an *unverified* one, which gets the store's generic list, offers and route
only. The answer to an unverified opening reads nothing and is the same for a card with a history here
and for one never seen, so trying numbers at a kiosk tells nothing.
"""

from __future__ import annotations

import logging
import sqlite3

import msgspec
from aiohttp import web

from edge.customers import tables
from edge.customers.privacy import CardCheck, CardEntry, Pseudonymiser
from edge.customers.routes import AuditedReads, CustomerSettings
from edge.http.access import SessionRateLimit
from edge.http.app import PRINCIPAL
from edge.http.responses import Handler, error_response, json_response, read_json, too_many
from edge.http.sessions import SessionSigner, record_revocation
from edge.store.writer import StoreWriter

log = logging.getLogger(__name__)
CARD_MAX = 64


class SessionRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    card: str
    code: str | None = None  # the check code, typed apart from the number (a scan sends "<number>-<code>")


class SessionOpened(msgspec.Struct, frozen=True):
    customer: str
    token: str
    expires_ms: int
    verified: bool
    known: bool | None  # None: an unverified session is told nothing about the household
    first_name: str | None
    consent: tables.ConsentView | None


class KioskInfo(msgspec.Struct, frozen=True):
    store: str
    name: str
    idle_s: float
    countdown_s: float
    session_s: float
    categories: list[str]
    currency: str = "EUR"


class SessionApi:
    def __init__(
        self,
        settings: CustomerSettings,
        audit: AuditedReads,
        writer: StoreWriter,
        pseudonymiser: Pseudonymiser,
        cards: CardCheck,
        sessions: SessionSigner,
        rate: SessionRateLimit,
    ) -> None:
        self.settings = settings
        self._audit = audit
        self._writer = writer
        self._pseudonymiser = pseudonymiser
        self._cards = cards
        self._sessions = sessions
        self._rate = rate

    async def close(self) -> None:
        await self._audit.close()

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/api/v1/kiosk/info", self.kiosk_info),
            ("GET", "/api/v1/kiosk/layout", self.kiosk_layout),
            ("POST", "/api/v1/kiosk/sessions", self.open_session),
            ("DELETE", "/api/v1/kiosk/sessions/current", self.end_session),
        ]

    async def kiosk_info(self, _request: web.Request) -> web.Response:
        s = self.settings
        return json_response(
            KioskInfo(
                s.store_id, s.store_name, s.idle_s, s.countdown_s, s.session_s, list(s.categories), s.currency
            )
        )

    async def kiosk_layout(self, _request: web.Request) -> web.Response:
        return web.Response(
            text=self.settings.layout_text(), content_type="application/toml", charset="utf-8"
        )

    async def open_session(self, request: web.Request) -> web.Response:
        if request[PRINCIPAL].role == "kiosk":  # staff may read any household anyway
            client = request.remote or "?"
            wait_s = self._rate.take(client)
            if wait_s is not None:
                log.warning("session_rate_limited", extra={"client": client})
                return too_many(
                    f"sessions: too many opened from {client}; try again in {wait_s:.0f} s", wait_s
                )
        body = await read_json(request, SessionRequest, '{"card": "<loyalty card number or barcode>"}')
        if isinstance(body, web.Response):
            return body
        entry = self._read_card(body)
        if isinstance(entry, web.Response):
            return entry
        household = self._pseudonymiser.household_id(entry.card)
        session = self._sessions.issue(household, entry.verified)
        if not entry.verified:
            opened = SessionOpened(household, session.token, session.expires_ms, False, None, None, None)
            return json_response(opened, 201)

        def read(conn: sqlite3.Connection) -> tuple[bool, tables.ConsentView]:
            return tables.is_known(conn, household), tables.consent_of(conn, household)

        known, consent = await self._audit.read(request, household, read)
        opened = SessionOpened(household, session.token, session.expires_ms, True, known, None, consent)
        return json_response(opened, 201)

    def _read_card(self, body: SessionRequest) -> CardEntry | web.Response:
        card = body.card.strip()
        if not 1 <= len(card) <= CARD_MAX or not card.isprintable():
            return error_response(400, f"card: expected 1 to {CARD_MAX} printable characters")
        if body.code is None:
            return self._cards.read(card)
        if not self._cards.matches(card, body.code):
            return error_response(
                422, "code: does not match the card number (check the code under the barcode)"
            )
        return CardEntry(card, True)

    async def end_session(self, request: web.Request) -> web.Response:
        session = request[PRINCIPAL].session
        if session is None:
            return json_response({"revoked": False})
        revocation = self._sessions.revoke(session)
        await self._writer.run_job(lambda conn: record_revocation(conn, revocation), urgent=True)
        return json_response({"revoked": True})
