"""Household events the store applies, and what other capabilities do in the same transaction.

The store applies a till's purchase (`edge.store.apply.BatchApplier`), a consent change and an erasure
(`edge.customers.tables`). Other capabilities must act inside that very transaction: predictions record what
became of their cached scores and queue a rescore after a purchase, and drop a household's profile
when personalisation is withdrawn or the household is erased; the quarantine forgets rows that name
an erased household. Rather than the store importing them, each capability registers its handlers on
the daemon's one `HouseholdHooks` at start (`edge/daemon.py`), and the store calls them. Handlers run
in the applying transaction, in the order they were registered; an exception rolls the whole
transaction back, as any other failure inside it does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from sync.outbox import OutboxEntry


@dataclass(frozen=True, slots=True)
class PurchaseApplied:
    """A till's basket for a known household was just stored."""

    household: str
    categories: frozenset[str]  # what the basket held, by category
    purchased_ms: int  # when the till sold it
    now_ms: int  # when the store applied it


@dataclass(frozen=True, slots=True)
class ConsentRecorded:
    """A household's consent was recorded (changed or confirmed)."""

    household: str
    personalisation: bool
    analytics: bool
    now_ms: int


@dataclass(frozen=True, slots=True)
class HouseholdErased:
    """ "Forget me": the household's own rows are being deleted."""

    household: str
    now_ms: int


PurchaseHandler = Callable[[sqlite3.Connection, PurchaseApplied], list[OutboxEntry]]  # rows for central
ConsentHandler = Callable[[sqlite3.Connection, ConsentRecorded], None]
ErasureHandler = Callable[[sqlite3.Connection, HouseholdErased], dict[str, int]]  # rows deleted, by table


@dataclass(slots=True)
class HouseholdHooks:
    _purchase: list[PurchaseHandler] = field(default_factory=list)
    _consent: list[ConsentHandler] = field(default_factory=list)
    _erasure: list[ErasureHandler] = field(default_factory=list)

    # -- registration (at start) ----------------------------------------------------------------------
    def on_purchase(self, handler: PurchaseHandler) -> None:
        self._purchase.append(handler)

    def on_consent(self, handler: ConsentHandler) -> None:
        self._consent.append(handler)

    def on_erasure(self, handler: ErasureHandler) -> None:
        self._erasure.append(handler)

    # -- called by the store, inside its transaction --------------------------------------------------
    def purchase_applied(self, conn: sqlite3.Connection, event: PurchaseApplied) -> list[OutboxEntry]:
        return [entry for handler in self._purchase for entry in handler(conn, event)]

    def consent_recorded(self, conn: sqlite3.Connection, event: ConsentRecorded) -> None:
        for handler in self._consent:
            handler(conn, event)

    def household_erased(self, conn: sqlite3.Connection, event: HouseholdErased) -> dict[str, int]:
        touched: dict[str, int] = {}
        for handler in self._erasure:
            touched.update(handler(conn, event))
        return touched
