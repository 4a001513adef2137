"""What a household's insights document is built from, read in one snapshot on a read-only connection:
its own purchases (never shown raw: `edge.customers.insights_document` aggregates them), the store's
anonymous reference figures (prices per category, the average basket, promoted shares), its scores, and
the categories its peers buy (its segment's members with analytics consent, else every such household).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from edge.customers.offers import Promotion
from edge.customers.score_tables import CustomerScore, score_of

MS_PER_DAY = 86_400_000
MIN_PEERS = 10  # a peer group smaller than this is never described (no one is singled out)


@dataclass(frozen=True, slots=True)
class Line:
    purchase: int
    ts_ms: int
    sku: str
    category: str
    qty: float
    unit_price: float


@dataclass(frozen=True, slots=True)
class PromotionWindow:
    category: str
    start_ms: int
    end_ms: int  # exclusive


@dataclass(frozen=True, slots=True)
class InsightInputs:
    household: str
    now_ms: int
    offset_ms: int  # store-local time = UTC + offset
    history_days: int
    lines: tuple[Line, ...]
    baskets: tuple[tuple[int, int, float], ...]  # (purchase id, ts_ms, total)
    category_price: dict[str, float]  # the store's mean unit price per category (the window's lines)
    skus_per_category: dict[str, int]  # distinct SKUs sold per category (the window's lines)
    store_basket_mean: float | None  # mean basket total of loyalty baskets in the window
    promotions: tuple[PromotionWindow, ...]
    store_promoted_share: dict[str, float]  # per promoted category: the store's share of lines in a window
    score: CustomerScore | None
    peer_categories: tuple[tuple[str, float], ...]  # (category, share of peers who bought it), by share
    peers: int  # households in the peer group
    peer_group: str  # "segment" or "store"
    catalogue_has_brand: bool


def promotion_windows(promotions: Sequence[Promotion], tz: dt.tzinfo) -> tuple[PromotionWindow, ...]:
    def ms(day: dt.date) -> int:
        return int(dt.datetime.combine(day, dt.time(), tzinfo=tz).timestamp() * 1000)

    return tuple(
        PromotionWindow(p.category, ms(p.starts), ms(p.ends + dt.timedelta(days=1))) for p in promotions
    )


def read_inputs(
    conn: sqlite3.Connection,
    household: str,
    *,
    now_ms: int,
    offset_ms: int,
    history_days: int,
    promotions: tuple[PromotionWindow, ...],
) -> InsightInputs:
    since = now_ms - history_days * MS_PER_DAY
    conn.execute("BEGIN")
    try:
        lines = tuple(
            Line(int(pid), int(ts), str(sku), str(cat), float(qty), float(price))
            for pid, ts, sku, cat, qty, price in conn.execute(
                "SELECT p.id, p.ts_ms, i.sku, i.category, i.qty, i.unit_price FROM purchases p"
                " JOIN purchase_items i ON i.purchase_id = p.id WHERE p.household = ? AND p.ts_ms >= ?"
                " AND i.category IS NOT NULL AND i.qty > 0 ORDER BY p.ts_ms, i.line",
                (household, since),
            )
        )
        baskets = tuple(
            (int(pid), int(ts), float(total))
            for pid, ts, total in conn.execute(
                "SELECT id, ts_ms, total FROM purchases WHERE household = ? AND ts_ms >= ? ORDER BY ts_ms",
                (household, since),
            )
        )
        mine = sorted({line.category for line in lines})
        category_price, skus = _category_prices(conn, mine, since)
        (basket_mean,) = conn.execute(
            "SELECT avg(total) FROM purchases WHERE household IS NOT NULL AND ts_ms >= ?", (since,)
        ).fetchone()
        promoted = {w.category for w in promotions} & set(mine)
        store_promoted = {c: _store_promoted_share(conn, c, promotions, since) for c in sorted(promoted)}
        score = score_of(conn, household)
        peers, group, shares = _peer_categories(conn, score.segment if score else None, since)
        has_brand = any(row[1] == "brand" for row in conn.execute("PRAGMA table_info(products)"))
    finally:
        conn.execute("COMMIT")
    return InsightInputs(
        household=household,
        now_ms=now_ms,
        offset_ms=offset_ms,
        history_days=history_days,
        lines=lines,
        baskets=baskets,
        category_price=category_price,
        skus_per_category=skus,
        store_basket_mean=float(basket_mean) if basket_mean is not None else None,
        promotions=promotions,
        store_promoted_share=store_promoted,
        score=score,
        peer_categories=shares,
        peers=peers,
        peer_group=group,
        catalogue_has_brand=has_brand,
    )


def _category_prices(
    conn: sqlite3.Connection, categories: Sequence[str], since: int
) -> tuple[dict[str, float], dict[str, int]]:
    prices: dict[str, float] = {}
    skus: dict[str, int] = {}
    for start in range(0, len(categories), 500):
        chunk = tuple(categories[start : start + 500])
        marks = ",".join("?" * len(chunk))
        for category, price, distinct in conn.execute(
            "SELECT i.category, sum(i.qty * i.unit_price) / sum(i.qty), count(DISTINCT i.sku)"  # noqa: S608 - placeholders only
            f" FROM purchase_items i JOIN purchases p ON p.id = i.purchase_id WHERE i.category IN ({marks})"
            " AND p.ts_ms >= ? AND i.qty > 0 GROUP BY i.category",
            (*chunk, since),
        ):
            if price is not None:
                prices[str(category)] = float(price)
            skus[str(category)] = int(distinct)
    return prices, skus


def _store_promoted_share(
    conn: sqlite3.Connection, category: str, windows: Sequence[PromotionWindow], since: int
) -> float:
    """Share of the store's loyalty lines of ``category`` since ``since`` bought during a promotion."""
    spans = [(w.start_ms, w.end_ms) for w in windows if w.category == category]
    inside = " OR ".join("(p.ts_ms >= ? AND p.ts_ms < ?)" for _ in spans)
    total, promoted = conn.execute(
        f"SELECT count(*), coalesce(sum(CASE WHEN {inside} THEN 1 ELSE 0 END), 0) FROM purchase_items i"  # noqa: S608 - placeholders only
        " JOIN purchases p ON p.id = i.purchase_id WHERE i.category = ? AND p.ts_ms >= ?"
        " AND p.household IS NOT NULL",
        (*(v for span in spans for v in span), category, since),
    ).fetchone()
    return int(promoted) / int(total) if total else 0.0


