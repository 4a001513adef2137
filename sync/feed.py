"""The changes feed and acks over a sqlite3 connection: cursor validation, deterministic pages, acks that
never move backwards. HTTP-free: `edge.uplink.service` calls these on the daemon's read-only connection
(pages) and inside the single writer (acks).

A cursor is a seq: ``after=N`` asks for the changes with ``seq > N`` in seq order. A page is a pure
function of ``(after, limit)`` and the committed rows, so asking again gives the same rows (a page that
was short may have grown). Refused cursors (`FeedError`):

- ``bad_request`` (400): not a non-negative integer, or limit out of range;
- ``feed_mismatch`` (409): the caller names a feed id that is not this database's;
- ``cursor_ahead`` (409): ``after`` is beyond the newest seq the store ever issued;
- ``cursor_gone`` (410): ``after`` is behind the ack cursor; those rows were deleted when acked.
"""

from __future__ import annotations

import gzip
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from sync.errors import FeedError
from sync.outbox import head, pending_between
from sync.schemas import AckRequest, ChangesPage, ErrorBody

MAX_SEQ = 2**63 - 1
# Per-row overhead of a change in the page's JSON beyond its body and entity, for the byte budget.
_ROW_JSON_OVERHEAD = 80
_encoder = msgspec.json.Encoder()
_ack_decoder = msgspec.json.Decoder(AckRequest)
_page_decoder = msgspec.json.Decoder(ChangesPage)


@dataclass(frozen=True, slots=True)
class OutboxCursor:
    """A validated request for one page."""

    after: int
    limit: int
    feed: str | None = None


def parse_cursor(query: Mapping[str, str], page_max: int) -> OutboxCursor:
    """``?after=SEQ&limit=N&feed=ID`` -> `OutboxCursor`; a missing ``limit`` is ``page_max`` and a larger
    one is capped at it (a client cannot make the store build huge pages)."""
    after = _seq_param(query, "after", required=True)
    limit_text = query.get("limit")
    if limit_text is None or limit_text == "":
        limit = page_max
    else:
        limit = _int_param("limit", limit_text)
        if limit < 1:
            raise FeedError(400, "bad_request", f"limit: expected a positive integer, got {limit_text!r}")
        limit = min(limit, page_max)
    feed = query.get("feed") or None
    return OutboxCursor(after=after, limit=limit, feed=feed)


def _seq_param(query: Mapping[str, str], name: str, *, required: bool) -> int:
    text = query.get(name)
    if text is None or text == "":
        if required:
            raise FeedError(400, "bad_request", f"{name}: required (a seq, 0 for the beginning)")
        return 0
    value = _int_param(name, text)
    if not 0 <= value <= MAX_SEQ:
        raise FeedError(400, "bad_request", f"{name}: expected a seq in 0..2^63-1, got {text!r}")
    return value


def _int_param(name: str, text: str) -> int:
    # int() would accept " 12", "1_000" and "+3"; a cursor is plain decimal digits.
    stripped = text[1:] if text.startswith("-") else text
    if not stripped.isascii() or not stripped.isdigit() or len(stripped) > 19:
        raise FeedError(400, "bad_request", f"{name}: expected a decimal integer, got {text!r}")
    return int(text)


# A page is built as JSON inside SQLite, in one statement returning one row: sqlite3 releases the GIL
# while it steps a statement, so the feed thread no longer holds it for a Python loop over thousands of
# rows (10-30 ms a 5,000-change page, ~20 pages a second during a catch-up) while the writer thread and
# the event loop wait for it (docs/sync.md, "Benchmark"). Each change is formatted exactly as msgspec
# encodes a `Change` (field order, no spaces, the body passed through untouched); json_quote escapes
# kind and entity byte for byte as msgspec does (tests/sync/test_sync_totals.py checks both).
_CHANGE_JSON = (
    """format('{"seq":%d,"created_ms":%d,"kind":%s,"entity":%s,"body":%s}',"""
    " seq, created_ms, json_quote(CAST(kind AS TEXT)), json_quote(CAST(entity AS TEXT)), body)"
)
# What a change costs against the page's byte budget (``page_max_bytes``): its body in bytes, entity
# and kind in characters, plus `_ROW_JSON_OVERHEAD`.
_CHANGE_COST = f"length(CAST(body AS BLOB)) + length(entity) + length(kind) + {_ROW_JSON_OVERHEAD}"
# group_concat follows the order its rows arrive in: the ordered subquery (LIMIT keeps it from being
# flattened, so it is a co-routine yielding rows in seq order). SQLite 3.44+ can say so explicitly.
_ORDERED = " ORDER BY seq" if sqlite3.sqlite_version_info >= (3, 44, 0) else ""
_PAGE_SQL = (
    f"SELECT count(*), max(seq), coalesce(sum(cost), 0), CAST(group_concat(change, ','{_ORDERED}) AS BLOB)"  # noqa: S608
    " FROM ("
    f"SELECT seq, {_CHANGE_COST} AS cost, {_CHANGE_JSON} AS change FROM outbox"
    " WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?)"
)


