"""Pending totals kept in bulk (schema v8) and pages built as JSON inside SQLite.

The totals in ``sync_state`` are kept by the code that changes the outbox (one UPDATE per append, ack,
compaction step or removal), not by per-row triggers: after any mix of those operations they must equal
a recount of the rows above the ack cursor. Pages are built by SQLite: they must be byte for byte what
msgspec encodes for the same rows, cut at the same byte budget, as the Python loop they replaced.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.store.db import connect, open_store
from edge.store.migrations import MIGRATIONS, current_version, migrate
from sync.compaction import CompactionPolicy, compact_chunk
from sync.feed import MAX_SEQ, OutboxCursor, apply_ack, read_page, read_page_json, trim_acked
from sync.outbox import OutboxEntry, append, head, remove, status
from sync.schemas import AckRequest, Change, ChangesPage
from tests.sync.sync_helpers import add_changes, reading_entry

RECOUNT = (
    "SELECT count(*), coalesce(sum(length(CAST(body AS BLOB)) + length(CAST(entity AS BLOB))"
    " + length(kind) + 16), 0) FROM outbox WHERE seq > (SELECT acked_seq FROM sync_state)"
)


def totals(conn: sqlite3.Connection) -> tuple[int, int]:
    rows, size = conn.execute("SELECT pending_rows, pending_bytes FROM sync_state").fetchone()
    return int(rows), int(size)


def recount(conn: sqlite3.Connection) -> tuple[int, int]:
    rows, size = conn.execute(RECOUNT).fetchone()
    return int(rows), int(size)


@contextmanager
def tx(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def readings(n: int, start_ts: int, first_seq: int) -> list[OutboxEntry]:
    """Compactable raw readings and a purchase now and then (never compacted), odd characters included."""
    out = []
    for i in range(n):
        if i % 7 == 6:
            body = json.dumps({"basket_id": f"b-{first_seq + i}", "total": 1.5, "note": "é€"})
            out.append(OutboxEntry("purchase", f"b-{first_seq + i}", body))
        else:
            out.append(
                reading_entry(
                    "shelf_weight",
                    "shelf-Ä1-1",
                    start_ts + i * 1000,
                    first_seq + i,
                    shelf="Ä1-1",
                    grams=1.0 * i,
                )
            )
    return out


Op = tuple[str, int]
OPS = st.lists(
    st.one_of(
        st.integers(1, 60).map(lambda n: ("add", n)),
        st.integers(0, 100).map(lambda n: ("ack", n)),  # percent of the way from acked to head
        st.integers(1, 50).map(lambda n: ("trim", n)),
        st.just(("compact", 0)),
        st.integers(1, 20).map(lambda n: ("remove", n)),
    ),
    max_size=15,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_pending_totals_equal_a_recount_after_appends_acks_trims_compaction_and_removals(
    tmp_path_factory: pytest.TempPathFactory, ops: list[Op]
) -> None:
    conn = open_store(tmp_path_factory.mktemp("totals") / "s.db")
    policy = CompactionPolicy(max_bytes=1 << 30, max_age_ms=60_000)
    now = 10_000_000
    try:
        for op, n in ops:
            acked = status(conn).acked_seq
            if op == "add":
                entries = readings(n, now - 3_600_000, head(conn) + 1)
                with tx(conn):
                    append(conn, now - 3_600_000, entries)
            elif op == "ack":
                through = acked + (head(conn) - acked) * n // 100
                with tx(conn):
                    apply_ack(conn, AckRequest(through), now, delete_max=0)
            elif op == "trim":
                with tx(conn):
                    trim_acked(conn, n)
            elif op == "compact":
                with tx(conn):
                    compact_chunk(conn, policy, now, for_size=False)
            else:  # remove every n-th row, acked or not (erasure-like)
                seqs = [s for (s,) in conn.execute("SELECT seq FROM outbox")][::n]
                with tx(conn):
                    remove(conn, seqs)
            assert totals(conn) == recount(conn), op
            current = status(conn)
            assert (current.rows, current.pending_bytes) == recount(conn)
    finally:
        conn.close()


def test_an_ack_takes_its_range_off_the_totals_and_trimming_acked_rows_changes_nothing(
    tmp_path: Path,
) -> None:
    conn = open_store(tmp_path / "s.db")
    add_changes(conn, readings(100, 1_000, 1), created_ms=1_000)
    assert totals(conn) == recount(conn)
    assert totals(conn)[0] == 100
    with tx(conn):
        apply_ack(conn, AckRequest(40), 2_000, delete_max=0)
    assert totals(conn) == recount(conn)
    assert totals(conn)[0] == 60
    assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 100  # deleted later, in steps
    before = totals(conn)
    with tx(conn):
        trim_acked(conn, 30)
    assert conn.execute("SELECT min(seq) FROM outbox").fetchone()[0] == 31
    with tx(conn):
        trim_acked(conn, 30)
    assert conn.execute("SELECT min(seq) FROM outbox").fetchone()[0] == 41
    assert totals(conn) == before == recount(conn)
    # Replayed and backward acks change nothing; an ack without delete_max deletes what it covers.
    with tx(conn):
        apply_ack(conn, AckRequest(40), 3_000, delete_max=0)
    with tx(conn):
        apply_ack(conn, AckRequest(10), 3_000, delete_max=0)
    assert totals(conn) == before
    with tx(conn):
        apply_ack(conn, AckRequest(100), 3_000)
    assert totals(conn) == (0, 0) == recount(conn)
    assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    conn.close()


def test_migration_8_drops_the_triggers_and_recounts_above_the_ack_cursor(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = connect(path)
    current_version(conn)
    for step in MIGRATIONS:  # the schema as it was before v8: totals kept by per-row triggers
        if step.version >= 8:
            continue
        conn.execute("BEGIN IMMEDIATE")
        step.apply(conn)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (step.version, step.name))
        conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO outbox (created_ms, kind, entity, body) VALUES (1, 'reading', ?, ?)",
        [(f"d-{i}", "{}" * i) for i in range(50)],
    )
    # v2 semantics: acked rows not trimmed yet still counted as pending.
    conn.execute("UPDATE sync_state SET acked_seq = 20")
    conn.execute("COMMIT")
    assert totals(conn)[0] == 50
    assert migrate(conn)[0] == 8  # (and any later migration)
    triggers = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'outbox'"
    ).fetchall()
    assert triggers == []
    assert totals(conn) == recount(conn)
    assert totals(conn)[0] == 30
    conn.close()


# -- pages built by SQLite ---------------------------------------------------------------------------

_ROW_JSON_OVERHEAD = 80


def reference_page(conn: sqlite3.Connection, cursor: OutboxCursor, *, max_bytes: int) -> ChangesPage:
    """The page as the Python loop it replaced built it (same snapshot rules, same byte budget)."""
    feed, acked = conn.execute("SELECT feed, acked_seq FROM sync_state").fetchone()
    changes: list[Change] = []
    budget = max_bytes
    for seq, created_ms, kind, entity, body in conn.execute(
        "SELECT seq, created_ms, kind, entity, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
        (cursor.after, cursor.limit),
    ):
        raw = body.encode()
        cost = len(raw) + len(entity) + len(kind) + _ROW_JSON_OVERHEAD
        if changes and cost > budget:
            break
        budget -= cost
        changes.append(Change(seq, created_ms, kind, entity, msgspec.Raw(raw)))
    nxt = changes[-1].seq if changes else cursor.after
    more = conn.execute("SELECT 1 FROM outbox WHERE seq > ? LIMIT 1", (nxt,)).fetchone() is not None
    return ChangesPage("demo", feed, changes, nxt, more, head(conn), acked)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ENTRIES = st.lists(
    st.builds(
        OutboxEntry,
        kind=st.text(min_size=1, max_size=12),
        entity=st.text(max_size=20),
        body=JSON_VALUES.map(lambda v: json.dumps(v, ensure_ascii=False)),
    ),
    min_size=0,
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entries=ENTRIES,
    acked_pct=st.integers(0, 100),
    after_pct=st.integers(0, 100),
    limit=st.integers(1, 50),
    max_bytes=st.integers(1, 3000),
)
def test_pages_built_by_sqlite_are_byte_identical_to_msgspec_and_cut_at_the_same_budget(
    tmp_path_factory: pytest.TempPathFactory,
    entries: list[OutboxEntry],
    acked_pct: int,
    after_pct: int,
    limit: int,
    max_bytes: int,
) -> None:
    conn = open_store(tmp_path_factory.mktemp("page") / "s.db")
    try:
        add_changes(conn, entries, created_ms=1_795_514_400_123)
        newest = head(conn)
        acked = newest * acked_pct // 100
        with tx(conn):
            apply_ack(conn, AckRequest(acked), 1, delete_max=0)
        after = acked + (newest - acked) * after_pct // 100
        cursor = OutboxCursor(after, limit)
        page = read_page_json(conn, cursor, store="demo", max_bytes=max_bytes)
        expected = reference_page(conn, cursor, max_bytes=max_bytes)
        assert page.data == msgspec.json.encode(expected)
        assert (page.count, page.next, page.more) == (len(expected.changes), expected.next, expected.more)
        assert read_page(conn, cursor, store="demo", max_bytes=max_bytes) == expected
    finally:
        conn.close()


def test_a_full_size_page_is_one_statement_in_seq_order(tmp_path: Path) -> None:
    conn = open_store(tmp_path / "s.db")
    add_changes(conn, readings(5000, 1_000, 1), created_ms=1_000)
    page = read_page_json(conn, OutboxCursor(0, 5000), store="demo", max_bytes=4 << 20)
    decoded = msgspec.json.decode(page.data, type=ChangesPage)
    assert [c.seq for c in decoded.changes] == list(range(1, 5001))
    assert page.data == msgspec.json.encode(reference_page(conn, OutboxCursor(0, 5000), max_bytes=4 << 20))
    # A budget below one change still serves one change, so one huge change cannot wedge the feed.
    one = read_page_json(conn, OutboxCursor(0, 5000), store="demo", max_bytes=1)
    assert (one.count, one.next, one.more) == (1, 1, True)
    assert read_page_json(conn, OutboxCursor(5000, 10), store="demo", max_bytes=1).count == 0
    assert MAX_SEQ == 2**63 - 1
    conn.close()
