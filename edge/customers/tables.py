"""Households on the edge: consent per purpose, the access log, list feedback and erasure.

Functions taking a connection run inside the single writer's transaction (``writer.run_job``) or on a
read-only connection; each change that central must know about gets an outbox row in the same
transaction (`consent`, `list_feedback`, `erasure`).

Erasure ("forget me") deletes every row about the household (`HOUSEHOLD_TABLES`: consent, feedback,
access log; the household; what other capabilities keep about it through their `edge.store.hooks` handlers:
predictions, outcomes and the rescore mark, quarantined till messages naming it),
unlinks its purchases (they stay as anonymous sales: the store's sales and stock history must still add
up), scrubs the household from outbox rows central has not pulled yet, and appends one `erasure` event
so central erases it too. It records the pseudonym and time in ``erasures`` so the audit trail shows
that the request was honoured.
"""

from __future__ import annotations

import sqlite3
from typing import Literal

import msgspec

from edge.store.hooks import ConsentRecorded, HouseholdErased, HouseholdHooks
from sync.outbox import OutboxEntry, append, remove

# Tables keyed by household that erasure empties (other capabilities' own: their erasure hooks).
HOUSEHOLD_TABLES: tuple[str, ...] = ("consents", "list_feedback", "access_log")
# Pending outbox rows that are about one household only: dropped on erasure (the erasure event follows).
HOUSEHOLD_OUTBOX_KINDS: tuple[str, ...] = (
    "consent", "list_feedback", "prediction_outcome", "list_outcome", "interaction",
)  # fmt: skip
FEEDBACK_PER_DAY = 100  # thumbs per household and day: more is not a person at a kiosk

_json = msgspec.json.Encoder()


class ConsentView(msgspec.Struct, frozen=True):
    personalisation: bool | None  # None: never asked
    analytics: bool | None
    updated_ms: int | None


class ConsentUpdate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    personalisation: bool
    analytics: bool


