"""Who may call which API route: staff, kiosk and shopper-session tokens (docs/customers.md).

- **staff** (`[http] staff_token`): every route under ``/api/``.
- **kiosk** (`[http] kiosk_token`): the few routes a kiosk needs before anyone has scanned a card
  (`KIOSK_ROUTES`); never a household's data.
- **session**: a token the daemon signs when a kiosk opens a shopper session for a scanned card. It
  names one household and an expiry; it opens `SESSION_ROUTES`, and a route with ``{id}`` only for that
  household. It is stateless (HMAC with a key derived from the pseudonym key), so it survives a daemon
  restart; `SessionSigner.revoke` ends one early (kept in memory until it would have expired anyway).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["staff", "kiosk", "session"]
SESSION_PREFIX = "s1"

# (method, route pattern) each role other than staff may call.
KIOSK_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/v1/kiosk/info"),
        ("GET", "/api/v1/kiosk/layout"),
        ("POST", "/api/v1/kiosk/sessions"),
        ("POST", "/api/v1/routes"),
    }
)
SESSION_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/v1/kiosk/info"),
        ("GET", "/api/v1/kiosk/layout"),
        ("DELETE", "/api/v1/kiosk/sessions/current"),
        ("POST", "/api/v1/routes"),
        ("GET", "/api/v1/customers/{id}/consent"),
        ("PUT", "/api/v1/customers/{id}/consent"),
        ("GET", "/api/v1/customers/{id}/predictions"),
        ("GET", "/api/v1/customers/{id}/offers"),
        ("DELETE", "/api/v1/customers/{id}"),
        ("GET", "/api/v1/recommendations/shopping-list/{id}"),
        ("POST", "/api/v1/recommendations/shopping-list/{id}/feedback"),
        ("GET", "/api/v1/in-store/{id}/optimal-route"),
    }
)


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    household: str | None = None  # a session's household
    token: str | None = None  # a session's token (to revoke it)


@dataclass(frozen=True, slots=True)
class Session:
    household: str
    expires_ms: int
    token: str


class SessionSigner:
    """Issues and verifies shopper-session tokens: ``s1.<household>.<expires_ms>.<hmac>``."""

    def __init__(self, pseudonym_key: bytes, lifetime_s: float) -> None:
        # A key of its own, so a session token never reveals anything about pseudonyms.
        self._key = hmac.new(pseudonym_key, b"storeedge kiosk session v1", hashlib.sha256).digest()
        self._lifetime_ms = int(lifetime_s * 1000)
        self._revoked: dict[str, int] = {}  # token -> its expiry

    def issue(self, household: str, now_ms: int | None = None) -> Session:
        expires = (now_ms if now_ms is not None else _now_ms()) + self._lifetime_ms
        # A nonce so two sessions for one card are two tokens (revoking one leaves the other).
        body = f"{household}.{expires}.{secrets.token_hex(4)}"
        return Session(household, expires, f"{SESSION_PREFIX}.{body}.{self._sign(body)}")

    def verify(self, token: str, now_ms: int | None = None) -> Session | None:
        parts = token.split(".")
        if len(parts) != 5 or parts[0] != SESSION_PREFIX:
            return None
        _, household, expires_text, nonce, signature = parts
        body = f"{household}.{expires_text}.{nonce}"
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            expires = int(expires_text)
        except ValueError:
            return None
        now = now_ms if now_ms is not None else _now_ms()
        if expires <= now or token in self._revoked:
            return None
        return Session(household, expires, token)

    def revoke(self, session: Session, now_ms: int | None = None) -> None:
        now = now_ms if now_ms is not None else _now_ms()
        self._revoked = {t: e for t, e in self._revoked.items() if e > now}
        self._revoked[session.token] = session.expires_ms

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    staff_token: str | None
    kiosk_token: str | None
    sessions: SessionSigner | None

    def principal(self, token: str) -> Principal | None:
        """Who a bearer token is, or None for a missing or wrong one."""
        if not token:
            return None
        if self.staff_token is not None and hmac.compare_digest(token.encode(), self.staff_token.encode()):
            return Principal("staff")
        if self.kiosk_token is not None and hmac.compare_digest(token.encode(), self.kiosk_token.encode()):
            return Principal("kiosk")
        if self.sessions is not None and token.startswith(f"{SESSION_PREFIX}."):
            session = self.sessions.verify(token)
            if session is not None:
                return Principal("session", session.household, session.token)
        return None

    def refusal(self, principal: Principal, method: str, pattern: str, household: str | None) -> str | None:
        """Why ``principal`` may not call this route (None: it may)."""
        if principal.role == "staff":
            return None
        allowed = KIOSK_ROUTES if principal.role == "kiosk" else SESSION_ROUTES
        if (method, pattern) not in allowed:
            return f"a {principal.role} token may not call {method} {pattern}"
        if household is not None and principal.household != household:
            return "a shopper session may only read its own household"
        return None


@dataclass
class AuthThrottle:
    """Slows down token guessing (a staff PIN typed at a kiosk is short): after ``max_failures`` wrong
    or missing tokens from one address within ``window_s``, that address gets 429 until the oldest of
    those failures is ``window_s`` old. A right token does not clear the count (it would let a guesser
    interleave a known kiosk token). Memory is bounded: at most ``max_clients`` addresses are tracked,
    the stalest dropped first."""

    max_failures: int = 10
    window_s: float = 60.0
    max_clients: int = 10_000
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, client: str, now: float | None = None) -> float | None:
        """Seconds until ``client`` may try again, or None if it may now."""
        t = time.monotonic() if now is None else now
        failures = self._failures.get(client)
        if failures is None:
            return None
        while failures and failures[0] <= t - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        if len(failures) < self.max_failures:
            return None
        return failures[0] + self.window_s - t

    def failed(self, client: str, now: float | None = None) -> None:
        t = time.monotonic() if now is None else now
        failures = self._failures.pop(client, None) or deque(maxlen=self.max_failures)
        failures.append(t)
        self._failures[client] = failures  # re-inserted: dict order is least recently failed first
        while len(self._failures) > self.max_clients:
            del self._failures[next(iter(self._failures))]


def _now_ms() -> int:
    return int(time.time() * 1000)
