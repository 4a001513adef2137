"""Session tokens, the access policy and offers, without a daemon."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from edge.customers.offers import load_promotions, offers_for
from edge.customers.privacy import CHECK_LENGTH, CardCheck, CardEntry, load_session_key
from edge.errors import ConfigError
from edge.http.access import UNVERIFIED, AccessPolicy, AuthFailure, Principal, SessionRateLimit
from edge.http.sessions import (
    Refusal,
    SessionSigner,
    is_revoked,
    load_revocations,
    record_revocation,
)
from tests.conftest import PSEUDONYM_KEY

KEY = b"0123456789abcdef0123"
DEMO_PROMOTIONS = Path(__file__).resolve().parents[2] / "simulators" / "demo_store" / "promotions.json"


def test_a_session_token_names_one_household_and_expires() -> None:
    signer = SessionSigner(KEY, lifetime_s=60)
    session = signer.issue("hh_a", True, now_ms=1_000)
    assert signer.verify(session.token, now_ms=60_999) == session
    assert signer.verify(session.token, now_ms=61_000) is None
    # Another key (another store's daemon, or a forged token) does not verify.
    assert SessionSigner(b"another key of 16+ bytes", 60).verify(session.token, now_ms=2_000) is None
    # Changing the household, or the verified flag, inside the token breaks the signature.
    forged = session.token.replace("hh_a", "hh_b")
    assert signer.verify(forged, now_ms=2_000) is None
    unverified = signer.issue("hh_a", False, now_ms=1_000)
    assert signer.verify(unverified.token.replace(".u.", ".v."), now_ms=2_000) is None
    assert signer.verify(unverified.token, now_ms=2_000) == unverified
    assert not unverified.verified
    assert signer.issue("hh_a", True, now_ms=1_000).token != session.token  # each session its own token


def test_a_token_claiming_a_longer_life_than_session_s_is_refused() -> None:
    """A token signed with the right key but claiming ten years (a leaked key, an old config) is refused."""
    signer = SessionSigner(KEY, lifetime_s=60)
    ten_years = 10 * 365 * 86_400_000
    body = f"hh_a.1000.{1000 + ten_years}.v.00112233aabbccdd"
    forged = f"s2.{body}.{signer._sign(body)}"
    refused = signer.check(forged, now_ms=2_000)
    assert isinstance(refused, Refusal)
    assert "session_s" in refused.reason
    assert not refused.guess


def test_the_session_key_is_per_store_not_the_chain_key(tmp_path: Path) -> None:
    """Today's tokens were signed with a key derived from the chain-wide pseudonym key: any store's
    daemon accepted a token made with it. The session key is now its own file, made once per store."""
    a = load_session_key(None, tmp_path / "a" / "session.key")
    b = load_session_key(None, tmp_path / "b" / "session.key")
    assert a != b
    assert load_session_key(None, tmp_path / "a" / "session.key") == a  # kept across restarts
    assert (tmp_path / "a" / "session.key").stat().st_mode & 0o777 == 0o600
    token = SessionSigner(a, 60).issue("hh_a", True).token
    assert SessionSigner(b, 60).verify(token) is None
    chain_key = PSEUDONYM_KEY.encode()
    assert SessionSigner(a, 60)._key != SessionSigner(chain_key, 60)._key


def test_revoking_one_session_leaves_the_others() -> None:
    signer = SessionSigner(KEY, lifetime_s=60)
    first, second = signer.issue("hh_a", True, now_ms=0), signer.issue("hh_a", True, now_ms=0)
    signer.revoke(first, now_ms=10)
    assert signer.verify(first.token, now_ms=20) is None
    assert signer.verify(second.token, now_ms=20) == second


def test_household_revocation_ends_every_earlier_session_and_survives_a_restart(tmp_path: Path) -> None:
    from edge.store.db import open_store

    conn = open_store(tmp_path / "store.db")
    signer = SessionSigner(KEY, lifetime_s=60)
    first, second = signer.issue("hh_a", True, now_ms=1_000), signer.issue("hh_a", True, now_ms=2_000)
    other = signer.issue("hh_b", True, now_ms=2_000)
    erased = signer.revoke_household("hh_a", now_ms=3_000)
    ended = signer.revoke(other, now_ms=3_000)
    with conn:
        record_revocation(conn, erased)
        record_revocation(conn, ended)
    after = signer.issue("hh_a", True, now_ms=3_000)  # the shopper comes back: a new session works
    assert after.issued_ms > erased.revoked_ms
    for s in (first, second, other):
        assert signer.verify(s.token, now_ms=4_000) is None
        assert is_revoked(conn, s)
    assert signer.verify(after.token, now_ms=4_000) == after
    assert not is_revoked(conn, after)

    restarted = SessionSigner(KEY, lifetime_s=60)  # a new daemon: same key, revocations from the db
    assert restarted.verify(second.token, now_ms=4_000) == second  # (what a restart did before)
    restarted.restore(load_revocations(conn, now_ms=4_000), now_ms=4_000)
    assert restarted.verify(first.token, now_ms=4_000) is None
    assert restarted.verify(second.token, now_ms=4_000) is None
    assert restarted.verify(other.token, now_ms=4_000) is None
    assert restarted.verify(after.token, now_ms=4_000) == after
    # Bounded: a revocation is kept only until no token it covers can still be valid.
    assert erased.until_ms <= 3_000 + 60_000 + 60_000
    assert load_revocations(conn, now_ms=erased.until_ms) == []
    with conn:
        record_revocation(conn, signer.revoke(after, now_ms=erased.until_ms + 1))
    assert conn.execute("SELECT count(*) FROM session_revocations").fetchone() == (1,)


def test_malformed_tokens_are_wrong_tokens_and_never_raise() -> None:
    signer = SessionSigner(KEY, 60)
    policy = AccessPolicy("staff-secret-0123456789", "kiosk-secret-0123456789", signer)
    for token in (
        "s1.a.b.c.\u00e9",
        "s2.a.b.c.d.e.\u00e9",
        "\udcff\udcfe",
        "s2.\udcff",
        "é" * 40,
        "s2." + "." * 6,
    ):
        found = policy.identify(token)
        assert isinstance(found, AuthFailure), token
    assert policy.identify("s2.a.b.c.d.e.\u00e9") == AuthFailure(
        "session token signature does not match", True
    )
    assert policy.identify("\udcff\udcfe") == AuthFailure("wrong bearer token", True)
    assert policy.identify("") == AuthFailure("missing bearer token", False)
    expired = signer.issue("hh_a", True, now_ms=0).token
    assert policy.identify(expired) == AuthFailure("session expired: scan the card again", False)


def test_policy_roles() -> None:
    signer = SessionSigner(KEY, 60)
    policy = AccessPolicy("staff-secret", "kiosk-secret", signer)
    session = signer.issue("hh_a", True)
    token = session.token
    assert policy.principal("staff-secret") == Principal("staff")
    assert policy.principal("kiosk-secret") == Principal("kiosk")
    assert policy.principal(token) == Principal("session", "hh_a", session)
    assert policy.principal("") is None
    assert policy.principal("guess") is None
    kiosk, me = Principal("kiosk"), Principal("session", "hh_a", session)
    assert policy.refusal(kiosk, "POST", "/api/v1/kiosk/sessions", None) is None
    assert policy.refusal(kiosk, "GET", "/api/v1/customers/{id}/consent", "hh_a") is not None
    assert policy.refusal(me, "GET", "/api/v1/customers/{id}/consent", "hh_a") is None
    assert policy.refusal(me, "GET", "/api/v1/customers/{id}/consent", "hh_b") is not None
    assert policy.refusal(me, "GET", "/api/v1/shelves/{id}/forecast", "A1-1") is not None
    assert policy.refusal(Principal("staff"), "GET", "/api/v1/anything", None) is None
    typed = signer.issue("hh_a", False)
    unverified = Principal("session", "hh_a", typed)
    assert policy.refusal(unverified, "GET", "/api/v1/customers/{id}/consent", "hh_a") == UNVERIFIED
    assert policy.refusal(unverified, "DELETE", "/api/v1/customers/{id}", "hh_a") == UNVERIFIED
    assert policy.refusal(unverified, "GET", "/api/v1/recommendations/shopping-list/{id}", "hh_a") is None


def test_card_check_codes_verify_a_scanned_barcode_only() -> None:
    cards = CardCheck(PSEUDONYM_KEY.encode())
    barcode = cards.barcode("LOY-000201")
    number, _, code = barcode.rpartition("-")
    assert number == "LOY-000201"
    assert len(code) == CHECK_LENGTH
    assert set(code) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")  # Crockford base32: no I, L, O, U
    assert cards.read(barcode) == CardEntry("LOY-000201", True)
    assert cards.read(f"  {barcode}\r") == CardEntry("LOY-000201", True)
    assert cards.read("LOY-000201") == CardEntry("LOY-000201", False)  # typed: a number, unverified
    wrong = "LOY-000201-" + ("A" if code[0] != "A" else "B") + code[1:]
    assert cards.read(wrong) == CardEntry(wrong, False)  # a wrong code: no card's number
    assert cards.matches("LOY-000201", code.lower())
    assert not cards.matches("LOY-000202", code)
    assert not cards.matches("LOY-000201", "é" * CHECK_LENGTH)
    # Every store of the chain (same pseudonym key) computes the same code; another chain does not.
    assert CardCheck(PSEUDONYM_KEY.encode()).barcode("LOY-000201") == barcode
    assert CardCheck(b"another chain's key 0123").barcode("LOY-000201") != barcode


def test_opening_sessions_is_rate_limited_per_address() -> None:
    limit = SessionRateLimit(per_minute=6, burst=3)
    assert [limit.take("10.0.0.5", now=0.0) for _ in range(3)] == [None, None, None]
    assert limit.take("10.0.0.5", now=0.0) == pytest.approx(10.0)  # one per 10 s after the burst
    assert limit.take("10.0.0.6", now=0.0) is None  # another kiosk is unaffected
    assert limit.take("10.0.0.5", now=10.0) is None
    assert limit.take("10.0.0.5", now=11.0) == pytest.approx(9.0)


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
    # A promotion runs through its last day, store-local; soonest ending first.
    seasonal = generic.offers[0]
    assert seasonal.id == "p-seasonal-chocolate"
    assert seasonal.ends_ms == int(dt.datetime(2027, 1, 7, tzinfo=dt.UTC).timestamp() * 1000)
    assert seasonal.skus == ["cj-898432"]  # one product, not the whole category
    milk = next(o for o in generic.offers if o.id == "p-milk")
    assert milk.ends_ms == int(dt.datetime(2028, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
    assert milk.skus == []


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
    from edge.store.db import open_store
    from edge.store.housekeeping import RetentionJob

    conn = open_store(tmp_path / "store.db")
    conn.executemany(
        "INSERT INTO access_log (ts_ms, household, route, role) VALUES (?, 'hh_a', 'GET x', 'session')",
        [(1_000,), (2_000,), (3_000,)],
    )
    deleted = RetentionJob(readings_before_ms=0, quarantine_max_rows=10, access_before_ms=2_500)(conn)
    assert deleted["access_log"] == 2
    assert conn.execute("SELECT ts_ms FROM access_log").fetchall() == [(3_000,)]


def test_token_guessing_is_throttled_per_address() -> None:
    from edge.http.access import AuthThrottle

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


def test_the_cli_prints_barcodes_with_the_chain_key_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.cli import main

    config = tmp_path / "storeedge.toml"
    config.write_text(f'[privacy]\npseudonym_key = "{PSEUDONYM_KEY}"\n')
    assert main(["privacy", "card-barcode", "--config", str(config), "LOY-000201"]) == 0
    assert capsys.readouterr().out == CardCheck(PSEUDONYM_KEY.encode()).barcode("LOY-000201") + "\n"
    config.write_text("")  # no chain key: no made-up codes
    assert main(["privacy", "card-barcode", "--config", str(config), "LOY-000201"]) == 2
    assert "[privacy] pseudonym_key_file" in capsys.readouterr().err
    assert not list(tmp_path.rglob("pseudonym.key"))