class FeedbackVote(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    category: str
    vote: Literal["up", "down"]


def consent_of(conn: sqlite3.Connection, household: str) -> ConsentView:
    rows = conn.execute(
        "SELECT purpose, granted, updated_ms FROM consents WHERE household = ?", (household,)
    ).fetchall()
    granted = {purpose: bool(g) for purpose, g, _ in rows}
    updated = max((u for _, _, u in rows), default=None)
    return ConsentView(granted.get("personalisation"), granted.get("analytics"), updated)


def has_consent(conn: sqlite3.Connection, household: str) -> bool:
    """Personalisation consent granted (the only thing that lets a household be scored)."""
    return (
        conn.execute(
            "SELECT 1 FROM consents WHERE household = ? AND purpose = 'personalisation' AND granted = 1",
            (household,),
        ).fetchone()
        is not None
    )


def is_known(conn: sqlite3.Connection, household: str) -> bool:
    """The household has bought something here (it has a row in households)."""
    return conn.execute("SELECT 1 FROM households WHERE id = ?", (household,)).fetchone() is not None


def set_consent(
    conn: sqlite3.Connection, household: str, update: ConsentUpdate, now_ms: int, hooks: HouseholdHooks
) -> ConsentView:
    """Record both purposes. The hooks run in the same transaction: withdrawing personalisation deletes
    the household's profile at once (predictions and its rescoring mark), so no profile outlives the
    consent that allowed it."""
    before = consent_of(conn, household)
    conn.executemany(
        "INSERT INTO consents (household, purpose, granted, updated_ms) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (household, purpose) DO UPDATE SET granted = excluded.granted,"
        " updated_ms = excluded.updated_ms",
        [
            (household, "personalisation", int(update.personalisation), now_ms),
            (household, "analytics", int(update.analytics), now_ms),
        ],
    )
    hooks.consent_recorded(conn, ConsentRecorded(household, update.personalisation, update.analytics, now_ms))
    if (before.personalisation, before.analytics) != (update.personalisation, update.analytics):
        body = {
            "household": household,
            "personalisation": update.personalisation,
            "analytics": update.analytics,
            "ts_ms": now_ms,
        }
        append(conn, now_ms, [OutboxEntry("consent", household, _json.encode(body).decode())])
    return consent_of(conn, household)


def unknown_consent_allowed(
    conn: sqlite3.Connection, household: str, day_start_ms: int, per_day: int
) -> bool:
    """May ``household`` record consent today? Always when it has bought here; otherwise only while
    fewer than ``per_day`` other households with no purchase here changed consent since the day began
    (their consent events are never compacted: cards never seen at a till must not grow the outbox
    without bound). A household already counted today may change its answer again."""
    if is_known(conn, household):
        return True
    (today,) = conn.execute(
        "SELECT count(DISTINCT household) FROM consents WHERE updated_ms >= ? AND household != ?"
        " AND household NOT IN (SELECT id FROM households)",
        (day_start_ms, household),
    ).fetchone()
    return int(today) < per_day


def feedback_allowed(conn: sqlite3.Connection, household: str, day_start_ms: int) -> bool:
    """At most `FEEDBACK_PER_DAY` votes per household and store-local day (each is an outbox event)."""
    (today,) = conn.execute(
        "SELECT count(*) FROM list_feedback WHERE household = ? AND ts_ms >= ?", (household, day_start_ms)
    ).fetchone()
    return int(today) < FEEDBACK_PER_DAY


def record_feedback(
    conn: sqlite3.Connection,
    household: str,
    vote: FeedbackVote,
    served_by: tuple[str | None, str | None, str | None],
    now_ms: int,
) -> None:
    """A vote on the household's list; ``served_by``: the list's (model version, experiment, arm)."""
    value = 1 if vote.vote == "up" else -1
    model_version, experiment, arm = served_by
    conn.execute(
        "INSERT INTO list_feedback (ts_ms, household, category, vote, model_version, experiment, arm)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (now_ms, household, vote.category, value, model_version, experiment, arm),
    )
    body = {
        "household": household,
        "category": vote.category,
        "vote": vote.vote,
        "model_version": model_version,
        "ts_ms": now_ms,
        "experiment": experiment,
        "arm": arm,
    }
    append(conn, now_ms, [OutboxEntry("list_feedback", household, _json.encode(body).decode())])


def erase_household(
    conn: sqlite3.Connection,
    household: str,
    now_ms: int,
    hooks: HouseholdHooks,
    *,
    origin_erasure: int | None = None,
) -> dict[str, int]:
    """Forget a household here and tell central to (see the module docstring). Returns rows touched.

    ``origin_erasure``: this erasure applies entry ``origin_erasure`` of central's erasure feed (the
    household asked at another store, `edge.uplink.erasures`); the outbox event then says so
    (``"origin": "central", "erasure": id``), which central records as this store's report rather than
    as a new erasure."""
    touched = {
        table: conn.execute(f"DELETE FROM {table} WHERE household = ?", (household,)).rowcount  # noqa: S608 (fixed names)
        for table in HOUSEHOLD_TABLES
    }
    touched.update(hooks.household_erased(conn, HouseholdErased(household, now_ms)))
    touched["households"] = conn.execute("DELETE FROM households WHERE id = ?", (household,)).rowcount
    touched["purchases"] = conn.execute(
        "UPDATE purchases SET household = NULL WHERE household = ?", (household,)
    ).rowcount
    touched["outbox"] = _scrub_outbox(conn, household)
    conn.execute(
        "INSERT INTO erasures (household, erased_ms) VALUES (?, ?)"
        " ON CONFLICT (household) DO UPDATE SET erased_ms = excluded.erased_ms",
        (household, now_ms),
    )
    report_erasure(conn, household, now_ms, origin_erasure=origin_erasure)
    return touched


def erased_since(conn: sqlite3.Connection, household: str, since_ms: int) -> bool:
    """This store erased the household at or after ``since_ms`` (``erasures`` keeps the latest time)."""
    row = conn.execute("SELECT erased_ms FROM erasures WHERE household = ?", (household,)).fetchone()
    return row is not None and int(row[0]) >= since_ms


def report_erasure(
    conn: sqlite3.Connection, household: str, now_ms: int, *, origin_erasure: int | None = None
) -> None:
    """Append the ``erasure`` event for central: a new erasure, or (``origin_erasure``) this store's report
    that it has applied that entry of central's feed."""
    body: dict[str, object] = {"household": household, "ts_ms": now_ms}
    if origin_erasure is not None:
        body.update(origin="central", erasure=origin_erasure)
    append(conn, now_ms, [OutboxEntry("erasure", household, _json.encode(body).decode())])


def _scrub_outbox(conn: sqlite3.Connection, household: str) -> int:
    """Drop pending rows about the household alone; unlink it from pending purchases.

    Goes through `sync.outbox.remove` / `append` so the pending totals stay exact. A rewritten purchase
    is removed and appended again under a new seq (central dedups by seq; the old seq is simply gone)."""
    marks = ",".join("?" for _ in HOUSEHOLD_OUTBOX_KINDS)
    own = [
        seq
        for (seq,) in conn.execute(
            f"SELECT seq FROM outbox WHERE kind IN ({marks})"  # noqa: S608 (placeholders only)
            " AND (entity = ? OR json_extract(body, '$.household') = ?)",
            (*HOUSEHOLD_OUTBOX_KINDS, household, household),
        )
    ]
    purchases = conn.execute(
        "SELECT seq, created_ms, entity, json_set(body, '$.household', NULL) FROM outbox"
        " WHERE kind = 'purchase' AND json_extract(body, '$.household') = ?",
        (household,),
    ).fetchall()
    remove(conn, [*own, *(seq for seq, *_ in purchases)])
    for _, created_ms, entity, body in purchases:
        append(conn, created_ms, [OutboxEntry("purchase", entity, body)])
    return len(own) + len(purchases)
