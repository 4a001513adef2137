"""The store-wide figures the household models need: every category, how many households buy each,
how many shop at all (anonymous sales statistics over the loyalty purchases of the window).

`store_aggregates` reads them from the history cache's category table and, above its watermark, the
tables (`edge.store.history_categories`): a few hundred thousand rows at 20,000 households.
`store_aggregates_from_tables` counts the same over every basket line (two joins over the year's lines:
6.0 s at 20,000 households); it is the reference the tests compare with and the benchmark's baseline.
"""

from __future__ import annotations

import sqlite3

from edge.predictions.tables import CategoryAggregates
from edge.store.history_cache import watermark
from edge.store.history_categories import store_category_counts

__all__ = ["store_aggregates", "store_aggregates_from_tables"]


def store_aggregates(conn: sqlite3.Connection, since_ms: int) -> tuple[tuple[str, ...], CategoryAggregates]:
    """(every category, sorted; the counts) since ``since_ms``, through the history cache."""
    conn.execute("BEGIN")
    try:
        counts = store_category_counts(conn, since_ms, watermark(conn))
    finally:
        conn.execute("COMMIT")
    return counts.categories, CategoryAggregates(counts.households_by_category, counts.active_households)


def store_aggregates_from_tables(
    conn: sqlite3.Connection, since_ms: int
) -> tuple[tuple[str, ...], CategoryAggregates]:
    """The same, counted over every basket line (categories of anonymous sales included)."""
    return store_categories(conn, since_ms), category_aggregates(conn, since_ms)


def store_categories(conn: sqlite3.Connection, since_ms: int) -> tuple[str, ...]:
    """Every category the store sells or sold in the window, sorted (the models' category table)."""
    rows = conn.execute(
        "SELECT category FROM products UNION SELECT DISTINCT i.category FROM purchases p"
        " JOIN purchase_items i ON i.purchase_id = p.id WHERE p.ts_ms >= ? AND i.category IS NOT NULL",
        (since_ms,),
    ).fetchall()
    return tuple(sorted(str(c) for (c,) in rows))


def category_aggregates(conn: sqlite3.Connection, since_ms: int) -> CategoryAggregates:
    by_category = {
        str(c): int(n)
        for c, n in conn.execute(
            "SELECT i.category, count(DISTINCT p.household) FROM purchases p"
            " JOIN purchase_items i ON i.purchase_id = p.id"
            " WHERE p.household IS NOT NULL AND p.ts_ms >= ? AND i.category IS NOT NULL GROUP BY i.category",
            (since_ms,),
        )
    }
    (active,) = conn.execute(
        "SELECT count(DISTINCT household) FROM purchases WHERE household IS NOT NULL AND ts_ms >= ?",
        (since_ms,),
    ).fetchone()
    return CategoryAggregates(by_category, int(active))
