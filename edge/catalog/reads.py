"""What the catalog routes read of the store's purchases: how often each SKU was bought, by one
household (its own data: a verified session with consent only) and by the whole store."""

from __future__ import annotations

import sqlite3

MS_PER_DAY = 86_400_000


def household_skus(conn: sqlite3.Connection, household: str, since_ms: int) -> dict[str, int]:
    """Baskets of ``household`` since ``since_ms`` holding each SKU."""
    rows = conn.execute(
        """SELECT i.sku, count(DISTINCT i.purchase_id) FROM purchases p
           JOIN purchase_items i ON i.purchase_id = p.id
           WHERE p.household = ? AND p.ts_ms >= ? GROUP BY i.sku""",
        (household, since_ms),
    )
    return {str(sku): int(n) for sku, n in rows}


def store_skus(conn: sqlite3.Connection, since_ms: int) -> dict[str, int]:
    """Baskets of anyone since ``since_ms`` holding each SKU (the store's best sellers)."""
    rows = conn.execute(
        """SELECT i.sku, count(*) FROM purchases p JOIN purchase_items i ON i.purchase_id = p.id
           WHERE p.ts_ms >= ? GROUP BY i.sku""",
        (since_ms,),
    )
    return {str(sku): int(n) for sku, n in rows}
