"""Hardening of the HTTP API, each against a real daemon over loopback with real SQLite: malformed
tokens, the guessing throttle, "forget me" and other sessions, card enumeration, session keys and
lifetimes, unbounded ids and bodies, audited refusals, and what cards never seen at a till can create."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge.customers.privacy import CardCheck
from edge.demo.broker import MosquittoBroker
from edge.http.sessions import SessionSigner
from tests.conftest import PSEUDONYM_KEY, STAFF_TOKEN, run_daemon, write_config
from tests.edge.test_customers_api import buy, call, rows, wait_for

pytestmark = pytest.mark.integration

KIOSK_TOKEN = "test-kiosk-token"
SYNC_TOKEN = "test-sync-token-0123456789"
CARDS = CardCheck(PSEUDONYM_KEY.encode())
CARD = "LOY-000201"


@pytest.fixture
def config(tmp_path: Path, broker: MosquittoBroker) -> Path:
    return write_config(tmp_path, broker, http={"kiosk_token": KIOSK_TOKEN}, sync={"token": SYNC_TOKEN})


async def raw_get(url: str, target: bytes, *headers: bytes) -> int:
    """A GET with exactly these bytes on the wire (no client library re-encodes the header)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = b"GET " + target + b" HTTP/1.1\r\nHost: store\r\nConnection: close\r\n"
    writer.write(head + b"".join(h + b"\r\n" for h in headers) + b"\r\n")
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(data.split(b" ", 2)[1])


async def open_session(api: str, card: str, token: str = KIOSK_TOKEN, **extra: str) -> tuple[int, Any]:
    return await call("POST", f"{api}/kiosk/sessions", token, {"card": card, **extra})


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [f"{r.name}: {r.getMessage()}" for r in errors]


