"""Withdrawing analytics consent at a store reaches central through sync and deletes, on a real
PostgreSQL, what that consent allowed central to keep (the household's kiosk interactions up to the
withdrawal); what the household does after consenting again is kept."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from sync import central_db
from tests.sync.test_central_warehouse import T0, change, consent, count, db, page

pytestmark = pytest.mark.integration
H, OTHER = "hh-analytics", "hh-other"
__all__ = ["db"]  # the fixture, used below


def interaction(household: str, ts_ms: int) -> dict[str, Any]:
    return {"household": household, "kind": "list_viewed", "ts_ms": ts_ms}


async def interactions(conn: asyncpg.Connection, household: str) -> int:
    return await count(conn, "SELECT count(*) FROM customer_interactions WHERE household = $1", household)


async def test_withdrawing_analytics_deletes_the_households_interactions_at_central(
    db: asyncpg.Connection,
) -> None:
    first = [
        change(1, "consent", H, consent(H, T0)),
        change(2, "interaction", H, interaction(H, T0 + 1)),
        change(3, "interaction", OTHER, interaction(OTHER, T0 + 2)),
    ]
    await central_db.apply_page(db, "s1", page(first), T0)
    assert await interactions(db, H) == 1
    # The withdrawal arrives with an interaction made just before it, in the same page.
    withdrawn = {"household": H, "personalisation": True, "analytics": False, "ts_ms": T0 + 5}
    second = [change(4, "interaction", H, interaction(H, T0 + 4)), change(5, "consent", H, withdrawn)]
    await central_db.apply_page(db, "s1", page(second), T0 + 5)
    assert await interactions(db, H) == 0
    assert await interactions(db, OTHER) == 1  # nobody else's
    assert (
        await count(
            db,
            "SELECT count(*) FROM consents WHERE household = $1 AND NOT granted AND purpose = 'analytics'",
            H,
        )
        == 1
    )
    # Consenting again: what comes after is kept.
    third = [
        change(6, "consent", H, consent(H, T0 + 20)),
        change(7, "interaction", H, interaction(H, T0 + 21)),
    ]
    await central_db.apply_page(db, "s1", page(third), T0 + 21)
    assert await interactions(db, H) == 1
