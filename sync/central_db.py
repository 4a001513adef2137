"""Central's database (PostgreSQL, asyncpg): every store's changes exactly once, whatever the network did to the pages.

``changes`` holds one row per (store, feed, seq): a page that arrives twice, late, out of order or
overlapping another adds only the changes not already there, and their effects (``totals``) only once.
``id`` is the arrival order. ``stores`` holds each store's committed cursor: the puller resumes from it
after any crash, and acks the store only after the transaction that moved it has committed.

Compaction on the store replaces raw readings by aggregates with new seqs; an aggregate lists the seqs
it replaces. If central already holds some of those raw rows (it pulled them before the store compacted
and the ack was still in flight), their effects are taken back and the rows are marked superseded; if
a replaced row arrives after its aggregate (only a replayed or reordered page can do that), its
placeholder is already there and it is ignored. Either way the final state is the same.

A page is one transaction: the store's row is locked first (``SELECT ... FOR UPDATE``), so two applies of
one store never interleave; the changes it already holds are found with one range query, and the new ones
go in with COPY (`_flush`), never row by row.

``feed`` is the store database's identity (`sync.outbox`): a store whose database was replaced starts a
new feed at seq 1, and its changes are kept apart from the old feed's rather than deduplicated away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from sync.central_effects import Buffer, add_effects, effects
from sync.central_schema import ensure_partitions
from sync.central_warehouse import QUARANTINE_BODY_CHARS, PageWarehouse, erased_since, partitions_for
from sync.change_bodies import Body, Refused, decode_body, household_of
from sync.schemas import BundleReport, Change, ChangesPage, ReadingAggregate

__all__ = [
    "ApplyResult",
    "StoreCursor",
    "StoreRow",
    "add_effects",
    "apply_page",
    "effects",
    "load_cursor",
    "quarantine_page",
    "skip_to",
    "store_rows",
    "switch_feed",
    "totals",
]

_bundle_decoder = msgspec.json.Decoder(BundleReport)
_COPY_COLUMNS = ("stream", "seq", "kind", "entity", "created_ms", "body", "received_ms", "household")


# -- applying pages ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyResult:
    inserted: int  # new changes
    duplicates: int  # changes central already had
    superseded: int  # raw rows replaced by an aggregate in this page
    cursor: int  # the store's committed cursor after this page
    quarantined: int = 0  # new changes central could not read (kept in ``quarantine`` with the reason)


async def _lock_store(conn: asyncpg.Connection, store: str) -> tuple[str | None, int]:
    await conn.execute("INSERT INTO stores (id) VALUES ($1) ON CONFLICT (id) DO NOTHING", store)
    row = await conn.fetchrow("SELECT feed, cursor FROM stores WHERE id = $1 FOR UPDATE", store)
    assert row is not None
    return row["feed"], int(row["cursor"])


async def apply_page(conn: asyncpg.Connection, store: str, page: ChangesPage, now_ms: int) -> ApplyResult:
    """Apply one page in one transaction; idempotent and order-independent per (store, feed, seq).

    The bodies are decoded first (`sync.change_bodies`), and the monthly partitions their warehouse rows
    need are created before the transaction (`sync.central_schema.ensure_partitions`)."""
    bodies = {change.seq: decode_body(change.kind, change.body) for change in page.changes}
    await ensure_partitions(conn, partitions_for(bodies.values()))
    async with conn.transaction():
        return await _apply(conn, store, page, bodies, now_ms)


async def _apply(
    conn: asyncpg.Connection, store: str, page: ChangesPage, bodies: dict[int, Body | Refused], now_ms: int
) -> ApplyResult:
    feed = page.feed
    known_feed, cursor = await _lock_store(conn, store)
    if known_feed is None:
        await conn.execute("UPDATE stores SET feed = $1 WHERE id = $2", feed, store)
        known_feed = feed
    stream = await _stream(conn, store, feed)
    changes = sorted(page.changes, key=lambda c: c.seq)
    existing: set[int] = set()
    if changes:
        existing = {
            int(r[0])
            for r in await conn.fetch(
                "SELECT seq FROM change_log WHERE stream = $1 AND seq BETWEEN $2 AND $3",
                stream,
                changes[0].seq,
                changes[-1].seq,
            )
        }
    households = {
        h for c in changes if c.seq not in existing and (h := household_of(bodies[c.seq])) is not None
    }
    warehouse = PageWarehouse(store, feed, stream, now_ms, await erased_since(conn, households))
    sums: dict[str, int] = {}
    batch: list[tuple[Any, ...]] = []
    replaces: dict[int, int] = {}  # raw seq -> the seq of the aggregate in this page that replaces it
    inserted = duplicates = 0
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
        decoded = bodies[seq]
        if isinstance(decoded, ReadingAggregate):
            for raw_seq in decoded.replaces:
                replaces.setdefault(raw_seq, seq)
        elif kind == "bundle":
            await _record_bundle(conn, store, change, body)
        add_effects(sums, kind, body)
        household, kept = warehouse.add(seq, kind, body, decoded, change.created_ms)
        batch.append((stream, seq, kind, change.entity, change.created_ms, kept, now_ms, household))
    await _flush(conn, batch)
    superseded, rows_added = await _supersede(conn, stream, replaces, sums, now_ms, warehouse)
    await warehouse.flush(conn)  # after the log's COPY: an erasure scrubs this page's rows too
    names = [name for name, value in sorted(sums.items()) if value]
    if names:
        await conn.execute(
            "INSERT INTO totals (store, name, value) SELECT $1, n, v FROM unnest($2::text[], $3::bigint[]) AS t(n, v)"
            " ON CONFLICT (store, name) DO UPDATE SET value = totals.value + excluded.value",
            store,
            names,
            [sums[n] for n in names],
        )
    if feed == known_feed:
        cursor = max(cursor, page.next)
    await conn.execute(
        "UPDATE stores SET cursor = $1::bigint, head = greatest(head, $2::bigint), changes = changes + $3::bigint,"
        " last_pull_ms = $4::bigint, last_applied_ms = CASE WHEN $5::bigint > 0 THEN $4::bigint"
        " ELSE last_applied_ms END,"
        " newest_created_ms = greatest(coalesce(newest_created_ms, 0), coalesce($6::bigint, 0)) WHERE id = $7",
        cursor,
        page.head if feed == known_feed else 0,
        inserted + rows_added,
        now_ms,
        inserted,
        newest_created,
        store,
    )
    return ApplyResult(inserted, duplicates, superseded, cursor, warehouse.quarantined)


async def _flush(conn: asyncpg.Connection, batch: list[tuple[Any, ...]]) -> None:
    """COPY the batch (new changes only, in seq order, so ``id`` is arrival order) into change_log.

    Straight into the table, not through a staging table and ``INSERT ... ON CONFLICT DO NOTHING``: the
    page was deduplicated above while holding the store's row lock, so no row can conflict, and measured
    here (5,000-change pages, fsync on) the direct COPY applied 130-165k changes/s against 105-115k
    through a staging table. Were a row to conflict anyway, the page's transaction fails and is retried
    from the committed cursor: nothing is skipped silently."""
    if batch:
        await conn.copy_records_to_table("change_log", records=batch, columns=_COPY_COLUMNS)
        batch.clear()


async def _supersede(
    conn: asyncpg.Connection,
    stream: int,
    replaces: dict[int, int],
    sums: dict[str, int],
    now_ms: int,
    warehouse: PageWarehouse,
) -> tuple[int, int]:
    """For all of a page's aggregates at once (``replaces``: raw seq -> the aggregate's seq), after the
    page's COPY: take back the effects of the raw rows central already holds, mark them superseded, and
    leave placeholders for the ones it has not seen (so they are never applied). Three statements per
    page, whatever its number of aggregates. Returns (rows superseded, placeholders added)."""
    if not replaces:
        return 0, 0
    replaced = sorted(replaces)
    rows = await conn.fetch(
        "SELECT seq, kind, body, superseded_by FROM change_log WHERE stream = $1 AND seq = ANY($2::bigint[])",
        stream,
        replaced,
    )
    held = [(int(r[0]), r[1], r[2]) for r in rows if r[3] is None and r[1] != "superseded"]
    present = {int(r[0]) for r in rows}
    for _seq, kind, raw in held:
        add_effects(sums, kind, (raw or "").encode(), -1)
        warehouse.take_back(kind, (raw or "").encode())
    if held:
        await conn.execute(
            "UPDATE change_log SET kind = 'superseded', entity = NULL, created_ms = NULL, body = NULL,"
            " household = NULL, superseded_by = m.aggregate FROM unnest($2::bigint[], $3::bigint[])"
            " AS m(seq, aggregate) WHERE change_log.stream = $1 AND change_log.seq = m.seq",
            stream,
            [seq for seq, _kind, _raw in held],
            [replaces[seq] for seq, _kind, _raw in held],
        )
    missing = [seq for seq in replaced if seq not in present]
    if missing:
        await conn.execute(
            "INSERT INTO change_log (stream, seq, kind, superseded_by, received_ms)"
            " SELECT $1, m.seq, 'superseded', m.aggregate, $2"
            " FROM unnest($3::bigint[], $4::bigint[]) AS m(seq, aggregate) ORDER BY m.seq",
            stream,
            now_ms,
            missing,
            [replaces[seq] for seq in missing],
        )
    return len(held), len(missing)


async def _stream(conn: asyncpg.Connection, store: str, feed: str) -> int:
    found = await conn.fetchval("SELECT id FROM streams WHERE store = $1 AND feed = $2", store, feed)
    if found is not None:
        return int(found)
    return int(
        await conn.fetchval("INSERT INTO streams (store, feed) VALUES ($1, $2) RETURNING id", store, feed)
    )


async def _record_bundle(conn: asyncpg.Connection, store: str, change: Change, body: Buffer) -> None:
    try:
        report = _bundle_decoder.decode(body)
    except msgspec.DecodeError:
        return
    await conn.execute(
        "INSERT INTO store_bundles (store, kind, version, outcome, reason, seq) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (store, kind) DO UPDATE SET version = excluded.version, outcome = excluded.outcome,"
        " reason = excluded.reason, seq = excluded.seq WHERE excluded.seq > store_bundles.seq",
        store,
        report.kind,
        report.version,
        report.outcome,
        report.reason,
        change.seq,
    )


async def quarantine_page(
    conn: asyncpg.Connection, store: str, reason: str, body: bytes, now_ms: int
) -> None:
    """Keep a page central could not read at all (no seq to move past), with the reason."""
    feed = await conn.fetchval("SELECT feed FROM stores WHERE id = $1", store)
    await conn.execute(
        "INSERT INTO quarantine (store, feed, seq, kind, reason, body, received_ms) VALUES ($1, $2, NULL, NULL, $3, $4, $5)",
        store,
        feed,
        reason,
        str(body[:QUARANTINE_BODY_CHARS], "utf-8", "replace"),
        now_ms,
    )


# -- cursors, feeds and gaps -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreCursor:
    store: str
    feed: str | None
    cursor: int


async def load_cursor(conn: asyncpg.Connection, store: str) -> StoreCursor:
    async with conn.transaction():
        feed, cursor = await _lock_store(conn, store)
    return StoreCursor(store, feed, cursor)


async def switch_feed(conn: asyncpg.Connection, store: str, new_feed: str, now_ms: int) -> StoreCursor:
    """The store's database was replaced: pull its new feed from the beginning, keep the old feed's rows."""
    async with conn.transaction():
        old_feed, cursor = await _lock_store(conn, store)
        await conn.execute(
            "INSERT INTO gaps (store, feed, after, resumed_after, reason, detected_ms) VALUES ($1, $2, $3, 0, $4, $5)",
            store,
            old_feed,
            cursor,
            f"feed_changed to {new_feed}",
            now_ms,
        )
        await conn.execute("UPDATE stores SET feed = $1, cursor = 0, head = 0 WHERE id = $2", new_feed, store)
    return StoreCursor(store, new_feed, 0)


async def skip_to(
    conn: asyncpg.Connection, store: str, resume_after: int, reason: str, now_ms: int
) -> StoreCursor:
    """The store no longer has what central asked for (it was acked earlier, so central once had it): record
    the gap and resume from the store's ack cursor."""
    async with conn.transaction():
        feed, cursor = await _lock_store(conn, store)
        await conn.execute(
            "INSERT INTO gaps (store, feed, after, resumed_after, reason, detected_ms) VALUES ($1, $2, $3, $4, $5, $6)",
            store,
            feed,
            cursor,
            resume_after,
            reason,
            now_ms,
        )
        await conn.execute("UPDATE stores SET cursor = $1 WHERE id = $2", max(cursor, resume_after), store)
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


