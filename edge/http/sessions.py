"""Shopper-session tokens: issued, checked and revoked (docs/customers.md, "Sessions").

A token is ``s2.<household>.<issued_ms>.<expires_ms>.<v|u>.<nonce>.<hmac>``: the household it opens,
when it was issued and expires, whether the card was verified (``v``: scanned with its check code,
`edge.customers.privacy.CardCheck`; ``u``: a typed number) and a nonce, signed (HMAC-SHA256) with this store's own
session key (`edge.customers.privacy.load_session_key`). Its lifetime is capped at ``[kiosk] session_s`` whatever
it claims, so even a leaked key cannot make a token that outlives the configured session.

Revocations are kept in memory for the check on every request and persisted in ``session_revocations``
(through the single writer; read back at start), only until no token they cover can still be valid:

- ending one session (``session:<nonce>``) until that token's expiry;
- "forget me" (``household:<id>``): every session of the household issued up to then, until the longest
  session issued then would have expired.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass

SESSION_PREFIX = "s2"
_SESSION_SHAPE = re.compile(r"^s[0-9]+\.")  # any version: counted in the session family
_CLOCK_SKEW_MS = 60_000


@dataclass(frozen=True, slots=True)
class Session:
    household: str
    issued_ms: int
    expires_ms: int
    verified: bool
    nonce: str
    token: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a session token was not accepted; ``guess``: presented and wrong (forged, tampered, garbage),
    which counts towards the guessing throttle; an expired or ended session is not a guess."""

    reason: str
    guess: bool


@dataclass(frozen=True, slots=True)
class Revocation:
    subject: str  # "session:<nonce>" or "household:<id>"
    revoked_ms: int
    until_ms: int  # no token it covers is valid after this: the row may go


def looks_like_session(token: str) -> bool:
    return _SESSION_SHAPE.match(token) is not None


def token_bytes(token: str) -> bytes:
    """A presented token as bytes, whatever it holds: aiohttp hands raw header bytes over as surrogate
    escapes and a query string may carry any code point; ``surrogatepass`` encodes every str, so a
    comparison never raises (`hmac.compare_digest` refuses non-ASCII str)."""
    return token.encode("utf-8", "surrogatepass")


