"""Who may call which API route: staff, kiosk and shopper-session tokens (docs/customers.md).

- **staff** (`[http] staff_token`): every route under ``/api/``.
- **kiosk** (`[http] kiosk_token`): the few routes a kiosk needs before anyone has scanned a card
  (`KIOSK_ROUTES`); never a household's data.
- **session**: a token the daemon signs when a kiosk opens a shopper session (`edge.http.sessions`). It
  names one household; it opens `SESSION_ROUTES`, and a route with ``{id}`` only for that household.
  An *unverified* session (a typed card number without its check code) may not call `VERIFIED_ROUTES`.

`AuthThrottle` slows down guessing; `SessionRateLimit` slows down opening sessions (card enumeration).
"""

from __future__ import annotations

import hmac
import sqlite3
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from edge.http.sessions import Session, SessionSigner, looks_like_session, token_bytes

Role = Literal["staff", "kiosk", "session"]
Family = Literal["secret", "session"]

# (method, route pattern) each role other than staff may call.
KIOSK_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/v1/kiosk/info"),
        ("GET", "/api/v1/kiosk/layout"),
        ("POST", "/api/v1/kiosk/sessions"),
        ("POST", "/api/v1/routes"),
        ("POST", "/api/v1/recommendations/realtime"),  # store statistics only, without a session
        ("GET", "/api/v1/catalog/products"),  # the store's products and prices
    }
)
# Routes that show or change a household's own data: a verified session only (or staff).
VERIFIED_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/v1/customers/{id}/consent"),
        ("PUT", "/api/v1/customers/{id}/consent"),
        ("GET", "/api/v1/customers/{id}/predictions"),
        ("DELETE", "/api/v1/customers/{id}"),
        ("POST", "/api/v1/recommendations/shopping-list/{id}/feedback"),
        ("POST", "/api/v1/in-store/interaction-tracking"),  # for the session's own household
        ("GET", "/api/v1/customers/{id}/insights"),  # analytics consent (edge.customers.insights_routes)
        ("POST", "/api/v1/customers/{id}/analyze"),
    }
)
SESSION_ROUTES: frozenset[tuple[str, str]] = VERIFIED_ROUTES | frozenset(
    {
        ("GET", "/api/v1/kiosk/info"),
        ("GET", "/api/v1/kiosk/layout"),
        ("DELETE", "/api/v1/kiosk/sessions/current"),
        ("POST", "/api/v1/routes"),
        # An unverified session gets these as for a household without consent (generic).
        ("POST", "/api/v1/recommendations/realtime"),
        ("GET", "/api/v1/customers/{id}/offers"),
        ("GET", "/api/v1/recommendations/shopping-list/{id}"),
        ("GET", "/api/v1/in-store/{id}/optimal-route"),
        ("GET", "/api/v1/in-store/{id}/personalization"),
        ("GET", "/api/v1/catalog/products"),
        ("GET", "/api/v1/customers/{id}/product-suggestions"),  # usual products only if verified
    }
)
UNVERIFIED = (
    "card not verified: scan the card (or type its number with the code under the barcode) "
    "to see or change personal data"
)


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    household: str | None = None  # a session's household
    session: Session | None = None

    @property
    def personal(self) -> bool:
        """May see the household's own data (staff, or a session opened with a verified card)."""
        return self.role == "staff" or (self.session is not None and self.session.verified)


@dataclass(frozen=True, slots=True)
class AuthFailure:
    reason: str
    guess: bool  # presented and wrong: counts towards the throttle


