"""The changes feed and acks over a sqlite3 connection: cursor validation, deterministic pages, acks that
never move backwards. HTTP-free: `edge.sync_service` calls these on the daemon's read-only connection
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
from sync.outbox import head
from sync.schemas import AckRequest, Change, ChangesPage, ErrorBody

MAX_SEQ = 2**63 - 1
# Per-row overhead of a change in the page's JSON beyond its body and entity, for the byte budget.
_ROW_JSON_OVERHEAD = 80
_encoder = msgspec.json.Encoder()
_ack_decoder = msgspec.json.Decoder(AckRequest)


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


def read_page(conn: sqlite3.Connection, cursor: OutboxCursor, *, store: str, max_bytes: int) -> ChangesPage:
    """One page, read in one snapshot (a read transaction), so head, acked and rows agree."""
    conn.execute("BEGIN")
    try:
        feed, acked = conn.execute("SELECT feed, acked_seq FROM sync_state WHERE id = 1").fetchone()
        newest = head(conn)
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
        changes: list[Change] = []
        budget = max_bytes
        cut = False
        rows = conn.execute(
            "SELECT seq, created_ms, kind, entity, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (cursor.after, cursor.limit),
        )
        for seq, created_ms, kind, entity, body in rows:
            raw = body.encode()
            cost = len(raw) + len(entity) + len(kind) + _ROW_JSON_OVERHEAD
            # Always at least one row, so a single change larger than the budget cannot wedge the feed.
            if changes and cost > budget:
                cut = True
                break
            budget -= cost
            changes.append(Change(seq, created_ms, kind, entity, msgspec.Raw(raw)))
        nxt = changes[-1].seq if changes else cursor.after
        if cut or len(changes) == cursor.limit:
            more = conn.execute("SELECT 1 FROM outbox WHERE seq > ? LIMIT 1", (nxt,)).fetchone() is not None
        else:
            more = False
        return ChangesPage(
            store=store, feed=feed, changes=changes, next=nxt, more=more, head=newest, acked=acked
        )
    finally:
        conn.execute("COMMIT")


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
    data = _encoder.encode(page)
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
    if delete_max is None:
        deleted = conn.execute(
            "DELETE FROM outbox WHERE seq > ? AND seq <= ?", (acked, request.through)
        ).rowcount
    else:
        deleted = 0
    conn.execute(
        "UPDATE sync_state SET acked_seq = ?, acked_ms = ? WHERE id = 1 AND acked_seq < ?",
        (request.through, now_ms, request.through),
    )
    return AckOutcome(request.through, True, feed, deleted=deleted)


def trim_acked(conn: sqlite3.Connection, max_rows: int) -> int:
    """Delete up to ``max_rows`` of the oldest rows central has acked; returns how many. Inside a write
    transaction; call until it returns 0."""
    return conn.execute(
        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE seq <= "
        "(SELECT acked_seq FROM sync_state WHERE id = 1) ORDER BY seq LIMIT ?)",
        (max_rows,),
    ).rowcount


def acked_rows_left(conn: sqlite3.Connection) -> bool:
    """Whether acked rows are still waiting to be deleted (read-only)."""
    row = conn.execute(
        "SELECT 1 FROM outbox WHERE seq <= (SELECT acked_seq FROM sync_state WHERE id = 1) LIMIT 1"
    ).fetchone()
    return row is not None
