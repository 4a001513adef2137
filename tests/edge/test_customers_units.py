"""Session tokens, the access policy and offers, without a daemon."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from edge.access import AccessPolicy, Principal, SessionSigner
from edge.errors import ConfigError
from edge.offers import load_promotions, offers_for

KEY = b"0123456789abcdef0123"
DEMO_PROMOTIONS = Path(__file__).resolve().parents[2] / "simulators" / "demo_store" / "promotions.json"


def test_a_session_token_names_one_household_and_expires() -> None:
    signer = SessionSigner(KEY, lifetime_s=60)
    session = signer.issue("hh_a", now_ms=1_000)
    assert signer.verify(session.token, now_ms=60_999) == session
    assert signer.verify(session.token, now_ms=61_000) is None
    # Another key (another store's daemon, or a forged token) does not verify.
    assert SessionSigner(b"another key of 16+ bytes", 60).verify(session.token, now_ms=2_000) is None
    # Changing the household inside the token breaks the signature.
    forged = session.token.replace("hh_a", "hh_b")
    assert signer.verify(forged, now_ms=2_000) is None
    assert signer.issue("hh_a", now_ms=1_000).token != session.token  # each session its own token


def test_revoking_one_session_leaves_the_others() -> None:
    signer = SessionSigner(KEY, lifetime_s=60)
    first, second = signer.issue("hh_a", now_ms=0), signer.issue("hh_a", now_ms=0)
    signer.revoke(first, now_ms=10)
    assert signer.verify(first.token, now_ms=20) is None
    assert signer.verify(second.token, now_ms=20) == second


def test_policy_roles() -> None:
    signer = SessionSigner(KEY, 60)
    policy = AccessPolicy("staff-secret", "kiosk-secret", signer)
    token = signer.issue("hh_a").token
    assert policy.principal("staff-secret") == Principal("staff")
    assert policy.principal("kiosk-secret") == Principal("kiosk")
    assert policy.principal(token) == Principal("session", "hh_a", token)
    assert policy.principal("") is None
    assert policy.principal("guess") is None
    kiosk, session = Principal("kiosk"), Principal("session", "hh_a", token)
    assert policy.refusal(kiosk, "POST", "/api/v1/kiosk/sessions", None) is None
    assert policy.refusal(kiosk, "GET", "/api/v1/customers/{id}/consent", "hh_a") is not None
    assert policy.refusal(session, "GET", "/api/v1/customers/{id}/consent", "hh_a") is None
    assert policy.refusal(session, "GET", "/api/v1/customers/{id}/consent", "hh_b") is not None
    assert policy.refusal(session, "GET", "/api/v1/shelves/{id}/forecast", "A1-1") is not None
    assert policy.refusal(Principal("staff"), "GET", "/api/v1/anything", None) is None


def test_offers_fit_the_list_first_then_habits_and_need_consent_to_be_personal() -> None:
    promotions = load_promotions(DEMO_PROMOTIONS)
    now = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
    generic = offers_for(promotions, now, None)
    assert not generic.personalised
    ids = {o.id for o in generic.offers}
    assert "p-milk" in ids
    assert "p-ice-cream" not in ids
    assert all(o.reason is None for o in generic.offers)
    mine = offers_for(promotions, now, ["milk", "salad"], ["coffee", "milk", "tea"])
    assert mine.personalised
    assert [(o.id, o.reason) for o in mine.offers] == [
        ("p-milk", "milk is on your list"),
        ("p-coffee", "you often buy coffee"),
    ]
    # A promotion runs through its last day, store-local.
    assert generic.offers[0].ends_ms == int(dt.datetime(2028, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("promotion", "field"),
    [
        ({"id": "x", "category": "milk", "title": "t", "starts": "2026-01-01"}, "ends"),
        (
            {"id": "x", "category": "milk", "title": "t", "starts": "2026-13-01", "ends": "2026-12-01"},
            "starts",
        ),
        ({"id": "x", "category": "milk", "title": "", "starts": "2026-01-01", "ends": "2026-12-01"}, "title"),
        ({"id": "x", "category": "milk", "title": "t", "starts": "2026-02-01", "ends": "2026-01-01"}, "ends"),
        (
            {
                "id": "x",
                "category": "milk",
                "title": "t",
                "starts": "2026-01-01",
                "ends": "2026-02-01",
                "pct": 1,
            },
            "pct",
        ),
    ],
)
def test_a_bad_promotions_file_names_the_file_and_field(
    tmp_path: Path, promotion: dict[str, object], field: str
) -> None:
    path = tmp_path / "promotions.json"
    path.write_text(json.dumps({"promotions": [promotion]}))
    with pytest.raises(ConfigError) as exc:
        load_promotions(path)
    assert str(path) in str(exc.value)
    assert f"promotions[0].{field}:" in str(exc.value)


def test_retention_drops_access_log_rows_past_their_window(tmp_path: Path) -> None:
    from edge.db import open_store
    from edge.housekeeping import RetentionJob

    conn = open_store(tmp_path / "store.db")
    conn.executemany(
        "INSERT INTO access_log (ts_ms, household, route, role) VALUES (?, 'hh_a', 'GET x', 'session')",
        [(1_000,), (2_000,), (3_000,)],
    )
    deleted = RetentionJob(readings_before_ms=0, quarantine_max_rows=10, access_before_ms=2_500)(conn)
    assert deleted["access_log"] == 2
    assert conn.execute("SELECT ts_ms FROM access_log").fetchall() == [(3_000,)]


def test_token_guessing_is_throttled_per_address() -> None:
    from edge.access import AuthThrottle

    throttle = AuthThrottle(max_failures=3, window_s=60.0)
    for t in (0.0, 1.0, 2.0):
        assert throttle.retry_after("10.0.0.5", now=t) is None
        throttle.failed("10.0.0.5", now=t)
    assert throttle.retry_after("10.0.0.5", now=3.0) == 57.0  # until the first failure is 60 s old
    assert throttle.retry_after("10.0.0.6", now=3.0) is None  # another address is unaffected
    assert throttle.retry_after("10.0.0.5", now=60.0) is None  # the oldest failure aged out
    throttle.failed("10.0.0.5", now=60.0)
    assert throttle.retry_after("10.0.0.5", now=60.5) == 0.5  # three failures again within 60 s
    assert throttle.retry_after("10.0.0.5", now=61.0) is None
    bounded = AuthThrottle(max_failures=1, window_s=60.0, max_clients=2)
    for client in ("a", "b", "c"):
        bounded.failed(client, now=0.0)
    assert bounded.retry_after("a", now=1.0) is None  # dropped: only the 2 most recent are tracked
    assert bounded.retry_after("c", now=1.0) == 59.0
