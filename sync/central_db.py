"""Central's database: every store's changes exactly once, whatever the network did to the pages.

``changes`` holds one row per (store, feed, seq): a page that arrives twice, late, out of order or
overlapping another adds only the changes not already there, and their effects (``totals``) only once.
``id`` is the arrival order. ``stores`` holds each store's committed cursor: the puller resumes from it
after any crash, and acks the store only after the transaction that moved it has committed.

Compaction on the store replaces raw readings by aggregates with new seqs; an aggregate lists the seqs
it replaces. If central already holds some of those raw rows (it pulled them before the store compacted
and the ack was still in flight), their effects are taken back and the rows are marked superseded; if
a replaced row arrives after its aggregate (only a replayed or reordered page can do that), its
placeholder is already there and it is ignored. Either way the final state is the same.

``feed`` is the store database's identity (`sync.outbox`): a store whose database was replaced starts a
new feed at seq 1, and its changes are kept apart from the old feed's rather than deduplicated away.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import msgspec

from sync.schemas import BundleReport, Change, ChangesPage, ReadingAggregate

Buffer: TypeAlias = bytes | msgspec.Raw  # what change bodies arrive as
CENTRAL_SCHEMA_VERSION = 1
CENTRAL_DDL: tuple[str, ...] = (
    """CREATE TABLE stores (
        id TEXT PRIMARY KEY, feed TEXT, cursor INTEGER NOT NULL DEFAULT 0, head INTEGER NOT NULL DEFAULT 0,
        changes INTEGER NOT NULL DEFAULT 0, last_pull_ms INTEGER, last_applied_ms INTEGER,
        newest_created_ms INTEGER)""",
    # A stream is one store database's feed; change_log rows key on (stream, seq): two small integers,
    # so the dedup index stays small and inserts stay fast. `changes` is the readable view.
    """CREATE TABLE streams (
        id INTEGER PRIMARY KEY, store TEXT NOT NULL, feed TEXT NOT NULL, UNIQUE (store, feed))""",
    """CREATE TABLE change_log (
        id INTEGER PRIMARY KEY, stream INTEGER NOT NULL REFERENCES streams (id), seq INTEGER NOT NULL,
        kind TEXT NOT NULL, entity TEXT, created_ms INTEGER, body TEXT, superseded_by INTEGER,
        received_ms INTEGER NOT NULL, UNIQUE (stream, seq))""",
    """CREATE VIEW changes AS
        SELECT c.id, s.store, s.feed, c.seq, c.kind, c.entity, c.created_ms, c.body, c.superseded_by,
            c.received_ms
        FROM change_log c JOIN streams s ON s.id = c.stream""",
    """CREATE TABLE totals (
        store TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (store, name)
    ) WITHOUT ROWID""",
    """CREATE TABLE store_bundles (
        store TEXT NOT NULL, kind TEXT NOT NULL, version INTEGER NOT NULL, outcome TEXT NOT NULL,
        reason TEXT, seq INTEGER NOT NULL, PRIMARY KEY (store, kind)) WITHOUT ROWID""",
    # Places where central knows it cannot have everything: the store had deleted changes central asked
    # for (central's database was restored from an older backup) or the store's database was replaced.
    """CREATE TABLE gaps (
        id INTEGER PRIMARY KEY, store TEXT NOT NULL, feed TEXT, after INTEGER, resumed_after INTEGER,
        reason TEXT NOT NULL, detected_ms INTEGER NOT NULL)""",
)


def open_central_db(path: Path) -> sqlite3.Connection:
    """Open (and create) central's database: WAL, ``synchronous=FULL`` (an ack promises a durable commit)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: a busy chain's dedup index stays in memory
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == 0:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for ddl in CENTRAL_DDL:
                conn.execute(ddl)
            conn.execute(f"PRAGMA user_version = {CENTRAL_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    elif version != CENTRAL_SCHEMA_VERSION:
        conn.close()
        raise sqlite3.DatabaseError(
            f"{path}: central schema version {version}, expected {CENTRAL_SCHEMA_VERSION}"
        )
    return conn


# -- effects: what each change adds to a store's totals -----------------------------------------------


class _EffectBody(msgspec.Struct, frozen=True):
    type: str | None = None
    total: float | None = None
    action: str | None = None
    count: int | None = None
    entered: int | None = None
    exited: int | None = None
    n: int | None = None
    picks: int | None = None
    puts: int | None = None


_effect_decoder = msgspec.json.Decoder(_EffectBody)
_aggregate_decoder = msgspec.json.Decoder(ReadingAggregate)
_bundle_decoder = msgspec.json.Decoder(BundleReport)


def add_effects(totals: dict[str, int], kind: str, body: Buffer, sign: int = 1) -> None:
    """Add (``sign=1``) or take back (``-1``) what a change contributes to its store's totals. Integers
    only, so they add up to the same in any order. Hot path: one decode, no intermediate objects."""
    name = "changes:" + kind
    totals[name] = totals.get(name, 0) + sign
    if kind != "reading" and kind != "reading_aggregate" and kind != "purchase":  # noqa: PLR1714 - fastest
        return
    try:
        b = _effect_decoder.decode(body)
    except msgspec.DecodeError:
        return
    if kind == "purchase":
        totals["purchases"] = totals.get("purchases", 0) + sign
        totals["revenue_cents"] = totals.get("revenue_cents", 0) + sign * round((b.total or 0.0) * 100)
        return
    aggregate = kind == "reading_aggregate"
    totals["sensor_readings"] = totals.get("sensor_readings", 0) + sign * ((b.n or 0) if aggregate else 1)
    if b.type == "shelf_event":
        if aggregate:
            picks, puts = b.picks or 0, b.puts or 0
        elif b.action == "pick":
            picks, puts = b.count or 0, 0
        else:
            picks, puts = 0, b.count or 0
        totals["picks"] = totals.get("picks", 0) + sign * picks
        totals["puts"] = totals.get("puts", 0) + sign * puts
    elif b.type == "footfall":
        totals["people_in"] = totals.get("people_in", 0) + sign * (b.entered or 0)
        totals["people_out"] = totals.get("people_out", 0) + sign * (b.exited or 0)


def effects(kind: str, body: Buffer) -> dict[str, int]:
    """The totals one change contributes (see `add_effects`)."""
    out: dict[str, int] = {}
    add_effects(out, kind, body)
    return out


# -- applying pages ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyResult:
    inserted: int  # new changes
    duplicates: int  # changes central already had
    superseded: int  # raw rows replaced by an aggregate in this page
    cursor: int  # the store's committed cursor after this page


def ensure_store(conn: sqlite3.Connection, store: str) -> None:
    conn.execute("INSERT INTO stores (id) VALUES (?) ON CONFLICT (id) DO NOTHING", (store,))


def apply_page(conn: sqlite3.Connection, store: str, page: ChangesPage, now_ms: int) -> ApplyResult:
    """Apply one page in one transaction; idempotent and order-independent per (store, feed, seq)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = _apply(conn, store, page, now_ms)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return result


def _apply(conn: sqlite3.Connection, store: str, page: ChangesPage, now_ms: int) -> ApplyResult:
    ensure_store(conn, store)
    feed = page.feed
    known_feed, cursor = conn.execute("SELECT feed, cursor FROM stores WHERE id = ?", (store,)).fetchone()
    if known_feed is None:
        conn.execute("UPDATE stores SET feed = ? WHERE id = ?", (feed, store))
        known_feed = feed
    stream = _stream(conn, store, feed)
    changes = sorted(page.changes, key=lambda c: c.seq)
    existing: set[int] = set()
    if changes:
        existing = {
            seq
            for (seq,) in conn.execute(
                "SELECT seq FROM change_log WHERE stream = ? AND seq BETWEEN ? AND ?",
                (stream, changes[0].seq, changes[-1].seq),
            )
        }
    totals: dict[str, int] = {}
    batch: list[tuple[object, ...]] = []
    inserted = duplicates = superseded = rows_added = 0
    newest_created = None
    for change in changes:
        seq = change.seq
        if seq in existing:
            duplicates += 1
            continue
        existing.add(seq)
        inserted += 1
        kind, body = change.kind, change.body
        if newest_created is None or change.created_ms > newest_created:
            newest_created = change.created_ms
        if kind == "reading_aggregate":
            _flush(conn, batch)
            replaced, placeholders = _supersede(conn, stream, change, body, totals, now_ms)
            superseded += replaced
            rows_added += placeholders
        elif kind == "bundle":
            _record_bundle(conn, store, change, body)
        add_effects(totals, kind, body)
        batch.append((stream, seq, kind, change.entity, change.created_ms, str(body, "utf-8"), now_ms))
    _flush(conn, batch)
    if totals:
        conn.executemany(
            "INSERT INTO totals (store, name, value) VALUES (?, ?, ?)"
            " ON CONFLICT (store, name) DO UPDATE SET value = value + excluded.value",
            [(store, name, value) for name, value in sorted(totals.items()) if value],
        )
    if feed == known_feed:
        cursor = max(cursor, page.next)
    conn.execute(
        "UPDATE stores SET cursor = ?, head = max(head, ?), changes = changes + ?, last_pull_ms = ?,"
        " last_applied_ms = CASE WHEN ? > 0 THEN ? ELSE last_applied_ms END,"
        " newest_created_ms = max(coalesce(newest_created_ms, 0), coalesce(?, 0)) WHERE id = ?",
        (
            cursor,
            page.head if feed == known_feed else 0,
            inserted + rows_added,
            now_ms,
            inserted,
            now_ms,
            newest_created,
            store,
        ),
    )
    return ApplyResult(inserted, duplicates, superseded, cursor)


def _flush(conn: sqlite3.Connection, batch: list[tuple[object, ...]]) -> None:
    if batch:
        conn.executemany(
            "INSERT INTO change_log (stream, seq, kind, entity, created_ms, body, received_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
        batch.clear()


def _supersede(
    conn: sqlite3.Connection,
    stream: int,
    change: Change,
    body: Buffer,
    totals: dict[str, int],
    now_ms: int,
) -> tuple[int, int]:
    """Take back the effects of the raw rows this aggregate replaces that central already holds, mark
    them superseded, and leave placeholders for the ones it has not seen (so they are never applied).
    Returns (rows superseded, placeholders added)."""
    try:
        aggregate = _aggregate_decoder.decode(body)
    except msgspec.DecodeError:
        return 0, 0
    replaced = sorted(set(aggregate.replaces))
    rows = list(_rows(conn, stream, replaced))
    held = [(seq, kind, raw) for seq, kind, raw, by in rows if by is None and kind != "superseded"]
    present = {seq for seq, *_ in rows}
    for _seq, kind, raw in held:
        add_effects(totals, kind, raw.encode(), -1)
    conn.executemany(
        "UPDATE change_log SET kind = 'superseded', entity = NULL, created_ms = NULL, body = NULL, superseded_by = ?"
        " WHERE stream = ? AND seq = ?",
        [(change.seq, stream, seq) for seq, _kind, _raw in held],
    )
    missing = [(stream, seq, change.seq, now_ms) for seq in replaced if seq not in present]
    conn.executemany(
        "INSERT INTO change_log (stream, seq, kind, superseded_by, received_ms) VALUES (?, ?, 'superseded', ?, ?)",
        missing,
    )
    return len(held), len(missing)


def _rows(
    conn: sqlite3.Connection, stream: int, seqs: Sequence[int]
) -> Iterable[tuple[int, str, str, int | None]]:
    for start in range(0, len(seqs), 500):
        chunk = seqs[start : start + 500]
        marks = ",".join("?" * len(chunk))
        yield from conn.execute(
            f"SELECT seq, kind, body, superseded_by FROM change_log WHERE stream = ? AND seq IN ({marks})",  # noqa: S608 - placeholders only
            (stream, *chunk),
        )


def _stream(conn: sqlite3.Connection, store: str, feed: str) -> int:
    row = conn.execute("SELECT id FROM streams WHERE store = ? AND feed = ?", (store, feed)).fetchone()
    if row is not None:
        return int(row[0])
    return int(conn.execute("INSERT INTO streams (store, feed) VALUES (?, ?)", (store, feed)).lastrowid or 0)


def _record_bundle(conn: sqlite3.Connection, store: str, change: Change, body: Buffer) -> None:
    try:
        report = _bundle_decoder.decode(body)
    except msgspec.DecodeError:
        return
    conn.execute(
        "INSERT INTO store_bundles (store, kind, version, outcome, reason, seq) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (store, kind) DO UPDATE SET version = excluded.version, outcome = excluded.outcome,"
        " reason = excluded.reason, seq = excluded.seq WHERE excluded.seq > store_bundles.seq",
        (store, report.kind, report.version, report.outcome, report.reason, change.seq),
    )


# -- cursors, feeds and gaps -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreCursor:
    store: str
    feed: str | None
    cursor: int


def load_cursor(conn: sqlite3.Connection, store: str) -> StoreCursor:
    conn.execute("BEGIN IMMEDIATE")
    ensure_store(conn, store)
    feed, cursor = conn.execute("SELECT feed, cursor FROM stores WHERE id = ?", (store,)).fetchone()
    conn.execute("COMMIT")
    return StoreCursor(store, feed, cursor)


def switch_feed(conn: sqlite3.Connection, store: str, new_feed: str, now_ms: int) -> StoreCursor:
    """The store's database was replaced: pull its new feed from the beginning, keep the old feed's rows."""
    conn.execute("BEGIN IMMEDIATE")
    old_feed, cursor = conn.execute("SELECT feed, cursor FROM stores WHERE id = ?", (store,)).fetchone()
    conn.execute(
        "INSERT INTO gaps (store, feed, after, resumed_after, reason, detected_ms) VALUES (?, ?, ?, 0, ?, ?)",
        (store, old_feed, cursor, f"feed_changed to {new_feed}", now_ms),
    )
    conn.execute("UPDATE stores SET feed = ?, cursor = 0, head = 0 WHERE id = ?", (new_feed, store))
    conn.execute("COMMIT")
    return StoreCursor(store, new_feed, 0)


def skip_to(conn: sqlite3.Connection, store: str, resume_after: int, reason: str, now_ms: int) -> StoreCursor:
    """The store no longer has what central asked for (it was acked earlier, so central once had it): record
    the gap and resume from the store's ack cursor."""
    conn.execute("BEGIN IMMEDIATE")
    feed, cursor = conn.execute("SELECT feed, cursor FROM stores WHERE id = ?", (store,)).fetchone()
    conn.execute(
        "INSERT INTO gaps (store, feed, after, resumed_after, reason, detected_ms) VALUES (?, ?, ?, ?, ?, ?)",
        (store, feed, cursor, resume_after, reason, now_ms),
    )
    conn.execute("UPDATE stores SET cursor = ? WHERE id = ?", (max(cursor, resume_after), store))
    conn.execute("COMMIT")
    return StoreCursor(store, feed, max(cursor, resume_after))


@dataclass(frozen=True, slots=True)
class StoreRow:
    store: str
    feed: str | None
    cursor: int
    head: int
    changes: int
    last_pull_ms: int | None
    last_applied_ms: int | None
    newest_created_ms: int | None
    gaps: int
    bundles: dict[str, int]


def store_rows(conn: sqlite3.Connection) -> list[StoreRow]:
    gaps = dict(conn.execute("SELECT store, count(*) FROM gaps GROUP BY store").fetchall())
    bundles: dict[str, dict[str, int]] = {}
    for store, kind, version in conn.execute(
        "SELECT store, kind, version FROM store_bundles WHERE outcome = 'activated'"
    ):
        bundles.setdefault(store, {})[kind] = version
    rows = conn.execute(
        "SELECT id, feed, cursor, head, changes, last_pull_ms, last_applied_ms, newest_created_ms"
        " FROM stores ORDER BY id"
    ).fetchall()
    return [
        StoreRow(
            store=r[0],
            feed=r[1],
            cursor=r[2],
            head=r[3],
            changes=r[4],
            last_pull_ms=r[5],
            last_applied_ms=r[6],
            newest_created_ms=r[7],
            gaps=gaps.get(r[0], 0),
            bundles=bundles.get(r[0], {}),
        )
        for r in rows
    ]


def totals(conn: sqlite3.Connection, store: str) -> dict[str, int]:
    return {
        name: int(value)
        for name, value in conn.execute(
            "SELECT name, value FROM totals WHERE store = ? AND value != 0", (store,)
        )
    }
