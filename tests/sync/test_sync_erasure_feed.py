"""Central's erasure feed and the store's poller: real PostgreSQL (rows put straight into ``erasures``),
real HTTP over loopback, real SQLite stores through the single writer, and a store killed -9 mid-feed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from edge.customers.privacy import Pseudonymiser
from edge.customers.tables import ConsentUpdate, erase_household, set_consent
from edge.demo.broker import MosquittoBroker, free_port
from edge.http.sessions import Refusal, SessionSigner
from edge.metrics import IngestMetrics
from edge.store.apply import BatchApplier, load_planogram_job
from edge.store.hooks import HouseholdErased, HouseholdHooks
from edge.store.writer import StoreWriter
from edge.uplink.erasures import ErasurePoller, apply_entry, feed_cursor, store_household_hooks
from sensors.schemas import PosItem, PosTransaction
from sync import central_schema
from sync.central import Central
from sync.client import Backoff
from sync.schemas import ErasureEntry
from tests.conftest import PSEUDONYM_KEY, DaemonProcess, write_config
from tests.sync.sync_helpers import PLANOGRAM, SKUS, SYNC_TOKEN, count, pg_rows, wait_for, wait_for_sync
from tests.sync.test_sync_central import central_config

pytestmark = pytest.mark.integration

PSEUDONYMS = Pseudonymiser(PSEUDONYM_KEY.encode())
T0 = int(time.time() * 1000) - 3_600_000
PUBLIC_KEY = "ab" * 32  # any key: no bundle is ever published in these tests


def household(card: str) -> str:
    return PSEUDONYMS.household_id(card)


def migrated(dsn: str) -> str:
    """Central's schema in ``dsn`` (as central creates it at start), so rows can go in first."""

    async def migrate() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await central_schema.migrate(conn)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, migrate()).result()
    return dsn


def add_many_erasures(dsn: str, n: int, origin: str) -> None:
    pg_rows(
        migrated(dsn),
        "INSERT INTO erasures (household, origin_store, requested_ms, recorded_ms)"
        " SELECT 'hh_' || md5(g::text), $1, $2, $2 FROM generate_series(1, $3) AS g",
        origin,
        T0,
        n,
    )


def add_erasures(dsn: str, *rows: tuple[str, str, int]) -> list[int]:
    """Rows put into central's feed directly (household, origin store, requested_ms); their ids."""
    ids = []
    for hh, origin, requested in rows:
        ((new_id,),) = pg_rows(
            migrated(dsn),
            "INSERT INTO erasures (household, origin_store, requested_ms, recorded_ms)"
            " VALUES ($1, $2, $3, $3) RETURNING id",
            hh,
            origin,
            requested,
        )
        ids.append(int(new_id))
    return ids


@contextlib.asynccontextmanager
async def central_for(tmp_path: Path, dsn: str, stores: dict[str, str] | None = None) -> AsyncIterator[str]:
    """A real central (its pullers point at nothing unless ``stores`` says otherwise); yields its URL."""
    config = central_config(tmp_path, dsn, stores or {"s1": f"http://127.0.0.1:{free_port()}"})
    async with Central(config) as central:
        yield f"http://127.0.0.1:{central.port}"


