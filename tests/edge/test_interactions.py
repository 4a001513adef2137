"""What shoppers do at the kiosk (#17 item 6): recorded with analytics consent only, with the model version
and arm of the list they were looking at, counted per version (acceptance of suggestions), bounded per
day, gone with the consent or the household; on a real daemon over loopback HTTP, and in SQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edge.customers.interactions import (
    INTERACTIONS_PER_DAY,
    InteractionEvent,
    interactions_by_version,
    record_interactions,
)
from edge.store.db import open_store
from edge.store.hooks import ConsentRecorded, HouseholdErased, HouseholdHooks
from edge.uplink.erasures import store_household_hooks
from tests.conftest import STAFF_TOKEN, run_daemon
from tests.edge.test_customers_api import KIOSK_TOKEN, SCANNED, call, config, rows  # noqa: F401 - the fixture

NOW = 1_780_000_000_000


def grant(conn: sqlite3.Connection, household: str, analytics: bool) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO consents (household, purpose, granted, updated_ms) VALUES (?, 'analytics', ?, 0)",
        (household, int(analytics)),
    )


def served(conn: sqlite3.Connection, household: str, model: str, arm: str | None) -> None:
    conn.execute(
        "INSERT INTO predictions (household, category, purchases, basket_probability, urgency, reason,"
        " model_version, basket_model_version, scored_ms, origin_day, utc_offset_min, experiment, arm)"
        " VALUES (?, 'milk', 3, 0.5, 'usual', 'r', 'np', ?, 0, 0, 0, ?, ?)",
        (household, model, "exp" if arm else None, arm),
    )


def events(*kinds: str) -> list[InteractionEvent]:
    return [InteractionEvent(kind, "milk") for kind in kinds]  # type: ignore[arg-type]


def test_only_with_analytics_consent_and_with_the_lists_arm(tmp_path: Path) -> None:
    conn = open_store(tmp_path / "store.db")
    grant(conn, "hh_yes", True)
    grant(conn, "hh_no", False)
    served(conn, "hh_yes", "nb-2", "challenger")
    refused = record_interactions(conn, "hh_no", events("list_viewed"), NOW, NOW - 1000)
    assert (refused.recorded, "analytics consent" in refused.reason) == (0, True)
    assert record_interactions(conn, "hh_never_asked", events("list_viewed"), NOW, NOW - 1000).recorded == 0
    done = record_interactions(
        conn, "hh_yes", events("suggestion_taken", "suggestion_taken", "suggestion_declined"), NOW, NOW - 1000
    )
    assert done.recorded == 3
    stored = conn.execute(
        "SELECT household, kind, basket_model_version, experiment, arm FROM customer_interactions"
    )
    assert {r[0] for r in stored} == {"hh_yes"}
    bodies = [json.loads(b) for (b,) in conn.execute("SELECT body FROM outbox WHERE kind = 'interaction'")]
    assert [(b["kind"], b["arm"]) for b in bodies] == [
        ("suggestion_taken", "challenger"),
        ("suggestion_taken", "challenger"),
        ("suggestion_declined", "challenger"),
    ]
    (version,) = interactions_by_version(conn, NOW - 1)
    assert (version.basket_model_version, version.arm) == ("nb-2", "challenger")
    assert version.suggestion_acceptance == pytest.approx(2 / 3)
    conn.close()


def test_bounded_per_day_and_gone_with_the_consent_or_the_household(tmp_path: Path) -> None:
    conn = open_store(tmp_path / "store.db")
    grant(conn, "hh_a", True)
    grant(conn, "hh_b", True)
    many = events(*["item_ticked"] * 100)
    for _ in range(INTERACTIONS_PER_DAY // 100):
        assert record_interactions(conn, "hh_a", many, NOW, NOW - 1000).recorded == 100
    full = record_interactions(conn, "hh_a", many, NOW, NOW - 1000)
    assert full.recorded == 0
    assert "per household a day" in full.reason
    record_interactions(conn, "hh_b", events("offer_opened"), NOW, NOW - 1000)
    hooks: HouseholdHooks = store_household_hooks()
    hooks.consent_recorded(conn, ConsentRecorded("hh_a", True, False, NOW))  # analytics withdrawn
    assert conn.execute("SELECT count(*) FROM customer_interactions WHERE household = 'hh_a'").fetchone() == (
        0,
    )
    hooks.household_erased(conn, HouseholdErased("hh_b", NOW))
    assert conn.execute("SELECT count(*) FROM customer_interactions").fetchone() == (0,)
    conn.close()


@pytest.mark.integration
async def test_a_verified_session_records_its_own_households_interactions(config: Path) -> None:  # noqa: F811
    async with run_daemon(config) as d:
        api, db = f"{d.url}/api/v1", Path(d.config.database.path)
        _, opened = await call("POST", f"{api}/kiosk/sessions", KIOSK_TOKEN, {"card": SCANNED})
        me, token = opened["customer"], opened["token"]
        track = f"{api}/in-store/interaction-tracking"
        body: dict[str, Any] = {
            "events": [{"kind": "list_viewed"}, {"kind": "suggestion_taken", "subject": "milk"}]
        }
        status, answer = await call("POST", track, token, body)
        assert (status, answer["recorded"]) == (202, 0)  # no analytics consent yet: dropped, and said so
        await call(
            "PUT", f"{api}/customers/{me}/consent", token, {"personalisation": False, "analytics": True}
        )
        status, answer = await call("POST", track, token, body)
        assert (status, answer) == (201, {"recorded": 2, "reason": ""})
        assert rows(db, "SELECT household, kind FROM customer_interactions ORDER BY id") == [
            (me, "list_viewed"),
            (me, "suggestion_taken"),
        ]
        # A session cannot write for another household; staff must name one; bad bodies name the field.
        assert (await call("POST", track, token, body | {"household": "someone-else"}))[0] == 403
        assert (await call("POST", track, STAFF_TOKEN, body))[0] == 400
        status, error = await call("POST", track, token, {"events": [{"kind": "stole_a_trolley"}]})
        assert status == 400
        assert "kind" in error["error"]
        assert (await call("POST", track, KIOSK_TOKEN, body))[0] == 403  # the kiosk token alone: no
        status, counts = await call("GET", f"{api}/analytics/interactions?days=1", STAFF_TOKEN)
        assert status == 200
        assert {k["kind"]: k["events"] for k in counts[0]["kinds"]} == {
            "list_viewed": 1,
            "suggestion_taken": 1,
        }
        assert counts[0]["suggestion_acceptance"] == 1.0