@dataclass(frozen=True, slots=True)
class PageJson:
    """A page's JSON (a `ChangesPage`, byte for byte as msgspec would encode it) and what the caller needs
    to know about it without decoding it."""

    data: bytes
    count: int  # changes in the page
    next: int
    more: bool


def read_page_json(conn: sqlite3.Connection, cursor: OutboxCursor, *, store: str, max_bytes: int) -> PageJson:
    """One page as JSON, read in one snapshot (a read transaction), so head, acked and rows agree.

    The page holds the changes after ``cursor.after`` in seq order, at most ``cursor.limit`` of them, and
    stops before the change that would take it past ``max_bytes`` (it always holds at least one, so a
    single change larger than the budget cannot wedge the feed)."""
    conn.execute("BEGIN")
    try:
        feed, acked = conn.execute("SELECT feed, acked_seq FROM sync_state WHERE id = 1").fetchone()
        newest = head(conn)
        _check_cursor(cursor, feed, newest, acked)
        count, last, cost, changes = conn.execute(_PAGE_SQL, (cursor.after, MAX_SEQ, cursor.limit)).fetchone()
        if count > 1 and cost > max_bytes:
            # Rare (pages of big changes): find the last change within the budget, build again up to it.
            spent, through = 0, cursor.after
            for seq, row_cost in conn.execute(
                f"SELECT seq, {_CHANGE_COST} FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
                (cursor.after, cursor.limit),
            ):
                spent += row_cost
                if spent > max_bytes and through > cursor.after:
                    break
                through = seq
            count, last, cost, changes = conn.execute(
                _PAGE_SQL, (cursor.after, through, cursor.limit)
            ).fetchone()
        nxt = cursor.after if last is None else int(last)
        more = conn.execute("SELECT 1 FROM outbox WHERE seq > ? LIMIT 1", (nxt,)).fetchone() is not None
    finally:
        conn.execute("COMMIT")
    data = b"".join(
        (
            b'{"store":',
            _encoder.encode(store),
            b',"feed":',
            _encoder.encode(feed),
            b',"changes":[',
            changes or b"",  # bytes (CAST AS BLOB): no decoding and re-encoding of a megabyte
            b'],"next":%d,"more":%s,"head":%d,"acked":%d}'
            % (nxt, b"true" if more else b"false", newest, acked),
        )
    )
    return PageJson(data, int(count), nxt, more)


def read_page(conn: sqlite3.Connection, cursor: OutboxCursor, *, store: str, max_bytes: int) -> ChangesPage:
    """`read_page_json`, decoded (for tests and tools; the daemon serves the JSON as it is)."""
    return _page_decoder.decode(read_page_json(conn, cursor, store=store, max_bytes=max_bytes).data)


def _check_cursor(cursor: OutboxCursor, feed: str, newest: int, acked: int) -> None:
    _check_feed(cursor.feed, feed, newest, acked)
    if cursor.after > newest:
        raise FeedError(
            409,
            "cursor_ahead",
            f"after={cursor.after} is beyond this store's newest change {newest}: central is pulling"
            " from a different or restored store database",
            feed=feed,
            head=newest,
            acked=acked,
        )
    if cursor.after < acked:
        raise FeedError(
            410,
            "cursor_gone",
            f"after={cursor.after} is behind the ack cursor {acked}: changes through {acked} were"
            f" deleted when acked; resume from after={acked}",
            feed=feed,
            head=newest,
            acked=acked,
        )


def _check_feed(asked: str | None, feed: str, newest: int, acked: int) -> None:
    if asked is not None and asked != feed:
        raise FeedError(
            409,
            "feed_mismatch",
            f"feed {asked!r} is not this store's feed {feed!r}: the store database was replaced;"
            " start the new feed from after=0",
            feed=feed,
            head=newest,
            acked=acked,
        )


def encode_page(page: ChangesPage, *, gzip_level: int | None = None) -> bytes:
    """JSON bytes of a page, gzipped when ``gzip_level`` is given (the caller sets Content-Encoding)."""
    return compress(_encoder.encode(page), gzip_level)