async def store_rows(conn: asyncpg.Connection) -> list[StoreRow]:
    gaps = {r[0]: int(r[1]) for r in await conn.fetch("SELECT store, count(*) FROM gaps GROUP BY store")}
    bundles: dict[str, dict[str, int]] = {}
    for store, kind, version in await conn.fetch(
        "SELECT store, kind, version FROM store_bundles WHERE outcome = 'activated'"
    ):
        bundles.setdefault(store, {})[kind] = int(version)
    rows = await conn.fetch(
        "SELECT id, feed, cursor, head, changes, last_pull_ms, last_applied_ms, newest_created_ms"
        " FROM stores ORDER BY id"
    )
    return [
        StoreRow(
            store=r[0],
            feed=r[1],
            cursor=int(r[2]),
            head=int(r[3]),
            changes=int(r[4]),
            last_pull_ms=r[5],
            last_applied_ms=r[6],
            newest_created_ms=r[7],
            gaps=gaps.get(r[0], 0),
            bundles=bundles.get(r[0], {}),
        )
        for r in rows
    ]


async def totals(conn: asyncpg.Connection, store: str) -> dict[str, int]:
    rows = await conn.fetch("SELECT name, value FROM totals WHERE store = $1 AND value != 0", store)
    return {r[0]: int(r[1]) for r in rows}
