"""Erasure everywhere, the store's side: apply central's erasure feed in this store.

A shopper who says "forget me" at one store is erased there (`edge.customers.tables.erase_household`);
central learns of it from that store's outbox and lists it in its erasure feed
(``GET /central/v1/erasures``, `sync.central_erasures`). `ErasurePoller` polls the feed every
``[sync] erasure_poll_s`` and applies each entry through the single writer, one transaction per entry
(`apply_entry`), which:

- erases the household here exactly as a "forget me" at this store would (its rows, the hooks of other
  capabilities, its pending outbox rows; every session of it ends), unless this store already erased it
  at or after the time the shopper asked (the store where the shopper asked, or an older entry applied
  late): then there is nothing of that request left to erase, and what the household did here since is
  not touched;
- either way appends the ``erasure`` event with ``"origin": "central", "erasure": <id>``: central records
  it as this store's report (``erasure_reports``), not as a new erasure, so a household that never shopped
  here is still reported;
- moves the feed cursor (``erasure_feed``, schema v11) in that same transaction: after a crash the
  next poll starts after the last entry committed, so no entry is skipped or applied twice.

An entry that fails is logged with the reason and retried (with backoff) before any later one: the cursor
never passes an erasure that was not applied. Network errors and refusals back off the same way.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass
from functools import partial
from typing import Literal

import aiohttp
import msgspec

from edge.customers import interactions, score_tables, tables
from edge.http.sessions import Revocation, SessionSigner, record_revocation
from edge.predictions import outcomes as prediction_outcomes
from edge.store import history_cache, quarantine
from edge.store.hooks import HouseholdHooks
from edge.store.writer import StoreWriter
from sync.client import Backoff
from sync.errors import FeedError, TransportError
from sync.schemas import ErasureEntry, ErasureFeed, ErrorBody

log = logging.getLogger(__name__)

FEED_LIMIT = 100  # entries asked for per request (central caps at 1000)
# A household revocation covers tokens issued until now; it must outlive the longest of them (the
# session lifetime) plus the clock skew `edge.http.sessions` tolerates.
_REVOCATION_SKEW_MS = 60_000
_feed_decoder = msgspec.json.Decoder(ErasureFeed)
_error_decoder = msgspec.json.Decoder(ErrorBody)

Outcome = Literal["erased", "already_erased", "done_before"]


@dataclass(frozen=True, slots=True)
class AppliedEntry:
    """What `apply_entry` did: ``erased`` the household here, found it ``already_erased`` here since the
    request (reported only), or found the entry ``done_before`` (at or behind the cursor: nothing)."""

    id: int
    outcome: Outcome
    rows: int
    revocation: Revocation | None = None  # the household's sessions ended here (``erased`` only)


def store_household_hooks() -> HouseholdHooks:
    """The store's household hooks, in order, the one list of them: the daemon's (`edge.daemon`) and a
    `SyncService` built without the daemon's. Predictions record outcomes, queue rescores and drop the
    profile; interactions, customer scores and insights go with the analytics consent; the quarantine
    forgets the household's rows, the history cache its packed purchases."""
    hooks = HouseholdHooks()
    prediction_outcomes.register_hooks(hooks)
    interactions.register_hooks(hooks)
    score_tables.register_hooks(hooks)
    quarantine.register_hooks(hooks)
    history_cache.register_hooks(hooks)
    return hooks


def feed_cursor(conn: sqlite3.Connection) -> int:
    """The id of the last feed entry applied here (0: none)."""
    row = conn.execute("SELECT cursor FROM erasure_feed WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def apply_entry(
    conn: sqlite3.Connection,
    entry: ErasureEntry,
    *,
    now_ms: int,
    hooks: HouseholdHooks,
    session_lifetime_ms: int,
) -> AppliedEntry:
    """Apply one feed entry inside the writer's transaction (see the module docstring)."""
    if entry.id <= feed_cursor(conn):
        return AppliedEntry(entry.id, "done_before", 0)
    household = entry.household
    if tables.erased_since(conn, household, entry.requested_ms):
        tables.report_erasure(conn, household, now_ms, origin_erasure=entry.id)
        applied = AppliedEntry(entry.id, "already_erased", 0)
    else:
        # Every session of the household issued until now ends, as after a "forget me" here: persisted,
        # so a write for such a session is refused at once (`edge.http.sessions.is_revoked`) and, after
        # a restart, the session itself; in memory too when the poller has the daemon's signer.
        until = now_ms + session_lifetime_ms + _REVOCATION_SKEW_MS
        revocation = Revocation(f"household:{household}", now_ms, until)
        record_revocation(conn, revocation)
        touched = tables.erase_household(conn, household, now_ms, hooks, origin_erasure=entry.id)
        applied = AppliedEntry(entry.id, "erased", sum(touched.values()), revocation)
    conn.execute("UPDATE erasure_feed SET cursor = ? WHERE id = 1", (entry.id,))
    return applied


