"""What shoppers do at the kiosk (docs/customers.md, "Interactions"): the list viewed, an item ticked, a
suggestion taken or declined, a route asked for, an offer opened. Recorded only with the household's
``analytics`` consent, into ``customer_interactions`` (schema v14) with the model version, experiment and
arm whose list the shopper was looking at, and sent to central (outbox kind ``interaction``); counted per
model version and arm, so an A/B test can judge a model on whether shoppers take its suggestions
(`suggestion_acceptance`).

    POST /api/v1/in-store/interaction-tracking     {"events": [{"kind", "subject"?, "ts_ms"?}], "household"?}
    GET  /api/v1/analytics/interactions?days=N     staff: counts per kind and acceptance per model version

A verified shopper session records for its own household (``household`` is taken from the session);
staff name the household. Without analytics consent the events are accepted and dropped (``recorded:
0`` and why), never stored. At most `INTERACTIONS_PER_DAY` per household and store-local day (each is
an outbox event). Withdrawing analytics consent deletes the household's interactions; erasure too.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from datetime import tzinfo
from pathlib import Path
from typing import Annotated

import msgspec
from aiohttp import web

from edge.http.app import PRINCIPAL
from edge.http.responses import Handler, error_response, json_response, read_json
from edge.http.sessions import is_revoked
from edge.store.db import ReadThread
from edge.store.hooks import ConsentRecorded, HouseholdErased, HouseholdHooks
from edge.store.writer import StoreWriter
from sync.change_bodies import InteractionKind
from sync.model_performance import window_start
from sync.outbox import OutboxEntry, append

INTERACTIONS_PER_DAY = 500
_json = msgspec.json.Encoder()


class InteractionEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: InteractionKind
    subject: Annotated[str, msgspec.Meta(max_length=64)] | None = None  # the category, offer or stop
    ts_ms: Annotated[int, msgspec.Meta(ge=946_684_800_000, lt=4_102_444_800_000)] | None = None  # 2000-2100


class InteractionBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    events: Annotated[list[InteractionEvent], msgspec.Meta(min_length=1, max_length=100)]
    household: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None  # staff only


class InteractionsRecorded(msgspec.Struct, frozen=True):
    recorded: int
    reason: str = ""  # why nothing was recorded


class KindCount(msgspec.Struct, frozen=True):
    kind: str
    events: int
    households: int


class VersionInteractions(msgspec.Struct, frozen=True):
    basket_model_version: str | None
    experiment: str | None
    arm: str | None
    kinds: list[KindCount]
    suggestion_acceptance: float | None  # taken / (taken + declined)


def _analytics(conn: sqlite3.Connection, household: str) -> bool:
    row = conn.execute(
        "SELECT granted FROM consents WHERE household = ? AND purpose = 'analytics'", (household,)
    ).fetchone()
    return bool(row and row[0])


def record_interactions(
    conn: sqlite3.Connection, household: str, events: list[InteractionEvent], now_ms: int, day_start_ms: int
) -> InteractionsRecorded:
    """Store the events (with what served the household's list) and their outbox rows, if it consented."""
    if not _analytics(conn, household):
        return InteractionsRecorded(0, "no analytics consent: nothing recorded")
    (today,) = conn.execute(
        "SELECT count(*) FROM customer_interactions WHERE household = ? AND recorded_ms >= ?",
        (household, day_start_ms),
    ).fetchone()
    room = max(0, INTERACTIONS_PER_DAY - int(today))
    if room == 0:
        return InteractionsRecorded(0, f"at most {INTERACTIONS_PER_DAY} interactions per household a day")
    found = conn.execute(
        "SELECT basket_model_version, experiment, arm FROM predictions WHERE household = ? LIMIT 1",
        (household,),
    ).fetchone()
    model, experiment, arm = found if found else (None, None, None)
    rows = [
        (household, e.kind, e.subject, e.ts_ms or now_ms, model, experiment, arm, now_ms)
        for e in events[:room]
    ]
    conn.executemany(
        "INSERT INTO customer_interactions (household, kind, subject, ts_ms, basket_model_version, experiment,"
        " arm, recorded_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    keys = ("household", "kind", "subject", "ts_ms", "basket_model_version", "experiment", "arm")
    entries = [
        OutboxEntry("interaction", household, _json.encode(dict(zip(keys, r[:7], strict=True))).decode())
        for r in rows
    ]
    append(conn, now_ms, entries)
    return InteractionsRecorded(len(rows))


def interactions_by_version(conn: sqlite3.Connection, since_ms: int) -> list[VersionInteractions]:
    rows = conn.execute(
        "SELECT basket_model_version, experiment, arm, kind, count(*), count(DISTINCT household)"
        " FROM customer_interactions WHERE ts_ms >= ? GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
        (since_ms,),
    ).fetchall()
    grouped: dict[tuple[str | None, str | None, str | None], list[KindCount]] = {}
    for model, experiment, arm, kind, events, households in rows:
        grouped.setdefault((model, experiment, arm), []).append(KindCount(kind, int(events), int(households)))
    out = []
    for (model, experiment, arm), kinds in grouped.items():
        by_kind = {k.kind: k.events for k in kinds}
        taken, declined = by_kind.get("suggestion_taken", 0), by_kind.get("suggestion_declined", 0)
        acceptance = round(taken / (taken + declined), 6) if taken + declined else None
        out.append(VersionInteractions(model, experiment, arm, kinds, acceptance))
    return out


def delete_interactions(conn: sqlite3.Connection, household: str) -> int:
    return conn.execute("DELETE FROM customer_interactions WHERE household = ?", (household,)).rowcount


def register_hooks(hooks: HouseholdHooks) -> None:
    hooks.on_consent(_consent_recorded)
    hooks.on_erasure(_household_erased)


def _consent_recorded(conn: sqlite3.Connection, event: ConsentRecorded) -> None:
    """No analytics outlive the consent that allowed them."""
    if not event.analytics:
        delete_interactions(conn, event.household)


def _household_erased(conn: sqlite3.Connection, event: HouseholdErased) -> dict[str, int]:
    return {"customer_interactions": delete_interactions(conn, event.household)}


class InteractionRoutes:
    def __init__(self, writer: StoreWriter, db_path: Path, timezone: tzinfo | None) -> None:
        self._writer = writer
        self._reads = ReadThread(db_path, "interactions-reader")
        self._tz = timezone

    async def close(self) -> None:
        await self._reads.close()

    def _day_start_ms(self, now_ms: int) -> int:
        local = dt.datetime.fromtimestamp(now_ms / 1000, self._tz)
        return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/api/v1/in-store/interaction-tracking", self.track),
            ("GET", "/api/v1/analytics/interactions", self.by_version),
        ]

    async def track(self, request: web.Request) -> web.Response:
        example = '{"events": [{"kind": "suggestion_taken", "subject": "milk"}]}'
        body = await read_json(request, InteractionBatch, example)
        if isinstance(body, web.Response):
            return body
        principal = request[PRINCIPAL]
        household = body.household if principal.role == "staff" else principal.household
        if household is None:
            return error_response(400, "household: staff name the household whose interactions these are")
        if principal.role != "staff" and body.household not in (None, household):
            return error_response(403, "a shopper session records only its own household's interactions")
        now, session = int(time.time() * 1000), principal.session
        start = self._day_start_ms(now)

        def job(c: sqlite3.Connection) -> InteractionsRecorded | None:
            if session is not None and is_revoked(c, session):  # "forget me" raced this request
                return None
            return record_interactions(c, household, list(body.events), now, start)

        done = await self._writer.run_job(job, urgent=True)
        if done is None:
            return error_response(401, "session ended")
        return json_response(done, 201 if done.recorded else 202)

    async def by_version(self, request: web.Request) -> web.Response:
        try:
            since = window_start(request.query.get("days"), int(time.time() * 1000))
        except ValueError as exc:
            return error_response(400, str(exc))
        return json_response(await self._reads.run(lambda c: interactions_by_version(c, since)))
