"""What became of the predictions (schema v7, v12): when a purchase arrives, each cached prediction it
answers gets its outcome (once), the trip is scored against the list the household was shown (the list
hit rate), and both go to central through the outbox; and what predictions do when the store applies a
household event (`edge.store.hooks`). Every function runs inside the single writer's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

import msgspec

from edge.predictions.tables import MS_PER_DAY, delete_household_predictions, queue_rescore
from edge.store.hooks import ConsentRecorded, HouseholdErased, HouseholdHooks, PurchaseApplied
from sync.outbox import OutboxEntry

_json = msgspec.json.Encoder()


def record_outcomes(
    conn: sqlite3.Connection, household: str, categories: Iterable[str], purchased_ms: int, now_ms: int
) -> list[OutboxEntry]:
    """A purchase arrived: for each bought category with a cached prediction made before the purchase,
    record what happened (once per prediction), and the trip against the list the household was shown
    (`record_list_outcome`); return the outbox rows for central."""
    wanted = sorted(set(categories))
    if not wanted:
        return []
    entries = record_list_outcome(conn, household, wanted, purchased_ms, now_ms)
    marks = ",".join("?" * len(wanted))
    sql = (
        "SELECT category, model_version, basket_model_version, scored_ms, origin_day, expected_days, p7,"  # noqa: S608 - placeholders only
        " basket_probability, urgency, list_rank, utc_offset_min, experiment, arm FROM predictions"
        f" WHERE household = ? AND category IN ({marks}) AND scored_ms <= ?"
    )
    rows = conn.execute(sql, (household, *wanted, purchased_ms)).fetchall()
    for (category, model, basket_model, scored_ms, origin, expected, p7, prob, urgency, rank, offset,
         experiment, arm) in rows:  # fmt: skip
        actual = (purchased_ms + int(offset) * 60_000) // MS_PER_DAY - int(origin)
        cursor = conn.execute(
            "INSERT OR IGNORE INTO prediction_outcomes (household, category, model_version, basket_model_version,"
            " scored_ms, origin_day, expected_days, p7, basket_probability, urgency, list_rank, purchased_ms,"
            " actual_days, recorded_ms, experiment, arm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (household, category, model, basket_model, scored_ms, origin, expected, p7, prob, urgency, rank,
             purchased_ms, actual, now_ms, experiment, arm),
        )  # fmt: skip
        if cursor.rowcount:
            body = {
                "household": household,
                "category": category,
                "model_version": model,
                "basket_model_version": basket_model,
                "scored_ms": scored_ms,
                "expected_days": expected,
                "p7": p7,
                "basket_probability": prob,
                "urgency": urgency,
                "list_rank": rank,
                "purchased_ms": purchased_ms,
                "actual_days": actual,
                "experiment": experiment,
                "arm": arm,
            }
            entries.append(
                OutboxEntry("prediction_outcome", f"{household}:{category}", _json.encode(body).decode())
            )
    return entries


def record_list_outcome(
    conn: sqlite3.Connection, household: str, bought: Sequence[str], purchased_ms: int, now_ms: int
) -> list[OutboxEntry]:
    """How many of a trip's categories were on the list cached for the household before the trip (the
    list hit rate, an experiment's default metric); once per trip, only when a list was cached."""
    listed = conn.execute(
        "SELECT category, basket_model_version, experiment, arm, scored_ms FROM predictions"
        " WHERE household = ? AND list_rank IS NOT NULL AND scored_ms <= ?",
        (household, purchased_ms),
    ).fetchall()
    if not listed:
        return []
    on_list = len({str(r[0]) for r in listed} & set(bought))
    _category, model, experiment, arm, scored_ms = listed[0]
    cursor = conn.execute(
        "INSERT OR IGNORE INTO list_outcomes (household, purchased_ms, categories, on_list, listed,"
        " basket_model_version, experiment, arm, scored_ms, recorded_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            household,
            purchased_ms,
            len(bought),
            on_list,
            len(listed),
            model,
            experiment,
            arm,
            scored_ms,
            now_ms,
        ),
    )
    if not cursor.rowcount:
        return []
    body = {
        "household": household,
        "purchased_ms": purchased_ms,
        "categories": len(bought),
        "on_list": on_list,
        "listed": len(listed),
        "basket_model_version": model,
        "experiment": experiment,
        "arm": arm,
    }
    return [OutboxEntry("list_outcome", f"{household}:{purchased_ms}", _json.encode(body).decode())]


def prune_outcomes(conn: sqlite3.Connection, before_ms: int) -> int:
    """Outcomes recorded before ``before_ms`` (central has them through the outbox): keeps the table bounded."""
    pruned = conn.execute("DELETE FROM prediction_outcomes WHERE recorded_ms < ?", (before_ms,)).rowcount
    return pruned + conn.execute("DELETE FROM list_outcomes WHERE recorded_ms < ?", (before_ms,)).rowcount


# -- what predictions do when the store applies a household event (edge.store.hooks) ------------------------


def register_hooks(hooks: HouseholdHooks) -> None:
    hooks.on_purchase(_purchase_applied)
    hooks.on_consent(_consent_recorded)
    hooks.on_erasure(_household_erased)


def _purchase_applied(conn: sqlite3.Connection, event: PurchaseApplied) -> list[OutboxEntry]:
    """What became of the household's cached predictions (once per prediction), and a rescore soon if it
    consented to personalisation (docs/models.md, "Serving")."""
    entries = record_outcomes(conn, event.household, event.categories, event.purchased_ms, event.now_ms)
    queue_rescore(conn, event.household, event.now_ms)
    return entries


def _consent_recorded(conn: sqlite3.Connection, event: ConsentRecorded) -> None:
    """No profile outlives the consent that allowed it."""
    if not event.personalisation:
        delete_household_predictions(conn, event.household)


def _household_erased(conn: sqlite3.Connection, event: HouseholdErased) -> dict[str, int]:
    return {"predictions": delete_household_predictions(conn, event.household, outcomes=True)}