def _peer_categories(
    conn: sqlite3.Connection, segment: str | None, since: int
) -> tuple[int, str, tuple[tuple[str, float], ...]]:
    """(peers, "segment" | "store", categories by the share of peers who bought them): the household's
    segment when it has at least `MIN_PEERS` scored members, else every household with analytics consent."""
    group, members_sql = "store", _ANALYTICS_MEMBERS
    args: tuple[str, ...] = ()
    if segment is not None:
        (n,) = conn.execute("SELECT count(*) FROM customer_scores WHERE segment = ?", (segment,)).fetchone()
        if int(n) >= MIN_PEERS:
            group, members_sql, args = "segment", _SEGMENT_MEMBERS, (segment,)
    (peers,) = conn.execute(f"SELECT count(*) FROM ({members_sql})", args).fetchone()  # noqa: S608 - fixed SQL
    if int(peers) < MIN_PEERS:
        return int(peers), group, ()
    rows = conn.execute(
        "SELECT i.category, count(DISTINCT p.household) FROM purchases p JOIN purchase_items i"  # noqa: S608 - fixed SQL
        f" ON i.purchase_id = p.id WHERE p.household IN ({members_sql}) AND p.ts_ms >= ?"
        " AND i.category IS NOT NULL GROUP BY i.category",
        (*args, since),
    ).fetchall()
    shares = sorted(((str(c), int(n) / int(peers)) for c, n in rows), key=lambda r: (-r[1], r[0]))
    return int(peers), group, tuple(shares)


_ANALYTICS_MEMBERS = "SELECT household FROM consents WHERE purpose = 'analytics' AND granted = 1"
_SEGMENT_MEMBERS = "SELECT household FROM customer_scores WHERE segment = ?"
