"""Erasure at central: erasing a household in the warehouse (`erase_everywhere`), and the erasure feed of
every "forget me" of the chain, for each store to apply.

A shopper's erasure at one store reaches central as an ``erasure`` change; central's warehouse erases the
household and appends a row to ``erasures`` (`sync.central_warehouse`). Its ``id`` is this feed's cursor:

``GET /central/v1/erasures?store=ID&after=N&limit=M`` (the store's bearer token, like the bundle routes)
-> `sync.schemas.ErasureFeed`: the entries with ``id > after`` in id order, at most ``limit``
(default and cap `FEED_LIMIT_MAX`), ``next`` (the last id, or ``after``) and ``more``.

Every entry is served to every store, the asking store's own erasures included: whether there is anything
left to erase is the store's decision (it knows when it last erased the household), and every store's
report (an ``erasure`` change with ``"origin": "central"``) lands in ``erasure_reports``, so central can
show which stores have applied which erasure. Bad query parameters are ``400 bad_request`` naming the
parameter, a wrong token ``401``, the database unreachable ``503``; never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import asyncpg
import msgspec
from aiohttp import web

from sync.central_pool import DB_ERRORS, CentralDb
from sync.errors import FeedError
from sync.feed import encode_error, parse_cursor
from sync.schemas import ErasureEntry, ErasureFeed

log = logging.getLogger(__name__)

FEED_LIMIT_MAX = 1000  # entries per page: a store applies each in its own small transaction
_json = msgspec.json.Encoder()


async def read_feed(conn: asyncpg.Connection, *, after: int, limit: int) -> ErasureFeed:
    """The page of the erasure feed after ``after`` (one indexed range scan on the primary key)."""
    rows = await conn.fetch(
        "SELECT id, household, requested_ms FROM erasures WHERE id > $1 ORDER BY id LIMIT $2",
        after,
        limit + 1,
    )
    entries = [ErasureEntry(int(r["id"]), str(r["household"]), int(r["requested_ms"])) for r in rows[:limit]]
    return ErasureFeed(erasures=entries, next=entries[-1].id if entries else after, more=len(rows) > limit)


class ErasureFeedRoute:
    """The aiohttp handler; ``auth`` is central's store-token check (None: let in, else the refusal)."""

    def __init__(self, db: CentralDb, auth: Callable[[web.Request], web.Response | None]) -> None:
        self._db = db
        self._auth = auth

    async def handle(self, request: web.Request) -> web.Response:
        if (refused := self._auth(request)) is not None:
            return refused
        try:
            cursor = parse_cursor(request.query, FEED_LIMIT_MAX)
        except FeedError as exc:
            return _error(exc)
        store = request.query.get("store", "")
        try:
            page = await self._db.run(lambda conn: read_feed(conn, after=cursor.after, limit=cursor.limit))
        except DB_ERRORS as exc:  # the store retries with backoff
            log.warning("central_erasure_feed_failed", extra={"store": store, "error": str(exc)})
            return _error(FeedError(503, "unavailable", "central's database is unreachable; retry later"))
        return web.Response(body=_json.encode(page), content_type="application/json")


def _error(exc: FeedError) -> web.Response:
    return web.Response(body=encode_error(exc), status=exc.status, content_type="application/json")


__all__ = ["FEED_LIMIT_MAX", "ErasureFeedRoute", "read_feed"]


# -- erasing at central ---------------------------------------------------------------------------


async def erase_everywhere(conn: asyncpg.Connection, household: str, until_ms: int) -> None:
    """Erase at central what is known of ``household`` up to ``until_ms``: consents, feedback, outcomes
    (of predictions and of lists), interactions,
    quarantined bodies naming it and its household row go; purchases stay as anonymous sales; its changes in the log are scrubbed (purchase
    bodies unlinked, the others emptied). What it did after ``until_ms`` (it came back) is kept."""
    await conn.execute("DELETE FROM consents WHERE household = $1 AND updated_ms <= $2", household, until_ms)
    await conn.execute("DELETE FROM list_feedback WHERE household = $1 AND ts_ms <= $2", household, until_ms)
    await conn.execute(
        "DELETE FROM prediction_outcomes WHERE household = $1 AND scored <= to_timestamp($2 / 1000.0)",
        household,
        until_ms,
    )
    await conn.execute(
        "DELETE FROM customer_interactions WHERE household = $1 AND ts_ms <= $2", household, until_ms
    )
    await conn.execute(
        "DELETE FROM list_outcomes WHERE household = $1 AND purchased <= to_timestamp($2 / 1000.0)",
        household,
        until_ms,
    )
    await conn.execute(
        "UPDATE purchases SET household = NULL WHERE household = $1 AND ts_ms <= $2", household, until_ms
    )
    await conn.execute("DELETE FROM households WHERE id = $1 AND last_seen_ms <= $2", household, until_ms)
    # a quarantined change is unreadable, so it may name the household anywhere in its body: emptied in
    # the log, deleted from quarantine (a small table)
    await conn.execute(
        "UPDATE change_log c SET body = NULL FROM quarantine q JOIN streams s ON s.store = q.store"
        " AND s.feed = q.feed WHERE c.stream = s.id AND c.seq = q.seq AND strpos(c.body, $1) > 0"
        " AND q.received_ms <= $2",
        household,
        until_ms,
    )
    await conn.execute(
        "DELETE FROM quarantine WHERE strpos(body, $1) > 0 AND received_ms <= $2", household, until_ms
    )
    await conn.execute(
        "UPDATE change_log SET household = NULL, body = CASE WHEN kind = 'purchase'"
        " THEN jsonb_set(body::jsonb, '{household}', 'null')::text END,"
        " entity = CASE WHEN kind = 'purchase' THEN entity END"
        " WHERE household = $1 AND kind != 'erasure' AND coalesce((body::jsonb ->> 'ts_ms')::bigint,"
        " (body::jsonb ->> 'scored_ms')::bigint, created_ms) <= $2",
        household,
        until_ms,
    )