async def test_malformed_tokens_are_wrong_tokens_not_500s(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with run_daemon(config) as d:
        bad = [
            (b"/api/v1/kiosk/info", "Authorization: Bearer s1.a.b.c.\u00e9".encode()),
            (b"/api/v1/kiosk/info", "Authorization: Bearer s2.a.b.c.d.e.\u00e9".encode()),
            (b"/api/v1/kiosk/info", b"Authorization: Bearer \xff\xfe"),
            (b"/api/v1/kiosk/info?token=s1.a.b.c.%C3%A9", b"X-Nothing: 1"),
            (b"/api/v1/kiosk/info?token=%FF%FE%ED%A0%80", b"X-Nothing: 1"),
            (b"/api/v1/summary", "Authorization: Bearer caf\u00e9-staff-token".encode()),
        ]
        for target, header in bad:
            assert await raw_get(d.url, target, header) == 401, (target, header)
        assert await raw_get(d.url, b"/sync/v1/status", b"Authorization: Bearer \xff\xfe") == 401
        assert await raw_get(d.url, b"/sync/v1/status", "Authorization: Bearer \u00e9".encode()) == 401
        # Each was a guess: counted, so the log cannot be flooded at full speed.
        for _ in range(10):
            await raw_get(d.url, b"/api/v1/kiosk/info", b"Authorization: Bearer \xff\xfe")
        assert await raw_get(d.url, b"/api/v1/kiosk/info", b"Authorization: Bearer \xff\xfe") == 429
    no_errors_logged(caplog)


async def test_only_wrong_tokens_count_and_session_guesses_never_lock_staff_out(config: Path) -> None:
    async with run_daemon(config) as d:
        api = f"{d.url}/api/v1"
        _, opened = await open_session(api, CARDS.barcode(CARD))
        ended = opened["token"]
        assert (await call("DELETE", f"{api}/kiosk/sessions/current", ended))[0] == 200
        for _ in range(15):  # a kiosk polling without a token, or with its ended session
            assert (await call("GET", f"{api}/kiosk/info", None))[0] == 401
            status, body = await call("GET", f"{api}/kiosk/info", ended)
            assert (status, body["error"]) == (401, "session ended")
        assert (await call("GET", f"{api}/summary", STAFF_TOKEN))[0] == 200
        # Tampered session tokens are guesses, but at sessions: the staff token still works.
        tampered = ended[:-1] + ("0" if ended[-1] != "0" else "1")
        for _ in range(10):
            assert (await call("GET", f"{api}/kiosk/info", tampered))[0] == 401
        _, fresh = await open_session(api, CARDS.barcode(CARD))
        assert (await call("GET", f"{api}/kiosk/info", fresh["token"]))[0] == 429
        assert (await call("GET", f"{api}/summary", STAFF_TOKEN))[0] == 200
        # Guesses at the secrets still lock every secret (the guesser cannot tell a right one).
        for guess in range(10):
            assert (await call("GET", f"{api}/summary", f"guess-{guess:012d}"))[0] == 401
        assert (await call("GET", f"{api}/summary", STAFF_TOKEN))[0] == 429


async def test_forget_me_ends_every_session_of_the_household_even_after_a_restart(config: Path) -> None:
    async with run_daemon(config) as d:
        api, db = f"{d.url}/api/v1", Path(d.config.database.path)
        _, first = await open_session(api, CARDS.barcode(CARD))
        _, second = await open_session(api, CARDS.barcode(CARD))
        me = first["customer"]
        assert second["customer"] == me
        consent = {"personalisation": True, "analytics": True}
        assert (await call("PUT", f"{api}/customers/{me}/consent", second["token"], consent))[0] == 200
        assert (await call("DELETE", f"{api}/customers/{me}", first["token"]))[0] == 200
        # The other session is over too: it reads nothing and creates nothing.
        assert (await call("GET", f"{api}/customers/{me}/consent", second["token"]))[0] == 401
        assert (await call("PUT", f"{api}/customers/{me}/consent", second["token"], consent))[0] == 401
        vote = {"category": "milk", "vote": "up"}
        status, _ = await call(
            "POST", f"{api}/recommendations/shopping-list/{me}/feedback", second["token"], vote
        )
        assert status == 401
        assert rows(db, "SELECT count(*) FROM consents WHERE household = ?", me) == [(0,)]
        kinds = rows(db, "SELECT kind FROM outbox WHERE entity = ? ORDER BY seq", me)
        assert kinds == [("erasure",)]
        # The shopper may come back: a new session works.
        _, again = await open_session(api, CARDS.barcode(CARD))
        assert (await call("GET", f"{api}/customers/{me}/consent", again["token"]))[0] == 200
    async with run_daemon(config) as d:
        api = f"{d.url}/api/v1"
        for old in (first, second):
            assert (await call("GET", f"{api}/customers/{me}/consent", old["token"]))[0] == 401
        assert (await call("GET", f"{api}/customers/{me}/consent", again["token"]))[0] == 200


async def test_a_typed_number_reveals_nothing_and_opening_is_rate_limited(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config = write_config(
        tmp_path,
        broker,
        http={"kiosk_token": KIOSK_TOKEN},
        kiosk={"sessions_per_minute": 1, "session_burst": 5},
    )
    async with run_daemon(config) as d:
        api, db = f"{d.url}/api/v1", Path(d.config.database.path)
        await buy(broker, CARD, "b-1", 1, ["1001"])
        await wait_for(lambda: rows(db, "SELECT count(*) FROM households") == [(1,)])
        _, scanned = await open_session(api, CARDS.barcode(CARD))
        assert (scanned["verified"], scanned["known"]) == (True, True)
        consent = {"personalisation": True, "analytics": False}
        assert (
            await call("PUT", f"{api}/customers/{scanned['customer']}/consent", scanned["token"], consent)
        )[0] == 200

        # Typed numbers: a card with history and consent, and one never seen, answer alike.
        answers = [await open_session(api, card) for card in (CARD, "LOY-999999")]
        shapes = [
            (status, {k: v for k, v in body.items() if k not in ("customer", "token", "expires_ms")})
            for status, body in answers
        ]
        assert (
            shapes[0]
            == shapes[1]
            == (201, {"verified": False, "known": None, "first_name": None, "consent": None})
        )
        typed = answers[0][1]
        me = typed["customer"]
        assert me == scanned["customer"]
        status, body = await call("GET", f"{api}/customers/{me}/consent", typed["token"])
        assert (status, body["error"].split(":")[0]) == (403, "card not verified")
        for method, path in (("GET", f"customers/{me}/predictions"), ("DELETE", f"customers/{me}")):
            assert (await call(method, f"{api}/{path}", typed["token"]))[0] == 403
        status, listing = await call("GET", f"{api}/recommendations/shopping-list/{me}", typed["token"])
        assert (status, listing["personalised"]) == (200, False)  # generic, although it has consent
        _, offers = await call("GET", f"{api}/customers/{me}/offers", typed["token"])
        assert offers["personalised"] is False
        refused = rows(
            db, "SELECT route, role, refused FROM access_log WHERE household = ? AND refused IS NOT NULL", me
        )
        assert ("GET /api/v1/customers/{id}/consent", "session", body["error"]) in refused

        # The code typed apart from the number verifies too; a wrong code says so.
        code = CARDS.code(CARD)
        status, coded = await open_session(api, CARD, code=code.lower())
        assert (status, coded["verified"]) == (201, True)
        status, body = await open_session(api, CARD, code="000000" if code != "000000" else "000001")
        assert (status, body["error"].split(":")[0]) == (422, "code")
        # Burst of 5 spent: the kiosk waits (the staff token is not limited).
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{api}/kiosk/sessions",
                json={"card": "LOY-1"},
                headers={"Authorization": f"Bearer {KIOSK_TOKEN}"},
            ) as resp,
        ):
            assert resp.status == 429
            assert 1 <= int(resp.headers["Retry-After"]) <= 60
        assert (await open_session(api, "LOY-2", STAFF_TOKEN))[0] == 201