class EntryFailedError(Exception):
    """Applying a feed entry here failed; it is retried (the cursor has not moved past it)."""


class ErasurePoller:
    """Every ``interval_s`` (at once while central says there is more): fetch the feed after this store's
    cursor and apply each entry through the writer."""

    def __init__(
        self,
        central_url: str,
        *,
        store: str,
        token: str,
        writer: StoreWriter,
        hooks: HouseholdHooks,
        interval_s: float,
        session_lifetime_s: float,
        sessions: SessionSigner | None = None,
        backoff: Backoff | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._url = central_url.rstrip("/") + "/central/v1/erasures"
        self._store = store
        self._headers = {"Authorization": f"Bearer {token}"}
        self._writer = writer
        self._hooks = hooks
        self._interval_s = interval_s
        self._lifetime_ms = int(session_lifetime_s * 1000)
        self._sessions = sessions  # the daemon's, to end the sessions in memory too (else: after a restart)
        self._backoff = backoff or Backoff(0.5, 30.0)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(10.0, timeout_s))
        self._cursor: int | None = None  # None: read it from the database first
        self._last_error: str | None = None
        self.applied: list[AppliedEntry] = []  # this process's, newest last (bounded): for tests and status

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=self._timeout, headers=self._headers) as session:
            while True:
                try:
                    more = await self.poll_once(session)
                except (TransportError, FeedError, EntryFailedError) as exc:
                    delay = self._failed(exc)
                else:
                    if self._last_error is not None:
                        log.info("erasure_feed_recovered", extra={"cursor": self._cursor})
                    self._last_error = None
                    self._backoff.reset()
                    delay = 0.0 if more else self._interval_s
                await asyncio.sleep(delay)

    async def poll_once(self, session: aiohttp.ClientSession) -> bool:
        """Fetch one page after the cursor and apply it; True when central has more."""
        if self._cursor is None:
            self._cursor = await self._writer.run_job(feed_cursor)
        page = await self._fetch(session, self._cursor)
        for entry in page.erasures:
            job = partial(
                apply_entry,
                entry=entry,
                now_ms=_now_ms(),
                hooks=self._hooks,
                session_lifetime_ms=self._lifetime_ms,
            )
            try:
                result = await self._writer.run_job(job)
            except Exception as exc:
                self._cursor = None  # read back what committed before retrying
                raise EntryFailedError(f"erasure {entry.id}: {type(exc).__name__}: {exc}") from exc
            self._cursor = max(self._cursor, entry.id)
            if result.revocation is not None and self._sessions is not None:
                self._sessions.restore([result.revocation])
            self.applied = [*self.applied[-99:], result]
            if result.outcome != "done_before":
                log.info(
                    "erasure_from_central_applied",
                    extra={"erasure": entry.id, "outcome": result.outcome, "rows": result.rows},
                )
        return page.more

    async def _fetch(self, session: aiohttp.ClientSession, after: int) -> ErasureFeed:
        params = {"store": self._store, "after": str(after), "limit": str(FEED_LIMIT)}
        try:
            async with session.get(self._url, params=params) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"{self._url}: {type(exc).__name__}: {exc}") from exc
        if status != 200:
            try:
                error = _error_decoder.decode(body)
            except msgspec.DecodeError:
                raise TransportError(f"{self._url}: HTTP {status}: {body[:200]!r}") from None
            raise FeedError(status, error.error, error.message)
        try:
            return _feed_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise TransportError(f"{self._url}: not an erasure feed page: {exc}") from exc

    def _failed(self, exc: Exception) -> float:
        delay = self._backoff.next_delay()
        error = f"{exc.code}: {exc.message}" if isinstance(exc, FeedError) else str(exc)
        if error != self._last_error:  # one line per distinct problem, not one per retry
            if isinstance(exc, EntryFailedError):  # something here is wrong: worth an error line
                log.error("erasure_entry_failed", extra={"error": error, "retry_s": round(delay, 2)})
            else:
                log.warning("erasure_poll_failed", extra={"error": error, "retry_s": round(delay, 2)})
        self._last_error = error
        return delay


def _now_ms() -> int:
    return int(time.time() * 1000)
