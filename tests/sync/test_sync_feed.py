"""The changes feed and acks on a real SQLite store: paging, cursor validation, deterministic replay,
acks that never move backwards, and pending totals kept exactly (in bulk, schema v8)."""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.errors import FeedError
from sync.feed import OutboxCursor, apply_ack, encode_page, parse_ack, parse_cursor, read_page
from sync.outbox import OutboxEntry, status
from sync.schemas import AckRequest, ChangesPage
from tests.sync.sync_helpers import add_changes, purchase_entry, reading_entry, store_db


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    conn = store_db(tmp_path / "store.db")
    yield conn
    conn.close()


def fill(conn: sqlite3.Connection, n: int, created_ms: int = 1_000) -> None:
    add_changes(
        conn,
        [
            reading_entry("shelf_weight", "shelf-A1-1", 1_000 + i, i + 1, shelf="A1-1", grams=float(i))
            for i in range(n)
        ],
        created_ms,
    )


def page(
    conn: sqlite3.Connection, after: int, limit: int = 10, max_bytes: int = 1 << 20, feed: str | None = None
) -> ChangesPage:
    return read_page(conn, OutboxCursor(after, limit, feed), store="demo", max_bytes=max_bytes)


def ack(conn: sqlite3.Connection, through: int, feed: str | None = None) -> object:
    conn.execute("BEGIN IMMEDIATE")
    outcome = apply_ack(conn, AckRequest(through, feed), 5_000)
    conn.execute("COMMIT")
    return outcome


def test_pages_walk_the_outbox_in_seq_order_and_say_when_there_is_more(db: sqlite3.Connection) -> None:
    fill(db, 25)
    first = page(db, 0)
    assert [c.seq for c in first.changes] == list(range(1, 11))
    assert (first.next, first.more, first.head, first.acked) == (10, True, 25, 0)
    second = page(db, first.next)
    assert [c.seq for c in second.changes] == list(range(11, 21))
    last = page(db, second.next)
    assert [c.seq for c in last.changes] == list(range(21, 26))
    assert (last.next, last.more) == (25, False)
    empty = page(db, 25)
    assert (empty.changes, empty.next, empty.more) == ([], 25, False)
    # bodies pass through untouched, as JSON objects (not strings)
    decoded = msgspec.json.decode(encode_page(first))
    assert decoded["changes"][0]["body"]["type"] == "shelf_weight"
    assert decoded["changes"][0]["kind"] == "reading"
    assert decoded["store"] == "demo"
    assert len(decoded["feed"]) == 32


def test_a_full_page_at_the_head_says_no_more(db: sqlite3.Connection) -> None:
    fill(db, 10)
    assert page(db, 0).more is False


def test_a_replayed_page_is_byte_identical(db: sqlite3.Connection) -> None:
    fill(db, 30)
    for after in (0, 7, 29):
        plain = {encode_page(page(db, after)) for _ in range(3)}
        zipped = {encode_page(page(db, after), gzip_level=6) for _ in range(3)}
        assert len(plain) == 1
        assert len(zipped) == 1
        assert gzip.decompress(zipped.pop()) == plain.pop()
    # new changes do not alter a page that was already full (only the head it reports moves)
    before = page(db, 0)
    fill(db, 5)
    after = page(db, 0)
    assert msgspec.json.encode(after.changes) == msgspec.json.encode(before.changes)
    assert (after.next, after.more, after.head) == (before.next, before.more, 35)


def test_pages_stop_at_the_byte_budget_but_never_return_nothing(db: sqlite3.Connection) -> None:
    add_changes(db, [OutboxEntry("alert", f"a{i}", '{"x":"' + "y" * 1000 + '"}') for i in range(10)])
    cut = page(db, 0, limit=10, max_bytes=3500)
    assert len(cut.changes) == 3
    assert cut.more is True
    assert cut.next == 3
    huge = page(db, 0, limit=10, max_bytes=10)
    assert [c.seq for c in huge.changes] == [1]  # one change over the budget still moves the cursor


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({}, "after: required"),
        ({"after": ""}, "after: required"),
        ({"after": "abc"}, "after: expected a decimal integer"),
        ({"after": "1.5"}, "after: expected a decimal integer"),
        ({"after": " 1"}, "after: expected a decimal integer"),
        ({"after": "1_000"}, "after: expected a decimal integer"),
        ({"after": "-1"}, "after: expected a seq in 0..2^63-1"),
        ({"after": str(2**63)}, "after: expected a seq"),
        ({"after": "0", "limit": "0"}, "limit: expected a positive integer"),
        ({"after": "0", "limit": "ten"}, "limit: expected a decimal integer"),
    ],
)
def test_bad_cursors_are_refused_with_a_clear_400(query: dict[str, str], fragment: str) -> None:
    with pytest.raises(FeedError) as caught:
        parse_cursor(query, page_max=100)
    assert caught.value.status == 400
    assert caught.value.code == "bad_request"
    assert fragment in caught.value.message