def token_family(token: str) -> Family:
    return "session" if looks_like_session(token) else "secret"


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    staff_token: str | None
    kiosk_token: str | None
    sessions: SessionSigner | None

    def identify(self, token: str) -> Principal | AuthFailure:
        """Who a bearer token is. Never raises, whatever the token holds (compared as bytes)."""
        if not token:
            return AuthFailure("missing bearer token", guess=False)
        if looks_like_session(token):
            if self.sessions is None:
                return AuthFailure("wrong bearer token", guess=True)
            checked = self.sessions.check(token)
            if isinstance(checked, Session):
                return Principal("session", checked.household, checked)
            return AuthFailure(checked.reason, checked.guess)
        given = token_bytes(token)
        if self.staff_token is not None and hmac.compare_digest(given, token_bytes(self.staff_token)):
            return Principal("staff")
        if self.kiosk_token is not None and hmac.compare_digest(given, token_bytes(self.kiosk_token)):
            return Principal("kiosk")
        return AuthFailure("wrong bearer token", guess=True)

    def principal(self, token: str) -> Principal | None:
        found = self.identify(token)
        return found if isinstance(found, Principal) else None

    def refusal(self, principal: Principal, method: str, pattern: str, household: str | None) -> str | None:
        """Why ``principal`` may not call this route (None: it may)."""
        if principal.role == "staff":
            return None
        allowed = KIOSK_ROUTES if principal.role == "kiosk" else SESSION_ROUTES
        if (method, pattern) not in allowed:
            return f"a {principal.role} token may not call {method} {pattern}"
        if household is not None and principal.household != household:
            return "a shopper session may only read its own household"
        if (method, pattern) in VERIFIED_ROUTES and not principal.personal:
            return UNVERIFIED
        return None


@dataclass
class AuthThrottle:
    """Slows down token guessing: after ``max_failures`` *wrong* tokens of one family from one address
    within ``window_s``, that address gets 429 for that family until the oldest of those failures is
    ``window_s`` old, even with a right token (a guesser must not learn which guess was right).

    Only presented-and-wrong tokens count (`AuthFailure.guess`): a missing token, an expired or ended
    session are not guesses (a kiosk polling with an ended session must not lock staff out). Families
    are counted apart: session-shaped tokens (``s<n>.``) and secrets (staff, kiosk), so bad session
    tokens never lock the staff token out, while guesses at the staff token still lock every secret.
    Memory is bounded: at most ``max_clients`` (address, family) pairs, the stalest dropped first."""

    max_failures: int = 10
    window_s: float = 60.0
    max_clients: int = 10_000
    _failures: dict[tuple[str, str], deque[float]] = field(default_factory=dict)

    def retry_after(self, client: str, family: Family = "secret", now: float | None = None) -> float | None:
        """Seconds until ``client`` may try again, or None if it may now."""
        t = time.monotonic() if now is None else now
        key = (client, family)
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= t - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        if len(failures) < self.max_failures:
            return None
        return failures[0] + self.window_s - t

    def failed(self, client: str, family: Family = "secret", now: float | None = None) -> None:
        t = time.monotonic() if now is None else now
        key = (client, family)
        failures = self._failures.pop(key, None) or deque(maxlen=self.max_failures)
        failures.append(t)
        self._failures[key] = failures  # re-inserted: dict order is least recently failed first
        while len(self._failures) > self.max_clients:
            del self._failures[next(iter(self._failures))]


@dataclass
class SessionRateLimit:
    """A token bucket per address for opening shopper sessions (`[kiosk] sessions_per_minute`,
    `session_burst`): a kiosk serves one shopper at a time, so a burst is plenty; trying card after
    card is not possible at any useful speed. Bounded like `AuthThrottle`."""

    per_minute: float = 6.0
    burst: int = 10
    max_clients: int = 10_000
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # client -> (tokens, at)

    def take(self, client: str, now: float | None = None) -> float | None:
        """Spend one opening; None if allowed, else the seconds until the next one is."""
        t = time.monotonic() if now is None else now
        tokens, at = self._buckets.pop(client, (float(self.burst), t))
        tokens = min(float(self.burst), tokens + (t - at) * self.per_minute / 60.0)
        if tokens < 1.0:
            self._buckets[client] = (tokens, t)
            return (1.0 - tokens) * 60.0 / self.per_minute
        self._buckets[client] = (tokens - 1.0, t)
        while len(self._buckets) > self.max_clients:
            del self._buckets[next(iter(self._buckets))]
        return None


def log_access(
    conn: sqlite3.Connection, household: str, route: str, role: str, now_ms: int, refused: str | None = None
) -> None:
    """One audit row: a read of the household's data, or (``refused``: why) an attempt that was refused."""
    conn.execute(
        "INSERT INTO access_log (ts_ms, household, route, role, refused) VALUES (?, ?, ?, ?, ?)",
        (now_ms, household, route, role, refused),
    )
