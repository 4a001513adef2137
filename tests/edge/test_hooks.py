"""The store's seam for other capabilities: household hooks run inside the applying transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.customers.privacy import Pseudonymiser
from edge.customers.tables import ConsentUpdate, erase_household, set_consent
from edge.store.apply import BatchApplier, Received, load_planogram_job
from edge.store.db import open_store
from edge.store.hooks import ConsentRecorded, HouseholdErased, HouseholdHooks, PurchaseApplied
from sensors.planogram import load_planogram
from sensors.schemas import PosItem, PosTransaction
from sync.outbox import OutboxEntry

PLANOGRAM = load_planogram(
    Path(__file__).resolve().parents[2] / "simulators" / "demo_store" / "planogram.toml"
)
PSEUDONYMS = Pseudonymiser(b"k" * 32)
T0 = 1_795_514_400_000
SKU = next(iter(PLANOGRAM.categories_by_sku))


@pytest.fixture
def store(tmp_path: Path) -> sqlite3.Connection:
    conn = open_store(tmp_path / "hooks.db")
    BatchApplier(PLANOGRAM, PSEUDONYMS).apply(conn, [Received(load_planogram_job(PLANOGRAM), T0)], T0)
    return conn


def basket(seq: int) -> PosTransaction:
    return PosTransaction("pos-1", "1", seq, T0 + seq, f"b-{seq}", (PosItem(SKU, 1, 1.5),), 1.5, "LOY-1")


def test_purchase_handlers_run_in_order_and_their_outbox_rows_commit_with_the_purchase(
    store: sqlite3.Connection,
) -> None:
    seen: list[str] = []
    hooks = HouseholdHooks()

    def first(conn: sqlite3.Connection, e: PurchaseApplied) -> list[OutboxEntry]:
        seen.append(f"first:{sorted(e.categories)}")
        return [OutboxEntry("hook_test", e.household, "{}")]

    def second(conn: sqlite3.Connection, e: PurchaseApplied) -> list[OutboxEntry]:
        (purchases,) = conn.execute("SELECT count(*) FROM purchases").fetchone()
        seen.append(f"second:{purchases}")  # the purchase is already there: same transaction
        return []

    hooks.on_purchase(first)
    hooks.on_purchase(second)
    BatchApplier(PLANOGRAM, PSEUDONYMS, hooks=hooks).apply(store, [Received(basket(1), T0)], T0)
    assert seen == [f"first:{[PLANOGRAM.categories_by_sku[SKU]]}", "second:1"]
    assert store.execute("SELECT count(*) FROM outbox WHERE kind = 'hook_test'").fetchone() == (1,)


def test_a_failing_handler_rolls_the_purchase_back(store: sqlite3.Connection) -> None:
    hooks = HouseholdHooks()

    def broken(conn: sqlite3.Connection, e: PurchaseApplied) -> list[OutboxEntry]:
        raise RuntimeError("a capability's bug")

    hooks.on_purchase(broken)
    with pytest.raises(RuntimeError):
        BatchApplier(PLANOGRAM, PSEUDONYMS, hooks=hooks).apply(store, [Received(basket(2), T0)], T0)
    assert store.execute("SELECT count(*) FROM purchases").fetchone() == (0,)


def test_consent_and_erasure_handlers_are_told_and_report_what_they_deleted(
    store: sqlite3.Connection,
) -> None:
    events: list[object] = []
    hooks = HouseholdHooks()
    hooks.on_consent(lambda conn, e: events.append(e))
    hooks.on_erasure(lambda conn, e: events.append(e) or {"elsewhere": 3})
    household = PSEUDONYMS.household_id("LOY-1")
    store.execute("BEGIN IMMEDIATE")
    set_consent(store, household, ConsentUpdate(personalisation=False, analytics=True), T0, hooks)
    touched = erase_household(store, household, T0 + 1, hooks)
    store.execute("COMMIT")
    assert events == [ConsentRecorded(household, False, True, T0), HouseholdErased(household, T0 + 1)]
    assert touched["elsewhere"] == 3
    assert touched["consents"] == 2


def test_a_purchase_made_before_the_households_erasure_and_delivered_late_stays_anonymous(
    store: sqlite3.Connection,
) -> None:
    household = PSEUDONYMS.household_id("LOY-1")
    store.execute("BEGIN IMMEDIATE")
    erase_household(store, household, T0 + 10, HouseholdHooks())
    store.execute("COMMIT")
    applier = BatchApplier(PLANOGRAM, PSEUDONYMS)
    applier.apply(store, [Received(basket(5), T0 + 20)], T0 + 20)  # made at T0 + 5: before the erasure
    applier.apply(store, [Received(basket(50), T0 + 60)], T0 + 60)  # made at T0 + 50: the shopper came back
    rows = store.execute("SELECT basket_id, household FROM purchases ORDER BY basket_id").fetchall()
    assert rows == [("b-5", None), ("b-50", household)]
    assert store.execute("SELECT count(*) FROM households").fetchone() == (1,)
