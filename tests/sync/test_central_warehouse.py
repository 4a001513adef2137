"""Central's warehouse on a real PostgreSQL: every change kind lands in its table exactly once, monthly
partitions appear on demand, bad changes are quarantined with a reason, and an erasure erases everywhere
at central (late arrivals included) while the sales stay as anonymous purchases."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

from sync import central_db
from sync.central_schema import ensure_partitions, migrate
from sync.schemas import Change, ChangesPage

pytestmark = pytest.mark.integration

DAY = 86_400_000
T0 = 1_764_547_200_000  # 2025-12-01 00:00 UTC
H = "hh-7f3a"  # a pseudonymous household id


def change(seq: int, kind: str, entity: str, body: dict[str, Any], created_ms: int = T0) -> Change:
    return Change(seq, created_ms, kind, entity, msgspec.Raw(json.dumps(body).encode()))


def page(changes: list[Change], *, feed: str = "f1", store: str = "s1") -> ChangesPage:
    last = max((c.seq for c in changes), default=0)
    return ChangesPage(store, feed, changes, next=last, more=False, head=last, acked=0)


def purchase(basket: str, ts_ms: int, household: str | None, total: float = 3.5) -> dict[str, Any]:
    return {
        "lane": "1",
        "basket_id": basket,
        "household": household,
        "ts_ms": ts_ms,
        "total": total,
        "items": [
            {"sku": "1001", "qty": 1, "unit_price": 2.0, "category": "milk"},
            {"sku": "1006", "qty": 1, "unit_price": 1.5, "category": "bread"},
        ],
    }


def consent(household: str, ts_ms: int, on: bool = True) -> dict[str, Any]:
    return {"household": household, "personalisation": on, "analytics": on, "ts_ms": ts_ms}


def outcome(household: str, scored_ms: int) -> dict[str, Any]:
    return {"household": household, "category": "milk", "model_version": "np-3", "scored_ms": scored_ms,
            "expected_days": 4.0, "p7": 0.8, "purchased_ms": scored_ms + DAY, "actual_days": 1.0}  # fmt: skip


def feedback(household: str, ts_ms: int) -> dict[str, Any]:
    return {"household": household, "category": "milk", "vote": "up", "model_version": "nb-2", "ts_ms": ts_ms}


def list_outcome(household: str, purchased_ms: int, arm: str | None = None) -> dict[str, Any]:
    return {"household": household, "purchased_ms": purchased_ms, "categories": 8, "on_list": 5, "listed": 10,
            "basket_model_version": "nb-2", "experiment": "exp-1" if arm else None, "arm": arm}  # fmt: skip


@pytest.fixture
async def db(central_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(central_dsn)
    await migrate(conn)
    yield conn
    await conn.close()


async def count(conn: asyncpg.Connection, sql: str, *args: Any) -> int:
    return int(await conn.fetchval(sql, *args))


async def test_each_kind_lands_in_its_table_once_and_a_replay_adds_nothing(db: asyncpg.Connection) -> None:
    changes = [
        change(1, "purchase", "b1", purchase("b1", T0 + 1000, H)),
        change(2, "consent", H, consent(H, T0 + 2000)),
        change(3, "list_feedback", H, feedback(H, T0 + 3000)),
        change(4, "prediction_outcome", f"{H}:milk", outcome(H, T0 + 4000)),
        change(
            5,
            "alert",
            "low_stock:A1",
            {
                "id": 7,
                "kind": "low_stock",
                "subject": "A1",
                "severity": "warning",
                "state": "open",
                "message": "low",
                "opened_ms": T0,
                "updated_ms": T0,
            },
        ),
        change(
            6,
            "alert",
            "low_stock:A1",
            {
                "id": 7,
                "kind": "low_stock",
                "subject": "A1",
                "severity": "warning",
                "state": "resolved",
                "message": "ok",
                "opened_ms": T0,
                "updated_ms": T0 + 9,
                "resolved_ms": T0 + 9,
            },
        ),
        change(
            7,
            "device_status",
            "pos-1",
            {"type": "device_status", "device": "pos-1", "online": False, "ts_ms": T0},
        ),
        change(
            8,
            "bundle",
            "models",
            {"kind": "models", "version": 3, "sha256": "ab" * 32, "outcome": "activated"},
        ),
        change(
            9,
            "reading",
            "shelf-1",
            {
                "type": "shelf_weight",
                "device": "shelf-1",
                "shelf": "A1",
                "seq": 1,
                "ts_ms": T0 + 5_000,
                "grams": 900.0,
            },
        ),
        change(
            10,
            "reading",
            "shelf-1",
            {
                "type": "shelf_weight",
                "device": "shelf-1",
                "shelf": "A1",
                "seq": 2,
                "ts_ms": T0 + 6_000,
                "grams": 700.0,
            },
        ),
    ]
    first = await central_db.apply_page(db, "s1", page(changes), T0)
    assert (first.inserted, first.quarantined) == (10, 0)
    again = await central_db.apply_page(db, "s1", page(changes[3:]), T0)  # overlapping replay
    assert (again.inserted, again.duplicates) == (0, 7)

    row = await db.fetchrow("SELECT household, total, lines, lane FROM purchases")
    assert tuple(row) == (H, pytest.approx(3.5), 2, "1")
    items = await db.fetch("SELECT line, sku, category FROM purchase_items ORDER BY line")
    assert [tuple(r) for r in items] == [(1, "1001", "milk"), (2, "1006", "bread")]
    assert await count(db, "SELECT count(*) FROM consents WHERE household = $1 AND granted", H) == 2
    assert await count(db, "SELECT count(*) FROM list_feedback WHERE household = $1 AND vote = 1", H) == 1
    assert await db.fetchval("SELECT model_version FROM prediction_outcomes") == "np-3"
    assert tuple(await db.fetchrow("SELECT state, message FROM alerts WHERE id = 7")) == ("resolved", "ok")
    assert await db.fetchval("SELECT online FROM device_status WHERE device = 'pos-1'") is False
    assert await db.fetchval("SELECT version FROM bundle_reports") == 3
    minute = await db.fetchrow("SELECT n, sum, min, max, last FROM sensor_minutes")
    assert tuple(minute) == (2, 1600.0, 700.0, 900.0, 700.0)
    assert await db.fetchval("SELECT last_store FROM households WHERE id = $1", H) == "s1"
    assert await count(db, "SELECT count(*) FROM quarantine") == 0


async def test_experiments_land_with_their_arms(db: asyncpg.Connection) -> None:
    """Outcomes, votes and trips carry the experiment and arm that served them; the stores' experiment steps
    are kept in order; trips are partitioned by month like the outcomes."""
    event = {"experiment": "exp-1", "event": "advanced", "ts_ms": T0 + 9, "step": 1, "traffic": 0.25,
             "reason": "no harm at 10%"}  # fmt: skip
    changes = [
        change(
            1,
            "prediction_outcome",
            f"{H}:milk",
            outcome(H, T0) | {"experiment": "exp-1", "arm": "challenger"},
        ),
        change(2, "list_feedback", H, feedback(H, T0 + 1) | {"experiment": "exp-1", "arm": "challenger"}),
        change(3, "list_outcome", f"{H}:{T0 + 2}", list_outcome(H, T0 + 2, "challenger")),
        change(4, "list_outcome", f"{H}:{T0 + 40 * DAY}", list_outcome(H, T0 + 40 * DAY, "control")),
        change(5, "experiment", "exp-1", event),
        change(6, "interaction", H, {"household": H, "kind": "suggestion_taken", "ts_ms": T0 + 3,
                                     "subject": "milk", "experiment": "exp-1", "arm": "challenger"}),
    ]  # fmt: skip
    result = await central_db.apply_page(db, "s1", page(changes), T0)
    assert (result.inserted, result.quarantined) == (6, 0)
    row = await db.fetchrow("SELECT household, kind, subject, arm FROM customer_interactions")
    assert tuple(row) == (H, "suggestion_taken", "milk", "challenger")
    assert tuple(await db.fetchrow("SELECT experiment, arm FROM prediction_outcomes")) == (
        "exp-1",
        "challenger",
    )
    assert tuple(await db.fetchrow("SELECT experiment, arm FROM list_feedback")) == ("exp-1", "challenger")
    trips = await db.fetch("SELECT arm, on_list, categories FROM list_outcomes ORDER BY purchased")
    assert [tuple(r) for r in trips] == [("challenger", 5, 8), ("control", 5, 8)]
    months = await count(db, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'list_outcomes'::regclass")
    assert months == 2
    row = await db.fetchrow("SELECT store, experiment, event, step, traffic FROM experiment_events")
    assert tuple(row) == ("s1", "exp-1", "advanced", 1, 0.25)
    again = await central_db.apply_page(db, "s1", page(changes), T0)
    assert again.inserted == 0
    assert await count(db, "SELECT count(*) FROM list_outcomes") == 2


async def test_partitions_are_monthly_and_created_on_demand(db: asyncpg.Connection) -> None:
    dates = [T0, T0 + 40 * DAY, T0 + 70 * DAY]  # December, January, February
    changes = [
        change(i, "purchase", f"b{i}", purchase(f"b{i}", ts, None)) for i, ts in enumerate(dates, start=1)
    ]
    await central_db.apply_page(db, "s1", page(changes), T0)
    partitions = await db.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'purchases' ORDER BY 1"
    )
    assert [r[0] for r in partitions] == ["purchases_2025m12", "purchases_2026m01", "purchases_2026m02"]
    assert await count(db, "SELECT count(*) FROM ONLY purchases_2026m01") == 1


async def test_bad_changes_are_quarantined_with_a_reason_and_the_pull_goes_on(db: asyncpg.Connection) -> None:
    changes = [
        change(1, "teleport", "x", {"to": "mars"}),
        change(2, "purchase", "b2", {"basket_id": "b2", "total": "lots"}),
        change(
            3,
            "reading",
            "d",
            {"type": "shelf_weight", "device": "d", "shelf": "A1", "ts_ms": 5, "grams": 1.0},
        ),
        change(4, "purchase", "b4", purchase("b4", T0, None)),
    ]
    result = await central_db.apply_page(db, "s1", page(changes), T0)
    assert (result.inserted, result.quarantined, result.cursor) == (4, 3, 4)
    reasons = {r[0]: r[1] for r in await db.fetch("SELECT seq, reason FROM quarantine WHERE store = 's1'")}
    assert "unknown change kind 'teleport'" in reasons[1]
    assert "purchase body does not match its kind" in reasons[2]
    assert "outside 2000-2100" in reasons[3]
    assert await count(db, "SELECT count(*) FROM purchases") == 1
    # kept in the log untouched (so a fixed central can replay them), and never quarantined twice
    assert await count(db, "SELECT count(*) FROM change_log WHERE kind = 'teleport'") == 1
    await central_db.apply_page(db, "s1", page(changes), T0)
    assert await count(db, "SELECT count(*) FROM quarantine") == 3


async def test_an_erasure_erases_the_household_everywhere_and_keeps_anonymous_sales(
    db: asyncpg.Connection,
) -> None:
    other = "hh-other"
    at_a = [
        change(1, "purchase", "a1", purchase("a1", T0 + 1000, H)),
        change(2, "consent", H, consent(H, T0 + 2000)),
        change(3, "list_feedback", H, feedback(H, T0 + 3000)),
        change(4, "prediction_outcome", f"{H}:milk", outcome(H, T0 + 4000)),
        change(5, "purchase", "a5", purchase("a5", T0 + 5000, other)),
        change(6, "list_outcome", f"{H}:{T0 + 4500}", list_outcome(H, T0 + 4500)),
        change(8, "interaction", H, {"household": H, "kind": "list_viewed", "ts_ms": T0 + 4600}),
    ]
    at_b = [
        change(1, "purchase", "b1", purchase("b1", T0 + 1500, H)),
        change(2, "consent", H, {"household": H, "ts_ms": "yesterday"}),  # quarantined, naming H
    ]
    await central_db.apply_page(db, "A", page(at_a, store="A"), T0)
    await central_db.apply_page(db, "B", page(at_b, store="B", feed="fb"), T0)
    forget = T0 + 10_000
    await central_db.apply_page(
        db, "A", page([change(7, "erasure", H, {"household": H, "ts_ms": forget})], store="A"), forget
    )

    for sql in (
        "SELECT count(*) FROM consents WHERE household = $1",
        "SELECT count(*) FROM list_feedback WHERE household = $1",
        "SELECT count(*) FROM prediction_outcomes WHERE household = $1",
        "SELECT count(*) FROM list_outcomes WHERE household = $1",
        "SELECT count(*) FROM customer_interactions WHERE household = $1",
        "SELECT count(*) FROM households WHERE id = $1",
        "SELECT count(*) FROM purchases WHERE household = $1",
        "SELECT count(*) FROM change_log WHERE kind != 'erasure' AND (household = $1 OR body LIKE '%' || $1 || '%')",
        "SELECT count(*) FROM quarantine WHERE body LIKE '%' || $1 || '%'",
    ):
        assert await count(db, sql, H) == 0, sql
    assert await count(db, "SELECT count(*) FROM purchases WHERE household IS NULL") == 2  # A's and B's sale
    assert await count(db, "SELECT count(*) FROM purchases WHERE household = $1", other) == 1
    assert tuple(await db.fetchrow("SELECT household, origin_store FROM erasures")) == (H, "A")

    # store B had not heard yet: its late purchase (made before the erasure) arrives anonymised; what H does
    # after the erasure (the shopper came back and consented again) is kept
    late = [
        change(3, "purchase", "b2", purchase("b2", forget - 500, H)),
        change(4, "consent", H, consent(H, forget + 60_000)),
    ]
    await central_db.apply_page(db, "B", page(late, store="B", feed="fb"), forget)
    assert await db.fetchval("SELECT household FROM purchases WHERE basket_id = 'b2'") is None
    assert "null" in await db.fetchval(
        "SELECT body FROM change_log WHERE seq = 3 AND kind = 'purchase' AND stream = 2"
    )
    assert await count(db, "SELECT count(*) FROM consents WHERE household = $1", H) == 2

    # B reports it applied feed entry 1: recorded, and no new feed entry
    (entry,) = [r[0] for r in await db.fetch("SELECT id FROM erasures")]
    report = {"household": H, "ts_ms": forget + 5_000, "origin": "central", "erasure": entry}
    await central_db.apply_page(
        db, "B", page([change(5, "erasure", H, report)], store="B", feed="fb"), forget
    )
    assert await count(db, "SELECT count(*) FROM erasures") == 1
    assert (
        await count(db, "SELECT count(*) FROM erasure_reports WHERE erasure = $1 AND store = 'B'", entry) == 1
    )


async def test_an_erasure_in_the_same_page_as_the_households_changes_erases_them(
    db: asyncpg.Connection,
) -> None:
    changes = [
        change(1, "consent", H, consent(H, T0)),
        change(2, "purchase", "a1", purchase("a1", T0 + 1, H)),
        change(3, "erasure", H, {"household": H, "ts_ms": T0 + 2}),
        change(4, "list_feedback", H, feedback(H, T0 + 1)),  # pulled after, happened before
    ]
    await central_db.apply_page(db, "s1", page(changes), T0)
    assert await count(db, "SELECT count(*) FROM consents") == 0
    assert await count(db, "SELECT count(*) FROM list_feedback") == 0
    assert await db.fetchval("SELECT household FROM purchases") is None
    assert await count(db, "SELECT count(*) FROM change_log WHERE household IS NOT NULL") == 1  # the erasure


async def test_several_centrals_creating_a_months_partitions_at_once_all_succeed(
    db: asyncpg.Connection, central_dsn: str
) -> None:
    months = {"purchases": {(2031, m) for m in range(1, 7)}, "sensor_minutes": {(2031, 1)}}
    conns = [await asyncpg.connect(central_dsn) for _ in range(4)]
    try:
        created = await asyncio.gather(*(ensure_partitions(c, months) for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert all(isinstance(n, int) for n in created)  # no one failed
    assert await ensure_partitions(db, months) == 0
    assert await ensure_partitions(db, {"purchases": {(2031, 7)}}) == 1
    assert (
        await count(db, "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname LIKE '%2031m%'") == 8
    )
