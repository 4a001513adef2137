"""The chain's purchases in central's warehouse as a `models.history.PurchaseHistory`: what retraining
at central (`sync.central_retrain`) trains and evaluates on.

Only households whose newest ``analytics`` consent is granted are read: learning from a shopper's
history is analytics (docs/customers.md), personalisation is what the store then does with the
result. Anonymous purchases (no loyalty card, or a household erased since) are left out: every feature
the models use, the category's popularity included, counts households, so a basket without one has
nothing to add. Lines without a category (stores older than warehouse schema v2) and lines with a
non-positive quantity or a negative price are left out too. A basket is a (store, basket id) pair.
Rows are read in a fixed order, so the same warehouse gives the same history, hash and models.

Days and minutes are wall-clock time in ``timezone`` (an IANA name, default UTC), converted by
PostgreSQL row by row, so a chain across a DST change keeps its trips on the right day. The warehouse
has no promotion flag: every line has ``promo = False``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from models.history import PurchaseHistory, PurchaseLine, history_from_lines
from sync.errors import SyncError

ANALYTICS = "analytics"

_LINES = """
SELECT p.household, i.category, p.store, p.basket_id, i.qty, i.unit_price::float8 AS price,
       floor(extract(epoch FROM p.ts AT TIME ZONE $3) * 1000)::bigint AS local_ms
FROM purchases p
JOIN consents c ON c.household = p.household AND c.purpose = $4 AND c.granted
JOIN purchase_items i ON i.store = p.store AND i.basket_id = p.basket_id AND i.ts = p.ts
WHERE p.household IS NOT NULL AND p.ts >= $1 AND p.ts < $2
  AND i.ts >= $1 AND i.ts < $2
  AND i.category IS NOT NULL AND i.category <> '' AND i.qty > 0 AND i.unit_price >= 0
ORDER BY p.household, p.ts, p.store, p.basket_id, i.line
"""

_LEFT_OUT = """
SELECT count(*) FILTER (WHERE p.household IS NULL) AS anonymous_baskets,
       count(DISTINCT p.household) FILTER (
           WHERE p.household IS NOT NULL AND c.household IS NULL) AS households_without_consent
FROM purchases p
LEFT JOIN consents c ON c.household = p.household AND c.purpose = $3 AND c.granted
WHERE p.ts >= $1 AND p.ts < $2
"""


@dataclass(frozen=True, slots=True, eq=False)
class ChainHistory:
    """The consenting households' basket lines, and what was left out (counts only)."""

    history: PurchaseHistory
    baskets: int
    anonymous_baskets: int  # baskets without a household: not read
    households_without_consent: int  # households with purchases but no analytics consent: not read


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; `SyncError` naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SyncError(f"--timezone {name!r}: not an IANA time zone (e.g. UTC, Europe/Madrid)") from exc


def local_midnight(day: date, timezone: str) -> datetime:
    """The instant ``day`` starts in ``timezone`` (an aware datetime, for timestamptz bounds)."""
    return datetime.combine(day, time(0), tzinfo=zone(timezone))


async def read_chain_history(
    conn: asyncpg.Connection, until: date, *, since: date | None = None, timezone: str = "UTC"
) -> ChainHistory:
    """The lines of consenting households' baskets from ``since`` (default: the beginning) up to, not
    including, the day ``until``, days in ``timezone``."""
    start = local_midnight(since, timezone) if since is not None else datetime(1970, 1, 1, tzinfo=zone("UTC"))
    end = local_midnight(until, timezone)
    rows = await conn.fetch(_LINES, start, end, timezone, ANALYTICS)
    left_out = await conn.fetchrow(_LEFT_OUT, start, end, ANALYTICS)
    assert left_out is not None
    history, baskets = await asyncio.to_thread(_history, rows)  # CPU work: off central's event loop
    return ChainHistory(
        history=history,
        baskets=baskets,
        anonymous_baskets=int(left_out["anonymous_baskets"]),
        households_without_consent=int(left_out["households_without_consent"]),
    )


def _history(rows: list[asyncpg.Record]) -> tuple[PurchaseHistory, int]:
    lines = (
        PurchaseLine(
            household=row["household"],
            category=row["category"],
            ts_ms=row["local_ms"],
            basket=f"{row['store']}/{row['basket_id']}",
            qty=float(row["qty"]),
            unit_price=float(row["price"]),
        )
        for row in rows
    )
    return history_from_lines(lines), len({(row["store"], row["basket_id"]) for row in rows})


__all__ = ["ANALYTICS", "ChainHistory", "local_midnight", "read_chain_history", "zone"]
