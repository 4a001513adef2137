"""Central's erasure feed: every "forget me" of the chain, for each store to apply.

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
from typing import TYPE_CHECKING

import asyncpg
import msgspec
from aiohttp import web

from sync.errors import FeedError
from sync.feed import encode_error, parse_cursor
from sync.schemas import ErasureEntry, ErasureFeed

if TYPE_CHECKING:
    from sync.central import CentralDb

log = logging.getLogger(__name__)

FEED_LIMIT_MAX = 1000  # entries per page: a store applies each in its own small transaction
_json = msgspec.json.Encoder()
# asyncpg's errors, a dropped connection, a timeout: the store retries with backoff (as central.DB_ERRORS)
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


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
        except _DB_ERRORS as exc:
            log.warning("central_erasure_feed_failed", extra={"store": store, "error": str(exc)})
            return _error(FeedError(503, "unavailable", "central's database is unreachable; retry later"))
        return web.Response(body=_json.encode(page), content_type="application/json")


def _error(exc: FeedError) -> web.Response:
    return web.Response(body=encode_error(exc), status=exc.status, content_type="application/json")


__all__ = ["FEED_LIMIT_MAX", "ErasureFeedRoute", "read_feed"]
