"""Seeding a store database with weeks of loyalty-card purchases, so a demo kiosk shows a real list.

`storeedge models seed --config FILE --households N --weeks W` (and `storeedge demo`, once per demo
database) simulates the demo store's households for the past W weeks (`simulators.household_history`,
handed in by the CLI: edge may not import the simulators) and writes their baskets as purchases:
loyalty ids are pseudonymised with the store's key exactly as at the till, each basket gets a ledger
row from the dedicated device ``seed`` (``purchases.reading_id`` references the ledger), a purchase
row and its lines, and the household row. Nothing goes to the outbox (central must not mistake a demo's
invented history for sales) and no household gets consent (consent is given at the kiosk).

Run it while the daemon is stopped, or accept that the daemon's writer waits behind each step of
`STEP_BASKETS` baskets.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from edge.config import Config
from edge.customers.privacy import Pseudonymiser, load_pseudonym_key
from edge.errors import EdgeError
from edge.store.db import open_store
from sensors.planogram import Planogram

SEED_DEVICE = "seed"
STEP_BASKETS = 2000


@dataclass(frozen=True, slots=True)
class SeedBasket:
    """One simulated basket: who (loyalty card as the till sends it), when (UTC epoch ms), what."""

    loyalty_id: str
    ts_ms: int
    basket_id: str
    items: Sequence[tuple[str, float, float]]  # (sku, qty, unit price)


@dataclass(frozen=True, slots=True)
class SeedReport:
    baskets: int
    lines: int
    households: int
    cards: list[str]  # loyalty cards with the richest history (for a person at the kiosk)


def store_pseudonym_key(config: Config) -> bytes:
    """The pseudonym key the daemon uses for this config (the same key, created now if it must be)."""
    return load_pseudonym_key(
        config.privacy.pseudonym_key,
        config.path(config.privacy.pseudonym_key_file) if config.privacy.pseudonym_key_file else None,
        config.path(config.database.path).with_name("pseudonym.key"),
    )


def store_pseudonymiser(config: Config) -> Pseudonymiser:
    """The pseudonymiser the daemon uses for this config."""
    return Pseudonymiser(store_pseudonym_key(config))


def seeded_baskets(conn: sqlite3.Connection) -> int:
    (n,) = conn.execute("SELECT count(*) FROM readings WHERE device = ?", (SEED_DEVICE,)).fetchone()
    return int(n)


def seed_purchases(
    conn: sqlite3.Connection,
    baskets: Iterable[SeedBasket],
    pseudonymiser: Pseudonymiser,
    planogram: Planogram,
    *,
    cards: int = 3,
    now_ms: int | None = None,
    catalog_categories: Mapping[str, str] | None = None,
) -> SeedReport:
    """Write ``baskets`` as purchases in steps of `STEP_BASKETS` (one transaction each). Refuses a
    database that was seeded before (a second seed would double the history). A line's category is the
    planogram's, else ``catalog_categories``' (sku -> category), as the daemon files a till's lines."""
    if seeded_baskets(conn):
        raise EdgeError("the store database is already seeded; seed a fresh database instead")
    received = int(time.time() * 1000) if now_ms is None else now_ms
    categories = {**(catalog_categories or {}), **planogram.categories_by_sku}
    trips: Counter[str] = Counter()
    kinds: dict[str, set[str]] = {}
    seq = lines = 0
    step: list[SeedBasket] = []

    def flush() -> None:
        nonlocal seq, lines
        conn.execute("BEGIN IMMEDIATE")
        try:
            for b in step:
                seq += 1
                household = pseudonymiser.household_id(b.loyalty_id)
                total = round(sum(q * p for _, q, p in b.items), 2)
                cursor = conn.execute(
                    "INSERT INTO readings (device, kind, seq, ts_ms, received_ms, value, detail)"
                    " VALUES (?, 'pos_transaction', ?, ?, ?, ?, ?)",
                    (SEED_DEVICE, seq, b.ts_ms, received, total, b.basket_id),
                )
                conn.execute(
                    "INSERT INTO households (id, first_seen_ms, last_seen_ms, purchases) VALUES (?, ?, ?, 1)"
                    " ON CONFLICT (id) DO UPDATE SET purchases = purchases + 1,"
                    " first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),"
                    " last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
                    (household, b.ts_ms, b.ts_ms),
                )
                purchase = conn.execute(
                    "INSERT INTO purchases (reading_id, lane, basket_id, household, ts_ms, total, lines)"
                    " VALUES (?, 'seed', ?, ?, ?, ?, ?)",
                    (cursor.lastrowid, b.basket_id, household, b.ts_ms, total, len(b.items)),
                ).lastrowid
                conn.executemany(
                    "INSERT INTO purchase_items (purchase_id, line, sku, category, qty, unit_price)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (purchase, line, sku, categories.get(sku), qty, price)
                        for line, (sku, qty, price) in enumerate(b.items, start=1)
                    ],
                )
                lines += len(b.items)
                trips[b.loyalty_id] += 1
                kinds.setdefault(b.loyalty_id, set()).update(categories.get(s, s) for s, _, _ in b.items)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        step.clear()

    for basket in baskets:
        step.append(basket)
        if len(step) >= STEP_BASKETS:
            flush()
    if step:
        flush()
    # The cards worth typing at a kiosk: most trips, ties by the most categories, then by card.
    best = sorted(trips, key=lambda card: (-trips[card], -len(kinds[card]), card))[:cards]
    return SeedReport(seq, lines, len(trips), best)


def seed_store(
    config: Config,
    planogram: Planogram,
    baskets: Iterable[SeedBasket],
    catalog_categories: Mapping[str, str] | None = None,
) -> SeedReport:
    """Open (and migrate) the config's database and seed it."""
    pseudonymiser = store_pseudonymiser(config)
    conn = open_store(config.path(config.database.path))
    try:
        return seed_purchases(conn, baskets, pseudonymiser, planogram, catalog_categories=catalog_categories)
    finally:
        conn.close()