async def test_session_tokens_are_per_store_and_capped_at_session_s(config: Path) -> None:
    async with run_daemon(config) as d:
        api = f"{d.url}/api/v1"
        me = (await open_session(api, CARDS.barcode(CARD)))[1]["customer"]
        # Today's forgery: a token signed with a key derived from the chain-wide pseudonym key.
        chain = SessionSigner(PSEUDONYM_KEY.encode(), 10 * 365 * 86_400)
        forged = chain.issue(me, True).token
        assert (await call("GET", f"{api}/customers/{me}/consent", forged))[0] == 401
        # Even with this store's own key, a token claiming ten years is refused.
        key = (Path(d.config.database.path).with_name("session.key")).read_bytes().strip()
        long_lived = SessionSigner(key, 10 * 365 * 86_400).issue(me, True).token
        status, body = await call("GET", f"{api}/customers/{me}/consent", long_lived)
        assert (status, body["error"]) == (401, "session token: lifetime beyond [kiosk] session_s")
        assert (
            await call("GET", f"{api}/customers/{me}/consent", SessionSigner(key, 900).issue(me, True).token)
        )[0] == 200


async def test_ids_and_bodies_are_bounded(config: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with run_daemon(config) as d:
        api = f"{d.url}/api/v1"
        status, body = await call("POST", f"{api}/alerts/99999999999999999999999/ack", STAFF_TOKEN)
        assert (status, body["error"]) == (404, "alert 99999999999999999999999: no such alert")
        assert (await call("POST", f"{api}/alerts/9223372036854775808/resolve", STAFF_TOKEN))[0] == 404
        assert (await call("POST", f"{api}/alerts/\u0663/ack", STAFF_TOKEN))[0] == 400
        assert (await call("POST", f"{api}/alerts/9223372036854775807/ack", STAFF_TOKEN))[0] == 409
        deep = b'{"by": "x", "z": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        headers = {"Authorization": f"Bearer {STAFF_TOKEN}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{api}/alerts/1/ack", data=deep[:60_000] + b"]" * 10, headers=headers
            ) as resp:
                assert resp.status == 400
                assert "nested too deeply" in (await resp.json())["error"]
            async with http.post(f"{api}/alerts/1/ack", data=deep, headers=headers) as resp:
                assert resp.status == 413
            async with http.post(f"{api}/routes", data=b"[" * 50_000, headers=headers) as resp:
                assert resp.status == 400
            _, opened = await open_session(api, CARDS.barcode(CARD))
            me = opened["customer"]
            session = {"Authorization": f"Bearer {opened['token']}", "Content-Type": "application/json"}
            async with http.put(f"{api}/customers/{me}/consent", data=b"[" * 60_000, headers=session) as resp:
                assert resp.status == 400
        assert (await call("GET", f"{d.url}/healthz", None))[0] == 200
    no_errors_logged(caplog)


async def test_refused_reads_are_audited_and_unknown_households_are_bounded(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config = write_config(
        tmp_path, broker, http={"kiosk_token": KIOSK_TOKEN}, privacy={"unknown_households_per_day": 1}
    )
    async with run_daemon(config) as d:
        api, db = f"{d.url}/api/v1", Path(d.config.database.path)
        _, mine = await open_session(api, CARDS.barcode("LOY-000001"))
        _, theirs = await open_session(api, CARDS.barcode("LOY-000002"))
        status, body = await call("GET", f"{api}/customers/{theirs['customer']}/consent", mine["token"])
        assert status == 403
        audit = rows(
            db, "SELECT route, role, refused FROM access_log WHERE household = ?", theirs["customer"]
        )
        assert ("GET /api/v1/customers/{id}/consent", "session", body["error"]) in audit

        # Consent from households never seen at a till: one a day here, then a reason.
        consent = {"personalisation": False, "analytics": True}
        assert (await call("PUT", f"{api}/customers/{mine['customer']}/consent", mine["token"], consent))[
            0
        ] == 200
        status, body = await call(
            "PUT", f"{api}/customers/{theirs['customer']}/consent", theirs["token"], consent
        )
        assert status == 429
        assert "unknown_households_per_day" in body["error"]
        assert rows(db, "SELECT count(*) FROM consents WHERE household = ?", theirs["customer"]) == [(0,)]
        # The counted household may change its answer; a household that buys here is never limited.
        again = {"personalisation": False, "analytics": False}
        assert (await call("PUT", f"{api}/customers/{mine['customer']}/consent", mine["token"], again))[
            0
        ] == 200
        await buy(broker, "LOY-000002", "b-1", 1, ["1001"])
        await wait_for(lambda: rows(db, "SELECT count(*) FROM households") == [(1,)])
        assert (await call("PUT", f"{api}/customers/{theirs['customer']}/consent", theirs["token"], consent))[
            0
        ] == 200
        assert rows(db, "SELECT count(*) FROM outbox WHERE kind = 'consent'") == [(3,)]
