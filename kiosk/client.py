"""A typed client for the daemon's HTTP API and its WebSocket alert stream.

The kiosk never touches the database: everything it shows comes through here. Connection failures
are retried with backoff for up to `retry_for_s` (the daemon may be restarting); the listener set
with `on_connection` hears when the daemon goes away and comes back, so the app can say
"reconnecting". A request is only repeated when it cannot have reached the daemon (GETs, or a
refused connection), so no POST is ever applied twice by a retry.

    async with KioskClient("http://127.0.0.1:8080", kiosk_token="...") as api:
        info = await api.info()
        session = await api.open_session("4000123412341234")
        listing = await api.shopping_list(session)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec

from kiosk.errors import ApiError, DaemonUnreachableError, NotAuthorizedError
from kiosk.schemas import (
    AbTest,
    Alert,
    CatalogPage,
    Consent,
    EventMessage,
    Fridge,
    KioskInfo,
    Offers,
    ProductSuggestions,
    Quarantine,
    RouteView,
    Session,
    Shelf,
    ShoppingList,
    StaffOverview,
    SyncStatus,
    Vote,
    ZoneOccupancy,
)
from kiosk.staff_insights import Insights, Segments
from kiosk.visit import VisitView
from sensors.backoff import Backoff

__all__ = ["KioskApi", "KioskClient", "StreamState"]

T = TypeVar("T")
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class StreamState:
    """Yielded by `KioskClient.alert_stream` when the WebSocket connects or drops."""

    connected: bool


class KioskApi(Protocol):
    """What the app needs from the daemon (`KioskClient`; tests may pass a fake)."""

    connected: bool
    on_connection: Callable[[bool], None] | None

    async def info(self) -> KioskInfo: ...
    async def layout_text(self) -> str: ...
    async def open_session(self, card: str) -> Session: ...
    async def close_session(self, session: Session) -> None: ...
    async def set_consent(self, session: Session, *, personalisation: bool, analytics: bool) -> Consent: ...
    async def shopping_list(self, session: Session) -> ShoppingList: ...
    async def feedback(self, session: Session, category: str, vote: Vote) -> None: ...
    async def offers(self, session: Session) -> Offers: ...
    async def products(
        self, session: Session, categories: list[str], prefer: Collection[str] = ()
    ) -> ProductSuggestions: ...
    async def search_products(self, session: Session, query: str, limit: int = 6) -> CatalogPage: ...
    async def route(self, token: str, items: list[str], start: str | None = None) -> RouteView: ...
    async def visit(
        self, session: Session, items: list[str], start: str | None = None, *, accessible: bool = False
    ) -> VisitView: ...
    async def forget(self, session: Session) -> None: ...
    async def verify_staff(self, token: str) -> None: ...
    async def acknowledge(self, token: str, alert_id: int, by: str = "kiosk") -> Alert: ...
    async def staff_overview(self, token: str) -> StaffOverview: ...
    async def segments(self, token: str) -> Segments: ...
    async def insights(self, token: str, household: str) -> Insights: ...
    def alert_stream(self, token: str) -> AsyncIterator[Alert | StreamState]: ...


class _Refused(Exception):
    """Internal: the request could not be sent (retry is safe)."""


class KioskClient:
    def __init__(
        self,
        base_url: str,
        kiosk_token: str | None = None,
        *,
        retry_for_s: float = 20.0,
        timeout_s: float = 10.0,
        backoff_min_s: float = 0.2,
        backoff_max_s: float = 2.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.kiosk_token = kiosk_token
        self.retry_for_s = retry_for_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._backoff_min_s = backoff_min_s
        self._backoff_max_s = backoff_max_s
        self._http: aiohttp.ClientSession | None = None
        self.connected = True
        self.on_connection: Callable[[bool], None] | None = None

    async def __aenter__(self) -> Self:
        self._session()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- shopper ---------------------------------------------------------------------------------

    async def info(self) -> KioskInfo:
        return await self._call("GET", "/api/v1/kiosk/info", self.kiosk_token, KioskInfo)

    async def layout_text(self) -> str:
        """The store layout the daemon routes with (TOML), so the kiosk's map always matches."""
        _status, raw = await self._fetch("GET", "/api/v1/kiosk/layout", self.kiosk_token)
        return bytes(raw).decode("utf-8")

    async def open_session(self, card: str) -> Session:
        return await self._call(
            "POST", "/api/v1/kiosk/sessions", self.kiosk_token, Session, body={"card": card}
        )

    async def close_session(self, session: Session) -> None:
        await self._call("DELETE", "/api/v1/kiosk/sessions/current", session.token, dict[str, Any])

    async def consent(self, session: Session) -> Consent:
        return await self._call(
            "GET", f"/api/v1/customers/{_q(session.customer)}/consent", session.token, Consent
        )

    async def set_consent(self, session: Session, *, personalisation: bool, analytics: bool) -> Consent:
        return await self._call(
            "PUT",
            f"/api/v1/customers/{_q(session.customer)}/consent",
            session.token,
            Consent,
            body={"personalisation": personalisation, "analytics": analytics},
        )

    async def shopping_list(self, session: Session) -> ShoppingList:
        path = f"/api/v1/recommendations/shopping-list/{_q(session.customer)}"
        return await self._call("GET", path, session.token, ShoppingList)

    async def feedback(self, session: Session, category: str, vote: Vote) -> None:
        path = f"/api/v1/recommendations/shopping-list/{_q(session.customer)}/feedback"
        await self._call(
            "POST", path, session.token, dict[str, Any], body={"category": category, "vote": vote}
        )

    async def offers(self, session: Session) -> Offers:
        return await self._call(
            "GET", f"/api/v1/customers/{_q(session.customer)}/offers", session.token, Offers
        )

    async def products(
        self, session: Session, categories: list[str], prefer: Collection[str] = ()
    ) -> ProductSuggestions:
        """Products for list items (the usual one with consent, cheaper per unit, best sellers) and the
        list's budget; ``prefer``: labels the shopper asked for at the kiosk (never stored)."""
        path = f"/api/v1/customers/{_q(session.customer)}/product-suggestions"
        params = {"categories": ",".join(categories), "prefer": ",".join(sorted(prefer))}
        return await self._call("GET", path, session.token, ProductSuggestions, params=params)

    async def search_products(self, session: Session, query: str, limit: int = 6) -> CatalogPage:
        """The store's products whose name, brand or category has every word of ``query``."""
        params = {"q": query, "limit": str(limit)}
        return await self._call("GET", "/api/v1/catalog/products", session.token, CatalogPage, params=params)

    async def route(self, token: str, items: list[str], start: str | None = None) -> RouteView:
        body: dict[str, object] = {"items": items}
        if start:
            body["from"] = start
        return await self._call("POST", "/api/v1/routes", token, RouteView, body=body)

    async def visit(
        self, session: Session, items: list[str], start: str | None = None, *, accessible: bool = False
    ) -> VisitView:
        """The visit document routed over ``items`` from ``start`` (a layout node; None: the daemon's
        default), step-free if ``accessible``; used for the route screen and for each re-plan."""
        params = {"items": ",".join(items), "accessible": "true" if accessible else "false"}
        if start:
            params["from"] = start
        path = f"/api/v1/in-store/{_q(session.customer)}/personalization"
        return await self._call("GET", path, session.token, VisitView, params=params)

    async def forget(self, session: Session) -> None:
        await self._call("DELETE", f"/api/v1/customers/{_q(session.customer)}", session.token, dict[str, Any])

    # -- staff -----------------------------------------------------------------------------------

    async def verify_staff(self, token: str) -> None:
        """Raises `NotAuthorizedError` unless `token` opens the staff API."""
        await self._call("GET", "/api/v1/summary", token, dict[str, Any])

    async def alerts(self, token: str, state: str = "active") -> list[Alert]:
        return await self._call("GET", "/api/v1/alerts", token, list[Alert], params={"state": state})

    async def acknowledge(self, token: str, alert_id: int, by: str = "kiosk") -> Alert:
        return await self._call("POST", f"/api/v1/alerts/{alert_id}/ack", token, Alert, body={"by": by})

    async def segments(self, token: str) -> Segments:
        return await self._call("GET", "/api/v1/analytics/customer-segments", token, Segments)

    async def insights(self, token: str, household: str) -> Insights:
        """A household's insights as staff read them (the daemon refuses without analytics consent)."""
        return await self._call("GET", f"/api/v1/customers/{_q(household)}/insights", token, Insights)

    async def staff_overview(self, token: str) -> StaffOverview:
        shelves, fridges, zones, quarantine, sync, tests = await asyncio.gather(
            self._call("GET", "/api/v1/shelves", token, list[Shelf]),
            self._call("GET", "/api/v1/fridges", token, list[Fridge]),
            self._call("GET", "/api/v1/zones", token, list[ZoneOccupancy]),
            self._call("GET", "/api/v1/quarantine", token, Quarantine, params={"limit": "1"}),
            self._optional_sync(token),
            self._optional_tests(token),
        )
        return StaffOverview(shelves, fridges, zones, quarantine, sync, tests)

    async def _optional_tests(self, token: str) -> list[AbTest]:
        try:
            return await self._call("GET", "/api/v1/ab-tests", token, list[AbTest])
        except ApiError as exc:
            if exc.status == 404:  # a daemon without the models (and so without experiments)
                return []
            raise

    async def _optional_sync(self, token: str) -> SyncStatus | None:
        try:
            return await self._call("GET", "/api/v1/sync", token, SyncStatus)
        except ApiError as exc:
            if exc.status == 404:  # a daemon without the sync service
                return None
            raise

    async def alert_stream(self, token: str) -> AsyncIterator[Alert | StreamState]:
        """Alerts from `/api/v1/events` forever: the active ones first, then every change.

        Reconnects with backoff; yields `StreamState(False)` when the socket drops and
        `StreamState(True)` when it is back (the daemon then replays the active alerts, so a consumer
        should forget what it had). A refused token raises `NotAuthorizedError`.
        """
        http = self._session()
        backoff = Backoff(self._backoff_min_s, self._backoff_max_s)
        url = f"{self.base_url}/api/v1/events"
        while True:
            try:
                async with http.ws_connect(
                    url, headers=_auth(token), heartbeat=10, timeout=aiohttp.ClientWSTimeout(ws_close=2)
                ) as socket:
                    backoff.reset()
                    self._set_connected(True)
                    yield StreamState(True)
                    async for frame in socket:
                        if frame.type is not aiohttp.WSMsgType.TEXT:
                            break
                        try:
                            message = msgspec.json.decode(frame.data, type=EventMessage)
                        except msgspec.DecodeError:
                            continue  # a frame this kiosk does not understand: newer daemon
                        if message.alert is not None:
                            yield message.alert
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status in (401, 403):
                    raise NotAuthorizedError(exc.status, "the staff token was refused") from exc
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            self._set_connected(False)
            yield StreamState(False)
            await asyncio.sleep(backoff.next_delay())

    # -- plumbing --------------------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:  # opened lazily, on the event loop that uses it
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return self._http

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            if self.on_connection is not None:
                self.on_connection(connected)

    async def _call(
        self,
        method: str,
        path: str,
        token: str | None,
        into: type[T],
        *,
        body: object | None = None,
        params: dict[str, str] | None = None,
    ) -> T:
        status, raw = await self._fetch(method, path, token, body, params)
        try:
            return msgspec.json.decode(raw, type=into)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ApiError(status, f"unexpected response to {method} {path}: {exc}") from exc

    async def _fetch(
        self,
        method: str,
        path: str,
        token: str | None,
        body: object | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        backoff = Backoff(self._backoff_min_s, self._backoff_max_s)
        deadline = time.monotonic() + self.retry_for_s
        while True:
            try:
                status, raw = await self._send(method, path, token, body, params)
            except _Refused as exc:
                self._set_connected(False)
                delay = backoff.next_delay()
                if time.monotonic() + delay > deadline:
                    raise DaemonUnreachableError(
                        f"the store daemon at {self.base_url} does not answer"
                    ) from exc
                await asyncio.sleep(delay)
                continue
            self._set_connected(True)
            if status >= 400:
                raise _api_error(status, raw)
            return status, raw

    async def _send(
        self, method: str, path: str, token: str | None, body: object | None, params: dict[str, str] | None
    ) -> tuple[int, bytes]:
        http = self._session()
        headers = _auth(token)
        data = None
        if body is not None:
            data = _encode(body)
            headers["Content-Type"] = "application/json"
        try:
            async with http.request(
                method, self.base_url + path, headers=headers, data=data, params=params
            ) as response:
                return response.status, await response.read()
        except aiohttp.ClientConnectorError as exc:
            raise _Refused from exc  # never reached the daemon
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            if method == "GET":
                raise _Refused from exc
            self._set_connected(False)
            raise DaemonUnreachableError(f"{method} {path}: the daemon went away ({exc})") from exc


def _q(value: str) -> str:
    return quote(value, safe="")


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _api_error(status: int, raw: bytes) -> ApiError:
    try:
        message = str(msgspec.json.decode(raw, type=dict[str, Any]).get("error", ""))
    except (msgspec.DecodeError, msgspec.ValidationError):
        message = raw[:200].decode("utf-8", "replace")
    if status in (401, 403):
        return NotAuthorizedError(status, message)
    return ApiError(status, message or f"HTTP {status}")