class SessionSigner:
    def __init__(self, key: bytes, lifetime_s: float) -> None:
        if len(key) < 16:
            raise ValueError("session key must be at least 16 bytes")
        self._key = hmac.new(key, b"storeedge kiosk session v2", hashlib.sha256).digest()
        self.lifetime_ms = int(lifetime_s * 1000)
        self._revoked_sessions: dict[str, int] = {}  # nonce -> until
        self._revoked_households: dict[str, tuple[int, int]] = {}  # household -> (revoked, until)
        self._last_household_revocation_ms = 0

    def issue(self, household: str, verified: bool, now_ms: int | None = None) -> Session:
        # Strictly after any household revocation made here, so a session opened right after "forget
        # me" (within the same millisecond) is not caught by it.
        issued = max(_now(now_ms), self._last_household_revocation_ms + 1)
        expires = issued + self.lifetime_ms
        nonce = secrets.token_hex(8)
        body = f"{household}.{issued}.{expires}.{'v' if verified else 'u'}.{nonce}"
        return Session(
            household, issued, expires, verified, nonce, f"{SESSION_PREFIX}.{body}.{self._sign(body)}"
        )

    def check(self, token: str, now_ms: int | None = None) -> Session | Refusal:
        parts = token.split(".")
        if len(parts) != 7 or parts[0] != SESSION_PREFIX:
            return Refusal("malformed session token", guess=True)
        _, household, issued_text, expires_text, level, nonce, signature = parts
        body = ".".join(parts[1:6])
        if not hmac.compare_digest(token_bytes(signature), self._sign(body).encode("ascii")):
            return Refusal("session token signature does not match", guess=True)
        issued, expires = int(issued_text), int(expires_text)  # signed by us: digits
        now = _now(now_ms)
        if expires - issued > self.lifetime_ms or expires > now + self.lifetime_ms + _CLOCK_SKEW_MS:
            return Refusal("session token: lifetime beyond [kiosk] session_s", guess=False)
        if expires <= now:
            return Refusal("session expired: scan the card again", guess=False)
        if nonce in self._revoked_sessions or self._household_revoked(household, issued):
            return Refusal("session ended", guess=False)
        return Session(household, issued, expires, level == "v", nonce, token)

    def verify(self, token: str, now_ms: int | None = None) -> Session | None:
        checked = self.check(token, now_ms)
        return checked if isinstance(checked, Session) else None

    def revoke(self, session: Session, now_ms: int | None = None) -> Revocation:
        """End one session now (persist the result with `record_revocation`)."""
        revocation = Revocation(f"session:{session.nonce}", _now(now_ms), session.expires_ms)
        self.restore([revocation], revocation.revoked_ms)
        return revocation

    def revoke_household(self, household: str, now_ms: int | None = None) -> Revocation:
        """End every session of ``household`` issued until now ("forget me")."""
        now = max(_now(now_ms), self._last_household_revocation_ms)
        revocation = Revocation(f"household:{household}", now, now + self.lifetime_ms + _CLOCK_SKEW_MS)
        self.restore([revocation], now)
        return revocation

    def restore(self, revocations: Iterable[Revocation], now_ms: int | None = None) -> None:
        """Take revocations into memory (at start: `load_revocations`); drops those past their use."""
        now = _now(now_ms)
        for r in revocations:
            kind, _, subject = r.subject.partition(":")
            if kind == "session":
                self._revoked_sessions[subject] = max(r.until_ms, self._revoked_sessions.get(subject, 0))
            elif kind == "household":
                revoked, until = self._revoked_households.get(subject, (0, 0))
                self._revoked_households[subject] = (max(revoked, r.revoked_ms), max(until, r.until_ms))
                self._last_household_revocation_ms = max(self._last_household_revocation_ms, r.revoked_ms)
        self._revoked_sessions = {n: u for n, u in self._revoked_sessions.items() if u > now}
        self._revoked_households = {h: v for h, v in self._revoked_households.items() if v[1] > now}

    def _household_revoked(self, household: str, issued_ms: int) -> bool:
        revoked = self._revoked_households.get(household)
        return revoked is not None and issued_ms <= revoked[0]

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:40]


# -- persistence (inside the writer's transaction, or a read connection at start) -------------------------


def record_revocation(conn: sqlite3.Connection, revocation: Revocation) -> None:
    conn.execute("DELETE FROM session_revocations WHERE until_ms <= ?", (revocation.revoked_ms,))
    conn.execute(
        "INSERT INTO session_revocations (subject, revoked_ms, until_ms) VALUES (?, ?, ?)"
        " ON CONFLICT (subject) DO UPDATE SET revoked_ms = max(revoked_ms, excluded.revoked_ms),"
        " until_ms = max(until_ms, excluded.until_ms)",
        (revocation.subject, revocation.revoked_ms, revocation.until_ms),
    )


def load_revocations(conn: sqlite3.Connection, now_ms: int | None = None) -> list[Revocation]:
    rows = conn.execute(
        "SELECT subject, revoked_ms, until_ms FROM session_revocations WHERE until_ms > ?", (_now(now_ms),)
    ).fetchall()
    return [Revocation(str(s), int(r), int(u)) for s, r, u in rows]


def is_revoked(conn: sqlite3.Connection, session: Session) -> bool:
    """The same check as `SessionSigner.check`, against the database: a write job for a session runs it
    in its own transaction, so a request let in just before "forget me" cannot write after it."""
    return (
        conn.execute(
            "SELECT 1 FROM session_revocations WHERE subject = ?"
            " OR (subject = ? AND revoked_ms >= ?) LIMIT 1",
            (f"session:{session.nonce}", f"household:{session.household}", session.issued_ms),
        ).fetchone()
        is not None
    )


def _now(now_ms: int | None) -> int:
    return now_ms if now_ms is not None else int(time.time() * 1000)