def compress(data: bytes, gzip_level: int | None) -> bytes:
    """``data`` gzipped at ``gzip_level`` (None: as it is). Deterministic (mtime 0), and zlib releases the
    GIL while it compresses, so a big page does not stall the other threads."""
    if gzip_level is None:
        return data
    return gzip.compress(data, compresslevel=gzip_level, mtime=0)


def encode_error(exc: FeedError) -> bytes:
    d = exc.details
    return _encoder.encode(
        ErrorBody(
            error=exc.code,
            message=exc.message,
            feed=_opt_str(d.get("feed")),
            head=_opt_int(d.get("head")),
            acked=_opt_int(d.get("acked")),
        )
    )


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def parse_ack(body: bytes) -> AckRequest:
    try:
        return _ack_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise FeedError(400, "bad_request", f"ack body: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise FeedError(400, "bad_request", f'ack body: expected JSON {{"through": SEQ}}: {exc}') from exc


@dataclass(frozen=True, slots=True)
class AckOutcome:
    """The result of an ack inside the writer. ``error`` is set instead of raising, so a refused ack never
    rolls back the writer's batch (other items share its transaction)."""

    acked: int
    moved: bool
    feed: str
    deleted: int = 0
    error: FeedError | None = None


def apply_ack(
    conn: sqlite3.Connection, request: AckRequest, now_ms: int, *, delete_max: int | None = None
) -> AckOutcome:
    """Move the ack cursor to ``through`` and delete (up to ``delete_max`` of) the rows it covers. Run
    inside a write transaction. The daemon passes ``delete_max=0`` and deletes acked rows afterwards in
    small steps (`trim_acked`), so a big ack never holds the writer (and ingest) for long.

    Never moves backwards: an ack at or behind the cursor (a retry, a replayed request) changes nothing.
    An ack beyond the newest seq ever issued is refused: central cannot have committed what never existed.
    """
    feed, acked = conn.execute("SELECT feed, acked_seq FROM sync_state WHERE id = 1").fetchone()
    newest = head(conn)
    if request.feed is not None and request.feed != feed:
        return AckOutcome(
            acked,
            False,
            feed,
            error=FeedError(
                409,
                "feed_mismatch",
                f"ack for feed {request.feed!r}, but this store's feed is {feed!r}",
                feed=feed,
                head=newest,
                acked=acked,
            ),
        )
    if request.through > newest:
        return AckOutcome(
            acked,
            False,
            feed,
            error=FeedError(
                409,
                "ack_ahead",
                f"through={request.through} is beyond this store's newest change {newest}",
                feed=feed,
                head=newest,
                acked=acked,
            ),
        )
    if request.through <= acked:
        return AckOutcome(acked, False, feed)
    # What the ack covers stops being pending: one range aggregate over the primary key (the rows central
    # just pulled, so their pages are in cache), one UPDATE; the rows themselves are deleted later.
    rows, size = pending_between(conn, acked, request.through)
    conn.execute(
        "UPDATE sync_state SET acked_seq = ?, acked_ms = ?, pending_rows = pending_rows - ?,"
        " pending_bytes = pending_bytes - ? WHERE id = 1",
        (request.through, now_ms, rows, size),
    )
    deleted = trim_acked(conn, MAX_SEQ if delete_max is None else delete_max) if delete_max != 0 else 0
    return AckOutcome(request.through, True, feed, deleted=deleted)


def trim_acked(conn: sqlite3.Connection, max_rows: int) -> int:
    """Delete up to ``max_rows`` of the oldest rows central has acked; returns how many. Inside a write
    transaction; call until it returns less than ``max_rows``. Acked rows are no longer in the pending
    totals, so this is a bare range delete on the primary key (no per-row bookkeeping)."""
    (through,) = conn.execute(
        "SELECT max(seq) FROM (SELECT seq FROM outbox WHERE seq <= "
        "(SELECT acked_seq FROM sync_state WHERE id = 1) ORDER BY seq LIMIT ?)",
        (max_rows,),
    ).fetchone()
    if through is None:
        return 0
    return conn.execute("DELETE FROM outbox WHERE seq <= ?", (through,)).rowcount


def acked_rows_left(conn: sqlite3.Connection) -> bool:
    """Whether acked rows are still waiting to be deleted (read-only)."""
    row = conn.execute(
        "SELECT 1 FROM outbox WHERE seq <= (SELECT acked_seq FROM sync_state WHERE id = 1) LIMIT 1"
    ).fetchone()
    return row is not None