async def get(url: str, token: str | None = SYNC_TOKEN, **params: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(url, params=params, headers=headers) as resp:
        return resp.status, json.loads(await resp.read())


# -- the feed ------------------------------------------------------------------------------------------


async def test_the_feed_pages_by_id_with_next_and_more(tmp_path: Path, central_dsn: str) -> None:
    ids = add_erasures(
        central_dsn, *[(household(f"LOY-{n}"), "s1" if n % 2 else "s2", T0 + n) for n in range(5)]
    )
    async with central_for(tmp_path, central_dsn) as base:
        url = f"{base}/central/v1/erasures"
        status, page = await get(url, store="s1", after="0", limit="2")
        assert status == 200
        assert page == {
            "erasures": [
                {"id": ids[0], "household": household("LOY-0"), "requested_ms": T0},
                {"id": ids[1], "household": household("LOY-1"), "requested_ms": T0 + 1},
            ],
            "next": ids[1],
            "more": True,
        }
        # every entry is served, the asking store's own included (the store decides what is left to do)
        _, rest = await get(url, store="s1", after=str(ids[1]))
        assert [e["id"] for e in rest["erasures"]] == ids[2:]
        assert (rest["next"], rest["more"]) == (ids[-1], False)
        _, empty = await get(url, store="s1", after=str(ids[-1]), limit="10")
        assert empty == {"erasures": [], "next": ids[-1], "more": False}
        _, beyond = await get(url, store="s1", after="999999")
        assert beyond == {"erasures": [], "next": 999999, "more": False}


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({}, "after"),
        ({"after": ""}, "after"),
        ({"after": "-1"}, "after"),
        ({"after": "1.5"}, "after"),
        ({"after": " 1"}, "after"),
        ({"after": "1_0"}, "after"),
        ({"after": "٣"}, "after"),  # a non-ASCII digit
        ({"after": "9" * 30}, "after"),
        ({"after": str(2**63)}, "after"),
        ({"after": "0", "limit": "0"}, "limit"),
        ({"after": "0", "limit": "-5"}, "limit"),
        ({"after": "0", "limit": "lots"}, "limit"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    tmp_path: Path, central_dsn: str, params: dict[str, str], names: str
) -> None:
    async with central_for(tmp_path, central_dsn) as base:
        status, body = await get(f"{base}/central/v1/erasures", store="s1", **params)
    assert status == 400, body
    assert body["error"] == "bad_request"
    assert body["message"].startswith(f"{names}:")


async def test_the_feed_needs_the_stores_own_token_and_caps_the_limit(
    tmp_path: Path, central_dsn: str
) -> None:
    add_many_erasures(central_dsn, 1005, "s2")
    async with central_for(tmp_path, central_dsn) as base:
        url = f"{base}/central/v1/erasures"
        assert (await get(url, token=None, store="s1", after="0"))[0] == 401
        assert (await get(url, token="wrong-token-0123456789", store="s1", after="0"))[0] == 401
        assert (await get(url, store="nobody", after="0"))[0] == 401
        assert (await get(url, store="", after="0"))[0] == 401
        status, page = await get(url, store="s1", after="0", limit="100000")
        assert status == 200
        assert (len(page["erasures"]), page["more"]) == (1000, True)


# -- the store's side: applying entries ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def store_writer(path: Path, hooks: HouseholdHooks | None = None) -> AsyncIterator[StoreWriter]:
    """A real store database behind the real single writer, the demo planogram loaded."""
    writer = StoreWriter(path, BatchApplier(PLANOGRAM, PSEUDONYMS, hooks=hooks), IngestMetrics())
    await writer.open()
    task = asyncio.create_task(writer.run())
    await writer.run_job(load_planogram_job(PLANOGRAM), urgent=True)
    try:
        yield writer
    finally:
        await writer.stop()
        await task
        await writer.close()


async def shop(writer: StoreWriter, card: str, seq: int, *, consent: bool = True) -> None:
    basket = PosTransaction(
        "pos-1", "1", seq, T0 + seq, f"b-{card}-{seq}", (PosItem(SKUS[0], 1, 2.5),), 2.5, card
    )
    await writer.submit(basket)
    if consent:
        update = ConsentUpdate(personalisation=True, analytics=True)
        await writer.run_job(lambda c: set_consent(c, household(card), update, T0 + seq, HouseholdHooks()))


def rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def reports(db: Path) -> list[dict[str, Any]]:
    """The erasure events in the store's outbox, oldest first."""
    return [json.loads(b) for (b,) in rows(db, "SELECT body FROM outbox WHERE kind = 'erasure' ORDER BY seq")]


def poller(base: str, writer: StoreWriter, **kwargs: Any) -> ErasurePoller:
    return ErasurePoller(
        base,
        store="s1",
        token=SYNC_TOKEN,
        writer=writer,
        hooks=kwargs.pop("hooks", store_household_hooks()),
        interval_s=kwargs.pop("interval_s", 0.05),
        session_lifetime_s=900,
        backoff=Backoff(0.01, 0.05),
        **kwargs,
    )


def test_an_entry_erases_the_household_reports_it_and_moves_the_cursor_in_one_transaction(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with store_writer(tmp_path / "s.db") as writer:
            await shop(writer, "LOY-1", 1)
            await shop(writer, "LOY-2", 2)
        hh = household("LOY-1")
        conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
        # A failure half-way (here: a hook after the deletes) rolls back the erasure and the cursor alike.
        broken = HouseholdHooks()

        def bug(_conn: sqlite3.Connection, _event: HouseholdErased) -> dict[str, int]:
            raise RuntimeError("a capability's bug")

        broken.on_erasure(bug)
        conn.execute("BEGIN IMMEDIATE")
        with pytest.raises(RuntimeError):
            apply_entry(
                conn, ErasureEntry(7, hh, T0 + 10), now_ms=T0 + 20, hooks=broken, session_lifetime_ms=1
            )
        conn.execute("ROLLBACK")
        assert feed_cursor(conn) == 0
        assert rows(tmp_path / "s.db", "SELECT count(*) FROM households WHERE id = ?", hh) == [(1,)]

        conn.execute("BEGIN IMMEDIATE")
        done = apply_entry(
            conn,
            ErasureEntry(7, hh, T0 + 10),
            now_ms=T0 + 20,
            hooks=HouseholdHooks(),
            session_lifetime_ms=900_000,
        )
        again = apply_entry(
            conn,
            ErasureEntry(7, hh, T0 + 10),
            now_ms=T0 + 21,
            hooks=HouseholdHooks(),
            session_lifetime_ms=900_000,
        )
        conn.execute("COMMIT")
        conn.close()
        assert (done.outcome, again.outcome) == ("erased", "done_before")
        db = tmp_path / "s.db"
        for table, column in [("households", "id"), ("consents", "household"), ("purchases", "household")]:
            assert rows(db, f"SELECT count(*) FROM {table} WHERE {column} = ?", hh) == [(0,)], table
        assert rows(db, "SELECT count(*) FROM households") == [(1,)]  # the other household stays
        assert rows(db, "SELECT cursor FROM erasure_feed") == [(7,)]
        assert rows(db, "SELECT erased_ms FROM erasures WHERE household = ?", hh) == [(T0 + 20,)]
        assert rows(db, "SELECT subject FROM session_revocations") == [(f"household:{hh}",)]
        assert reports(db) == [{"household": hh, "ts_ms": T0 + 20, "origin": "central", "erasure": 7}]

    asyncio.run(scenario())


def test_a_household_already_erased_here_since_the_request_is_only_reported(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with store_writer(tmp_path / "s.db") as writer:
            await shop(writer, "LOY-1", 1)
            hh = household("LOY-1")
            # "forget me" here at T0+100 (this store is the origin), then the shopper comes back and buys
            await writer.run_job(lambda c: erase_household(c, hh, T0 + 100, HouseholdHooks()))
            await shop(writer, "LOY-1", 2, consent=False)
            # central's entry for that request: nothing of it is left here; the new purchase stays
            result = await writer.run_job(
                lambda c: apply_entry(
                    c,
                    ErasureEntry(1, hh, T0 + 100),
                    now_ms=T0 + 200,
                    hooks=HouseholdHooks(),
                    session_lifetime_ms=1,
                )
            )
            assert result.outcome == "already_erased"
            # a later request (the shopper asked again somewhere) erases what is here now
            later = await writer.run_job(
                lambda c: apply_entry(
                    c,
                    ErasureEntry(2, hh, T0 + 300),
                    now_ms=T0 + 400,
                    hooks=HouseholdHooks(),
                    session_lifetime_ms=1,
                )
            )
            assert later.outcome == "erased"
        db = tmp_path / "s.db"
        assert [r.get("erasure") for r in reports(db)] == [None, 1, 2]  # own request, then two reports
        assert rows(db, "SELECT count(*) FROM households") == [(0,)]

    asyncio.run(scenario())


async def test_the_poller_applies_central_entries_once_even_unknown_households(
    tmp_path: Path, central_dsn: str
) -> None:
    never_here = household("LOY-NEVER-HERE")
    ids = add_erasures(
        central_dsn,
        (household("LOY-1"), "s2", T0 + 50),
        (never_here, "s2", T0 + 60),
        *[(household(f"LOY-X{n}"), "s3", T0 + 70) for n in range(150)],  # more than one page (FEED_LIMIT)
    )
    db = tmp_path / "s.db"
    async with (
        store_writer(db, store_household_hooks()) as writer,
        central_for(tmp_path, central_dsn) as base,
    ):
        await shop(writer, "LOY-1", 1)
        await shop(writer, "LOY-2", 2)
        first = poller(base, writer)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {SYNC_TOKEN}"}) as session:
            assert await first.poll_once(session) is True  # a full page, more to come
            assert rows(db, "SELECT cursor FROM erasure_feed") == [(ids[99],)]
            # a second poller (a restart) starts from the committed cursor
            second = poller(base, writer)
            assert await second.poll_once(session) is False
            assert await second.poll_once(session) is False
        assert all(a.outcome == "erased" for a in first.applied + second.applied)
        assert [a.id for a in first.applied + second.applied] == ids
        # new entries keep coming while the poller runs
        task = asyncio.create_task(poller(base, writer).run())
        (late,) = add_erasures(central_dsn, (household("LOY-2"), "s2", T0 + 90))
        await wait_for(
            lambda: count(db, "SELECT cursor FROM erasure_feed") == late, what="late entry applied"
        )
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert rows(db, "SELECT count(*) FROM households") == [(0,)]
    assert rows(db, "SELECT count(*) FROM consents") == [(0,)]
    assert [r["erasure"] for r in reports(db)] == [*ids, late]  # each reported exactly once, in order
    assert rows(db, "SELECT count(*) FROM erasures WHERE household = ?", never_here) == [(1,)]


async def test_a_failing_entry_is_logged_and_retried_and_nothing_after_it_is_applied_first(
    tmp_path: Path, central_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    ids = add_erasures(central_dsn, *[(household(f"LOY-{n}"), "s2", T0) for n in range(3)])
    failures = {"left": 3}
    seen: list[str] = []
    hooks = HouseholdHooks()

    def flaky(_conn: sqlite3.Connection, event: HouseholdErased) -> dict[str, int]:
        seen.append(event.household)
        if event.household == household("LOY-1") and failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("a capability's bug (simulated)")
        return {}

    hooks.on_erasure(flaky)
    db = tmp_path / "s.db"
    async with store_writer(db) as writer, central_for(tmp_path, central_dsn) as base:
        task = asyncio.create_task(poller(base, writer, hooks=hooks).run())
        await wait_for(lambda: count(db, "SELECT cursor FROM erasure_feed") == ids[-1], what="all applied")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert failures["left"] == 0
    # LOY-2's entry comes after LOY-1's in the feed: it was not tried until LOY-1's had worked
    last_one = max(i for i, hh in enumerate(seen) if hh == household("LOY-1"))
    assert seen.index(household("LOY-2")) > last_one
    assert [r["erasure"] for r in reports(db)] == ids
    failed = [r for r in caplog.records if r.getMessage() == "erasure_entry_failed"]
    assert len(failed) == 1  # one line per distinct problem, not one per retry
    assert "a capability's bug" in failed[0].__dict__["error"]


async def test_network_errors_and_refusals_back_off_and_recover(tmp_path: Path) -> None:
    """A fake central: connection resets, a 503 and a page of garbage before the real answer."""
    answers = ["reset", "503", "garbage", "401"]
    served: list[str] = []

    async def feed(request: web.Request) -> web.StreamResponse:
        after = int(request.query["after"])
        answer = answers.pop(0) if answers else "ok"
        served.append(answer)
        if answer == "reset":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if answer == "503":
            return web.json_response({"error": "unavailable", "message": "db down"}, status=503)
        if answer == "garbage":
            return web.Response(body=b"<html>proxy error</html>", content_type="text/html")
        if answer == "401":
            return web.json_response({"error": "unauthorized", "message": "no"}, status=401)
        entries = [{"id": 1, "household": household("LOY-1"), "requested_ms": T0}] if after < 1 else []
        return web.json_response({"erasures": entries, "next": max(after, len(entries)), "more": False})

    app = web.Application()
    app.router.add_get("/central/v1/erasures", feed)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    db = tmp_path / "s.db"
    try:
        async with store_writer(db) as writer:
            await shop(writer, "LOY-1", 1)
            task = asyncio.create_task(poller(f"http://127.0.0.1:{port}", writer).run())
            await wait_for(lambda: count(db, "SELECT cursor FROM erasure_feed") == 1, what="applied")
            await wait_for(lambda: served.count("ok") >= 3, what="polling on")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await runner.cleanup()
    assert served[:4] == ["reset", "503", "garbage", "401"]
    assert [r["erasure"] for r in reports(db)] == [1]


# -- kill -9 between entries ----------------------------------------------------------------------------


def test_a_store_killed_mid_feed_neither_skips_nor_repeats_an_erasure(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    """The real daemon polls a fake central serving 400 entries one per page, slowly; it is killed -9
    part-way, restarted, and every entry ends up reported exactly once, in order."""
    total = 400
    entries = [
        {"id": n, "household": household(f"LOY-K{n}"), "requested_ms": T0} for n in range(1, total + 1)
    ]

    async def feed(request: web.Request) -> web.StreamResponse:
        after = int(request.query["after"])
        page = entries[after : after + 1]
        await asyncio.sleep(0.005)
        return web.json_response(
            {"erasures": page, "next": page[-1]["id"] if page else after, "more": after + 1 < total}
        )

    async def bundles(_request: web.Request) -> web.StreamResponse:
        return web.json_response({"bundles": []})

    async def serve(stop: asyncio.Event, port: int) -> None:
        app = web.Application()
        app.router.add_get("/central/v1/erasures", feed)
        app.router.add_get("/central/v1/bundles/latest", bundles)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await stop.wait()
        await runner.cleanup()

    port = free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    server = threading.Thread(target=lambda: loop.run_until_complete(serve(stop, port)), daemon=True)
    server.start()
    config = write_config(
        tmp_path,
        broker,
        sync={
            "token": SYNC_TOKEN,
            "central_url": f"http://127.0.0.1:{port}",
            "public_key": PUBLIC_KEY,
            "erasure_poll_s": 0.05,
        },
    )
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    db = tmp_path / "store.db"
    try:
        daemon.start()
        wait_for_sync(lambda: count(db, "SELECT cursor FROM erasure_feed") >= 60, timeout=60, what="part-way")
        daemon.kill()
        cut = count(db, "SELECT cursor FROM erasure_feed")
        assert 0 < cut < total
        assert count(db, "SELECT count(*) FROM outbox WHERE kind = 'erasure'") == cut
        daemon.start()
        wait_for_sync(lambda: count(db, "SELECT cursor FROM erasure_feed") == total, timeout=120, what="all")
        assert [r["erasure"] for r in reports(db)] == list(range(1, total + 1))
        assert count(db, "SELECT count(*) FROM erasures") == total
    finally:
        daemon.stop_quietly()
        loop.call_soon_threadsafe(stop.set)
        server.join(10)


async def test_with_the_daemons_signer_the_sessions_end_in_memory_at_once(
    tmp_path: Path, central_dsn: str
) -> None:
    signer = SessionSigner(b"s" * 32, 900)
    hh, other = household("LOY-1"), household("LOY-2")
    before, bystander = signer.issue(hh, verified=True), signer.issue(other, verified=True)
    (entry,) = add_erasures(central_dsn, (hh, "s2", T0))
    db = tmp_path / "s.db"
    async with store_writer(db) as writer, central_for(tmp_path, central_dsn) as base:
        await shop(writer, "LOY-1", 1)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {SYNC_TOKEN}"}) as session:
            assert await poller(base, writer, sessions=signer).poll_once(session) is False
    assert isinstance(signer.check(before.token), Refusal)
    assert signer.verify(bystander.token) is not None
    assert signer.verify(signer.issue(hh, verified=True).token) is not None  # the card works again
    assert rows(db, "SELECT cursor FROM erasure_feed") == [(entry,)]