def test_limit_defaults_to_and_is_capped_at_page_max() -> None:
    assert parse_cursor({"after": "5"}, page_max=100) == OutboxCursor(5, 100, None)
    assert parse_cursor({"after": "5", "limit": "100000"}, page_max=100).limit == 100
    assert parse_cursor({"after": "5", "limit": "7", "feed": "f"}, page_max=100) == OutboxCursor(5, 7, "f")


def test_cursors_beyond_the_head_behind_the_ack_or_of_another_feed_are_refused(
    db: sqlite3.Connection,
) -> None:
    fill(db, 20)
    with pytest.raises(FeedError) as ahead:
        page(db, 21)
    assert (ahead.value.status, ahead.value.code, ahead.value.details["head"]) == (409, "cursor_ahead", 20)
    ack(db, 10)
    with pytest.raises(FeedError) as gone:
        page(db, 9)
    assert (gone.value.status, gone.value.code, gone.value.details["acked"]) == (410, "cursor_gone", 10)
    assert "resume from after=10" in gone.value.message
    with pytest.raises(FeedError) as other:
        page(db, 10, feed="0" * 32)
    assert (other.value.status, other.value.code) == (409, "feed_mismatch")
    feed = status(db).feed
    assert [c.seq for c in page(db, 10, feed=feed).changes] == list(range(11, 21))


def test_acks_delete_what_they_cover_and_never_move_backwards(db: sqlite3.Connection) -> None:
    fill(db, 20)
    first = ack(db, 12)
    assert (first.acked, first.moved, first.deleted) == (12, True, 12)  # type: ignore[attr-defined]
    assert status(db).acked_seq == 12
    assert status(db).rows == 8
    stale = ack(db, 5)
    assert (stale.acked, stale.moved, stale.deleted) == (12, False, 0)  # type: ignore[attr-defined]
    again = ack(db, 12)
    assert (again.acked, again.moved) == (12, False)  # type: ignore[attr-defined]
    ahead = ack(db, 21)
    assert ahead.error is not None
    assert ahead.error.code == "ack_ahead"
    wrong_feed = ack(db, 15, feed="f" * 32)
    assert wrong_feed.error is not None
    assert wrong_feed.error.code == "feed_mismatch"
    assert status(db).acked_seq == 12
    assert db.execute("SELECT min(seq), count(*) FROM outbox").fetchone() == (13, 8)


def test_the_ack_survives_a_reopen_and_the_feed_id_is_stable(tmp_path: Path) -> None:
    conn = store_db(tmp_path / "s.db")
    fill(conn, 5)
    ack(conn, 3)
    feed = status(conn).feed
    conn.close()
    again = store_db(tmp_path / "s.db")
    assert (status(again).acked_seq, status(again).feed) == (3, feed)
    assert store_db(tmp_path / "other.db").execute("SELECT feed FROM sync_state").fetchone()[0] != feed


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"{}", b'{"through": -1}', b'{"through": "5"}', b'{"through": 1, "extra": 2}', b"[]"],
)
def test_bad_ack_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(FeedError) as caught:
        parse_ack(body)
    assert caught.value.status == 400


def test_status_counts_pending_rows_bytes_and_age(db: sqlite3.Connection) -> None:
    empty = status(db)
    assert (empty.rows, empty.pending_bytes, empty.oldest_created_ms, empty.last_seq) == (0, 0, None, 0)
    fill(db, 10, created_ms=1_000)
    add_changes(db, [purchase_entry("b1", 9.5)], created_ms=2_000)
    current = status(db)
    assert (current.rows, current.last_seq, current.oldest_created_ms) == (11, 11, 1_000)
    assert current.oldest_age_s(now_ms=11_000) == 10.0
    expected = db.execute(
        "SELECT sum(length(CAST(body AS BLOB)) + length(entity) + length(kind) + 16) FROM outbox"
    ).fetchone()[0]
    assert current.pending_bytes == expected > 0
    ack(db, 10)
    assert (status(db).rows, status(db).oldest_created_ms) == (1, 2_000)


@settings(max_examples=30)
@given(
    st.lists(
        st.one_of(
            st.integers(1, 40).map(lambda n: ("add", n)), st.integers(0, 400).map(lambda n: ("ack", n))
        ),
        max_size=12,
    )
)
def test_pending_totals_always_equal_a_recount(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int]]
) -> None:
    conn = store_db(tmp_path_factory.mktemp("totals") / "s.db")
    try:
        for op, n in ops:
            if op == "add":
                add_changes(conn, [OutboxEntry("k", "é" * (n % 5), "x" * n) for _ in range(n)])
            else:
                ack(conn, min(n, status(conn).last_seq))
            rows, size = conn.execute(
                "SELECT count(*), coalesce(sum(length(CAST(body AS BLOB)) + length(CAST(entity AS BLOB))"
                " + length(kind) + 16), 0) FROM outbox"
            ).fetchone()
            current = status(conn)
            assert (current.rows, current.pending_bytes) == (rows, size)
    finally:
        conn.close()
